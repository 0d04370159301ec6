package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// dyingLaunch starts a launch in e.fleet that stops at hook (before or after the vendor's
// answer), as a process killed there would, and ends e.fleet (its heartbeat stops). The
// returned func lets the launch go on, as a process that only seemed dead would, and waits
// for it.
func dyingLaunch(t *testing.T, e *env, req LaunchRequest, beforeBuy bool) func() {
	t.Helper()
	hold, reached, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	pause := func() { close(reached); <-hold }
	if beforeBuy {
		e.fake.onLaunch = func(providers.LaunchSpec) { pause() }
	} else {
		e.fleet.o.AfterBuy = pause
	}
	go func() {
		defer close(done)
		e.launch(t, e.fleet, req)
	}()
	<-reached
	e.fleet.Close()
	return func() {
		close(hold)
		<-done
	}
}

// A launch left in flight by a process that died between the vendor's answer and the
// ledger's next write is adopted by another process once its owner's heartbeat is stale:
// found by the name gpu-mcp gave it, or, where the vendor keeps no name, by its creation time
// and GPU count; its auto-stop is applied and a repeat of its key returns it.
func TestLaunchLeftInFlightIsAdopted(t *testing.T) {
	for _, named := range []bool{true, false} {
		name := map[bool]string{true: "named", false: "unnamed"}[named]
		t.Run(name, func(t *testing.T) {
			fake := newFake("alpha")
			fake.ignoreNames = !named
			e := newEnv(t, fake, fake)
			resume := dyingLaunch(t, e, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: time.Minute, AutoStop: time.Hour}, false)
			if l := e.ledger("k-1"); l.Status != state.LaunchIntent || l.InstanceID != "" {
				t.Fatalf("the ledger at the crash: %+v", l)
			}
			b := e.replica("replica-b")
			if got := e.pass(b); len(got) != 0 {
				t.Fatalf("taken over before its owner's heartbeat is stale: %q", got)
			}
			e.clock.Advance(b.o.StaleAfter + time.Second)
			got := e.pass(b)
			how := "by its name " + VendorName("k-1", "", 1)
			if !named {
				how = "by its creation time and GPU count"
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], "adopted alpha:new-1 (launch k-1): found "+how) {
				t.Fatalf("the other process: %q", got)
			}
			l := e.ledger("k-1")
			if l.Status != state.LaunchReady || l.InstanceID != "alpha:new-1" || l.Owner != "" {
				t.Fatalf("the ledger after: %+v", l)
			}
			prior, err := b.Lookup(context.Background(), "k-1", "args-k-1")
			if err != nil || prior == nil || prior.Outcome == nil || prior.Outcome.InstanceID != "alpha:new-1" || prior.Outcome.AutoStop == nil {
				t.Fatalf("a repeat of the key: %+v %v", prior, err)
			}
			if lease := e.lease("alpha:new-1"); !lease.DueAt.Equal(start.Add(time.Hour)) || lease.LaunchKey != "k-1" {
				t.Fatalf("its lease: %+v", lease)
			}
			if m := e.annotated("alpha:new-1").Managed; m == nil || !m.LaunchedByGPUMCP || m.Key != "k-1" || m.Lease == nil || m.Orphan != "" {
				t.Fatalf("managed: %+v", m)
			}
			// The process that seemed dead wakes up: what it writes agrees, nothing is bought.
			resume()
			if l := e.ledger("k-1"); l.Status != state.LaunchReady || l.InstanceID != "alpha:new-1" {
				t.Fatalf("after the old owner went on: %+v", l)
			}
			if n := fake.count("launch"); n != 1 {
				t.Fatalf("%d buys", n)
			}
		})
	}
}

