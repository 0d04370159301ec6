package httpx

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/redact"
)

func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	c := New("acme", srv.URL+"/", func(h http.Header) { h.Set("Authorization", "tok") })
	resp, err := c.Do(context.Background(), Request{Method: "POST", Path: "/x/y", Query: map[string][]string{"a": {"1 2"}}, Body: map[string]int{"n": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.Path != "/x/y" || got.URL.Query().Get("a") != "1 2" || got.Header.Get("Authorization") != "tok" ||
		got.Header.Get("Content-Type") != "application/json" || body != `{"n":1}` {
		t.Fatalf("request %s %s %v body %s", got.Method, got.URL, got.Header, body)
	}
	var v struct{ OK bool }
	if err := c.DecodeJSON(Request{}, resp, &v); err != nil || !v.OK {
		t.Fatalf("decode: %v %v", v, err)
	}
}

func TestStatusMapping(t *testing.T) {
	cases := []struct {
		status   int
		header   string
		mutating bool
		kind     providers.ErrorKind
	}{
		{401, "", false, providers.KindAuth},
		{403, "", true, providers.KindAuth},
		{404, "", false, providers.KindNotFound},
		{400, "", true, providers.KindInvalid},
		{429, "7", false, providers.KindRateLimited},
		{500, "", false, providers.KindUnavailable},
		{502, "", true, providers.KindUnknown},
	}
	for _, c := range cases {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if c.header != "" {
				w.Header().Set("Retry-After", c.header)
			}
			w.WriteHeader(c.status)
			w.Write([]byte(`{"message":"nope"}`))
		}))
		cl := New("acme", srv.URL, nil)
		resp, err := cl.Do(context.Background(), Request{Method: "GET", Path: "/", Mutating: c.mutating, Op: "thing"})
		srv.Close()
		if resp == nil || resp.Status != c.status {
			t.Errorf("%d: the response was not returned beside the error", c.status)
		}
		if providers.KindOf(err) != c.kind {
			t.Errorf("%d mutating=%v: kind %q, want %q (%v)", c.status, c.mutating, providers.KindOf(err), c.kind, err)
			continue
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "acme: thing: ") || !strings.Contains(msg, "nope") {
			t.Errorf("%d: message %q lacks the provider, the operation or the vendor's words", c.status, msg)
		}
		if c.kind == providers.KindRateLimited && (err.(*providers.Error).RetryAfter != 7*time.Second || !strings.Contains(msg, "retry after 7s")) {
			t.Errorf("429: %q", msg)
		}
		if c.kind == providers.KindUnknown && !strings.Contains(msg, "list_instances") {
			t.Errorf("unknown outcome does not say how to check: %q", msg)
		}
	}
}

func TestTransportFailureOfAMutationIsAnUnknownOutcome(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	url := srv.URL
	srv.Close()
	c := New("acme", url, nil)
	_, err := c.Do(context.Background(), Request{Method: "GET", Path: "/list?secret=1", Op: "list"})
	if providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("read: %v", err)
	}
	_, err = c.Do(context.Background(), Request{Method: "POST", Path: "/buy", Mutating: true, Op: "buy"})
	if providers.KindOf(err) != providers.KindUnknown || !strings.Contains(err.Error(), "may or may not") {
		t.Fatalf("mutation: %v", err)
	}
}

func TestBodyLimitAndGarbage(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Write([]byte(strings.Repeat("x", 2048)))
			return
		}
		w.Write([]byte(`<html>password=hunter2</html>`))
	}))
	defer srv.Close()
	c := New("acme", srv.URL, nil)
	c.MaxBody = 1024
	if _, err := c.Do(context.Background(), Request{Method: "GET", Path: "/big"}); providers.KindOf(err) != providers.KindUnavailable || !strings.Contains(err.Error(), "larger than 1024") {
		t.Fatalf("oversized body: %v", err)
	}
	resp, err := c.Do(context.Background(), Request{Method: "GET", Path: "/html"})
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	err = c.DecodeJSON(Request{Op: "list"}, resp, &v)
	if providers.KindOf(err) != providers.KindUnavailable {
		t.Fatalf("garbage: %v", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("the error quotes the body, which may hold passwords: %v", err)
	}
}

func TestRetryAfter(t *testing.T) {
	h := http.Header{}
	if RetryAfter(h) != 0 {
		t.Error("absent header")
	}
	h.Set("Retry-After", "3")
	if RetryAfter(h) != 3*time.Second {
		t.Error("seconds")
	}
	h.Set("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat))
	if d := RetryAfter(h); d < 59*time.Minute || d > time.Hour {
		t.Errorf("date: %s", d)
	}
	h.Set("Retry-After", "soon")
	if RetryAfter(h) != 0 {
		t.Error("garbage")
	}
}

// A vendor (or its proxy) that quotes the request in its error body must not put the
// credentials into the error: those the client sends, those configured elsewhere, and those
// it does not know of but that look like credentials (a key in the query string).
func TestErrorsQuotingTheRequestLeakNoSecret(t *testing.T) {
	const (
		key       = "vendor-key-0123456789"
		other     = "another-vendors-token-abcdef"
		queryKey  = "query-key-that-nobody-configured"
		longEcho  = 190 // puts the key across the excerpt's 200-character cut
		wantCount = 3
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, `{"msg":"%s %s Authorization: %s; also %s; headers %v"}`, strings.Repeat("x", longEcho), r.URL.RequestURI(), r.Header.Get("Authorization"), other, r.Header)
	}))
	defer srv.Close()
	c := New("acme", srv.URL, func(h http.Header) { h.Set("Authorization", "Bearer "+key) }).
		Configure(providers.HTTPOptions{Redactor: redact.New(other)}, nil)
	resp, err := c.Do(context.Background(), Request{Method: http.MethodGet, Path: "/list", Query: url.Values{"api_key": {queryKey}}})
	if err == nil {
		t.Fatal("no error for a 400")
	}
	for what, text := range map[string]string{"error": err.Error(), "body handed to the adapter": string(resp.Body), "excerpt": c.Excerpt(resp.Body)} {
		for _, s := range []string{key, other, queryKey, key[:12]} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %q: %s", what, s, text)
			}
		}
	}
	if n := strings.Count(string(resp.Body), redact.Mask); n < wantCount {
		t.Errorf("%d masks in %s, want %d or more", n, resp.Body, wantCount)
	}

	// A failure to connect quotes the URL: the query string is dropped, the rest redacted.
	dead := New("acme", "http://127.0.0.1:1/"+key, nil).Configure(providers.HTTPOptions{Redactor: redact.New(key)}, nil)
	_, err = dead.Do(context.Background(), Request{Method: http.MethodGet, Path: "/x", Query: url.Values{"token": {queryKey}}})
	if err == nil || strings.Contains(err.Error(), key) || strings.Contains(err.Error(), queryKey) {
		t.Fatalf("transport failure: %v", err)
	}
}
