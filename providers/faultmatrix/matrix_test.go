// Package faultmatrix_test runs every injected fault against every vendor adapter, through the
// vendors' emulators: reads fail with the right kind and a message naming the vendor and the
// remedy, changes are never sent twice, and a purchase whose answer is lost says that its
// outcome is unknown while the emulator shows at most one new instance.
package faultmatrix_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/faults"
)

// Every emulator, its handler goroutines and every connection must be gone when the tests end.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// emulator is what the matrix needs of a vendor emulator.
type emulator interface {
	SetFaults(...faults.Faults)
	FaultsApplied() int
	Close()
}

// vendor is one adapter wired to its emulator.
type vendor struct {
	name      string
	offerPath string // the request ListOffers fails on
	// offerReads is how many offerPath requests one ListOffers sends at once (datenfab asks
	// each of its regions in parallel).
	offerReads int
	buy        faults.Faults
	start      func(o providers.HTTPOptions) (providers.Provider, emulator)
}

var vendors = []vendor{
	{
		name: huixingyun.Name, offerPath: "/gpu/product/list", offerReads: 1,
		buy: faults.Faults{Method: http.MethodPost, Path: "/gpu/instances/buy"},
		start: func(o providers.HTTPOptions) (providers.Provider, emulator) {
			e := hxytest.NewServer(hxytest.Options{})
			return huixingyun.New(huixingyun.Config{Token: e.Credential(), BaseURL: e.URL(), HTTP: o}), e
		},
	},
	{
		name: datenfab.Name, offerPath: "/skus/computings", offerReads: 2,
		buy: faults.Faults{Method: http.MethodPost, Path: "/instances"},
		start: func(o providers.HTTPOptions) (providers.Provider, emulator) {
			e := dftest.NewServer(dftest.Options{})
			return datenfab.New(datenfab.Config{Token: e.Credential(), Namespace: e.Namespace(), BaseURL: e.URL(), HTTP: o}), e
		},
	},
	{
		name: chenyu.Name, offerPath: "/gpu/list", offerReads: 1,
		buy: faults.Faults{Method: http.MethodPost, Path: "/instance/create_by_image"},
		start: func(o providers.HTTPOptions) (providers.Provider, emulator) {
			e := cytest.NewServer(cytest.Options{})
			return chenyu.New(chenyu.Config{APIKey: e.Credential(), BaseURL: e.URL(), HTTP: o}), e
		},
	},
}

// options keep the matrix fast: a short timeout, one retry, almost no backoff, no breaker.
var options = providers.HTTPOptions{Timeout: 100 * time.Millisecond, Retries: 1, RetryBackoff: time.Millisecond, BreakerThreshold: -1}

// slow is longer than options.Timeout.
const slow = time.Second

// fault is one row of the matrix: the fault, and what a read and a purchase must then do.
type fault struct {
	name string
	f    faults.Faults
	// read: the kind ("" = success), message fragments, and how many requests a failing read
	// sends.
	readKind  providers.ErrorKind
	readFrags []string
	readHits  int
	// buy: the kind and fragments; bought is how many instances may exist afterwards, at most.
	buyKind  providers.ErrorKind
	buyFrags []string
	bought   int
}

var unknown = []string{"may or may not", "list_instances"}

var matrix = []fault{
	{name: "latency below the timeout", f: faults.Faults{Latency: 20 * time.Millisecond},
		bought: 1},
	{name: "latency above the timeout", f: faults.Faults{Latency: slow},
		readKind: providers.KindUnavailable, readFrags: []string{"no answer within 100ms", "try again"}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{"no answer within 100ms"}, unknown...), bought: 1},
	{name: "429 with a long Retry-After", f: faults.Faults{Status429: true, RetryAfter: "120"},
		readKind: providers.KindRateLimited, readFrags: []string{"retry after 2m0s", "wait"}, readHits: 1,
		buyKind: providers.KindRateLimited, buyFrags: []string{"retry after 2m0s", "wait"}, bought: 0},
	{name: "one 429 without Retry-After", f: faults.Faults{Status429: true, Times: 1},
		buyKind: providers.KindRateLimited, buyFrags: []string{"too many requests"}, bought: 0},
	{name: "500", f: faults.Faults{Status500: true},
		readKind: providers.KindUnavailable, readFrags: []string{"HTTP 500", "internal error"}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{"HTTP 500"}, unknown...), bought: 0},
	{name: "one 500", f: faults.Faults{Status500: true, Times: 1},
		buyKind: providers.KindUnknown, buyFrags: unknown, bought: 0},
	{name: "malformed JSON", f: faults.Faults{MalformedJSON: true},
		readKind: providers.KindUnavailable, readFrags: []string{"unreadable"}, readHits: 1,
		buyKind: providers.KindUnknown, buyFrags: []string{"list_instances"}, bought: 1},
	{name: "HTML error page", f: faults.Faults{HTMLErrorPage: true},
		readKind: providers.KindUnavailable, readFrags: []string{"HTTP 502", "HTML page", "Bad Gateway"}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{"HTTP 502", "Bad Gateway"}, unknown...), bought: 0},
	{name: "dropped connection", f: faults.Faults{DropConnection: true},
		readKind: providers.KindUnavailable, readFrags: []string{"no answer from the vendor", "try again"}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{"no answer from the vendor"}, unknown...), bought: 1},
	{name: "stalled body", f: faults.Faults{SlowBody: slow},
		readKind: providers.KindUnavailable, readFrags: []string{"no answer within 100ms"}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{"no answer within 100ms"}, unknown...), bought: 1},
}

