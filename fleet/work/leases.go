package work

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet/remote"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Bounds of an IdlePolicy.
const (
	MinIdleWindow = time.Minute
	MaxIdleWindow = 24 * time.Hour
)

// recentSamples is how many of the latest GPU samples a LeaseGPUIdle lease keeps, to show.
const recentSamples = 10

// IdlePolicy stops an instance once every GPU's utilization stayed under BelowPct percent
// for For, as the reconciler sampled it.
type IdlePolicy struct {
	BelowPct int
	For      time.Duration
}

func (p IdlePolicy) check() error {
	if p.BelowPct < 1 || p.BelowPct > 100 {
		return fmt.Errorf("GPU idle threshold %d%%: want 1 to 100", p.BelowPct)
	}
	if p.For < MinIdleWindow || p.For > MaxIdleWindow {
		return fmt.Errorf("GPU idle window %s: want %s to %s", p.For, MinIdleWindow, MaxIdleWindow)
	}
	return nil
}

// maxGap is the longest time between two samples that still counts as watching: a longer
// gap (no gpu-mcp process ran) says nothing of the GPUs meanwhile, so the idle time counts
// anew from the sample after it.
func (p IdlePolicy) maxGap() time.Duration { return p.For / 2 }

// jobEndParams are the Params of a LeaseJobEnd lease: the job that asked for it. The lease is
// due once every job on the instance started with StopInstanceWhenDone has ended.
type jobEndParams struct {
	JobID string `json:"job_id"`
}

// idleParams are the Params of a LeaseGPUIdle lease: the policy, and what the reconciler saw.
type idleParams struct {
	BelowPct int    `json:"below_pct"`
	For      string `json:"for"`
	// IdleSince is the first sample of the current idle run (zero while busy); LastAt the
	// latest sample.
	IdleSince time.Time `json:"idle_since,omitzero"`
	LastAt    time.Time `json:"last_sample_at,omitzero"`
	Samples   []Sample  `json:"samples,omitempty"`
}

// Sample is one look at an instance's GPUs: the highest utilization among them (-1: one of
// them does not report its utilization, which counts as busy).
type Sample struct {
	At     time.Time `json:"at"`
	MaxPct int       `json:"max_pct"`
}

func (w *Work) putLease(ctx context.Context, inst providers.Instance, kind state.LeaseKind, params any, launchKey string) (state.Lease, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return state.Lease{}, err
	}
	return w.o.Store.PutLease(ctx, state.Lease{InstanceID: inst.ID, Provider: inst.Provider, Kind: kind, Action: state.ActionStop,
		Params: raw, Enforcer: state.EnforcerGPUMCP, LaunchKey: launchKey, NextCheckAt: w.o.Now()})
}

// StopWhenIdle puts a LeaseGPUIdle lease on the instance: it is stopped once its GPUs stayed
// under the policy's threshold for its window. It replaces the instance's earlier idle lease,
// if any. launchKey names the launch that asked for it, if one did.
func (w *Work) StopWhenIdle(ctx context.Context, inst providers.Instance, p IdlePolicy, launchKey string) (state.Lease, error) {
	if err := p.check(); err != nil {
		return state.Lease{}, err
	}
	return w.putLease(ctx, inst, state.LeaseGPUIdle, idleParams{BelowPct: p.BelowPct, For: p.For.String()}, launchKey)
}

// IsWorkLease reports whether a lease is one that CheckLease decides on.
func IsWorkLease(k state.LeaseKind) bool { return k == state.LeaseJobEnd || k == state.LeaseGPUIdle }

// Check is what CheckLease found.
type Check struct {
	// Due: carry out the lease's action now. An instance that no longer runs makes its work
	// lease due too: the firing then finds it stopped (or gone) and marks the lease done.
	Due bool
	// Reason says why, or why not yet, for the log and the lease's outcome.
	Reason string
	// Params, when not nil, are the lease's new Params, to store with the next check time
	// (a LeaseGPUIdle lease's samples); keys of the old Params that CheckLease does not know
	// are kept.
	Params json.RawMessage
}

// CheckLease decides whether a lease on work is due at now: for a LeaseJobEnd lease, whether
// every job started on the instance with StopInstanceWhenDone has ended (exited, or lost: no
// process and no exit status), recording their ends; for a LeaseGPUIdle lease, it takes a
// sample of the GPUs' utilization (nvidia-smi) and says whether they stayed under the
// threshold for the whole window. It is what fleet's reconciler calls for these kinds, at
// each pass; an error (the machine does not answer) means "look again later", never "due".
func (w *Work) CheckLease(ctx context.Context, l state.Lease, now time.Time) (Check, error) {
	switch l.Kind {
	case state.LeaseJobEnd:
		return w.checkJobEnd(ctx, l)
	case state.LeaseGPUIdle:
		return w.checkIdle(ctx, l, now)
	}
	return Check{}, fmt.Errorf("work: lease %s is of kind %s, which is no lease on work", l.ID, l.Kind)
}

// machineFor returns the lease's instance's machine, or, when the instance does not run, the
// Check that says so.
func (w *Work) machineFor(ctx context.Context, l state.Lease) (Machine, *Check, error) {
	m, err := w.Machine(ctx, l.InstanceID)
	if err == nil {
		return m, nil, nil
	}
	nr, ok := notRunning(err)
	switch {
	case !ok:
		return Machine{}, nil, err
	case nr.Transitional():
		return Machine{}, &Check{Reason: fmt.Sprintf("instance %s is %s; looking again once it runs", l.InstanceID, nr.State)}, nil
	}
	return Machine{}, &Check{Due: true, Reason: fmt.Sprintf("instance %s is %s: nothing runs on it any more", l.InstanceID, nr.State)}, nil
}

