package chenyu

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

const (
	sshBanner = "SSH-2.0-chenyu-emulator\r\n"
)

// probe dials the instance's normalized SSH endpoint and returns its first line.
func probe(t *testing.T, in providers.Instance) string {
	t.Helper()
	c := in.Connection
	if c == nil || c.SSHHost != "127.0.0.1" || c.SSHPort <= 0 || c.SSHUser != "root" || c.SSHPassword == "" ||
		c.SSHCommand != "ssh -p "+strconv.Itoa(c.SSHPort)+" root@127.0.0.1" {
		t.Fatalf("connection %+v", c)
	}
	got, err := machinetest.ReadBanner(net.JoinHostPort(c.SSHHost, strconv.Itoa(c.SSHPort)), time.Second)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return got
}

func launchOn(t *testing.T, e env, gpu string) string {
	t.Helper()
	res, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu, ImageID: marketImg, GPUCount: 1})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	if res.InstanceID == "" {
		t.Fatalf("launch %+v", res)
	}
	return res.InstanceID
}

func TestSSHBannerOnlyWhileRunning(t *testing.T) {
	e := setup(t, cytest.Options{StepDelay: time.Minute})
	id := launchOn(t, e, gpu4090)
	addr, ok := e.srv.SSHAddr(id)
	if !ok {
		t.Fatal("no SSH endpoint")
	}
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != "" {
		t.Fatalf("creating instance greeted with %q", got)
	}
	e.clk.Add(time.Minute) // only the TCP endpoint is probed: readiness follows the timeline
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != sshBanner {
		t.Fatalf("running instance: banner %q", got)
	}
	in := mustInstance(t, e, id)
	if in.State != providers.StateRunning || probe(t, in) != sshBanner {
		t.Fatalf("running instance %s", in.State)
	}
	if err := e.p.Stop(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if got := probe(t, in); got != "" {
		t.Fatalf("shutting-down instance greeted with %q", got)
	}
	e.clk.Add(time.Minute)
	if got := probe(t, mustInstance(t, e, id)); got != "" {
		t.Fatalf("stopped instance greeted with %q", got)
	}
}

func TestLaunchOutcomes(t *testing.T) {
	e := setup(t, cytest.Options{StepDelay: time.Second})
	e.srv.SetLaunchOutcome(gpu4090, emulated.LaunchNeverRuns)
	stuck := launchOn(t, e, gpu4090)
	e.srv.SetLaunchOutcome(gpu4090, emulated.LaunchFails)
	failed := launchOn(t, e, gpu4090)
	normal := launchOn(t, e, gpuA100)
	e.clk.Add(time.Hour)

	if in := mustInstance(t, e, stuck); in.State != providers.StatePending || in.RawState != "1" || probe(t, in) != "" {
		t.Errorf("never-runs instance %s (%s)", in.State, in.RawState)
	}
	if in := mustInstance(t, e, failed); in.State != providers.StateError || in.RawState != "23" || probe(t, in) != "" {
		t.Errorf("failing instance %s (%s)", in.State, in.RawState)
	}
	if in := mustInstance(t, e, normal); in.State != providers.StateRunning || probe(t, in) != sshBanner {
		t.Errorf("instance of another GPU model %s", in.State)
	}

	e.srv.SetLaunchOutcome("", emulated.LaunchSoldOut)
	e.srv.SetLaunchOutcome(gpu4090, emulated.LaunchNormal) // its own entry is gone: "" applies
	n := len(e.srv.InstanceIDs())
	_, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1})
	wantKind(t, err, providers.KindRejected, "GPU")
	if len(e.srv.InstanceIDs()) != n {
		t.Fatal("a sold-out create made an instance")
	}
}

// A stuck instance cannot be shut down on Chenyu (running only) but can be destroyed.
func TestStuckInstanceCleanup(t *testing.T) {
	e := setup(t, cytest.Options{})
	e.srv.SetLaunchOutcome("", emulated.LaunchNeverRuns)
	id := launchOn(t, e, gpu4090)
	addr, _ := e.srv.SSHAddr(id)
	in := mustInstance(t, e, id)
	_, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionStop, Instance: in})
	wantKind(t, err, providers.KindConflict, "only a running instance")
	wantKind(t, e.p.Stop(t.Context(), id), providers.KindConflict) // the emulator agrees
	if w, err := e.p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in}); err != nil || len(w) == 0 {
		t.Fatalf("destroy precheck of a stuck instance: %v %v", w, err)
	}
	if err := e.p.Destroy(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.srv.Instance(id); ok {
		t.Fatal("destroyed instance still there")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("SSH endpoint of a destroyed instance still listens")
	}
}

// The shutdown timer stops the instance when its time comes, on the next read, and the SSH
// endpoint stops answering even when nothing but the endpoint is asked.
func TestShutdownTimerStopsTheInstance(t *testing.T) {
	e := setup(t, cytest.Options{StepDelay: time.Minute})
	addr, _ := e.srv.SSHAddr(sample)
	at := e.clk.Now().Add(30 * time.Minute).Truncate(time.Second)
	if err := e.p.ScheduleStop(t.Context(), sample, at); err != nil {
		t.Fatal(err)
	}
	if in := mustInstance(t, e, sample); in.StopsAt == nil || !in.StopsAt.Equal(at) || in.State != providers.StateRunning {
		t.Fatalf("before: %s, StopsAt %v", in.State, in.StopsAt)
	}
	e.clk.Add(30*time.Minute - time.Second)
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != sshBanner {
		t.Fatalf("a second before the timer: banner %q", got)
	}
	e.clk.Add(time.Second)
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != "" {
		t.Fatalf("at the timer: banner %q", got)
	}
	in := mustInstance(t, e, sample)
	if in.State != providers.StateStopping || in.StopsAt != nil {
		t.Fatalf("at the timer: %s, StopsAt %v", in.State, in.StopsAt)
	}
	e.clk.Add(time.Minute)
	if in := mustInstance(t, e, sample); in.State != providers.StateStopped {
		t.Fatalf("after the timer: %s", in.State)
	}
}

// Chenyu's payloads carry no order id: a launch's instance is named by the create answer.
func TestLaunchNamesItsInstance(t *testing.T) {
	e := setup(t, cytest.Options{StepDelay: time.Hour})
	res, err := e.p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1})
	if err != nil || res.InstanceID == "" || res.Instance == nil || res.Instance.ID != res.InstanceID {
		t.Fatalf("launch %+v %v", res, err)
	}
}

func TestNoGoroutineOutlivesServerClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv := cytest.NewServer(cytest.Options{})
	tr := &http.Transport{}
	p := New(Config{APIKey: srv.Credential(), BaseURL: srv.URL(), HTTPClient: &http.Client{Transport: tr}})
	res, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: gpu4090, ImageID: marketImg, GPUCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := srv.SSHAddr(res.InstanceID)
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != sshBanner {
		t.Fatalf("banner %q", got)
	}
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.Close()
	tr.CloseIdleConnections()
	goleak.VerifyNone(t, ignore)
}
