package work

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is the made-up vendor's emulator, its adapter in a registry, a store and a Work.
type rig struct {
	t     *testing.T
	emu   *vendors.Emulated
	p     providers.Provider
	store state.Store
	w     *Work
}

func newRig(t *testing.T, wrap func(state.Store) state.Store) *rig {
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
	st, err := state.Open(context.Background(), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var used state.Store = st
	if wrap != nil {
		used = wrap(st)
	}
	w, err := New(Options{Providers: reg, Store: used, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	p, _ := reg.Get(fakecloud.Name)
	return &rig{t: t, emu: emu, p: p, store: st, w: w}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// launch makes a running instance of gpus GPUs and returns its qualified id.
func (r *rig) launch(gpus int) string {
	r.t.Helper()
	offers, err := r.p.ListOffers(ctxT(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	images, err := r.p.ListImages(ctxT(r.t), providers.ImageQuery{OfferID: offers[0].ID})
	if err != nil {
		r.t.Fatal(err)
	}
	res, err := r.p.Launch(ctxT(r.t), providers.LaunchSpec{OfferID: offers[0].ID, ImageID: images[0].ID, GPUCount: gpus, Billing: providers.BillingHourly})
	if err != nil {
		r.t.Fatal(err)
	}
	return res.InstanceID
}

func (r *rig) machine(id string) Machine {
	r.t.Helper()
	m, err := r.w.Machine(ctxT(r.t), id)
	if err != nil {
		r.t.Fatal(err)
	}
	return m
}

func (r *rig) run(m Machine, cmd string) remote.RunResult {
	r.t.Helper()
	res, err := r.w.Pool().Run(ctxT(r.t), m.Target, cmd, remote.RunOptions{})
	if err != nil || res.ExitCode != 0 {
		r.t.Fatalf("%s: %+v %v", cmd, res, err)
	}
	return res
}

func (r *rig) emulated(id string) *machinetest.Machine {
	r.t.Helper()
	_, local, _ := strings.Cut(id, ":")
	m, ok := r.emu.Machine(local)
	if !ok {
		r.t.Fatalf("no machine for %s", id)
	}
	return m
}

func (r *rig) check(id string, kind state.LeaseKind, now time.Time) Check {
	r.t.Helper()
	ls, err := r.store.ListLeases(ctxT(r.t), state.LeaseFilter{InstanceID: id, Kind: kind, Pending: true})
	if err != nil || len(ls) != 1 {
		r.t.Fatalf("leases of %s: %v %v", id, ls, err)
	}
	c, err := r.w.CheckLease(ctxT(r.t), ls[0], now)
	if err != nil {
		r.t.Fatalf("check: %v", err)
	}
	if c.Params != nil {
		l := ls[0]
		l.Params = c.Params
		if _, err := r.store.PutLease(ctxT(r.t), l); err != nil {
			r.t.Fatal(err)
		}
	}
	return c
}

// waitExited polls the job until the machine reports its end.
func (r *rig) waitExited(m Machine, id string) JobState {
	r.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		st, err := r.w.JobStatus(ctxT(r.t), m, id)
		if err != nil {
			r.t.Fatal(err)
		}
		if st.State != remote.JobRunning {
			return st
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("job %s still runs after a minute", id)
		}
	}
}

func TestMachineIsTheLoginTheVendorGives(t *testing.T) {
	r := newRig(t, nil)
	id := r.launch(2)
	m := r.machine(id)
	inst, err := r.p.GetInstance(ctxT(t), id)
	if err != nil {
		t.Fatal(err)
	}
	c := inst.Connection
	if m.Target.Host != c.SSHHost || m.Target.Port != c.SSHPort || m.Target.User != c.SSHUser || m.Target.Password != c.SSHPassword || m.Target.InstanceID != id {
		t.Fatalf("target %v, connection %+v", m.Target, c)
	}
	rep, err := r.w.Pool().GPUStatus(ctxT(t), m.Target)
	if err != nil || len(rep.GPUs) != 2 || rep.GPUs[0].Name != inst.GPUModel {
		t.Fatalf("GPUs %+v (%v), the instance has 2 x %s", rep.GPUs, err, inst.GPUModel)
	}
	// The host key is pinned in the store.
	if pinned, first, err := r.store.PinHostKey(ctxT(t), id, []byte("x")); err != nil || first ||
		remote.Fingerprint(pinned) != remote.Fingerprint(r.emulated(id).HostKey().Marshal()) {
		t.Fatalf("pinned %s first %v %v", remote.Fingerprint(pinned), first, err)
	}

	if err := r.p.Stop(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	_, err = r.w.Machine(ctxT(t), id)
	var nr *NotRunningError
	if !errors.As(err, &nr) || nr.State != providers.StateStopped || !strings.Contains(err.Error(), "start_instance") {
		t.Fatalf("a stopped instance: %v", err)
	}
}

func TestJobEndLeaseIsDueOnceEveryJobEnded(t *testing.T) {
	r := newRig(t, nil)
	id := r.launch(1)
	m := r.machine(id)
	a, err := r.w.StartJob(ctxT(t), m, JobSpec{Command: "while [ ! -e release-a ]; do sleep 0.05; done; exit 3", StopInstanceWhenDone: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.w.StartJob(ctxT(t), m, JobSpec{Command: "while [ ! -e release-b ]; do sleep 0.05; done", StopInstanceWhenDone: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Leases) != 1 || a.Leases[0].Kind != state.LeaseJobEnd || !a.Record.StopInstanceWhenDone || a.Record.PID != a.Job.PID {
		t.Fatalf("started: %+v", a)
	}
	now := time.Now()
	if c := r.check(id, state.LeaseJobEnd, now); c.Due || !strings.Contains(c.Reason, "runs") {
		t.Fatalf("both run: %+v", c)
	}
	r.run(m, "touch release-a")
	if st := r.waitExited(m, a.Job.ID); st.State != remote.JobExited || st.ExitCode != 3 || !st.StopInstanceWhenDone {
		t.Fatalf("job a: %+v", st)
	}
	rec, err := r.store.GetJob(ctxT(t), a.Job.ID)
	if err != nil || rec.ExitCode == nil || *rec.ExitCode != 3 || rec.EndedAt.IsZero() {
		t.Fatalf("a's record: %+v %v", rec, err)
	}
	// The lease was put anew by b, naming b; a has ended; b still runs.
	if c := r.check(id, state.LeaseJobEnd, now); c.Due || !strings.Contains(c.Reason, b.Job.ID) {
		t.Fatalf("b runs: %+v", c)
	}
	r.run(m, "touch release-b")
	r.waitExited(m, b.Job.ID)
	c := r.check(id, state.LeaseJobEnd, now)
	if !c.Due || !strings.Contains(c.Reason, "job "+b.Job.ID+" exited with status 0") {
		t.Fatalf("both ended: %+v", c)
	}

	// The instance stopped (by the lease, or by hand): the lease is due, the firing finds it
	// stopped. Its jobs are then known from their records.
	if err := r.p.Stop(ctxT(t), id); err != nil {
		t.Fatal(err)
	}
	if c := r.check(id, state.LeaseJobEnd, now); !c.Due || !strings.Contains(c.Reason, "stopped") {
		t.Fatalf("stopped instance: %+v", c)
	}
	if st, err := r.w.RecordedJob(ctxT(t), id, a.Job.ID); err != nil || !st.Recorded || st.State != remote.JobExited || st.ExitCode != 3 {
		t.Fatalf("recorded: %+v %v", st, err)
	}
	if _, err := r.w.RecordedJob(ctxT(t), "fakecloud:other", a.Job.ID); err == nil {
		t.Fatal("a job is found under another instance")
	}
}

func TestJobEndLeaseCountsALostJobAsEnded(t *testing.T) {
	r := newRig(t, nil)
	id := r.launch(1)
	m := r.machine(id)
	j, err := r.w.StartJob(ctxT(t), m, JobSpec{Command: "sleep 300", StopInstanceWhenDone: true})
	if err != nil {
		t.Fatal(err)
	}
	r.run(m, "kill -KILL -"+strconv.Itoa(j.Job.PID)) // killed from outside: no exit status is written
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		c := r.check(id, state.LeaseJobEnd, time.Now())
		if c.Due {
			if !strings.Contains(c.Reason, "without an exit status") {
				t.Fatalf("lost job: %+v", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a killed job still counts as running")
		}
	}
	rec, _ := r.store.GetJob(ctxT(t), j.Job.ID)
	if rec.EndedAt.IsZero() || rec.ExitCode != nil {
		t.Fatalf("record of a lost job: %+v", rec)
	}
}

func TestGPUIdleLease(t *testing.T) {
	r := newRig(t, nil)
	id := r.launch(2)
	m := r.machine(id)
	policy := IdlePolicy{BelowPct: 10, For: 30 * time.Minute}
	if _, err := r.w.StopWhenIdle(ctxT(t), m.Instance, IdlePolicy{BelowPct: 0, For: time.Hour}, ""); err == nil {
		t.Fatal("a threshold of 0% was accepted")
	}
	idle, err := r.w.StopWhenIdle(ctxT(t), m.Instance, policy, "launch-key")
	if err != nil {
		t.Fatal(err)
	}
	// The firing keeps state of its own in the Params; the checks leave it there.
	idle.Params = json.RawMessage(strings.Replace(string(idle.Params), "{", `{"stop_sent_at":"2026-01-01T00:00:00Z",`, 1))
	if _, err := r.store.PutLease(ctxT(t), idle); err != nil {
		t.Fatal(err)
	}
	gpu := r.emulated(id)
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	if err := gpu.SetGPUUtilization(50); err != nil {
		t.Fatal(err)
	}
	if c := r.check(id, state.LeaseGPUIdle, t0); c.Due || !strings.Contains(c.Reason, "50%") {
		t.Fatalf("busy: %+v", c)
	}
	if err := gpu.SetGPUUtilization(3); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{time.Minute, 10 * time.Minute, 20 * time.Minute, 30 * time.Minute} {
		if c := r.check(id, state.LeaseGPUIdle, t0.Add(at)); c.Due {
			t.Fatalf("due at +%s, idle only since +1m: %+v", at, c)
		}
	}
	c := r.check(id, state.LeaseGPUIdle, t0.Add(31*time.Minute))
	if !c.Due || !strings.Contains(c.Reason, "under 10%") {
		t.Fatalf("idle for 30m: %+v", c)
	}
	var p idleParams
	if err := json.Unmarshal(c.Params, &p); err != nil || len(p.Samples) != 6 || p.Samples[5].MaxPct != 3 || !p.IdleSince.Equal(t0.Add(time.Minute)) ||
		!strings.Contains(string(c.Params), `"stop_sent_at":"2026-01-01T00:00:00Z"`) {
		t.Fatalf("params %s", c.Params)
	}
	l, _ := r.store.ListLeases(ctxT(t), state.LeaseFilter{InstanceID: id, Kind: state.LeaseGPUIdle})
	if len(l) != 1 || l[0].LaunchKey != "launch-key" || l[0].Action != state.ActionStop || l[0].Enforcer != state.EnforcerGPUMCP {
		t.Fatalf("lease %+v", l)
	}
}

// The idle time counts from the first idle sample after a busy one or after a gap in the
// watching longer than half the window; a sample of a GPU that reports no utilization is busy.
func TestIdleParamsAdd(t *testing.T) {
	policy := IdlePolicy{BelowPct: 5, For: 10 * time.Minute}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name    string
		samples []Sample // minutes after t0, utilization
		due     bool
	}{
		{"idle for the window", []Sample{{t0, 0}, {t0.Add(5 * time.Minute), 1}, {t0.Add(10 * time.Minute), 4}}, true},
		{"short of the window", []Sample{{t0, 0}, {t0.Add(5 * time.Minute), 1}, {t0.Add(9 * time.Minute), 4}}, false},
		{"busy in between", []Sample{{t0, 0}, {t0.Add(5 * time.Minute), 5}, {t0.Add(10 * time.Minute), 0}}, false},
		{"a gap over half the window", []Sample{{t0, 0}, {t0.Add(6 * time.Minute), 0}, {t0.Add(11 * time.Minute), 0}}, false},
		{"after the gap, a whole window", []Sample{{t0, 0}, {t0.Add(6 * time.Minute), 0}, {t0.Add(11 * time.Minute), 0}, {t0.Add(16 * time.Minute), 0}}, true},
		{"unreported utilization", []Sample{{t0, 0}, {t0.Add(5 * time.Minute), -1}, {t0.Add(10 * time.Minute), 0}}, false},
	} {
		var p idleParams
		var last Check
		for _, s := range c.samples {
			last = p.add(s, policy)
		}
		if last.Due != c.due {
			t.Errorf("%s: due %v (%s), want %v", c.name, last.Due, last.Reason, c.due)
		}
	}
	var p idleParams
	for i := range 3 * recentSamples {
		p.add(Sample{t0.Add(time.Duration(i) * time.Second), 0}, policy)
	}
	if len(p.Samples) != recentSamples || !p.IdleSince.Equal(t0) {
		t.Fatalf("%d samples kept, idle since %s", len(p.Samples), p.IdleSince)
	}
}

// failingJobs is a store whose job records cannot be written.
type failingJobs struct{ state.Store }

func (failingJobs) PutJob(context.Context, state.Job) (state.Job, error) {
	return state.Job{}, errors.New("the disk is full")
}

func TestJobWhoseRecordFailsIsStoppedAgain(t *testing.T) {
	r := newRig(t, func(s state.Store) state.Store { return failingJobs{s} })
	id := r.launch(1)
	m := r.machine(id)
	started, err := r.w.StartJob(ctxT(t), m, JobSpec{Command: "sleep 300", StopInstanceWhenDone: true})
	if err == nil || !strings.Contains(err.Error(), "stopped again") || !strings.Contains(err.Error(), "the disk is full") {
		t.Fatalf("%v", err)
	}
	st, err := r.w.Pool().JobStatus(ctxT(t), m.Target, started.Job.ID)
	if err != nil || st.State == remote.JobRunning || !st.Stopped {
		t.Fatalf("the unrecorded job: %+v %v", st, err)
	}
	if ls, _ := r.store.ListLeases(ctxT(t), state.LeaseFilter{InstanceID: id}); len(ls) != 0 {
		t.Fatalf("leases %+v", ls)
	}
}
