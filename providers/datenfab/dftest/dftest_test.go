package dftest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func start(t *testing.T, opts Options) *Server {
	t.Helper()
	s := NewServer(opts)
	t.Cleanup(s.Close)
	return s
}

// call sends one request with the server's credentials unless hdr overrides them.
func call(t *testing.T, s *Server, method, path string, body any, hdr map[string]string) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "bearer "+s.Credential())
	req.Header.Set("namespace", s.Namespace())
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func mustStatus(t *testing.T, want, got int, body []byte) {
	t.Helper()
	if got != want {
		t.Fatalf("status %d, want %d: %s", got, want, body)
	}
}

func createBody(sku, costType, costTime string) map[string]any {
	return map[string]any{
		"Cost":        map[string]any{"CostType": costType, "CouponID": "", "DiskSKUID": "1", "GPUSKUID": sku, "CostTime": costTime},
		"VolumeMount": []any{map[string]any{"PathInContainer": "/root/data", "Size": 50, "Type": "shared-filesystem"}},
		"namespace":   DemoNamespace,
		"displayName": "t",
		"image":       "images.neolink-ai.com/matrixdc/tensorflow:2.15.0",
		"Region":      "",
	}
}

// create makes an hourly RTX 4090 instance and returns its name.
func create(t *testing.T, s *Server) string {
	t.Helper()
	st, b := call(t, s, "POST", "/clusters/host-cluster/instances", createBody("66", "1", ""), nil)
	mustStatus(t, 200, st, b)
	var in struct{ Name string }
	if err := json.Unmarshal(b, &in); err != nil || in.Name == "" {
		t.Fatalf("create answer %s: %v", b, err)
	}
	return in.Name
}

func status(t *testing.T, s *Server, name string) string {
	t.Helper()
	in, ok := s.Instance(name)
	if !ok {
		return "(gone)"
	}
	return in.Status
}

func TestAuthHeadersAreChecked(t *testing.T) {
	s := start(t, Options{})
	tests := []struct {
		name string
		hdr  map[string]string
		want int
	}{
		{"both right", nil, 200},
		{"no authorization", map[string]string{"Authorization": ""}, 401},
		{"wrong token", map[string]string{"Authorization": "bearer nope"}, 401},
		{"no scheme", map[string]string{"Authorization": s.Credential()}, 401},
		{"capital Bearer (documented form is lowercase)", map[string]string{"Authorization": "Bearer " + s.Credential()}, 401},
		{"no namespace", map[string]string{"namespace": ""}, 401},
		{"wrong namespace", map[string]string{"namespace": "other"}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := call(t, s, "GET", "/regions", nil, tt.hdr)
			mustStatus(t, tt.want, st, b)
			if tt.want == 401 {
				var e struct{ Message string }
				if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Message, "unauthorized") {
					t.Errorf("401 body %s", b)
				}
			}
		})
	}
	if n := len(s.Requests()); n != len(tests) {
		t.Errorf("recorded %d requests, want %d (refused ones included)", n, len(tests))
	}
}

// skeleton reduces a JSON value to its shape: object keys, array element shape, scalar kinds.
func skeleton(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = skeleton(e)
		}
		return m
	case []any:
		if len(x) == 0 {
			return []any{}
		}
		return []any{skeleton(x[0])}
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

func shapeOf(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return skeleton(v)
}

func doc(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "datenfab", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameShape(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("%s shape differs from the document\n got %s\nwant %s", what, gb, wb)
	}
}

