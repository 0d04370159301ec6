package chenyu

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

func TestNameAndCapabilities(t *testing.T) {
	p := New(Config{APIKey: "k"})
	if p.Name() != "chenyu" {
		t.Fatalf("name %q", p.Name())
	}
	if p.http.BaseURL != DefaultBaseURL {
		t.Fatalf("default base URL %q", p.http.BaseURL)
	}
	c := p.Capabilities()
	if ok, why := c.Supports(providers.ActionRenew); ok || !strings.Contains(why, "no renew call") {
		t.Fatalf("renew: supported=%v why=%q", ok, why)
	}
	for _, a := range []providers.Action{providers.ActionStart, providers.ActionStop, providers.ActionRestart, providers.ActionSaveImage, providers.ActionDestroy} {
		if ok, _ := c.Supports(a); !ok {
			t.Errorf("%s unsupported", a)
		}
	}
	if !slices.Equal(c.Billing, []providers.BillingMode{providers.BillingHourly}) || !c.SaveImageStops || !c.PublishesPrices {
		t.Fatalf("capabilities %+v", c)
	}
	notes := strings.Join(c.Notes, " ")
	for _, f := range []string{"by the hour only", "per GPU", "stop it first", "Unix time"} {
		if !strings.Contains(notes, f) {
			t.Errorf("notes lack %q", f)
		}
	}
	err := p.Renew(t.Context(), "inst_x", 1)
	wantKind(t, err, providers.KindUnsupported, "no renew call")
}

func TestListOffers(t *testing.T) {
	e := setup(t, cytest.Options{})
	offers, err := e.p.ListOffers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 7 {
		t.Fatalf("%d offers, want 7", len(offers))
	}
	byID := map[string]providers.Offer{}
	for _, o := range offers {
		byID[o.ID] = o
		if o.Provider != Name || !strings.HasPrefix(o.ID, "gpu_") || o.Region != "" {
			t.Fatalf("offer %+v", o)
		}
		if !slices.Equal(o.GPUCounts, []int{1, 2, 4, 8}) || !slices.Equal(o.Billing, []providers.BillingMode{providers.BillingHourly}) {
			t.Fatalf("offer %s counts %v billing %v", o.ID, o.GPUCounts, o.Billing)
		}
	}
	o := byID[gpu4090]
	if o.GPUModel != "NVIDIA RTX 4090" || o.PricePerGPUHour == nil || *o.PricePerGPUHour != 5.50 || !o.Available {
		t.Fatalf("4090 offer %+v", o)
	}
	want := []providers.Price{{Billing: "hourly", CNY: 5.5}, {Billing: "daily", CNY: 120}, {Billing: "weekly", CNY: 800}, {Billing: "monthly", CNY: 3200}}
	if !slices.Equal(o.Prices, want) {
		t.Fatalf("4090 prices %+v", o.Prices)
	}
	if !strings.Contains(o.Notes, "per GPU") || !strings.Contains(o.Notes, "yearly 35000.00") {
		t.Fatalf("4090 notes %q", o.Notes)
	}
	if o := byID[gpu3080]; o.Available || !strings.Contains(o.Notes, "status 0") {
		t.Fatalf("3080 (status 0) offer %+v", o)
	}
	if o := byID[gpuA100]; o.VRAMGB != 80 {
		t.Fatalf("A100 80G vram %d", o.VRAMGB)
	}
	if o := byID[gpu4090]; o.VRAMGB != 24 {
		t.Fatalf("4090 vram %d: an RTX 4090 has 24 GB", o.VRAMGB)
	}
	if o := byID["gpu_6d3f8b54-ae70-4b12-8d4e-5f6a7b8c9d0e"]; len(o.Prices) != 1 || o.Prices[0].Billing != providers.BillingHourly {
		t.Fatalf("hour-only offer prices %+v", o.Prices)
	}
	if p := posts(e.srv); len(p) != 0 {
		t.Fatalf("listing offers sent %s", paths(p))
	}
}

