package datenfab

import (
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

const (
	offer4090 = "host-cluster/66/1"
	sshBanner = "SSH-2.0-datenfab-emulator\r\n"
)

// probe dials the instance's normalized SSH endpoint and returns its first line.
func probe(t *testing.T, in providers.Instance) string {
	t.Helper()
	c := in.Connection
	if c == nil || c.SSHHost != "127.0.0.1" || c.SSHPort <= 0 || c.SSHCommand != "ssh -p "+strconv.Itoa(c.SSHPort)+" root@127.0.0.1" {
		t.Fatalf("connection %+v", c)
	}
	got, err := machinetest.ReadBanner(net.JoinHostPort(c.SSHHost, strconv.Itoa(c.SSHPort)), time.Second)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	return got
}

func TestSSHBannerOnlyWhileRunning(t *testing.T) {
	clk := newClock()
	p, srv, _ := setup(t, dftest.Options{StepDelay: time.Minute, Now: clk.Now})
	res := launch(t, p, "ssh")
	if res.Instance.State != providers.StatePending {
		t.Fatalf("new instance %s", res.Instance.State)
	}
	addr, ok := srv.SSHAddr(res.InstanceID)
	if !ok {
		t.Fatal("no SSH endpoint")
	}
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != "" {
		t.Fatalf("creating instance greeted with %q", got)
	}
	clk.Add(time.Minute) // only the TCP endpoint is probed: readiness follows the timeline
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != sshBanner {
		t.Fatalf("running instance: banner %q", got)
	}
	in := get(t, p, res.InstanceID)
	if in.State != providers.StateRunning || probe(t, in) != sshBanner {
		t.Fatalf("running instance %s", in.State)
	}
	if err := p.Stop(t.Context(), res.InstanceID); err != nil {
		t.Fatal(err)
	}
	if got := probe(t, in); got != "" {
		t.Fatalf("stopping instance greeted with %q", got)
	}
	clk.Add(time.Minute)
	if got := probe(t, in); got != "" {
		t.Fatalf("stopped instance greeted with %q", got)
	}
}

func TestLaunchOutcomes(t *testing.T) {
	clk := newClock()
	p, srv, _ := setup(t, dftest.Options{StepDelay: time.Second, Now: clk.Now})

	srv.SetLaunchOutcome(offer4090, emulated.LaunchNeverRuns)
	stuck := launch(t, p, "stuck")
	srv.SetLaunchOutcome(offer4090, emulated.LaunchFails)
	failed := launch(t, p, "failed")
	srv.SetLaunchOutcome(offer4090, emulated.LaunchNormal)
	normal := launch(t, p, "normal")
	clk.Add(time.Hour)

	if in := get(t, p, stuck.InstanceID); in.State != providers.StatePending || in.RawState != "Creating" {
		t.Errorf("never-runs instance: %s (%s)", in.State, in.RawState)
	}
	if in := get(t, p, failed.InstanceID); in.State != providers.StateError || in.RawState != dftest.StatusFailed || probe(t, in) != "" {
		t.Errorf("failed instance: %s (%s)", in.State, in.RawState)
	}
	if in := get(t, p, normal.InstanceID); in.State != providers.StateRunning {
		t.Errorf("normal instance: %s", in.State)
	}
	addr, _ := srv.SSHAddr(stuck.InstanceID)
	if got, _ := machinetest.ReadBanner(addr, time.Second); got != "" {
		t.Errorf("never-runs instance greeted with %q", got)
	}

	srv.SetLaunchOutcome("", emulated.LaunchSoldOut)
	before, _ := srv.RemainGPUs("66")
	_, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: offer4090, ImageID: tfImage, Name: "x"})
	wantKind(t, err, providers.KindRejected, "insufficient GPU resources")
	if after, _ := srv.RemainGPUs("66"); after != before {
		t.Errorf("sold-out create took GPUs: %d -> %d", before, after)
	}
}

// Cleanup of an instance stuck in Creating: power off, then delete; a failed one is deleted
// directly. Precheck agrees with the emulator at every step.
func TestStuckInstanceCleanup(t *testing.T) {
	p, srv, _ := setup(t, dftest.Options{})
	srv.SetLaunchOutcome("", emulated.LaunchNeverRuns)
	res := launch(t, p, "stuck")
	addr, _ := srv.SSHAddr(res.InstanceID)
	in := get(t, p, res.InstanceID)
	if in.State != providers.StatePending {
		t.Fatalf("state %s", in.State)
	}
	_, err := p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in})
	wantKind(t, err, providers.KindConflict, "stop it first")
	if err := p.Destroy(t.Context(), res.InstanceID); err == nil {
		t.Fatal("the emulator deleted a creating instance")
	}
	if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionStop, Instance: in}); err != nil {
		t.Fatalf("precheck stop: %v", err)
	}
	if err := p.Stop(t.Context(), res.InstanceID); err != nil {
		t.Fatal(err)
	}
	in = get(t, p, res.InstanceID)
	if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in}); err != nil || in.State != providers.StateStopped {
		t.Fatalf("destroy precheck (%s): %v", in.State, err)
	}
	if err := p.Destroy(t.Context(), res.InstanceID); err != nil {
		t.Fatal(err)
	}
	if _, ok := srv.Instance(res.InstanceID); ok {
		t.Fatal("instance still there")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("SSH endpoint of a deleted instance still listens")
	}

	srv.SetLaunchOutcome("", emulated.LaunchFails)
	failed := launch(t, p, "failed")
	in = get(t, p, failed.InstanceID)
	if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: in}); err != nil {
		t.Fatalf("destroy precheck of a failed instance: %v", err)
	}
	if err := p.Destroy(t.Context(), failed.InstanceID); err != nil {
		t.Fatal(err)
	}
}

func TestOrderIDOnEveryInstance(t *testing.T) {
	p, _, _ := setup(t, dftest.Options{StepDelay: time.Hour})
	res := launch(t, p, "order")
	if res.OrderID == "" || res.Instance == nil || res.Instance.OrderID != res.OrderID {
		t.Fatalf("launch %+v", res)
	}
	list, err := p.ListInstances(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range list {
		if in.OrderID == "" {
			t.Errorf("%s has no order id", in.ID)
		}
		if in.OrderID == res.OrderID && in.ID != res.InstanceID {
			t.Errorf("order %s lists %s", res.OrderID, in.ID)
		}
	}
}

func TestNoGoroutineOutlivesServerClose(t *testing.T) {
	ignore := goleak.IgnoreCurrent()
	srv := dftest.NewServer(dftest.Options{})
	tr := &http.Transport{}
	p := New(Config{Token: srv.Credential(), Namespace: srv.Namespace(), BaseURL: srv.URL(), HTTPClient: &http.Client{Transport: tr}})
	res := launch(t, p, "leak")
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