// TestAnswersHaveTheDocumentsShapes compares every answer with the document's example, key by
// key, including the create answer's missing servers/Pods and the detail's missing
// saveDataEnabled annotation.
func TestAnswersHaveTheDocumentsShapes(t *testing.T) {
	s := start(t, Options{})
	st, b := call(t, s, "GET", "/regions", nil, nil)
	mustStatus(t, 200, st, b)
	sameShape(t, "regions", shapeOf(t, b), shapeOf(t, doc(t, "regions.json")))

	st, b = call(t, s, "GET", "/skus/computings?region_id=14c5a9e3-0d09-4aa0-99d3-c096b80cceaa", nil, nil)
	mustStatus(t, 200, st, b)
	sameShape(t, "skus", shapeOf(t, b), shapeOf(t, doc(t, "skus.json")))
	var skus []map[string]any
	_ = json.Unmarshal(b, &skus)
	var docSKUs []map[string]any
	_ = json.Unmarshal(doc(t, "skus.json"), &docSKUs)
	if !reflect.DeepEqual(skus[0], docSKUs[0]) {
		t.Errorf("first SKU row is not the document's example:\n got %v\nwant %v", skus[0], docSKUs[0])
	}

	st, b = call(t, s, "POST", "/clusters/host-cluster/instances", createBody("66", "1", ""), nil)
	mustStatus(t, 200, st, b)
	sameShape(t, "create", shapeOf(t, b), shapeOf(t, doc(t, "create_response.json")))
	var created struct {
		Name         string
		Status       string
		VolumeMounts []struct{ Size int } `json:"volumeMounts"`
	}
	_ = json.Unmarshal(b, &created)
	if created.Status != "Creating" || created.VolumeMounts[1].Size != 0 {
		t.Errorf("create answer: %s", b)
	}

	st, b = call(t, s, "GET", "/clusters/host-cluster/instances", nil, nil)
	mustStatus(t, 200, st, b)
	sameShape(t, "list", shapeOf(t, b), shapeOf(t, doc(t, "list_response.json")))

	st, b = call(t, s, "GET", "/clusters/host-cluster/instances/"+created.Name, nil, nil)
	mustStatus(t, 200, st, b)
	sameShape(t, "detail", shapeOf(t, b), shapeOf(t, doc(t, "detail_response.json")))

	st, b = call(t, s, "POST", "/clusters/host-cluster/instances/"+created.Name+"/power_off", doc(t, "power_off_request.json"), nil)
	mustStatus(t, 200, st, b)
	if !bytes.Equal(bytes.TrimSpace(b), bytes.TrimSpace(doc(t, "action_response.json"))) {
		t.Errorf("power_off answered %s", b)
	}
	st, b = call(t, s, "DELETE", "/clusters/host-cluster/instances?name="+created.Name, nil, nil)
	mustStatus(t, 200, st, b)
	if string(b) != `"ok"` {
		t.Errorf("delete answered %s", b)
	}
}

func TestDocumentCreateExampleIsAccepted(t *testing.T) {
	s := start(t, Options{Namespace: "xxx"}) // the example's namespace
	st, b := call(t, s, "POST", "/clusters/host-cluster/instances", doc(t, "create_request.json"), nil)
	mustStatus(t, 200, st, b)
	var in struct{ Name, DisplayName, Status string }
	_ = json.Unmarshal(b, &in)
	got, ok := s.Instance(in.Name)
	if !ok || got.DisplayName != "test1" || got.Cost.GPUSKUID != "66" || got.DataDiskGB != 50 || in.Status != "Creating" {
		t.Errorf("created %+v from %s", got, b)
	}
	st, b = call(t, s, "POST", "/clusters/host-cluster/instances", doc(t, "create_request_template.json"), nil)
	mustStatus(t, 400, st, b)
}

func TestCreateValidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(m map[string]any)
		status int
		msg    string
	}{
		{"valid", func(map[string]any) {}, 200, ""},
		{"no Cost", func(m map[string]any) { delete(m, "Cost") }, 400, "Cost is required"},
		{"CostType as number", func(m map[string]any) { m["Cost"].(map[string]any)["CostType"] = 1 }, 400, "invalid request body"},
		{"unknown CostType", func(m map[string]any) { m["Cost"].(map[string]any)["CostType"] = "5" }, 400, "CostType"},
		{"CostType not the SKU's selling type", func(m map[string]any) { m["Cost"].(map[string]any)["CostType"] = "2" }, 400, "does not match the selling type"},
		{"DiskSKUID other than 1", func(m map[string]any) { m["Cost"].(map[string]any)["DiskSKUID"] = "2" }, 400, "DiskSKUID"},
		{"unknown GPUSKUID", func(m map[string]any) { m["Cost"].(map[string]any)["GPUSKUID"] = "999" }, 400, "GPUSKUID"},
		{"GPUSKUID of another cluster", func(m map[string]any) { m["Cost"].(map[string]any)["GPUSKUID"] = "80" }, 400, "GPUSKUID"},
		{"CostTime on hourly", func(m map[string]any) { m["Cost"].(map[string]any)["CostTime"] = "3D" }, 400, "CostTime"},
		{"VolumeMount as object", func(m map[string]any) { m["VolumeMount"] = map[string]any{"Size": 50} }, 400, "invalid request body"},
		{"no VolumeMount", func(m map[string]any) { delete(m, "VolumeMount") }, 400, "VolumeMount is required"},
		{"other volume type", func(m map[string]any) { m["VolumeMount"] = []any{map[string]any{"Type": "local-filesystem"}} }, 400, "shared-filesystem"},
		{"no namespace", func(m map[string]any) { delete(m, "namespace") }, 400, "namespace is required"},
		{"namespace differs from header", func(m map[string]any) { m["namespace"] = "other" }, 403, "namespace"},
		{"no displayName", func(m map[string]any) { m["displayName"] = "" }, 400, "displayName"},
		{"no image", func(m map[string]any) { delete(m, "image") }, 400, "image"},
		{"Region of another cluster", func(m map[string]any) { m["Region"] = "上海一区" }, 400, "Region"},
		{"Region display name", func(m map[string]any) { m["Region"] = "北京一区" }, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := start(t, Options{})
			body := createBody("66", "1", "")
			tt.change(body)
			st, b := call(t, s, "POST", "/clusters/host-cluster/instances", body, nil)
			mustStatus(t, tt.status, st, b)
			if tt.msg != "" && !strings.Contains(string(b), tt.msg) {
				t.Errorf("answer %s lacks %q", b, tt.msg)
			}
			if n, _ := s.RemainGPUs("66"); (tt.status == 200) != (n == 15) {
				t.Errorf("remainGPUCount = %d after status %d", n, tt.status)
			}
		})
	}
}

func TestPrepaidCostTime(t *testing.T) {
	tests := []struct {
		sku, costType, costTime string
		want                    int
	}{
		{"67", "2", "2M", 200}, {"67", "2", "2D", 400}, {"67", "2", "", 400}, {"67", "2", "0M", 400},
		{"71", "3", "1W", 200}, {"71", "3", "+1W", 400},
	}
	for _, tt := range tests {
		t.Run(tt.sku+" "+tt.costTime, func(t *testing.T) {
			s := start(t, Options{})
			st, b := call(t, s, "POST", "/clusters/host-cluster/instances", createBody(tt.sku, tt.costType, tt.costTime), nil)
			mustStatus(t, tt.want, st, b)
		})
	}
}

func TestSoldOutIsRefused(t *testing.T) {
	s := start(t, Options{})
	st, b := call(t, s, "POST", "/clusters/host-cluster/instances", createBody("72", "4", "1D"), nil)
	mustStatus(t, 400, st, b)
	if !strings.Contains(string(b), "insufficient GPU resources") {
		t.Errorf("answer %s", b)
	}
	// A800 x1 has 4 GPUs: the fifth create is refused; a delete gives one back.
	var names []string
	for range 4 {
		st, b := call(t, s, "POST", "/clusters/host-cluster/instances", createBody("70", "1", ""), nil)
		mustStatus(t, 200, st, b)
		var in struct{ Name string }
		_ = json.Unmarshal(b, &in)
		names = append(names, in.Name)
	}
	st, b = call(t, s, "POST", "/clusters/host-cluster/instances", createBody("70", "1", ""), nil)
	mustStatus(t, 400, st, b)
	call(t, s, "POST", "/clusters/host-cluster/instances/"+names[0]+"/power_off", nil, nil)
	st, b = call(t, s, "DELETE", "/clusters/host-cluster/instances?name="+names[0], nil, nil)
	mustStatus(t, 200, st, b)
	if n, _ := s.RemainGPUs("70"); n != 1 {
		t.Errorf("remainGPUCount = %d after delete, want 1", n)
	}
}

