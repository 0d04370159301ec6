package datenfab

// One test per Datenfab quirk of vendor-api.md section 5.2, named after it.

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
)

func TestQuirk5_2_01_StartCallsPowerOnNotPowerOff(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "q1").InstanceID
	if err := p.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := p.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	reqs := srv.Requests()
	last := reqs[len(reqs)-1]
	if last.Method != "POST" || last.Path != "/mdc/api/v1/clusters/host-cluster/instances/"+id+"/power_on" || len(last.Body) != 0 {
		t.Errorf("start sent %s %s %q", last.Method, last.Path, last.Body)
	}
}

func TestQuirk5_2_02_NamespaceHeaderOnEveryRequest(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "q2").InstanceID
	_ = get(t, p, id)
	reqs := srv.Requests()
	if len(reqs) < 4 {
		t.Fatalf("only %d requests", len(reqs))
	}
	for _, r := range reqs {
		if got := r.Header.Get("namespace"); got != dftest.DemoNamespace {
			t.Errorf("%s %s: namespace header %q", r.Method, r.Path, got)
		}
	}
	wrongNS := New(Config{Token: srv.Credential(), Namespace: "someone-else", BaseURL: srv.URL()})
	_, err := wrongNS.ListInstances(t.Context())
	wantKind(t, err, providers.KindAuth, "namespace")
}

func TestQuirk5_2_03_PathsUseInstanceNameNotUID(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "q3").InstanceID
	st, _ := srv.Instance(id)
	_ = get(t, p, id)
	if err := p.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests() {
		if strings.Contains(r.Path, st.UID) {
			t.Errorf("%s %s uses the uid", r.Method, r.Path)
		}
	}
	lastRequest(t, srv, "GET", "/instances/"+id)
	lastRequest(t, srv, "POST", "/instances/"+id+"/power_off")
}

func TestQuirk5_2_04_DeleteTakesNameAsQueryParameter(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "q4").InstanceID
	if err := p.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if err := p.Destroy(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	r := lastRequest(t, srv, "DELETE", "/instances")
	if r.Path != "/mdc/api/v1/clusters/host-cluster/instances" || r.RawQuery != "name="+id {
		t.Errorf("delete sent %s ? %s", r.Path, r.RawQuery)
	}
}

func TestQuirk5_2_05_CreateTemplateInvalidJSONAndVolumeMountIsArray(t *testing.T) {
	// testdata/datenfab/create_request_template.json is the document's template with
	// `"Size": ,` set to 0 and the trailing comma removed (see its README).
	var tmpl wireCreateRequest
	if err := json.Unmarshal(readTestdata(t, "create_request_template.json"), &tmpl); err != nil {
		t.Fatalf("fixed template: %v", err)
	}
	if len(tmpl.VolumeMount) != 1 {
		t.Errorf("VolumeMount = %+v", tmpl.VolumeMount)
	}
	var example wireCreateRequest
	if err := json.Unmarshal(readTestdata(t, "create_request.json"), &example); err != nil {
		t.Fatal(err)
	}
	if example.Cost.GPUSKUID != "66" || example.VolumeMount[0].Size != 50 || example.VolumeMount[0].Type != "shared-filesystem" {
		t.Errorf("example = %+v", example)
	}
	p, srv, _ := setup(t, dftest.Options{})
	launch(t, p, "q5")
	var sent map[string]json.RawMessage
	if err := json.Unmarshal(lastRequest(t, srv, "POST", "/instances").Body, &sent); err != nil {
		t.Fatal(err)
	}
	if v := strings.TrimSpace(string(sent["VolumeMount"])); !strings.HasPrefix(v, "[") {
		t.Errorf("VolumeMount sent as %s, want an array", v)
	}
}

