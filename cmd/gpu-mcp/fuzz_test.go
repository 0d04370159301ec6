package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// fuzzFronts are one front per transport, shared by the inputs of a fuzzing process: token
// required, four sessions at most (so that inputs evict each other), no providers.
var fuzzFronts = sync.OnceValues(func() (map[bool]*front, error) {
	fronts := map[bool]*front{}
	for sse, transport := range map[bool]string{false: "http", true: "sse"} {
		cfg := Config{Transport: transport, Addr: "127.0.0.1:8080", AuthToken: testAuthToken, LogLevel: "error",
			ConfirmTTL: time.Minute, VendorTimeout: time.Second, StateURL: state.MemoryURL}
		nc, err := loadNetConfig(cfg, map[string]string{"GPU_MCP_MAX_SESSIONS": "4"})
		if err != nil {
			return nil, err
		}
		app, err := newApp(cfg, zerolog.Nop())
		if err != nil {
			return nil, err
		}
		fronts[sse] = newFront(app, cfg, nc, io.Discard)
	}
	return fronts, nil
})

// loopbackNames are the host names a front on 127.0.0.1 answers to without GPU_MCP_ALLOWED_HOSTS.
var loopbackNames = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}

func hostName(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		hostport = h
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(hostport, "[]")), ".")
}