func TestLifecycleWithStepDelay(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := start(t, Options{StepDelay: time.Second, Now: c.Now})
	name := create(t, s)
	base := "/clusters/host-cluster/instances/" + name
	steps := []struct {
		method, path, body string
		before, after      string
	}{
		{"", "", "", "Creating", "Running"},
		{"POST", base + "/power_off", `{"gracePeriodSeconds":10}`, "ShuttingDown", "Shutdown"},
		{"POST", base + "/power_on", "", "Starting", "Running"},
		{"POST", base + "/power_off", `{"gracePeriodSeconds":10,"needSnapshot":true,"imageName":"image1","tag":"v1.1.0"}`, "ShuttingDown", "Shutdown"},
		{"DELETE", "/clusters/host-cluster/instances?name=" + name, "", "Deleting", "(gone)"},
	}
	for _, st := range steps {
		if st.method != "" {
			code, b := call(t, s, st.method, st.path, st.body, nil)
			mustStatus(t, 200, code, b)
		}
		if got := status(t, s, name); got != st.before {
			t.Fatalf("after %s %s: status %q, want %q", st.method, st.path, got, st.before)
		}
		c.Advance(999 * time.Millisecond)
		if got := status(t, s, name); got != st.before {
			t.Fatalf("before the step ends: status %q, want %q", got, st.before)
		}
		if strings.Contains(st.body, "needSnapshot") {
			if in, _ := s.Instance(name); len(in.SavedImages) != 1 {
				t.Errorf("saved images %v", in.SavedImages)
			}
		}
		c.Advance(time.Millisecond)
		if got := status(t, s, name); got != st.after {
			t.Fatalf("after the step: status %q, want %q", got, st.after)
		}
	}
	if got := s.SavedImages(); len(got) != 1 || got[0] != "images.neolink-ai.com/"+DemoNamespace+"/image1:v1.1.0" {
		t.Errorf("SavedImages = %v", got)
	}
	if n, _ := s.RemainGPUs("66"); n != 16 {
		t.Errorf("remainGPUCount = %d, want 16", n)
	}
}

func TestZeroStepDelayCompletesOnNextRead(t *testing.T) {
	s := start(t, Options{})
	name := create(t, s)
	if got := status(t, s, name); got != "Running" {
		t.Fatalf("status %q", got)
	}
	st, b := call(t, s, "GET", "/clusters/host-cluster/instances/"+name, nil, nil)
	mustStatus(t, 200, st, b)
	var in struct {
		Servers struct{ SSH struct{ SSHAddr string } } `json:"servers"`
		Pods    []any                                  `json:"Pods"`
	}
	_ = json.Unmarshal(b, &in)
	if !strings.HasPrefix(in.Servers.SSH.SSHAddr, "ssh -p") || !strings.HasSuffix(in.Servers.SSH.SSHAddr, " root@127.0.0.1") || len(in.Pods) != 1 {
		t.Errorf("running detail %s", b)
	}
}

