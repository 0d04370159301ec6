package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests run the tools against the emulators of every vendor of the list, through the
// real adapters, with faults injected into the emulators' answers; a made-up vendor joins
// the list, so that they show what any new vendor must do.
func TestMain(m *testing.M) {
	vendors.WithExtra(fakecloud.Vendor)
	m.Run()
}

// vendorEnv is the emulators, the adapters on them, and a client of the tools.
type vendorEnv struct {
	*harness
	names []string
	emus  map[string]emulated.Server
	ps    map[string]providers.Provider
	buy   map[string]emulated.Faults
}

// envOptions tune a vendorEnv.
type envOptions struct {
	http providers.HTTPOptions
	deps func(*Deps)
	// wrap, when set, serves each emulator through it.
	wrap func(vendor string, h http.Handler) http.Handler
}

func newVendorEnv(t *testing.T, o envOptions) *vendorEnv {
	t.Helper()
	e := &vendorEnv{emus: map[string]emulated.Server{}, ps: map[string]providers.Provider{}, buy: map[string]emulated.Faults{}}
	var ps []providers.Provider
	for _, v := range vendors.All() {
		eo := emulated.Options{}
		if o.wrap != nil {
			eo.Wrap = func(h http.Handler) http.Handler { return o.wrap(v.Name, h) }
		}
		emu, err := vendors.Emulate(v, eo)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		p := emu.Config.Provider(o.http, nil)
		e.names = append(e.names, v.Name)
		e.emus[v.Name], e.buy[v.Name] = emu, v.Endpoints.Buy
		ps = append(ps, p)
	}
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range reg.All() {
		e.ps[p.Name()] = p
	}
	d := &Deps{Providers: reg, Confirmer: testConfirmer(t, "test-secret"), Log: zerolog.New(io.Discard), VendorTimeout: 10 * time.Second, Fleet: newTestFleet(t, reg)}
	if o.deps != nil {
		o.deps(d)
	}
	e.harness = &harness{t: t, deps: d, c: inProcessClient(t, d, "vendors-test", nil)}
	return e
}

// fast are HTTP options for tests: short timeouts, quick retries.
var fast = providers.HTTPOptions{Timeout: 2 * time.Second, Retries: 1, RetryBackoff: time.Millisecond}

