package huixingyun_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// One test per quirk of vendor-api.md 5.1 that the adapter handles against a server; the
// pure decoding quirks (5.1.2, 5.1.3, 5.1.4, 5.1.9, 5.1.10, 5.1.13, 5.1.8's two order_uid
// places) are in wire_test.go.

// 5.1.1: ints go out as strings by default, as numbers when configured; the emulator takes both.
func TestQuirk_5_1_1_BuyIntsAsStringsOrNumbers(t *testing.T) {
	for _, asNumbers := range []bool{false, true} {
		e := setup(t, hxytest.Options{}, func(c *huixingyun.Config) { c.IntsAsNumbers = asNumbers })
		gid := e.launch(t, offer4090, 2, providers.BillingDaily)
		if err := e.p.Renew(e.ctx, gid, 3); err != nil {
			t.Fatal(err)
		}
		for _, r := range e.srv.Requests() {
			if r.Path != "/gpu/instances/buy" && r.Path != "/gpu/instances/renew" {
				continue
			}
			var body map[string]any
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"num", "gpu_count", "pay_unit", "pay_period"} {
				v, ok := body[k]
				if !ok {
					continue
				}
				_, isString := v.(string)
				_, isNumber := v.(float64)
				if (asNumbers && !isNumber) || (!asNumbers && !isString) {
					t.Errorf("IntsAsNumbers=%v: %s %s = %#v", asNumbers, r.Path, k, v)
				}
			}
			if r.Path == "/gpu/instances/buy" && !asNumbers && string(r.Body) != `{"image_id":"`+body["image_id"].(string)+`","num":"1","gpu_type":"`+offer4090+`","gpu_count":"2","pay_unit":"1","room_name":"106"}` {
				t.Errorf("buy body %s", r.Body)
			}
		}
	}
}

// 5.1.5: the Authorization header is the bare token: no Bearer, no quotes.
func TestQuirk_5_1_5_BareTokenAuthorizationHeader(t *testing.T) {
	f, p := newFake(t, map[string]fakeAnswer{"/gpu/product/list": {200, `{"items":[],"total_items":0}`}})
	if _, err := p.ListOffers(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.headers[0].Get("Authorization"); got != "fake-token-123" {
		t.Errorf("Authorization = %q, want the bare token", got)
	}
	if ct := f.headers[0].Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	// The emulator checks the header exactly as documented.
	srv := hxytest.NewServer(hxytest.Options{})
	defer srv.Close()
	for _, h := range []string{"Bearer " + srv.Credential(), `"` + srv.Credential() + `"`} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL()+"/gpu/product/list", strings.NewReader("{}"))
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", h, resp.StatusCode)
		}
	}
}

