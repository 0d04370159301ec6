package httpx

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// script answers the nth request (from 0) with answers[n], the last one for every later request.
type script struct {
	hits    atomic.Int64
	mu      sync.Mutex
	answers []func(w http.ResponseWriter, r *http.Request)
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.hits.Add(1)) - 1
	s.mu.Lock()
	a := s.answers[min(n, len(s.answers)-1)]
	s.mu.Unlock()
	a(w, r)
}

// set replaces the answers and restarts the count.
func (s *script) set(answers ...func(w http.ResponseWriter, r *http.Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.answers = answers
	s.hits.Store(0)
}

func status(code int, header ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(header); i += 2 {
			w.Header().Set(header[i], header[i+1])
		}
		w.WriteHeader(code)
		w.Write([]byte(`{"message":"answer ` + http.StatusText(code) + `"}`))
	}
}

// stall waits until the client gives up.
func stall(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// testClient returns a client of srv whose waits between attempts are recorded, not slept.
func testClient(srv *httptest.Server, o providers.HTTPOptions) (*Client, *[]time.Duration) {
	c := New("acme", srv.URL, nil).Configure(o, NewBreaker(o))
	var mu sync.Mutex
	waits := &[]time.Duration{}
	c.wait = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		*waits = append(*waits, d)
		return ctx.Err()
	}
	return c, waits
}

func TestReadsAreRetriedChangesNever(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){status(503), status(502), status(200)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, waits := testClient(srv, providers.HTTPOptions{Retries: 2, RetryBackoff: 100 * time.Millisecond})
	resp, err := c.Do(t.Context(), Request{Method: "POST", Path: "/list", Body: map[string]int{"n": 1}, Op: "list"})
	if err != nil || resp.Status != 200 || s.hits.Load() != 3 {
		t.Fatalf("read after two 5xx: %v, %d requests", err, s.hits.Load())
	}
	if len(*waits) != 2 || (*waits)[0] < 50*time.Millisecond || (*waits)[0] > 100*time.Millisecond ||
		(*waits)[1] < 100*time.Millisecond || (*waits)[1] > 200*time.Millisecond {
		t.Fatalf("backoff waits %v: want jittered 50-100ms, then 100-200ms", *waits)
	}

	s.hits.Store(0)
	_, err = c.Do(t.Context(), Request{Method: "POST", Path: "/buy", Mutating: true, Op: "buy"})
	if providers.KindOf(err) != providers.KindUnknown || s.hits.Load() != 1 || !strings.Contains(err.Error(), "list_instances") {
		t.Fatalf("a 5xx on a purchase: %v after %d requests; want one request and an unknown outcome", err, s.hits.Load())
	}

	s.set(status(500))
	_, err = c.Do(t.Context(), Request{Method: "GET", Path: "/list", Op: "list"})
	if providers.KindOf(err) != providers.KindUnavailable || s.hits.Load() != 3 || !strings.Contains(err.Error(), "acme: list: HTTP 500") {
		t.Fatalf("a read failing for good: %v after %d requests; want 1 + 2 retries", err, s.hits.Load())
	}
}

func TestClientErrorsAreNotRetried(t *testing.T) {
	for _, code := range []int{400, 401, 403, 404, 409, 501} {
		s := &script{answers: []func(http.ResponseWriter, *http.Request){status(code)}}
		srv := httptest.NewServer(s)
		c, _ := testClient(srv, providers.HTTPOptions{Retries: 3})
		_, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x"})
		srv.Close()
		if err == nil || s.hits.Load() != 1 {
			t.Errorf("HTTP %d: %d requests (%v); a refusal is final", code, s.hits.Load(), err)
		}
	}
}

