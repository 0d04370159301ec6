package tools

import (
	"context"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// fakeSSH is a loopback SSH endpoint for every fake instance: it sends the banner an sshd
// sends first. It starts with the package, so that leak checks see it as always there.
var fakeSSH = machinetest.BannerEndpoint()

// fakeProvider is an in-memory provider for the tools' unit tests. It counts every mutation so
// that a test can prove nothing changed.
type fakeProvider struct {
	name   string
	mu     sync.Mutex
	offers []providers.Offer
	insts  map[string]*providers.Instance
	calls  []string // mutations received, "stop gpu-1"
	failOf error    // returned by ListOffers/ListInstances when set
	caps   providers.Capabilities
	next   int
	// launchState is the state new instances stay in (default running); noStop makes
	// Precheck refuse stop and destroy, as a vendor does for a booting machine.
	launchState providers.State
	noStop      bool
	// onLaunch, when set, runs before an order is taken; its error refuses the order.
	onLaunch func(spec providers.LaunchSpec) error
	// delay is how long a buy or a start takes, so that concurrent checks overlap it.
	delay time.Duration
	// orderOnly: a launch answers with an order number, and its instance is never listed
	// (HuiXingYun lists an order's instance late).
	orderOnly bool
}

func newFake(name string) *fakeProvider {
	price := 2.5
	return &fakeProvider{
		name: name,
		offers: []providers.Offer{{
			ID: "o1", Provider: name, GPUModel: "NVIDIA RTX 4090", GPUCounts: []int{1, 2, 4},
			VRAMGB: 24, PricePerGPUHour: &price, Billing: []providers.BillingMode{providers.BillingHourly, providers.BillingMonthly},
			Prices: []providers.Price{{Billing: providers.BillingMonthly, CNY: 1000}}, Available: true,
		}},
		insts: map[string]*providers.Instance{},
		caps:  providers.Capabilities{Billing: []providers.BillingMode{providers.BillingHourly, providers.BillingMonthly}, PublishesPrices: true},
	}
}

func (f *fakeProvider) addInstance(local string, st providers.State) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.insts[local] = &providers.Instance{ID: local, Provider: f.name, Name: local, State: st,
		RawState: string(st), GPUModel: "NVIDIA RTX 4090", GPUCount: 1, Billing: providers.BillingHourly,
		Connection: &providers.Connection{SSHHost: "127.0.0.1", SSHPort: fakeSSH.Port, SSHUser: "root", SSHPassword: "s3cret-pw",
			SSHCommand: fmt.Sprintf("ssh -p %d root@127.0.0.1", fakeSSH.Port)}}
}

func (f *fakeProvider) mutations() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeProvider) state(local string) providers.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	if in, ok := f.insts[local]; ok {
		return in.State
	}
	return "absent"
}

func (f *fakeProvider) Name() string                         { return f.name }
func (f *fakeProvider) Capabilities() providers.Capabilities { return f.caps }

func (f *fakeProvider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	if f.failOf != nil {
		return nil, f.failOf
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]providers.Offer(nil), f.offers...), nil
}

func (f *fakeProvider) ListImages(ctx context.Context, q providers.ImageQuery) ([]providers.Image, error) {
	return []providers.Image{{ID: "img1", Provider: f.name, Name: "ubuntu-cuda", Kind: providers.ImagePublic}}, nil
}

func (f *fakeProvider) ListInstances(ctx context.Context) ([]providers.Instance, error) {
	if f.failOf != nil {
		return nil, f.failOf
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []providers.Instance
	for _, in := range f.insts {
		out = append(out, *in)
	}
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
	if req.Action == providers.ActionSaveImage {
		return []string{"fake warning: saving stops the instance"}, nil
	}
	// What the action loses, as every vendor's rule table says it.
	return providers.StateRules{Provider: f.name, Title: f.name, Actions: map[providers.Action]providers.ActionRule{req.Action: {}}}.Precheck(req)
}

func (f *fakeProvider) record(op, id string) {
	f.calls = append(f.calls, op+" "+id)
}

func (f *fakeProvider) Launch(ctx context.Context, spec providers.LaunchSpec) (providers.LaunchResult, error) {
	time.Sleep(f.delay)
	if f.onLaunch != nil {
		if err := f.onLaunch(spec); err != nil {
			return providers.LaunchResult{}, err
		}
	}
	f.mu.Lock()
	f.next++
	id := fmt.Sprintf("new-%d", f.next)
	f.record("launch", spec.OfferID+"/"+spec.ImageID)
	st, orderOnly := f.launchState, f.orderOnly
	var price *float64
	for _, o := range f.offers {
		if h, ok := o.HourlyPrice(spec.GPUCount); ok && o.ID == spec.OfferID && spec.Billing == providers.BillingHourly {
			price = &h
		}
	}
	f.mu.Unlock()
	if orderOnly {
		return providers.LaunchResult{OrderID: "order-" + id}, nil
	}
	if st == "" {
		st = providers.StateRunning
	}
	f.addInstance(id, st)
	f.mu.Lock()
	f.insts[id].PricePerHour = price
	f.mu.Unlock()
	return providers.LaunchResult{InstanceID: id, OrderID: "order-" + id}, nil
}

func (f *fakeProvider) setState(op, id string, st providers.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.insts[id]
	if !ok {
		return &providers.Error{Kind: providers.KindNotFound, Provider: f.name, Message: "no instance " + id}
	}
	f.record(op, id)
	in.State = st
	return nil
}

func (f *fakeProvider) Start(ctx context.Context, id string) error {
	time.Sleep(f.delay)
	return f.setState("start", id, providers.StateRunning)
}
func (f *fakeProvider) Stop(ctx context.Context, id string) error {
	return f.setState("stop", id, providers.StateStopped)
}
func (f *fakeProvider) Restart(ctx context.Context, id string) error {
	return f.setState("restart", id, providers.StateRunning)
}
func (f *fakeProvider) SaveImage(ctx context.Context, id, name string) (string, error) {
	return "img-" + name, f.setState("save_image", id, providers.StateStopped)
}
func (f *fakeProvider) Renew(ctx context.Context, id string, periods int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	in, ok := f.insts[id]
	if !ok {
		return &providers.Error{Kind: providers.KindNotFound, Provider: f.name, Message: "no instance " + id}
	}
	f.record("renew", id)
	t := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	in.ExpiresAt = &t
	return nil
}
func (f *fakeProvider) Destroy(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.insts[id]; !ok {
		return &providers.Error{Kind: providers.KindNotFound, Provider: f.name, Message: "no instance " + id}
	}
	f.record("destroy", id)
	delete(f.insts, id)
	return nil
}

// newTestFleet is a fleet on an in-memory state store of its own, polling every 5ms, closed
// when t ends; its reconciler runs only where a test starts it.
func newTestFleet(t testing.TB, reg *providers.Registry, tune ...func(*fleet.Options)) *fleet.Fleet {
	t.Helper()
	store, err := state.Open(context.Background(), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	o := fleet.Options{Providers: reg, Store: store, Log: zerolog.New(io.Discard), Poll: 5 * time.Millisecond}
	for _, f := range tune {
		f(&o)
	}
	fl, err := fleet.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fl.Close()
		store.Close()
	})
	return fl
}
