package fleet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

func (e *env) hold(key string) string {
	e.t.Helper()
	id, err := e.fleet.Reserve(context.Background(), Hold{Provider: "alpha", LaunchKey: key, PricePerHour: 2.5, Commit: 60, Kind: state.CommitLaunch},
		func(state.Snapshot) error { return nil })
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) holds() ([]state.Reservation, float64) {
	e.t.Helper()
	holds, committed, err := e.fleet.Spending(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return holds, committed
}

// A hold follows its launch: an order the vendor refused ends it and cancels its commitment;
// one whose answer was lost keeps it, and the reconciler that finds the instance names it in
// the hold; the auto-stop that stops the instance ends it, the commitment staying.
func TestHoldsFollowTheirLaunch(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)

	fake.launchErr = &providers.Error{Kind: providers.KindRejected, Provider: "alpha", Message: "sold out"}
	if _, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1", Hold: e.hold("k-1")}); providers.KindOf(err) != providers.KindRejected {
		t.Fatalf("refused: %v", err)
	}
	if holds, committed := e.holds(); len(holds) != 0 || committed != 0 {
		t.Fatalf("after a refused order: holds %+v, %.2f committed", holds, committed)
	}

	fake.set(func(f *fakeProvider) {
		f.launchErr, f.launchLost = &providers.Error{Kind: providers.KindUnknown, Provider: "alpha", Message: "connection dropped"}, true
	})
	id := e.hold("k-2")
	if _, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-2", Hold: id, AutoStop: 30 * time.Minute}); providers.KindOf(err) != providers.KindUnknown {
		t.Fatalf("lost: %v", err)
	}
	if holds, committed := e.holds(); len(holds) != 1 || holds[0].ID != id || holds[0].InstanceID != "" || committed != 60 {
		t.Fatalf("after a lost answer: holds %+v, %.2f committed", holds, committed)
	}
	e.clock.Advance(time.Minute)
	e.pass(e.replica("replica-b"))
	if holds, _ := e.holds(); len(holds) != 1 || holds[0].InstanceID != "alpha:new-2" {
		t.Fatalf("after the adoption: holds %+v", holds)
	}

	e.clock.Advance(30 * time.Minute) // the hold's own expiry is an hour away
	e.pass(e.fleet)
	if fake.state("new-2") != providers.StateStopped {
		t.Fatalf("the auto-stop did not stop new-2: %s", fake.state("new-2"))
	}
	if holds, committed := e.holds(); len(holds) != 0 || committed != 60 {
		t.Fatalf("after the auto-stop: holds %+v, %.2f committed", holds, committed)
	}
}

// Reserve returns the check's refusal as it is, and keeps nothing then.
func TestReserveReturnsTheRefusal(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	over := errors.New("over the limit")
	_, err := e.fleet.Reserve(context.Background(), Hold{Provider: "alpha", PricePerHour: 1, Commit: 5, Kind: state.CommitStart},
		func(state.Snapshot) error { return over })
	if err != over {
		t.Fatalf("err = %v, want the check's", err)
	}
	if holds, committed := e.holds(); len(holds) != 0 || committed != 0 {
		t.Fatalf("a refused hold kept %+v and %.2f", holds, committed)
	}
}