func TestListImages(t *testing.T) {
	e := setup(t, cytest.Options{})
	imgs, err := e.p.ListImages(t.Context(), providers.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]providers.Image{}
	kinds := map[providers.ImageKind]int{}
	for _, im := range imgs {
		byID[im.ID] = im
		kinds[im.Kind]++
		if im.Provider != Name || im.ID == "" || strings.Contains(im.ID, "chenyu") {
			t.Fatalf("image %+v", im)
		}
	}
	// 5 market images; 4 pods: 4 "latest" + 2 + 2 + 1 tags; no private image yet.
	if kinds[providers.ImagePublic] != 5 || kinds[providers.ImageApp] != 9 || kinds[providers.ImagePrivate] != 0 {
		t.Fatalf("kinds %v", kinds)
	}
	m := byID[marketImg]
	if m.Name != "PyTorch 2.1 / CUDA 11.8 / Python 3.10 / Ubuntu 22.04" || m.SizeGB != 14 || m.CreatedAt == nil {
		t.Fatalf("market image %+v", m)
	}
	if im, ok := byID["pod:"+podComfy]; !ok || im.Name != "ComfyUI (latest)" || !strings.Contains(im.Description, "0.50 CNY/hour") {
		t.Fatalf("pod image %+v", im)
	}
	if im, ok := byID["pod:"+podComfy+"@v0.3.27"]; !ok || im.Name != "ComfyUI v0.3.27" || im.Kind != providers.ImageApp {
		t.Fatalf("tagged pod image %+v", im)
	}
	var market *emulated.Recorded
	for _, r := range e.srv.Requests() {
		if strings.HasSuffix(r.Path, "/image/market/list") {
			market = &r
		}
	}
	if market == nil || market.Header.Get("Authorization") != "" {
		t.Fatalf("market list request %+v: must be sent, without the key", market)
	}
}

func TestListInstancesSample(t *testing.T) {
	e := setup(t, cytest.Options{})
	list, err := e.p.ListInstances(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d instances", len(list))
	}
	in := list[0]
	if in.ID != sample || in.Provider != Name || in.Name != "我的PyTorch实例" || in.State != providers.StateRunning || in.RawState != "2" {
		t.Fatalf("instance %+v", in)
	}
	if in.GPUModel != "NVIDIA RTX 4090" || in.GPUCount != 1 || in.PricePerHour == nil || *in.PricePerHour != 5.5 {
		t.Fatalf("gpu/price %+v", in)
	}
	if in.Image != "PyTorch 2.0 环境 (v2.0)" || in.ImageSaveStatus != "saved" || in.CreatedAt == nil || in.CreatedAt.Unix() != 1703145600 {
		t.Fatalf("image/times %+v", in)
	}
	c := in.Connection
	if c == nil || c.SSHHost != "127.0.0.1" || c.SSHPort <= 0 || c.SSHUser != "root" || c.SSHPassword == "" {
		t.Fatalf("connection %+v", c)
	}
	if c.SSHCommand != fmt.Sprintf("ssh -p %d root@127.0.0.1", c.SSHPort) {
		t.Fatalf("ssh command %q", c.SSHCommand)
	}
	if len(c.WebURLs) != 2 || c.WebURLs[0].Name != "Jupyter Lab" || !strings.HasPrefix(c.WebURLs[1].URL, "https://ssh-") {
		t.Fatalf("web urls %+v", c.WebURLs)
	}
}

