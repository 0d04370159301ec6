package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"
)

// netConfig is the configuration only the network transports read.
type netConfig struct {
	// AllowedHosts are the host names (besides the loopback names) that a request's Host and
	// Origin headers may carry; "*" accepts any Host.
	AllowedHosts []string `env:"GPU_MCP_ALLOWED_HOSTS" envSeparator:","`
	// ShutdownTimeout bounds how long a stopping server waits for calls in flight.
	ShutdownTimeout time.Duration `env:"GPU_MCP_SHUTDOWN_TIMEOUT" envDefault:"25s"`

	anyHost bool
	hosts   map[string]bool
}

// minAuthTokenLen keeps a guessable bearer token from guarding money.
const minAuthTokenLen = 16

// maxRequestBody bounds one JSON-RPC message; the largest tool arguments are far smaller.
const maxRequestBody = 4 << 20

// loadNetConfig reads the network settings and refuses configurations that would expose the
// tools to whoever can reach the port.
func loadNetConfig(cfg Config, environ map[string]string) (netConfig, error) {
	var nc netConfig
	if err := env.ParseWithOptions(&nc, env.Options{Environment: environ}); err != nil {
		return nc, fmt.Errorf("configuration: %w", err)
	}
	if nc.ShutdownTimeout <= 0 {
		return nc, fmt.Errorf("GPU_MCP_SHUTDOWN_TIMEOUT %s is not accepted; use a positive duration such as 25s", nc.ShutdownTimeout)
	}
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nc, fmt.Errorf("--addr %q is not accepted; use host:port, e.g. 127.0.0.1:8080", cfg.Addr)
	}
	if cfg.AuthToken != "" && len(cfg.AuthToken) < minAuthTokenLen {
		return nc, fmt.Errorf("GPU_MCP_AUTH_TOKEN is too short; use at least %d random characters (e.g. openssl rand -hex 32)", minAuthTokenLen)
	}
	loopback := isLoopback(host)
	if !loopback && cfg.AuthToken == "" {
		return nc, fmt.Errorf("--addr %s is not a loopback address and GPU_MCP_AUTH_TOKEN is not set: anyone who can reach the port could spend money with your vendor keys; set GPU_MCP_AUTH_TOKEN, or listen on 127.0.0.1", cfg.Addr)
	}
	nc.hosts = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	for _, h := range nc.AllowedHosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case h == "*":
			nc.anyHost = true
		default:
			nc.hosts[hostOnly(h)] = true
		}
	}
	wildcard := host == "" || host == "0.0.0.0" || host == "::"
	if wildcard && !nc.anyHost && len(nc.hosts) == 3 {
		return nc, fmt.Errorf("--addr %s listens on every interface, so GPU_MCP_ALLOWED_HOSTS must name the host names clients use to reach this server (e.g. gpu-mcp.internal); each request's Host and Origin headers are checked against them to stop DNS rebinding; \"*\" accepts any Host", cfg.Addr)
	}
	if !wildcard && !loopback {
		nc.hosts[hostOnly(host)] = true
	}
	return nc, nil
}

// isLoopback reports whether a listen host only accepts connections from this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// hostOnly lowercases a Host header value or host name and drops its port and brackets.
func hostOnly(hostport string) string {
	h := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		h = host
	}
	return strings.TrimSuffix(strings.ToLower(strings.Trim(h, "[]")), ".")
}

// hostAllowed reports whether a Host header names this server.
func (nc *netConfig) hostAllowed(host string) bool {
	return nc.anyHost || nc.hosts[hostOnly(host)]
}

// originAllowed reports whether a browser page at origin may call this server. Clients that
// are not browsers send no Origin. "*" in GPU_MCP_ALLOWED_HOSTS relaxes the Host check only.
func (nc *netConfig) originAllowed(origin string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return nc.hosts[hostOnly(u.Host)]
}

// front is gpu-mcp's HTTP side: health, Host and Origin checks, bearer auth, and the MCP
// transport; it also knows which calls are in flight, so that a stopping server can let them
// finish.
type front struct {
	transport string
	nc        netConfig
	tokenHash *[32]byte
	log       zerolog.Logger

	streamable *server.StreamableHTTPServer
	mux        *http.ServeMux

	draining atomic.Bool
	calls    *inflight
	// streams ends the long-lived GET streams once the calls have finished.
	streams     context.Context
	stopStreams context.CancelFunc
	nextKey     atomic.Uint64
}

