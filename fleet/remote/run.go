package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"
)

// Run defaults, for RunOptions left zero.
const (
	DefaultRunTimeout   = 60 * time.Second
	DefaultMaxOutput    = 64 << 10 // bytes of stdout, and of stderr, kept
	DefaultLineInterval = 250 * time.Millisecond
	// MaxLineBytes is the longest line handed to OnLine; longer ones are cut.
	MaxLineBytes = 1024
)

// killGrace is how long a timed-out command has between TERM and KILL; killWait bounds how
// long Run waits for the killing to show, so that a dead connection cannot hold it.
const (
	killGrace = 2 * time.Second
	killWait  = 10 * time.Second
)

// RunOptions tune Run.
type RunOptions struct {
	Timeout   time.Duration // then the command is killed on the machine; DefaultRunTimeout when 0
	MaxStdout int           // bytes of stdout kept, the last ones; DefaultMaxOutput when 0
	MaxStderr int           // the same for stderr
	// OnLine, if set, receives output lines as they come, sanitized and cut to MaxLineBytes,
	// at most one per LineInterval: a line that arrives sooner waits, and is replaced by a
	// later one. Calls are never concurrent, and none comes after Run returns. stream is
	// "stdout" or "stderr". It must not block for long: output waits for it.
	OnLine       func(stream, line string)
	LineInterval time.Duration // DefaultLineInterval when 0
}

// RunResult is what became of a command. Stdout and Stderr are the machine's output, as
// data: the last MaxStdout and MaxStderr bytes, sanitized.
type RunResult struct {
	ExitCode        int    // -1 when the command did not exit by itself (a signal, a timeout, a lost connection)
	Signal          string // the signal that ended it ("TERM", "KILL"), as the server reports it
	Stdout          string
	Stderr          string
	StdoutTruncated int64 // bytes cut from the head of stdout
	StderrTruncated int64
	TimedOut        bool // the command ran past Timeout and was killed on the machine
	Duration        time.Duration
}