func (w *Work) checkJobEnd(ctx context.Context, l state.Lease) (Check, error) {
	var p jobEndParams
	if err := json.Unmarshal(l.Params, &p); err != nil || p.JobID == "" {
		return Check{}, fmt.Errorf("work: job_end lease %s has params %s: want a job_id", l.ID, l.Params)
	}
	m, c, err := w.machineFor(ctx, l)
	if c != nil || err != nil {
		return deref(c), err
	}
	jobs, err := w.o.Store.ListJobs(ctx, l.InstanceID)
	if err != nil {
		return Check{}, err
	}
	waiting := []string{p.JobID}
	for _, j := range jobs {
		if j.StopInstanceWhenDone && j.EndedAt.IsZero() && j.ID != p.JobID {
			waiting = append(waiting, j.ID)
		}
	}
	var ends []string
	for _, id := range waiting {
		st, err := w.pool.JobStatus(ctx, m.Target, id)
		switch {
		case errors.Is(err, remote.ErrJobNotFound):
			st = remote.JobStatus{ID: id, State: remote.JobLost}
		case err != nil:
			return Check{}, err
		case st.State == remote.JobRunning:
			return Check{Reason: fmt.Sprintf("job %s runs (for %s)", id, st.Runtime.Round(time.Second))}, nil
		}
		if _, err := w.o.Store.UpdateJob(ctx, id, func(j *state.Job) error {
			if j.EndedAt.IsZero() {
				ended(j, st, w.o.Now())
			}
			return nil
		}); err != nil && !errors.Is(err, state.ErrNotFound) {
			return Check{}, err
		}
		ends = append(ends, jobEnd(st))
	}
	return Check{Due: true, Reason: strings.Join(ends, "; ")}, nil
}

func jobEnd(st remote.JobStatus) string {
	switch st.State {
	case remote.JobExited:
		return fmt.Sprintf("job %s exited with status %d", st.ID, st.ExitCode)
	default:
		return fmt.Sprintf("job %s is gone without an exit status (killed from outside, or the machine restarted)", st.ID)
	}
}

func (w *Work) checkIdle(ctx context.Context, l state.Lease, now time.Time) (Check, error) {
	var p idleParams
	err := json.Unmarshal(l.Params, &p)
	window, derr := time.ParseDuration(p.For)
	if err != nil || derr != nil {
		return Check{}, fmt.Errorf("work: gpu_idle lease %s has params %s: want below_pct and for", l.ID, l.Params)
	}
	policy := IdlePolicy{BelowPct: p.BelowPct, For: window}
	if err := policy.check(); err != nil {
		return Check{}, fmt.Errorf("work: gpu_idle lease %s: %w", l.ID, err)
	}
	m, c, err := w.machineFor(ctx, l)
	if c != nil || err != nil {
		return deref(c), err
	}
	rep, err := w.pool.GPUStatus(ctx, m.Target)
	if err != nil {
		return Check{}, err
	}
	if len(rep.GPUs) == 0 {
		return Check{}, fmt.Errorf("instance %s: nvidia-smi lists no GPU, so their idleness cannot be watched", l.InstanceID)
	}
	s := Sample{At: now}
	for _, g := range rep.GPUs {
		if g.UtilizationPct < 0 {
			s.MaxPct = -1
			break
		}
		s.MaxPct = max(s.MaxPct, g.UtilizationPct)
	}
	check := p.add(s, policy)
	if check.Params, err = mergeParams(l.Params, p); err != nil {
		return Check{}, err
	}
	return check, nil
}

// mergeParams is old with the fields of v put over it: what others keep in a lease's Params
// (the firing's own state) stays.
func mergeParams(old json.RawMessage, v any) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(old) > 0 {
		_ = json.Unmarshal(old, &m)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return nil, err
	}
	for k, f := range fields {
		m[k] = f
	}
	return json.Marshal(m)
}

// add takes sample s into p and says whether the GPUs have now been idle for the window.
func (p *idleParams) add(s Sample, policy IdlePolicy) Check {
	idle := s.MaxPct >= 0 && s.MaxPct < policy.BelowPct
	watched := !p.LastAt.IsZero() && s.At.Sub(p.LastAt) <= policy.maxGap()
	switch {
	case !idle:
		p.IdleSince = time.Time{}
	case p.IdleSince.IsZero() || !watched:
		p.IdleSince = s.At
	}
	p.LastAt = s.At
	p.Samples = append(p.Samples, s)
	if n := len(p.Samples); n > recentSamples {
		p.Samples = append([]Sample(nil), p.Samples[n-recentSamples:]...)
	}
	switch {
	case !idle && s.MaxPct < 0:
		return Check{Reason: "a GPU does not report its utilization; counted as busy"}
	case !idle:
		return Check{Reason: fmt.Sprintf("GPU utilization %d%%, not under %d%%", s.MaxPct, policy.BelowPct)}
	}
	idleFor := s.At.Sub(p.IdleSince)
	if idleFor >= policy.For {
		return Check{Due: true, Reason: fmt.Sprintf("every GPU under %d%% utilization for %s (since %s)", policy.BelowPct,
			idleFor.Round(time.Second), p.IdleSince.UTC().Format(time.RFC3339))}
	}
	return Check{Reason: fmt.Sprintf("GPUs idle for %s of %s", idleFor.Round(time.Second), policy.For)}
}

func deref(c *Check) Check {
	if c == nil {
		return Check{}
	}
	return *c
}
