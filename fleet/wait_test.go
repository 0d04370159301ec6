package fleet

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
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

// A wait for a running instance to stop ends at once when nothing stops it, and goes on (to its
// timeout, here) when an auto-stop is due before the wait would end.
func TestWaitForAStopNothingIsMovingTowards(t *testing.T) {
	fake := newFake("alpha")
	fake.addInstance("i1", "one", providers.StateRunning)
	e := newEnvAt(t, fake, fake, time.Now)
	p, _ := e.reg.Get("alpha")
	w := Waiter{Provider: p, ID: "alpha:i1", Until: UntilStopped, Timeout: time.Hour, FailWhenIdle: true}
	got, err := e.fleet.Wait(t.Context(), w)
	if err != nil || got.Reached || got.Outcome != WaitUnreachable || !strings.Contains(got.Detail, "nothing is stopping it: call stop_instance") {
		t.Fatalf("nothing stops it: %+v %v", got, err)
	}
	// A caller that just asked for the stop is given time: the same wait runs to its timeout.
	w.FailWhenIdle, w.Timeout = false, 50*time.Millisecond
	if got, _ := e.fleet.Wait(t.Context(), w); got.Outcome != WaitTimedOut {
		t.Fatalf("without FailWhenIdle: %+v", got)
	}
	// An auto-stop due within the wait: waiting makes sense.
	if _, err := e.fleet.SetLease(t.Context(), p, "alpha:i1", time.Now().Add(10*time.Millisecond), state.ActionStop, ""); err != nil {
		t.Fatal(err)
	}
	w.FailWhenIdle, w.Timeout = true, 50*time.Millisecond
	if got, _ := e.fleet.Wait(t.Context(), w); got.Outcome != WaitTimedOut {
		t.Fatalf("an auto-stop due before the deadline: %+v", got)
	}
	// One due after the wait would end does not count.
	if _, err := e.fleet.SetLease(t.Context(), p, "alpha:i1", time.Now().Add(2*time.Hour), state.ActionStop, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.fleet.Wait(t.Context(), w); got.Outcome != WaitUnreachable {
		t.Fatalf("an auto-stop due after the deadline: %+v", got)
	}
}

// An image that the vendor cannot report ready is never "reached": the wait says so at once.
func TestWaitForAnImageTheVendorCannotReport(t *testing.T) {
	fake := newFake("alpha")
	fake.caps.ImageSaved, fake.caps.SaveImageStops = providers.SaveReportNone, true
	fake.addInstance("i1", "one", providers.StateStopping)
	e := newEnvAt(t, fake, fake, time.Now)
	p, _ := e.reg.Get("alpha")
	got, err := e.fleet.Wait(t.Context(), Waiter{Provider: p, ID: "alpha:i1", Until: UntilImageSaved, ImageID: "alpha:img", Timeout: time.Hour})
	if err != nil || got.Reached || got.Outcome != WaitUnconfirmable ||
		!strings.Contains(got.Detail, "cannot be confirmed: alpha does not report when an image is ready") || !strings.Contains(got.Detail, "until=stopped") {
		t.Fatalf("%+v %v", got, err)
	}
}

// On a vendor that shows a save on the instance, waiting for an image with no save going on
// ends at once.
func TestWaitForAnImageWithNoSaveInProgress(t *testing.T) {
	fake := newFake("alpha")
	fake.caps.ImageSaved = providers.SaveReportInstance
	fake.addInstance("i1", "one", providers.StateRunning)
	e := newEnvAt(t, fake, fake, time.Now)
	p, _ := e.reg.Get("alpha")
	got, err := e.fleet.Wait(t.Context(), Waiter{Provider: p, ID: "alpha:i1", Until: UntilImageSaved, Timeout: time.Hour})
	if err != nil || got.Outcome != WaitUnreachable || !strings.Contains(got.Detail, "no save is in progress") {
		t.Fatalf("%+v %v", got, err)
	}
}