// noLeaks fails the test when goroutines it started outlive it, once everything is closed.
func noLeaks(t *testing.T) {
	t.Helper()
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func (e *vendorEnv) instances(vendor string) int {
	e.t.Helper()
	ins, err := e.ps[vendor].ListInstances(e.t.Context())
	if err != nil {
		e.t.Fatalf("%s instances: %v", vendor, err)
	}
	return len(ins)
}

// launchArgs finds an hourly offer with capacity and a public image of it.
func (e *vendorEnv) launchArgs(vendor string) map[string]any {
	e.t.Helper()
	res, m := e.call("list_gpu_offers", map[string]any{"provider": vendor, "billing": "hourly", "available_only": true})
	offers, _ := m["offers"].([]any)
	if res.IsError || len(offers) == 0 {
		e.t.Fatalf("%s offers: %s", vendor, text(res))
	}
	offer := offers[0].(map[string]any)["id"].(string)
	res, m = e.call("list_images", map[string]any{"offer_id": offer, "kind": "public"})
	images, _ := m["images"].([]any)
	if res.IsError || len(images) == 0 {
		e.t.Fatalf("%s images: %s", vendor, text(res))
	}
	return map[string]any{"offer_id": offer, "image_id": images[0].(map[string]any)["id"].(string), "billing": "hourly"}
}

func TestPurchaseWhoseAnswerIsLostIsNeverRepeated(t *testing.T) {
	noLeaks(t)
	e := newVendorEnv(t, envOptions{http: fast})
	for _, vendor := range e.names {
		for _, f := range []emulated.Faults{{DropConnection: true}, {MalformedJSON: true}, {Status500: true}, {HTMLErrorPage: true}} {
			args := e.launchArgs(vendor)
			args["idempotency_key"] = fmt.Sprintf("k-%s-%v", vendor, f)
			_, plan := e.call("launch_instance", args)
			token, _ := plan["confirmation_token"].(string)
			if token == "" {
				t.Fatalf("%s: no plan: %v", vendor, plan)
			}
			before := e.instances(vendor)
			buy := e.buy[vendor]
			f.Method, f.Path = buy.Method, buy.Path
			e.emus[vendor].SetFaults(f)
			hits := e.emus[vendor].FaultsApplied()
			args["confirm_token"] = token
			res, _ := e.call("launch_instance", args)
			if !res.IsError || !strings.HasPrefix(text(res), vendor+":") || !strings.Contains(text(res), " may ") || !strings.Contains(text(res), "list_instances") {
				t.Errorf("%s %+v: a lost answer to a purchase must say its outcome is unknown and how to check: %s", vendor, f, text(res))
			}
			// Again, with the same key: refused without asking the vendor.
			delete(args, "confirm_token")
			res, _ = e.call("launch_instance", args)
			if !res.IsError || !strings.Contains(text(res), "outcome is unknown; nothing was bought again") {
				t.Errorf("%s: the same key after an unknown outcome: %s", vendor, text(res))
			}
			if n := e.emus[vendor].FaultsApplied() - hits; n != 1 {
				t.Errorf("%s %+v: the purchase was sent %d times", vendor, f, n)
			}
			e.emus[vendor].SetFaults()
			if got := e.instances(vendor) - before; got > 1 || (got == 1) != (f.DropConnection || f.MalformedJSON) {
				t.Errorf("%s %+v: %d new instances", vendor, f, got)
			}
		}
	}
}

func TestReadFaultsNameTheVendorBesideTheOthersResults(t *testing.T) {
	noLeaks(t)
	o := fast
	o.BreakerThreshold = -1 // every fault in turn, without the breaker skipping the vendor
	e := newVendorEnv(t, envOptions{http: o})
	cases := []struct {
		f     emulated.Faults
		frags []string
	}{
		{emulated.Faults{Status500: true}, []string{"HTTP 500", "try again"}},
		{emulated.Faults{HTMLErrorPage: true}, []string{"HTTP 502", "HTML page", "Bad Gateway"}},
		{emulated.Faults{MalformedJSON: true}, []string{"unreadable"}},
		{emulated.Faults{DropConnection: true}, []string{"no answer from the vendor"}},
		{emulated.Faults{Status429: true, RetryAfter: "90"}, []string{"retry after 1m30s", "wait"}},
	}
	for _, vendor := range e.names {
		for _, c := range cases {
			e.emus[vendor].SetFaults(c.f)
			for _, tool := range []string{"list_gpu_offers", "list_instances"} {
				res, m := e.call(tool, map[string]any{})
				errs, _ := m["errors"].([]any)
				if res.IsError || len(errs) != 1 {
					t.Errorf("%s %s %+v: %s", vendor, tool, c.f, text(res))
					continue
				}
				pe := errs[0].(map[string]any)
				msg, _ := pe["error"].(string)
				if pe["provider"] != vendor || !strings.HasPrefix(msg, vendor+":") {
					t.Errorf("%s %s: error %v does not name the vendor", vendor, tool, pe)
				}
				for _, frag := range c.frags {
					if !strings.Contains(msg, frag) {
						t.Errorf("%s %s %+v: %q lacks %q", vendor, tool, c.f, msg, frag)
					}
				}
				key := map[string]string{"list_gpu_offers": "offers", "list_instances": "instances"}[tool]
				for _, it := range m[key].([]any) {
					if strings.HasPrefix(it.(map[string]any)["id"].(string), vendor+":") {
						t.Errorf("%s %s: results of the failing vendor shown", vendor, tool)
					}
				}
				if tool == "list_gpu_offers" && len(m[key].([]any)) == 0 {
					t.Errorf("%s: one failing vendor hid the others' offers", vendor)
				}
			}
			e.emus[vendor].SetFaults()
		}
	}
}

func TestOneSlowVendorNeverHidesTheOthers(t *testing.T) {
	noLeaks(t)
	// The healthy vendors must answer within the vendor timeout, on a loaded machine too: 300ms
	// was a thin margin for a read of several requests under the race detector.
	e := newVendorEnv(t, envOptions{http: providers.HTTPOptions{Timeout: time.Minute}, deps: func(d *Deps) { d.VendorTimeout = 2 * time.Second }})
	// The last vendor answers in ten minutes; the others at once.
	slow := e.names[len(e.names)-1]
	e.emus[slow].SetFaults(emulated.Faults{Latency: 10 * time.Minute})
	for _, tool := range []string{"list_gpu_offers", "list_instances"} {
		args := map[string]any{}
		if tool == "list_gpu_offers" {
			args["limit"] = 500
		}
		res, m := e.call(tool, args)
		errs, _ := m["errors"].([]any)
		if res.IsError || len(errs) != 1 || errs[0].(map[string]any)["provider"] != slow {
			t.Fatalf("%s: %s", tool, text(res))
		}
		msg := errs[0].(map[string]any)["error"].(string)
		if !strings.Contains(msg, "no answer within 2s (GPU_MCP_VENDOR_TIMEOUT)") || !strings.Contains(text(res), slow+" failed") {
			t.Errorf("%s: %q", tool, msg)
		}
		seen := map[string]bool{}
		key := map[string]string{"list_gpu_offers": "offers", "list_instances": "instances"}[tool]
		for _, it := range m[key].([]any) {
			seen[it.(map[string]any)["provider"].(string)] = true
		}
		for _, v := range e.names[:len(e.names)-1] {
			if tool == "list_gpu_offers" && !seen[v] {
				t.Errorf("%s: the healthy vendor %s's results are missing: %v", tool, v, seen)
			}
		}
	}
}

// meeting holds each vendor's first request of a fan-out until every vendor's first request
// has arrived, and notes each vendor that waited for the others in vain: vendors asked
// together all meet, vendors asked one after another never do. It waits a long time
// (patience), so that a loaded machine, slow to start the fan-out's goroutines, is no failure.
type meeting struct {
	patience time.Duration

	mu      sync.Mutex
	want    int // vendors expected; 0: requests pass at once
	arrived map[string]bool
	all     chan struct{} // closed once every vendor's first request has arrived
	missed  []string      // vendors whose first request stopped waiting for the others
}

// expect holds the first requests of the next n vendors asked.
func (m *meeting) expect(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.want, m.arrived, m.all, m.missed = n, map[string]bool{}, make(chan struct{}), nil
}

// result ends the meeting: whether every vendor came, and who waited in vain.
func (m *meeting) result() (met bool, missed []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	met, missed, m.want = len(m.arrived) == m.want, m.missed, 0
	return met, missed
}

func (m *meeting) wrap(vendor string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.mu.Lock()
		first := m.want > 0 && !m.arrived[vendor]
		all := m.all
		if first {
			m.arrived[vendor] = true
			if len(m.arrived) == m.want {
				close(all)
			}
		}
		m.mu.Unlock()
		if first {
			timer := time.NewTimer(m.patience)
			defer timer.Stop()
			select {
			case <-all:
			case <-timer.C:
				m.note(vendor)
			case <-r.Context().Done():
				m.note(vendor)
			}
		}
		h.ServeHTTP(w, r)
	})
}

