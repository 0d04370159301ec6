package datenfab

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

func TestListOffers(t *testing.T) {
	c := newClock()
	p, _, _ := setup(t, dftest.Options{Now: c.Now})
	offers, err := p.ListOffers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]providers.Offer{}
	for _, o := range offers {
		if o.Provider != Name || strings.Count(o.ID, "/") != 2 {
			t.Errorf("offer %q: provider %q, id not <cluster>/<skusID>/<sellingType>", o.ID, o.Provider)
		}
		byID[o.ID] = o
	}
	tests := []struct {
		id        string
		model     string
		gpus      int
		perGPUHr  *float64
		prices    []providers.Price
		billing   providers.BillingMode
		available bool
		remain    int
		region    string
		note      string
	}{
		{"host-cluster/2/1", "H20", 1, ptr(10.0), []providers.Price{{Billing: providers.BillingHourly, CNY: 10}}, providers.BillingHourly, true, 8, "北京一区", ""},
		{"host-cluster/68/1", "RTX 4090", 4, ptr(2.2), []providers.Price{{Billing: providers.BillingHourly, CNY: 2.2}}, providers.BillingHourly, true, 16, "北京一区", ""},
		{"host-cluster/67/2", "RTX 4090", 1, nil, []providers.Price{{Billing: providers.BillingMonthly, CNY: 1180}}, providers.BillingMonthly, true, 16, "北京一区", "prepaid monthly"},
		{"host-cluster/71/3", "A800", 8, nil, []providers.Price{{Billing: providers.BillingWeekly, CNY: 950}}, providers.BillingWeekly, true, 8, "北京一区", "prepaid weekly"},
		{"host-cluster/72/4", "H20", 1, nil, []providers.Price{{Billing: providers.BillingDaily, CNY: 199}}, providers.BillingDaily, false, 0, "北京一区", "prepaid daily"},
		{"host-cluster/70/1", "A800", 1, ptr(6.8), []providers.Price{{Billing: providers.BillingHourly, CNY: 6.8}}, providers.BillingHourly, true, 4, "北京一区", "discount ratio 0.8 (discount 10021)"},
		{"sh-cluster/80/1", "RTX 3090", 1, ptr(1.35), []providers.Price{{Billing: providers.BillingHourly, CNY: 1.35}}, providers.BillingHourly, true, 10, "上海一区", ""},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			o, ok := byID[tt.id]
			if !ok {
				t.Fatalf("offer missing; have %d offers", len(offers))
			}
			if o.GPUModel != tt.model || !slices.Equal(o.GPUCounts, []int{tt.gpus}) || o.Region != tt.region {
				t.Errorf("model %q counts %v region %q", o.GPUModel, o.GPUCounts, o.Region)
			}
			if (o.PricePerGPUHour == nil) != (tt.perGPUHr == nil) || (o.PricePerGPUHour != nil && *o.PricePerGPUHour != *tt.perGPUHr) {
				t.Errorf("PricePerGPUHour = %v, want %v", o.PricePerGPUHour, tt.perGPUHr)
			}
			if !slices.Equal(o.Prices, tt.prices) {
				t.Errorf("Prices = %v, want %v", o.Prices, tt.prices)
			}
			if !slices.Equal(o.Billing, []providers.BillingMode{tt.billing}) {
				t.Errorf("Billing = %v", o.Billing)
			}
			if o.Available != tt.available || o.AvailableGPUs == nil || *o.AvailableGPUs != tt.remain {
				t.Errorf("Available = %v, AvailableGPUs = %v", o.Available, o.AvailableGPUs)
			}
			if tt.note != "" && !strings.Contains(o.Notes, tt.note) {
				t.Errorf("Notes %q lack %q", o.Notes, tt.note)
			}
			if tt.note == "" && strings.Contains(o.Notes, "discount") {
				t.Errorf("Notes %q mention a discount whose window is closed", o.Notes)
			}
		})
	}
	h20 := byID["host-cluster/2/1"]
	if h20.VRAMGB != 96 || h20.VCPUs != 24 || h20.RAMGB != 192 || h20.SystemDiskGB != 30 || h20.DataDiskGB != 50 {
		t.Errorf("H20 specs: %+v", h20)
	}
}

