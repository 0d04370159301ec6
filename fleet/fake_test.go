package fleet

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

// fakeSSH is a loopback SSH endpoint for every fake instance: it sends the banner an sshd
// sends first. It starts with the package, so that leak checks see it as always there.
var fakeSSH = machinetest.BannerEndpoint()

// fakeProvider is an in-memory provider that records every change it is asked for, so that a
// test can count buys and stops.
type fakeProvider struct {
	name   string
	mu     sync.Mutex
	offers []providers.Offer
	insts  map[string]*providers.Instance
	calls  []string // changes received: "stop new-1"
	caps   providers.Capabilities
	next   int
	now    func() time.Time
	// launchState is the state new instances stay in (default running); noStop makes Precheck
	// refuse stop and destroy, as a vendor does for a booting machine; ignoreNames drops the
	// name of a launch, as HuiXingYun's buy does; stopErr is what Stop answers (once set,
	// until cleared); onLaunch runs before a buy is made.
	launchState providers.State
	noStop      bool
	ignoreNames bool
	stopErr     error
	stopAnyway  bool // with stopErr: the instance stops all the same (the answer was lost)
	onLaunch    func(spec providers.LaunchSpec)
	// launchErr is what Launch answers; with launchLost the instance is made all the same
	// (the vendor's answer was lost on the way).
	launchErr  error
	launchLost bool
	soldOut    map[string]bool // offers whose buys are refused
	// stopGate, when set, holds every Stop until it is closed, or until the caller's context
	// ends: then the stop is lost on the way, as an HTTP request cut short is.
	stopGate chan struct{}
	stopping chan struct{} // closed by the first Stop that waits at stopGate
}

func newFake(name string) *fakeProvider {
	price := 2.5
	return &fakeProvider{
		name: name,
		offers: []providers.Offer{{
			ID: "o1", Provider: name, GPUModel: "NVIDIA RTX 4090", GPUCounts: []int{1, 2, 4},
			VRAMGB: 24, PricePerGPUHour: &price, Billing: []providers.BillingMode{providers.BillingHourly}, Available: true,
		}},
		insts: map[string]*providers.Instance{},
		caps:  providers.Capabilities{Billing: []providers.BillingMode{providers.BillingHourly}, PublishesPrices: true},
		now:   time.Now,
	}
}

func (f *fakeProvider) addInstance(local, name string, st providers.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(local, name, st)
}

func (f *fakeProvider) addLocked(local, name string, st providers.State) {
	created := f.now()
	f.insts[local] = &providers.Instance{ID: local, Provider: f.name, Name: name, State: st, CreatedAt: &created,
		RawState: string(st), GPUModel: "NVIDIA RTX 4090", GPUCount: 1, Billing: providers.BillingHourly,
		Connection: &providers.Connection{SSHHost: "127.0.0.1", SSHPort: fakeSSH.Port, SSHUser: "root", SSHPassword: "s3cret-pw",
			SSHCommand: fmt.Sprintf("ssh -p %d root@127.0.0.1", fakeSSH.Port)}}
}

func (f *fakeProvider) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// count is how many changes starting with op the fake received.
func (f *fakeProvider) count(op string) int {
	n := 0
	for _, c := range f.mutations() {
		if len(c) > len(op) && c[:len(op)+1] == op+" " {
			n++
		}
	}
	return n
}

func (f *fakeProvider) state(local string) providers.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in, ok := f.insts[local]; ok {
		return in.State
	}
	return "absent"
}

func (f *fakeProvider) set(fn func(*fakeProvider)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeProvider) Name() string                         { return f.name }
func (f *fakeProvider) Capabilities() providers.Capabilities { return f.caps }

func (f *fakeProvider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.offers), nil
}

func (f *fakeProvider) ListImages(ctx context.Context, q providers.ImageQuery) ([]providers.Image, error) {
	return []providers.Image{{ID: "img1", Provider: f.name, Name: "ubuntu-cuda", Kind: providers.ImagePublic}}, nil
}

