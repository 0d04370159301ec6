package dftest

import (
	"strconv"
	"time"
)

// The instance object in the document's key order and spelling (mixed case included).
type instanceJSON struct {
	Name                  string            `json:"name"`
	Namespace             string            `json:"namespace"`
	Region                string            `json:"Region"`
	DisplayName           string            `json:"displayName"`
	Description           string            `json:"description"`
	Annotations           map[string]string `json:"annotations"`
	UID                   string            `json:"uid"`
	Servers               *serversJSON      `json:"servers,omitempty"`
	Image                 string            `json:"image"`
	Replicas              int               `json:"replicas"`
	Resources             resourcesJSON     `json:"resources"`
	VolumeMounts          []volumeJSON      `json:"volumeMounts"`
	CreationTimestamp     string            `json:"creationTimestamp"`
	UpdateTimestamp       string            `json:"updateTimestamp"`
	ScheduleStopTimestamp string            `json:"ScheduleStopTimestamp"`
	Status                string            `json:"status"`
	Cost                  costJSON          `json:"cost"`
	Pods                  []podJSON         `json:"Pods,omitempty"`
}

type serversJSON struct {
	Jupyterlab  string  `json:"Jupyterlab"`
	Tensorboard string  `json:"Tensorboard"`
	SSH         sshJSON `json:"SSH"`
}

type sshJSON struct {
	SSHAddr     string `json:"sshAddr"`
	SSHPassword string `json:"sshPassword"`
}

type resourcesJSON struct {
	CPU     string `json:"cpu"`
	Memory  string `json:"memory"`
	GPUNum  string `json:"GPUNum"`
	GPUType string `json:"GPUType"`
}

type volumeJSON struct {
	PathInContainer string `json:"PathInContainer"`
	Type            string `json:"Type"`
	Size            int    `json:"Size"`
	PVCName         string `json:"PVCName"`
	DisplayName     string `json:"displayName"`
	FilesystemType  string `json:"filesystemType"`
}

type costJSON struct {
	CostType   string `json:"CostType"`
	CostTime   string `json:"CostTime"`
	DiscountID string `json:"DiscountID"`
	GPUSKUID   string `json:"GPUSKUID"`
	DiskSKUID  string `json:"DiskSKUID"`
	CouponID   string `json:"CouponID"`
}

type podJSON struct {
	Name          string          `json:"Name"`
	Containers    []containerJSON `json:"Containers"`
	NodeScheduled string          `json:"nodeScheduled"`
	IP            string          `json:"ip"`
}

type containerJSON struct {
	Name string `json:"Name"`
}

type listJSON struct {
	HasNextPage bool           `json:"hasNextPage"`
	Nodes       []instanceJSON `json:"nodes"`
	TotalCount  int            `json:"totalCount"`
}

// view selects the differences the document shows between its three instance answers.
type view int

const (
	viewCreate view = iota // no servers, no Pods, data volume Size 0
	viewList               // everything
	viewDetail             // like list, without the saveDataEnabled annotation
)

// webDomain is the demo host of the web services: well-formed, never real (.invalid). SSH
// goes to the instance's loopback endpoint.
const webDomain = "gw.datenfab.demo.invalid"

func (s *Server) render(in *instance, v view) instanceJSON {
	k := in.sku
	a := s.opts.AnnotationPrefix
	ann := map[string]string{
		a + "cost-coupon-id":   in.cost.CouponID,
		a + "cost-discount-id": in.cost.DiscountID,
		a + "cost-disk-sku-id": in.cost.DiskSKUID,
		a + "cost-gpu-sku-id":  in.cost.GPUSKUID,
		a + "cost-order-id":    in.orderID,
		a + "cost-time":        in.cost.CostTime,
		a + "cost-type":        in.cost.CostType,
		a + "description":      "",
		a + "display-name":     in.displayName,
		a + "gpu.machine":      in.machine(),
		a + "gpu.resource.key": k.GPUResourceKey,
		a + "region":           in.cluster,
		a + "saveDataEnabled":  "false",
		a + "unit-price":       strconv.FormatFloat(k.Price, 'f', -1, 64),
	}
	if v == viewDetail {
		delete(ann, a+"saveDataEnabled")
	}
	dataSize := in.dataSize
	if v == viewCreate {
		dataSize = 0
	}
	out := instanceJSON{
		Name: in.name, Namespace: s.opts.Namespace, Region: in.cluster, DisplayName: in.displayName,
		Annotations: ann, UID: in.uid, Image: in.image, Replicas: 1,
		Resources: resourcesJSON{
			CPU: strconv.Itoa(k.CPUCores), Memory: strconv.Itoa(k.MemoryCount) + "Gi",
			GPUNum: strconv.Itoa(k.GPUCounts), GPUType: in.machine(),
		},
		VolumeMounts: []volumeJSON{
			{PathInContainer: "/", Type: "local-filesystem", Size: k.SystemStorage, DisplayName: "系统盘", FilesystemType: "system"},
			{PathInContainer: "/root/data", Type: "shared-filesystem", Size: dataSize, PVCName: in.pvc, DisplayName: "磁盘-" + in.pvc, FilesystemType: "data"},
		},
		CreationTimestamp:     in.created.In(s.cst).Format(time.RFC3339),
		UpdateTimestamp:       s.stamp(in.updated),
		ScheduleStopTimestamp: noTime,
		Status:                in.status,
		Cost: costJSON{CostType: in.cost.CostType, CostTime: in.cost.CostTime, DiscountID: in.cost.DiscountID,
			GPUSKUID: in.cost.GPUSKUID, DiskSKUID: in.cost.DiskSKUID, CouponID: in.cost.CouponID},
	}
	if v == viewCreate || in.status == "Creating" {
		return out
	}
	out.Servers = &serversJSON{
		Jupyterlab:  "http://" + in.uid + "." + webDomain + "/jupyter?token=" + in.jupyterToken,
		Tensorboard: "http://" + in.uid + "." + webDomain + "/monitor",
		SSH: sshJSON{
			SSHAddr:     "ssh -p" + strconv.Itoa(in.sshPort) + " root@" + in.sshHost,
			SSHPassword: in.sshPassword,
		},
	}
	switch in.status {
	case "Starting", "Running", "ShuttingDown":
		out.Pods = []podJSON{{Name: in.name + "-" + in.podSuffix, Containers: []containerJSON{{Name: "worker"}},
			NodeScheduled: "gpu-" + in.machineLower() + "-03", IP: in.podIP}}
	}
	return out
}

// stamp formats t, or Go's zero time as the API does for unset timestamps.
func (s *Server) stamp(t time.Time) string {
	if t.IsZero() {
		return noTime
	}
	return t.In(s.cst).Format(time.RFC3339)
}

func (in *instance) machine() string { return in.sku.machine }

func (in *instance) machineLower() string {
	b := []byte(in.sku.machine)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