// TestLifecycle drives every endpoint: create, list, detail, power_off, power_on, power_off
// with needSnapshot, delete.
func TestLifecycle(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	ctx := t.Context()

	res := launch(t, p, "trainer")
	if !strings.HasPrefix(res.InstanceID, "instance-") || res.Instance == nil || res.OrderID == "" {
		t.Fatalf("launch result %+v", res)
	}
	if res.Instance.State != providers.StatePending || res.Instance.RawState != "Creating" || res.Instance.Connection != nil {
		t.Errorf("created instance: state %s raw %q connection %v", res.Instance.State, res.Instance.RawState, res.Instance.Connection)
	}
	if res.Instance.ID != res.InstanceID {
		t.Errorf("instance id %q is not the result's %q", res.Instance.ID, res.InstanceID)
	}
	if n, _ := srv.RemainGPUs("66"); n != 15 {
		t.Errorf("remainGPUCount after create = %d, want 15", n)
	}

	list, err := p.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != res.Instance.ID || list[0].State != providers.StateRunning {
		t.Fatalf("list = %+v", list)
	}

	in := get(t, p, res.InstanceID)
	if in.State != providers.StateRunning || in.Name != "trainer" || in.GPUModel != "4090" || in.GPUCount != 1 ||
		in.VCPUs != 16 || in.RAMGB != 96 || in.Image != tfImage || in.Region != "北京一区" || in.Billing != providers.BillingHourly {
		t.Errorf("instance = %+v", in)
	}
	if in.PricePerHour == nil || *in.PricePerHour != 2.2 {
		t.Errorf("PricePerHour = %v, want 2.2", in.PricePerHour)
	}
	if in.CreatedAt == nil || in.StopsAt != nil || in.ExpiresAt != nil {
		t.Errorf("times: created %v stops %v expires %v", in.CreatedAt, in.StopsAt, in.ExpiresAt)
	}
	c := in.Connection
	if c == nil || c.SSHUser != "root" || c.SSHHost != "127.0.0.1" || c.SSHPort <= 0 ||
		c.SSHPassword == "" || c.SSHCommand != fmt.Sprintf("ssh -p %d root@127.0.0.1", c.SSHPort) || len(c.WebURLs) != 2 {
		t.Fatalf("connection = %+v", c)
	}

	if err := p.Stop(ctx, res.InstanceID); err != nil {
		t.Fatal(err)
	}
	if in := get(t, p, res.InstanceID); in.State != providers.StateStopped || in.RawState != "Shutdown" {
		t.Errorf("after stop: %s %q", in.State, in.RawState)
	}
	if err := p.Start(ctx, res.InstanceID); err != nil {
		t.Fatal(err)
	}
	if in := get(t, p, res.InstanceID); in.State != providers.StateRunning {
		t.Errorf("after start: %s", in.State)
	}

	ref, err := p.SaveImage(ctx, res.InstanceID, "my-model:v1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "images.neolink-ai.com/" + dftest.DemoNamespace + "/my-model:v1"; ref != want {
		t.Errorf("SaveImage ref = %q, want %q", ref, want)
	}
	st, _ := srv.Instance(res.InstanceID)
	if !slices.Equal(st.SavedImages, []string{ref}) || st.Status != "Shutdown" {
		t.Errorf("emulator after save: %+v", st)
	}
	images, err := p.ListImages(ctx, providers.ImageQuery{Region: "北京一区"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(images, func(im providers.Image) bool {
		return im.ID == ref && im.Kind == providers.ImagePrivate && im.CreatedAt != nil
	}) {
		t.Errorf("saved image not listed: %+v", images)
	}

	if err := p.Destroy(ctx, res.InstanceID); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Instance(res.InstanceID); ok {
		t.Error("instance still exists after destroy")
	}
	if n, _ := srv.RemainGPUs("66"); n != 16 {
		t.Errorf("remainGPUCount after delete = %d, want 16", n)
	}
	_, err = p.GetInstance(ctx, res.InstanceID)
	wantKind(t, err, providers.KindNotFound, res.InstanceID)
}

// TestTransitionalStates uses a StepDelay and a settable clock to see each transitional state.
func TestTransitionalStates(t *testing.T) {
	c := newClock()
	p, srv, _ := setup(t, dftest.Options{StepDelay: time.Minute, Now: c.Now})
	ctx := t.Context()
	id := launch(t, p, "steps").InstanceID
	step := func(want providers.State, raw string) {
		t.Helper()
		in := get(t, p, id)
		if in.State != want || in.RawState != raw {
			t.Fatalf("state %s (%q), want %s (%q)", in.State, in.RawState, want, raw)
		}
	}
	step(providers.StatePending, "Creating")
	c.Add(time.Minute)
	step(providers.StateRunning, "Running")
	if err := p.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	step(providers.StateStopping, "ShuttingDown")
	c.Add(time.Minute)
	step(providers.StateStopped, "Shutdown")
	if err := p.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	step(providers.StateStarting, "Starting")
	c.Add(time.Minute)
	step(providers.StateRunning, "Running")
	if err := p.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	if err := p.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	step(providers.StateDeleting, "Deleting")
	c.Add(time.Minute)
	if _, ok := srv.Instance(id); ok {
		t.Error("instance not removed after the Deleting step")
	}
}

func TestLaunchPrepaidSendsCostTimeAndComputesExpiry(t *testing.T) {
	tests := []struct {
		offer    string
		billing  providers.BillingMode
		periods  int
		costType string
		costTime string
		expiry   func(time.Time) time.Time
	}{
		{"host-cluster/67/2", providers.BillingMonthly, 2, "2", "2M", func(c time.Time) time.Time { return c.AddDate(0, 2, 0) }},
		{"host-cluster/71/3", "", 0, "3", "1W", func(c time.Time) time.Time { return c.AddDate(0, 0, 7) }},
		{"host-cluster/66/1", providers.BillingHourly, 3, "1", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.offer, func(t *testing.T) {
			p, srv, _ := setup(t, dftest.Options{})
			res, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: tt.offer, ImageID: tfImage, Billing: tt.billing, Periods: tt.periods})
			if err != nil {
				t.Fatal(err)
			}
			st, _ := srv.Instance(res.InstanceID)
			if st.Cost.CostType != tt.costType || st.Cost.CostTime != tt.costTime {
				t.Errorf("emulator cost = %+v, want CostType %q CostTime %q", st.Cost, tt.costType, tt.costTime)
			}
			if !strings.HasPrefix(st.DisplayName, "gpu-mcp-") {
				t.Errorf("generated displayName = %q", st.DisplayName)
			}
			in := get(t, p, res.InstanceID)
			if tt.expiry == nil {
				if in.ExpiresAt != nil {
					t.Errorf("hourly instance has ExpiresAt %v", in.ExpiresAt)
				}
				return
			}
			if in.ExpiresAt == nil || !in.ExpiresAt.Equal(tt.expiry(*in.CreatedAt)) {
				t.Errorf("ExpiresAt = %v, created %v", in.ExpiresAt, in.CreatedAt)
			}
			if in.PricePerHour != nil {
				t.Errorf("prepaid instance has PricePerHour %v", *in.PricePerHour)
			}
		})
	}
}

