package chenyu

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
)

// One test per quirk of vendor-api.md section 5.3 that the adapter meets.

func TestQuirk5_3_2_ServerURLStringsOrObjects(t *testing.T) {
	raw := `{"instance_uuid":"inst_1","status":2,"server_url":["https://a.example.invalid",{"url":"https://b.example.invalid","title":"B"},{},42,"ssh://c:22"]}`
	var w wireInstance
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		t.Fatal(err)
	}
	in := New(Config{APIKey: "k"}).instance(w, nil)
	want := []providers.WebURL{{Name: "service", URL: "https://a.example.invalid"}, {Name: "B", URL: "https://b.example.invalid"}}
	if in.Connection == nil || !slices.Equal(in.Connection.WebURLs, want) {
		t.Fatalf("web urls %+v, want %+v", in.Connection, want)
	}
}

func TestQuirk5_3_3_InstanceListIsPagedAlthoughDocumentedWithoutParams(t *testing.T) {
	e := setup(t, cytest.Options{})
	if _, err := e.p.ListInstances(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := e.srv.Requests()[0]
	if !strings.HasSuffix(r.Path, "/instance/list") || r.Query().Get("page") != "1" || r.Query().Get("page_size") != "50" {
		t.Fatalf("first request %s %v", r.Path, r.RawQuery)
	}
}

func TestQuirk5_3_3_PagingStopsOnALyingServer(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fresh    bool // every page brings new items
		requests int64
		items    int
	}{
		{"same page again and again", false, 1 + pagesAtOnce, 1},
		{"endless new pages", true, maxPages, maxPages},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				k := n.Add(1)
				id := "inst_same"
				if tc.fresh {
					id = fmt.Sprintf("inst_%d", k)
				}
				fmt.Fprintf(w, `{"code":0,"msg":"success","data":{"instance_list":[{"instance_uuid":%q,"status":2}],"total":100000}}`, id)
			}))
			defer srv.Close()
			buf := &syncBuffer{}
			p := New(Config{APIKey: "k", BaseURL: srv.URL, Logger: loggerTo(buf)})
			list, err := instancePages(t, p)
			if n.Load() != tc.requests || len(list) != tc.items {
				t.Fatalf("%d requests, %d instances", n.Load(), len(list))
			}
			// The server said 100,000: what was read is kept, and said to be incomplete.
			inc := providers.AsIncomplete(err)
			if inc == nil || inc.Listed != tc.items || inc.Total != 100000 || !strings.Contains(err.Error(), "100000") {
				t.Fatalf("a list cut short is not reported as such: %v", err)
			}
			if !strings.Contains(buf.String(), "cut short") {
				t.Fatalf("no warning for the list cut short: %s", buf.String())
			}
		})
	}
}

// instancePages lists instances without the GPU price lookup, so that a stub serving only
// instance pages can count them.
func instancePages(t *testing.T, p *Provider) ([]wireInstance, error) {
	return fetchAll(t.Context(), p, p.http, "/instance/list", "instance_list", "list instances", nil,
		func(w wireInstance) string { return w.InstanceUUID })
}

func TestQuirk5_3_4_StatusLegendIncomplete(t *testing.T) {
	p := New(Config{APIKey: "k"})
	for raw, want := range map[string]providers.State{
		"0": providers.StatePending, "1": providers.StatePending, "24": providers.StateStarting, "2": providers.StateRunning,
		"27": providers.StateRestarting, "3": providers.StateStopping, "21": providers.StateStopping,
		"4": providers.StateStopped, "22": providers.StateStopped, "23": providers.StateError,
		"99": providers.StateUnknown, "-1": providers.StateUnknown, "running": providers.StateUnknown, "": providers.StateUnknown,
	} {
		if got := p.state(raw); got != want {
			t.Errorf("status %q -> %s, want %s", raw, got, want)
		}
	}
	e := setup(t, cytest.Options{})
	e.srv.SetInstanceStatus(sample, 99)
	in := mustInstance(t, e, sample)
	if in.State != providers.StateUnknown || in.RawState != "99" {
		t.Fatalf("status 99: %s / %q", in.State, in.RawState)
	}
	if !strings.Contains(e.log.String(), "not known to gpu-mcp") {
		t.Fatal("unknown status not logged")
	}
}

func TestQuirk5_3_5_ChargingTypeNotGuessed(t *testing.T) {
	e := setup(t, cytest.Options{})
	if in := mustInstance(t, e, sample); in.Billing != "" {
		t.Fatalf("billing %q from an undocumented charging_type", in.Billing)
	}
}

