package machinetest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const password = "s3cret-pw"

func newMachine(t *testing.T, o Options) *Machine {
	t.Helper()
	if o.Password == "" && len(o.AuthorizedKeys) == 0 {
		o.Password = password
	}
	m, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	m.SetReady(true)
	return m
}

func dial(t *testing.T, m *Machine, auth ...ssh.AuthMethod) *ssh.Client {
	t.Helper()
	c, err := dialErr(m, auth...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func dialErr(m *Machine, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	if len(auth) == 0 {
		auth = []ssh.AuthMethod{ssh.Password(m.Password())}
	}
	return ssh.Dial("tcp", m.Addr(), &ssh.ClientConfig{
		User:            m.User(),
		Auth:            auth,
		HostKeyCallback: ssh.FixedHostKey(m.HostKey()),
		Timeout:         5 * time.Second,
	})
}

type output struct {
	stdout, stderr string
	err            error
}

func run(t *testing.T, c *ssh.Client, cmd string) output {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var o, e bytes.Buffer
	s.Stdout, s.Stderr = &o, &e
	err = s.Run(cmd)
	return output{o.String(), e.String(), err}
}

func exitStatus(err error) (int, string) {
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		return ee.ExitStatus(), ee.Signal()
	}
	return -1, ""
}

// alive reports whether pid is a live process (a zombie is dead: it waits only to be reaped).
func alive(pid int) bool {
	st := procStat(pid, 3)
	return st != "" && st != "Z"
}

// procStat returns field n (1-based, as in proc(5)) of /proc/pid/stat, "" when there is none.
func procStat(pid, n int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || n < 3 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if n-3 >= len(f) {
		return ""
	}
	return f[n-3]
}

// waitDead waits for pid to end; a failure only after a minute, so slowness is no failure.
func waitDead(t *testing.T, pid int, what string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); alive(pid); {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readBanner(addr string) string {
	line, err := ReadBanner(addr, 2*time.Second)
	if err != nil {
		return "error: " + err.Error()
	}
	return line
}

func TestBannerOnlyWhileReady(t *testing.T) {
	m := newMachine(t, Options{Vendor: "acme"})
	if m.Addr() != "127.0.0.1:"+strconv.Itoa(m.Port()) || m.Host() != "127.0.0.1" {
		t.Fatalf("addr %s port %d", m.Addr(), m.Port())
	}
	if got := readBanner(m.Addr()); got != "SSH-2.0-acme-emulator\r\n" || got != Banner("acme") {
		t.Fatalf("ready: banner %q", got)
	}
	m.SetReady(false)
	if got := readBanner(m.Addr()); got != "" {
		t.Fatalf("not ready: banner %q, want none", got)
	}
	var ready atomic.Bool
	var asked atomic.Int32
	m.SetReadyFunc(func() bool { asked.Add(1); return ready.Load() })
	m.SetReady(true) // the func wins over the flag
	if got := readBanner(m.Addr()); got != "" {
		t.Fatalf("func says not ready: banner %q", got)
	}
	ready.Store(true)
	run(t, dial(t, m), "true") // the login is counted by the time a command runs
	if asked.Load() != 2 {
		t.Fatalf("ready func asked %d times, want 2", asked.Load())
	}
	if st := m.Stats(); st.Accepted != 2 || st.Authenticated != 1 {
		t.Fatalf("stats %+v: want 2 accepted (one banner probe, one login), 1 authenticated", st)
	}
}

func TestLogin(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, _ := ssh.NewSignerFromKey(priv)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewSignerFromKey(otherPriv)
	m := newMachine(t, Options{User: "ubuntu", Password: password, AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	dial(t, m)
	dial(t, m, ssh.PublicKeys(signer))
	if _, err := dialErr(m, ssh.Password("wrong")); err == nil {
		t.Fatal("wrong password logged in")
	}
	if _, err := dialErr(m, ssh.PublicKeys(other)); err == nil {
		t.Fatal("unknown key logged in")
	}
	_, err := ssh.Dial("tcp", m.Addr(), &ssh.ClientConfig{User: "root", Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.FixedHostKey(m.HostKey()), Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("wrong user logged in")
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("a machine nobody can log in to was made")
	}
}

func TestHostKeyRotates(t *testing.T) {
	m := newMachine(t, Options{})
	before := m.HostKey()
	dial(t, m)
	after, err := m.RotateHostKey()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before.Marshal(), after.Marshal()) || !bytes.Equal(after.Marshal(), m.HostKey().Marshal()) {
		t.Fatal("rotation kept the key")
	}
	_, err = ssh.Dial("tcp", m.Addr(), &ssh.ClientConfig{User: m.User(), Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.FixedHostKey(before), Timeout: 5 * time.Second})
	if err == nil {
		t.Fatal("the old key still passed after rotation")
	}
	dial(t, m) // with the new key
}

func TestExec(t *testing.T) {
	m := newMachine(t, Options{User: "ubuntu"})
	c := dial(t, m)
	o := run(t, c, `echo "$HOME"; pwd; echo "$USER"; echo oops >&2; exit 3`)
	if code, _ := exitStatus(o.err); code != 3 {
		t.Fatalf("exit: %v, want status 3", o.err)
	}
	want := m.Dir() + "\n" + m.Dir() + "\nubuntu\n"
	if o.stdout != want || o.stderr != "oops\n" {
		t.Fatalf("stdout %q stderr %q, want %q and oops", o.stdout, o.stderr, want)
	}
	if o := run(t, c, "cat"); o.err != nil || o.stdout != "" {
		t.Fatalf("cat with stdin at EOF: %+v", o)
	}
	s, _ := c.NewSession()
	s.Stdin = strings.NewReader("echo from-stdin\n")
	out, err := s.Output("cat")
	if err != nil || string(out) != "echo from-stdin\n" {
		t.Fatalf("stdin: %q %v", out, err)
	}
	s, _ = c.NewSession()
	s.Stdin = strings.NewReader("echo via-shell; exit 4\n")
	var buf bytes.Buffer
	s.Stdout = &buf
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	if code, _ := exitStatus(err); code != 4 || buf.String() != "via-shell\n" {
		t.Fatalf("shell: %q %v", buf.String(), err)
	}
	if got := m.Commands(); len(got) != 3 || got[0] != `echo "$HOME"; pwd; echo "$USER"; echo oops >&2; exit 3` {
		t.Fatalf("commands %q", got)
	}
	if st := m.Stats(); st.Commands != 3 || st.Authenticated != 1 {
		t.Fatalf("stats %+v", st)
	}
	s, _ = c.NewSession()
	defer s.Close()
	if err := s.RequestPty("xterm", 24, 80, nil); err == nil {
		t.Fatal("a pty was granted")
	}
	if err := s.Setenv("FOO", "bar"); err == nil {
		t.Fatal("an env request was granted")
	}
}

// A command that exits at once must not beat the reply to its exec request: a client that
// sees the channel close first gets EOF from Start, as if the machine had dropped the
// session, and cannot tell whether the command ran. OpenSSH replies before it reaps the
// child. Several sessions at once make the machine's goroutines compete, as on a busy host.
func TestExecRepliesBeforeAFastCommandEnds(t *testing.T) {
	m := newMachine(t, Options{})
	c := dial(t, m)
	const workers, each = 4, 100
	errs := make(chan error, workers)
	for range workers {
		go func() {
			errs <- func() error {
				for i := range each {
					s, err := c.NewSession()
					if err != nil {
						return err
					}
					err = s.Start("exit 3")
					if err != nil {
						_ = s.Close()
						return fmt.Errorf("session %d: start: %w", i, err)
					}
					err = s.Wait()
					_ = s.Close()
					if code, _ := exitStatus(err); code != 3 {
						return fmt.Errorf("session %d: %v, want exit status 3", i, err)
					}
				}
				return nil
			}()
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestSignalGoesToTheProcessGroup(t *testing.T) {
	m := newMachine(t, Options{})
	c := dial(t, m)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, _ := s.StdoutPipe()
	if err := s.Start(`sleep 300 & echo $!; wait`); err != nil {
		t.Fatal(err)
	}
	line := make([]byte, 32)
	n, _ := out.Read(line)
	child, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("child pid %q", line[:n])
	}
	if err := s.Signal(ssh.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err = s.Wait()
	if _, sig := exitStatus(err); sig != "TERM" {
		t.Fatalf("wait: %v, want exit-signal TERM", err)
	}
	waitDead(t, child, "the background sleep")
}

// A session that ends takes its process group along; a process that left the group with
// setsid stays until the machine is closed.
func TestSessionEndKillsItsGroupButNotDetachedProcesses(t *testing.T) {
	m := newMachine(t, Options{})
	c := dial(t, m)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	err = s.Start(`sleep 300 & echo $!; setsid sleep 301 </dev/null >/dev/null 2>&1 & echo $!; wait`)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	buf := make([]byte, 64)
	var got string
	for len(pids) < 2 {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("reading pids: %v (%q)", err, got)
		}
		got += string(buf[:n])
		pids = pids[:0]
		for _, f := range strings.Fields(got) {
			if p, err := strconv.Atoi(f); err == nil && strings.Count(got, "\n") >= 2 {
				pids = append(pids, p)
			}
		}
	}
	for deadline := time.Now().Add(time.Minute); procStat(pids[1], 5) != strconv.Itoa(pids[1]); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the detached sleep never got a session of its own")
		}
	}
	_ = s.Close()
	waitDead(t, pids[0], "the session's background sleep")
	if !alive(pids[1]) {
		t.Fatal("the detached sleep died with the session")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !alive(pids[1]) {
		t.Fatal("the detached sleep died with the connection")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	waitDead(t, pids[1], "the detached sleep after Close")
	if _, err := os.Stat(m.Dir()); !os.IsNotExist(err) {
		t.Fatalf("sandbox left behind: %v", err)
	}
}

func TestHaltDropsConnectionsAndProcessesKeepsDisk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "disk")
	m := newMachine(t, Options{Dir: dir})
	c := dial(t, m)
	o := run(t, c, `echo data > kept; setsid sleep 302 </dev/null >/dev/null 2>&1 & echo $!`)
	pid, err := strconv.Atoi(strings.TrimSpace(o.stdout))
	if err != nil {
		t.Fatalf("%+v", o)
	}
	m.Halt()
	waitDead(t, pid, "the detached sleep after Halt")
	if _, err := c.NewSession(); err == nil {
		t.Fatal("connection open after Halt")
	}
	c2 := dial(t, m)
	if o := run(t, c2, "cat kept"); o.stdout != "data\n" {
		t.Fatalf("after Halt: %+v", o)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "kept")); err != nil || string(b) != "data\n" {
		t.Fatalf("a caller's sandbox must stay after Close: %q %v", b, err)
	}
}

func TestMaxSessions(t *testing.T) {
	m := newMachine(t, Options{MaxSessions: 2})
	c := dial(t, m)
	a, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "too many sessions") {
		t.Fatalf("third session: %v", err)
	}
	_ = b.Close()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		s, err := c.NewSession()
		if err == nil {
			_ = s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session after one was closed: %v", err)
		}
	}
}

func sftpClient(t *testing.T, c *ssh.Client) *sftp.Client {
	t.Helper()
	sc, err := sftp.NewClient(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sc.Close() })
	return sc
}

