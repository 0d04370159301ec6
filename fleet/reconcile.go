package fleet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Action is one thing a reconciliation pass did, or could not do.
type Action struct {
	// Verb: stopped, destroyed, nothing to do, adopted, cleaned up, marked failed, or FAILED.
	Verb       string
	InstanceID string
	Key        string // the launch concerned, if any
	Due        string // for a lease: "auto-stop due <time>"
	Detail     string
	// Failed: something due could not be done (gpu-mcp reap exits 1).
	Failed bool
}

// String is the action as gpu-mcp reap prints it, one line.
func (a Action) String() string {
	var b strings.Builder
	b.WriteString(a.Verb)
	switch {
	case a.InstanceID != "":
		b.WriteString(" " + a.InstanceID)
	case a.Key != "":
		b.WriteString(" launch " + a.Key)
	}
	var paren []string
	if a.Due != "" {
		paren = append(paren, a.Due)
	}
	if a.Key != "" && a.InstanceID != "" {
		paren = append(paren, "launch "+a.Key)
	}
	if len(paren) > 0 {
		b.WriteString(" (" + strings.Join(paren, ", ") + ")")
	}
	if a.Detail != "" && a.Detail != a.Verb {
		b.WriteString(": " + a.Detail)
	}
	return b.String()
}

// Report is what one reconciliation pass did.
type Report struct {
	Actions []Action
}

// Failed reports whether something due could not be done.
func (r Report) Failed() bool {
	return slices.ContainsFunc(r.Actions, func(a Action) bool { return a.Failed })
}

// Reconciliation bounds: the leases claimed at once, the goroutines of a pass, how far a
// vendor's clock may be off ours, and how long a launch in flight is looked after at most.
const (
	claimBatch    = 16
	passWorkers   = 4
	clockSkew     = 2 * time.Minute
	maxResolveAge = 24 * time.Hour
)

