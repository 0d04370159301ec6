package datenfab

// The document's example payloads (testdata/datenfab, see its README for the fixes made to
// invalid examples) decoded and mapped.

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

func TestDocRegions(t *testing.T) {
	var rs []wireRegion
	if err := json.Unmarshal(readTestdata(t, "regions.json"), &rs); err != nil {
		t.Fatal(err)
	}
	want := wireRegion{ID: "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa", Region: "北京一区", ClusterName: "host-cluster",
		HarborAddr: "images.neolink-ai.com", HowlerID: "69e377a7-99d1-cca0-ef58-cfce14a336b2",
		CreatedAt: "2024-07-15T12:00:23.227+08:00", UpdatedAt: "2024-07-15T12:00:23.227+08:00"}
	if len(rs) != 1 || rs[0] != want {
		t.Errorf("regions = %+v", rs)
	}
}

// The SKU example's list ends in ",..." in the document; the copy drops the ellipsis.
func TestDocSKUs(t *testing.T) {
	var skus []wireSKU
	if err := json.Unmarshal(readTestdata(t, "skus.json"), &skus); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		now  time.Time
		note bool
	}{
		{"discount window open", time.Date(2024, 9, 1, 0, 0, 0, 0, time.UTC), true},
		{"discount window closed", time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"discount not yet started", time.Date(2024, 8, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Config{})
			p.now = func() time.Time { return tt.now }
			o, ok := p.offerOf(skus[0])
			if !ok {
				t.Fatal("row skipped")
			}
			if o.ID != "host-cluster/2/1" || o.GPUModel != "H20" || !slices.Equal(o.GPUCounts, []int{1}) ||
				o.VRAMGB != 96 || o.VCPUs != 24 || o.RAMGB != 192 || o.SystemDiskGB != 30 || o.DataDiskGB != 50 ||
				o.Region != "北京一区" || !o.Available || *o.AvailableGPUs != 8 || *o.PricePerGPUHour != 10 {
				t.Errorf("offer = %+v", o)
			}
			if got := strings.Contains(o.Notes, "discount ratio 0.48 (discount 10000) until 2024-09-30T16:05:00Z"); got != tt.note {
				t.Errorf("discount note present = %v, want %v: %q", got, tt.note, o.Notes)
			}
			if tt.note && !strings.Contains(o.Notes, "meaning undocumented") {
				t.Errorf("note must say the semantics are unknown: %q", o.Notes)
			}
		})
	}
}

func TestDocListResponse(t *testing.T) {
	var list wireInstanceList
	if err := json.Unmarshal(readTestdata(t, "list_response.json"), &list); err != nil {
		t.Fatal(err)
	}
	if list.HasNextPage || list.TotalCount != 1 || len(list.Nodes) != 1 {
		t.Fatalf("list = %+v", list)
	}
	in := New(Config{}).instanceOf(list.Nodes[0], "host-cluster")
	created := time.Date(2024, 9, 2, 18, 34, 33, 0, time.FixedZone("", 8*3600))
	want := providers.Instance{
		ID: "instance-ccffxxxx", Provider: "datenfab", Name: "test1",
		State: providers.StateRunning, RawState: "Running", GPUModel: "4090", GPUCount: 1, VCPUs: 16, RAMGB: 96,
		Image: tfImage, Region: "host-cluster", Billing: providers.BillingHourly, OrderID: "94b9e467-9d34-45bf-8e8f-e04115cf58b4",
		Connection: &providers.Connection{
			SSHHost: "8d40c2e6-a0b0-45c2-9b40-a0de065104f5.gws.demo.cdc.datenfab.com", SSHPort: 30099, SSHUser: "root",
			SSHPassword: "kEyIX5R2dqJD",
			SSHCommand:  "ssh -p 30099 root@8d40c2e6-a0b0-45c2-9b40-a0de065104f5.gws.demo.cdc.datenfab.com",
			WebURLs: []providers.WebURL{
				{Name: "JupyterLab", URL: "http://8d40c2e6-a0b0-45c2-9b40-a0de065104f5.gw.neolink-ai.com/jupyter?token=7d27443c5718e75bee2da9f92fe6a50c"},
				{Name: "TensorBoard", URL: "http://8d40c2e6-a0b0-45c2-9b40-a0de065104f5.gw.neolink-ai.com/monitor"},
			},
		},
	}
	if in.CreatedAt == nil || !in.CreatedAt.Equal(created) {
		t.Errorf("CreatedAt = %v", in.CreatedAt)
	}
	// unit-price "250" on a one-GPU RTX 4090 is not plausible as CNY/hour: left unknown.
	if in.PricePerHour != nil {
		t.Errorf("PricePerHour = %v, want nil", *in.PricePerHour)
	}
	in.CreatedAt = nil
	gb, _ := json.Marshal(in)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("instance\n got %s\nwant %s", gb, wb)
	}
}

func TestDocActionResponse(t *testing.T) {
	var s string
	if err := json.Unmarshal(readTestdata(t, "action_response.json"), &s); err != nil || s != "ok" {
		t.Fatalf("action response = %q, %v", s, err)
	}
	logs := &logBuffer{}
	p := New(Config{})
	p.log = p.log.Output(logs)
	p.checkAnswer("stop", readTestdata(t, "action_response.json"))
	if logs.String() != "" {
		t.Errorf("the documented answer was logged as unexpected: %s", logs.String())
	}
}