func TestListInstancesFetchesAllPages(t *testing.T) {
	e := setup(t, cytest.Options{})
	for i := 0; i < 54; i++ {
		if _, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := e.p.ListInstances(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 55 {
		t.Fatalf("%d instances, want 55 over two pages", len(list))
	}
	var pages []string
	for _, r := range e.srv.Requests() {
		if strings.HasSuffix(r.Path, "/instance/list") {
			pages = append(pages, r.Query().Get("page")+"/"+r.Query().Get("page_size"))
		}
	}
	if strings.Join(pages, " ") != "1/50 2/50" {
		t.Fatalf("pages requested %v", pages)
	}
}

func TestGetInstanceNotFound(t *testing.T) {
	e := setup(t, cytest.Options{})
	_, err := e.p.GetInstance(t.Context(), "inst_nope")
	wantKind(t, err, providers.KindNotFound, "inst_nope", "not found")
	_, err = e.p.GetInstance(t.Context(), "inst x?y")
	wantKind(t, err, providers.KindInvalid, "malformed")
}

func TestLaunchByImageAndName(t *testing.T) {
	e := setup(t, cytest.Options{})
	res, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 2, Billing: providers.BillingHourly, Name: "train-1"})
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceID == "" || res.Instance == nil || res.Instance.ID != res.InstanceID || res.Instance.State != providers.StatePending || res.Instance.RawState != "1" {
		t.Fatalf("result %+v / %+v", res, res.Instance)
	}
	if res.Instance.Name != "train-1" {
		t.Fatalf("name %q", res.Instance.Name)
	}
	ps := posts(e.srv)
	if paths(ps) != "/api/open/v2/instance/create_by_image /api/open/v2/instance/update_title" {
		t.Fatalf("posts %s", paths(ps))
	}
	var body map[string]any
	_ = json.Unmarshal(ps[0].Body, &body)
	if body["image_uuid"] != marketImg || body["gpu_uuid"] != gpu4090 || body["gpu_nums"] != float64(2) || len(body) != 3 {
		t.Fatalf("create body %s", ps[0].Body)
	}
	st, _ := e.srv.Instance(res.InstanceID)
	if st.Title != "train-1" || st.GPUNums != 2 {
		t.Fatalf("emulator instance %+v", st)
	}
	// StepDelay 0: the next read shows it running.
	if in := mustInstance(t, e, res.InstanceID); in.State != providers.StateRunning || in.Name != "train-1" || *in.PricePerHour != 11 {
		t.Fatalf("after create %+v", in)
	}
}

func TestLaunchByPod(t *testing.T) {
	for _, tc := range []struct {
		image, wantTag string
		tagSent        bool
	}{
		{"pod:" + podComfy, "v0.3.27", false},
		{"pod:" + podComfy + "@v0.3.10", "v0.3.10", true},
	} {
		t.Run(tc.image, func(t *testing.T) {
			e := setup(t, cytest.Options{})
			res, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: tc.image, GPUCount: 1})
			if err != nil {
				t.Fatal(err)
			}
			ps := posts(e.srv)
			if len(ps) != 1 || !strings.HasSuffix(ps[0].Path, "/instance/create_by_pod") {
				t.Fatalf("posts %s", paths(ps))
			}
			var body map[string]any
			_ = json.Unmarshal(ps[0].Body, &body)
			_, hasTag := body["pod_tag"]
			if body["pod_uuid"] != podComfy || hasTag != tc.tagSent || body["gpu_nums"] != float64(1) {
				t.Fatalf("create_by_pod body %s", ps[0].Body)
			}
			st, _ := e.srv.Instance(res.InstanceID)
			if st.PodTag != tc.wantTag || st.ImageUUID != podComfy {
				t.Fatalf("emulator instance %+v", st)
			}
			in := mustInstance(t, e, res.InstanceID)
			var apps []string
			for _, w := range in.Connection.WebURLs {
				apps = append(apps, w.Name)
			}
			if !slices.Contains(apps, "ComfyUI") {
				t.Fatalf("web urls %v", apps)
			}
		})
	}
}

