// Package fleet owns what gpu-mcp promised about instances, so that the promises outlive a
// client, a process and a replica: the launch ledger (each launch recorded before the vendor
// is called, and again after each step), a launch's waiting, cleanup and fallback offers, the
// leases that stop or destroy an instance at a time, and the reconciliation that keeps them
// whenever any gpu-mcp process runs (or gpu-mcp reap does, from cron).
//
// It stands on state.Store, which makes "exactly once" hold across replicas (a launch's key is
// a unique insert, a due lease a row claim), and on the providers' registry, whose ids are
// provider-qualified. tools/ keeps the MCP side: arguments, plans, the guard and the texts;
// what reaches this package is an approved spec.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Options configure a Fleet. Providers and Store are required; every duration left zero gets
// a default that scales with Poll, so that a test that shortens the poll interval shortens
// them all.
type Options struct {
	Providers *providers.Registry
	Store     state.Store
	Log       zerolog.Logger
	// Owner names this process in the ledger and in lease claims (default
	// hostname-pid-random): it must differ between replicas and between runs.
	Owner string
	// Poll is how often a wait asks the vendor again, and how often the reconciler runs
	// (default 3s).
	Poll time.Duration
	// Now is the clock of leases and of the reconciler (default time.Now). Waits run on real
	// time.
	Now func() time.Time

	// MaxLease caps every lease: a launch or set_auto_stop asking for a later one is refused
	// (0: no cap beyond MaxAutoStop).
	MaxLease time.Duration
	// DefaultAutoStop is the lease of a launch that names none (0: none).
	DefaultAutoStop time.Duration

	// StaleAfter is how long a launch in flight may go without its owner's heartbeat before
	// another process takes it over (default 10 polls, at least 2s); the owner beats every
	// quarter of it.
	StaleAfter time.Duration
	// ClaimFor is how long a claim on a due lease lasts: it covers reading the instance and
	// stopping it, with room to spare (default 2m). A reaper that dies loses it then.
	ClaimFor time.Duration
	// VendorGrace is how long after a vendor timer's due time gpu-mcp checks that it ran (and
	// shows the lease overdue if the instance still runs), and how long after a stop whose
	// answer was lost it looks before sending another (default 40 polls, at least 5s). A lease
	// gpu-mcp enforces itself is shown overdue two polls after its due time.
	VendorGrace time.Duration
	// LostGrace is how long a launch in flight whose instance is nowhere listed is looked for
	// before it is marked failed (default 200 polls, at least 10s): HuiXingYun lists an
	// order's instance late.
	LostGrace time.Duration

	// Audit, when set, is told of each action gpu-mcp takes by itself (auto-stops, launch
	// cleanups, adoptions), for the audit trail.
	Audit func(Event)
	// Bought, when set, is told when a provider took an order (the offer cache drops its
	// offers).
	Bought func(provider string)
	// Work, when set, decides the leases on work (state.LeaseJobEnd, state.LeaseGPUIdle): at
	// each pass the reconciler asks it whether one is due (a job ended, the GPUs stayed idle).
	Work *work.Work
	// AfterBuy, when set, runs between the vendor's answer to a buy and the ledger's record
	// of it. Only crash tests set it (GPU_MCP_TESTHOOK).
	AfterBuy func()
}

// Event is an action gpu-mcp took by itself, for the audit trail.
type Event struct {
	Kind       string // EventAutoStop, EventLaunchCleanup, EventLaunchAdopted
	InstanceID string
	Failed     bool
	Detail     string
	// ApprovedAtLaunch: the user approved this with the launch (its auto_stop_after, its
	// cleanup); false: with set_auto_stop, or with the work (see Lease).
	ApprovedAtLaunch bool
	// Lease is the kind of the lease an auto-stop carried out: a lease on work was asked for
	// with the work (start_job, or launch_instance's stop_when_gpu_idle).
	Lease state.LeaseKind
}

// Event kinds.
const (
	EventAutoStop      = "auto_stop"
	EventLaunchCleanup = "launch_cleanup"
	EventLaunchAdopted = "launch_adopted"
)

// Fleet is the owner of gpu-mcp's promises about instances. It is safe for concurrent use.
type Fleet struct {
	o   Options
	log zerolog.Logger

	// ctx ends the work this process does on its own (a launch whose client went away, the
	// reconciler) when Close is called; that work then stays in the store for the next
	// process.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	owned     map[string]int // launch keys this process works on, with their holders
	started   bool
	closed    bool
	lastPrune time.Time
}

