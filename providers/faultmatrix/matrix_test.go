// Package faultmatrix_test runs every injected fault against every vendor adapter, through the
// vendors' emulators: reads fail with the right kind and a message naming the vendor and the
// remedy, changes are never sent twice, and a purchase whose answer is lost says that its
// outcome is unknown while the emulator shows at most one new instance.
package faultmatrix_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/faults"
	"github.com/gpu-mcp/gpu-mcp/providers/redact"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// The matrix runs against every vendor of the list, and a made-up one: whatever a new vendor
// is, it must behave under faults as these do. Every emulator, its handler goroutines and every
// connection must be gone when the tests end.
func TestMain(m *testing.M) {
	vendors.WithExtra(fakecloud.Vendor)
	goleak.VerifyTestMain(m)
}

// start wires v's adapter, with options o, to a new emulator of v.
func start(t *testing.T, v providers.Vendor, o providers.HTTPOptions) (providers.Provider, *vendors.Emulated) {
	t.Helper()
	e, err := vendors.Emulate(v, emulated.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return e.Config.Provider(o, nil), e
}

// options keep the matrix quick: one retry, almost no backoff, no breaker. The timeout is
// the margin of every answer that must come in time, on a loaded machine too: with 100ms,
// an emulator's answer after 20ms of latency came too late once in a few hundred under load.
// The rows that wait it out run in parallel.
var options = providers.HTTPOptions{Timeout: time.Second, Retries: 1, RetryBackoff: time.Millisecond, BreakerThreshold: -1}

// slow is far longer than options.Timeout. It costs nothing: an injected wait ends when the
// client hangs up.
const slow = 30 * time.Second

// timedOut is what an error says of a request that had no answer within options.Timeout.
var timedOut = "no answer within " + options.Timeout.String()

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
		readKind: providers.KindUnavailable, readFrags: []string{timedOut, "try again"}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{timedOut}, unknown...), bought: 1},
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
		readKind: providers.KindUnavailable, readFrags: []string{timedOut}, readHits: 2,
		buyKind: providers.KindUnknown, buyFrags: append([]string{timedOut}, unknown...), bought: 1},
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
		images, err := p.ListImages(t.Context(), providers.ImageQuery{OfferID: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range images {
			if im.Kind != providers.ImagePublic {
				continue
			}
			return providers.LaunchSpec{OfferID: o.ID, ImageID: im.ID, GPUCount: o.GPUCounts[0], Billing: providers.BillingHourly}
		}
	}
	t.Fatalf("%s: nothing to launch", p.Name())
	return providers.LaunchSpec{}
}

func hourly(o providers.Offer) bool { return slices.Contains(o.Billing, providers.BillingHourly) }

func countInstances(t *testing.T, p providers.Provider) int {
	t.Helper()
	ins, err := p.ListInstances(t.Context())
	if err != nil {
		t.Fatalf("listing instances without faults: %v", err)
	}
	return len(ins)
}