// A launch whose process died before the vendor was called is marked failed once nothing of
// it is listed after LostGrace, and its key is free again.
func TestLaunchLostBeforeTheBuyIsMarkedFailed(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	resume := dyingLaunch(t, e, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: time.Minute}, true)
	b := e.replica("replica-b")
	e.clock.Advance(b.o.StaleAfter + time.Second)
	if got := e.pass(b); len(got) != 0 {
		t.Fatalf("within the grace: %q", got)
	}
	e.clock.Advance(b.o.LostGrace)
	got := e.pass(b)
	if len(got) != 1 || !strings.HasPrefix(got[0], "marked failed launch k-1: alpha lists no instance of this launch") || !strings.Contains(got[0], "nothing was bought") {
		t.Fatalf("after the grace: %q", got)
	}
	if prior, err := b.Lookup(context.Background(), "k-1", "args-k-1"); prior != nil || err != nil {
		t.Fatalf("the key is free again: %+v %v", prior, err)
	}
	// Should the old process go on after all, what it bought is recorded, not lost.
	resume()
	if l := e.ledger("k-1"); l.Status != state.LaunchReady || l.InstanceID != "alpha:new-1" {
		t.Fatalf("after the old owner bought after all: %+v", l)
	}
}

// Where several instances could be a lost launch's, none is taken: the launch is reported,
// loudly, as of unknown outcome.
func TestFingerprintTakesNoneWhenSeveralFit(t *testing.T) {
	fake := newFake("alpha")
	fake.ignoreNames = true
	e := newEnv(t, fake, fake)
	resume1 := dyingLaunch(t, e, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: time.Minute}, false)
	e.fleet = e.replica("replica-a2")
	resume2 := dyingLaunch(t, e, LaunchRequest{Key: "k-2", Wait: true, WaitTimeout: time.Minute}, false)
	b := e.replica("replica-b")
	e.clock.Advance(b.o.StaleAfter + time.Second)
	if got := e.pass(b); len(got) != 0 {
		t.Fatalf("two candidates: %q", got)
	}
	e.clock.Advance(b.o.LostGrace)
	rep, err := b.ReconcileOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Actions) != 2 || !rep.Failed() || !strings.Contains(rep.Actions[0].Detail, "several instances could be it: alpha:new-1, alpha:new-2") {
		t.Fatalf("after the grace: %+v", rep.Actions)
	}
	for _, k := range []string{"k-1", "k-2"} {
		if l := e.ledger(k); l.Status != state.LaunchUnknown {
			t.Fatalf("%s: %+v", k, l)
		}
	}
	resume1()
	resume2()
}

// list_instances' view: what gpu-mcp launched, and orphans: named by gpu-mcp with no record.
func TestAnnotateAndOrphans(t *testing.T) {
	fake := newFake("alpha")
	e := newEnv(t, fake, fake)
	if _, err := e.launch(t, e.fleet, LaunchRequest{Key: "k-1", Wait: true, WaitTimeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	fake.addInstance("mine", "console-made", providers.StateRunning)
	fake.addInstance("lost", VendorName("k-gone", "train", 1), providers.StateRunning)
	orphans, failed, err := e.fleet.Orphans(context.Background())
	if err != nil || len(failed) != 0 {
		t.Fatal(err, failed)
	}
	if len(orphans) != 1 || orphans[0].Instance.ID != "alpha:lost" || !strings.Contains(orphans[0].Why, "no record of it") {
		t.Fatalf("orphans %+v", orphans)
	}
	all, _ := e.provider().ListInstances(context.Background())
	if err := e.fleet.Annotate(context.Background(), all); err != nil {
		t.Fatal(err)
	}
	byID := map[string]*providers.Managed{}
	for _, in := range all {
		byID[in.ID] = in.Managed
	}
	if m := byID["alpha:new-1"]; m == nil || !m.LaunchedByGPUMCP || m.Key != "k-1" || m.Orphan != "" {
		t.Fatalf("launched: %+v", m)
	}
	if m, listed := byID["alpha:mine"]; !listed || m != nil {
		t.Fatalf("one gpu-mcp knows nothing of: %+v", m)
	}
	if m := byID["alpha:lost"]; m == nil || !m.LaunchedByGPUMCP || m.Key != "" || m.Orphan == "" {
		t.Fatalf("an orphan: %+v", m)
	}
}