func TestLaunchRefusals(t *testing.T) {
	e := setup(t, cytest.Options{})
	for _, tc := range []struct {
		name string
		spec providers.LaunchSpec
		kind providers.ErrorKind
		frag string
	}{
		{"gpu count 3", providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 3}, providers.KindInvalid, "1, 2, 4 or 8"},
		{"gpu count 0", providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg}, providers.KindInvalid, "1, 2, 4 or 8"},
		{"monthly", providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1, Billing: providers.BillingMonthly, Periods: 1}, providers.KindInvalid, "by the hour only"},
		{"no image", providers.LaunchSpec{OfferID: gpu4090, GPUCount: 1}, providers.KindInvalid, "no image"},
		{"empty pod", providers.LaunchSpec{OfferID: gpu4090, ImageID: "pod:", GPUCount: 1}, providers.KindInvalid, "malformed Pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.p.Launch(t.Context(), tc.spec)
			wantKind(t, err, tc.kind, tc.frag)
		})
	}
	if ps := posts(e.srv); len(ps) != 0 {
		t.Fatalf("refused launches reached chenyu: %s", paths(ps))
	}
	// Refusals by Chenyu itself.
	for _, tc := range []struct {
		name string
		spec providers.LaunchSpec
		kind providers.ErrorKind
		frag string
	}{
		{"sold out", providers.LaunchSpec{OfferID: gpu3080, ImageID: marketImg, GPUCount: 1}, providers.KindRejected, "not enough free"},
		{"unknown image", providers.LaunchSpec{OfferID: gpu4090, ImageID: "img_nope", GPUCount: 1}, providers.KindNotFound, "not found"},
		{"unknown pod tag", providers.LaunchSpec{OfferID: gpu4090, ImageID: "pod:" + podPyTorch + "@v9", GPUCount: 1}, providers.KindNotFound, "no version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.p.Launch(t.Context(), tc.spec)
			wantKind(t, err, tc.kind, tc.frag)
		})
	}
}

func TestLaunchTitleFailureKeepsInstance(t *testing.T) {
	e := setup(t, cytest.Options{})
	long := strings.Repeat("n", 60) // the emulator refuses titles over 50 characters
	res, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1, Name: long})
	if err != nil {
		t.Fatalf("launch failed because naming failed: %v", err)
	}
	if res.InstanceID == "" || res.Instance == nil || res.Instance.Name == long {
		t.Fatalf("result %+v", res)
	}
	if _, ok := e.srv.Instance(res.InstanceID); !ok {
		t.Fatal("instance not created")
	}
	if !strings.Contains(e.log.String(), "naming it failed") || !strings.Contains(e.log.String(), `"level":"warn"`) {
		t.Fatalf("no warning logged: %s", e.log.String())
	}
}

func TestLifecycle(t *testing.T) {
	e := setup(t, cytest.Options{StepDelay: time.Minute})
	ctx := t.Context()
	res, err := e.p.Launch(ctx, providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := res.InstanceID
	step := func(action func() error, during, after providers.State) {
		t.Helper()
		if action != nil {
			if err := action(); err != nil {
				t.Fatal(err)
			}
		}
		if in := mustInstance(t, e, id); in.State != during {
			t.Fatalf("state %s (%s), want %s", in.State, in.RawState, during)
		}
		e.clk.Add(time.Minute)
		if in := mustInstance(t, e, id); in.State != after {
			t.Fatalf("state %s (%s), want %s", in.State, in.RawState, after)
		}
	}
	step(nil, providers.StatePending, providers.StateRunning)
	step(func() error { return e.p.Stop(ctx, id) }, providers.StateStopping, providers.StateStopped)
	step(func() error { return e.p.Start(ctx, id) }, providers.StateStarting, providers.StateRunning)
	step(func() error { return e.p.Restart(ctx, id) }, providers.StateRestarting, providers.StateRunning)
	step(func() error { return e.p.Stop(ctx, id) }, providers.StateStopping, providers.StateStopped)
	if err := e.p.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.srv.Instance(id); ok {
		t.Fatal("destroyed instance still exists")
	}
	want := "create_by_image shutdown startup restart shutdown destroy"
	var got []string
	for _, r := range posts(e.srv) {
		got = append(got, r.Path[strings.LastIndex(r.Path, "/")+1:])
		var b map[string]any
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatalf("body %s", r.Body)
		}
		if !strings.HasSuffix(r.Path, "create_by_image") && (b["instance_uuid"] != id || len(b) != 1) {
			t.Fatalf("%s body %s", r.Path, r.Body)
		}
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("posts %v", got)
	}
}