func TestFaultMatrix(t *testing.T) {
	for _, v := range vendors.All() {
		for _, row := range matrix {
			t.Run(v.Name+"/"+row.name, func(t *testing.T) {
				t.Parallel()
				p, emu := start(t, v, options)
				defer emu.Close()

				read := row.f
				read.Path = v.Endpoints.Offers
				emu.SetFaults(read)
				_, err := p.ListOffers(t.Context())
				checkErr(t, "read", v.Name, err, row.readKind, row.readFrags)
				// Go's transport itself resends a GET whose reused connection dropped before
				// any answer; that resend is not ours, and never happens to a POST.
				want := row.readHits * v.Endpoints.OfferReads
				if n := emu.FaultsApplied(); row.readKind != "" && (n < row.readHits || n > want && !(row.f.DropConnection && n <= 2*want)) {
					t.Errorf("read: the fault hit %d requests, want %d (%d parallel reads, each 1 + %d retry when a retry may help)", n, want, v.Endpoints.OfferReads, options.Retries)
				}

				emu.SetFaults()
				spec := launchable(t, p)
				before := countInstances(t, p)
				buy := row.f
				buy.Method, buy.Path = v.Endpoints.Buy.Method, v.Endpoints.Buy.Path
				emu.SetFaults(buy)
				hits := emu.FaultsApplied()
				res, err := p.Launch(t.Context(), spec)
				checkErr(t, "buy", v.Name, err, row.buyKind, row.buyFrags)
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
	for _, v := range vendors.All() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			o := options
			// The cooldown must outlast the checks below that the open breaker sends nothing.
			o.BreakerThreshold, o.BreakerCooldown, o.Retries = 3, 3*time.Second, 0
			p, emu := start(t, v, o)
			defer emu.Close()
			emu.SetFaults(faults.Faults{Status500: true})
			for range 3 {
				if _, err := p.ListInstances(t.Context()); providers.KindOf(err) != providers.KindUnavailable || strings.Contains(err.Error(), "not sent") {
					t.Fatalf("before the breaker opens: %v", err)
				}
			}
			hits := emu.FaultsApplied()
			_, err := p.ListOffers(t.Context())
			checkErr(t, "read while open", v.Name, err, providers.KindUnavailable, []string{"not sent", "failed 3 times in a row", "will try it again at", "nothing was sent"})
			err = p.Stop(t.Context(), "some-instance")
			if providers.KindOf(err) == providers.KindUnknown || !strings.Contains(err.Error(), "not sent") {
				t.Errorf("a change while open must not be sent, and its outcome is known: %v", err)
			}
			if emu.FaultsApplied() != hits {
				t.Fatalf("requests were sent to a vendor the breaker skips")
			}
			// The vendor is back: after the cooldown, the trial request closes the breaker.
			emu.SetFaults()
			deadline := time.Now().Add(time.Minute)
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
	for _, v := range vendors.All() {
		t.Run(v.Name, func(t *testing.T) {
			o := options
			o.BreakerThreshold = 2
			_, emu := start(t, v, o)
			defer emu.Close()
			env := maps.Clone(emu.Env)
			for k, val := range env {
				if slices.Contains(emu.Config.Secrets(), val) {
					env[k] = "wrong"
				}
			}
			wrong, err := vendors.Load(v, env)
			if err != nil {
				t.Fatal(err)
			}
			bad := wrong.Provider(o, nil)
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
	for _, v := range vendors.All() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			o := options
			o.Retries, o.RetryBackoff, o.Timeout = 5, 10*time.Second, time.Minute
			p, emu := start(t, v, o)
			defer emu.Close()
			emu.SetFaults(faults.Faults{Status500: true})
			// Long enough for the first answer on a loaded machine, shorter than the backoff.
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_, err := p.ListOffers(ctx)
			// The backoff (at least 2.5s: half of its 5s cap, jittered) does not fit in the
			// deadline: no wait, no second request.
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

func TestEchoedCredentialsAreRedacted(t *testing.T) {
	const configured = "configured-secret-of-another-vendor"
	for _, v := range vendors.All() {
		for _, shared := range []*redact.Redactor{nil, redact.New(configured)} {
			name := v.Name + "/own redactor"
			if shared != nil {
				name = v.Name + "/shared redactor"
			}
			t.Run(name, func(t *testing.T) {
				o := options
				o.Redactor = shared
				p, emu := start(t, v, o)
				defer emu.Close()
				secret := emu.Credential()
				spec := launchable(t, p)
				masked := 0
				for _, status := range []int{200, 400, 401, 403, 404, 429, 500, 502} {
					emu.SetFaults(faults.Faults{EchoStatus: status})
					_, errOffers := p.ListOffers(t.Context())
					_, errInstances := p.ListInstances(t.Context())
					// The purchase itself, not the reads a launch makes first.
					buy := faults.Faults{Method: v.Endpoints.Buy.Method, Path: v.Endpoints.Buy.Path, EchoStatus: status}
					emu.SetFaults(buy)
					_, errLaunch := p.Launch(t.Context(), spec)
					for _, err := range []error{errOffers, errInstances, errLaunch} {
						if err == nil {
							if status >= 400 {
								t.Errorf("HTTP %d: no error", status)
							}
							continue
						}
						msg := err.Error()
						var pe *providers.Error
						if errors.As(err, &pe) && pe.Err != nil {
							msg += " " + pe.Err.Error()
						}
						if strings.Contains(msg, secret) || strings.Contains(msg, configured) {
							t.Errorf("HTTP %d: a credential is in the error: %s", status, msg)
						}
						if strings.Contains(msg, redact.Mask) {
							masked++
						}
					}
				}
				if masked == 0 {
					t.Fatal("no error quoted the echo, so the test proved nothing")
				}
				if shared != nil && !strings.Contains(shared.String("x "+secret), redact.Mask) {
					t.Error("the adapter did not add its credential to the redactor")
				}
			})
		}
	}
}
