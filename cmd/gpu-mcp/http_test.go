package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const testAuthToken = "test-token-0123456789abcdef0123456789"

func TestLoadNetConfig(t *testing.T) {
	for _, tc := range []struct {
		name, addr, token, hosts string
		wantErr                  string
		allowed, refused         []string
	}{
		{name: "loopback without token", addr: "127.0.0.1:8080",
			allowed: []string{"localhost:8080", "127.0.0.1", "[::1]:8080", "LOCALHOST."}, refused: []string{"evil.example.com", "10.0.0.1:8080"}},
		{name: "localhost by name", addr: "localhost:0"},
		{name: "bad address", addr: "8080", wantErr: "host:port"},
		{name: "exposed without token", addr: "10.1.2.3:8080", wantErr: "GPU_MCP_AUTH_TOKEN is not set"},
		{name: "all interfaces without token", addr: ":8080", wantErr: "GPU_MCP_AUTH_TOKEN is not set"},
		{name: "short token", addr: "127.0.0.1:8080", token: "short", wantErr: "too short"},
		{name: "all interfaces without allowed hosts", addr: "0.0.0.0:8080", token: testAuthToken, wantErr: "GPU_MCP_ALLOWED_HOSTS"},
		{name: "specific address allows itself", addr: "10.1.2.3:8080", token: testAuthToken,
			allowed: []string{"10.1.2.3:8080", "localhost"}, refused: []string{"gpu.example.test"}},
		{name: "all interfaces with allowed hosts", addr: "[::]:8080", token: testAuthToken, hosts: " gpu.example.test, GPU.internal:8443 ,",
			allowed: []string{"gpu.example.test", "gpu.internal:8080", "127.0.0.1:8080"}, refused: []string{"other.example.test", "10.1.2.3"}},
		{name: "any host", addr: "0.0.0.0:8080", token: testAuthToken, hosts: "*", allowed: []string{"whatever.example:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"GPU_MCP_ALLOWED_HOSTS": tc.hosts}
			nc, err := loadNetConfig(Config{Transport: "http", Addr: tc.addr, AuthToken: tc.token}, env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range tc.allowed {
				if !nc.hostAllowed(h) {
					t.Errorf("Host %q refused", h)
				}
			}
			for _, h := range tc.refused {
				if nc.hostAllowed(h) {
					t.Errorf("Host %q allowed", h)
				}
			}
		})
	}
}

func TestOriginAllowed(t *testing.T) {
	nc, err := loadNetConfig(Config{Addr: "127.0.0.1:0"}, map[string]string{"GPU_MCP_ALLOWED_HOSTS": "*,app.example.test,localhost:6274"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"", "localhost:8080", true},
		{"http://localhost:8080", "localhost:8080", true},
		{"http://127.0.0.1:8080", "localhost:8080", true}, // loopback names are one machine
		{"http://[::1]:8080", "127.0.0.1:8080", true},
		{"https://app.example.test", "app.example.test", true},
		{"https://app.example.test:443", "app.example.test", true},
		{"http://localhost:6274", "localhost:8080", true}, // listed with its port
		// Another port is another program: a page there is another origin.
		{"http://localhost:9999", "localhost:8080", false},
		{"http://127.0.0.1", "127.0.0.1:8080", false},
		{"http://app.example.test:8443", "app.example.test", false},
		{"http://app.example.test", "app.example.test:8443", false},
		{"https://app.example.test", "app.example.test:80", false},
		{"http://evil.example.com:8080", "localhost:8080", false},
		{"null", "localhost:8080", false},
		{"file://", "localhost:8080", false},
		{"https://localhost.evil.example", "localhost", false},
		{"http://localhost:8080/path", "localhost:8080", false},
		{"http://user@localhost:8080", "localhost:8080", false},
	} {
		if got := nc.originAllowed(tc.origin, tc.host); got != tc.want {
			t.Errorf("Origin %q to Host %q: allowed %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
}

func TestAuthTokenNeedsVariety(t *testing.T) {
	for token, want := range map[string]string{
		"short":                              "too short",
		"aaaaaaaaaaaaaaaa":                   "only 1 different characters",
		"                ":                   "space",
		"abcabcabcabcabcabcabc":              "only 3 different characters",
		"0123456789abcdef\n":                 "space",
		"with a space 0123456789":            "space",
		"tab\t0123456789abcdefg":             "space",
		"ctl\x01" + "0123456789abcdefg":      "control character",
		" lead-0123456789abcdef":             "space",
		"e2e-token-0123456789abcdef01234567": "",
	} {
		_, err := loadNetConfig(Config{Addr: "127.0.0.1:8080", AuthToken: token}, nil)
		switch {
		case want == "" && err != nil:
			t.Errorf("%q refused: %v", token, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "openssl rand")):
			t.Errorf("%q: %v, want an error about %q that says what to use", token, err, want)
		}
	}
}

func TestNetLimitsAreValidated(t *testing.T) {
	for env, want := range map[string]string{
		"GPU_MCP_MAX_SESSIONS=0":       "GPU_MCP_MAX_SESSIONS 0 is not accepted",
		"GPU_MCP_MAX_SESSIONS=2000000": "from 1 to 1000000",
		"GPU_MCP_SESSION_IDLE=1s":      "GPU_MCP_SESSION_IDLE 1s is not accepted; use a duration from 10s to 24h",
		"GPU_MCP_BODY_TIMEOUT=0s":      "GPU_MCP_BODY_TIMEOUT 0s is not accepted",
		"GPU_MCP_BODY_TIMEOUT=11m":     "from 1s to 10m",
		"GPU_MCP_MAX_SESSIONS=many":    "GPU_MCP_MAX_SESSIONS",
	} {
		k, v, _ := strings.Cut(env, "=")
		_, err := loadNetConfig(Config{Addr: "127.0.0.1:8080"}, map[string]string{k: v})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error with %q", env, err, want)
		}
	}
	nc, err := loadNetConfig(Config{Addr: "127.0.0.1:8080"}, nil)
	if err != nil || nc.MaxSessions != 1000 || nc.SessionIdle != 10*time.Minute || nc.BodyTimeout != 10*time.Second {
		t.Fatalf("defaults: %+v, %v", nc, err)
	}
}

// testFront serves a demo app's MCP over the given transport on an httptest server (loopback).
func testFront(t *testing.T, transport, token string, environ map[string]string) (*front, *httptest.Server) {
	t.Helper()
	cfg := Config{Transport: transport, Addr: "127.0.0.1:0", Demo: true, AuthToken: token, LogLevel: "debug"}
	cfg.ConfirmTTL, cfg.VendorTimeout = 5*time.Minute, 30*time.Second
	nc, err := loadNetConfig(cfg, environ)
	if err != nil {
		t.Fatal(err)
	}
	app, err := newApp(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	f := newFront(app, cfg, nc, io.Discard)
	ts := httptest.NewServer(f)
	t.Cleanup(func() { ts.Close(); f.stopStreams(); app.Close() })
	return f, ts
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func post(t *testing.T, url, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func TestHTTPAuthHostAndOrigin(t *testing.T) {
	_, ts := testFront(t, "http", testAuthToken, nil)
	auth := "Bearer " + testAuthToken
	for _, tc := range []struct {
		name       string
		header     map[string]string
		status     int
		challenge  string
		bodyAssert string
	}{
		{name: "no token", status: 401, challenge: `Bearer realm="gpu-mcp"`},
		{name: "wrong token", header: map[string]string{"Authorization": "Bearer " + testAuthToken + "x"}, status: 401, challenge: `Bearer realm="gpu-mcp", error="invalid_token"`},
		{name: "token as basic auth", header: map[string]string{"Authorization": "Basic " + testAuthToken}, status: 401, challenge: `Bearer realm="gpu-mcp"`},
		{name: "right token", header: map[string]string{"Authorization": auth}, status: 200, bodyAssert: `"name":"gpu-mcp"`},
		{name: "scheme in lower case", header: map[string]string{"Authorization": "bearer " + testAuthToken}, status: 200},
		{name: "foreign Host", header: map[string]string{"Authorization": auth, "Host": "evil.example.com"}, status: 403},
		{name: "foreign Origin", header: map[string]string{"Authorization": auth, "Origin": "http://evil.example.com"}, status: 403},
		{name: "this server's Origin", header: map[string]string{"Authorization": auth, "Origin": ts.URL}, status: 200},
		{name: "Origin on another local port", header: map[string]string{"Authorization": auth, "Origin": "http://localhost:6274"}, status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, body := post(t, ts.URL+"/mcp", initializeBody, tc.header)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if got := res.Header.Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			if !strings.Contains(body, tc.bodyAssert) || strings.Contains(body, testAuthToken) {
				t.Errorf("body %q", body)
			}
		})
	}

	res, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var health map[string]any
	if err := json.NewDecoder(res.Body).Decode(&health); err != nil || res.StatusCode != 200 || len(health) != 1 || health["status"] != "ok" {
		t.Fatalf("healthz without a token: %d %v %v", res.StatusCode, health, err)
	}
}

func TestHTTPAllowedHostsBehindAProxy(t *testing.T) {
	// A reverse proxy on this machine forwards to loopback with the public Host: mcp-go's own
	// loopback-only check must step aside for the configured list, which still refuses others.
	_, ts := testFront(t, "http", testAuthToken, map[string]string{"GPU_MCP_ALLOWED_HOSTS": "gpu.example.test"})
	auth := "Bearer " + testAuthToken
	if res, body := post(t, ts.URL+"/mcp", initializeBody, map[string]string{"Authorization": auth, "Host": "gpu.example.test", "Origin": "https://gpu.example.test"}); res.StatusCode != 200 {
		t.Fatalf("allowed host: %d %s", res.StatusCode, body)
	}
	if res, _ := post(t, ts.URL+"/mcp", initializeBody, map[string]string{"Authorization": auth, "Host": "other.example.test"}); res.StatusCode != 403 {
		t.Fatalf("other host: %d", res.StatusCode)
	}
	_, ts = testFront(t, "sse", testAuthToken, map[string]string{"GPU_MCP_ALLOWED_HOSTS": "*"})
	if res, _ := post(t, ts.URL+"/message?sessionId=x", initializeBody, map[string]string{"Authorization": auth, "Host": "any.example.test", "Origin": "http://evil.example.com"}); res.StatusCode != 403 {
		t.Fatalf("\"*\" must not let a foreign Origin in: %d", res.StatusCode)
	}
}

func TestHTTPDrainingRefusesNewCallsOnly(t *testing.T) {
	f, ts := testFront(t, "http", "", nil)
	f.draining.Store(true)
	res, _ := post(t, ts.URL+"/mcp", initializeBody, nil)
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("a new call while draining: %d", res.StatusCode)
	}
	// The client's answer to a question of the server's must still get through.
	res, _ = post(t, ts.URL+"/mcp", `{"jsonrpc":"2.0","id":7,"result":{"action":"accept"}}`, nil)
	if res.StatusCode == http.StatusServiceUnavailable {
		t.Fatal("an answer was refused while draining")
	}
	h, err := http.Get(ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	h.Body.Close()
	if h.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("healthz while draining: %d", h.StatusCode)
	}
}

func TestInflightWait(t *testing.T) {
	c := newInflight()
	c.add("a")
	c.add(sseCallKey("s1", json.RawMessage(` 1 `)))
	c.add(sseCallKey("s1", json.RawMessage(`"x"`)))
	done := make(chan error, 1)
	go func() { done <- c.wait(context.Background()) }()
	c.done("a")
	c.done(sseCallKey("s1", json.RawMessage(`1`)))
	select {
	case err := <-done:
		t.Fatalf("wait returned (%v) with a call in flight", err)
	default:
	}
	c.dropPrefix(sseCallKey("s1", nil))
	if err := <-done; err != nil || c.count() != 0 {
		t.Fatalf("wait: %v, %d left", err, c.count())
	}
	c.add("b")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.wait(ctx); err == nil {
		t.Fatal("wait ignored its context")
	}
}