func TestRetryAfterIsHonouredWithinItsCap(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "3"), status(200)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, waits := testClient(srv, providers.HTTPOptions{Retries: 2})
	if _, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x"}); err != nil || len(*waits) != 1 || (*waits)[0] != 3*time.Second {
		t.Fatalf("429 Retry-After 3: err %v, waits %v; want one wait of exactly 3s", err, *waits)
	}

	// Longer than the cap: not waited out, the error says when to come back.
	*waits = nil
	s.set(status(429, "Retry-After", "30"))
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x", Op: "list"})
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Kind != providers.KindRateLimited || pe.RetryAfter != 30*time.Second ||
		!strings.Contains(err.Error(), "retry after 30s") || !strings.Contains(err.Error(), "wait 30s before calling acme") {
		t.Fatalf("429 Retry-After 30: %v", err)
	}
	if s.hits.Load() != 1 || len(*waits) != 0 {
		t.Fatalf("Retry-After above the 10s cap was waited out: %d requests, waits %v", s.hits.Load(), *waits)
	}

	// Within the cap but past the caller's deadline: not waited out either.
	s.set(status(429, "Retry-After", "5"))
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err = c.Do(ctx, Request{Method: "GET", Path: "/x"})
	if providers.KindOf(err) != providers.KindRateLimited || s.hits.Load() != 1 || len(*waits) != 0 {
		t.Fatalf("Retry-After past the deadline: %v, %d requests, waits %v", err, s.hits.Load(), *waits)
	}

	// A rate-limited change is not retried.
	s.set(status(429, "Retry-After", "1"))
	if _, err := c.Do(t.Context(), Request{Method: "POST", Path: "/stop", Mutating: true}); providers.KindOf(err) != providers.KindRateLimited || s.hits.Load() != 1 {
		t.Fatalf("rate-limited change: %v, %d requests", err, s.hits.Load())
	}
}

func TestTimeoutPerRequest(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){stall}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, _ := testClient(srv, providers.HTTPOptions{Timeout: 30 * time.Millisecond, Retries: 1})
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x", Op: "list"})
	if providers.KindOf(err) != providers.KindUnavailable || !strings.Contains(err.Error(), "no answer within 30ms") || s.hits.Load() != 2 {
		t.Fatalf("read timing out: %v after %d requests", err, s.hits.Load())
	}
	s.hits.Store(0)
	_, err = c.Do(t.Context(), Request{Method: "POST", Path: "/buy", Mutating: true, Op: "buy"})
	if providers.KindOf(err) != providers.KindUnknown || !strings.Contains(err.Error(), "no answer within 30ms") ||
		!strings.Contains(err.Error(), "may or may not") || s.hits.Load() != 1 {
		t.Fatalf("purchase timing out: %v after %d requests", err, s.hits.Load())
	}
}