func (m *meeting) note(vendor string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.missed = append(m.missed, vendor)
}

// TestFanOutTakesTheSlowestVendorNotTheSum proves that a read of all vendors asks them
// together in two ways. Every vendor's first request is in flight at the same moment (the
// meeting), which needs no clock. And, where time is the point, with 300ms of latency on
// every request: the vendors one by one take at least 900ms, all together about 300ms per
// round trip, and the bound (0.85 of the sum) leaves the read of all of them hundreds of
// milliseconds for a loaded machine; a fan-out one vendor after another takes the whole sum.
func TestFanOutTakesTheSlowestVendorNotTheSum(t *testing.T) {
	noLeaks(t)
	m := &meeting{patience: 10 * time.Second}
	// The HTTP timeout outlasts the meeting's patience: a vendor that waits in vain is
	// noted, not retried.
	e := newVendorEnv(t, envOptions{http: providers.HTTPOptions{Timeout: time.Minute, Retries: 1, RetryBackoff: time.Millisecond},
		wrap: m.wrap, deps: func(d *Deps) { d.VendorTimeout = 2 * time.Minute }})
	const latency = 300 * time.Millisecond
	for _, emu := range e.emus {
		emu.SetFaults(emulated.Faults{Latency: latency})
	}
	for _, tool := range []string{"list_gpu_offers", "list_instances"} {
		timed := func(args map[string]any) time.Duration {
			start := time.Now()
			if res, m := e.call(tool, args); res.IsError || m["errors"] != nil {
				t.Fatalf("%s %v: %s", tool, args, text(res))
			}
			return time.Since(start)
		}
		var sum time.Duration
		for _, v := range e.names {
			sum += timed(map[string]any{"provider": v})
		}
		m.expect(len(e.names))
		all := timed(map[string]any{})
		if met, missed := m.result(); !met || len(missed) > 0 {
			t.Errorf("%s: the vendors were not asked together: every one asked %v, waited for the others in vain: %v", tool, met, missed)
		}
		t.Logf("%s: all vendors together %s, each alone %s in all", tool, all, sum)
		if ratio := float64(all) / float64(sum); ratio > 0.85 {
			t.Errorf("%s: all vendors together took %.2f of the sum of each alone (%s of %s)", tool, ratio, all, sum)
		}
	}
}

