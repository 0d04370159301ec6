package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"
)

// Pool defaults, for PoolOptions left zero.
const (
	DefaultDialTimeout = 15 * time.Second
	DefaultKeepAlive   = 30 * time.Second
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxSessions leaves room under OpenSSH's MaxSessions (10) for the SFTP session
	// and the short command that kills a timed-out one.
	DefaultMaxSessions = 8
)

// PoolOptions tune a Pool.
type PoolOptions struct {
	DialTimeout time.Duration  // TCP connect, SSH handshake and login
	KeepAlive   time.Duration  // interval of keepalive requests; a connection that misses one is closed
	IdleTimeout time.Duration  // a connection unused this long is closed (checked at each keepalive)
	MaxSessions int            // commands at once on one connection; more wait their turn
	Logger      zerolog.Logger // connection events (zero value: none); never a credential
}

// Pool keeps one SSH connection per instance (its id, address and user) and shares it among
// the calls for that instance, which run as sessions of it. A dead connection is dialed
// again on next use, and an operation that could not even open its session on a pooled
// connection that died is retried once on a new one (nothing reached the machine, so this
// repeats nothing). Credentials are not part of the key: a call with other ones for the same
// instance, address and user shares the connection the first call logged in. It is safe for
// concurrent use.
type Pool struct {
	keys HostKeys
	opts PoolOptions
	log  zerolog.Logger

	mu     sync.Mutex
	conns  map[poolKey]*conn
	closed bool
	wg     sync.WaitGroup
}

type poolKey struct{ instance, addr, user string }

// conn is one pooled connection. The fields under "guarded by Pool.mu" are so guarded.
type conn struct {
	key      poolKey
	dialed   chan struct{} // closed when client or err is set
	client   *ssh.Client
	err      error
	canceled bool          // err came from the dialing caller's own context
	sessions chan struct{} // a slot per session in use
	dead     chan struct{} // closed when the connection has ended

	busy     int           // guarded by Pool.mu: operations in flight
	lastUsed time.Time     // guarded by Pool.mu
	freed    chan struct{} // guarded by Pool.mu: closed (and replaced) when a session ends

	sftpMu sync.Mutex
	sftp   *sftp.Client
}

// NewPool returns a pool that pins host keys in keys.
func NewPool(keys HostKeys, o PoolOptions) *Pool {
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.KeepAlive <= 0 {
		o.KeepAlive = DefaultKeepAlive
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	return &Pool{keys: keys, opts: o, log: o.Logger, conns: map[poolKey]*conn{}}
}

// Close closes every connection and waits for the pool's goroutines to end. Commands
// running on the machine get their sessions closed; detached jobs keep running. Later calls
// return ErrPoolClosed.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	conns := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		conns = append(conns, c)
	}
	p.conns = map[poolKey]*conn{}
	p.mu.Unlock()
	for _, c := range conns {
		<-c.dialed
		if c.client != nil {
			_ = c.client.Close()
		}
	}
	p.wg.Wait()
	return nil
}

// Disconnect closes the pooled connections to instanceID (after a stop or a rebuild).
// Operations in flight on them fail.
func (p *Pool) Disconnect(instanceID string) {
	p.mu.Lock()
	var conns []*conn
	for k, c := range p.conns {
		if k.instance == instanceID {
			conns = append(conns, c)
			delete(p.conns, k)
		}
	}
	p.mu.Unlock()
	for _, c := range conns {
		<-c.dialed
		if c.client != nil {
			_ = c.client.Close()
		}
	}
}

// AcceptNewHostKey forgets the host key pinned for instanceID and closes its connections, so
// that the next connection pins the key the machine presents then. Call it only when the
// user says the instance was rebuilt.
func (p *Pool) AcceptNewHostKey(ctx context.Context, instanceID string) error {
	if err := p.keys.Forget(ctx, instanceID); err != nil {
		return fmt.Errorf("cannot forget the host key of instance %s: %w", instanceID, err)
	}
	p.Disconnect(instanceID)
	p.log.Info().Str("instance", instanceID).Msg("ssh host key forgotten; the next connection pins a new one")
	return nil
}