// ReconcileOnce runs one pass: every due lease fires (exactly once across replicas: each is
// claimed first), and every launch in flight that no live process owns is taken a step on
// (its instance found and adopted, cleaned up, or the launch marked failed). gpu-mcp reap
// runs it; Start runs it on a timer. The error is the store's: what the vendors did wrong is
// in the report.
func (f *Fleet) ReconcileOnce(ctx context.Context) (Report, error) {
	var rep Report
	var mu sync.Mutex
	add := func(a *Action) {
		if a != nil {
			mu.Lock()
			rep.Actions = append(rep.Actions, *a)
			mu.Unlock()
		}
	}
	// Leases released during the pass are due later than its start, so none fires twice in it.
	start := f.now()
	for range 64 {
		leases, err := f.o.Store.ClaimDue(ctx, f.o.Owner, start, f.o.ClaimFor, claimBatch)
		if err != nil {
			return rep, storeError("claim due leases", err)
		}
		if len(leases) == 0 {
			break
		}
		each(leases, func(l state.Lease) { add(f.fire(ctx, l)) })
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	launches, err := f.o.Store.ListLaunches(ctx, state.LaunchFilter{Statuses: inFlight})
	if err != nil {
		return rep, storeError("list launches in flight", err)
	}
	now := f.now()
	var todo []state.Launch
	for _, l := range launches {
		if f.claimable(&l, now) {
			todo = append(todo, l)
		}
	}
	each(todo, func(l state.Launch) { add(f.takeOver(ctx, l)) })
	f.prune(ctx)
	return rep, nil
}

// each runs fn on every item, passWorkers at a time.
func each[T any](items []T, fn func(T)) {
	sem := make(chan struct{}, passWorkers)
	var wg sync.WaitGroup
	for _, it := range items {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}

// claimable reports whether this process may take a launch in flight over: no live process
// owns it (no owner, or one whose heartbeat is stale), and it is recent enough to look for.
func (f *Fleet) claimable(l *state.Launch, now time.Time) bool {
	if !slices.Contains(inFlight, l.Status) || l.CreatedAt.Before(now.Add(-maxResolveAge)) {
		return false
	}
	if l.Owner == f.o.Owner {
		return !f.holds(l.Key)
	}
	if l.Status == state.LaunchUnknown {
		// Looked for again now and then (each look is written, as a claim), not at every pass.
		return l.UpdatedAt.Before(now.Add(-max(f.o.StaleAfter, 20*f.o.Poll)))
	}
	return l.Owner == "" || l.UpdatedAt.Before(now.Add(-f.o.StaleAfter))
}

// buying reports whether a live process is buying the launch's instance: the process that
// began it, not a reconciler that took it over.
func (f *Fleet) buying(l *state.Launch) bool {
	if r, err := decodeRecord(l); err != nil || r.TakenOver {
		return false
	}
	if l.Owner == f.o.Owner {
		return f.holds(l.Key)
	}
	return l.Owner != "" && !l.UpdatedAt.Before(f.now().Add(-f.o.StaleAfter))
}

// takeOver claims a launch in flight (atomically: of several replicas one wins) and takes it
// a step on.
func (f *Fleet) takeOver(ctx context.Context, l state.Launch) *Action {
	now, key := f.now(), l.Key
	died := false
	l, _, err := f.write(ctx, key, func(x *state.Launch, r *record) error {
		if !f.claimable(x, now) {
			return errNotOwner
		}
		died = x.Owner != "" && x.Owner != f.o.Owner
		x.Owner, r.TakenOver = f.o.Owner, true
		return nil
	})
	if errors.Is(err, errNotOwner) {
		return nil
	}
	if err != nil {
		return &Action{Verb: "FAILED", Key: key, Failed: true, Detail: "the launch ledger could not be read: " + err.Error()}
	}
	release := f.own(l.Key)
	defer release()
	p, err := f.o.Providers.Get(l.Provider)
	if err != nil {
		return &Action{Verb: "FAILED", Key: l.Key, Failed: true,
			Detail: fmt.Sprintf("a launch on %s was left in flight, and %s is not configured in this gpu-mcp process", l.Provider, l.Provider)}
	}
	why := "handed on by the gpu-mcp process that launched it"
	if died {
		why = "after the gpu-mcp process that launched it ended"
	}
	_, act, err := f.resumeOwned(ctx, p, l.Key, why)
	if err != nil {
		f.log.Warn().Err(err).Str("launch", l.Key).Msg("a launch left in flight could not be looked at; trying again at the next pass")
	}
	return act
}

// resumeOwned takes a launch this process owns one step on; see resume.
func (f *Fleet) resumeOwned(ctx context.Context, p providers.Provider, key string, adopted string) (bool, *Action, error) {
	l, err := f.o.Store.GetLaunch(ctx, key)
	if err != nil {
		return false, nil, err
	}
	if !slices.Contains(inFlight, l.Status) {
		return true, nil, nil
	}
	r, err := decodeRecord(&l)
	if err != nil {
		return false, nil, err
	}
	return f.resume(ctx, p, l, r, adopted)
}

// resume takes one look at a launch in flight and takes it a step on: it finds its instance
// and adopts it once it runs (applying its auto-stop), cleans it up when it did not come up by
// the launch's wait deadline, or, when nothing of it is listed after LostGrace, marks it
// failed (nothing was bought) or unknown (an order whose instance never showed). It reports
// whether the launch is seen through. adopted, when set, says why this process took the
// launch over ("": it follows a launch of its own whose client went away).
func (f *Fleet) resume(ctx context.Context, p providers.Provider, l state.Launch, r *record, adopted string) (bool, *Action, error) {
	inst, how, err := f.locate(ctx, p, &l, r)
	now := f.now()
	att := Attempt{OfferID: l.OfferID, InstanceID: l.InstanceID, OrderID: l.OrderID, Billing: BillingYes}
	switch {
	case providers.KindOf(err) == providers.KindNotFound && l.InstanceID != "":
		att.Result, att.Detail, att.Billing = AttemptNotRunning, "the instance no longer exists", BillingNo
		f.EndHoldsOf(l.InstanceID)
		f.finish(l.Key, state.LaunchFailed, r, att, nil)
		return true, &Action{Verb: "nothing to do", InstanceID: l.InstanceID, Key: l.Key, Detail: "its launch was left in flight, and the instance no longer exists"}, nil
	case err != nil:
		return false, nil, err
	case inst == nil:
		if now.Before(r.Started.Add(f.o.LostGrace)) {
			return false, nil, nil
		}
		where := fmt.Sprintf("%s lists no instance of this launch %s after it began", p.Name(), ShortDuration(now.Sub(r.Started).Round(time.Second)))
		if how != "" {
			where += " (" + how + ")"
		}
		if l.OrderID == "" && how == "" {
			// Before the key is free again, so that no hold of a new launch under it is ended.
			f.endHolds(func(h state.Reservation) bool { return h.LaunchKey == l.Key }, true)
			f.note(l.Key, func(x *state.Launch, rec *record) {
				x.Status, x.Error, rec.Outcome = state.LaunchFailed, where+": nothing was bought", nil
			})
			return true, &Action{Verb: "marked failed", Key: l.Key, Detail: where + ": nothing was bought, and its idempotency key is free again"}, nil
		}
		if l.Status == state.LaunchUnknown {
			return false, nil, nil // still looked for, until it is too old to
		}
		msg := where + ": whether anything bills is unknown; check list_instances"
		f.note(l.Key, func(x *state.Launch, _ *record) { x.Status, x.Error = state.LaunchUnknown, msg })
		return false, &Action{Verb: "FAILED", Key: l.Key, Failed: true, Detail: msg}, nil
	}
	att.InstanceID, att.OrderID = inst.ID, orDefault(inst.OrderID, l.OrderID)
	if l.InstanceID != inst.ID {
		f.noteIDs(l.Key, inst.ID, att.OrderID)
		f.attachLaunchHold(l.Key, inst.ID)
	}
	if !r.Cancel.IsZero() {
		after := f.cancelAttempt(p, &att, "at "+utc(r.Cancel))
		f.finish(l.Key, state.LaunchCleanedUp, r, att, after)
		return true, &Action{Verb: "cleaned up", InstanceID: inst.ID, Key: l.Key, Detail: "cancelled by the user; " + att.Cleanup, Failed: att.Billing == BillingUnknown}, nil
	}
	if r.Wait && inst.State != providers.StateRunning {
		_, failed := reachedState(*inst, UntilRunning)
		if failed == "" && now.Before(r.waitUntil()) {
			return false, nil, nil
		}
		why := failed
		if why == "" {
			why = fmt.Sprintf("still %s at the launch's wait deadline (%s)", inst.State, ShortDuration(r.WaitFor.Round(time.Second)))
		}
		att.Result, att.Detail = AttemptNotRunning, why
		att.Cleanup, att.Billing = f.cleanupLaunch(p, inst.ID, att.OrderID)
		if att.Billing == BillingNo {
			f.EndHoldsOf(inst.ID)
		}
		after := inst
		if got, err := p.GetInstance(ctx, inst.ID); err == nil {
			after = &got
		}
		f.finish(l.Key, state.LaunchCleanedUp, r, att, after)
		f.audit(Event{Kind: EventLaunchCleanup, InstanceID: inst.ID, Detail: inst.ID + ": " + att.Cleanup + "; billing: " + string(att.Billing), ApprovedAtLaunch: true})
		return true, &Action{Verb: "cleaned up", InstanceID: inst.ID, Key: l.Key, Detail: why + "; " + att.Cleanup, Failed: att.Billing == BillingUnknown}, nil
	}
	att.Result = AttemptOrdered
	if inst.State == providers.StateRunning {
		att.Result, att.Detail = AttemptRunning, "running"
		if host, port, ok := sshTarget(inst); ok {
			if ready, detail := sshProbe(ctx, host, port, f.sshProbeTimeout()); ready {
				att.Result, att.Detail = AttemptReady, detail
			}
		}
	}
	verb, detail := "watched", "came up after its client stopped waiting"
	if adopted != "" {
		verb, detail = "adopted", "found "+how+", "+adopted
	}
	att.Detail = strings.TrimPrefix(detail+"; "+att.Detail, "; ")
	out := Outcome{InstanceID: inst.ID, OrderID: att.OrderID, Instance: inst, Ready: att.Result == AttemptReady,
		Attempts: append(slices.Clone(r.Attempts), att)}
	if inst.Connection != nil {
		out.SSHCommand = inst.Connection.SSHCommand
	}
	if r.AutoStop != nil && !r.AutoStop.Applied {
		at := r.Started.Add(r.AutoStop.After).Truncate(time.Second)
		if as, err := f.SetLease(ctx, p, inst.ID, at, r.AutoStop.Action, l.Key); err != nil {
			out.note("the auto-stop could not be arranged (" + errorText(err) + "); stop the instance with stop_instance when done")
		} else {
			out.AutoStop = as
			r.AutoStop.Applied = true
			if out.Instance.StopsAt == nil {
				out.Instance.StopsAt = &at
			}
		}
	} else if r.Outcome != nil {
		out.AutoStop = r.Outcome.AutoStop
	}
	if r.IdleStop != nil && !r.IdleStop.Applied {
		f.arrangeIdleStop(ctx, l.Key, r.IdleStop, &out)
		r.IdleStop.Applied = out.IdleLease != nil
	} else if r.Outcome != nil {
		out.IdleLease = r.Outcome.IdleLease
	}
	out.settle()
	f.note(l.Key, func(x *state.Launch, rec *record) {
		x.Status, x.Error = state.LaunchReady, ""
		rec.Outcome, rec.AutoStop, rec.IdleStop = withoutPasswords(out), r.AutoStop, r.IdleStop
	})
	if adopted != "" {
		f.audit(Event{Kind: EventLaunchAdopted, InstanceID: inst.ID, Detail: inst.ID + ": " + detail, ApprovedAtLaunch: true})
	}
	f.log.Info().Str("instance", inst.ID).Str("launch", l.Key).Msg("launch " + verb + ": " + detail)
	if adopted == "" {
		return true, nil, nil
	}
	return true, &Action{Verb: verb, InstanceID: inst.ID, Key: l.Key, Detail: detail}, nil
}

// finish records the end of a launch in flight whose last attempt is att.
func (f *Fleet) finish(key string, status state.LaunchStatus, r *record, att Attempt, inst *providers.Instance) {
	out := Outcome{Attempts: append(slices.Clone(r.Attempts), att), Instance: inst}
	out.settle()
	f.note(key, func(x *state.Launch, rec *record) {
		x.Status, x.Error = status, ""
		rec.Outcome = withoutPasswords(out)
	})
}

// locate finds the instance of a launch in flight: by its id, its order, the name gpu-mcp gave
// it, or (for a vendor that keeps no name) its creation time and GPU count. A nil instance
// with no error: not listed (how then says why none was taken, when candidates were seen).
func (f *Fleet) locate(ctx context.Context, p providers.Provider, l *state.Launch, r *record) (*providers.Instance, string, error) {
	if l.InstanceID != "" {
		inst, err := p.GetInstance(ctx, l.InstanceID)
		if err != nil {
			return nil, "", err
		}
		return &inst, "by its id", nil
	}
	all, err := p.ListInstances(ctx)
	if err != nil {
		return nil, "", err
	}
	name := attemptName(l.VendorName, r.Attempt)
	for i, in := range all {
		if l.OrderID != "" && in.OrderID == l.OrderID {
			return &all[i], "by its order " + l.OrderID, nil
		}
		if l.VendorName != "" && in.Name == name {
			return &all[i], "by its name " + name, nil
		}
	}
	if l.OrderID != "" {
		return nil, "", nil
	}
	return f.fingerprint(ctx, p, l, r, all)
}

// fingerprint looks for the instance of a launch whose vendor kept no name (HuiXingYun's buy
// takes none; Chenyu names an instance after creating it): an instance created while the
// launch was under way, with its GPU count, that no other launch accounts for. It takes one
// only when exactly one fits and no other launch in flight could be its owner.
func (f *Fleet) fingerprint(ctx context.Context, p providers.Provider, l *state.Launch, r *record, all []providers.Instance) (*providers.Instance, string, error) {
	lo, hi := r.Started.Add(-clockSkew), f.now().Add(clockSkew)
	flying, err := f.o.Store.ListLaunches(ctx, state.LaunchFilter{Statuses: inFlight})
	if err != nil {
		return nil, "", err
	}
	orders := map[string]bool{}
	for _, o := range flying {
		if o.Key == l.Key || o.Provider != l.Provider {
			continue
		}
		if o.OrderID != "" {
			orders[o.OrderID] = true
			continue
		}
		if o.InstanceID == "" && !o.CreatedAt.Before(lo) && f.buying(&o) {
			// A live launch that may have bought in the same window: which instance is whose
			// is told by its ledger entry, once it records the vendor's answer.
			return nil, "another launch on " + p.Name() + " is under way", nil
		}
	}
	var cands []*providers.Instance
	for i, in := range all {
		if in.CreatedAt == nil || in.CreatedAt.Before(lo) || in.CreatedAt.After(hi) || vendorNameRE.MatchString(in.Name) || orders[in.OrderID] {
			continue
		}
		if r.Spec.GPUCount > 0 && in.GPUCount > 0 && in.GPUCount != r.Spec.GPUCount {
			continue
		}
		known, err := f.o.Store.ListLaunches(ctx, state.LaunchFilter{InstanceID: in.ID, Limit: 1})
		if err != nil {
			return nil, "", err
		}
		if len(known) == 0 {
			cands = append(cands, &all[i])
		}
	}
	switch len(cands) {
	case 0:
		return nil, "", nil
	case 1:
		return cands[0], "by its creation time and GPU count (" + p.Name() + " kept no name for it)", nil
	}
	ids := make([]string, len(cands))
	for i, c := range cands {
		ids[i] = c.ID
	}
	return nil, "several instances could be it: " + strings.Join(ids, ", "), nil
}

// prune forgets, at most hourly, leases carried out more than a month ago.
func (f *Fleet) prune(ctx context.Context) {
	now := f.now()
	f.mu.Lock()
	due := now.Sub(f.lastPrune) >= time.Hour
	if due {
		f.lastPrune = now
	}
	f.mu.Unlock()
	if !due {
		return
	}
	leases, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{})
	if err != nil {
		return
	}
	for _, l := range leases {
		if !l.FiredAt.IsZero() && l.FiredAt.Before(now.Add(-30*24*time.Hour)) {
			_ = f.o.Store.DeleteLease(ctx, l.ID)
		}
	}
}

// ShortDuration writes a duration as people do: 2h rather than 2h0m0s, 5m rather than 5m0s.
func ShortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
