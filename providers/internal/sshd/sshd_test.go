package sshd

import (
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const probe = time.Second

func TestBannerOnlyWhileReady(t *testing.T) {
	e, err := Listen("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if e.Port() <= 0 || e.Addr() != "127.0.0.1:"+strconv.Itoa(e.Port()) {
		t.Fatalf("port %d addr %s", e.Port(), e.Addr())
	}
	got, err := ReadBanner(e.Addr(), probe)
	if err != nil || got != "" {
		t.Fatalf("not ready: banner %q, err %v; want none", got, err)
	}
	e.SetReady(true)
	got, err = ReadBanner(e.Addr(), probe)
	if err != nil || got != "SSH-2.0-acme-emulator\r\n" {
		t.Fatalf("ready: banner %q, err %v", got, err)
	}
	e.SetReady(false)
	if got, _ := ReadBanner(e.Addr(), probe); got != "" {
		t.Fatalf("not ready again: banner %q", got)
	}
}

func TestReadyFuncAskedPerConnection(t *testing.T) {
	e, err := Listen("acme")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var ready atomic.Bool
	var asked atomic.Int32
	e.SetReadyFunc(func() bool { asked.Add(1); return ready.Load() })
	e.SetReady(true) // the func wins over the flag
	if got, _ := ReadBanner(e.Addr(), probe); got != "" {
		t.Fatalf("func says not ready: banner %q", got)
	}
	ready.Store(true)
	if got, _ := ReadBanner(e.Addr(), probe); got != Banner("acme") {
		t.Fatalf("func says ready: banner %q", got)
	}
	if asked.Load() != 2 {
		t.Fatalf("ready func asked %d times, want 2", asked.Load())
	}
	e.SetReadyFunc(nil)
	e.SetReady(false)
	if got, _ := ReadBanner(e.Addr(), probe); got != "" {
		t.Fatalf("flag again: banner %q", got)
	}
}

// An open, greeted connection that the client keeps open must not keep Close waiting.
func TestCloseEndsOpenConnectionsAndRefusesNewOnes(t *testing.T) {
	e, err := Listen("acme")
	if err != nil {
		t.Fatal(err)
	}
	e.SetReady(true)
	c, err := net.DialTimeout("tcp", e.Addr(), probe)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	_ = c.SetDeadline(time.Now().Add(probe))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != Banner("acme") {
		t.Fatalf("banner %q, err %v", buf[:n], err)
	}
	addr := e.Addr()
	if err := e.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := c.Read(buf); err == nil {
		t.Fatal("connection still open after Close")
	}
	if c2, err := net.DialTimeout("tcp", addr, probe); err == nil {
		c2.Close()
		t.Fatal("dial succeeded after Close")
	}
}