func TestLaunchCreateBody(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	launch(t, p, "body-check")
	r := lastRequest(t, srv, "POST", "/clusters/host-cluster/instances")
	var got map[string]any
	if err := json.Unmarshal(r.Body, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"Cost":        map[string]any{"CostType": "1", "CouponID": "", "DiskSKUID": "1", "GPUSKUID": "66", "CostTime": ""},
		"VolumeMount": []any{map[string]any{"PathInContainer": "/root/data", "Size": 50.0, "Type": "shared-filesystem"}},
		"namespace":   dftest.DemoNamespace,
		"displayName": "body-check",
		"image":       tfImage,
		"Region":      "",
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("create body\n got %s\nwant %s", gb, wb)
	}
	if r.Header.Get("namespace") != dftest.DemoNamespace {
		t.Errorf("namespace header = %q", r.Header.Get("namespace"))
	}
}

func TestLaunchRefusals(t *testing.T) {
	tests := []struct {
		name      string
		spec      providers.LaunchSpec
		kind      providers.ErrorKind
		fragments []string
	}{
		{"billing mismatch names the matching offer", providers.LaunchSpec{OfferID: "host-cluster/66/1", ImageID: tfImage, Billing: providers.BillingMonthly},
			providers.KindInvalid, []string{"hourly", "monthly", "datenfab:host-cluster/67/2"}},
		{"billing mismatch without alternative", providers.LaunchSpec{OfferID: "sh-cluster/80/1", ImageID: tfImage, Billing: providers.BillingDaily},
			providers.KindInvalid, []string{"no daily offer of RTX 3090"}},
		{"gpu count mismatch names the matching offer", providers.LaunchSpec{OfferID: "host-cluster/66/1", ImageID: tfImage, GPUCount: 4},
			providers.KindInvalid, []string{"datenfab:host-cluster/68/1"}},
		{"sold out is a vendor refusal", providers.LaunchSpec{OfferID: "host-cluster/72/4", ImageID: tfImage},
			providers.KindRejected, []string{"insufficient GPU resources"}},
		{"unknown sku", providers.LaunchSpec{OfferID: "host-cluster/999/1", ImageID: tfImage},
			providers.KindNotFound, []string{"999"}},
		{"unknown cluster", providers.LaunchSpec{OfferID: "nowhere/2/1", ImageID: tfImage},
			providers.KindNotFound, []string{"nowhere"}},
		{"malformed offer", providers.LaunchSpec{OfferID: "host-cluster-2", ImageID: tfImage},
			providers.KindInvalid, []string{"malformed datenfab offer id"}},
		{"unknown selling type", providers.LaunchSpec{OfferID: "host-cluster/2/9", ImageID: tfImage},
			providers.KindInvalid, []string{"selling type"}},
		{"missing image", providers.LaunchSpec{OfferID: "host-cluster/2/1"},
			providers.KindInvalid, []string{"image"}},
		{"negative periods", providers.LaunchSpec{OfferID: "host-cluster/67/2", ImageID: tfImage, Periods: -1},
			providers.KindInvalid, []string{"periods"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, srv, _ := setup(t, dftest.Options{})
			_, err := p.Launch(t.Context(), tt.spec)
			wantKind(t, err, tt.kind, tt.fragments...)
			creates := mutations(srv)
			if tt.kind == providers.KindRejected {
				creates-- // the vendor itself refused this one
			}
			if creates != 0 {
				t.Errorf("%d mutating requests sent", creates)
			}
		})
	}
}

