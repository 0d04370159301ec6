package machinetest

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// process is one command of a session: /bin/sh in a process group of its own, with pipes the
// machine holds so that it can end the session even while a stray process keeps them open.
type process struct {
	cmd        *exec.Cmd
	stdinW     *os.File
	outR, errR *os.File
	done       chan struct{} // closed when the exit status is sent (or could not be)
	killOnce   sync.Once
}

// kill ends the process group and stops waiting for its output.
func (p *process) kill() {
	p.killOnce.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.closePipes()
	})
}

// closePipes stops reading the command's output, as an sshd does whose client went away:
// the command gets SIGPIPE (or EPIPE) if it writes again.
func (p *process) closePipes() {
	_ = p.outR.Close()
	_ = p.errR.Close()
	_ = p.stdinW.Close()
}

// serveSession answers the requests of one session channel until the client closes it or
// the connection ends; then the command's process group is killed.
func (m *Machine) serveSession(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var p *process
	var sub chan struct{}
	for req := range reqs {
		switch req.Type {
		case "exec", "shell":
			var args []string
			if req.Type == "exec" {
				var payload struct{ Command string }
				if ssh.Unmarshal(req.Payload, &payload) != nil {
					_ = req.Reply(false, nil)
					continue
				}
				args = []string{"/bin/sh", "-c", payload.Command}
			} else {
				args = []string{"/bin/sh"}
			}
			if p != nil || sub != nil {
				_ = req.Reply(false, nil)
				continue
			}
			var err error
			if p, err = m.start(args); err != nil {
				_ = req.Reply(false, nil)
				return
			}
			// The reply goes out before the output and the exit status, as from OpenSSH: a
			// command that ends at once would otherwise close the channel first, and the
			// client would see its session dropped without knowing whether anything ran.
			_ = req.Reply(true, nil)
			m.attach(ch, p)
		case "subsystem":
			var payload struct{ Name string }
			if ssh.Unmarshal(req.Payload, &payload) != nil || payload.Name != "sftp" || p != nil || sub != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			sub = make(chan struct{})
			m.wg.Add(1)
			go func(done chan struct{}) {
				defer m.wg.Done()
				defer close(done)
				srv := sftp.NewRequestServer(ch, m.files.handlers(), sftp.WithStartDirectory(m.home))
				_ = srv.Serve()
				_ = srv.Close()
			}(sub)
		case "signal":
			var payload struct{ Signal string }
			if p != nil && !m.opts.IgnoreSignals && ssh.Unmarshal(req.Payload, &payload) == nil {
				if sig, ok := signals[ssh.Signal(payload.Signal)]; ok {
					_ = syscall.Kill(-p.cmd.Process.Pid, sig)
				}
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		default: // pty-req, env, x11-req, ...: refused
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
	switch {
	case p != nil && m.opts.LeaveOrphans:
		p.closePipes()
	case p != nil:
		p.kill()
		<-p.done
	}
	if sub != nil {
		_ = ch.Close()
		<-sub
	}
}

// start runs args on pipes the machine holds; attach connects them to the session.
func (m *Machine) start(args []string) (*process, error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, errors.New("machine closed")
	}
	if len(args) == 3 {
		m.cmdLog = append(m.cmdLog, args[2])
		m.commands.Add(1)
	}
	m.mu.Unlock()

	var files []*os.File
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err == nil {
			files = append(files, r, w)
		}
		return r, w, err
	}
	fail := func(err error) (*process, error) {
		for _, f := range files {
			_ = f.Close()
		}
		return nil, err
	}
	inR, inW, err := pipe()
	if err != nil {
		return fail(err)
	}
	outR, outW, err := pipe()
	if err != nil {
		return fail(err)
	}
	errR, errW, err := pipe()
	if err != nil {
		return fail(err)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = m.home
	cmd.Env = m.environ()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{cmd: cmd, stdinW: inW, outR: outR, errR: errR, done: make(chan struct{})}

	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fail(errors.New("machine closed"))
	}
	if err := cmd.Start(); err != nil {
		m.mu.Unlock()
		return fail(err)
	}
	m.procs[p] = struct{}{}
	m.mu.Unlock()
	_ = inR.Close()
	_ = outW.Close()
	_ = errW.Close()
	return p, nil
}

// attach makes the session's channel p's stdin, stdout and stderr, and sends the exit status
// and closes the channel when the command is over.
func (m *Machine) attach(ch ssh.Channel, p *process) {
	inW, outR, errR, cmd := p.stdinW, p.outR, p.errR, p.cmd
	var output sync.WaitGroup
	output.Add(2)
	m.wg.Add(3)
	go func() {
		defer m.wg.Done()
		_, _ = io.Copy(inW, ch)
		_ = inW.Close()
	}()
	go func() {
		defer m.wg.Done()
		defer output.Done()
		_, _ = io.Copy(ch, outR)
	}()
	go func() {
		defer m.wg.Done()
		defer output.Done()
		_, _ = io.Copy(ch.Stderr(), errR)
	}()
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(p.done)
		_ = cmd.Wait()
		_ = inW.Close()
		output.Wait()
		m.mu.Lock()
		delete(m.procs, p)
		m.mu.Unlock()
		sendExit(ch, cmd.ProcessState)
		_ = ch.Close()
	}()
}

func (m *Machine) environ() []string {
	return []string{
		"HOME=" + m.home,
		"PWD=" + m.home,
		"USER=" + m.opts.User,
		"LOGNAME=" + m.opts.User,
		"SHELL=/bin/sh",
		"PATH=" + m.binDir() + string(os.PathListSeparator) + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		m.marker,
	}
}

// sendExit sends "exit-status", or "exit-signal" when a signal ended the command.
func sendExit(ch ssh.Channel, st *os.ProcessState) {
	ws, ok := st.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		name := "KILL"
		for n, s := range signals {
			if s == ws.Signal() {
				name = string(n)
			}
		}
		_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{name, ws.CoreDump(), "", ""}))
		return
	}
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(st.ExitCode())}))
}

// signals are the signal names of RFC 4254, section 6.10.
var signals = map[ssh.Signal]syscall.Signal{
	ssh.SIGABRT: syscall.SIGABRT, ssh.SIGALRM: syscall.SIGALRM, ssh.SIGFPE: syscall.SIGFPE,
	ssh.SIGHUP: syscall.SIGHUP, ssh.SIGILL: syscall.SIGILL, ssh.SIGINT: syscall.SIGINT,
	ssh.SIGKILL: syscall.SIGKILL, ssh.SIGPIPE: syscall.SIGPIPE, ssh.SIGQUIT: syscall.SIGQUIT,
	ssh.SIGSEGV: syscall.SIGSEGV, ssh.SIGTERM: syscall.SIGTERM, ssh.SIGUSR1: syscall.SIGUSR1,
	ssh.SIGUSR2: syscall.SIGUSR2,
}

// killAll kills every process the machine started: the sessions' process groups, then
// whatever still carries the machine's marker (detached processes, in sessions of their
// own), until none is left.
func (m *Machine) killAll() {
	m.mu.Lock()
	procs := make([]*process, 0, len(m.procs))
	for p := range m.procs {
		procs = append(procs, p)
	}
	m.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for range 200 {
		pids := m.markedPIDs()
		if len(pids) == 0 {
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// markedPIDs lists the live processes whose environment holds the machine's marker.
// Zombies have no environment left and are not listed.
func (m *Machine) markedPIDs() []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(m.marker)
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, want) {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}