func TestQuirk5_2_06_PowerOffBodyUsesNumberAndBool(t *testing.T) {
	var doc wirePowerOff
	if err := json.Unmarshal(readTestdata(t, "power_off_request.json"), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.GracePeriodSeconds != 10 || !doc.NeedSnapshot || doc.ImageName != "image1" || doc.Tag != "v1.1.0" {
		t.Errorf("document body = %+v", doc)
	}
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "q6").InstanceID
	if err := p.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if got := string(lastRequest(t, srv, "POST", "/power_off").Body); got != `{"gracePeriodSeconds":10}` {
		t.Errorf("stop body %s", got)
	}
	if err := p.Start(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := p.SaveImage(t.Context(), id, "image1"); err != nil {
		t.Fatal(err)
	}
	if got := string(lastRequest(t, srv, "POST", "/power_off").Body); got != `{"gracePeriodSeconds":10,"needSnapshot":true,"imageName":"image1","tag":"latest"}` {
		t.Errorf("save body %s", got)
	}
}

// fakeVendor answers every request with status and body, recording the paths.
func fakeVendor(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *Provider {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(handle))
	t.Cleanup(srv.Close)
	p := New(Config{Token: "t", Namespace: "ns", BaseURL: srv.URL})
	p.clusters["instance-abc"] = "host-cluster"
	return p
}

func TestQuirk5_2_07_ActionAnswersOKStringEmptyBodyOrObject(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		warn   bool
	}{
		{"ok string", 200, `"ok"`, false},
		{"empty body", 200, ``, false},
		{"empty object", 200, `{}`, false},
		{"object with fields", 201, `{"status":"Shutdown"}`, false},
		{"other string is logged", 200, `"accepted"`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs := &logBuffer{}
			p := fakeVendor(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			})
			log := zerolog.New(logs)
			p.log = log
			if err := p.Stop(t.Context(), "instance-abc"); err != nil {
				t.Fatalf("2xx %q treated as failure: %v", tt.body, err)
			}
			if got := strings.Contains(logs.String(), "other than"); got != tt.warn {
				t.Errorf("warning logged = %v, want %v (%s)", got, tt.warn, logs.String())
			}
		})
	}
	p := fakeVendor(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = w.Write([]byte(`"ok"`))
	})
	wantKind(t, p.Stop(t.Context(), "instance-abc"), providers.KindUnknown)
}

func TestQuirk5_2_08_AnnotationKeysMatchedBySuffixWhateverTheDomain(t *testing.T) {
	for _, prefix := range []string{"demo.cdc.datenfab.com/", "neolink.ai/", "example.org/"} {
		t.Run(prefix, func(t *testing.T) {
			p, _, _ := setup(t, dftest.Options{AnnotationPrefix: prefix})
			res := launch(t, p, "q8")
			in := get(t, p, res.InstanceID)
			if in.OrderID == "" || in.OrderID != res.OrderID || in.PricePerHour == nil || *in.PricePerHour != 2.2 {
				t.Errorf("order %q (launch %q), price %v", in.OrderID, res.OrderID, in.PricePerHour)
			}
		})
	}
	a := wireAnnotations{"neolink.ai/display-name": "x", "neolink.ai/region": "r"}
	if v, ok := a.get("display-name"); !ok || v != "x" {
		t.Errorf("display-name = %q, %v", v, ok)
	}
	if _, ok := a.get("name"); ok {
		t.Error(`"name" must not match "display-name"`)
	}
}

func TestQuirk5_2_09_RegionFieldHoldsTheClusterName(t *testing.T) {
	var w wireInstance
	if err := json.Unmarshal(readTestdata(t, "detail_response.json"), &w); err != nil {
		t.Fatal(err)
	}
	p := New(Config{})
	if in := p.instanceOf(w, ""); in.Region != "host-cluster" {
		t.Errorf("without region data Region = %q, want the cluster name", in.Region)
	}
	p.regions["host-cluster"] = regionInfo{Name: "北京一区"}
	if in := p.instanceOf(w, ""); in.Region != "北京一区" {
		t.Errorf("with region data Region = %q, want the region's display name", in.Region)
	}
}

