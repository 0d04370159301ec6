// Package sshd is a tiny stand-in for an instance's SSH daemon, for the vendor emulators: a
// loopback TCP listener that, while ready, greets each connection with an SSH identification
// line ("SSH-2.0-<vendor>-emulator\r\n", as a real sshd sends first) and, while not ready,
// accepts and closes connections at once without a word. Nothing speaks the SSH protocol
// beyond the banner: it lets a client prove that the endpoint of a running instance answers.
//
// Readiness is a flag (SetReady) or, when a func is set (SetReadyFunc), that func asked on
// each accepted connection, so that an emulator can compute it from an instance's timeline
// even when nothing but the TCP port is probed. The only goroutines are the accept loop and
// one per open connection; Close ends them all before it returns.
package sshd

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ReadDeadline is how long a greeted connection is kept open waiting for the client, which
// may send its own identification line; then it is closed.
const ReadDeadline = 2 * time.Second

// Endpoint is one emulated SSH endpoint on 127.0.0.1.
type Endpoint struct {
	ln     net.Listener
	banner []byte
	ready  atomic.Bool
	fn     atomic.Pointer[func() bool]

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// Listen binds 127.0.0.1:0 and starts accepting. vendor names the emulator in the banner.
// The endpoint starts not ready.
func Listen(vendor string) (*Endpoint, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	e := &Endpoint{ln: ln, banner: []byte(Banner(vendor)), conns: map[net.Conn]struct{}{}}
	e.wg.Add(1)
	go e.accept()
	return e, nil
}

// Banner is the identification line an endpoint of vendor sends while ready.
func Banner(vendor string) string { return "SSH-2.0-" + vendor + "-emulator\r\n" }

// Port is the TCP port the endpoint listens on.
func (e *Endpoint) Port() int { return e.ln.Addr().(*net.TCPAddr).Port }

// Host is the address the endpoint listens on: always "127.0.0.1".
func (e *Endpoint) Host() string { return "127.0.0.1" }

// Addr is "127.0.0.1:<port>".
func (e *Endpoint) Addr() string { return net.JoinHostPort(e.Host(), strconv.Itoa(e.Port())) }

// SetReady sets the readiness flag, used while no ready func is set.
func (e *Endpoint) SetReady(ready bool) { e.ready.Store(ready) }

// SetReadyFunc makes fn decide readiness, asked once per accepted connection (nil: the flag
// decides again). fn runs on the endpoint's goroutines: it must not wait for anything that
// waits for Close.
func (e *Endpoint) SetReadyFunc(fn func() bool) {
	if fn == nil {
		e.fn.Store(nil)
		return
	}
	e.fn.Store(&fn)
}

// Ready reports whether a connection made now would be greeted.
func (e *Endpoint) Ready() bool {
	if fn := e.fn.Load(); fn != nil {
		return (*fn)()
	}
	return e.ready.Load()
}

// Close stops listening, closes open connections and waits until every goroutine of the
// endpoint has ended. It may be called more than once.
func (e *Endpoint) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		e.wg.Wait()
		return nil
	}
	e.closed = true
	err := e.ln.Close()
	for c := range e.conns {
		_ = c.Close()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return err
}

func (e *Endpoint) accept() {
	defer e.wg.Done()
	for {
		c, err := e.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			_ = c.Close()
			return
		}
		e.conns[c] = struct{}{}
		e.wg.Add(1)
		e.mu.Unlock()
		go e.serve(c)
	}
}

func (e *Endpoint) serve(c net.Conn) {
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.conns, c)
		e.mu.Unlock()
		_ = c.Close()
	}()
	if !e.Ready() {
		return
	}
	_ = c.SetDeadline(time.Now().Add(ReadDeadline))
	if _, err := c.Write(e.banner); err != nil {
		return
	}
	buf := make([]byte, 256)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// ReadBanner dials addr and returns the first line the server sends, "" when it closes the
// connection without one. Tests use it to probe an endpoint.
func ReadBanner(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var line []byte
	b := make([]byte, 1)
	for len(line) < 255 {
		n, err := c.Read(b)
		if n == 1 {
			line = append(line, b[0])
			if b[0] == '\n' {
				return string(line), nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return string(line), nil
			}
			return string(line), err
		}
	}
	return string(line), nil
}