func TestQuirk5_3_6_ShutdownTimeSentAsUnixSeconds(t *testing.T) {
	e := setup(t, cytest.Options{})
	at := e.clk.Now().Add(2 * time.Hour)
	if err := e.p.ScheduleStop(t.Context(), sample, at); err != nil {
		t.Fatal(err)
	}
	ps := posts(e.srv)
	var b map[string]any
	_ = json.Unmarshal(ps[len(ps)-1].Body, &b)
	if b["shutdown_time"] != float64(at.Unix()) || b["enable"] != true {
		t.Fatalf("body %s, want shutdown_time %d (absolute seconds) and enable true", ps[len(ps)-1].Body, at.Unix())
	}
	// A stop timer set elsewhere in minutes (the page's example: 60) is not shown as a time.
	p := New(Config{APIKey: "k"})
	for _, tc := range []struct {
		sr   string
		want bool
	}{
		{`{"shutdown_time":60,"enable":true}`, false},
		{`{"shutdown_time":1703232000,"enable":false}`, false},
		{`{"shutdown_time":1703232000,"enable":"1"}`, true},
		{`{"shutdown_time":"1703232000","enable":true}`, true},
	} {
		var w wireInstance
		if err := json.Unmarshal([]byte(`{"instance_uuid":"inst_1","status":2,"shutdown_regular":`+tc.sr+`}`), &w); err != nil {
			t.Fatal(err)
		}
		if got := p.instance(w, nil).StopsAt != nil; got != tc.want {
			t.Errorf("%s: StopsAt set %v, want %v", tc.sr, got, tc.want)
		}
	}
}

func TestQuirk5_3_7_SaveImageSendsNameAndRemarkAndNeedsRunning(t *testing.T) {
	e := setup(t, cytest.Options{})
	if _, err := e.p.SaveImage(t.Context(), sample, "my-env"); err != nil {
		t.Fatal(err)
	}
	var b map[string]string
	_ = json.Unmarshal(posts(e.srv)[0].Body, &b)
	if b["instance_uuid"] != sample || b["image_name"] != "my-env" || !strings.Contains(b["remark"], "gpu-mcp") {
		t.Fatalf("save body %v", b)
	}
	stopped := providers.Instance{ID: sample, State: providers.StateStopped, RawState: "22"}
	_, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionSaveImage, Instance: stopped, ImageName: "x"})
	wantKind(t, err, providers.KindConflict, "running")
}

func TestQuirk5_3_8_StopIsShutdownNotShutdownTimer(t *testing.T) {
	e := setup(t, cytest.Options{})
	if err := e.p.Stop(t.Context(), sample); err != nil {
		t.Fatal(err)
	}
	if got := paths(posts(e.srv)); got != "/api/open/v2/instance/shutdown" {
		t.Fatalf("stop sent %s", got)
	}
}

func TestQuirk5_3_9_CreateByPodWithoutAutoStart(t *testing.T) {
	e := setup(t, cytest.Options{})
	if _, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: "pod:" + podPyTorch + "@v2.0", GPUCount: 1}); err != nil {
		t.Fatal(err)
	}
	if body := string(posts(e.srv)[0].Body); strings.Contains(body, "auto_start") {
		t.Fatalf("create_by_pod body %s sends the undocumented auto_start", body)
	}
}

