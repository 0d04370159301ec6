package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Auto-stop bounds: a lease is at least this far ahead, and at most MaxAutoStop (or the
// operator's MaxLease).
const (
	MinAutoStop = 5 * time.Second
	MaxAutoStop = 30 * 24 * time.Hour
)

// SetLease gives an instance its auto-stop (at, then action), replacing any it had: on a
// vendor with a shutdown timer the timer is set too, and gpu-mcp's lease checks afterwards
// that it ran; elsewhere gpu-mcp's reconciler carries it out. launchKey names the launch
// whose approval it carries ("" for set_auto_stop).
func (f *Fleet) SetLease(ctx context.Context, p providers.Provider, instanceID string, at time.Time, action state.LeaseAction, launchKey string) (*AutoStop, error) {
	action = orStop(action)
	as := &AutoStop{At: at, By: StopByGPUMCP, Action: string(action)}
	enforcer := state.EnforcerGPUMCP
	if ss, ok := p.(providers.StopScheduler); ok {
		err := ss.ScheduleStop(ctx, instanceID, at)
		switch {
		case err != nil:
			f.log.Warn().Str("instance", instanceID).Str("error", errorText(err)).Msg("vendor shutdown timer refused; gpu-mcp stops the instance itself")
			as.Note = "the vendor's shutdown timer refused (" + errorText(err) + "); gpu-mcp stops it instead, " + byGPUMCP
		case action == state.ActionStop:
			enforcer, as.By = state.EnforcerVendor, StopByVendor
			as.Note = p.Name() + "'s shutdown timer stops it, whether or not gpu-mcp runs; gpu-mcp checks afterwards that it did"
		default:
			as.Note = p.Name() + "'s shutdown timer stops it then; gpu-mcp destroys it, " + byGPUMCP
		}
	} else {
		as.Note = p.Name() + " has no shutdown timer: gpu-mcp does it, " + byGPUMCP
	}
	next := at
	if enforcer == state.EnforcerVendor {
		next = at.Add(f.o.VendorGrace)
	}
	_, err := f.o.Store.PutLease(ctx, state.Lease{InstanceID: instanceID, Provider: p.Name(), Kind: state.LeaseTime, Action: action,
		DueAt: at, Enforcer: enforcer, LaunchKey: launchKey, NextCheckAt: next})
	if err != nil {
		return nil, storeError("record the auto-stop", err)
	}
	return as, nil
}

// byGPUMCP says when gpu-mcp carries out a lease it enforces itself.
const byGPUMCP = "whenever any gpu-mcp process runs or `gpu-mcp reap` runs (from cron, say); with neither, at the next start of gpu-mcp, and it bills until then"

// ClearLease drops an instance's auto-stop, at the vendor's timer too where it has one. The
// note says what could not be undone.
func (f *Fleet) ClearLease(ctx context.Context, p providers.Provider, instanceID string) (string, error) {
	note := ""
	if ss, ok := p.(providers.StopScheduler); ok {
		if err := ss.ScheduleStop(ctx, instanceID, time.Time{}); err != nil {
			note = p.Name() + "'s shutdown timer could not be cancelled (" + errorText(err) + "): it may still stop the instance"
		}
	}
	leases, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{InstanceID: instanceID, Kind: state.LeaseTime})
	if err != nil {
		return note, storeError("clear the auto-stop", err)
	}
	for _, l := range leases {
		if err := f.o.Store.DeleteLease(ctx, l.ID); err != nil {
			return note, storeError("clear the auto-stop", err)
		}
	}
	return note, nil
}

// Lease is the pending auto-stop of an instance, or nil.
func (f *Fleet) Lease(ctx context.Context, instanceID string) (*state.Lease, error) {
	leases, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{InstanceID: instanceID, Kind: state.LeaseTime, Pending: true})
	if err != nil {
		return nil, storeError("read the auto-stop", err)
	}
	if len(leases) == 0 {
		return nil, nil
	}
	return &leases[0], nil
}

