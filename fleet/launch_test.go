package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// The ledger holds a launch's intent before the vendor is called, names the instance after
// its key, records each step, and answers a repeat of the key without buying again.
func TestLaunchLedgerIntentFirstThenEachStep(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	var before state.Launch
	fake.onLaunch = func(spec providers.LaunchSpec) {
		before = e.ledger("k-1")
		if spec.Name != before.VendorName {
			t.Errorf("the vendor is asked for name %q, the ledger holds %q", spec.Name, before.VendorName)
		}
	}
	out, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: 5 * time.Second, Spec: providers.LaunchSpec{Name: "train"}})
	if err != nil {
		t.Fatal(err)
	}
	if before.Status != state.LaunchIntent || before.Owner != "replica-a" || before.InstanceID != "" || before.ArgsHash != "args-k-1" {
		t.Fatalf("the ledger before the buy: %+v", before)
	}
	if want := VendorName("k-1", "train", 1); before.VendorName != want || !strings.HasPrefix(want, "train-gm-") || !vendorNameRE.MatchString(want) {
		t.Fatalf("vendor name %q, want %q in gpu-mcp's pattern", before.VendorName, want)
	}
	if !out.Ready || out.InstanceID != "alpha:new-1" || out.Failed {
		t.Fatalf("outcome %+v", out)
	}
	after := e.ledger("k-1")
	if after.Status != state.LaunchReady || after.InstanceID != "alpha:new-1" || after.OrderID != "order-new-1" {
		t.Fatalf("the ledger after: %+v", after)
	}
	if strings.Contains(string(after.Result), "s3cret-pw") {
		t.Fatal("the ledger keeps the SSH password")
	}
	prior, err := e.fleet.Lookup(context.Background(), "k-1", "args-k-1")
	if err != nil || prior == nil || prior.Outcome == nil || prior.Outcome.InstanceID != "alpha:new-1" {
		t.Fatalf("lookup: %+v %v", prior, err)
	}
	if _, err := e.fleet.Lookup(context.Background(), "k-1", "other"); err == nil || !strings.Contains(err.Error(), "other arguments") {
		t.Fatalf("the key with other arguments: %v", err)
	}
	// Another replica's launch under the same key buys nothing.
	if _, err := e.launch(t, e.replica("replica-b"), LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: 5 * time.Second}); providers.KindOf(err) != providers.KindConflict {
		t.Fatalf("the key again: %v", err)
	}
	if n := fake.count("launch"); n != 1 {
		t.Fatalf("%d buys, want 1", n)
	}
}

// An order the vendor refused frees its key; one whose answer was lost keeps it, and the
// reconciler finds its instance by the name gpu-mcp gave it.
func TestLaunchWhoseOrderFailedOrWasLost(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	fake.launchErr = &providers.Error{Kind: providers.KindRejected, Provider: "alpha", Message: "sold out"}
	if _, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1"}); providers.KindOf(err) != providers.KindRejected {
		t.Fatalf("refused: %v", err)
	}
	if prior, err := e.fleet.Lookup(context.Background(), "k-1", "args-k-1"); prior != nil || err != nil {
		t.Fatalf("a refused order keeps its key: %+v %v", prior, err)
	}
	fake.set(func(f *fakeProvider) {
		f.launchErr, f.launchLost = &providers.Error{Kind: providers.KindUnknown, Provider: "alpha", Message: "connection dropped"}, true
	})
	if _, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1", AutoStop: time.Hour}); providers.KindOf(err) != providers.KindUnknown {
		t.Fatalf("lost: %v", err)
	}
	prior, err := e.fleet.Lookup(context.Background(), "k-1", "args-k-1")
	if err != nil || prior == nil || prior.Outcome != nil || prior.Status != state.LaunchUnknown {
		t.Fatalf("after a lost answer: %+v %v", prior, err)
	}
	if l := e.ledger("k-1"); l.Owner != "" {
		t.Fatalf("a launch of unknown outcome is left to the reconciler: owner %q", l.Owner)
	}
	// Looked for again after a while, not at every pass.
	if got := e.pass(e.fleet); len(got) != 0 {
		t.Fatalf("at once: %q", got)
	}
	e.clock.Advance(time.Minute)
	got := e.pass(e.replica("replica-b"))
	if len(got) != 1 || !strings.HasPrefix(got[0], "adopted alpha:new-2 (launch k-1)") || !strings.Contains(got[0], "by its name "+VendorName("k-1", "", 1)) {
		t.Fatalf("the reconciler: %q", got)
	}
	prior, _ = e.fleet.Lookup(context.Background(), "k-1", "args-k-1")
	if prior == nil || prior.Outcome == nil || prior.Outcome.InstanceID != "alpha:new-2" || prior.Outcome.AutoStop == nil {
		t.Fatalf("the adopted launch: %+v", prior)
	}
	if l := e.lease("alpha:new-2"); l.DueAt.IsZero() || l.LaunchKey != "k-1" {
		t.Fatalf("its lease: %+v", l)
	}
	if n := fake.count("launch"); n != 2 {
		t.Fatalf("%d buys, want 2 (one refused, one lost)", n)
	}
}

