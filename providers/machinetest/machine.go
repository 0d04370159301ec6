// Package machinetest emulates the machine behind a GPU instance, the way net/http/httptest
// emulates a web server: a real SSH server (golang.org/x/crypto/ssh) on 127.0.0.1:0 that logs
// in with the instance's user and password (or authorized keys), presents a host key of its
// own, runs exec requests with /bin/sh in a sandbox directory, serves the sftp subsystem
// (github.com/pkg/sftp) rooted at that directory, and puts a fake nvidia-smi on the commands'
// PATH that prints the machine's GPU model and count.
//
// Readiness is per connection, as in the vendor emulators' banner-only endpoints: while the
// instance is not running, a connection is accepted and closed at once without a banner. The
// flag (SetReady) or, when set, a func asked on each accepted connection (SetReadyFunc)
// decides, so that an emulator can compute readiness from an instance's timeline even when
// nothing but the TCP port is probed. Connections already open are not affected; Halt is the
// power switch.
//
// # Commands
//
// An exec request runs `/bin/sh -c <command>` in its own process group, with HOME and the
// working directory set to the sandbox, PATH = the machine's bin directory (nvidia-smi) then
// the system PATH, SHELL=/bin/sh. The request is answered before any output, then output is
// streamed; the exit status (or the signal that ended the command) is sent once the command
// has exited and its stdout and stderr are closed by every process holding them, as OpenSSH
// does. "signal" requests go to the
// process group. When the session channel closes, for whatever reason, the process group is
// killed, like a session whose terminal hangs up: only processes that left the group (setsid)
// survive, which is how detached jobs outlive the client. Every process the machine started,
// detached or not, is killed by Halt and Close: each carries a marker in its environment that
// Close looks for in /proc. Options.IgnoreSignals and Options.LeaveOrphans make a machine
// stricter, for clients that must not count on the signal or the kill. pty requests and env requests are refused; a "shell" request runs
// /bin/sh reading commands from stdin. At most MaxSessions sessions are open per connection,
// as OpenSSH's MaxSessions.
//
// # Files
//
// The sftp subsystem sees the sandbox as "/": an absolute path such as /workspace/x names
// sandbox/workspace/x. Paths under the sandbox's own absolute path (what $HOME and pwd print in
// a command) name the same files, and sftp's working directory is reported as that path, so a
// relative path, a path under $HOME, and what a command prints all agree between sftp and
// exec. Other absolute paths do not: in a command /workspace/x is the host's. Symbolic links
// cannot lead out of the sandbox (os.Root). With a DiskQuota, writes through sftp that would
// take the sandbox's files past it fail as a full disk does (SSH_FX_FAILURE, "no space left
// on device"), and statvfs reports the quota; commands are not held to it.
package machinetest

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
)

// Defaults for Options left zero.
const (
	DefaultVendor       = "machinetest"
	DefaultUser         = "root"
	DefaultGPUModel     = "NVIDIA GeForce RTX 4090"
	DefaultGPUMemoryMiB = 24564
	DefaultMaxSessions  = 10
)

// HandshakeTimeout bounds the SSH handshake and login of one connection.
const HandshakeTimeout = 10 * time.Second

// Options describe an emulated machine.
type Options struct {
	Vendor         string          // names the emulator in the version banner: "SSH-2.0-<vendor>-emulator"
	User           string          // the login name; DefaultUser when empty
	Password       string          // the instance's password; empty: no password login
	AuthorizedKeys []ssh.PublicKey // keys that may log in as User
	HostKey        ssh.Signer      // nil: a fresh ed25519 key
	GPUModel       string          // what nvidia-smi prints; DefaultGPUModel when empty
	GPUCount       int             // 0: a machine without GPUs, and without nvidia-smi
	GPUMemoryMiB   int             // per GPU; DefaultGPUMemoryMiB when 0
	Dir            string          // the sandbox; empty: a temporary directory, removed by Close
	DiskQuota      int64           // bytes the sandbox's files may take through sftp; 0: no limit
	MaxSessions    int             // open sessions per connection; DefaultMaxSessions when 0

	// Stricter, like many real sshds, for clients that must not count on the defaults:
	IgnoreSignals   bool // "signal" requests are answered but not delivered
	LeaveOrphans    bool // a closed session only closes its pipes: its processes run on, as under OpenSSH without a pty
	TerseSFTPErrors bool // SFTP errors carry only their status code ("failure" for a full disk), as OpenSSH's sftp-server sends them
}

// Stats count what the machine served, so that tests can prove connection reuse.
type Stats struct {
	Accepted      int64 // TCP connections accepted while ready
	Authenticated int64 // connections that logged in
	Commands      int64 // exec requests started
}