// Run runs command on the machine, with the user's login shell as sshd runs it, in the login
// directory. After Timeout it is killed on the machine: its process group is sent TERM, then
// KILL after a grace of two seconds, by a second short command on the same connection (many
// sshds ignore the signal requests that are sent too), and the result has TimedOut. A command
// that ends with a non-zero status is no error; an error means the command's outcome is not
// known (the connection failed, or ctx ended, in which case the command is killed as on a
// timeout). A command that detaches (setsid) is not followed: use StartJob.
//
// To know the process group, the command is wrapped: the machine's shell reads its own
// process group from /proc and, when it does not lead one (sshd normally makes it), moves
// into a new session with setsid; it prints the group's id on a first line of stdout, which
// Run removes, then execs "$SHELL -c command".
func (p *Pool) Run(ctx context.Context, t Target, command string, o RunOptions) (RunResult, error) {
	if err := checkArg("the command", command); err != nil {
		return RunResult{}, err
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRunTimeout
	}
	if o.MaxStdout <= 0 {
		o.MaxStdout = DefaultMaxOutput
	}
	if o.MaxStderr <= 0 {
		o.MaxStderr = DefaultMaxOutput
	}
	if o.LineInterval <= 0 {
		o.LineInterval = DefaultLineInterval
	}
	start := time.Now()
	s, c, release, err := p.session(ctx, t)
	if err != nil {
		return RunResult{}, err
	}
	defer release()
	defer s.Close()

	stdout, stderr := &tailBuffer{max: o.MaxStdout}, &tailBuffer{max: o.MaxStderr}
	lines := newLineEmitter(o.OnLine, o.LineInterval)
	group := newGroupReader(io.MultiWriter(stdout, lines.writer("stdout")))
	s.Stdout = group
	s.Stderr = io.MultiWriter(stderr, lines.writer("stderr"))
	if err := s.Start(wrapCommand(command)); err != nil {
		return RunResult{}, fmt.Errorf("cannot start the command on %s: %w", t, err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	var waitErr, runErr error
	timedOut := false
	select {
	case waitErr = <-done:
	case <-timer.C:
		timedOut = true
	case <-ctx.Done():
		runErr = ctx.Err()
	}
	if timedOut || runErr != nil {
		if err := p.kill(c, s, group); err != nil && runErr == nil {
			runErr = err
		}
		select {
		case waitErr = <-done:
		case <-time.After(killWait):
			_ = s.Close()
			waitErr = <-done
		}
	}
	lines.close()
	group.flush()

	r := RunResult{ExitCode: -1, TimedOut: timedOut, Duration: time.Since(start)}
	r.Stdout, r.StdoutTruncated = stdout.result()
	r.Stderr, r.StderrTruncated = stderr.result()
	var exit *ssh.ExitError
	switch {
	case waitErr == nil:
		r.ExitCode = 0
	case errors.As(waitErr, &exit):
		if exit.Signal() != "" {
			r.Signal = exit.Signal()
		} else {
			r.ExitCode = exit.ExitStatus()
		}
	case runErr == nil && !timedOut:
		runErr = fmt.Errorf("lost the connection to %s while the command ran; it may still be running there: %w", t, waitErr)
	}
	return r, runErr
}

// wrapCommand is the command line that runs command in a process group whose id it prints.
func wrapCommand(command string) string {
	const report = `printf '\036gpu-mcp-pgid %s\n' "$$"; exec "${SHELL:-/bin/sh}" -c "$1"`
	return `g=; read -r _p _c _s _pp g _r 2>/dev/null </proc/$$/stat; c=` + quote(command) + `; ` +
		`if [ -n "$g" ] && [ "$g" != "$$" ] && command -v setsid >/dev/null 2>&1; then exec setsid /bin/sh -c ` + quote(report) + ` gpu-mcp "$c"; fi; ` +
		`printf '\036gpu-mcp-pgid %s\n' "$$"; exec "${SHELL:-/bin/sh}" -c "$c"`
}

// kill ends a command's process group on the machine: a TERM signal request, then a short
// command that sends TERM to the group, waits up to killGrace for it to end, and sends KILL.
func (p *Pool) kill(c *conn, s *ssh.Session, g *groupReader) error {
	_ = s.Signal(ssh.SIGTERM)
	pgid, ok := g.wait(killWait)
	if !ok {
		return errors.New("the command did not report its process group; closing its session is all that could be done to stop it")
	}
	// Outside the pool's session slots, which may all be taken; a server at its own limit is
	// asked again for a while.
	var ks *ssh.Session
	var err error
	for try := 0; ; try++ {
		ks, err = c.client.NewSession()
		var refused *ssh.OpenChannelError
		if err == nil || try == 20 || !errors.As(err, &refused) || refused.Reason != ssh.Prohibited {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("cannot open a session to kill the command (process group %d) on the machine: %w", pgid, err)
	}
	defer ks.Close()
	n := strconv.Itoa(pgid)
	tries := strconv.Itoa(int(killGrace / (100 * time.Millisecond)))
	// The group's leader is waited for, not the group: under a pid 1 that reaps no orphans,
	// dead members linger as zombies, which kill -0 still finds. KILL then sweeps the rest.
	script := aliveFunc + `n=` + n + `; kill -TERM -$n 2>/dev/null || kill -TERM $n 2>/dev/null || exit 0; i=0; ` +
		`while [ $i -lt ` + tries + ` ] && alive $n; do sleep 0.1 2>/dev/null || sleep 1; i=$((i+1)); done; ` +
		`kill -KILL -$n 2>/dev/null; kill -KILL $n 2>/dev/null; exit 0`
	errc := make(chan error, 1)
	go func() { errc <- ks.Run(script) }()
	select {
	case err = <-errc:
	case <-time.After(killWait):
		_ = ks.Close()
		err = <-errc
	}
	if err != nil {
		return fmt.Errorf("killing the command (process group %d) on the machine failed: %w", pgid, err)
	}
	return nil
}

// aliveFunc defines the shell function alive PID: the process exists and is no zombie.
const aliveFunc = `alive() { kill -0 "$1" 2>/dev/null && { z=; read -r _a _b z _r 2>/dev/null </proc/"$1"/stat; [ "$z" != Z ]; }; }; `

// groupReader takes the process group line that wrapCommand prints off stdout and passes the
// rest on. Lines the login shell prints before it (a chatty .bashrc) pass too.
type groupReader struct {
	next io.Writer
	mu   sync.Mutex
	buf  []byte
	done bool
	pgid int
	seen chan struct{} // closed when the line was found or given up on
}

const (
	groupMark     = "\x1egpu-mcp-pgid "
	groupSearchIn = 4096
)

func newGroupReader(next io.Writer) *groupReader {
	return &groupReader{next: next, seen: make(chan struct{})}
}

func (g *groupReader) Write(b []byte) (int, error) {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return g.next.Write(b)
	}
	g.buf = append(g.buf, b...)
	i := bytes.Index(g.buf, []byte(groupMark))
	var out []byte
	switch {
	case i >= 0:
		end := bytes.IndexByte(g.buf[i:], '\n')
		if end < 0 {
			g.mu.Unlock()
			return len(b), nil
		}
		g.pgid, _ = strconv.Atoi(string(g.buf[i+len(groupMark) : i+end]))
		out = append(append(out, g.buf[:i]...), g.buf[i+end+1:]...)
		g.finish()
	case len(g.buf) > groupSearchIn:
		out = g.buf
		g.finish()
	default:
		g.mu.Unlock()
		return len(b), nil
	}
	g.mu.Unlock()
	if _, err := g.next.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// finish stops looking for the line. g.mu must be held.
func (g *groupReader) finish() {
	g.done = true
	g.buf = nil
	close(g.seen)
}

// flush passes on what was held back while looking for the line, once output has ended.
func (g *groupReader) flush() {
	g.mu.Lock()
	if g.done {
		g.mu.Unlock()
		return
	}
	out := g.buf
	g.finish()
	g.mu.Unlock()
	_, _ = g.next.Write(out)
}

// wait returns the process group, once known, waiting at most d.
func (g *groupReader) wait(d time.Duration) (int, bool) {
	select {
	case <-g.seen:
	case <-time.After(d):
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pgid, g.pgid > 0
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max   int
	buf   []byte
	total int64
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.total += int64(len(b))
	if len(b) >= t.max {
		t.buf = append(t.buf[:0], b[len(b)-t.max:]...)
		return len(b), nil
	}
	t.buf = append(t.buf, b...)
	if len(t.buf) > 2*t.max {
		n := copy(t.buf, t.buf[len(t.buf)-t.max:])
		t.buf = t.buf[:n]
	}
	return len(b), nil
}

// result is the kept text, sanitized, and how many bytes were cut from the head (a rune cut
// in two at the head is dropped whole).
func (t *tailBuffer) result() (string, int64) {
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	if int64(len(b)) < t.total {
		for i := 0; i < utf8.UTFMax-1 && len(b) > 0 && !utf8.RuneStart(b[0]); i++ {
			b = b[1:]
		}
	}
	return Sanitize(b), t.total - int64(len(b))
}

// lineEmitter splits output into lines and hands them to fn, at most one per interval.
type lineEmitter struct {
	fn       func(stream, line string)
	interval time.Duration

	mu       sync.Mutex
	partial  map[string][]byte
	skipping map[string]bool // the rest of an over-long line is being dropped
	pending  *[2]string
	last     time.Time
	timer    *time.Timer
	closed   bool
}

func newLineEmitter(fn func(stream, line string), interval time.Duration) *lineEmitter {
	return &lineEmitter{fn: fn, interval: interval, partial: map[string][]byte{}, skipping: map[string]bool{}}
}

type streamWriter struct {
	e      *lineEmitter
	stream string
}

func (w streamWriter) Write(b []byte) (int, error) {
	w.e.write(w.stream, b)
	return len(b), nil
}

func (e *lineEmitter) writer(stream string) io.Writer {
	if e.fn == nil {
		return io.Discard
	}
	return streamWriter{e, stream}
}

func (e *lineEmitter) write(stream string, b []byte) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return
	}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			if !e.skipping[stream] {
				e.partial[stream] = append(e.partial[stream], b...)
				if len(e.partial[stream]) > MaxLineBytes {
					e.offer(stream, e.partial[stream])
					e.partial[stream] = nil
					e.skipping[stream] = true
				}
			}
			return
		}
		if !e.skipping[stream] {
			line := append(e.partial[stream], b[:i]...)
			if len(line) > 0 {
				e.offer(stream, line)
			}
		}
		e.partial[stream] = nil
		e.skipping[stream] = false
		b = b[i+1:]
	}
}