func TestSlowBodyTimesOut(t *testing.T) {
	slow := func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"items":[`))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}
	srv := httptest.NewServer(http.HandlerFunc(slow))
	defer srv.Close()
	c, _ := testClient(srv, providers.HTTPOptions{Timeout: 40 * time.Millisecond})
	_, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x", Op: "list"})
	if providers.KindOf(err) != providers.KindUnavailable || !strings.Contains(err.Error(), "no answer within 40ms") {
		t.Fatalf("body that never ends: %v", err)
	}
}

// fakeClock is a settable clock for the breaker.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.t }
func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

func TestBreakerSkipsAFailingVendorThenTriesOnce(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){status(503)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	o := providers.HTTPOptions{BreakerThreshold: 3, BreakerCooldown: 30 * time.Second}
	c, _ := testClient(srv, o)
	clk := &fakeClock{t: time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)}
	c.Breaker.now = clk.now

	read := func() error {
		_, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x", Op: "list offers"})
		return err
	}
	for range 3 {
		if err := read(); errors.Is(err, ErrVendorSkipped) {
			t.Fatalf("skipped before the threshold: %v", err)
		}
	}
	err := read()
	if !errors.Is(err, ErrVendorSkipped) || s.hits.Load() != 3 || providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("fourth read: %v after %d requests; want it skipped without a request", err, s.hits.Load())
	}
	for _, frag := range []string{"acme: list offers: not sent", "failed 3 times in a row", "HTTP 503", "try it again at 10:00:30 UTC (in 30s)", "nothing was sent"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("breaker error %q lacks %q", err, frag)
		}
	}
	_, err = c.Do(t.Context(), Request{Method: "POST", Path: "/buy", Mutating: true, Op: "buy"})
	if !errors.Is(err, ErrVendorSkipped) || providers.KindOf(err) != providers.KindUnavailable || s.hits.Load() != 3 {
		t.Fatalf("a purchase while the breaker is open must not be sent, and is not of unknown outcome: %v", err)
	}

	// After the cooldown, one trial; while it runs, others are still refused.
	clk.add(31 * time.Second)
	release := make(chan struct{})
	entered := make(chan struct{})
	s.set(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		status(503)(w, r)
	})
	trial := make(chan error)
	go func() { trial <- read() }()
	<-entered
	if err := read(); !errors.Is(err, ErrVendorSkipped) || !strings.Contains(err.Error(), "trial request is under way") {
		t.Fatalf("during the trial: %v", err)
	}
	close(release)
	if err := <-trial; errors.Is(err, ErrVendorSkipped) || providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("trial: %v", err)
	}
	if err := read(); !errors.Is(err, ErrVendorSkipped) {
		t.Fatalf("a failed trial must open the breaker again: %v", err)
	}

	// A successful trial closes it.
	clk.add(31 * time.Second)
	s.set(status(200))
	for range 5 {
		if err := read(); err != nil {
			t.Fatalf("after a successful trial: %v", err)
		}
	}
}

func TestRefusalsAndCancellationsDoNotOpenTheBreaker(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){status(401)}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	c, _ := testClient(srv, providers.HTTPOptions{BreakerThreshold: 2})
	for range 10 {
		if _, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x"}); providers.KindOf(err) != providers.KindAuth {
			t.Fatalf("auth failure: %v", err)
		}
	}
	if s.hits.Load() != 10 {
		t.Fatalf("%d of 10 requests sent: refusals opened the breaker", s.hits.Load())
	}
	s.set(stall)
	for range 5 {
		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond)
		_, err := c.Do(ctx, Request{Method: "GET", Path: "/x"})
		cancel()
		if errors.Is(err, ErrVendorSkipped) || !strings.Contains(err.Error(), "deadline of this call") {
			t.Fatalf("caller's deadline: %v", err)
		}
	}
	s.set(status(200))
	if _, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x"}); err != nil {
		t.Fatalf("the caller's own deadlines opened the breaker: %v", err)
	}
	// A 4xx answer in between resets the count of failures in a row.
	s.set(status(500), status(404), status(500), status(404))
	for range 4 {
		if _, err := c.Do(t.Context(), Request{Method: "GET", Path: "/x"}); errors.Is(err, ErrVendorSkipped) {
			t.Fatalf("failures not in a row opened the breaker: %v", err)
		}
	}
}

func TestNegativeThresholdDisablesTheBreaker(t *testing.T) {
	if NewBreaker(providers.HTTPOptions{BreakerThreshold: -1}) != nil {
		t.Fatal("breaker despite a negative threshold")
	}
	b := NewBreaker(providers.HTTPOptions{})
	if b.threshold != DefaultBreakerThreshold || b.cooldown != DefaultBreakerCooldown {
		t.Fatalf("defaults %d %s", b.threshold, b.cooldown)
	}
}

func TestBackoffIsJitteredAndCapped(t *testing.T) {
	c := New("acme", "http://x.invalid", nil)
	for attempt := range 12 {
		d := DefaultRetryBackoff << min(attempt, 10)
		d = min(d, maxBackoff)
		for range 50 {
			if w := c.backoff(attempt); w < d/2 || w > d {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempt, w, d/2, d)
			}
		}
	}
}

func TestExcerptOfAnHTMLErrorPage(t *testing.T) {
	page := []byte("<!DOCTYPE html>\n<html><head><title>502 Bad\n Gateway</title></head><body><h1>nginx</h1> token=abc</body></html>")
	if got := excerpt(page); got != "an HTML page instead of JSON: 502 Bad Gateway" {
		t.Fatalf("excerpt %q", got)
	}
	if got := excerpt([]byte("<html><body>oops</body></html>")); got != "an HTML page instead of JSON" {
		t.Fatalf("excerpt without title %q", got)
	}
}