// acquire returns the pooled connection for t, dialing it if there is none, and counts an
// operation in flight on it until release.
func (p *Pool) acquire(ctx context.Context, t Target) (c *conn, release func(), err error) {
	if err := t.check(); err != nil {
		return nil, nil, err
	}
	k := poolKey{t.InstanceID, t.addr(), t.User}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, nil, ErrPoolClosed
		}
		c = p.conns[k]
		dialer := c == nil
		if dialer {
			c = &conn{key: k, dialed: make(chan struct{}), sessions: make(chan struct{}, p.opts.MaxSessions),
				dead: make(chan struct{}), freed: make(chan struct{})}
			p.conns[k] = c
		}
		c.busy++
		p.mu.Unlock()
		if dialer {
			p.dial(ctx, t, c)
		}
		select {
		case <-c.dialed:
		case <-ctx.Done():
			p.release(c)
			return nil, nil, ctx.Err()
		}
		if c.err == nil && !isClosed(c.dead) {
			return c, func() { p.release(c) }, nil
		}
		p.release(c)
		p.forget(c)
		// Another caller's dial that its own context cut short says nothing about ours.
		if c.err != nil && (dialer || !c.canceled || ctx.Err() != nil) {
			return nil, nil, c.err
		}
	}
}

func (p *Pool) release(c *conn) {
	p.mu.Lock()
	c.busy--
	c.lastUsed = time.Now()
	p.mu.Unlock()
}

// forget drops c from the pool if it is still there.
func (p *Pool) forget(c *conn) {
	p.mu.Lock()
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
	p.mu.Unlock()
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// dial connects c, pinning the host key, and starts its watcher.
func (p *Pool) dial(caller context.Context, t Target, c *conn) {
	defer close(c.dialed)
	ctx, cancel := context.WithTimeout(caller, p.opts.DialTimeout)
	defer cancel()
	defer func() { c.canceled = c.err != nil && caller.Err() != nil }()
	d := net.Dialer{KeepAlive: -1} // SSH keepalives do it, and see a dead server too
	nc, err := d.DialContext(ctx, "tcp", t.addr())
	if err != nil {
		c.err = fmt.Errorf("cannot reach %s: %w", t, err)
		return
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	cfg := &ssh.ClientConfig{
		User: t.User,
		Auth: authMethods(t),
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			return p.checkHostKey(ctx, t.InstanceID, key)
		},
		Timeout: p.opts.DialTimeout,
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, t.addr(), cfg)
	stopped := stop()
	if err == nil && !stopped {
		_ = sc.Close()
		err = ctx.Err()
	}
	if err != nil {
		_ = nc.Close()
		c.err = p.dialError(ctx, t, err)
		return
	}
	_ = nc.SetDeadline(time.Time{})
	c.client = ssh.NewClient(sc, chans, reqs)
	p.log.Debug().Str("instance", t.InstanceID).Str("addr", t.addr()).Str("user", t.User).Msg("ssh connected")
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		_ = c.client.Wait()
		close(c.dead)
	}()
	go p.watch(c)
}

func authMethods(t Target) []ssh.AuthMethod {
	var auth []ssh.AuthMethod
	if t.Signer != nil {
		auth = append(auth, ssh.PublicKeys(t.Signer))
	}
	if t.Password != "" {
		pw := t.Password
		auth = append(auth, ssh.Password(pw), ssh.KeyboardInteractive(
			func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	return auth
}

func (p *Pool) checkHostKey(ctx context.Context, instanceID string, key ssh.PublicKey) error {
	presented := key.Marshal()
	pinned, first, err := p.keys.Pin(ctx, instanceID, presented)
	if err != nil {
		return fmt.Errorf("cannot check the host key of instance %s against the pinned one: %w", instanceID, err)
	}
	if bytes.Equal(pinned, presented) {
		if first {
			p.log.Info().Str("instance", instanceID).Str("fingerprint", ssh.FingerprintSHA256(key)).Msg("ssh host key pinned on first use")
		}
		return nil
	}
	e := &HostKeyChangedError{InstanceID: instanceID, Pinned: Fingerprint(pinned), Presented: ssh.FingerprintSHA256(key)}
	p.log.Warn().Str("instance", instanceID).Str("pinned", e.Pinned).Str("presented", e.Presented).Msg("ssh host key changed: connection refused")
	return e
}

// ErrAuth is wrapped by the error of a login the machine refused.
var ErrAuth = errors.New("the machine refused the login")

func (p *Pool) dialError(ctx context.Context, t Target, err error) error {
	var changed *HostKeyChangedError
	if errors.As(err, &changed) {
		return changed
	}
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("cannot reach %s: no SSH login within %s (is the instance running, and its SSH port open from here?): %w", t, p.opts.DialTimeout, ctx.Err())
		}
		return ctx.Err()
	}
	if strings.Contains(err.Error(), "unable to authenticate") {
		how := "the password from the vendor"
		switch {
		case t.Signer != nil && t.Password != "":
			how = "the key from GPU_MCP_SSH_KEY nor the vendor's password"
		case t.Signer != nil:
			how = "the key from GPU_MCP_SSH_KEY"
		}
		return fmt.Errorf("SSH login to %s failed: %w with %s; check the instance's login (get_instance) or the key's public half in the machine's ~/.ssh/authorized_keys", t, ErrAuth, how)
	}
	return fmt.Errorf("SSH connection to %s failed: %w", t, err)
}

// watch sends keepalives on c and closes it when one goes unanswered or when it has been
// idle for IdleTimeout; it ends when c does.
func (p *Pool) watch(c *conn) {
	defer p.wg.Done()
	tick := time.NewTicker(p.opts.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-c.dead:
			p.forget(c)
			p.log.Debug().Str("instance", c.key.instance).Msg("ssh connection ended")
			return
		case <-tick.C:
		}
		p.mu.Lock()
		idle := c.busy == 0 && time.Since(c.lastUsed) >= p.opts.IdleTimeout
		if idle && p.conns[c.key] == c {
			delete(p.conns, c.key)
		}
		p.mu.Unlock()
		if idle {
			_ = c.client.Close()
			continue
		}
		timer := time.AfterFunc(p.opts.KeepAlive, func() { _ = c.client.Close() })
		_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
		timer.Stop()
		if err != nil {
			_ = c.client.Close()
		}
	}
}