func newFront(app *App, cfg Config, nc netConfig, stderr io.Writer) *front {
	f := &front{transport: cfg.Transport, nc: nc, log: app.Log, calls: newInflight(), mux: http.NewServeMux()}
	if cfg.AuthToken != "" {
		h := sha256.Sum256([]byte(cfg.AuthToken))
		f.tokenHash = &h
	}
	f.streams, f.stopStreams = context.WithCancel(context.Background())
	// mcp-go's own DNS-rebinding check accepts only loopback names on loopback connections;
	// with hosts configured (a reverse proxy on this machine, say) ours, which is a superset
	// of it, decides alone.
	ownHostsOnly := !nc.anyHost && len(nc.hosts) == 3
	f.mux.HandleFunc("/healthz", f.health)
	switch cfg.Transport {
	case "http":
		f.streamable = server.NewStreamableHTTPServer(app.Server,
			server.WithEndpointPath("/mcp"),
			server.WithSessionIdleTTL(30*time.Minute),
			server.WithDisableLocalhostProtection(!ownHostsOnly),
			server.WithStreamableHTTPLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slogLevel(cfg.LogLevel)}))),
		)
		f.mux.Handle("/mcp", f.guard(f.trackStreamable(f.streamable)))
	case "sse":
		sse := server.NewSSEServer(app.Server,
			server.WithSSEEndpoint("/sse"),
			server.WithMessageEndpoint("/message"),
			server.WithKeepAliveInterval(30*time.Second),
			server.WithSSEDisableLocalhostProtection(!ownHostsOnly),
		)
		f.mux.Handle("/sse", f.guard(f.trackSSEStream(sse.SSEHandler())))
		f.mux.Handle("/message", f.guard(f.trackSSEMessage(sse.MessageHandler())))
	}
	return f
}

