package faults

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// served counts the requests the wrapped handler carried out.
type served struct{ n atomic.Int64 }

func (s *served) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.n.Add(1)
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"items":[1,2,3],"total":3}`))
}

func get(t *testing.T, url string, timeout time.Duration) (*http.Response, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestEachFault(t *testing.T) {
	h := &served{}
	in := NewInjector()
	srv := httptest.NewServer(in.Wrap(h))
	defer srv.Close()
	defer in.Stop()

	cases := []struct {
		name     string
		f        Faults
		status   int
		body     string // substring
		err      bool
		handled  bool
		deadline time.Duration
	}{
		{"none", Faults{Path: "/other"}, 200, `"total":3}`, false, true, time.Second},
		{"429", Faults{Status429: true, RetryAfter: "7"}, 429, "too many requests", false, false, time.Second},
		{"500", Faults{Status500: true}, 500, "internal error", false, false, time.Second},
		{"html", Faults{HTMLErrorPage: true}, 502, "<title>502 Bad Gateway</title>", false, false, time.Second},
		{"malformed", Faults{MalformedJSON: true}, 200, `{"items":[1,2`, false, true, time.Second},
		{"drop", Faults{DropConnection: true}, 0, "", true, true, time.Second},
		{"slow body", Faults{SlowBody: time.Minute}, 0, "", true, true, 200 * time.Millisecond},
		{"latency", Faults{Latency: 20 * time.Millisecond}, 200, `"total":3}`, false, true, time.Second},
	}
	for _, c := range cases {
		in.Set(c.f)
		before := h.n.Load()
		resp, body, err := get(t, srv.URL+"/api/list", c.deadline)
		if c.err != (err != nil) {
			t.Errorf("%s: error %v", c.name, err)
			continue
		}
		if !c.err && (resp.StatusCode != c.status || !strings.Contains(body, c.body)) {
			t.Errorf("%s: %d %q", c.name, resp.StatusCode, body)
		}
		if c.name == "429" && resp.Header.Get("Retry-After") != "7" {
			t.Errorf("429 without Retry-After")
		}
		if c.name == "malformed" && strings.HasSuffix(body, "}") {
			t.Errorf("malformed body is whole: %q", body)
		}
		// The handler runs in the server's goroutine: wait for it to count.
		for i := 0; i < 100 && c.handled && h.n.Load() == before; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		if handled := h.n.Load() > before; handled != c.handled {
			t.Errorf("%s: handled %v, want %v", c.name, handled, c.handled)
		}
	}
}

func TestRulesMatchMethodPathAndTimes(t *testing.T) {
	in := NewInjector()
	srv := httptest.NewServer(in.Wrap(&served{}))
	defer srv.Close()
	in.Set(Faults{Method: "POST", Path: "/buy", Status500: true}, Faults{Path: "/list", Times: 2, Status500: true})
	for i, want := range []int{500, 500, 200, 200} {
		if resp, _, err := get(t, srv.URL+"/v1/list", time.Second); err != nil || resp.StatusCode != want {
			t.Fatalf("list #%d: %v %v, want %d", i, resp, err, want)
		}
	}
	if resp, _, _ := get(t, srv.URL+"/v1/buy", time.Second); resp.StatusCode != 200 {
		t.Fatalf("a GET matched a POST rule: %d", resp.StatusCode)
	}
	if in.Applied() != 2 {
		t.Fatalf("applied %d", in.Applied())
	}
	in.Set()
	if resp, _, _ := get(t, srv.URL+"/v1/list", time.Second); resp.StatusCode != 200 {
		t.Fatal("faults remain after Set()")
	}
}
