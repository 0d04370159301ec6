package huixingyun_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

var _ providers.Provider = (*huixingyun.Provider)(nil)

func TestNameAndCapabilities(t *testing.T) {
	p := huixingyun.New(huixingyun.Config{Token: "t"})
	if p.Name() != "huixingyun" {
		t.Errorf("name %q", p.Name())
	}
	c := p.Capabilities()
	if c.PublishesPrices || c.SaveImageStops {
		t.Errorf("capabilities %+v", c)
	}
	if len(c.Billing) != 3 || c.Billing[0] != providers.BillingHourly || c.Billing[1] != providers.BillingDaily || c.Billing[2] != providers.BillingMonthly {
		t.Errorf("billing %v", c.Billing)
	}
	for _, a := range []providers.Action{providers.ActionLaunch, providers.ActionStart, providers.ActionStop, providers.ActionRestart,
		providers.ActionSaveImage, providers.ActionRenew, providers.ActionDestroy} {
		if ok, why := c.Supports(a); !ok {
			t.Errorf("%s unsupported: %s", a, why)
		}
	}
	notes := strings.Join(c.Notes, "\n")
	for _, s := range []string{"no prices", "hourly-billed instances can be destroyed", "1, 3 or 7 days", "1, 3 or 12 months", "app:<app_type>"} {
		if !strings.Contains(notes, s) {
			t.Errorf("notes lack %q", s)
		}
	}
}

func TestListOffersAgainstEmulator(t *testing.T) {
	e := setup(t, hxytest.Options{})
	offers, err := e.p.ListOffers(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]providers.Offer{}
	for _, o := range offers {
		if o.Provider != huixingyun.Name {
			t.Errorf("provider %q", o.Provider)
		}
		byID[o.ID] = o
	}
	o, ok := byID[offer4090]
	if !ok {
		t.Fatalf("no 4090 offer in %v", offers)
	}
	if o.GPUModel != "NVIDIA 4090" || o.Region != "106" || len(o.GPUCounts) != 8 || !o.Available || *o.AvailableGPUs != 8 || o.PricePerGPUHour != nil {
		t.Errorf("4090 offer %+v", o)
	}
	if a := byID[offerA100]; a.VRAMGB != 80 || a.Region != "105" {
		t.Errorf("A100 offer %+v", a)
	}
	if l := byID["l40s_48g_32u180m_106"]; l.Available || len(l.GPUCounts) != 0 {
		t.Errorf("sold-out L40S offer %+v", l)
	}
}

