package fleet

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// workEnv is a fleet whose leases on work are decided by a Work, on the made-up vendor's
// emulator, whose instances are real SSH machines on loopback; one clock for the fleet, the
// store and the Work (the machines keep real time).
type workEnv struct {
	t     *testing.T
	emu   *vendors.Emulated
	p     providers.Provider
	clock *statetest.Clock
	store state.Store
	w     *work.Work
	fleet *Fleet
}

func newWorkEnv(t *testing.T) *workEnv {
	t.Helper()
	emu, err := vendors.Emulate(fakecloud.Vendor, emulated.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	reg, err := providers.NewRegistry(emu.Config.Provider(providers.HTTPOptions{}, nil))
	if err != nil {
		t.Fatal(err)
	}
	clock := statetest.NewClock(start)
	store := statetest.Open(t, state.MemoryURL, state.Options{Now: clock.Now})
	w, err := work.New(work.Options{Providers: reg, Store: store, Log: zerolog.Nop(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	f := newFleet(t, reg, store, clock.Now, "replica-a", func(o *Options) { o.Work = w })
	p, _ := reg.Get(fakecloud.Name)
	return &workEnv{t: t, emu: emu, p: p, clock: clock, store: store, w: w, fleet: f}
}

func (e *workEnv) launch() work.Machine {
	e.t.Helper()
	ctx := context.Background()
	offers, _ := e.p.ListOffers(ctx)
	res, err := e.p.Launch(ctx, providers.LaunchSpec{OfferID: offers[0].ID, ImageID: "fakecloud:pytorch-2.3", GPUCount: 1, Billing: providers.BillingHourly})
	if err != nil {
		e.t.Fatal(err)
	}
	m, err := e.w.Machine(ctx, res.InstanceID)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// pass advances the clock past the next check of every lease and runs a reconciliation pass.
func (e *workEnv) pass() []string {
	e.t.Helper()
	e.clock.Advance(time.Second)
	rep, err := e.fleet.ReconcileOnce(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	for _, a := range rep.Actions {
		lines = append(lines, a.String())
	}
	return lines
}

func (e *workEnv) state(id string) providers.State {
	e.t.Helper()
	in, err := e.p.GetInstance(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return in.State
}

// A job started with stop_instance_when_done keeps its instance running while it runs; once it
// has ended, the reconciler stops the instance, with no client involved, and the lease is done.
func TestJobEndLeaseStopsTheInstanceThroughTheReconciler(t *testing.T) {
	e := newWorkEnv(t)
	m := e.launch()
	ctx := context.Background()
	job, err := e.w.StartJob(ctx, m, work.JobSpec{Command: "while [ ! -e release ]; do sleep 0.05; done; exit 5", StopInstanceWhenDone: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := e.pass(); len(got) != 0 || e.state(m.Instance.ID) != providers.StateRunning {
			t.Fatalf("while the job runs: %q, %s", got, e.state(m.Instance.ID))
		}
	}
	l, _ := e.store.ListLeases(ctx, state.LeaseFilter{InstanceID: m.Instance.ID, Kind: state.LeaseJobEnd})
	if len(l) != 1 || !l[0].FiredAt.IsZero() || l[0].LastError != "" || !l[0].NextCheckAt.After(start) {
		t.Fatalf("the lease while the job runs: %+v", l)
	}
	if _, err := e.w.Pool().Run(ctx, m.Target, "touch release", remote.RunOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		st, err := e.w.Pool().JobStatus(ctx, m.Target, job.Job.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != remote.JobRunning {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job still runs a minute after its release")
		}
	}
	got := e.pass()
	want := "stopped " + m.Instance.ID + " (auto-stop when its jobs end (job " + job.Job.ID + " exited with status 5))"
	if len(got) != 1 || got[0] != want {
		t.Fatalf("after the job: %q, want %q", got, want)
	}
	if st := e.state(m.Instance.ID); st != providers.StateStopped && st != providers.StateStopping {
		t.Fatalf("the instance is %s", st)
	}
	l, _ = e.store.ListLeases(ctx, state.LeaseFilter{InstanceID: m.Instance.ID, Kind: state.LeaseJobEnd})
	if len(l) != 1 || l[0].FiredAt.IsZero() || l[0].Outcome != "stopped" {
		t.Fatalf("the lease after: %+v", l)
	}
	if rec, _ := e.store.GetJob(ctx, job.Job.ID); rec.ExitCode == nil || *rec.ExitCode != 5 {
		t.Fatalf("the job's record: %+v", rec)
	}
	if got := e.pass(); len(got) != 0 {
		t.Fatalf("a fired lease fired again: %q", got)
	}
	infos, err := e.fleet.Leases(ctx)
	if err != nil || len(infos) != 1 || infos[0].View.OverdueSince != nil {
		t.Fatalf("gpu-mcp leases: %+v %v", infos, err)
	}
}

// Busy GPUs keep the instance running; idle ones count on the reconciler's clock, and the
// lease stops the instance once they have been idle for the whole window.
func TestGPUIdleLeaseStopsTheInstanceThroughTheReconciler(t *testing.T) {
	e := newWorkEnv(t)
	m := e.launch()
	ctx := context.Background()
	if _, err := e.w.StopWhenIdle(ctx, m.Instance, work.IdlePolicy{BelowPct: 10, For: time.Minute}, ""); err != nil {
		t.Fatal(err)
	}
	_, local, _ := strings.Cut(m.Instance.ID, ":")
	machine, _ := e.emu.Machine(local)
	if err := machine.SetGPUUtilization(80); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got := e.pass(); len(got) != 0 {
			t.Fatalf("busy GPUs: %q", got)
		}
	}
	if err := machine.SetGPUUtilization(0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := 0; len(got) == 0; i++ {
		if i > 0 && e.state(m.Instance.ID) != providers.StateRunning {
			t.Fatal("stopped without an action")
		}
		if i > 70 {
			t.Fatalf("idle GPUs for %d passes of a second, and no stop", i)
		}
		got = e.pass()
		if len(got) == 0 && i >= 60 {
			t.Fatalf("still not due after %d idle seconds", i)
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], "stopped "+m.Instance.ID+" (auto-stop when its GPUs stay idle (every GPU under 10% utilization for 1m") {
		t.Fatalf("the stop: %q", got)
	}
}

// A machine that does not answer leaves the lease for the next pass, saying why, and stops
// nothing: whether its work ended is not known.
func TestWorkLeaseOfAMachineThatDoesNotAnswerWaits(t *testing.T) {
	e := newWorkEnv(t)
	m := e.launch()
	ctx := context.Background()
	if _, err := e.w.StartJob(ctx, m, work.JobSpec{Command: "sleep 300", StopInstanceWhenDone: true}); err != nil {
		t.Fatal(err)
	}
	_, local, _ := strings.Cut(m.Instance.ID, ":")
	machine, _ := e.emu.Machine(local)
	e.w.Pool().Disconnect(m.Instance.ID)
	if err := machine.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if got := e.pass(); len(got) != 0 {
			t.Fatalf("a machine that does not answer: %q", got)
		}
	}
	l, _ := e.store.ListLeases(ctx, state.LeaseFilter{InstanceID: m.Instance.ID, Kind: state.LeaseJobEnd})
	if len(l) != 1 || !l[0].FiredAt.IsZero() || !strings.Contains(l[0].LastError, "cannot reach") || e.state(m.Instance.ID) != providers.StateRunning {
		t.Fatalf("the lease: %+v, the instance %s", l, e.state(m.Instance.ID))
	}
}
