package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// cancellable runs a launch in f whose context the returned func cancels with cause; the
// launch's outcome arrives on the channel.
func cancellable(t *testing.T, e *env, f *Fleet, req LaunchRequest) (func(cause error), <-chan Outcome) {
	t.Helper()
	offers, _ := e.provider().ListOffers(context.Background())
	req.Offer = offers[0]
	req.Spec = providers.LaunchSpec{OfferID: req.Offer.ID, ImageID: "alpha:img1", GPUCount: 1, Billing: providers.BillingHourly}
	req.ArgsHash = "args-" + req.Key
	ctx, cancel := context.WithCancelCause(context.Background())
	out := make(chan Outcome, 1)
	go func() {
		o, err := f.Launch(ctx, req)
		if err != nil {
			t.Errorf("launch: %v", err)
		}
		out <- o
	}()
	return cancel, out
}

// A launch the user cancels while its instance comes up is cleaned up like one that did not
// come up: stopped, then destroyed; the ledger says so.
func TestCancelledLaunchIsCleanedUp(t *testing.T) {
	fake := newFake("alpha")
	fake.launchState = providers.StateStarting
	e := newEnvAt(t, fake, fake, time.Now)
	cancel, out := cancellable(t, e, e.fleet, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: time.Minute})
	for fake.count("launch") == 0 {
		time.Sleep(time.Millisecond)
	}
	if inFlight, err := e.fleet.CancelLaunch(context.Background(), "k-1"); err != nil || !inFlight {
		t.Fatalf("CancelLaunch: %v %v", inFlight, err)
	}
	cancel(ErrCancelled)
	o := <-out
	att := o.Attempts[0]
	if !o.Failed || att.Result != AttemptCancelled || att.Cleanup != "stopped, then destroyed" || att.Billing != BillingNo {
		t.Fatalf("outcome %+v", o)
	}
	if fake.state("new-1") != "absent" {
		t.Fatalf("the instance is %s", fake.state("new-1"))
	}
	if l := e.ledger("k-1"); l.Status != state.LaunchCleanedUp {
		t.Fatalf("the ledger: %+v", l)
	}
	if inFlight, err := e.fleet.CancelLaunch(context.Background(), "k-1"); err != nil || inFlight {
		t.Fatalf("cancelling a launch seen through: %v %v", inFlight, err)
	}
}

// A launch cancelled before its buy buys nothing; a launch whose client merely stopped
// waiting (no ErrCancelled) is followed on, not cleaned up.
func TestCancelBeforeTheBuyAndAClientThatStopsWaiting(t *testing.T) {
	fake := newFake("alpha")
	fake.launchState = providers.StateStarting
	e := newEnvAt(t, fake, fake, time.Now)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(ErrCancelled)
	offers, _ := e.provider().ListOffers(context.Background())
	o, err := e.fleet.Launch(ctx, LaunchRequest{Key: "k-0", ArgsHash: "a", Offer: offers[0], Wait: true, WaitTimeout: time.Minute,
		Spec: providers.LaunchSpec{OfferID: "alpha:o1", ImageID: "alpha:img1", GPUCount: 1, Billing: providers.BillingHourly}})
	if err != nil || o.Attempts[0].Result != AttemptCancelled || fake.count("launch") != 0 {
		t.Fatalf("cancelled before the buy: %+v %v, buys %d", o, err, fake.count("launch"))
	}
	stop, out := cancellable(t, e, e.fleet, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: time.Minute})
	for fake.count("launch") == 0 {
		time.Sleep(time.Millisecond)
	}
	stop(context.Canceled)
	if o := <-out; o.Attempts[0].Result != AttemptOrdered || fake.count("stop") != 0 || fake.count("destroy") != 0 {
		t.Fatalf("a client that stopped waiting: %+v, changes %v", o, fake.mutations())
	}
}

// A launch left in flight by a dead process and then cancelled is cleaned up by the
// reconciler that takes it over, not adopted.
func TestCancelledLaunchLeftInFlightIsCleanedUpByTheReconciler(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	// The process that seemed dead looks for the destroyed instance until its wait deadline.
	resume := dyingLaunch(t, e, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: 5 * time.Second, AutoStop: time.Hour}, false)
	b := e.replica("replica-b")
	if inFlight, err := b.CancelLaunch(context.Background(), "k-1"); err != nil || !inFlight {
		t.Fatalf("CancelLaunch: %v %v", inFlight, err)
	}
	e.clock.Advance(b.o.StaleAfter + time.Second)
	got := e.pass(b)
	if len(got) != 1 || !strings.HasPrefix(got[0], "cleaned up alpha:new-1 (launch k-1): cancelled by the user; stopped, then destroyed") {
		t.Fatalf("the reconciler: %q", got)
	}
	if fake.state("new-1") != "absent" {
		t.Fatalf("the instance is %s", fake.state("new-1"))
	}
	l := e.ledger("k-1")
	prior, err := b.Launched(context.Background(), "k-1")
	if l.Status != state.LaunchCleanedUp || err != nil || prior.InFlight || prior.Outcome == nil || prior.Outcome.Attempts[0].Result != AttemptCancelled {
		t.Fatalf("the ledger: %+v; Launched: %+v %v", l, prior, err)
	}
	resume()
	if n := fake.count("launch"); n != 1 {
		t.Fatalf("%d buys, want 1", n)
	}
	if none, err := b.Launched(context.Background(), "k-unknown"); none != nil || err != nil {
		t.Fatalf("Launched of an unknown key: %+v %v", none, err)
	}
}