// 5.1.6: the start endpoints have no documented method; like every other endpoint they get
// a POST, and the no-parameter endpoints get an empty JSON object.
func TestQuirk_5_1_6_EveryCallIsAPostWithAJSONBody(t *testing.T) {
	e := setup(t, hxytest.Options{})
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Start(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	sawStart := false
	for _, r := range e.srv.Requests() {
		if r.Method != http.MethodPost {
			t.Errorf("%s %s", r.Method, r.Path)
		}
		if !json.Valid(r.Body) || !strings.HasPrefix(string(r.Body), "{") {
			t.Errorf("%s body %q", r.Path, r.Body)
		}
		if r.Path == "/gpu/product/list" && string(r.Body) != "{}" {
			t.Errorf("no-parameter body %q", r.Body)
		}
		sawStart = sawStart || r.Path == "/gpu/instances/start"
	}
	if !sawStart {
		t.Error("no start request")
	}
}

// 5.1.7: two start endpoints, chosen by how the instance was stopped.
func TestQuirk_5_1_7_StartUsesTheEndpointOfTheStopMode(t *testing.T) {
	e := setup(t, hxytest.Options{})
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	if err := e.p.StopCardless(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if rec, _ := e.srv.Instance(gid); rec.StopMode != hxytest.StopCardless || rec.Status != hxytest.StatusStopped {
		t.Fatalf("after card-less stop: %+v", rec)
	}
	var stopBody map[string]any
	reqs := e.srv.Requests()
	_ = json.Unmarshal(reqs[len(reqs)-1].Body, &stopBody)
	if stopBody["card_less"] != true {
		t.Errorf("stop body %v", stopBody)
	}
	from := len(e.srv.Requests())
	if err := e.p.Start(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if got := e.paths(from); len(got) != 1 || got[0] != "/gpu/instances/cardless/start" {
		t.Errorf("start sent %v, want only the card-less start", got)
	}
	if s := e.status(t, gid); s != hxytest.StatusRunning {
		t.Errorf("status %s", s)
	}
}

func TestQuirk_5_1_7_StartFallsBackToTheOtherEndpointOnce(t *testing.T) {
	e := setup(t, hxytest.Options{})
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	if err := e.p.StopCardless(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	fresh := e.newProvider() // does not know how the instance was stopped
	from := len(e.srv.Requests())
	if err := fresh.Start(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	got := e.paths(from)
	if len(got) != 2 || got[0] != "/gpu/instances/start" || got[1] != "/gpu/instances/cardless/start" {
		t.Errorf("start sent %v", got)
	}
	if s := e.status(t, gid); s != hxytest.StatusRunning {
		t.Errorf("status %s", s)
	}

	// Both refuse (the instance is running): both refusals are reported.
	from = len(e.srv.Requests())
	err := fresh.Start(e.ctx, gid)
	wantKind(t, err, providers.KindRejected, "both start endpoints failed", "/gpu/instances/start:", "/gpu/instances/cardless/start:", "only a Stopped instance")
	if n := len(e.paths(from)); n != 2 {
		t.Errorf("%d requests, want exactly 2", n)
	}
}

func TestQuirk_5_1_7_NoFallbackWhenTheOutcomeIsUnknown(t *testing.T) {
	f, p := newFake(t, map[string]fakeAnswer{"/gpu/instances/start": {503, ""}})
	err := p.Start(context.Background(), "gpu-106a")
	wantKind(t, err, providers.KindUnknown)
	if f.count("/gpu/instances/cardless/start") != 0 || f.count("/gpu/instances/start") != 1 {
		t.Errorf("calls %v", f.calls)
	}
}

// 5.1.8: the buy answers with an order number only; the instance is found by order_uid, or
// the order alone is returned when the instance is not listed yet.
func TestQuirk_5_1_8_BuyReturnsOrderOnly(t *testing.T) {
	e := setup(t, hxytest.Options{})
	res, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offer4090, ImageID: e.publicImage(t, offer4090)})
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := e.srv.Instance(res.InstanceID)
	if !ok || rec.OrderUID != res.OrderID || res.Instance.OrderID != res.OrderID {
		t.Errorf("result %+v, record %+v", res, rec)
	}

	f, p := newFake(t, map[string]fakeAnswer{
		"/gpu/product/list":   {200, `{"items":[{"gpu_type":"t_106","room_name":"106","gpu_remain":"2"}],"total_items":1}`},
		"/gpu/instances/buy":  {200, `{"success_instance":1,"fail_instance":0,"success":[{"order_uid":"20240705173xxxx20674"}],"fails":[]}`},
		"/gpu/instances/list": {200, `{"items":[{"gid":"gpu-106other","order_uid":"older"}],"total":"1"}`},
	})
	res, err = p.Launch(context.Background(), providers.LaunchSpec{OfferID: "t_106", ImageID: "img-1", GPUCount: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.OrderID != "20240705173xxxx20674" || res.InstanceID != "" || res.Instance != nil {
		t.Errorf("not yet listed: %+v", res)
	}
	if b := f.body(1); b["room_name"] != "106" || b["gpu_count"] != "2" || b["num"] != "1" || b["pay_unit"] != "4" || b["image_id"] != "img-1" {
		t.Errorf("buy body %v", b)
	}
}

// 5.1.11: app items may lack the product fields; "app:<type>" images launch through
// /gpu/application/buy, and an app that names its gpu_type is held to it.
func TestQuirk_5_1_11_AppsWithAndWithoutProductFields(t *testing.T) {
	e := setup(t, hxytest.Options{})
	imgs, err := e.p.ListImages(e.ctx, providers.ImageQuery{OfferID: offer4090})
	if err != nil {
		t.Fatal(err)
	}
	var app providers.Image
	for _, im := range imgs {
		if im.ID == "app:comfyui" {
			app = im
		}
	}
	if app.Kind != providers.ImageApp || app.Name != "ComfyUI" || !strings.Contains(app.Description, "chooses its machine") {
		t.Fatalf("app image %+v", app)
	}
	from := len(e.srv.Requests())
	res, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offer4090, ImageID: app.ID, Billing: providers.BillingHourly})
	if err != nil {
		t.Fatal(err)
	}
	var buy []byte
	for _, r := range e.srv.Requests()[from:] {
		if r.Path == "/gpu/application/buy" {
			buy = r.Body
		}
	}
	if string(buy) != `{"num":"1","pay_unit":"4","app_type":"comfyui"}` {
		t.Errorf("app buy body %s", buy)
	}
	rec, ok := e.srv.Instance(res.InstanceID)
	if !ok || rec.AppType != "comfyui" {
		t.Errorf("app instance %+v", rec)
	}

	_, p := newFake(t, map[string]fakeAnswer{
		"/gpu/application/list": {200, `{"items":[{"app_type":"sd-webui","title":"SD","gpu_type":"g_105","room_name":"105","name":"NVIDIA 4090"}],"total_items":1}`},
		"/gpu/product/list":     {200, `{"items":[{"gpu_type":"g_105","room_name":"105","gpu_remain":1},{"gpu_type":"h_106","room_name":"106","gpu_remain":1}],"total_items":2}`},
		"/gpu/images/list":      {200, `{"items":[],"total_items":0}`},
		"/gpu/images/mine":      {200, `{"items":[],"total_items":0}`},
	})
	imgs, err = p.ListImages(context.Background(), providers.ImageQuery{OfferID: "h_106"})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range imgs {
		if im.Kind == providers.ImageApp {
			t.Errorf("app of g_105 offered for h_106: %+v", im)
		}
	}
	imgs, _ = p.ListImages(context.Background(), providers.ImageQuery{OfferID: "g_105"})
	if len(imgs) != 1 || imgs[0].Region != "105" || !strings.Contains(imgs[0].Description, "runs on g_105") {
		t.Errorf("app images for g_105: %+v", imgs)
	}
	_, err = p.Launch(context.Background(), providers.LaunchSpec{OfferID: "h_106", ImageID: "app:sd-webui"})
	wantKind(t, err, providers.KindInvalid, "runs on g_105", "huixingyun:g_105")
}

// 5.1.12: the snapshot path is singular and takes one gid; its answer {"success":true} (or a
// batch shape) is accepted, {"success":false} is a refusal.
func TestQuirk_5_1_12_SnapshotSingularPathAndAnswers(t *testing.T) {
	list := `{"items":[{"gid":"gpu-105a","room_name":"105","status":"Running"}],"total":"1"}`
	cases := []struct {
		name, answer string
		kind         providers.ErrorKind
	}{
		{"success true", `{"success":true}`, ""},
		{"batch shape", `{"success":["gpu-105a"],"fails":[]}`, ""},
		{"success false", `{"success":false,"message":"磁盘过大"}`, providers.KindRejected},
		{"gid in fails", `{"success":[],"fails":[{"gid":"gpu-105a","message":"busy"}]}`, providers.KindRejected},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, p := newFake(t, map[string]fakeAnswer{
				"/gpu/instances/list":    {200, list},
				"/gpu/images/mine":       {200, `{"items":[],"total_items":0}`},
				"/gpu/instance/snapshot": {200, c.answer},
			})
			_, err := p.SaveImage(context.Background(), "gpu-105a", "img")
			if c.kind == "" && err != nil {
				t.Fatal(err)
			}
			if c.kind != "" {
				wantKind(t, err, c.kind)
			}
			if f.count("/gpu/instance/snapshot") != 1 || f.count("/gpu/instances/snapshot") != 0 {
				t.Errorf("calls %v", f.calls)
			}
			for i, call := range f.calls {
				if strings.HasSuffix(call, "/gpu/instance/snapshot") {
					if b := f.body(i); b["gid"] != "gpu-105a" || b["name"] != "img" {
						t.Errorf("snapshot body %v", b)
					}
				}
			}
		})
	}
	if _, err := (&huixingyun.Provider{}).SaveImage(context.Background(), "gpu-1,gpu-2", "x"); providers.KindOf(err) != providers.KindInvalid {
		t.Errorf("several gids: %v", err)
	}
}

// 5.1.14: no get-one endpoint and no error format: GetInstance filters the list; error
// bodies of any shape give a message.
func TestQuirk_5_1_14_NoGetEndpointAndUnknownErrorFormat(t *testing.T) {
	f, p := newFake(t, map[string]fakeAnswer{
		"/gpu/instances/list": {200, `{"items":[{"gid":"gpu-105a","status":"Running"},{"gid":"gpu-105b","status":"Stopped"}],"total":"2"}`},
	})
	in, err := p.GetInstance(context.Background(), "gpu-105b")
	if err != nil || in.ID != "gpu-105b" || in.State != providers.StateStopped {
		t.Fatalf("%+v %v", in, err)
	}
	if f.count("/gpu/instances/list") != 1 {
		t.Errorf("calls %v", f.calls)
	}
	_, err = p.GetInstance(context.Background(), "gpu-105c")
	wantKind(t, err, providers.KindNotFound, "gpu-105c")

	bodies := []struct {
		status int
		body   string
		kind   providers.ErrorKind
		want   string
	}{
		{400, `{"message":"参数错误"}`, providers.KindInvalid, "HTTP 400: 参数错误"},
		{400, `{"code":1001,"msg":"余额不足"}`, providers.KindInvalid, "余额不足"},
		{403, `forbidden`, providers.KindAuth, "forbidden"},
		{500, ``, providers.KindUnavailable, "HTTP 500"},
		{200, `not json`, providers.KindUnavailable, "unreadable answer"},
	}
	for _, b := range bodies {
		_, p := newFake(t, map[string]fakeAnswer{"/gpu/product/list": {b.status, b.body}})
		_, err := p.ListOffers(context.Background())
		wantKind(t, err, b.kind, b.want)
	}
}