// session opens a session for t, holding one of the connection's session slots until
// release. A pooled connection that turns out dead is replaced once. When the server refuses
// a session as one too many (it allows fewer than MaxSessions, or still counts one just
// closed), the call waits for another of the connection's sessions to end and asks again;
// with none open, it asks again after pauses, for a few seconds.
func (p *Pool) session(ctx context.Context, t Target) (*ssh.Session, *conn, func(), error) {
	redialed := false
	pause := 5 * time.Millisecond
	for {
		c, release, err := p.acquire(ctx, t)
		if err != nil {
			return nil, nil, nil, err
		}
		select {
		case c.sessions <- struct{}{}:
		case <-ctx.Done():
			release()
			return nil, nil, nil, ctx.Err()
		}
		s, err := c.client.NewSession()
		if err == nil {
			return s, c, func() { p.endSession(c); release() }, nil
		}
		p.mu.Lock()
		<-c.sessions
		freed, others := c.freed, len(c.sessions) > 0
		p.mu.Unlock()
		release()
		var refused *ssh.OpenChannelError
		switch {
		case errors.As(err, &refused) && refused.Reason == ssh.Prohibited && (others || pause < 2*time.Second):
			wait := freed
			if !others {
				wait = make(chan struct{})
				time.AfterFunc(pause, func() { close(wait) })
				pause *= 2
			}
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, nil, nil, ctx.Err()
			}
		case errors.As(err, &refused) || redialed:
			return nil, nil, nil, fmt.Errorf("cannot open an SSH session on %s: %w", t, err)
		default:
			_ = c.client.Close()
			p.forget(c)
			redialed = true
		}
	}
}

// endSession gives back a session's slot and wakes the calls waiting for one to end.
func (p *Pool) endSession(c *conn) {
	p.mu.Lock()
	<-c.sessions
	close(c.freed)
	c.freed = make(chan struct{})
	p.mu.Unlock()
}

// sftpClient returns the connection's SFTP client, starting it on first use, held until
// release. A pooled connection that turns out dead is replaced once.
func (p *Pool) sftpClient(ctx context.Context, t Target) (*sftp.Client, func(), error) {
	for attempt := 0; ; attempt++ {
		c, release, err := p.acquire(ctx, t)
		if err != nil {
			return nil, nil, err
		}
		c.sftpMu.Lock()
		sc := c.sftp
		if sc == nil {
			sc, err = sftp.NewClient(c.client, sftp.UseConcurrentWrites(true), sftp.MaxConcurrentRequestsPerFile(64))
			if err == nil {
				c.sftp = sc
				p.wg.Add(1)
				go func() {
					defer p.wg.Done()
					_ = sc.Wait()
					c.sftpMu.Lock()
					if c.sftp == sc {
						c.sftp = nil
					}
					c.sftpMu.Unlock()
				}()
			}
		}
		c.sftpMu.Unlock()
		if err == nil {
			return sc, release, nil
		}
		release()
		if attempt > 0 || strings.Contains(err.Error(), "subsystem request failed") {
			return nil, nil, fmt.Errorf("cannot start SFTP on %s (is the sftp subsystem enabled in its sshd?): %w", t, err)
		}
		_ = c.client.Close()
		p.forget(c)
	}
}