func TestErrorsMapToKinds(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	ctx := t.Context()

	bad := newAdapter(srv, "wrong-token", &logBuffer{})
	_, err := bad.ListOffers(ctx)
	wantKind(t, err, providers.KindAuth, "HTTP 401", "unauthorized", "DATENFAB_TOKEN", "DATENFAB_NAMESPACE")
	if strings.Contains(err.Error(), "wrong-token") {
		t.Errorf("error leaks the token: %v", err)
	}

	_, err = p.GetInstance(ctx, "instance-nope")
	wantKind(t, err, providers.KindNotFound, "instance-nope")
	err = p.Stop(ctx, "instance-nope")
	wantKind(t, err, providers.KindNotFound)
	if n := mutations(srv); n != 0 {
		t.Errorf("%d mutating requests sent for an unknown instance", n)
	}

	_, err = p.GetInstance(ctx, "../regions")
	wantKind(t, err, providers.KindInvalid, "malformed")

	id := launch(t, p, "conflicts").InstanceID
	err = p.Destroy(ctx, id)
	wantKind(t, err, providers.KindConflict, "HTTP 409", "power it off before deleting")
	err = p.Start(ctx, id)
	wantKind(t, err, providers.KindConflict, "only a shut-down instance can be powered on")
	_, err = p.SaveImage(ctx, id, "Bad Name")
	wantKind(t, err, providers.KindInvalid, "image name")

	// Deleted behind the adapter's back: the cached cluster answers 404 and the cache is dropped.
	other := newAdapter(srv, srv.Credential(), &logBuffer{})
	if err := other.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := other.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	err = p.Start(ctx, id)
	wantKind(t, err, providers.KindNotFound)
	p.mu.Lock()
	_, cached := p.clusters[id]
	p.mu.Unlock()
	if cached {
		t.Error("name still cached after a not-found answer")
	}
}

func TestCacheMissFindsInstanceByListing(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "elsewhere").InstanceID
	fresh := newAdapter(srv, srv.Credential(), &logBuffer{})
	in := get(t, fresh, id)
	if in.Name != "elsewhere" {
		t.Errorf("name = %q", in.Name)
	}
	lastRequest(t, srv, "GET", "/clusters/host-cluster/instances/"+id)
}

func TestRestartAndRenewAreUnsupportedAndSendNothing(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	id := launch(t, p, "r").InstanceID
	before := len(srv.Requests())
	wantKind(t, p.Restart(t.Context(), id), providers.KindUnsupported, "no restart call", "stop the instance, then start it")
	wantKind(t, p.Renew(t.Context(), id, 1), providers.KindUnsupported, "datenfab documents no renew call")
	if after := len(srv.Requests()); after != before {
		t.Errorf("%d requests sent", after-before)
	}
}