func writeFile(sc *sftp.Client, name string, data []byte) error {
	f, err := sc.Create(name)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

func TestSFTPIsRootedAtTheSandbox(t *testing.T) {
	m := newMachine(t, Options{})
	c := dial(t, m)
	sc := sftpClient(t, c)
	wd, err := sc.Getwd()
	if err != nil || wd != m.Dir() {
		t.Fatalf("getwd %q %v, want %q", wd, err, m.Dir())
	}
	if err := sc.MkdirAll("/workspace/run"); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(sc, "/workspace/run/a.txt", []byte("abs")); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(sc, "rel.txt", []byte("rel")); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(sc, m.Dir()+"/home.txt", []byte("home")); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"workspace/run/a.txt": "abs", "rel.txt": "rel", "home.txt": "home"} {
		if b, err := os.ReadFile(filepath.Join(m.Dir(), name)); err != nil || string(b) != want {
			t.Fatalf("%s: %q %v", name, b, err)
		}
	}
	if o := run(t, c, "cat rel.txt workspace/run/a.txt \"$HOME/home.txt\""); o.stdout != "relabshome" {
		t.Fatalf("commands see other files: %+v", o)
	}
	if _, err := sc.Stat("../../../etc/passwd"); !os.IsNotExist(err) {
		t.Fatalf("../ climbed out of the sandbox: %v", err)
	}
	if err := os.Symlink("/etc", filepath.Join(m.Dir(), "etc-link")); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Open("etc-link/passwd"); err == nil {
		t.Fatal("a symbolic link led out of the sandbox")
	}
	ents, err := sc.ReadDir("/workspace/run")
	if err != nil || len(ents) != 1 || ents[0].Name() != "a.txt" || ents[0].Size() != 3 {
		t.Fatalf("readdir %v %v", ents, err)
	}
	if err := writeFile(sc, "rel.txt.tmp", []byte("new")); err != nil {
		t.Fatal(err)
	}
	if err := sc.Rename("rel.txt.tmp", "rel.txt"); err == nil {
		t.Fatal("a version 3 rename replaced an existing file")
	}
	if err := sc.PosixRename("rel.txt.tmp", "rel.txt"); err != nil {
		t.Fatal(err)
	}
	if err := sc.Chmod("rel.txt", 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, err := sc.Stat("rel.txt"); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() != 3 {
		t.Fatalf("stat after chmod: %v %v", fi, err)
	}
	if _, err := sc.Open("workspace"); err == nil {
		t.Fatal("a directory opened as a file")
	}
	if err := sc.Remove("workspace"); err == nil {
		t.Fatal("Remove took a directory")
	}
	if err := sc.RemoveDirectory("rel.txt"); err == nil {
		t.Fatal("RemoveDirectory took a file")
	}
	if err := sc.Remove("rel.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.Stat("rel.txt"); !os.IsNotExist(err) {
		t.Fatalf("removed file: %v", err)
	}
}

func TestDiskQuota(t *testing.T) {
	const quota = 1 << 20
	m := newMachine(t, Options{DiskQuota: quota})
	c := dial(t, m)
	if o := run(t, c, "head -c 524288 /dev/zero > ballast"); o.err != nil {
		t.Fatal(o.err)
	}
	sc := sftpClient(t, c)
	vfs, err := sc.StatVFS("/")
	if err != nil {
		t.Fatal(err)
	}
	if vfs.TotalSpace() != quota || vfs.FreeSpace() != quota/2 {
		t.Fatalf("statvfs total %d free %d, want %d and %d", vfs.TotalSpace(), vfs.FreeSpace(), quota, quota/2)
	}
	if err := writeFile(sc, "fits", make([]byte, quota/4)); err != nil {
		t.Fatalf("a file that fits: %v", err)
	}
	err = writeFile(sc, "too-big", make([]byte, quota/2))
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("write past the quota: %v, want SSH_FX_FAILURE no space left on device", err)
	}
	if err := sc.Remove("too-big"); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(sc, "fits", make([]byte, quota/2)); err != nil {
		t.Fatalf("replacing a file counts its old size as freed: %v", err)
	}
}