func TestWrongStatesAndUnknownNames(t *testing.T) {
	s := start(t, Options{})
	name := create(t, s)
	base := "/clusters/host-cluster/instances/"
	tests := []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"delete running", "DELETE", "/clusters/host-cluster/instances?name=" + name, "", 409, "power it off before deleting"},
		{"power on running", "POST", base + name + "/power_on", "", 409, "only a shut-down instance"},
		{"grace period as string", "POST", base + name + "/power_off", `{"gracePeriodSeconds":"10"}`, 400, "invalid request body"},
		{"needSnapshot as string", "POST", base + name + "/power_off", `{"needSnapshot":"True"}`, 400, "invalid request body"},
		{"snapshot without name", "POST", base + name + "/power_off", `{"needSnapshot":true}`, 400, "imageName"},
		{"delete without name", "DELETE", "/clusters/host-cluster/instances", "", 400, "name is required"},
		{"unknown instance", "GET", base + "instance-nope", "", 404, "not found"},
		{"unknown instance delete", "DELETE", "/clusters/host-cluster/instances?name=instance-nope", "", 404, "not found"},
		{"instance of another cluster", "GET", "/clusters/sh-cluster/instances/" + name, "", 404, "not found"},
		{"unknown cluster", "GET", "/clusters/nowhere/instances", "", 404, "cluster"},
		{"skus without region", "GET", "/skus/computings", "", 400, "region_id"},
		{"skus of unknown region", "GET", "/skus/computings?region_id=x", "", 404, "region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, b := call(t, s, tt.method, tt.path, tt.body, nil)
			mustStatus(t, tt.want, st, b)
			var e struct{ Message string }
			if err := json.Unmarshal(b, &e); err != nil || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("answer %s lacks %q", b, tt.msg)
			}
		})
	}
	if got := status(t, s, name); got != "Running" {
		t.Errorf("refused calls changed the status to %q", got)
	}
	st, b := call(t, s, "POST", base+name+"/power_off", nil, nil)
	mustStatus(t, 200, st, b)
	st, b = call(t, s, "POST", base+name+"/power_off", nil, nil)
	mustStatus(t, 409, st, b)
}

func TestSetStatusAllowsDeletingAFailedInstance(t *testing.T) {
	s := start(t, Options{})
	name := create(t, s)
	if !s.SetStatus(name, "Failed") || s.SetStatus("instance-nope", "Failed") {
		t.Fatal("SetStatus result")
	}
	st, b := call(t, s, "DELETE", "/clusters/host-cluster/instances?name="+name, nil, nil)
	mustStatus(t, 200, st, b)
}

func TestRequestsAreRecordedAndCopied(t *testing.T) {
	s := start(t, Options{})
	name := create(t, s)
	call(t, s, "POST", "/clusters/host-cluster/instances/"+name+"/power_off", `{"gracePeriodSeconds":10}`, nil)
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Method != "POST" || reqs[0].Path != APIPrefix+"/clusters/host-cluster/instances" ||
		string(reqs[1].Body) != `{"gracePeriodSeconds":10}` || reqs[1].Header.Get("namespace") != DemoNamespace {
		t.Fatalf("requests %+v", reqs)
	}
	reqs[1].Body[0] = 'X'
	if s.Requests()[1].Body[0] != '{' {
		t.Error("Requests returns aliased bodies")
	}
}

func TestHandlerServesWithoutTheOwnListener(t *testing.T) {
	s := start(t, Options{})
	req := httptest.NewRequest("GET", APIPrefix+"/regions", nil)
	req.Header.Set("Authorization", "bearer "+DemoToken)
	req.Header.Set("namespace", DemoNamespace)
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "host-cluster") {
		t.Errorf("%d %s", rec.Code, rec.Body.String())
	}
}

func TestConcurrentUse(t *testing.T) {
	s := start(t, Options{StepDelay: time.Millisecond})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			st, b := call(t, s, "POST", "/clusters/sh-cluster/instances", createBody("80", "1", ""), nil)
			if st != 200 && st != 400 {
				t.Errorf("create: %d %s", st, b)
			}
			call(t, s, "GET", "/clusters/sh-cluster/instances", nil, nil)
			_ = s.Requests()
		})
	}
	wg.Wait()
	if n, _ := s.RemainGPUs("80"); n != 2 {
		t.Errorf("remainGPUCount = %d, want 10-8 = 2", n)
	}
}
