package huixingyun_test

import (
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

const banner = "SSH-2.0-huixingyun-emulator\r\n"

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// sshBanner dials the instance's normalized SSH endpoint and returns what it says first.
func sshBanner(t *testing.T, in providers.Instance) string {
	t.Helper()
	c := in.Connection
	if c == nil || c.SSHHost != "127.0.0.1" || c.SSHPort <= 0 {
		t.Fatalf("connection %+v: want 127.0.0.1 and a port", c)
	}
	if want := "ssh -p " + strconv.Itoa(c.SSHPort) + " root@127.0.0.1"; c.SSHCommand != want || c.SSHUser != "root" || c.SSHPassword == "" {
		t.Fatalf("connection %+v: want command %q, user root and a password", c, want)
	}
	got, err := machinetest.ReadBanner(net.JoinHostPort(c.SSHHost, strconv.Itoa(c.SSHPort)), time.Second)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return got
}

func TestSSHBannerOnlyWhileRunning(t *testing.T) {
	clk := &fakeClock{t: time.Date(2024, 7, 5, 12, 0, 0, 0, time.UTC)}
	e := setup(t, hxytest.Options{StepDelay: time.Minute, Now: clk.now})
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	in, err := e.p.GetInstance(e.ctx, gid)
	if err != nil || in.State != providers.StatePending {
		t.Fatalf("new instance %v %v", in.State, err)
	}
	if got := sshBanner(t, in); got != "" {
		t.Fatalf("creating instance greeted with %q", got)
	}
	// Only the TCP endpoint is probed: readiness follows the timeline without an API call.
	clk.add(time.Minute)
	n := len(e.srv.Requests())
	if got := sshBanner(t, in); got != banner {
		t.Fatalf("running instance: banner %q, want %q", got, banner)
	}
	if len(e.srv.Requests()) != n {
		t.Fatal("the probe made API requests")
	}
	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if got := sshBanner(t, in); got != "" {
		t.Fatalf("stopping instance greeted with %q", got)
	}
	clk.add(time.Minute)
	if got := sshBanner(t, in); got != "" {
		t.Fatalf("stopped instance greeted with %q", got)
	}
	if err := e.p.Start(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	clk.add(time.Minute)
	again, err := e.p.GetInstance(e.ctx, gid)
	if err != nil || again.State != providers.StateRunning || again.Connection.SSHPort != in.Connection.SSHPort {
		t.Fatalf("after start: %v %v, port %d (was %d)", again.State, err, again.Connection.SSHPort, in.Connection.SSHPort)
	}
	if got := sshBanner(t, again); got != banner {
		t.Fatalf("restarted instance: banner %q", got)
	}
}

func TestLaunchOutcomeNeverRunsAndFailsStayCreating(t *testing.T) {
	for _, o := range []emulated.LaunchOutcome{emulated.LaunchNeverRuns, emulated.LaunchFails} {
		t.Run(o.String(), func(t *testing.T) {
			clk := &fakeClock{t: time.Date(2024, 7, 5, 12, 0, 0, 0, time.UTC)}
			e := setup(t, hxytest.Options{StepDelay: time.Second, Now: clk.now})
			e.srv.SetLaunchOutcome(offer4090, o)
			gid := e.launch(t, offer4090, 1, providers.BillingHourly)
			other := e.launch(t, offerA100, 1, providers.BillingHourly)
			clk.add(24 * time.Hour)
			in, err := e.p.GetInstance(e.ctx, gid)
			if err != nil || in.State != providers.StatePending || in.RawState != hxytest.StatusCreating {
				t.Fatalf("stuck instance: %v (%s) %v", in.State, in.RawState, err)
			}
			if got := sshBanner(t, in); got != "" {
				t.Fatalf("stuck instance greeted with %q", got)
			}
			if st := e.status(t, other); st != hxytest.StatusRunning {
				t.Fatalf("an instance of another offer is %s; the outcome is per offer", st)
			}
		})
	}
}

func TestLaunchOutcomeSoldOutIsRefusedWithoutInstance(t *testing.T) {
	e := setup(t, hxytest.Options{})
	e.srv.SetLaunchOutcome("", emulated.LaunchSoldOut)
	img := e.publicImage(t, offerA100)
	_, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offerA100, ImageID: img, GPUCount: 1, Billing: providers.BillingHourly})
	wantKind(t, err, providers.KindRejected, "insufficient GPUs", "sold out")
	if n := len(e.srv.Instances()); n != 0 {
		t.Fatalf("%d instances after a sold-out buy", n)
	}
	e.srv.SetLaunchOutcome(offerA100, emulated.LaunchNormal) // a per-offer entry beats ""; normal clears it
	e.srv.SetLaunchOutcome("", emulated.LaunchNormal)
	if gid := e.launch(t, offerA100, 1, providers.BillingHourly); e.status(t, gid) != hxytest.StatusRunning {
		t.Fatal("launch after the outcome was reset did not run")
	}
}