// fireState is what a lease's firing remembers between attempts, in its Params.
type fireState struct {
	// StopSentAt is when a stop was sent whose answer was lost: the instance is read again
	// rather than sent the stop blindly.
	StopSentAt time.Time `json:"stop_sent_at,omitzero"`
}

func readFireState(l *state.Lease) fireState {
	var fs fireState
	if len(l.Params) > 0 {
		_ = json.Unmarshal(l.Params, &fs)
	}
	return fs
}

func (fs fireState) into(l *state.Lease) {
	m := map[string]json.RawMessage{}
	if len(l.Params) > 0 {
		_ = json.Unmarshal(l.Params, &m)
	}
	if fs.StopSentAt.IsZero() {
		delete(m, "stop_sent_at")
	} else {
		b, _ := json.Marshal(fs.StopSentAt)
		m["stop_sent_at"] = b
	}
	if len(m) == 0 {
		l.Params = nil
		return
	}
	l.Params, _ = json.Marshal(m)
}

// backoff is how long after its n-th failed attempt a lease is tried again.
func (f *Fleet) backoff(n int) time.Duration {
	d, ceiling := f.o.Poll, 100*f.o.Poll
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// isDue is the kind-specific check of a claimed lease: whether its action is due now, or why
// this gpu-mcp cannot tell. A lease on work is asked of Options.Work, which looks at the
// machine: its check may come with new Params to keep, and an error (the machine did not
// answer) means "look again at the next poll".
func (f *Fleet) isDue(ctx context.Context, l *state.Lease, now time.Time) (due bool, why string, check *work.Check, err error) {
	switch {
	case l.Kind == state.LeaseTime:
		return !now.Before(l.DueAt), "", nil, nil
	case work.IsWorkLease(l.Kind) && f.o.Work != nil:
		c, err := f.o.Work.CheckLease(ctx, *l, now)
		if err != nil {
			return false, "", nil, err
		}
		return c.Due, c.Reason, &c, nil
	}
	return false, "this gpu-mcp cannot tell when a " + string(l.Kind) + " lease is due; a newer gpu-mcp enforces it", nil, nil
}

func dueText(l *state.Lease) string {
	what := "auto-stop"
	if l.Action == state.ActionDestroy {
		what = "auto-destroy"
	}
	if due := WorkDue(l.Kind); due != "" {
		return what + " " + due
	}
	return what + " due " + utc(l.DueAt)
}

// WorkDue says when a lease on work is due ("when its jobs end", "when its GPUs stay idle");
// "" for a lease of another kind.
func WorkDue(k state.LeaseKind) string {
	switch k {
	case state.LeaseJobEnd:
		return "when its jobs end"
	case state.LeaseGPUIdle:
		return "when its GPUs stay idle"
	}
	return ""
}

// fire carries out a lease this process claimed, one step at a time (a destroy that needs the
// instance stopped first stops it, and looks again at the next poll), and releases it with
// what it found: done, or why not with the next attempt's time.
func (f *Fleet) fire(ctx context.Context, l state.Lease) *Action {
	now := f.now()
	act := &Action{InstanceID: l.InstanceID, Key: l.LaunchKey, Due: dueText(&l)}
	due, why, check, err := f.isDue(ctx, &l, now)
	switch {
	case err != nil:
		f.log.Warn().Str("instance", l.InstanceID).Str("error", errorText(err)).Str("lease", dueText(&l)).Msg("the lease's machine could not be asked; looking again at the next poll")
		f.later(ctx, &l, func(x *state.Lease) { x.LastError = errorText(err) })
		return nil
	case !due && check != nil:
		f.log.Debug().Str("instance", l.InstanceID).Str("lease", dueText(&l)).Str("why", why).Msg("lease on work not due yet")
		f.later(ctx, &l, func(x *state.Lease) {
			x.LastError = ""
			if check.Params != nil {
				x.Params = check.Params
			}
		})
		return nil
	case !due:
		f.release(ctx, &l, func(x *state.Lease) {
			x.NextCheckAt = now.Add(time.Hour)
			if why == "" {
				x.NextCheckAt = x.DueAt
			}
			x.LastError = why
		})
		return nil
	case check != nil:
		act.Due += " (" + why + ")"
	}
	p, err := f.o.Providers.Get(l.Provider)
	if err != nil {
		return f.retry(ctx, &l, act, &providers.Error{Kind: providers.KindInvalid, Provider: "gpu-mcp", Err: err,
			Message: l.Provider + " is not configured in this gpu-mcp process, so its instance cannot be stopped from here",
			Remedy:  "run gpu-mcp (or gpu-mcp reap) with " + l.Provider + "'s credentials set"})
	}
	inst, err := p.GetInstance(ctx, l.InstanceID)
	if providers.KindOf(err) == providers.KindNotFound {
		return f.done(ctx, &l, act, "nothing to do", "the instance no longer exists")
	}
	if err != nil {
		return f.retry(ctx, &l, act, err)
	}
	fs := readFireState(&l)
	switch inst.State {
	case providers.StateDeleting:
		return f.done(ctx, &l, act, "nothing to do", "already being deleted")
	case providers.StateStopped, providers.StateStopping:
		if l.Action == state.ActionStop {
			by := ""
			if l.Enforcer == state.EnforcerVendor {
				by = " (by " + p.Name() + "'s timer)"
			}
			return f.done(ctx, &l, act, "nothing to do", "already "+string(inst.State)+by)
		}
	}
	if l.Action == state.ActionDestroy {
		if ok, why := p.Capabilities().Supports(providers.ActionDestroy); !ok {
			return f.retry(ctx, &l, act, providers.Unsupported(p.Name(), providers.ActionDestroy, why))
		}
		if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst}); err == nil {
			mctx, cancel := mutationContext(ctx)
			err := p.Destroy(mctx, inst.ID)
			cancel()
			if err != nil {
				return f.retry(ctx, &l, act, err)
			}
			return f.done(ctx, &l, act, "destroyed", "destroyed")
		} else if inst.State == providers.StateStopped || inst.State == providers.StateStopping {
			if inst.State == providers.StateStopping {
				return f.later(ctx, &l, nil)
			}
			return f.retry(ctx, &l, act, err)
		}
	}
	if !fs.StopSentAt.IsZero() && now.Before(fs.StopSentAt.Add(f.o.VendorGrace)) {
		// A stop whose answer was lost may still take effect: look again before sending another,
		// and say so (gpu-mcp reap exits 1: the instance may still bill).
		f.later(ctx, &l, nil)
		act.Verb, act.Failed = "UNCONFIRMED", true
		act.Detail = "a stop was sent at " + utc(fs.StopSentAt) + " and its answer lost; the instance still shows " + string(inst.State) +
			"; it is stopped again after " + utc(fs.StopSentAt.Add(f.o.VendorGrace)) + " unless the vendor shows it stopping by then"
		return act
	}
	if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionStop, Instance: inst}); err != nil {
		return f.retry(ctx, &l, act, err)
	}
	mctx, cancel := mutationContext(ctx)
	err = p.Stop(mctx, inst.ID)
	cancel()
	if err != nil {
		if providers.KindOf(err) == providers.KindUnknown {
			fs.StopSentAt = now
			act.Verb, act.Failed, act.Detail = "FAILED", true, "stop sent, its answer lost: "+errorText(err)+"; the instance is read again at the next poll"
			f.release(ctx, &l, func(x *state.Lease) {
				fs.into(x)
				x.Attempts++
				x.LastError = errorText(err)
				x.NextCheckAt = now.Add(f.o.Poll)
			})
			return act
		}
		return f.retry(ctx, &l, act, err)
	}
	if l.Action == state.ActionDestroy {
		act.Verb, act.Detail = "stopped", "destroying it once it is stopped"
		f.later(ctx, &l, func(x *state.Lease) { x.Outcome = "stopped; destroying once it is stopped" })
		return act
	}
	return f.done(ctx, &l, act, "stopped", "stopped")
}

