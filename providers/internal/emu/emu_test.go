package emu

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
)

func TestOutcomesPerOfferAndDefault(t *testing.T) {
	var o Outcomes
	if got := o.For("a"); got != LaunchNormal {
		t.Fatalf("empty table: %v", got)
	}
	o.Set("", LaunchSoldOut)
	o.Set("a", LaunchNeverRuns)
	for _, c := range []struct {
		key  string
		want LaunchOutcome
	}{{"a", LaunchNeverRuns}, {"b", LaunchSoldOut}, {"", LaunchSoldOut}} {
		if got := o.For(c.key); got != c.want {
			t.Errorf("For(%q) = %v, want %v", c.key, got, c.want)
		}
	}
	o.Set("", LaunchNormal)
	if got := o.For("b"); got != LaunchNormal {
		t.Errorf("after reset: %v", got)
	}
	if LaunchFails.String() != "fails" || LaunchOutcome(9).String() != "unknown" {
		t.Errorf("names: %s %s", LaunchFails, LaunchOutcome(9))
	}
}

func TestRequestLogKeepsTheLatestMaxRequests(t *testing.T) {
	changes := 0
	s := New(Options{Vendor: "test", IsChange: func(r *http.Request) bool { return r.Method == http.MethodPost }},
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { changes++ }))
	defer s.Close()
	const extra = 5
	for i := range MaxRequests + extra {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, fmt.Sprintf("/r/%d?i=%d", i, i), strings.NewReader(fmt.Sprint(i)))
		s.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}
	got := s.Requests()
	if len(got) != MaxRequests {
		t.Fatalf("%d requests kept, want the last %d", len(got), MaxRequests)
	}
	for i, r := range got {
		n := i + extra
		if r.Path != fmt.Sprintf("/r/%d", n) || string(r.Body) != fmt.Sprint(n) || r.Query().Get("i") != fmt.Sprint(n) {
			t.Fatalf("request %d is %s %q, want /r/%d: the oldest must go first", i, r.Path, r.Body, n)
		}
	}
	if s.Changes() != (MaxRequests+extra)/2 || changes != MaxRequests+extra {
		t.Errorf("changes %d (handled %d), want %d", s.Changes(), changes, (MaxRequests+extra)/2)
	}
}

func TestStepsTakeEffectAtTheirTime(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var st Steps[string]
	status := ""
	st.Walk(&status, t0, time.Minute, "Stopping", "Stopped", "Starting")
	ran := time.Time{}
	st.Then(t0, time.Minute, "Running", func(at time.Time) { ran = at })
	if s, ok := st.At(t0.Add(90*time.Second), status); status != "Stopping" || s != "Stopped" || !ok || !st.Busy() {
		t.Fatalf("before applying: %q, at +90s %q %v", status, s, ok)
	}
	if st.Advance(t0.Add(90*time.Second), &status) || status != "Stopped" {
		t.Fatalf("at +90s: %q", status)
	}
	if st.Advance(t0.Add(10*time.Minute), &status) || status != "Running" || !ran.Equal(t0.Add(3*time.Minute)) || st.Busy() {
		t.Fatalf("at +10m: %q, ran at %s", status, ran)
	}
	st.ThenGone(t0.Add(10*time.Minute), time.Minute)
	if _, ok := st.At(t0.Add(11*time.Minute), status); ok {
		t.Fatal("At does not see the removal")
	}
	if !st.Advance(t0.Add(11*time.Minute), &status) {
		t.Fatal("Advance does not report the removal")
	}
}

// login connects to addr as the machine's user with its password.
func login(t *testing.T, addr, user, password string) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", addr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{ssh.Password(password)},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second})
}

func output(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%s: %v: %s", cmd, err, out)
	}
	return string(out)
}

// The machine of an instance logs in with exactly the login the vendor hands out, reports its
// GPUs, serves only while the instance runs, and loses its processes but not its disk when
// the instance stops; a removed instance's machine closes once the lock is released, its
// disk deleted, and Close deletes the emulator's directory.
func TestMachinesFollowTheirInstances(t *testing.T) {
	running := true
	s := New(Options{Vendor: "test"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		running = r.URL.Path == "/start"
	}))
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	s.Lock()
	m, err := s.Listen("i-1", Machine{User: "ubuntu", Password: "pw-0f3c", GPUModel: "RTX 4090", GPUCount: 2}, func() bool { return running })
	s.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := s.Machine("i-1"); !ok || got != m {
		t.Fatal("Machine does not return the instance's machine")
	}
	addr, _ := s.SSHAddr("i-1")
	if _, err := login(t, addr, "root", "pw-0f3c"); err == nil {
		t.Fatal("a user other than the instance's logs in")
	}
	if _, err := login(t, addr, "ubuntu", "wrong"); err == nil {
		t.Fatal("a wrong password logs in")
	}
	c, err := login(t, addr, "ubuntu", "pw-0f3c")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := output(t, c, "nvidia-smi --query-gpu=name --format=csv,noheader"); got != "RTX 4090\nRTX 4090\n" {
		t.Fatalf("nvidia-smi: %q", got)
	}
	pid := strings.TrimSpace(output(t, c, "echo kept >disk.txt; setsid sleep 300 </dev/null >/dev/null 2>&1 & echo $!"))
	if _, err := os.Stat("/proc/" + pid); err != nil {
		t.Fatalf("the detached process %s does not run: %v", pid, err)
	}
	dir := m.Dir()
	if !strings.HasPrefix(dir, s.dir) {
		t.Fatalf("the sandbox %s is not under the emulator's directory %s", dir, s.dir)
	}

	if _, err := http.Get(s.URL() + "/stop"); err != nil { // the instance stops: its machine halts
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile("/proc/" + pid + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the stopped instance's process still runs")
		}
	}
	if line, _ := machinetest.ReadBanner(addr, 2*time.Second); line != "" {
		t.Fatalf("a stopped instance's machine greets: %q", line)
	}
	if _, err := http.Get(s.URL() + "/start"); err != nil {
		t.Fatal(err)
	}
	c2, err := login(t, addr, "ubuntu", "pw-0f3c")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := output(t, c2, "cat disk.txt"); got != "kept\n" {
		t.Fatalf("after a stop and a start the disk holds %q", got)
	}

	s.Lock()
	s.Forget("i-1")
	s.Unlock()
	if _, ok := s.SSHAddr("i-1"); ok {
		t.Fatal("a forgotten machine is still listed")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("a forgotten machine still accepts connections")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("a forgotten machine's disk is left: %v", err)
	}
	root := s.dir
	s.Close()
	closed = true
	if _, err := os.Stat(root); !os.IsNotExist(err) {
		t.Fatalf("Close left the emulator's directory: %v", err)
	}
}