func TestNvidiaSMI(t *testing.T) {
	m := newMachine(t, Options{GPUModel: "NVIDIA A100-SXM4-80GB", GPUCount: 2, GPUMemoryMiB: 81920})
	c := dial(t, m)
	const q = "nvidia-smi --query-gpu=index,name,uuid,utilization.gpu,memory.used,memory.total,temperature.gpu,power.draw --format=csv,noheader,nounits"
	o := run(t, c, q)
	want := fmt.Sprintf("0, NVIDIA A100-SXM4-80GB, %s, 0, 0, 81920, 30, 25.00\n1, NVIDIA A100-SXM4-80GB, %s, 0, 0, 81920, 30, 25.00\n", m.GPUUUID(0), m.GPUUUID(1))
	if o.err != nil || o.stdout != want {
		t.Fatalf("idle query: %+v\nwant %q", o, want)
	}
	const apps = "nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory --format=csv,noheader,nounits"
	if o := run(t, c, apps); o.err != nil || o.stdout != "" {
		t.Fatalf("idle apps: %+v", o)
	}
	if err := m.SetGPUUtilization(50); err != nil {
		t.Fatal(err)
	}
	o = run(t, c, q)
	want = fmt.Sprintf("0, NVIDIA A100-SXM4-80GB, %s, 50, 40960, 81920, 55, 225.00\n", m.GPUUUID(0))
	if o.err != nil || !strings.HasPrefix(o.stdout, want) || strings.Count(o.stdout, "\n") != 2 {
		t.Fatalf("busy query: %+v\nwant %q first", o, want)
	}
	o = run(t, c, apps)
	want = fmt.Sprintf("%s, %d, python, 40960\n%s, %d, python, 40960\n", m.GPUUUID(0), FakeProcessPID(0), m.GPUUUID(1), FakeProcessPID(1))
	if o.err != nil || o.stdout != want {
		t.Fatalf("busy apps: %+v\nwant %q", o, want)
	}
	o = run(t, c, "nvidia-smi --query-gpu=name,memory.used --format=csv")
	if o.stdout != "name, memory.used [MiB]\nNVIDIA A100-SXM4-80GB, 40960 MiB\nNVIDIA A100-SXM4-80GB, 40960 MiB\n" {
		t.Fatalf("csv with header and units: %q", o.stdout)
	}
	if o := run(t, c, "nvidia-smi"); o.err != nil || strings.Count(o.stdout, "NVIDIA A100-SXM4-80GB") != 2 || !strings.Contains(o.stdout, "50%") {
		t.Fatalf("table: %+v", o)
	}
	if o := run(t, c, "nvidia-smi -L"); o.stdout != fmt.Sprintf("GPU 0: NVIDIA A100-SXM4-80GB (UUID: %s)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: %s)\n", m.GPUUUID(0), m.GPUUUID(1)) {
		t.Fatalf("-L: %q", o.stdout)
	}
	o = run(t, c, "nvidia-smi --query-gpu=bogus --format=csv")
	if code, _ := exitStatus(o.err); code != 2 || o.stdout != "" || !strings.Contains(o.stderr, `"bogus" is not a valid field`) {
		t.Fatalf("bad field: %+v", o)
	}
	if err := m.SetGPUUtilization(101); err == nil {
		t.Fatal("101% accepted")
	}
}

