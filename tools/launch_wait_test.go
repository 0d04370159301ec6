package tools

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// listen runs serve on each connection to a loopback listener.
func listen(t *testing.T, serve func(net.Conn)) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			serve(c)
		}
	}()
	a := ln.Addr().(*net.TCPAddr)
	return "127.0.0.1", a.Port
}

func TestSSHProbe(t *testing.T) {
	ctx := context.Background()
	host, port := listen(t, func(c net.Conn) { c.Write([]byte("SSH-2.0-OpenSSH_9.6\r\n")); c.Close() })
	if ok, detail := sshProbe(ctx, host, port, time.Second); !ok || !strings.HasPrefix(detail, "SSH-2.0-OpenSSH") {
		t.Errorf("a banner: %v %q", ok, detail)
	}
	host, port = listen(t, func(c net.Conn) { c.Close() })
	if ok, detail := sshProbe(ctx, host, port, time.Second); ok || !strings.Contains(detail, "without an SSH banner") {
		t.Errorf("closed at once (a forwarder whose machine is down): %v %q", ok, detail)
	}
	var held []net.Conn
	host, port = listen(t, func(c net.Conn) { held = append(held, c) })
	if ok, detail := sshProbe(ctx, host, port, 100*time.Millisecond); !ok || !strings.Contains(detail, "accepts TCP") {
		t.Errorf("silent but open (a proxy that waits for the client): %v %q", ok, detail)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closedPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if ok, detail := sshProbe(ctx, "127.0.0.1", closedPort, time.Second); ok || !strings.Contains(detail, "no TCP connection") {
		t.Errorf("refused: %v %q", ok, detail)
	}
}

// gpu-mcp's own auto-stop stops a running instance when due, shows the time on the instance
// meanwhile, and Close cancels the stops not yet made.
func TestAutoStopByGPUMCP(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	f.addInstance("i2", providers.StateRunning)
	d := depsFor(t, f)
	at := time.Now().Add(50 * time.Millisecond)
	d.stops.schedule(d, f, "i1", at)
	d.stops.schedule(d, f, "i2", time.Now().Add(time.Hour))
	in, _ := f.GetInstance(context.Background(), "i1")
	d.stops.overlay(&in)
	if in.StopsAt == nil || !in.StopsAt.Equal(at) {
		t.Fatalf("stops_at %v, want %v", in.StopsAt, at)
	}
	for deadline := time.Now().Add(10 * time.Second); f.state("i1") != providers.StateStopped; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("i1 was not stopped")
		}
	}
	d.Close()
	if f.state("i2") != providers.StateRunning {
		t.Fatal("i2 was stopped")
	}
	in2, _ := f.GetInstance(context.Background(), "i2")
	d.stops.overlay(&in2)
	if in2.StopsAt != nil {
		t.Fatal("a cancelled stop is still shown")
	}
	if m := f.mutations(); len(m) != 1 || m[0] != "stop i1" {
		t.Fatalf("mutations %v", m)
	}
}

// A machine that never comes up and that the vendor lets nobody stop or destroy is left
// alone, and the answer says it bills.
func TestLaunchThatNeverRunsAndCannotBeCleanedUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newFake("alpha"))
	f := h.fakes["alpha"]
	f.launchState, f.noStop = providers.StatePending, true
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait_timeout": "5s"}
	_, plan := h.call("launch_instance", args)
	args["confirm_token"] = plan["confirmation_token"]
	res, m := h.call("launch_instance", args)
	if res.IsError {
		t.Fatal(text(res))
	}
	att := m["attempts"].([]any)[0].(map[string]any)
	if m["status"] != "failed" || att["result"] != "not_running" || att["billing"] != "yes" ||
		!strings.Contains(att["cleanup"].(string), "allows neither stopping nor destroying") ||
		!strings.Contains(m["billing_now"].(string), "alpha:new-1 bills") {
		t.Fatalf("result: %v", m)
	}
	if !strings.Contains(text(res), "billing now: alpha:new-1 bills") {
		t.Fatalf("text: %s", text(res))
	}
	if f.state("new-1") != providers.StatePending {
		t.Fatal("the instance changed")
	}
}

func TestWaitInstanceArguments(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newFake("alpha"))
	h.fakes["alpha"].addInstance("i1", providers.StateRunning)
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"instance_id": "alpha:i1"}, "until is required"},
		{map[string]any{"instance_id": "alpha:i1", "until": "up"}, `until "up" is not accepted`},
		{map[string]any{"instance_id": "alpha:i1", "until": "running", "image_id": "alpha:x"}, "image_id and image_name apply to until=image_saved only"},
		{map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "2h"}, "between 5s and 30m"},
		{map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "soon"}, "between 5s and 30m"},
	} {
		res, _ := h.call("wait_instance", c.args)
		if !res.IsError || !strings.Contains(text(res), c.want) {
			t.Errorf("%v: %q, want %q", c.args, text(res), c.want)
		}
	}
	res, m := h.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "ssh_ready"})
	if res.IsError || m["reached"] != true {
		t.Fatalf("ssh_ready on a running instance with an answering sshd: %s", text(res))
	}
	res, m = h.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "stopped", "timeout": "5s"})
	if res.IsError || m["reached"] != false || !strings.Contains(m["detail"].(string), "still running") {
		t.Fatalf("stopped on a running instance: %s", text(res))
	}
}

// A client that gives up while a launch waits does not leave a machine that never comes up
// billing: the wait goes on without it, and the instance is cleaned up.
func TestAbandonedLaunchIsStillCleanedUp(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StatePending
	d := depsFor(t, f)
	var launch Tool
	for _, tool := range All(d) {
		if tool.Name == "launch_instance" {
			launch = tool
		}
	}
	args := `{"offer_id":"alpha:o1","image_id":"alpha:img1","wait_timeout":"5s"`
	plan := launch.Call(context.Background(), []byte(args+"}"))
	token := plan.StructuredContent.(LaunchResult).ConfirmationToken
	if token == "" {
		t.Fatalf("no token: %s", text(plan))
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for f.state("new-1") != providers.StatePending {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	res := launch.Call(ctx, []byte(args+`,"confirm_token":"`+token+`"}`))
	out, _ := res.StructuredContent.(LaunchResult)
	if len(out.Attempts) != 1 || out.Attempts[0].Result != "ordered" || !strings.Contains(out.Attempts[0].Detail, "keeps watching") {
		t.Fatalf("cancelled launch: %s", text(res))
	}
	for deadline := time.Now().Add(30 * time.Second); f.state("new-1") != "absent"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the abandoned instance was not cleaned up: %s, mutations %v", f.state("new-1"), f.mutations())
		}
	}
	if m := f.mutations(); strings.Join(m, ",") != "launch o1/img1,stop new-1,destroy new-1" {
		t.Fatalf("mutations %v", m)
	}
}