// checkErr checks an error's kind, that it names the vendor first, and its fragments.
func checkErr(t *testing.T, what, vendor string, err error, kind providers.ErrorKind, frags []string) {
	t.Helper()
	if kind == "" {
		if err != nil {
			t.Errorf("%s: %v, want success", what, err)
		}
		return
	}
	if providers.KindOf(err) != kind {
		t.Errorf("%s: kind %q (%v), want %q", what, providers.KindOf(err), err, kind)
		return
	}
	if !strings.HasPrefix(err.Error(), vendor+":") {
		t.Errorf("%s: %q does not start with the vendor's name", what, err)
	}
	for _, f := range frags {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("%s: %q lacks %q", what, err, f)
		}
	}
}

// launchable picks an offer and an image the vendor accepts, with no fault set.
func launchable(t *testing.T, p providers.Provider) providers.LaunchSpec {
	t.Helper()
	offers, err := p.ListOffers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offers {
		if !o.Available || !hourly(o) {
			continue
		}
		_, offerLocal, _ := providers.SplitID(o.ID)
		images, err := p.ListImages(t.Context(), providers.ImageQuery{OfferID: offerLocal})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range images {
			if im.Kind != providers.ImagePublic {
				continue
			}
			_, imageLocal, _ := providers.SplitID(im.ID)
			return providers.LaunchSpec{OfferID: offerLocal, ImageID: imageLocal, GPUCount: o.GPUCounts[0], Billing: providers.BillingHourly}
		}
	}
	t.Fatalf("%s: nothing to launch", p.Name())
	return providers.LaunchSpec{}
}

func hourly(o providers.Offer) bool {
	for _, b := range o.Billing {
		if b == providers.BillingHourly {
			return true
		}
	}
	return false
}

func countInstances(t *testing.T, p providers.Provider) int {
	t.Helper()
	ins, err := p.ListInstances(t.Context())
	if err != nil {
		t.Fatalf("listing instances without faults: %v", err)
	}
	return len(ins)
}

func TestFaultMatrix(t *testing.T) {
	for _, v := range vendors {
		for _, row := range matrix {
			t.Run(v.name+"/"+row.name, func(t *testing.T) {
				p, emu := v.start(options)
				defer emu.Close()

				read := row.f
				read.Path = v.offerPath
				emu.SetFaults(read)
				_, err := p.ListOffers(t.Context())
				checkErr(t, "read", v.name, err, row.readKind, row.readFrags)
				// Go's transport itself resends a GET whose reused connection dropped before
				// any answer; that resend is not ours, and never happens to a POST.
				want := row.readHits * v.offerReads
				if n := emu.FaultsApplied(); row.readKind != "" && (n < row.readHits || n > want && !(row.f.DropConnection && n <= 2*want)) {
					t.Errorf("read: the fault hit %d requests, want %d (%d parallel reads, each 1 + %d retry when a retry may help)", n, want, v.offerReads, options.Retries)
				}

				emu.SetFaults()
				spec := launchable(t, p)
				before := countInstances(t, p)
				buy := row.f
				buy.Method, buy.Path = v.buy.Method, v.buy.Path
				emu.SetFaults(buy)
				hits := emu.FaultsApplied()
				res, err := p.Launch(t.Context(), spec)
				checkErr(t, "buy", v.name, err, row.buyKind, row.buyFrags)
				if n := emu.FaultsApplied() - hits; n != 1 {
					t.Errorf("buy: sent %d times; a purchase is never sent twice", n)
				}
				emu.SetFaults()
				// A purchase the vendor handles after its client gave up lands a moment later.
				after := countInstances(t, p)
				for deadline := time.Now().Add(slow + time.Second); row.bought > 0 && after == before && err != nil && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond)
					after = countInstances(t, p)
				}
				if got := after - before; got > row.bought || (err == nil && got != 1) {
					t.Errorf("buy: %d new instances (result %+v, error %v); want at most %d", got, res, err, row.bought)
				}
			})
		}
	}
}