func (f *fakeProvider) ListInstances(ctx context.Context) ([]providers.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []providers.Instance
	for _, in := range f.insts {
		out = append(out, *in)
	}
	slices.SortFunc(out, func(a, b providers.Instance) int {
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

func (f *fakeProvider) GetInstance(ctx context.Context, id string) (providers.Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.insts[id]
	if !ok {
		return providers.Instance{}, &providers.Error{Kind: providers.KindNotFound, Provider: f.name, Message: "no instance " + id}
	}
	c := *in
	if in.Connection != nil {
		cc := *in.Connection
		c.Connection = &cc
	}
	return c, nil
}

func (f *fakeProvider) Precheck(req providers.ActionRequest) ([]string, error) {
	f.mu.Lock()
	noStop := f.noStop
	f.mu.Unlock()
	if noStop && (req.Action == providers.ActionStop || req.Action == providers.ActionDestroy) {
		return nil, &providers.Error{Kind: providers.KindConflict, Provider: f.name, Message: "the instance is booting"}
	}
	if req.Action == providers.ActionDestroy && req.Instance.State != providers.StateStopped {
		return nil, &providers.Error{Kind: providers.KindConflict, Provider: f.name, Message: "destroy needs a stopped instance"}
	}
	return nil, nil
}

func (f *fakeProvider) Launch(ctx context.Context, spec providers.LaunchSpec) (providers.LaunchResult, error) {
	if f.onLaunch != nil {
		f.onLaunch(spec)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	id := fmt.Sprintf("new-%d", f.next)
	f.calls = append(f.calls, "launch "+spec.OfferID+"/"+spec.ImageID)
	st := f.launchState
	if st == "" {
		st = providers.StateRunning
	}
	name := spec.Name
	if f.ignoreNames {
		name = "NVIDIA RTX 4090 * 1"
	}
	if f.launchErr != nil && !f.launchLost {
		return providers.LaunchResult{}, f.launchErr
	}
	if f.soldOut[spec.OfferID] {
		return providers.LaunchResult{}, &providers.Error{Kind: providers.KindRejected, Provider: f.name, Message: "sold out"}
	}
	f.addLocked(id, name, st)
	f.insts[id].OrderID = "order-" + id
	if f.launchErr != nil {
		return providers.LaunchResult{}, f.launchErr
	}
	return providers.LaunchResult{InstanceID: id, OrderID: "order-" + id}, nil
}

func (f *fakeProvider) setState(op, id string, st providers.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.insts[id]
	if !ok {
		return &providers.Error{Kind: providers.KindNotFound, Provider: f.name, Message: "no instance " + id}
	}
	f.calls = append(f.calls, op+" "+id)
	if op == "stop" && f.stopErr != nil {
		if f.stopAnyway {
			in.State = st
		}
		return f.stopErr
	}
	in.State = st
	return nil
}

func (f *fakeProvider) Start(ctx context.Context, id string) error {
	return f.setState("start", id, providers.StateRunning)
}
func (f *fakeProvider) Stop(ctx context.Context, id string) error {
	if f.stopGate != nil {
		f.mu.Lock()
		if f.stopping != nil {
			close(f.stopping)
			f.stopping = nil
		}
		f.mu.Unlock()
		select {
		case <-f.stopGate:
		case <-ctx.Done():
			return &providers.Error{Kind: providers.KindUnknown, Provider: f.name, Err: ctx.Err(), Message: "request cancelled"}
		}
	}
	return f.setState("stop", id, providers.StateStopped)
}
func (f *fakeProvider) Restart(ctx context.Context, id string) error {
	return f.setState("restart", id, providers.StateRunning)
}
func (f *fakeProvider) SaveImage(ctx context.Context, id, name string) (string, error) {
	return "img-" + name, f.setState("save_image", id, providers.StateStopped)
}
func (f *fakeProvider) Renew(ctx context.Context, id string, periods int) error {
	return f.setState("renew", id, providers.StateRunning)
}
func (f *fakeProvider) Destroy(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.insts[id]; !ok {
		return &providers.Error{Kind: providers.KindNotFound, Provider: f.name, Message: "no instance " + id}
	}
	f.calls = append(f.calls, "destroy "+id)
	delete(f.insts, id)
	return nil
}

// timerFake is a fake whose vendor has a shutdown timer, which refuses times closer than
// minLead; the test runs the timer itself (fireTimers).
type timerFake struct {
	*fakeProvider
	minLead time.Duration
	timers  map[string]time.Time
}

func (t *timerFake) ScheduleStop(ctx context.Context, id string, at time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.IsZero() {
		delete(t.timers, id)
		t.calls = append(t.calls, "cancel-timer "+id)
		return nil
	}
	if at.Before(t.now().Add(t.minLead)) {
		return &providers.Error{Kind: providers.KindRejected, Provider: t.name, Message: "the timer needs at least " + t.minLead.String()}
	}
	if t.timers == nil {
		t.timers = map[string]time.Time{}
	}
	t.timers[id] = at
	t.calls = append(t.calls, "timer "+id)
	return nil
}

// fireTimers stops the instances whose timer is due at now, as the vendor would.
func (t *timerFake) fireTimers() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, at := range t.timers {
		if !t.now().Before(at) {
			if in, ok := t.insts[id]; ok {
				in.State = providers.StateStopped
			}
			delete(t.timers, id)
		}
	}
}

// env is a fleet on a fake provider and a store, with one clock for the fleet, the store and
// the fake.
type env struct {
	t     *testing.T
	fake  *fakeProvider
	reg   *providers.Registry
	store state.Store
	now   func() time.Time
	clock *statetest.Clock // nil on real time
	fleet *Fleet
}

// start of the tests' clock: a fixed moment, so that no test depends on the machine's time.
var start = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

func newEnv(t *testing.T, p providers.Provider, fake *fakeProvider, tune ...func(*Options)) *env {
	t.Helper()
	clock := statetest.NewClock(start)
	e := newEnvAt(t, p, fake, clock.Now, tune...)
	e.clock = clock
	return e
}

// newEnvAt is newEnv on the clock now (time.Now for the tests that wait in real time).
func newEnvAt(t *testing.T, p providers.Provider, fake *fakeProvider, now func() time.Time, tune ...func(*Options)) *env {
	t.Helper()
	fake.now = now
	reg, err := providers.NewRegistry(p)
	if err != nil {
		t.Fatal(err)
	}
	store := statetest.Open(t, state.MemoryURL, state.Options{Now: now})
	e := &env{t: t, fake: fake, reg: reg, store: store, now: now}
	e.fleet = e.replica("replica-a", tune...)
	return e
}

// replica is another gpu-mcp process on the same store and vendor.
func (e *env) replica(owner string, tune ...func(*Options)) *Fleet {
	return newFleet(e.t, e.reg, e.store, e.now, owner, tune...)
}

func newFleet(t *testing.T, reg *providers.Registry, store state.Store, now func() time.Time, owner string, tune ...func(*Options)) *Fleet {
	t.Helper()
	o := Options{Providers: reg, Store: store, Log: zerolog.New(io.Discard), Owner: owner, Poll: 5 * time.Millisecond, Now: now}
	for _, fn := range tune {
		fn(&o)
	}
	f, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// pass runs one reconciliation pass and returns its actions as reap prints them.
func (e *env) pass(f *Fleet) []string {
	e.t.Helper()
	rep, err := f.ReconcileOnce(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var lines []string
	for _, a := range rep.Actions {
		lines = append(lines, a.String())
	}
	return lines
}

func (e *env) provider() providers.Provider {
	p, err := e.reg.Get(e.fake.name)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) launch(t *testing.T, f *Fleet, req LaunchRequest) (Outcome, error) {
	t.Helper()
	offers, _ := e.provider().ListOffers(context.Background())
	if req.Offer.ID == "" {
		req.Offer = offers[0]
	}
	if req.Spec.OfferID == "" {
		req.Spec = providers.LaunchSpec{OfferID: req.Offer.ID, ImageID: e.fake.name + ":img1", GPUCount: 1, Billing: providers.BillingHourly, Name: req.Spec.Name}
	}
	if req.ArgsHash == "" {
		req.ArgsHash = "args-" + req.Key
	}
	return f.Launch(context.Background(), req)
}

func (e *env) lease(id string) state.Lease {
	e.t.Helper()
	ls, err := e.store.ListLeases(context.Background(), state.LeaseFilter{InstanceID: id})
	if err != nil || len(ls) != 1 {
		e.t.Fatalf("leases of %s: %v %v", id, ls, err)
	}
	return ls[0]
}

func (e *env) ledger(key string) state.Launch {
	e.t.Helper()
	l, err := e.store.GetLaunch(context.Background(), key)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}