func TestSetGPUsChangesWhatNvidiaSMIReports(t *testing.T) {
	m := newMachine(t, Options{GPUModel: "RTX 4090", GPUCount: 1})
	c := dial(t, m)
	const q = "nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits"
	if o := run(t, c, q); o.stdout != "RTX 4090, 24564\n" {
		t.Fatalf("before: %+v", o)
	}
	if err := m.SetGPUs("H800", 2, 81920); err != nil {
		t.Fatal(err)
	}
	if o := run(t, c, q); o.stdout != "H800, 81920\nH800, 81920\n" {
		t.Fatalf("after SetGPUs: %+v", o)
	}
	if err := m.SetGPUs("", 0, 0); err != nil {
		t.Fatal(err)
	}
	if o := run(t, c, "ls "+shQuote(m.binDir())); o.stdout != "" {
		t.Fatalf("bin dir after SetGPUs to 0: %q", o.stdout)
	}
	if err := m.SetGPUs("X", -1, 0); err == nil {
		t.Fatal("a negative count was accepted")
	}
}

func TestNoGPUMeansNoNvidiaSMI(t *testing.T) {
	m := newMachine(t, Options{})
	c := dial(t, m)
	o := run(t, c, "command -v nvidia-smi")
	onHost := run(t, c, "PATH=$(getconf PATH):/usr/local/bin:/usr/local/sbin:/usr/sbin:/sbin; command -v nvidia-smi")
	if onHost.err == nil {
		t.Skip("this host has an nvidia-smi of its own on the PATH")
	}
	if code, _ := exitStatus(o.err); code == 0 {
		t.Fatalf("a machine without GPUs has nvidia-smi: %+v", o)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	m, err := New(Options{Password: password})
	if err != nil {
		t.Fatal(err)
	}
	m.SetReady(true)
	c, err := dialErr(m)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _ := c.NewSession()
	if err := s.Start("sleep 300"); err != nil {
		t.Fatal(err)
	}
	sc := sftpClient(t, c)
	addr, dir := m.Addr(), m.Dir()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Wait(); err == nil {
		t.Fatal("the command ended well after Close")
	}
	if _, err := sc.Getwd(); err == nil {
		t.Fatal("sftp still answers after Close")
	}
	if c2, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c2.Close()
		t.Fatal("dial succeeded after Close")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("sandbox left: %v", err)
	}
}