// FuzzHTTPFront sends any request to the HTTP front of either transport: any method, path,
// Host, Origin, Authorization, session, protocol version and body. Whatever arrives: no panic;
// no 2xx, except from /healthz, without the right bearer token, for a foreign Host, or from a
// page on another host or port; no call left counted as in flight once its request is over;
// no more sessions than the cap.
func FuzzHTTPFront(f *testing.F) {
	auth := "Bearer " + testAuthToken
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"list_providers","arguments":{}}}`
	for _, s := range []struct {
		sse                                                        bool
		method, path, query, host, origin, authz, session, version string
		body                                                       string
	}{
		{false, "POST", "/mcp", "", "localhost:8080", "", auth, "", "", initializeBody},
		{false, "POST", "/mcp", "", "127.0.0.1:8080", "http://127.0.0.1:8080", auth, "mcp-session-x", "2025-11-25", call},
		{false, "POST", "/mcp", "", "localhost:8080", "", auth, "", "2026-07-28", call},
		{false, "POST", "/mcp", "", "localhost:8080", "", auth, "", "", "[" + call + "," + call + "]"},
		{false, "GET", "/mcp", "", "localhost:8080", "", auth, "", "", ""},
		{false, "GET", "/mcp", "", "localhost:8080", "", auth, "mcp-session-unknown", "", ""},
		{false, "DELETE", "/mcp", "", "localhost:8080", "", auth, "mcp-session-unknown", "", ""},
		{false, "POST", "/mcp", "", "evil.example:8080", "", auth, "", "", initializeBody},
		{false, "POST", "/mcp", "", "localhost:8080", "http://localhost:9999", auth, "", "", initializeBody},
		{false, "POST", "/mcp", "", "localhost:8080", "null", auth, "", "", initializeBody},
		{false, "POST", "/mcp", "", "localhost:8080", "", "Bearer " + testAuthToken + "x", "", "", initializeBody},
		{false, "POST", "/mcp", "", "localhost:8080", "", "bearer   " + testAuthToken + "  ", "", "", initializeBody},
		{false, "POST", "/mcp", "", "localhost:8080", "", "Basic " + testAuthToken, "", "", initializeBody},
		{false, "GET", "/healthz", "", "anything", "http://evil.example", "", "", "", ""},
		{false, "POST", "/mcp/../healthz", "", "localhost", "", "", "", "", ""},
		{false, "POST", "/mcp", "", "[::1]:8080", "http://[::1]:8080", auth, "", "", `{"jsonrpc":"2.0","id":7,"result":{"action":"accept"}}`},
		{true, "GET", "/sse", "", "localhost:8080", "", auth, "", "", ""},
		{true, "POST", "/message", "sessionId=", "localhost:8080", "", auth, "", "", call},
		{true, "POST", "/message", "sessionId=%00&sessionId=x", "localhost:8080", "", auth, "", "", call},
		{true, "POST", "/message", "sessionId=" + strings.Repeat("s", 300), "localhost:8080", "", auth, "", "", "[" + call + ",{\"id\":null,\"method\":\"x\"}]"},
		{true, "POST", "/message", "sessionId=x", "LOCALHOST.:8080", "HTTP://LOCALHOST:8080", auth, "", "", "{\"id\":[1,{}],\"method\":\"m\"}"},
		{true, "PUT", "/sse", "", "localhost", "", auth, "", "", "\x00\xff"},
	} {
		f.Add(s.sse, s.method, s.path, s.query, s.host, s.origin, s.authz, s.session, s.version, []byte(s.body))
	}
	fronts, err := fuzzFronts()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sse bool, method, path, query, host, origin, authz, session, version string, body []byte) {
		fr := fronts[sse]
		r := &http.Request{Method: method, URL: &url.URL{Path: path, RawQuery: query}, Host: host, Header: http.Header{},
			Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), RemoteAddr: "192.0.2.1:4242", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		for k, v := range map[string]string{"Origin": origin, "Authorization": authz, "Mcp-Session-Id": session, "Mcp-Protocol-Version": version} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Accept", "application/json, text/event-stream")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if method == http.MethodGet || method == "" {
			// A stream would last until the client leaves: this client leaves at once.
			cancel()
		}
		w := httptest.NewRecorder()
		fr.ServeHTTP(w, r.WithContext(ctx))

		if w.Code >= 200 && w.Code < 300 && path != "/healthz" {
			scheme, token, _ := strings.Cut(authz, " ")
			if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) != testAuthToken {
				t.Fatalf("%s %s: %d without the bearer token (Authorization %q)", method, path, w.Code, authz)
			}
			if !loopbackNames[hostName(host)] {
				t.Fatalf("%s %s: %d for the foreign Host %q", method, path, w.Code, host)
			}
			if origin != "" {
				u, err := url.Parse(origin)
				_, hostPort, _ := net.SplitHostPort(host)
				if err != nil || !loopbackNames[hostName(u.Host)] || (u.Port() != "" && hostPort != "" && u.Port() != hostPort) {
					t.Fatalf("%s %s: %d for the foreign Origin %q (Host %q)", method, path, w.Code, origin, host)
				}
			}
		}
		if n := fr.calls.count(); n != 0 {
			t.Fatalf("%s %s: %d calls still counted as in flight after the request ended", method, path, n)
		}
		if n := fr.sessions.len(); n > 4 {
			t.Fatalf("%d sessions live; the cap is 4", n)
		}
	})
}

func TestSSECallTrackingWithOddSessionIDs(t *testing.T) {
	f, ts := testFront(t, "sse", testAuthToken, nil)
	auth := map[string]string{"Authorization": "Bearer " + testAuthToken}
	call := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	for _, q := range []string{"", "sessionId=", "sessionId=%00", "sessionId=a%26b%0D%0A", "sessionId=" + strings.Repeat("%FF", 100), "sessionId=x&sessionId=y"} {
		res, body := post(t, ts.URL+"/message?"+q, call, auth)
		if res.StatusCode != http.StatusBadRequest || f.calls.count() != 0 {
			t.Errorf("?%s: status %d (%s), %d calls in flight; want 400 and none", q, res.StatusCode, body, f.calls.count())
		}
	}
	// The tracker reads only answers on a stream whose session it knows; the endpoint event,
	// whatever its session id, is not one.
	c := newInflight()
	c.add(sseCallKey("s1", []byte("1")))
	noSession := &sseTracker{ResponseWriter: httptest.NewRecorder(), calls: c, stream: &sseStream{}}
	for _, event := range []string{"event: endpoint\ndata: /message?sessionId=\r\n\r\n", "event: endpoint\ndata: /message?sessionId=&&\r\n\r\n", "data:", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"} {
		noSession.Write([]byte(event))
	}
	if c.count() != 1 {
		t.Fatal("a stream without a session ended a call")
	}
	tracker := &sseTracker{ResponseWriter: httptest.NewRecorder(), calls: c, stream: &sseStream{id: "s1"}}
	tracker.Write([]byte("event: endpoint\ndata: /message?sessionId=s1\r\n\r\n"))
	tracker.Write([]byte("event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n"))
	if c.count() != 0 {
		t.Fatal("the answer on the stream did not end its call")
	}
}