// mutationTimeout bounds a stop or destroy that a lease sends.
const mutationTimeout = time.Minute

// mutationContext is the context of a stop or destroy a lease sends: not cut short when the
// process ends (Close waits for it), so that a stop begun reaches the vendor and its answer is
// read, instead of becoming a stop whose answer was lost, looked at again only after the
// vendor's grace while the instance bills.
func mutationContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), mutationTimeout)
}

// release records the outcome of a claimed lease; a claim lost meanwhile (the lease was set
// anew, or another replica took it over) leaves the other's record.
func (f *Fleet) release(ctx context.Context, l *state.Lease, fn func(*state.Lease)) bool {
	// Recorded even when the pass was cancelled (the process is ending): else the lease would
	// wait for its claim to expire.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_, err := f.o.Store.ReleaseLease(ctx, l.ID, f.o.Owner, fn)
	if errors.Is(err, state.ErrNotOwner) {
		f.log.Info().Str("instance", l.InstanceID).Msg("the lease changed while it was being carried out; its new terms stand")
		return false
	}
	if err != nil {
		f.log.Error().Err(err).Str("instance", l.InstanceID).Msg("the outcome of an auto-stop could not be recorded; it is looked at again when the claim expires")
		return false
	}
	return true
}

func (f *Fleet) done(ctx context.Context, l *state.Lease, act *Action, verb, outcome string) *Action {
	now := f.now()
	if !f.release(ctx, l, func(x *state.Lease) {
		x.FiredAt, x.Outcome, x.LastError = now, outcome, ""
		fireState{}.into(x)
	}) {
		return nil
	}
	act.Verb, act.Detail = verb, outcome
	f.EndHoldsOf(l.InstanceID)
	f.log.Info().Str("instance", l.InstanceID).Str("outcome", outcome).Str("due", utc(l.DueAt)).Msg("lease carried out")
	f.audit(Event{Kind: EventAutoStop, InstanceID: l.InstanceID, Detail: l.InstanceID + ": " + outcome + " (" + dueText(l) + ")", ApprovedAtLaunch: l.LaunchKey != "", Lease: l.Kind})
	return act
}