// The strict options behave like many real sshds: signals are not delivered, and a closed
// session leaves its processes running (until the machine is closed).
func TestStrictOptions(t *testing.T) {
	m := newMachine(t, Options{IgnoreSignals: true, LeaveOrphans: true, TerseSFTPErrors: true, DiskQuota: 1 << 10})
	c := dial(t, m)
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := s.StdoutPipe()
	if err := s.Start(`echo $$; exec sleep 303`); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("pid %q", buf[:n])
	}
	_ = s.Signal(ssh.SIGKILL)
	time.Sleep(50 * time.Millisecond) // a delivered signal would have ended it by now
	if !alive(pid) {
		t.Fatal("a signal was delivered")
	}
	_ = s.Close()
	time.Sleep(50 * time.Millisecond)
	if !alive(pid) {
		t.Fatal("closing the session killed the command")
	}
	sc := sftpClient(t, c)
	err = writeFile(sc, "big", make([]byte, 2<<10))
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || strings.Contains(err.Error(), "space") {
		t.Fatalf("terse full disk: %v", err)
	}
	if _, err := sc.Stat("missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("terse missing file: %v", err)
	}
	m.SetDiskQuota(0)
	if err := writeFile(sc, "big", make([]byte, 2<<10)); err != nil {
		t.Fatalf("without a quota: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	waitDead(t, pid, "the orphan after Close")
}
