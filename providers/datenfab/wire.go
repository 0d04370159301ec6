package datenfab

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/flex"
)

// The types below are Datenfab's JSON exactly as its document shows it (vendor-api.md 3.3, 3.4).
// The tags are explicit because the vendor mixes cases ("Region", "Pods", "ScheduleStopTimestamp"
// next to "status"), and numbers the vendor sends as strings use flex types.

// wireRegion is one element of GET /regions.
type wireRegion struct {
	ID          string `json:"id"`
	Region      string `json:"region"`
	ClusterName string `json:"clusterName"`
	HarborAddr  string `json:"harborAddr"`
	HowlerID    string `json:"howlerID"`
	CreatedAt   string `json:"createdAt"`
	UpdatedAt   string `json:"updatedAt"`
}

// wireSKU is one element of GET /skus/computings.
type wireSKU struct {
	Name              string      `json:"name"`
	RegionID          string      `json:"regionID"`
	CPUArch           string      `json:"cpuArch"`
	CPUSeries         string      `json:"cpuSeries"`
	CPUCores          flex.Int    `json:"cpucores"`
	MemoryCount       flex.Int    `json:"memoryCount"`
	CPUVendor         string      `json:"cpuVendor"`
	GPUSeries         string      `json:"gpuSeries"`
	GPUProduct        string      `json:"gpuProduct"`
	GPUResourceKey    string      `json:"gpuResourceKey"`
	GPUCounts         flex.Int    `json:"gpuCounts"`
	GPUMemory         flex.Int    `json:"gpuMemory"`
	SystemStorage     flex.Int    `json:"systemstorage"`
	DataStorage       flex.Int    `json:"datastorage"`
	SKUsID            flex.String `json:"skusID"`
	RegionName        string      `json:"regionName"`
	ClusterName       string      `json:"clusterName"`
	SellingType       flex.String `json:"sellingType"`
	Ratio             flex.Float  `json:"ratio"`
	DiscountID        flex.String `json:"discountID"`
	DiscountStartTime string      `json:"discountStartTime"`
	DiscountEndTime   string      `json:"discountEndTime"`
	Price             flex.Float  `json:"price"`
	RemainGPUCount    flex.Int    `json:"remainGPUCount"`
}

// wireCreateRequest is the body of POST /clusters/{cluster}/instances. VolumeMount is an
// array although the document's table calls it an object (quirk 5.2.5).
type wireCreateRequest struct {
	Cost        wireCreateCost    `json:"Cost"`
	VolumeMount []wireVolumeMount `json:"VolumeMount"`
	Namespace   string            `json:"namespace"`
	DisplayName string            `json:"displayName"`
	Image       string            `json:"image"`
	Region      string            `json:"Region"`
}

type wireCreateCost struct {
	CostType  string `json:"CostType"`
	CouponID  string `json:"CouponID"`
	DiskSKUID string `json:"DiskSKUID"`
	GPUSKUID  string `json:"GPUSKUID"`
	CostTime  string `json:"CostTime"`
}

type wireVolumeMount struct {
	PathInContainer string `json:"PathInContainer"`
	Size            int    `json:"Size"`
	Type            string `json:"Type"`
}

// wirePowerOff is the body of POST .../power_off. The document's table types every field as a
// string but its example sends a number and a bool (quirk 5.2.6); we follow the example.
type wirePowerOff struct {
	GracePeriodSeconds int    `json:"gracePeriodSeconds"`
	NeedSnapshot       bool   `json:"needSnapshot,omitempty"`
	ImageName          string `json:"imageName,omitempty"`
	Tag                string `json:"tag,omitempty"`
}

// wireInstanceList is the answer of GET /clusters/{cluster}/instances.
type wireInstanceList struct {
	HasNextPage bool           `json:"hasNextPage"`
	Nodes       []wireInstance `json:"nodes"`
	TotalCount  flex.Int       `json:"totalCount"`
}