func TestListImagesByOfferRegionAndAll(t *testing.T) {
	e := setup(t, hxytest.Options{})
	kinds := func(imgs []providers.Image) map[providers.ImageKind]int {
		m := map[providers.ImageKind]int{}
		seen := map[string]bool{}
		for _, im := range imgs {
			if seen[im.ID] {
				t.Errorf("duplicate image %s", im.ID)
			}
			seen[im.ID] = true
			m[im.Kind]++
		}
		return m
	}
	// Zone 105 holds the document's two own images and three products sharing five public images.
	byOffer, err := e.p.ListImages(e.ctx, providers.ImageQuery{OfferID: offerA100})
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(byOffer); k[providers.ImagePublic] != 5 || k[providers.ImagePrivate] != 2 || k[providers.ImageApp] != 6 {
		t.Errorf("by offer: %v", k)
	}
	byRegion, err := e.p.ListImages(e.ctx, providers.ImageQuery{Region: "105"})
	if err != nil {
		t.Fatal(err)
	}
	if k := kinds(byRegion); k[providers.ImagePublic] != 5 || k[providers.ImagePrivate] != 2 {
		t.Errorf("by region: %v", k)
	}
	for _, im := range byRegion {
		if im.Kind != providers.ImageApp && im.Region != "105" {
			t.Errorf("image of zone %s listed for 105: %+v", im.Region, im)
		}
		if im.Kind == providers.ImagePrivate && im.CreatedAt == nil {
			t.Errorf("own image without creation time: %+v", im)
		}
	}
	all, err := e.p.ListImages(e.ctx, providers.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// Three zones with five public images each, deduplicated across products.
	if k := kinds(all); k[providers.ImagePublic] != 15 || k[providers.ImagePrivate] != 2 || k[providers.ImageApp] != 6 {
		t.Errorf("all: %v", k)
	}
	_, err = e.p.ListImages(e.ctx, providers.ImageQuery{OfferID: "no_such_gpu_type"})
	wantKind(t, err, providers.KindNotFound, "no_such_gpu_type")
}

// TestLifecycleAgainstEmulator drives every endpoint an hourly instance goes through.
func TestLifecycleAgainstEmulator(t *testing.T) {
	e := setup(t, hxytest.Options{})
	img := e.publicImage(t, offer4090)
	res, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offer4090, ImageID: img, GPUCount: 2, Billing: providers.BillingHourly, Name: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	gid := res.InstanceID
	rec, ok := e.srv.Instance(gid)
	if !ok || res.OrderID == "" || rec.OrderUID != res.OrderID {
		t.Fatalf("launch result %+v, emulator record %+v", res, rec)
	}
	if res.Instance == nil || res.Instance.ID != gid || res.Instance.State != providers.StateRunning {
		t.Fatalf("launch instance %+v", res.Instance)
	}
	if n, _ := e.srv.GPURemain(offer4090); n != 6 {
		t.Errorf("gpu_remain after buying 2 = %d, want 6", n)
	}

	inst, err := e.p.GetInstance(e.ctx, gid)
	if err != nil {
		t.Fatal(err)
	}
	if inst.GPUModel != "NVIDIA 4090" || inst.GPUCount != 2 || inst.Billing != providers.BillingHourly || inst.Region != "106" ||
		inst.ExpiresAt != nil || inst.CreatedAt == nil || inst.OrderID != res.OrderID || inst.VCPUs != 16 || inst.RAMGB != 100 {
		t.Errorf("instance %+v", inst)
	}
	c := inst.Connection
	wantCmd := "ssh -p " + itoa(rec.Port) + " root@" + rec.IP
	if c == nil || c.SSHCommand != wantCmd || c.SSHPassword != rec.Password || c.SSHPort != rec.Port || c.SSHHost != "127.0.0.1" || c.SSHUser != "root" {
		t.Errorf("connection %+v, want command %q", c, wantCmd)
	}
	list, err := e.p.ListInstances(e.ctx)
	if err != nil || len(list) != 1 || list[0].ID != inst.ID {
		t.Fatalf("list %v %v", list, err)
	}

	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if rec, _ := e.srv.Instance(gid); rec.Status != hxytest.StatusStopped || rec.StopMode != hxytest.StopNormal {
		t.Fatalf("after stop: %+v", rec)
	}
	if err := e.p.Start(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if s := e.status(t, gid); s != hxytest.StatusRunning {
		t.Fatalf("after start: %s", s)
	}
	from := len(e.srv.Requests())
	if err := e.p.Restart(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if got := e.paths(from); len(got) != 1 || got[0] != "/gpu/instances/restart" {
		t.Errorf("restart sent %v", got)
	}

	imageID, err := e.p.SaveImage(e.ctx, gid, "my-snapshot")
	if err != nil {
		t.Fatal(err)
	}
	var saved *hxytest.Image
	for _, im := range e.srv.Images() {
		if im.SourceGID == gid {
			saved = &im
		}
	}
	if saved == nil || imageID != saved.ImageID || saved.Name != "my-snapshot" || saved.RoomName != "106" ||
		!strings.HasPrefix(saved.Description, "创建时间: ") {
		t.Fatalf("saved image %+v, returned %q", saved, imageID)
	}
	own, err := e.p.ListImages(e.ctx, providers.ImageQuery{Region: "106"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, im := range own {
		found = found || (im.ID == imageID && im.Kind == providers.ImagePrivate && im.CreatedAt != nil)
	}
	if !found {
		t.Errorf("saved image not in own images: %v", own)
	}

	if err := e.p.Rebuild(e.ctx, gid, imageID); err != nil {
		t.Fatal(err)
	}
	if rec, _ := e.srv.Instance(gid); rec.ImageID != imageID {
		t.Errorf("rebuild: image %s", rec.ImageID)
	}

	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Destroy(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.srv.Instance(gid); ok {
		t.Error("instance still exists after destroy")
	}
	if n, _ := e.srv.GPURemain(offer4090); n != 8 {
		t.Errorf("gpu_remain after destroy = %d, want 8", n)
	}
	_, err = e.p.GetInstance(e.ctx, gid)
	wantKind(t, err, providers.KindNotFound, gid)
}

func TestPrepaidBillingRenewAndChangeBilling(t *testing.T) {
	now := time.Date(2024, 7, 5, 15, 0, 0, 0, time.UTC)
	e := setup(t, hxytest.Options{Now: func() time.Time { return now }})
	daily := e.launch(t, offerA100, 1, providers.BillingDaily)
	inst, err := e.p.GetInstance(e.ctx, daily)
	if err != nil {
		t.Fatal(err)
	}
	if inst.Billing != providers.BillingDaily || inst.ExpiresAt == nil || !inst.ExpiresAt.Equal(now.AddDate(0, 0, 1)) {
		t.Fatalf("daily instance %+v", inst)
	}
	if err := e.p.Renew(e.ctx, daily, 3); err != nil {
		t.Fatal(err)
	}
	if rec, _ := e.srv.Instance(daily); !rec.ExpireAt.Equal(now.AddDate(0, 0, 4)) {
		t.Errorf("renewed expiry %v", rec.ExpireAt)
	}
	// 12 is a monthly period: the vendor refuses it for a daily instance.
	wantKind(t, e.p.Renew(e.ctx, daily, 12), providers.KindRejected, "pay_period 12", "1, 3 or 7")
	wantKind(t, e.p.Renew(e.ctx, daily, 5), providers.KindInvalid, "not 5")

	hourly := e.launch(t, offerA100, 1, providers.BillingHourly)
	wantKind(t, e.p.Renew(e.ctx, hourly, 1), providers.KindRejected, "cannot be renewed")
	if err := e.p.ChangeBilling(e.ctx, hourly, providers.BillingMonthly); err != nil {
		t.Fatal(err)
	}
	if rec, _ := e.srv.Instance(hourly); rec.PayMethod != hxytest.PayMonth || !rec.ExpireAt.Equal(now.AddDate(0, 1, 0)) {
		t.Errorf("after lengthen: %+v", rec)
	}
	wantKind(t, e.p.ChangeBilling(e.ctx, hourly, providers.BillingDaily), providers.KindRejected, "cannot be converted")
	wantKind(t, e.p.ChangeBilling(e.ctx, hourly, providers.BillingWeekly), providers.KindInvalid, "daily or monthly")

	// A monthly instance cannot be destroyed, even stopped: Precheck refuses before the vendor does.
	if err := e.p.Stop(e.ctx, hourly); err != nil {
		t.Fatal(err)
	}
	got, err := e.p.GetInstance(e.ctx, hourly)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: got})
	wantKind(t, err, providers.KindConflict, "only hourly-billed", "monthly")
	wantKind(t, e.p.Destroy(e.ctx, hourly), providers.KindRejected, "only hourly-billed instances can be destroyed")
}

func TestLaunchRefusals(t *testing.T) {
	e := setup(t, hxytest.Options{})
	img := e.publicImage(t, offer4090)
	cases := []struct {
		name      string
		spec      providers.LaunchSpec
		kind      providers.ErrorKind
		parts     []string
		reachesUs bool // whether a buy request is sent
	}{
		{"weekly billing", providers.LaunchSpec{OfferID: offer4090, ImageID: img, Billing: providers.BillingWeekly},
			providers.KindInvalid, []string{"weekly", "hourly, daily or monthly"}, false},
		{"several prepaid periods", providers.LaunchSpec{OfferID: offer4090, ImageID: img, Billing: providers.BillingDaily, Periods: 3},
			providers.KindInvalid, []string{"exactly one daily period", "renew_instance"}, false},
		{"unknown offer", providers.LaunchSpec{OfferID: "no_such", ImageID: img},
			providers.KindNotFound, []string{"no_such"}, false},
		{"no image", providers.LaunchSpec{OfferID: offer4090},
			providers.KindInvalid, []string{"image"}, false},
		{"too many GPUs", providers.LaunchSpec{OfferID: offer4090, ImageID: img, GPUCount: 9},
			providers.KindInvalid, []string{"out of range"}, false},
		{"image of another zone", providers.LaunchSpec{OfferID: offer4090, ImageID: "0917a7f0-1c03-11ef-9f0d-4faf337438da"},
			providers.KindInvalid, []string{"HTTP 400", "not found in room 106"}, true},
		{"sold out", providers.LaunchSpec{OfferID: "l40s_48g_32u180m_106", ImageID: img},
			providers.KindRejected, []string{"refused the order", "insufficient GPUs"}, true},
		{"unknown app", providers.LaunchSpec{OfferID: offer4090, ImageID: "app:nope"},
			providers.KindNotFound, []string{"nope"}, false},
		{"app with several GPUs", providers.LaunchSpec{OfferID: offer4090, ImageID: "app:comfyui", GPUCount: 2},
			providers.KindInvalid, []string{"1 GPU"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			from := len(e.srv.Requests())
			_, err := e.p.Launch(e.ctx, c.spec)
			wantKind(t, err, c.kind, c.parts...)
			bought := false
			for _, p := range e.paths(from) {
				bought = bought || strings.HasSuffix(p, "/buy")
			}
			if bought != c.reachesUs {
				t.Errorf("buy sent = %v, want %v (%v)", bought, c.reachesUs, e.paths(from))
			}
		})
	}
	if len(e.srv.Instances()) != 0 {
		t.Errorf("refused launches created %v", e.srv.Instances())
	}
}

func TestErrorsMapToKinds(t *testing.T) {
	e := setup(t, hxytest.Options{})
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)

	bad := huixingyun.New(huixingyun.Config{Token: "wrong", BaseURL: e.srv.URL()})
	_, err := bad.ListOffers(e.ctx)
	wantKind(t, err, providers.KindAuth, "token was refused", "invalid token", "HUIXINGYUN_TOKEN")

	from := len(e.srv.Requests())
	_, err = huixingyun.New(huixingyun.Config{BaseURL: e.srv.URL()}).ListInstances(e.ctx)
	wantKind(t, err, providers.KindAuth, "no API token")
	if n := len(e.srv.Requests()) - from; n != 0 {
		t.Errorf("a request was sent without a token (%d)", n)
	}

	_, err = e.p.GetInstance(e.ctx, "gpu-106doesnotexist")
	wantKind(t, err, providers.KindNotFound, "gpu-106doesnotexist", "list_instances")
	wantKind(t, e.p.Stop(e.ctx, "gpu-106doesnotexist"), providers.KindRejected, "not found")

	// Wrong state: the vendor's refusal comes back with its words.
	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	wantKind(t, e.p.Stop(e.ctx, gid), providers.KindRejected, "listed "+gid+" as failed", "only a Running instance (or one still Creating or Starting) can be stopped")
	wantKind(t, e.p.Restart(e.ctx, gid), providers.KindRejected, "only a Running instance can be restarted")
	_, err = e.p.SaveImage(e.ctx, gid, "")
	wantKind(t, err, providers.KindInvalid, "image name")
	wantKind(t, e.p.Rebuild(e.ctx, gid, "app:comfyui"), providers.KindInvalid, "not a disk image")
	wantKind(t, e.p.Rebuild(e.ctx, gid, "00000000-0000-0000-0000-000000000000"), providers.KindRejected, "not found in room")

	// Ids that the API would read as several instances are refused before anything is sent.
	from = len(e.srv.Requests())
	for _, id := range []string{gid + "," + gid, "", "gpu-1 gpu-2"} {
		wantKind(t, e.p.Destroy(e.ctx, id), providers.KindInvalid, "not a single instance id")
		_, err := e.p.GetInstance(e.ctx, id)
		wantKind(t, err, providers.KindInvalid)
	}
	if n := len(e.srv.Requests()) - from; n != 0 {
		t.Errorf("%d requests sent for malformed ids", n)
	}
}

func TestRestartOfRunningInstanceSucceeds(t *testing.T) {
	e := setup(t, hxytest.Options{})
	gid := e.launch(t, offer4090, 1, "")
	if err := e.p.Restart(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if s := e.status(t, gid); s != hxytest.StatusRunning {
		t.Errorf("status %s", s)
	}
}

func TestPrecheck(t *testing.T) {
	p := huixingyun.New(huixingyun.Config{Token: "t"})
	inst := func(st providers.State, b providers.BillingMode) providers.Instance {
		return providers.Instance{ID: "gpu-1", State: st, RawState: string(st), Billing: b, Region: "106"}
	}
	cases := []struct {
		name    string
		req     providers.ActionRequest
		kind    providers.ErrorKind // "" = allowed
		partsIn []string            // in the error, or in the warnings
	}{
		// The price and the billing a plan starts are the tool's to say; what a prepaid launch
		// cannot undo is the vendor's.
		{"prepaid launch says it cannot be undone", providers.ActionRequest{Action: providers.ActionLaunch, Launch: &providers.LaunchSpec{OfferID: "o", Billing: providers.BillingDaily}}, "", []string{"cannot be undone", "can never be destroyed through its API"}},
		{"start stopped", providers.ActionRequest{Action: providers.ActionStart, Instance: inst(providers.StateStopped, providers.BillingHourly)}, "", nil},
		{"start while stopping", providers.ActionRequest{Action: providers.ActionStart, Instance: inst(providers.StateStopping, providers.BillingHourly)}, providers.KindConflict, []string{"only when it is stopped", "stopping"}},
		{"stop running", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StateRunning, providers.BillingHourly)}, "", []string{"processes are killed"}},
		{"stop prepaid warns about the lease", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StateRunning, providers.BillingMonthly)}, "", []string{"does not end or refund a prepaid monthly lease"}},
		{"stop while creating aborts the boot", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StatePending, providers.BillingHourly)}, "", []string{"aborts its boot", "can be destroyed"}},
		{"stop while starting", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StateStarting, providers.BillingMonthly)}, "", []string{"aborts its boot"}},
		{"stop while stopping", providers.ActionRequest{Action: providers.ActionStop, Instance: inst(providers.StateStopping, providers.BillingHourly)}, providers.KindConflict, []string{"running or error or pending or starting"}},
		{"restart stopped", providers.ActionRequest{Action: providers.ActionRestart, Instance: inst(providers.StateStopped, providers.BillingHourly)}, providers.KindConflict, []string{"only when it is running"}},
		{"restart running", providers.ActionRequest{Action: providers.ActionRestart, Instance: inst(providers.StateRunning, providers.BillingHourly)}, "", []string{"processes are killed"}},
		{"save image running", providers.ActionRequest{Action: providers.ActionSaveImage, ImageName: "x", Instance: inst(providers.StateRunning, providers.BillingHourly)}, "", []string{"zone 106", "own images"}},
		{"save image without a name", providers.ActionRequest{Action: providers.ActionSaveImage, Instance: inst(providers.StateRunning, providers.BillingHourly)}, providers.KindInvalid, []string{"image name"}},
		{"save image while starting", providers.ActionRequest{Action: providers.ActionSaveImage, ImageName: "x", Instance: inst(providers.StateStarting, providers.BillingHourly)}, providers.KindConflict, []string{"running or stopped"}},
		{"renew hourly", providers.ActionRequest{Action: providers.ActionRenew, Periods: 1, Instance: inst(providers.StateRunning, providers.BillingHourly)}, providers.KindConflict, []string{"only daily-billed (1, 3 or 7 days) and monthly-billed (1, 3 or 12 months)", "billed hourly"}},
		{"renew unknown billing", providers.ActionRequest{Action: providers.ActionRenew, Periods: 1, Instance: inst(providers.StateRunning, "")}, providers.KindConflict, []string{"does not recognize"}},
		{"renew daily by 7", providers.ActionRequest{Action: providers.ActionRenew, Periods: 7, Instance: inst(providers.StateStopped, providers.BillingDaily)}, "", nil},
		{"renew daily by 2", providers.ActionRequest{Action: providers.ActionRenew, Periods: 2, Instance: inst(providers.StateRunning, providers.BillingDaily)}, providers.KindInvalid, []string{"1, 3, 7", "not 2"}},
		{"renew monthly by 12", providers.ActionRequest{Action: providers.ActionRenew, Periods: 12, Instance: inst(providers.StateRunning, providers.BillingMonthly)}, "", nil},
		{"renew monthly by 7", providers.ActionRequest{Action: providers.ActionRenew, Periods: 7, Instance: inst(providers.StateRunning, providers.BillingMonthly)}, providers.KindInvalid, []string{"1, 3, 12"}},
		{"renew 0 means 1", providers.ActionRequest{Action: providers.ActionRenew, Instance: inst(providers.StateRunning, providers.BillingMonthly)}, "", nil},
		{"destroy stopped hourly", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateStopped, providers.BillingHourly)}, "", []string{"deleted for good"}},
		{"destroy running hourly", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateRunning, providers.BillingHourly)}, providers.KindConflict, []string{"only hourly-billed instances that are stopped", "running"}},
		{"destroy stopped daily", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateStopped, providers.BillingDaily)}, providers.KindConflict, []string{"billed daily"}},
		{"destroy unknown state", providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst(providers.StateUnknown, providers.BillingHourly)}, providers.KindConflict, []string{"stopped"}},
		{"stop in an unknown state is left to the vendor", providers.ActionRequest{Action: providers.ActionStop, Instance: providers.Instance{State: providers.StateUnknown, RawState: "Hibernating"}}, "", []string{`"Hibernating"`}},
		{"unknown action", providers.ActionRequest{Action: "teleport"}, providers.KindInvalid, []string{"teleport"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ws, err := p.Precheck(c.req)
			if c.kind == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				text := strings.Join(ws, "\n")
				for _, s := range c.partsIn {
					if !strings.Contains(text, s) {
						t.Errorf("warnings %q lack %q", text, s)
					}
				}
				return
			}
			wantKind(t, err, c.kind, c.partsIn...)
		})
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	e := setup(t, hxytest.Options{})
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	if _, err := e.p.ListInstances(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	_ = e.p.Start(e.ctx, gid)
	// A refused start logs the fallback at debug level.
	_ = e.p.Start(e.ctx, gid)
	rec, _ := e.srv.Instance(gid)
	logs := e.logs.String()
	if !strings.Contains(logs, "huixingyun request") {
		t.Fatalf("nothing logged at debug level: %q", logs)
	}
	for _, secret := range []string{e.srv.Credential(), rec.Password} {
		if strings.Contains(logs, secret) {
			t.Errorf("secret %q appears in the logs", secret)
		}
	}
}