func slogLevel(level string) slog.Level {
	switch strings.ToLower(level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error", "disabled":
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	f.mux.ServeHTTP(sw, r)
	f.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Int("status", sw.status).
		Str("remote", r.RemoteAddr).Dur("took", time.Since(start)).Msg("http request")
}

// health answers load balancers without authentication, and says nothing but the state.
func (f *front) health(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if f.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"status":"draining"}`+"\n")
		return
	}
	io.WriteString(w, `{"status":"ok"}`+"\n")
}

// guard refuses requests from browsers on other sites (Host and Origin) and requests without
// the bearer token, before any MCP code sees them.
func (f *front) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.nc.hostAllowed(r.Host) {
			f.log.Warn().Str("host", r.Host).Str("remote", r.RemoteAddr).Msg("request refused: Host is not an allowed host name (GPU_MCP_ALLOWED_HOSTS)")
			http.Error(w, fmt.Sprintf("Forbidden: Host %q is not allowed", r.Host), http.StatusForbidden)
			return
		}
		if origin := r.Header.Get("Origin"); !f.nc.originAllowed(origin) {
			f.log.Warn().Str("origin", origin).Str("remote", r.RemoteAddr).Msg("request refused: Origin is not an allowed host name (GPU_MCP_ALLOWED_HOSTS)")
			http.Error(w, fmt.Sprintf("Forbidden: Origin %q is not allowed", origin), http.StatusForbidden)
			return
		}
		if f.tokenHash != nil {
			if ok, sent := f.authorized(r); !ok {
				challenge := `Bearer realm="gpu-mcp"`
				if sent {
					challenge += `, error="invalid_token"`
				}
				w.Header().Set("WWW-Authenticate", challenge)
				f.log.Info().Str("remote", r.RemoteAddr).Bool("token_sent", sent).Msg("request refused: missing or wrong bearer token")
				http.Error(w, "Unauthorized: send Authorization: Bearer <GPU_MCP_AUTH_TOKEN>", http.StatusUnauthorized)
				return
			}
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		next.ServeHTTP(w, r)
	})
}

// authorized compares the bearer token in constant time (of equal-length hashes, so that not
// even the length leaks); sent reports whether any bearer token came.
func (f *front) authorized(r *http.Request) (ok, sent bool) {
	scheme, token, found := strings.Cut(r.Header.Get("Authorization"), " ")
	if !found || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return false, false
	}
	h := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(h[:], f.tokenHash[:]) == 1, true
}

// rpcMessage is what the front needs to know of a JSON-RPC message.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// isCall reports whether m is a request that expects an answer (not a notification, nor the
// client's answer to a question of the server's).
func (m rpcMessage) isCall() bool {
	return m.Method != "" && len(m.ID) > 0 && string(m.ID) != "null"
}

// readMessages reads a POST body and puts it back for the transport; a body that is not
// JSON-RPC yields no messages and is left for the transport to refuse.
func readMessages(r *http.Request) ([]byte, []rpcMessage, error) {
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	trimmed := bytes.TrimSpace(body)
	var msgs []rpcMessage
	if len(trimmed) > 0 && trimmed[0] == '[' {
		_ = json.Unmarshal(trimmed, &msgs)
	} else {
		var m rpcMessage
		if json.Unmarshal(trimmed, &m) == nil {
			msgs = append(msgs, m)
		}
	}
	return body, msgs, nil
}

func hasCall(msgs []rpcMessage) bool {
	for _, m := range msgs {
		if m.isCall() {
			return true
		}
	}
	return false
}

// refuseDraining answers a new call on a stopping server, so that a load balancer retries it
// elsewhere.
func refuseDraining(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	w.Header().Set("Connection", "close")
	http.Error(w, "gpu-mcp is shutting down; retry on another replica or after the restart", http.StatusServiceUnavailable)
}

// trackStreamable counts the calls of streamable HTTP, where a call lives as long as its POST,
// and ends the GET streams when the server stops.
func (f *front) trackStreamable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
			_, msgs, err := readMessages(r)
			if err != nil {
				http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
				return
			}
			if hasCall(msgs) {
				if f.draining.Load() {
					refuseDraining(w)
					return
				}
				key := fmt.Sprintf("post-%d", f.nextKey.Add(1))
				f.calls.add(key)
				defer f.calls.done(key)
			}
			next.ServeHTTP(w, r)
		case http.MethodGet:
			if f.draining.Load() {
				refuseDraining(w)
				return
			}
			r, cleanup := f.endsWithServer(r)
			defer cleanup()
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// endsWithServer gives a long-lived stream a context that ends when the server stops; call
// cleanup when the stream is over.
func (f *front) endsWithServer(r *http.Request) (*http.Request, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(f.streams, cancel)
	return r.WithContext(ctx), func() { stop(); cancel() }
}

// The SSE transport answers a call on the session's GET stream, long after the POST that
// carried it returned 202; a call is in flight from its POST until its answer is written to
// the stream.

// trackSSEMessage records the calls posted to /message.
func (f *front) trackSSEMessage(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		body, msgs, err := readMessages(r)
		if err != nil {
			http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
			return
		}
		session := r.URL.Query().Get("sessionId")
		if hasCall(msgs) && f.draining.Load() {
			refuseDraining(w)
			return
		}
		var keys []string
		for _, m := range msgs {
			if m.isCall() {
				keys = append(keys, sseCallKey(session, m.ID))
				f.calls.add(keys[len(keys)-1])
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusAccepted {
			// Refused (unknown session, say): no answer will come on any stream.
			for _, k := range keys {
				f.calls.done(k)
			}
		}
	})
}

func sseCallKey(session string, id json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		b.Reset()
		b.Write(id)
	}
	return "sse-" + session + "\x00" + b.String()
}

// trackSSEStream watches a session's stream: each answer written to it ends a call, and when
// the stream ends, the calls it would have answered are given up.
func (f *front) trackSSEStream(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		if f.draining.Load() {
			refuseDraining(w)
			return
		}
		tw := &sseTracker{ResponseWriter: w, calls: f.calls}
		defer func() {
			if tw.session != "" {
				f.calls.dropPrefix(sseCallKey(tw.session, nil))
			}
		}()
		r, cleanup := f.endsWithServer(r)
		defer cleanup()
		next.ServeHTTP(tw, r)
	})
}

// sseTracker reads the events mcp-go writes to an SSE stream, one event per Write.
type sseTracker struct {
	http.ResponseWriter
	calls   *inflight
	session string
}

func (t *sseTracker) Write(p []byte) (int, error) {
	n, err := t.ResponseWriter.Write(p)
	event := string(p)
	if t.session == "" {
		if _, rest, ok := strings.Cut(event, "sessionId="); ok && strings.HasPrefix(event, "event: endpoint") {
			t.session = strings.TrimSpace(strings.FieldsFunc(rest, func(r rune) bool { return r == '&' || r == '\r' || r == '\n' })[0])
		}
		return n, err
	}
	if _, data, ok := strings.Cut(event, "data:"); ok {
		var m rpcMessage
		if json.Unmarshal([]byte(strings.TrimSpace(data)), &m) == nil && m.Method == "" && len(m.ID) > 0 {
			t.calls.done(sseCallKey(t.session, m.ID))
		}
	}
	return n, err
}

func (t *sseTracker) Flush() { http.NewResponseController(t.ResponseWriter).Flush() }

func (t *sseTracker) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// statusWriter remembers the status for the access log; it streams like the writer it wraps.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// inflight is the set of calls not yet answered.
type inflight struct {
	mu      sync.Mutex
	keys    map[string]bool
	changed chan struct{}
}

func newInflight() *inflight {
	return &inflight{keys: map[string]bool{}, changed: make(chan struct{})}
}

func (c *inflight) add(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys[key] = true
}

func (c *inflight) done(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys[key] {
		delete(c.keys, key)
		c.signal()
	}
}

func (c *inflight) dropPrefix(prefix string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.keys {
		if strings.HasPrefix(k, prefix) {
			delete(c.keys, k)
		}
	}
	c.signal()
}

// signal wakes the waiters; c.mu is held.
func (c *inflight) signal() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *inflight) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.keys)
}

// wait returns when no call is in flight, or with ctx's error.
func (c *inflight) wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		n, changed := len(c.keys), c.changed
		c.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// serveNetwork serves MCP over streamable HTTP or SSE until ctx ends, then stops gracefully:
// new calls are refused (and /healthz says so), calls in flight finish within
// GPU_MCP_SHUTDOWN_TIMEOUT, then the streams close and the listener with them.
func serveNetwork(ctx context.Context, app *App, cfg Config, nc netConfig, stderr io.Writer, stopSignals func()) int {
	f := newFront(app, cfg, nc, stderr)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "gpu-mcp: cannot listen on %s: %v\n", cfg.Addr, err)
		return 1
	}
	srv := &http.Server{
		Handler:           f,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(stderr, "gpu-mcp http: ", 0),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	endpoint := "/mcp"
	what := "streamable HTTP"
	if cfg.Transport == "sse" {
		endpoint, what = "/sse", "SSE"
	}
	addr := ln.Addr().String()
	app.Log.Info().Str("addr", addr).Str("url", "http://"+addr+endpoint).Bool("auth", f.tokenHash != nil).
		Strs("providers", app.Deps.Providers.Names()).Bool("demo", cfg.Demo).Msg("serving MCP over " + what)

	select {
	case err := <-served:
		app.Log.Error().Err(err).Msg("http server stopped")
		return 1
	case <-ctx.Done():
	}
	stopSignals() // a second signal ends the process at once
	f.draining.Store(true)
	app.Log.Info().Int("calls_in_flight", f.calls.count()).Dur("timeout", nc.ShutdownTimeout).
		Msg("shutting down: refusing new calls, finishing the ones in flight")
	deadline, cancel := context.WithTimeout(context.Background(), nc.ShutdownTimeout)
	defer cancel()
	status := 0
	if err := f.calls.wait(deadline); err != nil {
		app.Log.Warn().Int("calls_in_flight", f.calls.count()).Msg("shutdown deadline reached with calls still running; check list_instances for their outcome")
		status = 1
	}
	f.stopStreams()
	if f.streamable != nil {
		f.streamable.CloseSessions(deadline)
	}
	if err := srv.Shutdown(deadline); err != nil {
		app.Log.Warn().Err(err).Msg("connections still open at the shutdown deadline; closing them")
		srv.Close()
		status = 1
	}
	if f.streamable != nil {
		_ = f.streamable.Shutdown(deadline)
	}
	app.Log.Info().Msg("stopped")
	return status
}