func TestQuirk5_2_10_NumbersAsStringsAndMemoryQuantities(t *testing.T) {
	var skus []wireSKU
	if err := json.Unmarshal(readTestdata(t, "skus.json"), &skus); err != nil {
		t.Fatal(err)
	}
	if skus[0].SKUsID != "2" || skus[0].SellingType != "1" {
		t.Errorf("sku = %+v", skus[0])
	}
	// The same fields as numbers, and counts as strings, are tolerated too.
	var loose wireSKU
	if err := json.Unmarshal([]byte(`{"skusID":2,"sellingType":1,"gpuCounts":"2","remainGPUCount":"3","price":"4.5"}`), &loose); err != nil {
		t.Fatal(err)
	}
	if loose.SKUsID != "2" || loose.SellingType != "1" || loose.GPUCounts != 2 || loose.RemainGPUCount != 3 || loose.Price != 4.5 {
		t.Errorf("loose = %+v", loose)
	}
	var list wireInstanceList
	if err := json.Unmarshal(readTestdata(t, "list_response.json"), &list); err != nil {
		t.Fatal(err)
	}
	w := list.Nodes[0]
	if w.Resources.CPU != "16" || w.Resources.Memory != "96Gi" || w.Resources.GPUNum != 1 || w.Cost.CostType != "1" || w.Cost.GPUSKUID != "66" {
		t.Errorf("wire = %+v %+v", w.Resources, w.Cost)
	}
	in := New(Config{}).instanceOf(w, "host-cluster")
	if in.VCPUs != 16 || in.RAMGB != 96 || in.GPUCount != 1 || in.Billing != providers.BillingHourly {
		t.Errorf("instance = %+v", in)
	}
}

func TestQuirk5_2_11_CreateAnswerHasNoServersAndDataSizeZero(t *testing.T) {
	var w wireInstance
	if err := json.Unmarshal(readTestdata(t, "create_response.json"), &w); err != nil {
		t.Fatal(err)
	}
	if w.Servers != nil || w.Pods != nil || w.VolumeMounts[1].Size != 0 {
		t.Fatalf("create example = %+v", w)
	}
	in := New(Config{}).instanceOf(w, "host-cluster")
	if in.Connection != nil || in.State != providers.StatePending || in.ID != "instance-ccffxxxx" {
		t.Errorf("instance = %+v", in)
	}
}

func TestQuirk5_2_12_AnnotationsAreOptional(t *testing.T) {
	var w wireInstance
	if err := json.Unmarshal(readTestdata(t, "detail_response.json"), &w); err != nil {
		t.Fatal(err)
	}
	if _, ok := w.Annotations.get("saveDataEnabled"); ok {
		t.Fatal("the detail example has no saveDataEnabled")
	}
	p := New(Config{})
	if in := p.instanceOf(w, ""); in.OrderID != "cf4c99ff-cf7f-4c86-8f15-87cf5fb2ba14" {
		t.Errorf("order = %q", in.OrderID)
	}
	var bare wireInstance
	if err := json.Unmarshal([]byte(`{"name":"instance-x","status":"Running","annotations":null}`), &bare); err != nil {
		t.Fatal(err)
	}
	if in := p.instanceOf(bare, "c"); in.State != providers.StateRunning || in.OrderID != "" || in.PricePerHour != nil {
		t.Errorf("bare instance = %+v", in)
	}
	var odd wireInstance
	if err := json.Unmarshal([]byte(`{"name":"instance-y","annotations":{"a/unit-price":2.5,"a/cost-type":"1"}}`), &odd); err != nil {
		t.Fatalf("a non-string annotation value must not fail the instance: %v", err)
	}
	if in := p.instanceOf(odd, "c"); in.PricePerHour == nil || *in.PricePerHour != 2.5 {
		t.Errorf("odd instance price = %v", in.PricePerHour)
	}
}

