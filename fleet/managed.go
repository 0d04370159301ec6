package fleet

import (
	"context"
	"sort"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Annotate fills in what gpu-mcp knows of each instance beside the vendor (Managed: launched
// by gpu-mcp, its ledger key, its lease, orphan or not), and shows a pending auto-stop as
// StopsAt where the vendor reports none.
func (f *Fleet) Annotate(ctx context.Context, insts []providers.Instance) error {
	// One read: an instance's lease in time (done or not), and its pending leases on work.
	leases, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{})
	if err != nil {
		return storeError("read the leases", err)
	}
	byInstance := map[string]state.Lease{}
	work := map[string][]providers.ManagedWork{}
	for _, l := range leases {
		switch {
		case l.Kind == state.LeaseTime:
			byInstance[l.InstanceID] = l
		case l.FiredAt.IsZero():
			work[l.InstanceID] = append(work[l.InstanceID], providers.ManagedWork{Kind: string(l.Kind), Action: string(l.Action),
				When: WorkDue(l.Kind), LastError: l.LastError})
		}
	}
	now := f.now()
	for i := range insts {
		in := &insts[i]
		if in.ID == "" {
			continue
		}
		m := &providers.Managed{}
		key, named, err := f.launchOf(ctx, in)
		if err != nil {
			return storeError("read the launch ledger", err)
		}
		switch {
		case key != "":
			m.LaunchedByGPUMCP, m.Key = true, key
		case named:
			m.LaunchedByGPUMCP = true
			m.Orphan = "its name says gpu-mcp launched it, but gpu-mcp's state store has no record of it (launched with another store, or the record was lost): nothing stops it automatically"
		}
		if l, ok := byInstance[in.ID]; ok {
			m.Lease = f.leaseView(&l, in, now)
			if m.Lease.OverdueSince != nil {
				m.Orphan = overdueText(m.Lease)
			}
			if l.FiredAt.IsZero() && in.StopsAt == nil {
				at := l.DueAt
				in.StopsAt = &at
			}
		}
		m.Work = work[in.ID]
		if m.LaunchedByGPUMCP || m.Lease != nil || len(m.Work) > 0 {
			in.Managed = m
		}
	}
	return nil
}

// launchOf finds the ledger entry of the launch that made in: by its id, or by the name
// gpu-mcp gave it (a launch in flight, or an earlier offer of one that fell back to another).
// named reports whether its name is one gpu-mcp gives.
func (f *Fleet) launchOf(ctx context.Context, in *providers.Instance) (key string, named bool, err error) {
	recs, err := f.o.Store.ListLaunches(ctx, state.LaunchFilter{InstanceID: in.ID, Limit: 1})
	if err != nil || len(recs) > 0 {
		return first(recs), true, err
	}
	name, ok := launchName(in.Name)
	if !ok {
		return "", false, nil
	}
	recs, err = f.o.Store.ListLaunches(ctx, state.LaunchFilter{VendorName: name})
	for _, r := range recs {
		if r.Provider == in.Provider {
			return r.Key, true, err
		}
	}
	return "", true, err
}

func first(ls []state.Launch) string {
	if len(ls) == 0 {
		return ""
	}
	return ls[0].Key
}

// leaseView is a lease as list_instances and get_instance show it. It is overdue once its due
// time (plus a grace for a vendor's timer, or two polls for gpu-mcp's reconciler) has passed
// and the instance, when known, is not stopped.
func (f *Fleet) leaseView(l *state.Lease, in *providers.Instance, now time.Time) *providers.ManagedLease {
	v := &providers.ManagedLease{Action: string(l.Action), At: l.DueAt, By: string(StopByGPUMCP), LastError: l.LastError, Outcome: l.Outcome}
	if l.Enforcer == state.EnforcerVendor {
		v.By = string(StopByVendor)
	}
	if !l.FiredAt.IsZero() {
		at := l.FiredAt
		v.DoneAt = &at
		return v
	}
	if l.Kind != state.LeaseTime {
		return v // due when its work says so, not at a time: never overdue
	}
	slack := 2 * f.o.Poll
	if l.Enforcer == state.EnforcerVendor {
		slack = f.o.VendorGrace
	}
	stopped := in != nil && l.Action == state.ActionStop &&
		(in.State == providers.StateStopped || in.State == providers.StateStopping || in.State == providers.StateDeleting)
	if now.After(l.DueAt.Add(slack)) && !stopped {
		since := l.DueAt
		v.OverdueSince = &since
	}
	return v
}

func overdueText(v *providers.ManagedLease) string {
	what := "auto-stop"
	if v.Action == string(state.ActionDestroy) {
		what = "auto-destroy"
	}
	s := what + " overdue since " + utc(*v.OverdueSince)
	if v.LastError != "" {
		return s + ": " + v.LastError
	}
	return s + ": not carried out yet (it is, at the next pass of any gpu-mcp process or `gpu-mcp reap`)"
}

// LeaseInfo is one lease as gpu-mcp leases lists it.
type LeaseInfo struct {
	state.Lease
	View *providers.ManagedLease
}

// Leases lists the time leases, pending ones first (soonest due first), then those carried
// out, latest first.
func (f *Fleet) Leases(ctx context.Context) ([]LeaseInfo, error) {
	leases, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{})
	if err != nil {
		return nil, storeError("read the leases", err)
	}
	now := f.now()
	out := make([]LeaseInfo, 0, len(leases))
	for _, l := range leases {
		out = append(out, LeaseInfo{Lease: l, View: f.leaseView(&l, nil, now)})
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.FiredAt.IsZero() != b.FiredAt.IsZero() {
			return a.FiredAt.IsZero()
		}
		if a.FiredAt.IsZero() {
			return a.DueAt.Before(b.DueAt)
		}
		return a.FiredAt.After(b.FiredAt)
	})
	return out, nil
}

// Orphan is an instance gpu-mcp launched that no working promise covers.
type Orphan struct {
	Instance providers.Instance
	Why      string
}

// ProviderFailure is a provider whose instances could not be listed.
type ProviderFailure struct {
	Provider string
	Err      error
}

// Orphans lists every provider's instances and returns those that are orphans (see
// Annotate), and the providers that could not be asked.
func (f *Fleet) Orphans(ctx context.Context) ([]Orphan, []ProviderFailure, error) {
	var all []providers.Instance
	var failed []ProviderFailure
	for _, p := range f.o.Providers.All() {
		insts, err := p.ListInstances(ctx)
		if err != nil {
			failed = append(failed, ProviderFailure{Provider: p.Name(), Err: err})
			continue
		}
		all = append(all, insts...)
	}
	if err := f.Annotate(ctx, all); err != nil {
		return nil, failed, err
	}
	var out []Orphan
	for _, in := range all {
		if in.Managed != nil && in.Managed.Orphan != "" {
			out = append(out, Orphan{Instance: in, Why: in.Managed.Orphan})
		}
	}
	return out, failed, nil
}
