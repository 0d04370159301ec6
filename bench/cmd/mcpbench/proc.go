package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// launch is one way of starting a server: the command, and for HTTP how to read the address it
// listens on from a line of its stderr.
type launch struct {
	path   string
	args   []string
	env    []string
	addrOf func(line string) string // nil over stdio
}

// proc is a started server. Each runs in its own process group, which stop and killAll end as
// a whole, and dies with the harness (Pdeathsig) should the harness itself be killed.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time
	stdin   *os.File // stdio only: our ends of its stdin and stdout
	stdout  *os.File
	addr    chan string // HTTP only: the address, once its log line came
	exited  chan struct{}
	tail    *tail
}

// live holds every server started and not yet stopped, so that a failure or a signal anywhere
// still ends them all.
var live = struct {
	sync.Mutex
	procs map[*proc]struct{}
}{procs: map[*proc]struct{}{}}

// spawn starts l. Over stdio, p.stdin and p.stdout are its protocol pipes; otherwise its stdout
// goes to /dev/null (the reference prints a line per request there) and the address comes on
// p.addr. Its stderr is kept in p.tail for error messages.
func spawn(name string, l launch) (_ *proc, err error) {
	cmd := exec.Command(l.path, l.args...)
	cmd.Env = append(os.Environ(), l.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), tail: &tail{}}
	var theirs []*os.File // the child's ends, closed here once it has them
	defer func() {
		for _, f := range theirs {
			f.Close()
		}
		if err != nil {
			for _, f := range []*os.File{p.stdin, p.stdout} {
				if f != nil {
					f.Close()
				}
			}
		}
	}()
	if l.addrOf == nil {
		inR, inW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		p.stdin, theirs = inW, append(theirs, inR)
		outR, outW, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		p.stdout, theirs = outR, append(theirs, outW)
		cmd.Stdin, cmd.Stdout = inR, outW
	} else {
		p.addr = make(chan string, 1)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	theirs = append(theirs, errW)
	cmd.Stderr = errW

	live.Lock()
	p.started = time.Now()
	err = cmd.Start()
	if err == nil {
		live.procs[p] = struct{}{}
	}
	live.Unlock()
	if err != nil {
		errR.Close()
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go p.readStderr(errR, l.addrOf)
	go func() { _ = cmd.Wait(); close(p.exited) }()
	return p, nil
}

func (p *proc) readStderr(r *os.File, addrOf func(string) string) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	found := false
	for sc.Scan() {
		line := sc.Text()
		p.tail.add(line)
		if addrOf != nil && !found {
			if a := addrOf(line); a != "" {
				found = true
				p.addr <- a
			}
		}
	}
	// A line too long for the scanner ends it; the server must still be able to write.
	_, _ = io.Copy(io.Discard, r)
}

// waitAddr waits for the HTTP server's address line.
func (p *proc) waitAddr(timeout time.Duration) (string, error) {
	select {
	case a := <-p.addr:
		return a, nil
	case <-p.exited:
		return "", fmt.Errorf("exited before it said where it listens%s", p.describe())
	case <-time.After(timeout):
		return "", fmt.Errorf("did not say where it listens within %s%s", timeout, p.tail.say())
	}
}

// stop ends the server: stdin closed and SIGTERM (both servers drain and exit on either), then
// SIGKILL to its process group if it is still there after grace.
func (p *proc) stop(grace time.Duration) {
	if p.stdin != nil {
		p.stdin.Close()
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
	}
	p.kill()
}

// describe is what an error message should add about the server: whether it exited, and its
// last lines on stderr.
func (p *proc) describe() string {
	select {
	case <-p.exited:
		return fmt.Sprintf("; the server exited (%s)%s", p.cmd.ProcessState, p.tail.say())
	case <-time.After(200 * time.Millisecond):
		return p.tail.say()
	}
}

// kill ends the server's process group at once and waits for the server to be reaped.
func (p *proc) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	if p.stdout != nil {
		p.stdout.Close()
	}
	live.Lock()
	delete(live.procs, p)
	live.Unlock()
}

// killAll ends every server still running.
func killAll() {
	live.Lock()
	ps := make([]*proc, 0, len(live.procs))
	for p := range live.procs {
		ps = append(ps, p)
	}
	live.Unlock()
	for _, p := range ps {
		p.kill()
	}
}

// memory is what /proc/PID/status says of a process's resident memory, in KiB.
type memory struct{ rss, hwm int64 }

func (p *proc) memory() (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, err
	}
	return parseStatus(b)
}

// parseStatus reads VmRSS and VmHWM (the peak of VmRSS) from the text of /proc/PID/status.
func parseStatus(b []byte) (memory, error) {
	var m memory
	var seen int
	for line := range bytes.Lines(b) {
		key, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *int64
		switch string(key) {
		case "VmRSS":
			dst = &m.rss
		case "VmHWM":
			dst = &m.hwm
		default:
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return memory{}, fmt.Errorf("/proc status line %q: want a number of kB", bytes.TrimSpace(line))
		}
		v, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("/proc status line %q: %w", bytes.TrimSpace(line), err)
		}
		*dst = v
		seen++
	}
	if seen != 2 {
		return memory{}, errors.New("/proc status has no VmRSS or no VmHWM line")
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat: 100 on every Linux
// architecture Go runs on.
const clockTicks = 100

// cpu is the user plus system CPU time the server has used so far.
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of /proc/PID/stat. The command name
// (field 2) is in parentheses and may hold spaces and parentheses, so fields are counted from
// the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("/proc stat: no ')' after the command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so field n is f[n-3].
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat: %d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: CPU time %q: %w", s, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// selfCPU is the CPU time the harness has used so far, every thread included.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// tail keeps the last lines a server wrote to stderr.
type tail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 8

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
}

// say is the tail as the end of an error message: "" when the server said nothing.
func (t *tail) say() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == 0 {
		return ""
	}
	return "; its last words on stderr:\n    " + strings.Join(t.lines, "\n    ")
}