func TestBreakerThroughTheTools(t *testing.T) {
	noLeaks(t)
	o := fast
	o.BreakerThreshold, o.BreakerCooldown = 2, time.Hour
	for _, vendor := range vendors.Names() {
		// Each vendor's breaker on an environment of its own: an open one stays open.
		e := newVendorEnv(t, envOptions{http: o})
		e.emus[vendor].SetFaults(emulated.Faults{Status500: true})
		e.call("list_gpu_offers", map[string]any{})
		hits := e.emus[vendor].FaultsApplied()
		res, m := e.call("list_gpu_offers", map[string]any{})
		errs, _ := m["errors"].([]any)
		if res.IsError || len(errs) != 1 || len(m["offers"].([]any)) == 0 {
			t.Fatalf("%s: %s", vendor, text(res))
		}
		msg := errs[0].(map[string]any)["error"].(string)
		for _, frag := range []string{vendor, "not sent", "failed 2 times in a row", "will try it again at", "(in 1h0m0s)"} {
			if !strings.Contains(msg, frag) {
				t.Errorf("%q lacks %q", msg, frag)
			}
		}
		if e.emus[vendor].FaultsApplied() != hits {
			t.Errorf("%s: a skipped vendor was asked", vendor)
		}
		// A purchase is refused up front, and says nothing was sent.
		res, _ = e.call("launch_instance", map[string]any{"offer_id": vendor + ":some-offer", "image_id": vendor + ":some-image"})
		if !res.IsError || !strings.Contains(text(res), "nothing was sent") {
			t.Errorf("%s: launch on a skipped vendor: %s", vendor, text(res))
		}
	}
}

func TestManyConcurrentCallsOnTheDemo(t *testing.T) {
	noLeaks(t)
	var cache *OfferCache
	// 300 calls at once on a loaded machine queue for a long time: the timeouts are far beyond
	// what that takes, since what is tested is that every answer is right, not how fast.
	e := newVendorEnv(t, envOptions{http: providers.HTTPOptions{Timeout: time.Minute, Retries: 2}, deps: func(d *Deps) {
		cache = NewOfferCache(OfferCacheOptions{TTL: 50 * time.Millisecond})
		d.Offers, d.VendorTimeout = cache, 2*time.Minute
	}})
	t.Cleanup(cache.Close)
	_, m := e.call("list_instances", map[string]any{})
	var ids []string
	for _, in := range m["instances"].([]any) {
		ids = append(ids, in.(map[string]any)["id"].(string))
	}
	launch := e.launchArgs(e.names[len(e.names)-1])
	before := map[string]int{}
	for v := range e.emus {
		before[v] = e.instances(v)
	}
	type call struct {
		tool string
		args map[string]any
		want func(res *mcp.CallToolResult, m map[string]any) bool
	}
	ok := func(res *mcp.CallToolResult, m map[string]any) bool { return !res.IsError && m["errors"] == nil }
	planned := func(res *mcp.CallToolResult, m map[string]any) bool {
		return !res.IsError && m["status"] == "confirmation_required" && m["confirmation_token"] != nil
	}
	// A plan or a refusal by the instance's state; never a change.
	planOrRefusal := func(res *mcp.CallToolResult, m map[string]any) bool { return planned(res, m) || res.IsError }
	var calls []call
	for i := range 300 {
		id := ids[i%len(ids)]
		switch i % 10 {
		case 0, 1:
			calls = append(calls, call{"list_gpu_offers", map[string]any{"limit": i % 7}, ok})
		case 2:
			calls = append(calls, call{"list_gpu_offers", map[string]any{"gpu": "4090", "available_only": true}, ok})
		case 3, 4:
			calls = append(calls, call{"list_instances", map[string]any{}, ok})
		case 5:
			calls = append(calls, call{"get_instance", map[string]any{"instance_id": id}, func(r *mcp.CallToolResult, m map[string]any) bool { return !r.IsError }})
		case 6:
			calls = append(calls, call{"list_providers", map[string]any{}, func(r *mcp.CallToolResult, m map[string]any) bool { return !r.IsError }})
		case 7:
			calls = append(calls, call{"launch_instance", launch, planned})
		case 8:
			calls = append(calls, call{"stop_instance", map[string]any{"instance_id": id}, planOrRefusal})
		case 9:
			calls = append(calls, call{"destroy_instance", map[string]any{"instance_id": id}, planOrRefusal})
		}
	}
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Go(func() {
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = c.tool, c.args
			res, err := e.c.CallTool(context.Background(), req)
			if err != nil {
				t.Errorf("%s: protocol error %v", c.tool, err)
				return
			}
			var m map[string]any
			if res.StructuredContent != nil {
				b, _ := json.Marshal(res.StructuredContent)
				_ = json.Unmarshal(b, &m)
			}
			if !c.want(res, m) {
				t.Errorf("%s %v: %s (errors: %v)", c.tool, c.args, text(res), m["errors"])
			}
		})
	}
	wg.Wait()
	for v := range e.emus {
		if n := e.instances(v); n != before[v] {
			t.Errorf("%s: %d instances before, %d after plans only", v, before[v], n)
		}
	}
}