func TestCapabilities(t *testing.T) {
	if got := New(Config{}).Name(); got != "datenfab" {
		t.Errorf("Name() = %q", got)
	}
	c := New(Config{}).Capabilities()
	for _, a := range []providers.Action{providers.ActionRestart, providers.ActionRenew} {
		if ok, why := c.Supports(a); ok || why == "" {
			t.Errorf("%s: supported=%v why=%q", a, ok, why)
		}
	}
	for _, a := range []providers.Action{providers.ActionStart, providers.ActionStop, providers.ActionSaveImage, providers.ActionDestroy, providers.ActionLaunch} {
		if ok, _ := c.Supports(a); !ok {
			t.Errorf("%s unsupported", a)
		}
	}
	if !c.SaveImageStops || !c.PublishesPrices || !slices.Equal(c.Billing, providers.BillingModes) {
		t.Errorf("capabilities %+v", c)
	}
	notes := strings.Join(c.Notes, "\n")
	for _, f := range []string{"no image-list API", "Destroy needs a stopped instance", "powers the instance off", "one billing mode"} {
		if !strings.Contains(notes, f) {
			t.Errorf("notes lack %q", f)
		}
	}
}

func TestListImages(t *testing.T) {
	p := New(Config{})
	images, err := p.ListImages(t.Context(), providers.ImageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(images) < 2 || images[0].ID != tfImage {
		t.Fatalf("images = %+v", images)
	}
	for _, im := range images {
		if im.Kind != providers.ImagePublic || im.Provider != Name || im.Description == "" {
			t.Errorf("image %+v", im)
		}
		// The id is the whole reference; the name, what people read, its repository and tag.
		if !strings.HasPrefix(im.ID, "images.neolink-ai.com/matrixdc/") || !strings.HasSuffix(im.ID, "/"+im.Name) || strings.Contains(im.Name, "/") {
			t.Errorf("image id %q, name %q", im.ID, im.Name)
		}
	}
	if strings.Contains(images[0].Description, "Not in Datenfab's documents") || !strings.Contains(images[1].Description, "Not in Datenfab's documents") {
		t.Error("descriptions must tell documented from guessed images")
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	p, srv, logs := setup(t, dftest.Options{})
	ctx := t.Context()
	if _, err := p.ListOffers(ctx); err != nil {
		t.Fatal(err)
	}
	id := launch(t, p, "secret").InstanceID
	in := get(t, p, id)
	if _, err := p.ListInstances(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	_ = p.Start(ctx, id) // 409 or ok: both are logged
	_, _ = p.SaveImage(ctx, id, "x")
	bad := newAdapter(srv, "another-secret-token", logs)
	_, _ = bad.ListInstances(ctx)

	out := logs.String()
	if !strings.Contains(out, "datenfab request") {
		t.Fatalf("expected request logs, got %q", out)
	}
	jupyterToken := in.Connection.WebURLs[0].URL[strings.Index(in.Connection.WebURLs[0].URL, "token=")+len("token="):]
	for _, secret := range []string{srv.Credential(), "another-secret-token", "bearer", in.Connection.SSHPassword, jupyterToken} {
		if secret == "" || strings.Contains(out, secret) {
			t.Errorf("log output contains secret %q", secret)
		}
	}
}

func TestRegionsAreReadLessOftenThanOffers(t *testing.T) {
	c := newClock()
	p, srv, _ := setup(t, dftest.Options{Now: c.Now})
	regionReads := func() (n int) {
		for _, r := range srv.Requests() {
			if strings.HasSuffix(r.Path, "/regions") {
				n++
			}
		}
		return n
	}
	read := func() {
		t.Helper()
		if offers, err := p.ListOffers(t.Context()); err != nil || len(offers) == 0 {
			t.Fatalf("%d offers, %v", len(offers), err)
		}
	}
	read()
	read()
	if n := regionReads(); n != 1 || len(srv.Requests()) != 1+2*2 {
		t.Fatalf("%d region reads, %d requests for two catalog reads: want the regions once, then one round trip", n, len(srv.Requests()))
	}
	c.Add(RegionsTTL)
	read()
	if n := regionReads(); n != 2 {
		t.Fatalf("%d region reads after RegionsTTL: want them read again", n)
	}
	// A region whose SKUs cannot be read may be gone: the next read asks for the regions again.
	srv.SetFaults(emulated.Faults{Path: "/skus/computings", Times: 1, Status500: true})
	if _, err := p.ListOffers(t.Context()); err == nil {
		t.Fatal("a failed SKU read went unnoticed")
	}
	read()
	if n := regionReads(); n != 3 {
		t.Fatalf("%d region reads after a failed SKU read: want them read again", n)
	}
}