// auto_stop_after becomes a lease in the store: enforced by gpu-mcp where the vendor has no
// timer, by the vendor's timer where it takes the time, by gpu-mcp where the timer refuses.
func TestAutoStopAtLaunchIsALease(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	out, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: 5 * time.Second, AutoStop: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	due := start.Add(time.Hour)
	if out.AutoStop == nil || out.AutoStop.By != StopByGPUMCP || !out.AutoStop.At.Equal(due) || !strings.Contains(out.AutoStop.Note, "no shutdown timer") {
		t.Fatalf("auto-stop %+v", out.AutoStop)
	}
	if out.Instance.StopsAt == nil || !out.Instance.StopsAt.Equal(due) {
		t.Fatalf("stops_at %v", out.Instance.StopsAt)
	}
	if l := e.lease("alpha:new-1"); l.Enforcer != state.EnforcerGPUMCP || !l.DueAt.Equal(due) || !l.NextCheckAt.Equal(due) || l.Action != state.ActionStop {
		t.Fatalf("lease %+v", l)
	}

	tf := &timerFake{fakeProvider: newFake("beta"), minLead: 5 * time.Minute}
	e = newEnv(t, tf, tf.fakeProvider)
	out, err = e.launch(t, e.fleet, LaunchRequest{Key: "k-2", Wait: true, WaitTimeout: 5 * time.Second, AutoStop: time.Hour})
	if err != nil || out.AutoStop == nil || out.AutoStop.By != StopByVendor {
		t.Fatalf("with a timer: %+v %v", out.AutoStop, err)
	}
	if l := e.lease("beta:new-1"); l.Enforcer != state.EnforcerVendor || !l.NextCheckAt.Equal(due.Add(e.fleet.o.VendorGrace)) {
		t.Fatalf("a vendor timer's lease is checked after its grace: %+v", l)
	}
	out, err = e.launch(t, e.fleet, LaunchRequest{Key: "k-3", Wait: true, WaitTimeout: 5 * time.Second, AutoStop: time.Minute})
	if err != nil || out.AutoStop == nil || out.AutoStop.By != StopByGPUMCP || !strings.Contains(out.AutoStop.Note, "refused") {
		t.Fatalf("too short for the timer: %+v %v", out.AutoStop, err)
	}
}

// A client that gives up while a launch waits does not leave a machine that never comes up
// billing: the wait goes on without it, and the instance is cleaned up.
func TestAbandonedLaunchIsStillCleanedUp(t *testing.T) {
	t.Parallel()
	fake := newFake("alpha")
	fake.launchState = providers.StatePending
	ctx, cancel := context.WithCancel(context.Background())
	var events []Event
	e := newEnvAt(t, fake, fake, time.Now, func(o *Options) {
		o.AfterBuy = cancel
		o.Audit = func(ev Event) { events = append(events, ev) }
	})
	offers, _ := e.provider().ListOffers(ctx)
	out, err := e.fleet.Launch(ctx, LaunchRequest{Key: "k-1", ArgsHash: "a", Offer: offers[0], Wait: true, WaitTimeout: 300 * time.Millisecond,
		Spec: providers.LaunchSpec{OfferID: offers[0].ID, ImageID: "alpha:img1", GPUCount: 1}})
	if err != nil || len(out.Attempts) != 1 || out.Attempts[0].Result != AttemptOrdered || !strings.Contains(out.Attempts[0].Detail, "keeps watching") {
		t.Fatalf("cancelled launch: %+v %v", out, err)
	}
	waitFor(t, "the abandoned instance cleaned up", func() bool { return e.ledger("k-1").Status == state.LaunchCleanedUp })
	if m := fake.mutations(); strings.Join(m, ",") != "launch o1/img1,stop new-1,destroy new-1" {
		t.Fatalf("mutations %v", m)
	}
	prior, _ := e.fleet.Lookup(context.Background(), "k-1", "a")
	if prior == nil || prior.Outcome == nil || !prior.Outcome.Failed || prior.Outcome.Attempts[0].Cleanup != "stopped, then destroyed" {
		t.Fatalf("the ledger's answer: %+v", prior)
	}
	e.fleet.Close()
	if len(events) != 1 || events[0].Kind != EventLaunchCleanup || !events[0].ApprovedAtLaunch {
		t.Fatalf("audit events %+v", events)
	}
}

