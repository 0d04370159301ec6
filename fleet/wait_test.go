package fleet

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"
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