// later looks at the lease again at the next poll, without counting an attempt.
func (f *Fleet) later(ctx context.Context, l *state.Lease, fn func(*state.Lease)) *Action {
	next := f.now().Add(f.o.Poll)
	f.release(ctx, l, func(x *state.Lease) {
		x.NextCheckAt = next
		if fn != nil {
			fn(x)
		}
	})
	return nil
}

// retry records a failed attempt and when the next one is, loudly: the instance may bill on.
func (f *Fleet) retry(ctx context.Context, l *state.Lease, act *Action, err error) *Action {
	if ctx.Err() != nil {
		// The process is ending, not the vendor failing: the next process tries at once.
		f.release(ctx, l, func(*state.Lease) {})
		return nil
	}
	now := f.now()
	var attempts int
	var next time.Time
	if !f.release(ctx, l, func(x *state.Lease) {
		x.Attempts++
		x.LastError = errorText(err)
		x.NextCheckAt = now.Add(f.backoff(x.Attempts))
		attempts, next = x.Attempts, x.NextCheckAt
	}) {
		return nil
	}
	act.Verb, act.Failed = "FAILED", true
	act.Detail = fmt.Sprintf("%s; attempt %d, the next at %s", errorText(err), attempts, utc(next))
	f.log.Error().Str("instance", l.InstanceID).Str("error", errorText(err)).Int("attempts", attempts).Str("due", utc(l.DueAt)).
		Msg("auto-stop failed: the instance may still run and bill; it is tried again")
	if attempts == 1 {
		f.audit(Event{Kind: EventAutoStop, InstanceID: l.InstanceID, Failed: true, Detail: l.InstanceID + ": " + errorText(err) + " (" + dueText(l) + ")", ApprovedAtLaunch: l.LaunchKey != "", Lease: l.Kind})
	}
	return act
}