// New returns a Fleet; Start begins its reconciler.
func New(o Options) (*Fleet, error) {
	if o.Providers == nil || o.Store == nil {
		return nil, errors.New("fleet: a provider registry and a state store are required")
	}
	if o.Owner == "" {
		o.Owner = NewOwnerID()
	}
	if o.Poll <= 0 {
		o.Poll = 3 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = max(10*o.Poll, 2*time.Second)
	}
	if o.ClaimFor <= 0 {
		o.ClaimFor = 2 * time.Minute
	}
	if o.VendorGrace <= 0 {
		o.VendorGrace = max(40*o.Poll, 5*time.Second)
	}
	if o.LostGrace <= 0 {
		o.LostGrace = max(200*o.Poll, 10*time.Second)
	}
	if o.MaxLease > 0 && o.DefaultAutoStop > o.MaxLease {
		return nil, fmt.Errorf("fleet: the default auto-stop (%s) is longer than the longest lease allowed (%s)", o.DefaultAutoStop, o.MaxLease)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{o: o, log: o.Log.With().Str("owner", o.Owner).Logger(), ctx: ctx, cancel: cancel, owned: map[string]int{}}
	return f, nil
}

// NewOwnerID names a process uniquely: host, process id and a random part.
func NewOwnerID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// MaxLease is the longest lease allowed (0: no cap).
func (f *Fleet) MaxLease() time.Duration { return f.o.MaxLease }

// DefaultAutoStop is the lease of a launch that names none (0: none).
func (f *Fleet) DefaultAutoStop() time.Duration { return f.o.DefaultAutoStop }

func (f *Fleet) now() time.Time { return f.o.Now() }

// Start runs one reconciliation pass at once and then one every poll interval, in the
// background, until Close.
func (f *Fleet) Start() {
	f.mu.Lock()
	again := f.started
	f.started = true
	f.mu.Unlock()
	if again {
		return
	}
	f.background(func() {
		t := time.NewTicker(f.o.Poll)
		defer t.Stop()
		for {
			if _, err := f.ReconcileOnce(f.ctx); err != nil && f.ctx.Err() == nil {
				f.log.Warn().Err(err).Msg("reconciliation pass failed; trying again at the next poll")
			}
			select {
			case <-f.ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// background runs fn in a goroutine that Close waits for; after Close it does not run.
func (f *Fleet) background(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return false
	}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
	return true
}

// Close ends the work this process does on its own and waits for it to stop. Nothing is
// lost: launches in flight are handed back to the store for the next process (or gpu-mcp
// reap), and leases fire there. A Fleet that was started logs the auto-stops left pending.
func (f *Fleet) Close() {
	f.mu.Lock()
	again, enforcing := f.closed, f.started
	f.closed = true
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
	if again || !enforcing {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pending, err := f.o.Store.ListLeases(ctx, state.LeaseFilter{Pending: true})
	if err != nil || len(pending) == 0 {
		return
	}
	ids := make([]string, 0, len(pending))
	for _, l := range pending {
		if l.Enforcer == state.EnforcerGPUMCP {
			ids = append(ids, l.InstanceID+": "+dueText(&l))
		}
	}
	if len(ids) > 0 {
		f.log.Warn().Strs("leases", ids).Msg("gpu-mcp is stopping: these auto-stops are kept in the state store and carried out by the next gpu-mcp process or `gpu-mcp reap`; until one runs, the instances bill")
	}
}

// own marks key as worked on by this process and keeps its heartbeat going until every
// holder called the returned func (a launch whose client went away is held on by the
// goroutine that follows it); then the launch, if still in flight, is handed back to the store.
func (f *Fleet) own(key string) func() {
	f.mu.Lock()
	f.owned[key]++
	beat := f.owned[key] == 1
	f.mu.Unlock()
	if beat {
		f.background(func() { f.heartbeat(key) })
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.owned[key]--
			last := f.owned[key] == 0
			if last {
				delete(f.owned, key)
			}
			f.mu.Unlock()
			if last {
				f.disown(key)
			}
		})
	}
}

func (f *Fleet) holds(key string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.owned[key] > 0
}

// heartbeat refreshes the launch's UpdatedAt while this process owns it, so that no other
// process takes it over.
func (f *Fleet) heartbeat(key string) {
	t := time.NewTicker(f.o.StaleAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		if !f.holds(key) {
			return
		}
		ctx, cancel := context.WithTimeout(f.ctx, f.o.StaleAfter/4)
		_, err := f.o.Store.UpdateLaunch(ctx, key, func(l *state.Launch) error {
			if l.Owner != f.o.Owner {
				return errNotOwner
			}
			return nil
		})
		cancel()
		if errors.Is(err, errNotOwner) {
			return
		}
	}
}

// disown hands a launch that is still in flight back to the store: any process may take it.
func (f *Fleet) disown(key string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := f.o.Store.UpdateLaunch(ctx, key, func(l *state.Launch) error {
		if l.Owner != f.o.Owner {
			return errNotOwner
		}
		l.Owner = ""
		return nil
	})
	if err != nil && !errors.Is(err, errNotOwner) {
		f.log.Warn().Err(err).Str("launch", key).Msg("could not hand the launch back to the state store; another process takes it over once its heartbeat is stale")
	}
}

var errNotOwner = errors.New("this process does not own the launch")

func (f *Fleet) audit(e Event) {
	if f.o.Audit != nil {
		f.o.Audit(e)
	}
}

func utc(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// errorText renders an error for people; provider errors carry their own remedy.
func errorText(err error) string {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Error()
	}
	return err.Error()
}
