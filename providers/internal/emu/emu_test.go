package emu

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/sshd"
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

func TestForgottenEndpointsCloseAfterTheLock(t *testing.T) {
	s := New(Options{Vendor: "test"}, http.NotFoundHandler())
	defer s.Close()
	ready := true
	s.Lock()
	if _, err := s.Listen("i1", func() bool { return ready }); err != nil {
		t.Fatal(err)
	}
	s.Unlock()
	addr, ok := s.SSHAddr("i1")
	if !ok {
		t.Fatal("no endpoint")
	}
	if line, err := sshd.ReadBanner(addr, 2*time.Second); err != nil || !strings.HasPrefix(line, "SSH-2.0-test") {
		t.Fatalf("banner %q, %v", line, err)
	}
	s.Lock()
	s.Forget("i1")
	s.Unlock()
	if _, ok := s.SSHAddr("i1"); ok {
		t.Fatal("a forgotten endpoint is still listed")
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Fatal("a forgotten endpoint still accepts connections")
	}
}