func TestNilLoggerLogsNothingAndWorks(t *testing.T) {
	srv := hxytest.NewServer(hxytest.Options{})
	defer srv.Close()
	p := huixingyun.New(huixingyun.Config{Token: srv.Credential(), BaseURL: srv.URL()})
	offers, err := p.ListOffers(context.Background())
	if err != nil || len(offers) == 0 {
		t.Fatalf("%v %v", offers, err)
	}
}

func TestMutationsAreNeverRetried(t *testing.T) {
	cases := []struct {
		name   string
		status int
		body   string
		kind   providers.ErrorKind
	}{
		{"server error", 502, `{"message":"bad gateway"}`, providers.KindUnknown},
		{"garbage", 200, `<html>`, providers.KindUnknown},
		{"rate limited", 429, `{"message":"slow down"}`, providers.KindRateLimited},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, p := newFake(t, map[string]fakeAnswer{"/gpu/instances/destroy": {c.status, c.body}})
			err := p.Destroy(context.Background(), "gpu-106a")
			wantKind(t, err, c.kind)
			if n := f.count("/gpu/instances/destroy"); n != 1 {
				t.Errorf("destroy sent %d times", n)
			}
		})
	}
}

func TestLaunchRecoversAnInstanceWhenListingFails(t *testing.T) {
	// The buy went through; a failing list afterwards must not turn it into an error, or the
	// agent would buy again.
	f, p := newFake(t, map[string]fakeAnswer{
		"/gpu/product/list":   {200, `{"items":[{"gpu_type":"t_106","room_name":"106","gpu_remain":1}],"total_items":1}`},
		"/gpu/instances/buy":  {200, `{"success_instance":1,"fail_instance":0,"success":[{"order_uid":"O-1"}],"fails":[]}`},
		"/gpu/instances/list": {500, `{"message":"oops"}`},
	})
	res, err := p.Launch(context.Background(), providers.LaunchSpec{OfferID: "t_106", ImageID: "img"})
	if err != nil || res.OrderID != "O-1" || res.InstanceID != "" {
		t.Fatalf("%+v %v", res, err)
	}
	if f.count("/gpu/instances/buy") != 1 {
		t.Error("buy not sent once")
	}
}

func TestEmulatorConcurrentUseThroughAdapter(t *testing.T) {
	e := setup(t, hxytest.Options{StepDelay: time.Millisecond})
	img := e.publicImage(t, offer4090)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offer4090, ImageID: img})
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := e.p.ListInstances(e.ctx)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n, _ := e.srv.GPURemain(offer4090); n != 4 {
		t.Errorf("gpu_remain %d after 4 buys of 1 GPU, want 4", n)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