func TestQuirk5_2_13_HasNextPageIsLoggedAndReported(t *testing.T) {
	logs := &logBuffer{}
	p := fakeVendor(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/regions":
			_, _ = w.Write(readTestdata(t, "regions.json"))
		case "/clusters/host-cluster/instances":
			_, _ = w.Write([]byte(`{"hasNextPage":true,"nodes":[{"name":"instance-a","status":"Running"}],"totalCount":51}`))
		default:
			w.WriteHeader(404)
		}
	})
	p.log = zerolog.New(logs)
	list, err := p.ListInstances(t.Context())
	inc := providers.AsIncomplete(err)
	if len(list) != 1 || inc == nil || inc.Listed != 1 || inc.Total != 51 {
		t.Fatalf("list %v, %v: want the instance listed and the list said to be incomplete", list, err)
	}
	if out := logs.String(); !strings.Contains(out, "hasNextPage") || !strings.Contains(out, `"total":51`) {
		t.Errorf("log = %s", out)
	}
}

func TestQuirk5_2_14_CostTimeExtensionHasNoDocumentedCall(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	wantKind(t, p.Renew(t.Context(), "instance-abc", 3), providers.KindUnsupported, "datenfab documents no renew call")
	if len(srv.Requests()) != 0 {
		t.Error("renew sent a request")
	}
	if ok, why := p.Capabilities().Supports(providers.ActionRenew); ok || !strings.Contains(why, "no renew call") {
		t.Errorf("capabilities renew: %v %q", ok, why)
	}
	// An extension CostTime ("+3D") says nothing about the lease end.
	if e := leaseEnd(time.Now(), "+3D"); e != nil {
		t.Errorf("leaseEnd(+3D) = %v", e)
	}
}

func TestQuirk5_2_15_ZeroTimestampsAreUnset(t *testing.T) {
	var w wireInstance
	if err := json.Unmarshal(readTestdata(t, "detail_response.json"), &w); err != nil {
		t.Fatal(err)
	}
	if w.ScheduleStopTimestamp != "0001-01-01T00:00:00Z" {
		t.Fatalf("example ScheduleStopTimestamp = %q", w.ScheduleStopTimestamp)
	}
	in := New(Config{}).instanceOf(w, "host-cluster")
	if in.StopsAt != nil || in.ExpiresAt != nil {
		t.Errorf("StopsAt %v ExpiresAt %v", in.StopsAt, in.ExpiresAt)
	}
	want := time.Date(2024, 9, 2, 22, 15, 13, 0, time.FixedZone("", 8*3600))
	if in.CreatedAt == nil || !in.CreatedAt.Equal(want) {
		t.Errorf("CreatedAt = %v", in.CreatedAt)
	}
	p := New(Config{})
	if got := p.parseTime("2024-07-15T12:00:23.227+08:00"); got == nil || got.Nanosecond() != 227000000 {
		t.Errorf("fractional seconds: %v", got)
	}
	if p.parseTime("") != nil || p.parseTime("not a time") != nil {
		t.Error("empty or garbage time must be unset")
	}
}

func TestQuirk5_2_16_SKUQueryParameterIsSnakeCaseRegionID(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	if _, err := p.ListOffers(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := lastRequest(t, srv, "GET", "/skus/computings")
	if !strings.HasPrefix(r.RawQuery, "region_id=") {
		t.Errorf("query %q", r.RawQuery)
	}
	var skus []wireSKU
	if err := json.Unmarshal(readTestdata(t, "skus.json"), &skus); err != nil {
		t.Fatal(err)
	}
	if skus[0].RegionID != "14c5a9e3-0d09-4aa0-99d3-c096b80cceaa" {
		t.Errorf("regionID (camel case) not decoded: %+v", skus[0])
	}
}

func TestQuirk5_2_17_AuthorizationUsesLowercaseBearer(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	if _, err := p.ListOffers(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Requests() {
		if got := r.Header.Get("Authorization"); got != "bearer "+dftest.DemoToken {
			t.Errorf("Authorization = %q", got)
		}
	}
}