func TestWrongStateIsConflict(t *testing.T) {
	e := setup(t, cytest.Options{})
	err := e.p.Start(t.Context(), sample) // running
	wantKind(t, err, providers.KindConflict, "state")
	err = e.p.Stop(t.Context(), "inst_nope")
	wantKind(t, err, providers.KindNotFound, "not found")
}

func TestStartWith(t *testing.T) {
	e := setup(t, cytest.Options{})
	ctx := t.Context()
	if err := e.p.Stop(ctx, sample); err != nil {
		t.Fatal(err)
	}
	err := e.p.StartWith(ctx, sample, gpuA100, 3)
	wantKind(t, err, providers.KindInvalid, "1, 2, 4 or 8")
	if err := e.p.StartWith(ctx, sample, gpuA100, 2); err != nil {
		t.Fatal(err)
	}
	in := mustInstance(t, e, sample)
	if in.State != providers.StateRunning || in.GPUModel != "NVIDIA A100 80G" || in.GPUCount != 2 || *in.PricePerHour != 19.6 {
		t.Fatalf("after StartWith %+v", in)
	}
	ps := posts(e.srv)
	if last := ps[len(ps)-1]; string(last.Body) != fmt.Sprintf(`{"instance_uuid":%q,"gpu_uuid":%q,"gpu_nums":2}`, sample, gpuA100) {
		t.Fatalf("startup body %s", last.Body)
	}
	if start := ps[len(ps)-2]; strings.HasSuffix(start.Path, "startup") {
		t.Fatal("the refused StartWith reached chenyu")
	}
}

