package fleet

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

func (e *env) setLease(id string, after time.Duration, action state.LeaseAction) *AutoStop {
	e.t.Helper()
	as, err := e.fleet.SetLease(context.Background(), e.provider(), id, e.now().Add(after), action, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return as
}

func (e *env) annotated(id string) providers.Instance {
	e.t.Helper()
	in, err := e.provider().GetInstance(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	one := []providers.Instance{in}
	if err := e.fleet.Annotate(context.Background(), one); err != nil {
		e.t.Fatal(err)
	}
	return one[0]
}

// A due lease stops its instance once, shows its time on the instance meanwhile, and
// outlives the process: the next one carries out what is left.
func TestLeaseFiresOnceWhenDueAndOutlivesTheProcess(t *testing.T) {
	fake := newFake("alpha")
	fake.addInstance("i1", "one", providers.StateRunning)
	fake.addInstance("i2", "two", providers.StateRunning)
	var events []Event
	e := newEnv(t, fake, fake, func(o *Options) { o.Audit = func(ev Event) { events = append(events, ev) } })
	e.setLease("alpha:i1", time.Hour, state.ActionStop)
	e.setLease("alpha:i2", 3*time.Hour, state.ActionStop)
	in := e.annotated("alpha:i1")
	if in.StopsAt == nil || !in.StopsAt.Equal(start.Add(time.Hour)) || in.Managed == nil || in.Managed.Lease == nil ||
		in.Managed.Lease.By != "gpu-mcp" || in.Managed.LaunchedByGPUMCP || in.Managed.Orphan != "" {
		t.Fatalf("annotated before it is due: %+v %+v", in.StopsAt, in.Managed)
	}
	if got := e.pass(e.fleet); len(got) != 0 {
		t.Fatalf("before it is due: %q", got)
	}
	e.clock.Advance(time.Hour)
	if got := e.pass(e.fleet); !slices.Equal(got, []string{"stopped alpha:i1 (auto-stop due 2026-12-03T11:00:00Z)"}) {
		t.Fatalf("when due: %q", got)
	}
	if got := e.pass(e.fleet); len(got) != 0 {
		t.Fatalf("again: %q", got)
	}
	if l := e.lease("alpha:i1"); l.FiredAt.IsZero() || l.Outcome != "stopped" {
		t.Fatalf("lease %+v", l)
	}
	if v := e.annotated("alpha:i1").Managed.Lease; v.DoneAt == nil || v.OverdueSince != nil || v.Outcome != "stopped" {
		t.Fatalf("a carried out lease shows %+v", v)
	}
	e.fleet.Close()
	if l := e.lease("alpha:i2"); !l.FiredAt.IsZero() {
		t.Fatal("closing the process cancelled a lease")
	}
	e.clock.Advance(2 * time.Hour)
	if got := e.pass(e.replica("next")); !slices.Equal(got, []string{"stopped alpha:i2 (auto-stop due 2026-12-03T13:00:00Z)"}) {
		t.Fatalf("the next process: %q", got)
	}
	if m := fake.mutations(); !slices.Equal(m, []string{"stop i1", "stop i2"}) {
		t.Fatalf("mutations %v", m)
	}
	if len(events) != 1 || events[0].Kind != EventAutoStop || events[0].Failed || events[0].ApprovedAtLaunch {
		t.Fatalf("audit events %+v", events)
	}
}

// A stop a lease sent is seen through when the process ends meanwhile (a gpu-mcp call that
// exits, a client that quits): it reaches the vendor and the lease is done, instead of
// becoming a stop whose answer was lost, looked at again only after the vendor's grace while
// the instance bills.
func TestLeaseStopInFlightOutlivesTheProcessEnding(t *testing.T) {
	fake := newFake("alpha")
	fake.addInstance("i1", "one", providers.StateRunning)
	fake.stopGate, fake.stopping = make(chan struct{}), make(chan struct{})
	stopping := fake.stopping
	e := newEnv(t, fake, fake)
	e.setLease("alpha:i1", time.Minute, state.ActionStop)
	e.clock.Advance(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan Report, 1)
	go func() {
		rep, _ := e.fleet.ReconcileOnce(ctx)
		done <- rep
	}()
	<-stopping
	cancel() // the process ends while the stop is on its way
	time.Sleep(20 * time.Millisecond)
	close(fake.stopGate)
	rep := <-done
	if len(rep.Actions) != 1 || rep.Actions[0].Failed {
		t.Fatalf("the pass cut short: %+v", rep)
	}
	if m := fake.mutations(); !slices.Equal(m, []string{"stop i1"}) {
		t.Fatalf("mutations %v: the stop did not reach the vendor", m)
	}
	if l := e.lease("alpha:i1"); l.FiredAt.IsZero() || l.Outcome != "stopped" {
		t.Fatalf("lease %+v", l)
	}
}

// A vendor refusal is retried with a growing backoff and shown overdue (an orphan) until the
// stop succeeds.
func TestLeaseRefusedIsRetriedWithBackoffAndShownOverdue(t *testing.T) {
	fake := newFake("alpha")
	fake.addInstance("i1", "one", providers.StateRunning)
	fake.noStop = true
	var events []Event
	e := newEnv(t, fake, fake, func(o *Options) { o.Audit = func(ev Event) { events = append(events, ev) } })
	e.setLease("alpha:i1", time.Minute, state.ActionStop)
	e.clock.Advance(time.Minute)
	got := e.pass(e.fleet)
	if len(got) != 1 || !strings.HasPrefix(got[0], "FAILED alpha:i1 (auto-stop due 2026-12-03T10:01:00Z): alpha: the instance is booting; attempt 1, the next at") {
		t.Fatalf("refused: %q", got)
	}
	l := e.lease("alpha:i1")
	if l.Attempts != 1 || l.LastError != "alpha: the instance is booting" || !l.NextCheckAt.Equal(e.now().Add(e.fleet.o.Poll)) {
		t.Fatalf("after one refusal: %+v", l)
	}
	e.clock.Advance(time.Second)
	m := e.annotated("alpha:i1").Managed
	if m.Lease.OverdueSince == nil || !m.Lease.OverdueSince.Equal(start.Add(time.Minute)) ||
		m.Orphan != "auto-stop overdue since 2026-12-03T10:01:00Z: alpha: the instance is booting" {
		t.Fatalf("overdue: %+v %q", m.Lease, m.Orphan)
	}
	e.pass(e.fleet)
	if l := e.lease("alpha:i1"); l.Attempts != 2 || !l.NextCheckAt.Equal(e.now().Add(2*e.fleet.o.Poll)) {
		t.Fatalf("the backoff grows: %+v", l)
	}
	if got := e.pass(e.fleet); len(got) != 0 {
		t.Fatalf("within the backoff: %q", got)
	}
	fake.set(func(f *fakeProvider) { f.noStop = false })
	e.clock.Advance(time.Second)
	if got := e.pass(e.fleet); len(got) != 1 || !strings.HasPrefix(got[0], "stopped alpha:i1") {
		t.Fatalf("once the vendor lets it: %q", got)
	}
	if m := e.annotated("alpha:i1").Managed; m.Orphan != "" || m.Lease.OverdueSince != nil || m.Lease.LastError != "" {
		t.Fatalf("after the stop: %+v", m)
	}
	if len(events) != 2 || !events[0].Failed || events[1].Failed {
		t.Fatalf("audit: the first failure and the success, got %+v", events)
	}
}

// A stop whose answer was lost is checked by reading the instance, never sent again blindly.
func TestLeaseStopWhoseAnswerIsLostIsReadAgain(t *testing.T) {
	for _, took := range []bool{true, false} {
		t.Run(fmt.Sprintf("stopped=%v", took), func(t *testing.T) {
			fake := newFake("alpha")
			fake.addInstance("i1", "one", providers.StateRunning)
			fake.stopErr, fake.stopAnyway = &providers.Error{Kind: providers.KindUnknown, Provider: "alpha", Message: "connection dropped"}, took
			e := newEnv(t, fake, fake)
			e.setLease("alpha:i1", time.Minute, state.ActionStop)
			e.clock.Advance(time.Minute)
			if got := e.pass(e.fleet); len(got) != 1 || !strings.Contains(got[0], "stop sent, its answer lost") {
				t.Fatalf("lost: %q", got)
			}
			e.clock.Advance(e.fleet.o.Poll)
			got := e.pass(e.fleet)
			if took {
				if !slices.Equal(got, []string{"nothing to do alpha:i1 (auto-stop due 2026-12-03T10:01:00Z): already stopped"}) {
					t.Fatalf("read again: %q", got)
				}
			} else if len(got) != 1 || !strings.HasPrefix(got[0], "UNCONFIRMED alpha:i1") || !strings.Contains(got[0], "stopped again after") {
				t.Fatalf("within the grace, nothing is sent, and the pass says why: %q", got)
			}
			if n := fake.count("stop"); n != 1 {
				t.Fatalf("%d stops sent", n)
			}
			if took {
				return
			}
			fake.set(func(f *fakeProvider) { f.stopErr = nil })
			e.clock.Advance(e.fleet.o.VendorGrace)
			if got := e.pass(e.fleet); len(got) != 1 || !strings.HasPrefix(got[0], "stopped alpha:i1") {
				t.Fatalf("after the grace, the instance still runs: %q", got)
			}
		})
	}
}

// An auto-destroy stops a running instance first, then destroys it at the next look.
func TestLeaseDestroyStopsFirst(t *testing.T) {
	fake := newFake("alpha")
	fake.addInstance("i1", "one", providers.StateRunning)
	e := newEnv(t, fake, fake)
	e.setLease("alpha:i1", time.Minute, state.ActionDestroy)
	e.clock.Advance(time.Minute)
	if got := e.pass(e.fleet); !slices.Equal(got, []string{"stopped alpha:i1 (auto-destroy due 2026-12-03T10:01:00Z): destroying it once it is stopped"}) {
		t.Fatalf("first: %q", got)
	}
	e.clock.Advance(e.fleet.o.Poll)
	if got := e.pass(e.fleet); !slices.Equal(got, []string{"destroyed alpha:i1 (auto-destroy due 2026-12-03T10:01:00Z)"}) {
		t.Fatalf("then: %q", got)
	}
	if fake.state("i1") != "absent" {
		t.Fatal("not destroyed")
	}
}

// A vendor's timer is trusted until its grace has passed; then gpu-mcp stops what still runs.
// Clearing the lease cancels the timer too.
func TestVendorTimerIsCheckedAfterItsGrace(t *testing.T) {
	tf := &timerFake{fakeProvider: newFake("beta"), minLead: 5 * time.Minute}
	tf.addInstance("i1", "one", providers.StateRunning)
	tf.addInstance("i2", "two", providers.StateRunning)
	tf.addInstance("i3", "three", providers.StateRunning)
	e := newEnv(t, tf, tf.fakeProvider)
	for _, id := range []string{"beta:i1", "beta:i2", "beta:i3"} {
		if as := e.setLease(id, 10*time.Minute, state.ActionStop); as.By != StopByVendor {
			t.Fatalf("%s: %+v", id, as)
		}
	}
	note, err := e.fleet.ClearLease(context.Background(), e.provider(), "beta:i3")
	if err != nil || note != "" {
		t.Fatalf("clear: %q %v", note, err)
	}
	e.clock.Advance(10 * time.Minute)
	tf.mu.Lock()
	delete(tf.timers, "i2") // the vendor's timer failed to fire
	tf.mu.Unlock()
	tf.fireTimers()
	if got := e.pass(e.fleet); len(got) != 0 {
		t.Fatalf("within the grace: %q", got)
	}
	e.clock.Advance(e.fleet.o.VendorGrace)
	got := e.pass(e.fleet)
	slices.Sort(got)
	want := []string{"nothing to do beta:i1 (auto-stop due 2026-12-03T10:10:00Z): already stopped (by beta's timer)",
		"stopped beta:i2 (auto-stop due 2026-12-03T10:10:00Z)"}
	if !slices.Equal(got, want) {
		t.Fatalf("after the grace: %q", got)
	}
	if tf.state("i3") != providers.StateRunning || tf.count("cancel-timer") != 1 {
		t.Fatalf("the cleared one: %s %v", tf.state("i3"), tf.mutations())
	}
}

// A lease whose instance is gone is closed; one of a provider this process lacks fails loudly.
func TestLeaseOfAGoneInstanceOrAnUnknownProvider(t *testing.T) {
	fake := newFake("alpha")
	fake.addInstance("i1", "one", providers.StateRunning)
	e := newEnv(t, fake, fake)
	e.setLease("alpha:i1", time.Minute, state.ActionStop)
	if _, err := e.store.PutLease(context.Background(), state.Lease{InstanceID: "gamma:x", Provider: "gamma", Kind: state.LeaseTime,
		Action: state.ActionStop, DueAt: e.now(), Enforcer: state.EnforcerGPUMCP}); err != nil {
		t.Fatal(err)
	}
	fake.Destroy(context.Background(), "i1")
	e.clock.Advance(time.Minute)
	rep, err := e.fleet.ReconcileOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range rep.Actions {
		got = append(got, a.String())
	}
	slices.Sort(got)
	if len(got) != 2 || !strings.HasPrefix(got[0], "FAILED gamma:x (auto-stop due 2026-12-03T10:00:00Z): gamma is not configured in this gpu-mcp process") ||
		got[1] != "nothing to do alpha:i1 (auto-stop due 2026-12-03T10:01:00Z): the instance no longer exists" || !rep.Failed() {
		t.Fatalf("actions %q, failed %v", got, rep.Failed())
	}
}

// Several replicas on one store carry out each due lease exactly once: SQLite opened by two
// handles (as two processes do), and PostgreSQL (FOR UPDATE SKIP LOCKED).
func TestDueLeaseFiresOnceAcrossReplicas(t *testing.T) {
	for _, backend := range []struct {
		name string
		url  func(testing.TB) string
	}{{"sqlite", statetest.SQLiteURL}, {"postgres", statetest.PostgresURL}} {
		t.Run(backend.name, func(t *testing.T) {
			url := backend.url(t)
			clock := statetest.NewClock(start)
			fake := newFake("alpha")
			fake.now = clock.Now
			const n = 24
			var replicas []*Fleet
			for i := range 3 {
				reg, err := providers.NewRegistry(fake)
				if err != nil {
					t.Fatal(err)
				}
				store := statetest.Open(t, url, state.Options{Now: clock.Now})
				replicas = append(replicas, newFleet(t, reg, store, clock.Now, fmt.Sprintf("replica-%d", i)))
			}
			p, _ := replicas[0].o.Providers.Get("alpha")
			for i := range n {
				fake.addInstance(fmt.Sprintf("i%d", i), "", providers.StateRunning)
				if _, err := replicas[0].SetLease(context.Background(), p, fmt.Sprintf("alpha:i%d", i), start.Add(time.Minute), state.ActionStop, ""); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Minute)
			var mu sync.Mutex
			var actions []string
			var wg sync.WaitGroup
			for _, r := range replicas {
				for range 2 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						rep, err := r.ReconcileOnce(context.Background())
						if err != nil {
							t.Error(err)
						}
						mu.Lock()
						for _, a := range rep.Actions {
							actions = append(actions, a.String())
						}
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			if len(actions) != n || fake.count("stop") != n {
				t.Fatalf("%d actions and %d stops for %d due leases: %q", len(actions), fake.count("stop"), n, actions)
			}
			for i := range n {
				if fake.state(fmt.Sprintf("i%d", i)) != providers.StateStopped {
					t.Fatalf("i%d still runs", i)
				}
			}
		})
	}
}