func TestBreakerSkipsAVendorThatKeepsFailing(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			o := options
			o.BreakerThreshold, o.BreakerCooldown, o.Retries = 3, 100*time.Millisecond, 0
			p, emu := v.start(o)
			defer emu.Close()
			emu.SetFaults(faults.Faults{Status500: true})
			for range 3 {
				if _, err := p.ListInstances(t.Context()); providers.KindOf(err) != providers.KindUnavailable || strings.Contains(err.Error(), "not sent") {
					t.Fatalf("before the breaker opens: %v", err)
				}
			}
			hits := emu.FaultsApplied()
			_, err := p.ListOffers(t.Context())
			checkErr(t, "read while open", v.name, err, providers.KindUnavailable, []string{"not sent", "failed 3 times in a row", "will try it again at", "nothing was sent"})
			err = p.Stop(t.Context(), "some-instance")
			if providers.KindOf(err) == providers.KindUnknown || !strings.Contains(err.Error(), "not sent") {
				t.Errorf("a change while open must not be sent, and its outcome is known: %v", err)
			}
			if emu.FaultsApplied() != hits {
				t.Fatalf("requests were sent to a vendor the breaker skips")
			}
			// The vendor is back: after the cooldown, the trial request closes the breaker.
			emu.SetFaults()
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err := p.ListOffers(t.Context())
				if err == nil {
					break
				}
				if !strings.Contains(err.Error(), "not sent") || time.Now().After(deadline) {
					t.Fatalf("after the cooldown: %v", err)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

func TestAuthFailuresDoNotTripTheBreaker(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			o := options
			o.BreakerThreshold = 2
			_, emu := v.start(o)
			defer emu.Close()
			var bad providers.Provider
			switch e := emu.(type) {
			case *hxytest.Server:
				bad = huixingyun.New(huixingyun.Config{Token: "wrong", BaseURL: e.URL(), HTTP: o})
			case *dftest.Server:
				bad = datenfab.New(datenfab.Config{Token: "wrong", Namespace: e.Namespace(), BaseURL: e.URL(), HTTP: o})
			case *cytest.Server:
				bad = chenyu.New(chenyu.Config{APIKey: "wrong", BaseURL: e.URL(), HTTP: o})
			}
			for range 5 {
				_, err := bad.ListInstances(t.Context())
				if providers.KindOf(err) != providers.KindAuth {
					t.Fatalf("wrong credentials: %v", err)
				}
			}
		})
	}
}

func TestCallerDeadlineEndsRetriesAndWaits(t *testing.T) {
	for _, v := range vendors {
		t.Run(v.name, func(t *testing.T) {
			o := options
			o.Retries, o.RetryBackoff, o.Timeout = 5, 10*time.Second, time.Minute
			p, emu := v.start(o)
			defer emu.Close()
			emu.SetFaults(faults.Faults{Status500: true})
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			_, err := p.ListOffers(ctx)
			// The backoff (5s or more) does not fit in the deadline: no wait, no second request.
			if providers.KindOf(err) != providers.KindUnavailable || emu.FaultsApplied() != 1 || ctx.Err() != nil {
				t.Fatalf("%v after %d requests (deadline passed: %v)", err, emu.FaultsApplied(), ctx.Err())
			}
			emu.SetFaults(faults.Faults{Latency: slow})
			_, err = p.ListOffers(ctx)
			if providers.KindOf(err) != providers.KindUnavailable || !strings.Contains(err.Error(), "deadline") {
				t.Fatalf("caller's deadline: %v", err)
			}
			var pe *providers.Error
			if !errors.As(err, &pe) || !errors.Is(pe.Err, context.DeadlineExceeded) {
				t.Fatalf("the cause is lost: %#v", err)
			}
		})
	}
}