func TestSaveImage(t *testing.T) {
	e := setup(t, cytest.Options{StepDelay: time.Minute})
	ctx := t.Context()
	ref, err := e.p.SaveImage(ctx, sample, "snap-1")
	if err != nil {
		t.Fatal(err)
	}
	imgs := e.srv.PrivateImages()
	if len(imgs) != 1 || ref != imgs[0].UUID || imgs[0].Title != "snap-1" {
		t.Fatalf("ref %q, images %+v", ref, imgs)
	}
	in := mustInstance(t, e, sample)
	if in.State != providers.StateRunning || in.ImageSaveStatus != "saving" {
		t.Fatalf("while saving: state %s, save %q (Chenyu has no saving state)", in.State, in.ImageSaveStatus)
	}
	list, err := e.p.ListImages(ctx, providers.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var priv []providers.Image
	for _, im := range list {
		if im.Kind == providers.ImagePrivate {
			priv = append(priv, im)
		}
	}
	if len(priv) != 1 || priv[0].ID != ref || priv[0].Status != "saving" || priv[0].Name != "snap-1" {
		t.Fatalf("private images %+v", priv)
	}
	e.clk.Add(time.Minute)
	in = mustInstance(t, e, sample)
	if in.State != providers.StateStopping || in.ImageSaveStatus != "saved" {
		t.Fatalf("saved: state %s, save %q", in.State, in.ImageSaveStatus)
	}
	e.clk.Add(time.Minute)
	if in = mustInstance(t, e, sample); in.State != providers.StateStopped {
		t.Fatalf("after save: %s", in.State)
	}
	_, err = e.p.SaveImage(ctx, sample, "snap-2")
	wantKind(t, err, providers.KindConflict, "state")
	if err := e.p.Start(ctx, sample); err != nil {
		t.Fatal(err)
	}
	e.clk.Add(time.Minute)
	_, err = e.p.SaveImage(ctx, sample, "snap-1")
	wantKind(t, err, providers.KindConflict, "already exists")
}

func TestScheduleStop(t *testing.T) {
	e := setup(t, cytest.Options{})
	ctx := t.Context()
	at := e.clk.Now().Add(30 * time.Minute)
	if err := e.p.ScheduleStop(ctx, sample, at); err != nil {
		t.Fatal(err)
	}
	st, _ := e.srv.Instance(sample)
	if !st.ShutdownEnabled || st.ShutdownTime != at.Unix() {
		t.Fatalf("emulator timer %+v", st)
	}
	in := mustInstance(t, e, sample)
	if in.StopsAt == nil || !in.StopsAt.Equal(at) {
		t.Fatalf("StopsAt %v, want %v", in.StopsAt, at)
	}
	if err := e.p.ScheduleStop(ctx, sample, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.srv.Instance(sample); st.ShutdownEnabled {
		t.Fatalf("timer not cancelled: %+v", st)
	}
	last := posts(e.srv)[len(posts(e.srv))-1]
	if string(last.Body) != fmt.Sprintf(`{"instance_uuid":%q,"enable":false,"shutdown_time":0}`, sample) {
		t.Fatalf("cancel body %s", last.Body)
	}
	before := len(posts(e.srv))
	err := e.p.ScheduleStop(ctx, sample, e.clk.Now().Add(2*time.Minute))
	wantKind(t, err, providers.KindInvalid, "5 minutes")
	if err := e.p.Stop(ctx, sample); err != nil {
		t.Fatal(err)
	}
	err = e.p.ScheduleStop(ctx, sample, at)
	wantKind(t, err, providers.KindConflict, "running")
	if n := len(posts(e.srv)); n != before+1 { // only the Stop
		t.Fatalf("refused schedules reached chenyu: %s", paths(posts(e.srv)[before:]))
	}
}

func TestBalance(t *testing.T) {
	e := setup(t, cytest.Options{})
	b, err := e.p.Balance(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if b.CNY != 1288.50 || b.CreditCNY != 200 {
		t.Fatalf("balance %+v", b)
	}
}

func TestReadsAndPrechecksSendNothingMutating(t *testing.T) {
	e := setup(t, cytest.Options{})
	ctx := t.Context()
	if _, err := e.p.ListOffers(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.ListImages(ctx, providers.ImageQuery{}); err != nil {
		t.Fatal(err)
	}
	in := mustInstance(t, e, sample)
	if _, err := e.p.ListInstances(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Balance(ctx); err != nil {
		t.Fatal(err)
	}
	for _, a := range []providers.Action{providers.ActionStop, providers.ActionRestart, providers.ActionSaveImage, providers.ActionDestroy, providers.ActionStart, providers.ActionRenew} {
		_, _ = e.p.Precheck(providers.ActionRequest{Action: a, Instance: in, ImageName: "x"})
	}
	if len(e.srv.Requests()) == 0 {
		t.Fatal("no request recorded")
	}
	if ps := posts(e.srv); len(ps) != 0 {
		t.Fatalf("reads sent mutations: %s", paths(ps))
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	e := setup(t, cytest.Options{RateLimitEvery: 7})
	ctx := t.Context()
	var password string
	for range 3 {
		if in, err := e.p.GetInstance(ctx, sample); err == nil {
			password = in.Connection.SSHPassword
		}
	}
	for range 6 {
		_, _ = e.p.ListInstances(ctx)
		_, _ = e.p.Launch(ctx, providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1, Name: strings.Repeat("x", 60)})
	}
	_ = e.p.Start(ctx, sample)
	bad := New(Config{APIKey: "cy_wrong_secret_key", BaseURL: e.srv.URL(), Logger: loggerTo(e.log)})
	_, err := bad.ListInstances(ctx)
	wantKind(t, err, providers.KindAuth, "CHENYU_API_KEY")
	logs := e.log.String()
	if password == "" || logs == "" {
		t.Fatalf("test did not exercise anything: password %q, %d bytes of logs", password, len(logs))
	}
	for _, secret := range []string{password, cytest.DemoAPIKey, "cy_wrong_secret_key", "Bearer"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains secret %q", secret)
		}
	}
	if strings.Contains(err.Error(), "cy_wrong_secret_key") {
		t.Fatal("error text contains the key")
	}
}