func TestQuirk5_3_11_IDFieldNamesPerResource(t *testing.T) {
	e := setup(t, cytest.Options{})
	res, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: "pod:" + podPyTorch + "@v2.0", GPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	var b map[string]any
	_ = json.Unmarshal(posts(e.srv)[0].Body, &b)
	keys := make([]string, 0, len(b))
	for k := range b {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// A Pod's "uuid" goes out as pod_uuid, an offer's gpu_uuid as gpu_uuid.
	if !slices.Equal(keys, []string{"gpu_nums", "gpu_uuid", "pod_tag", "pod_uuid"}) || b["pod_uuid"] != podPyTorch || b["pod_tag"] != "v2.0" {
		t.Fatalf("create_by_pod body %v", b)
	}
	if err := e.p.Destroy(t.Context(), res.InstanceID); err != nil {
		t.Fatal(err)
	}
	ps := posts(e.srv)
	if string(ps[len(ps)-1].Body) != fmt.Sprintf(`{"instance_uuid":%q}`, res.InstanceID) {
		t.Fatalf("destroy body %s", ps[len(ps)-1].Body)
	}
}

func TestQuirk5_3_12_ActionAnswerWithoutData(t *testing.T) {
	p := stub(t, 200, nil, `{"code":0,"msg":"启动成功"}`)
	for name, act := range map[string]func() error{
		"start":   func() error { return p.Start(t.Context(), "inst_1") },
		"stop":    func() error { return p.Stop(t.Context(), "inst_1") },
		"restart": func() error { return p.Restart(t.Context(), "inst_1") },
		"destroy": func() error { return p.Destroy(t.Context(), "inst_1") },
	} {
		if err := act(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestQuirk5_3_13_CodeNumberOrString(t *testing.T) {
	for _, code := range []string{`0`, `"0"`, `" 0 "`, `0.0`} {
		p := stub(t, 200, nil, `{"code":`+code+`,"msg":"success","data":{"balance":"12.5","card_balance":3}}`)
		b, err := p.Balance(t.Context())
		if err != nil || b.CNY != 12.5 || b.CreditCNY != 3 {
			t.Errorf("code %s: %+v, %v", code, b, err)
		}
	}
	for _, code := range []string{`"2"`, `2`} {
		p := stub(t, 200, nil, `{"code":`+code+`,"msg":"未登录"}`)
		_, err := p.Balance(t.Context())
		wantKind(t, err, providers.KindAuth)
	}
}

func TestQuirk5_3_14_ImageSizeUnits(t *testing.T) {
	e := setup(t, cytest.Options{})
	if _, err := e.p.SaveImage(t.Context(), sample, "sized"); err != nil {
		t.Fatal(err)
	}
	imgs, err := e.p.ListImages(t.Context(), providers.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[string]float64{}
	for _, im := range imgs {
		sizes[im.ID] = im.SizeGB
	}
	priv := e.srv.PrivateImages()[0]
	// Market: 14 GiB given in bytes; private: given in GB.
	if sizes[marketImg] != 14 || sizes[priv.UUID] != priv.SizeGB {
		t.Fatalf("market %v GB, private %v GB (emulator says %v)", sizes[marketImg], sizes[priv.UUID], priv.SizeGB)
	}
}

func TestQuirk5_3_15_RunTogetherLegend(t *testing.T) {
	// "2: 运行中21: 关机中22: 已关机24: 开机中27: 重启中1: 上传中2: 上传成功3: 上传失败"
	p := New(Config{APIKey: "k"})
	for raw, want := range map[string]providers.State{"2": providers.StateRunning, "21": providers.StateStopping,
		"22": providers.StateStopped, "24": providers.StateStarting, "27": providers.StateRestarting} {
		if got := p.state(raw); got != want {
			t.Errorf("status %s -> %s, want %s", raw, got, want)
		}
	}
	for s, want := range map[int]string{1: "saving", 2: "saved", 3: "failed"} {
		var w wireInstance
		_ = json.Unmarshal(fmt.Appendf(nil, `{"instance_uuid":"i","status":2,"save_image_status":%d}`, s), &w)
		if got := p.instance(w, nil); got.ImageSaveStatus != want || got.State != providers.StateRunning {
			t.Errorf("save_image_status %d -> %q (state %s), want %q and running", s, got.ImageSaveStatus, got.State, want)
		}
	}
}

func TestLongListsArePagedConcurrentlyAndACutListSaysSo(t *testing.T) {
	// 7 catalog models and 493 more: ten pages of 50. Page 2 is answered only once page 3 has
	// been asked for too, which only a client that asks for pages together does (one that
	// asks one after another makes page 2 wait for the fallback and is caught).
	third := make(chan struct{})
	var together atomic.Bool
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Query().Get("page") {
			case "2":
				select {
				case <-third:
					together.Store(true)
				case <-time.After(5 * time.Second):
				}
			case "3":
				close(third)
			}
			h.ServeHTTP(w, r)
		})
	}
	e := setup(t, cytest.Options{ExtraGPUModels: 493, Wrap: wrap})
	offers, err := e.p.ListOffers(t.Context())
	if err != nil || len(offers) != 500 {
		t.Fatalf("%d offers, %v", len(offers), err)
	}
	pages := map[string]bool{}
	for _, r := range e.srv.Requests() {
		pages[r.Query().Get("page")] = true
	}
	if len(pages) != 10 || !together.Load() {
		t.Fatalf("pages asked: %v; pages 2 and 3 together: %v", pages, together.Load())
	}

	// Past maxPages pages: the first 5,000 models, and an error that says how many exist.
	e = setup(t, cytest.Options{ExtraGPUModels: maxPages*pageSize + 93})
	offers, err = e.p.ListOffers(t.Context())
	inc := providers.AsIncomplete(err)
	if len(offers) != maxPages*pageSize || inc == nil || inc.Listed != maxPages*pageSize || inc.Total != maxPages*pageSize+100 {
		t.Fatalf("%d offers, %v", len(offers), err)
	}
	if !strings.Contains(err.Error(), "only 5000 of 5100 read") {
		t.Fatalf("the error does not say what is missing: %v", err)
	}
}
