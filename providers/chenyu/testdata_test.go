package chenyu

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// The documents' example payloads, under testdata/chenyu (sources and fixes in its README:
// gpu_list.json is cut off inside its second entry in our copy of the page, so that entry is
// left out and the array closed).

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "chenyu", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeEnvelope decodes a payload and returns its code and data.
func decodeEnvelope(t *testing.T, name string) (string, json.RawMessage) {
	t.Helper()
	var env envelope
	if err := json.Unmarshal(readTestdata(t, name), &env); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	code, ok := env.codeText()
	if !ok {
		t.Fatalf("%s: no code", name)
	}
	return code, env.Data
}

func TestSeedInstanceListExample(t *testing.T) {
	code, data := decodeEnvelope(t, "instance_list.json")
	var d struct {
		List  []wireInstance `json:"instance_list"`
		Total int            `json:"total"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if code != "0" || d.Total != 1 || len(d.List) != 1 {
		t.Fatalf("code %s total %d list %d", code, d.Total, len(d.List))
	}
	p := New(Config{APIKey: "k"})
	in := p.instance(d.List[0], map[string]float64{"gpu_87654321-4321-4321-4321-210987654321": 5.5})
	if in.ID != "inst_12345678-1234-1234-1234-123456789012" || in.Name != "我的PyTorch实例" ||
		in.State != providers.StateRunning || in.RawState != "2" || in.GPUModel != "NVIDIA RTX 4090" || in.GPUCount != 1 {
		t.Fatalf("instance %+v", in)
	}
	if in.CreatedAt.Unix() != 1703145600 || in.StopsAt == nil || in.StopsAt.Unix() != 1703232000 || in.ImageSaveStatus != "saved" {
		t.Fatalf("times/save %+v", in)
	}
	if in.Image != "PyTorch 2.0 环境 (v2.0)" || in.PricePerHour == nil || *in.PricePerHour != 5.5 || in.Billing != "" {
		t.Fatalf("image/price/billing %+v", in)
	}
	c := in.Connection
	want := providers.Connection{
		SSHHost: "inst12345678123412341234123456789012.gzxx.chenyu.cn", SSHPort: 22001, SSHUser: "root",
		SSHPassword: "generated_password_123",
		SSHCommand:  "ssh -p 22001 root@inst12345678123412341234123456789012.gzxx.chenyu.cn",
	}
	if c == nil || c.SSHHost != want.SSHHost || c.SSHPort != want.SSHPort || c.SSHUser != want.SSHUser ||
		c.SSHPassword != want.SSHPassword || c.SSHCommand != want.SSHCommand {
		t.Fatalf("connection %+v", c)
	}
	wantWeb := []providers.WebURL{{Name: "Jupyter Lab", URL: "https://jupyter-inst123.chenyu.cn"}, {Name: "service", URL: "https://ssh-inst123.chenyu.cn"}}
	if len(c.WebURLs) != 2 || c.WebURLs[0] != wantWeb[0] || c.WebURLs[1] != wantWeb[1] {
		t.Fatalf("web urls %+v", c.WebURLs)
	}
}

func TestSeedInstanceListSchemaTemplate(t *testing.T) {
	code, data := decodeEnvelope(t, "instance_list_schema.json")
	var d struct {
		List []wireInstance `json:"instance_list"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if code != "123" || len(d.List) != 1 {
		t.Fatalf("code %s, %d instances", code, len(d.List))
	}
	in := New(Config{APIKey: "k"}).instance(d.List[0], nil)
	// status 123 is no Chenyu state; server_url [{}] has no URL.
	if in.State != providers.StateUnknown || in.RawState != "123" || in.ImageSaveStatus != "" {
		t.Fatalf("template instance %+v", in)
	}
	for _, w := range in.Connection.WebURLs {
		if w.URL == "" {
			t.Fatalf("empty web url from server_url [{}]: %+v", in.Connection.WebURLs)
		}
	}
	if in.StopsAt != nil {
		t.Fatalf("shutdown_time 123 shown as a time: %v", in.StopsAt)
	}
}

func TestGPUListExample(t *testing.T) {
	code, data := decodeEnvelope(t, "gpu_list.json")
	var d struct {
		List []wireGPU `json:"gpu_list"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if code != "0" || len(d.List) != 1 {
		t.Fatalf("code %s list %d", code, len(d.List))
	}
	o := New(Config{APIKey: "k"}).offer(d.List[0])
	if o.ID != "gpu_12345678-1234-1234-1234-123456789012" || *o.PricePerGPUHour != 5.5 || !o.Available || len(o.Prices) != 4 ||
		o.Prices[3] != (providers.Price{Billing: providers.BillingMonthly, CNY: 3200}) {
		t.Fatalf("offer %+v", o)
	}
}

func TestPrivateImageListExample(t *testing.T) {
	code, data := decodeEnvelope(t, "private_image_list.json")
	var d struct {
		List []wirePrivateImage `json:"image_list"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if code != "0" || len(d.List) != 1 {
		t.Fatalf("code %s list %d", code, len(d.List))
	}
	im := New(Config{APIKey: "k"}).privateImage(d.List[0])
	if im.ID != "img_12345678-1234-1234-1234-123456789012" || im.Kind != providers.ImagePrivate || im.Name != "我的PyTorch环境" ||
		im.SizeGB != 12.5 || im.Status != "ready" || im.CreatedAt.Unix() != 1703145600 {
		t.Fatalf("image %+v", im)
	}
	if im.Description != "基于PyTorch 2.0的深度学习环境,已安装常用库; saved from Pod pod_87654321-4321-4321-4321-210987654321@v2.0" {
		t.Fatalf("description %q", im.Description)
	}
}

func TestActionResponseExamples(t *testing.T) {
	for _, name := range []string{"startup_response.json", "shutdown_timer_response.json"} {
		t.Run(name, func(t *testing.T) {
			p := stub(t, 200, nil, string(readTestdata(t, name)))
			if err := p.Start(t.Context(), "inst_1"); err != nil {
				t.Fatalf("action answered with %s failed: %v", name, err)
			}
		})
	}
}