// offer emits line now, or keeps it to be emitted when the interval has passed. e.mu is held.
func (e *lineEmitter) offer(stream string, line []byte) {
	if len(line) > MaxLineBytes {
		cut := MaxLineBytes
		for cut > 0 && !utf8.RuneStart(line[cut]) {
			cut--
		}
		line = append(line[:cut:cut], "…"...)
	}
	text := sanitizeLine(line)
	if text == "" {
		return
	}
	if wait := e.interval - time.Since(e.last); wait > 0 {
		e.pending = &[2]string{stream, text}
		if e.timer == nil {
			e.timer = time.AfterFunc(wait, e.flushPending)
		}
		return
	}
	e.last = time.Now()
	e.fn(stream, text)
}

func (e *lineEmitter) flushPending() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.timer = nil
	if e.closed || e.pending == nil {
		return
	}
	p := e.pending
	e.pending = nil
	e.last = time.Now()
	e.fn(p[0], p[1])
}

// close emits what is left (the last line, even without its newline, wins over a pending
// one) and stops all calls.
func (e *lineEmitter) close() {
	if e.fn == nil {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	for _, stream := range []string{"stdout", "stderr"} {
		if len(e.partial[stream]) > 0 && !e.skipping[stream] {
			e.pending = &[2]string{stream, sanitizeLine(e.partial[stream])}
		}
	}
	if e.pending != nil && e.pending[1] != "" {
		e.fn(e.pending[0], e.pending[1])
	}
	e.pending = nil
	e.closed = true
}