// wireInstance is Datenfab's instance object (create, list and detail answers).
type wireInstance struct {
	Name                  string          `json:"name"`
	Namespace             string          `json:"namespace"`
	Region                string          `json:"Region"` // the cluster name, not the region (quirk 5.2.9)
	DisplayName           string          `json:"displayName"`
	Description           string          `json:"description"`
	Annotations           wireAnnotations `json:"annotations"`
	UID                   string          `json:"uid"`
	Servers               *wireServers    `json:"servers"` // absent in the create answer
	Image                 string          `json:"image"`
	Replicas              flex.Int        `json:"replicas"`
	Resources             wireResources   `json:"resources"`
	VolumeMounts          []wireVolume    `json:"volumeMounts"`
	CreationTimestamp     string          `json:"creationTimestamp"`
	UpdateTimestamp       string          `json:"updateTimestamp"`
	ScheduleStopTimestamp string          `json:"ScheduleStopTimestamp"`
	Status                string          `json:"status"`
	Cost                  wireCost        `json:"cost"`
	Pods                  []wirePod       `json:"Pods"`
}

type wireServers struct {
	Jupyterlab  string   `json:"Jupyterlab"`
	Tensorboard string   `json:"Tensorboard"`
	SSH         *wireSSH `json:"SSH"`
}

type wireSSH struct {
	SSHAddr     string `json:"sshAddr"` // a shell command, e.g. "ssh -p30099 root@host"
	SSHPassword string `json:"sshPassword"`
}

type wireResources struct {
	CPU     flex.String `json:"cpu"`    // "16", possibly a Kubernetes quantity such as "16000m"
	Memory  flex.String `json:"memory"` // a Kubernetes quantity, "96Gi"
	GPUNum  flex.Int    `json:"GPUNum"`
	GPUType string      `json:"GPUType"`
}

type wireVolume struct {
	PathInContainer string   `json:"PathInContainer"`
	Type            string   `json:"Type"`
	Size            flex.Int `json:"Size"`
	PVCName         string   `json:"PVCName"`
	DisplayName     string   `json:"displayName"`
	FilesystemType  string   `json:"filesystemType"`
}

type wireCost struct {
	CostType   flex.String `json:"CostType"`
	CostTime   string      `json:"CostTime"`
	DiscountID flex.String `json:"DiscountID"`
	GPUSKUID   flex.String `json:"GPUSKUID"`
	DiskSKUID  flex.String `json:"DiskSKUID"`
	CouponID   string      `json:"CouponID"`
}

type wirePod struct {
	Name          string          `json:"Name"`
	Containers    []wireContainer `json:"Containers"`
	NodeScheduled string          `json:"nodeScheduled"`
	IP            string          `json:"ip"`
}

type wireContainer struct {
	Name string `json:"Name"`
}

// wireAnnotations holds the instance annotations. Their keys carry the deployment's domain as
// a prefix (demo.cdc.datenfab.com/, neolink.ai/, ...; quirk 5.2.8), so they are looked up by
// suffix. Values are documented as strings; anything else is kept as its JSON text rather than
// failing the whole instance.
type wireAnnotations map[string]string

func (a *wireAnnotations) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*a = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	m := make(wireAnnotations, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			m[k] = s
			continue
		}
		m[k] = string(bytes.TrimSpace(v))
	}
	*a = m
	return nil
}

// get returns the annotation whose key is suffix or ends in "/"+suffix, whatever the domain.
func (a wireAnnotations) get(suffix string) (string, bool) {
	if v, ok := a[suffix]; ok {
		return v, true
	}
	for k, v := range a {
		if strings.HasSuffix(k, "/"+suffix) {
			return v, true
		}
	}
	return "", false
}

// Annotation suffixes used by the adapter.
const (
	annCostType    = "cost-type"
	annCostTime    = "cost-time"
	annCostOrderID = "cost-order-id"
	annDisplayName = "display-name"
	annGPUMachine  = "gpu.machine"
	annRegion      = "region"
	annUnitPrice   = "unit-price"
)