// A stuck hourly instance is cleaned up by stop, then destroy; a stuck prepaid one can only
// be stopped.
func TestStuckInstanceCleanup(t *testing.T) {
	e := setup(t, hxytest.Options{})
	e.srv.SetLaunchOutcome(offer4090, emulated.LaunchNeverRuns)
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	in, err := e.p.GetInstance(e.ctx, gid)
	if err != nil || in.State != providers.StatePending {
		t.Fatalf("%v %v", in.State, err)
	}
	addr, _ := e.srv.SSHAddr(gid)
	if _, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in}); err == nil {
		t.Fatal("Precheck let a creating instance be destroyed; HuiXingYun destroys stopped ones only")
	}
	if w, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionStop, Instance: in}); err != nil || len(w) == 0 {
		t.Fatalf("Precheck stop of a stuck instance: %v %v", w, err)
	}
	if err := e.p.Stop(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	in, _ = e.p.GetInstance(e.ctx, gid)
	if _, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in}); err != nil || in.State != providers.StateStopped {
		t.Fatalf("destroy precheck of the stopped instance (%s): %v", in.State, err)
	}
	if err := e.p.Destroy(e.ctx, gid); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.srv.Instance(gid); ok {
		t.Fatal("destroyed instance still listed")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the SSH endpoint of a destroyed instance still accepts connections")
	}

	monthly := e.launch(t, offer4090, 1, providers.BillingMonthly)
	if err := e.p.Stop(e.ctx, monthly); err != nil {
		t.Fatal(err)
	}
	in, _ = e.p.GetInstance(e.ctx, monthly)
	wantKind(t, func() error {
		_, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in})
		return err
	}(), providers.KindConflict, "only hourly-billed")
}

func TestLaunchFindsTheInstanceOfItsOrder(t *testing.T) {
	e := setup(t, hxytest.Options{StepDelay: time.Hour})
	img := e.publicImage(t, offer4090)
	res, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offer4090, ImageID: img, GPUCount: 1, Billing: providers.BillingHourly})
	if err != nil {
		t.Fatal(err)
	}
	if res.OrderID == "" || res.InstanceID == "" || res.Instance == nil || res.Instance.OrderID != res.OrderID {
		t.Fatalf("launch result %+v", res)
	}
	rec, _ := e.srv.Instance(res.InstanceID)
	if rec.OrderUID != res.OrderID {
		t.Fatalf("emulator order %s, launch %s", rec.OrderUID, res.OrderID)
	}
	list, err := e.p.ListInstances(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, in := range list {
		if in.OrderID == res.OrderID {
			found++
			if in.ID != res.InstanceID {
				t.Fatalf("order %s lists %s, launch said %s", res.OrderID, in.ID, res.InstanceID)
			}
		}
	}
	if found != 1 {
		t.Fatalf("%d instances carry order %s", found, res.OrderID)
	}
}

func TestNoGoroutineOutlivesServerClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv := hxytest.NewServer(hxytest.Options{})
	tr := &http.Transport{}
	p := huixingyun.New(huixingyun.Config{Token: srv.Credential(), BaseURL: srv.URL(), HTTPClient: &http.Client{Transport: tr}})
	e := &env{srv: srv, p: p, ctx: t.Context()}
	gid := e.launch(t, offer4090, 1, providers.BillingHourly)
	addr, _ := srv.SSHAddr(gid)
	if got, err := machinetest.ReadBanner(addr, time.Second); err != nil || got != banner {
		t.Fatalf("banner %q %v", got, err)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second) // left open: Close must end it
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.Close()
	tr.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}