// Machine is one emulated machine. Its methods are safe for concurrent use.
type Machine struct {
	opts    Options
	ln      net.Listener
	banner  string
	home    string // the sandbox, symlinks resolved
	ownHome bool
	priv    string // bin/ and the GPU state, outside the sandbox
	marker  string // NAME=value in every process's environment
	files   *sandboxFS

	ready   atomic.Bool
	readyFn atomic.Pointer[func() bool]
	config  atomic.Pointer[ssh.ServerConfig]
	hostKey atomic.Pointer[ssh.Signer]

	accepted, authenticated, commands atomic.Int64

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	procs    map[*process]struct{}
	cmdLog   []string
	gpuUtil  int
	closed   bool
	closeErr error
	wg       sync.WaitGroup
}

// Banner is the identification line a machine of vendor sends while ready.
func Banner(vendor string) string { return "SSH-2.0-" + vendor + "-emulator\r\n" }

// ReadBanner dials addr and returns the first line the server sends, "" when it closes the
// connection without one. Tests use it to probe a machine without logging in.
func ReadBanner(addr string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	line, err := bufio.NewReaderSize(c, 256).ReadSlice('\n')
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return string(line), err
}

// BannerEndpoint listens on 127.0.0.1 and answers every connection with an SSH banner
// ("SSH-2.0-fake"), then closes it: the SSH endpoint of fake instances that tests probe but
// never log in to. It runs for the life of the process; call it at a package's initialisation,
// so that leak checks see it as always there.
func BannerEndpoint() *net.TCPAddr {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("SSH-2.0-fake\r\n"))
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

// New starts a machine listening on 127.0.0.1:0. It starts not ready.
func New(o Options) (m *Machine, err error) {
	if o.Password == "" && len(o.AuthorizedKeys) == 0 {
		return nil, errors.New("machinetest: give a Password or AuthorizedKeys, or nobody can log in")
	}
	if o.GPUCount < 0 {
		return nil, fmt.Errorf("machinetest: GPUCount %d: want 0 or more", o.GPUCount)
	}
	if o.Vendor == "" {
		o.Vendor = DefaultVendor
	}
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.GPUModel == "" {
		o.GPUModel = DefaultGPUModel
	}
	if o.GPUMemoryMiB == 0 {
		o.GPUMemoryMiB = DefaultGPUMemoryMiB
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	m = &Machine{
		opts:   o,
		banner: Banner(o.Vendor),
		marker: "MACHINETEST_MACHINE=" + hex.EncodeToString(id),
		conns:  map[net.Conn]struct{}{},
		procs:  map[*process]struct{}{},
	}
	defer func() {
		if err != nil {
			m.removeDirs()
		}
	}()
	if err := m.makeDirs(); err != nil {
		return nil, err
	}
	if err := m.writeNvidiaSMI(); err != nil {
		return nil, err
	}
	key := o.HostKey
	if key == nil {
		if key, err = newHostKey(); err != nil {
			return nil, err
		}
	}
	m.setHostKey(key)
	if m.ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return nil, err
	}
	m.wg.Add(1)
	go m.accept()
	return m, nil
}

func (m *Machine) makeDirs() error {
	var err error
	if m.priv, err = os.MkdirTemp("", "machinetest-"); err != nil {
		return err
	}
	home := m.opts.Dir
	if home == "" {
		home, m.ownHome = filepath.Join(m.priv, "home"), true
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		return err
	}
	if m.home, err = filepath.EvalSymlinks(home); err != nil {
		return err
	}
	if m.home, err = filepath.Abs(m.home); err != nil {
		return err
	}
	m.files, err = newSandboxFS(m.home, m.opts.DiskQuota, m.opts.TerseSFTPErrors)
	return err
}

// removeDirs removes the machine's own directories: bin/, the GPU state and, unless the
// caller gave it, the sandbox.
func (m *Machine) removeDirs() {
	if m.files != nil {
		_ = m.files.root.Close()
	}
	if m.priv != "" {
		_ = os.RemoveAll(m.priv)
	}
}

func newHostKey() (ssh.Signer, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return ssh.NewSignerFromKey(k)
}

func (m *Machine) setHostKey(key ssh.Signer) {
	cfg := &ssh.ServerConfig{ServerVersion: m.banner[:len(m.banner)-2]}
	if m.opts.Password != "" {
		cfg.PasswordCallback = m.checkPassword
	}
	if len(m.opts.AuthorizedKeys) > 0 {
		cfg.PublicKeyCallback = m.checkKey
	}
	cfg.AddHostKey(key)
	m.hostKey.Store(&key)
	m.config.Store(cfg)
}

var errDenied = errors.New("permission denied")

func (m *Machine) checkPassword(c ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
	userOK := subtle.ConstantTimeCompare([]byte(c.User()), []byte(m.opts.User)) == 1
	pwOK := subtle.ConstantTimeCompare(pw, []byte(m.opts.Password)) == 1
	if userOK && pwOK {
		return nil, nil
	}
	return nil, errDenied
}

func (m *Machine) checkKey(c ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	if c.User() != m.opts.User {
		return nil, errDenied
	}
	for _, k := range m.opts.AuthorizedKeys {
		if subtle.ConstantTimeCompare(k.Marshal(), key.Marshal()) == 1 {
			return nil, nil
		}
	}
	return nil, errDenied
}

// Port is the TCP port the machine listens on.
func (m *Machine) Port() int { return m.ln.Addr().(*net.TCPAddr).Port }