// A process that ends while it follows a launch whose client went away hands it back to the
// store: another process finishes it.
func TestFollowedLaunchIsHandedOnWhenTheProcessEnds(t *testing.T) {
	t.Parallel()
	fake := newFake("alpha")
	fake.launchState = providers.StatePending
	ctx, cancel := context.WithCancel(context.Background())
	e := newEnvAt(t, fake, fake, time.Now, func(o *Options) { o.AfterBuy = cancel })
	offers, _ := e.provider().ListOffers(ctx)
	if _, err := e.fleet.Launch(ctx, LaunchRequest{Key: "k-1", ArgsHash: "a", Offer: offers[0], Wait: true, WaitTimeout: 200 * time.Millisecond,
		Spec: providers.LaunchSpec{OfferID: offers[0].ID, ImageID: "alpha:img1", GPUCount: 1}}); err != nil {
		t.Fatal(err)
	}
	e.fleet.Close()
	if l := e.ledger("k-1"); l.Owner != "" || l.Status != state.LaunchCreated {
		t.Fatalf("after Close: %+v", l)
	}
	b := e.replica("replica-b")
	var got []string
	waitFor(t, "the other process cleans it up", func() bool {
		got = append(got, e.pass(b)...)
		return e.ledger("k-1").Status == state.LaunchCleanedUp
	})
	if len(got) != 1 || !strings.HasPrefix(got[0], "cleaned up alpha:new-1 (launch k-1): still pending at the launch's wait deadline") {
		t.Fatalf("actions %q", got)
	}
	if fake.state("new-1") != "absent" {
		t.Fatalf("the instance is %s", fake.state("new-1"))
	}
}

// A fallback offer is bought under the launch's key with the attempt's name; the ledger
// follows the current attempt and keeps the launch's name.
func TestFallbackOfferIsAnAttemptOfTheSameLaunch(t *testing.T) {
	fake := newFake("alpha")
	cheap := fake.offers[0]
	cheap.ID = "o2"
	fake.offers = append(fake.offers, cheap)
	fake.soldOut = map[string]bool{"o1": true}
	e := newEnv(t, fake, fake)
	vetted := 0
	out, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: 5 * time.Second, Fallbacks: 1,
		Vet: func(_ context.Context, o providers.Offer) (providers.LaunchSpec, error) {
			vetted++
			return providers.LaunchSpec{OfferID: o.ID, ImageID: "alpha:img1", GPUCount: 1, Billing: providers.BillingHourly}, nil
		}})
	if err != nil || vetted != 1 || len(out.Attempts) != 2 || out.Attempts[0].Result != AttemptRefused || out.InstanceID != "alpha:new-2" {
		t.Fatalf("fallback: %+v %v (vetted %d)", out, err, vetted)
	}
	l := e.ledger("k-1")
	if l.OfferID != "alpha:o2" || l.InstanceID != "alpha:new-2" || l.VendorName != VendorName("k-1", "", 1) || l.Status != state.LaunchReady {
		t.Fatalf("ledger %+v", l)
	}
	in, _ := e.provider().GetInstance(context.Background(), "alpha:new-2")
	if in.Name != VendorName("k-1", "", 2) {
		t.Fatalf("the second attempt's name %q", in.Name)
	}
	if name, ok := launchName(in.Name); !ok || name != l.VendorName {
		t.Fatalf("launch name of %q: %q %v", in.Name, name, ok)
	}
}

// waitFor polls cond until it holds, failing the test after a generous time.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
	}
}