// Host is the address the machine listens on: always "127.0.0.1".
func (m *Machine) Host() string { return "127.0.0.1" }

// Addr is "127.0.0.1:<port>".
func (m *Machine) Addr() string { return net.JoinHostPort(m.Host(), strconv.Itoa(m.Port())) }

// User is the login name.
func (m *Machine) User() string { return m.opts.User }

// Password is the login password ("" when only keys log in).
func (m *Machine) Password() string { return m.opts.Password }

// Dir is the sandbox: the commands' HOME and working directory, and sftp's "/".
func (m *Machine) Dir() string { return m.home }

// HostKey is the public host key the machine presents now.
func (m *Machine) HostKey() ssh.PublicKey { return (*m.hostKey.Load()).PublicKey() }

// RotateHostKey gives the machine a fresh host key, as a rebuilt instance gets, and returns
// it. Connections made from now on see the new key; open ones are not affected.
func (m *Machine) RotateHostKey() (ssh.PublicKey, error) {
	key, err := newHostKey()
	if err != nil {
		return nil, err
	}
	m.setHostKey(key)
	return key.PublicKey(), nil
}

// SetReady sets the readiness flag, used while no ready func is set.
func (m *Machine) SetReady(ready bool) { m.ready.Store(ready) }

// SetReadyFunc makes fn decide readiness, asked once per accepted connection (nil: the flag
// decides again). fn runs on the machine's goroutines: it must not wait for anything that
// waits for Close.
func (m *Machine) SetReadyFunc(fn func() bool) {
	if fn == nil {
		m.readyFn.Store(nil)
		return
	}
	m.readyFn.Store(&fn)
}

// Ready reports whether a connection made now would be served.
func (m *Machine) Ready() bool {
	if fn := m.readyFn.Load(); fn != nil {
		return (*fn)()
	}
	return m.ready.Load()
}

// Stats returns the counters so far.
func (m *Machine) Stats() Stats {
	return Stats{Accepted: m.accepted.Load(), Authenticated: m.authenticated.Load(), Commands: m.commands.Load()}
}

// Commands returns the exec requests' command lines in the order they arrived, exactly as the
// client sent them.
func (m *Machine) Commands() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.cmdLog...)
}

// SetDiskQuota changes the bytes the sandbox's files may take through sftp (0: no limit),
// as if another program filled or freed the disk; writes already under way are held to it.
func (m *Machine) SetDiskQuota(n int64) { m.files.setQuota(n) }

// Halt is the machine losing power: every open connection is closed and every process it
// started is killed, detached ones included. The listener, the sandbox and the host key stay,
// as a stopped instance keeps its disk; whether new connections are served is still up to
// the readiness flag or func, which the caller sets to match.
func (m *Machine) Halt() {
	m.mu.Lock()
	conns := m.takeConns()
	m.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	m.killAll()
}

// Close stops listening, kills every process the machine started, closes every connection,
// waits until every goroutine of the machine has ended, and removes the machine's
// directories (the sandbox too, unless Options.Dir named it). It may be called more than
// once.
func (m *Machine) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return m.closeErr
	}
	m.closed = true
	m.closeErr = m.ln.Close()
	conns := m.takeConns()
	m.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	m.killAll()
	m.wg.Wait()
	m.removeDirs()
	return m.closeErr
}

// takeConns returns the open connections. m.mu must be held.
func (m *Machine) takeConns() []net.Conn {
	conns := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	return conns
}

func (m *Machine) accept() {
	defer m.wg.Done()
	for {
		c, err := m.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return // closed
		}
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			_ = c.Close()
			return
		}
		m.conns[c] = struct{}{}
		m.wg.Add(1)
		m.mu.Unlock()
		go m.serveConn(c)
	}
}

func (m *Machine) serveConn(c net.Conn) {
	defer m.wg.Done()
	defer func() {
		m.mu.Lock()
		delete(m.conns, c)
		m.mu.Unlock()
		_ = c.Close()
	}()
	if !m.Ready() {
		return
	}
	m.accepted.Add(1)
	_ = c.SetDeadline(time.Now().Add(HandshakeTimeout))
	sc, chans, reqs, err := ssh.NewServerConn(c, m.config.Load())
	if err != nil {
		return
	}
	_ = c.SetDeadline(time.Time{})
	m.authenticated.Add(1)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		ssh.DiscardRequests(reqs) // keepalives get their "no", as from OpenSSH
	}()
	var open atomic.Int32
	for nc := range chans {
		if nc.ChannelType() != "session" {
			_ = nc.Reject(ssh.UnknownChannelType, "only session channels are served")
			continue
		}
		if open.Add(1) > int32(m.opts.MaxSessions) {
			open.Add(-1)
			_ = nc.Reject(ssh.Prohibited, "open failed: too many sessions on this connection")
			continue
		}
		ch, chReqs, err := nc.Accept()
		if err != nil {
			open.Add(-1)
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			defer open.Add(-1)
			m.serveSession(ch, chReqs)
		}()
	}
	_ = sc.Close()
}
