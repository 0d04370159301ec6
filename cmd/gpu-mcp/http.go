package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caarlos0/env/v11"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/tools"
)

// netConfig is the configuration only the network transports read.
type netConfig struct {
	// AllowedHosts are the host names (besides the loopback names) that a request's Host and
	// Origin headers may carry; "*" accepts any Host.
	AllowedHosts []string `env:"GPU_MCP_ALLOWED_HOSTS" envSeparator:","`
	// ShutdownTimeout bounds how long a stopping server waits for calls in flight.
	ShutdownTimeout time.Duration `env:"GPU_MCP_SHUTDOWN_TIMEOUT" envDefault:"25s"`
	// MaxSessions caps the live sessions (streamable HTTP) or streams (SSE); one more ends the
	// least recently used.
	MaxSessions int `env:"GPU_MCP_MAX_SESSIONS" envDefault:"1000"`
	// SessionIdle ends a streamable HTTP session unused this long (one with an open stream
	// stays).
	SessionIdle time.Duration `env:"GPU_MCP_SESSION_IDLE" envDefault:"10m"`
	// BodyTimeout bounds the reading of one request's body.
	BodyTimeout time.Duration `env:"GPU_MCP_BODY_TIMEOUT" envDefault:"10s"`

	anyHost bool
	hosts   map[string]bool
	// originPorts are the allowed hosts listed with a port, as "host:port": browser pages
	// there may call this server from another port.
	originPorts map[string]bool
}

// A bearer token guards money: it must be long and varied enough not to be guessed.
const (
	minAuthTokenLen      = 16
	minAuthTokenDistinct = 8
)

// checkAuthToken refuses bearer tokens that are easy to guess (short, or sixteen times the
// same character) and ones an Authorization header cannot carry intact.
func checkAuthToken(token string) error {
	const use = "use at least 16 random characters, e.g. openssl rand -hex 32"
	if len(token) < minAuthTokenLen {
		return fmt.Errorf("GPU_MCP_AUTH_TOKEN is too short (%d characters); %s", len(token), use)
	}
	distinct := map[rune]bool{}
	for _, c := range token {
		if unicode.IsSpace(c) || unicode.IsControl(c) || c == utf8.RuneError {
			return fmt.Errorf("GPU_MCP_AUTH_TOKEN holds a space, a control character or invalid UTF-8, which an Authorization header does not carry intact; %s", use)
		}
		distinct[c] = true
	}
	if len(distinct) < minAuthTokenDistinct {
		return fmt.Errorf("GPU_MCP_AUTH_TOKEN has only %d different characters, which makes it easy to guess; use %d or more: %s", len(distinct), minAuthTokenDistinct, use)
	}
	return nil
}

// maxRequestBody bounds one JSON-RPC message; the largest tool arguments are far smaller.
const maxRequestBody = 4 << 20

// loadNetConfig reads the network settings and refuses configurations that would expose the
// tools to whoever can reach the port.
func loadNetConfig(cfg Config, environ map[string]string) (netConfig, error) {
	var nc netConfig
	if err := env.ParseWithOptions(&nc, env.Options{Environment: environ}); err != nil {
		return nc, envError(err)
	}
	if nc.ShutdownTimeout <= 0 || nc.ShutdownTimeout > time.Hour {
		return nc, fmt.Errorf("GPU_MCP_SHUTDOWN_TIMEOUT %s is not accepted; use a duration from 1ns to 1h (default 25s)", nc.ShutdownTimeout)
	}
	if nc.MaxSessions < 1 || nc.MaxSessions > 1_000_000 {
		return nc, fmt.Errorf("GPU_MCP_MAX_SESSIONS %d is not accepted; use a whole number from 1 to 1000000 (default 1000)", nc.MaxSessions)
	}
	if nc.SessionIdle < 10*time.Second || nc.SessionIdle > 24*time.Hour {
		return nc, fmt.Errorf("GPU_MCP_SESSION_IDLE %s is not accepted; use a duration from 10s to 24h (default 10m)", nc.SessionIdle)
	}
	if nc.BodyTimeout < time.Second || nc.BodyTimeout > 10*time.Minute {
		return nc, fmt.Errorf("GPU_MCP_BODY_TIMEOUT %s is not accepted; use a duration from 1s to 10m (default 10s)", nc.BodyTimeout)
	}
	addr := cfg.name("addr", "GPU_MCP_ADDR")
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nc, fmt.Errorf("%s %q is not accepted; use host:port, e.g. 127.0.0.1:8080", addr, cfg.Addr)
	}
	if cfg.AuthToken != "" {
		if err := checkAuthToken(cfg.AuthToken); err != nil {
			return nc, err
		}
	}
	loopback := isLoopback(host)
	if !loopback && cfg.AuthToken == "" {
		return nc, fmt.Errorf("%s %s is not a loopback address and GPU_MCP_AUTH_TOKEN is not set: anyone who can reach the port could spend money with your vendor keys; set GPU_MCP_AUTH_TOKEN, or listen on 127.0.0.1", addr, cfg.Addr)
	}
	nc.hosts = map[string]bool{"localhost": true, "127.0.0.1": true, "::1": true}
	nc.originPorts = map[string]bool{}
	for _, h := range nc.AllowedHosts {
		h = strings.TrimSpace(h)
		switch {
		case h == "":
		case h == "*":
			nc.anyHost = true
		default:
			nc.hosts[hostOnly(h)] = true
			if _, port, err := net.SplitHostPort(h); err == nil && port != "" {
				nc.originPorts[net.JoinHostPort(hostOnly(h), port)] = true
			}
		}
	}
	wildcard := host == "" || host == "0.0.0.0" || host == "::"
	if wildcard && !nc.anyHost && len(nc.hosts) == 3 {
		return nc, fmt.Errorf("%s %s listens on every interface, so GPU_MCP_ALLOWED_HOSTS must name the host names clients use to reach this server (e.g. gpu-mcp.internal); each request's Host and Origin headers are checked against them to stop DNS rebinding; \"*\" accepts any Host", addr, cfg.Addr)
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

// defaultPorts are the ports an Origin without one means.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// originAllowed reports whether a browser page at origin may call this server, reached at
// host (the request's Host header). The page must be on an allowed host name and on the port
// the request came to: another port of localhost is another program, and another origin. An
// allowed host listed with its port admits pages on that port too. Clients that are not
// browsers send no Origin. "*" in GPU_MCP_ALLOWED_HOSTS relaxes the Host check only.
func (nc *netConfig) originAllowed(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || defaultPorts[u.Scheme] == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	name := hostOnly(u.Host)
	if !nc.hosts[name] {
		return false
	}
	port := u.Port()
	if port == "" {
		port = defaultPorts[u.Scheme]
	}
	if nc.originPorts[net.JoinHostPort(name, port)] {
		return true
	}
	_, hostPort, err := net.SplitHostPort(host)
	if err != nil || hostPort == "" {
		// A Host without a port came to the default port of the scheme the client used.
		return port == defaultPorts[u.Scheme]
	}
	return port == hostPort
}

// front is gpu-mcp's HTTP side: health, Host and Origin checks, bearer auth, bounded bodies,
// the table of live sessions, and the MCP transport; it also knows which calls are in flight,
// so that a stopping server can let them finish.
type front struct {
	transport string
	nc        netConfig
	tokenHash *[32]byte
	log       zerolog.Logger

	streamable *server.StreamableHTTPServer
	tasks      *tools.Tasks // answers the task requests before mcp-go sees them
	mux        *http.ServeMux
	sessions   *sessionTable

	draining atomic.Bool
	calls    *inflight
	// streams ends the long-lived GET streams once the calls have finished.
	streams     context.Context
	stopStreams context.CancelFunc
	nextKey     atomic.Uint64
}

func newFront(app *App, cfg Config, nc netConfig, stderr io.Writer) *front {
	f := &front{transport: cfg.Transport, nc: nc, log: app.Log, calls: newInflight(), mux: http.NewServeMux(), tasks: app.Tasks}
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
		// The table, not mcp-go's idle sweeper, expires sessions: it also caps them, and
		// refuses ids it does not know instead of keeping state for each one.
		f.sessions = newSessionTable(nc.MaxSessions, nc.SessionIdle, f.endStreamable)
		f.streamable = server.NewStreamableHTTPServer(app.Server,
			server.WithEndpointPath("/mcp"),
			server.WithSessionIdManager(f.sessions),
			server.WithDisableLocalhostProtection(!ownHostsOnly),
			server.WithStreamableHTTPLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slogLevel(cfg.LogLevel)}))),
		)
		f.mux.Handle("/mcp", f.guard(f.trackStreamable(f.streamable)))
	case "sse":
		// An SSE session lives as long as its stream: ending the stream ends it.
		f.sessions = newSessionTable(nc.MaxSessions, 0, nil)
		sse := server.NewSSEServer(app.Server,
			server.WithSSEEndpoint("/sse"),
			server.WithMessageEndpoint("/message"),
			server.WithKeepAliveInterval(30*time.Second),
			server.WithSSEDisableLocalhostProtection(!ownHostsOnly),
			server.WithSessionIDGenerator(f.sseSessionID),
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

// bodyHandler serves a request whose body the guard has read; r.Body reads it again.
type bodyHandler func(w http.ResponseWriter, r *http.Request, body []byte)

// guard refuses requests from browsers on other sites (Host and Origin), requests without
// the bearer token, and bodies too large or too slow, before any MCP code sees them.
func (f *front) guard(next bodyHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !f.nc.hostAllowed(r.Host) {
			f.log.Warn().Str("host", r.Host).Str("remote", r.RemoteAddr).Msg("request refused: Host is not an allowed host name (GPU_MCP_ALLOWED_HOSTS)")
			http.Error(w, fmt.Sprintf("Forbidden: Host %q is not allowed", r.Host), http.StatusForbidden)
			return
		}
		if origin := r.Header.Get("Origin"); !f.nc.originAllowed(origin, r.Host) {
			f.log.Warn().Str("origin", origin).Str("host", r.Host).Str("remote", r.RemoteAddr).Msg("request refused: Origin is not this server (its host name and port; GPU_MCP_ALLOWED_HOSTS)")
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
		body, ok := f.readBody(w, r)
		if !ok {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next(w, r, body)
	})
}

// readBody reads a request's body, maxRequestBody bytes at most, within GPU_MCP_BODY_TIMEOUT:
// a client that sends its body a byte at a time is cut off instead of holding a connection
// for as long as it likes. The server's ReadTimeout cannot do this: it also bounds the
// long-lived streams.
func (f *front) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil {
		return nil, true
	}
	rc := http.NewResponseController(w)
	deadline := rc.SetReadDeadline(time.Now().Add(f.nc.BodyTimeout)) == nil
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBody))
	if err == nil {
		if deadline {
			// A call or a stream may follow for long: the connection's background read,
			// which notices a client that hangs up, must not time out under it.
			_ = rc.SetReadDeadline(time.Time{})
		}
		return body, true
	}
	// The deadline stays: net/http would otherwise wait for the rest of the body before it
	// closes the connection.
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		http.Error(w, fmt.Sprintf("request body larger than %d bytes", maxRequestBody), http.StatusRequestEntityTooLarge)
	case errors.Is(err, os.ErrDeadlineExceeded):
		w.Header().Set("Connection", "close")
		http.Error(w, fmt.Sprintf("request body not received within %s (GPU_MCP_BODY_TIMEOUT)", f.nc.BodyTimeout), http.StatusRequestTimeout)
	default:
		http.Error(w, "request body unreadable", http.StatusBadRequest)
	}
	f.log.Info().Err(err).Str("remote", r.RemoteAddr).Int("read", len(body)).Msg("request refused: its body was too large, too slow or broken")
	return nil, false
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

// parseMessages reads the JSON-RPC messages of a POST body; a body that is not JSON-RPC
// yields none and is left for the transport to refuse.
func parseMessages(body []byte) []rpcMessage {
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
	return msgs
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
// puts the GET streams in the session table, and ends them when the server stops.
func (f *front) trackStreamable(next http.Handler) bodyHandler {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		switch r.Method {
		case http.MethodPost:
			if hasCall(parseMessages(body)) {
				if f.draining.Load() {
					refuseDraining(w)
					return
				}
				key := fmt.Sprintf("post-%d", f.nextKey.Add(1))
				f.calls.add(key)
				defer f.calls.done(key)
			}
			if answerTask(f.tasks, w, r, body) {
				return
			}
			next.ServeHTTP(w, r)
			// An initialize whose session was evicted before mcp-go registered it (a flood
			// of others came meanwhile) is ended now that it is registered.
			if id := w.Header().Get(server.HeaderKeySessionID); id != "" && !f.sessions.known(id) {
				f.endStreamable(id)
			}
		case http.MethodGet:
			if f.draining.Load() {
				refuseDraining(w)
				return
			}
			r, cancel, cleanup := f.endsWithServer(r)
			defer cleanup()
			// Protocol 2026-07-28 has no GET stream; mcp-go answers it.
			if !mcp.IsModernProtocol(r.Header.Get(mcp.HeaderProtocolVersion)) {
				detach, ok := f.openStreamable(w, r, cancel)
				if !ok {
					http.Error(w, "Invalid session ID: "+errUnknownSession.Error(), http.StatusNotFound)
					return
				}
				defer detach()
			}
			next.ServeHTTP(w, r)
		default:
			next.ServeHTTP(w, r)
		}
	}
}

// openStreamable puts a GET stream, which cancel ends, in the session table: as the stream
// of its session, or, without a session id, as a session of its own that ends with it.
func (f *front) openStreamable(w http.ResponseWriter, r *http.Request, cancel context.CancelFunc) (detach func(), ok bool) {
	id := r.Header.Get(server.HeaderKeySessionID)
	if id != "" {
		return f.sessions.attach(id, cancel)
	}
	id, detach = f.sessions.openStream(cancel)
	r.Header.Set(server.HeaderKeySessionID, id)
	w.Header().Set(server.HeaderKeySessionID, id)
	return detach, true
}

// endStreamable releases mcp-go's state of a session the table dropped, as its client's
// DELETE would: mcp-go offers no other way in to a session's state.
func (f *front) endStreamable(id string) {
	r := &http.Request{Method: http.MethodDelete, URL: &url.URL{Path: "/mcp"}, Host: "localhost",
		Header: http.Header{server.HeaderKeySessionID: {id}}}
	f.streamable.ServeHTTP(discardResponse(http.Header{}), r)
}

// discardResponse is a ResponseWriter for requests the front makes itself.
type discardResponse http.Header

func (d discardResponse) Header() http.Header       { return http.Header(d) }
func (discardResponse) Write(p []byte) (int, error) { return len(p), nil }
func (discardResponse) WriteHeader(int)             {}

// endsWithServer gives a long-lived stream a context that ends when the server stops or
// cancel is called; call cleanup when the stream is over.
func (f *front) endsWithServer(r *http.Request) (*http.Request, context.CancelFunc, func()) {
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(f.streams, cancel)
	return r.WithContext(ctx), cancel, func() { stop(); cancel() }
}

// The SSE transport answers a call on the session's GET stream, long after the POST that
// carried it returned 202; a call is in flight from its POST until its answer is written to
// the stream.

// trackSSEMessage records the calls posted to /message.
func (f *front) trackSSEMessage(next http.Handler) bodyHandler {
	return func(w http.ResponseWriter, r *http.Request, body []byte) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		msgs := parseMessages(body)
		session := r.URL.Query().Get("sessionId")
		if hasCall(msgs) && f.draining.Load() {
			refuseDraining(w)
			return
		}
		f.sessions.touch(session)
		var keys []string
		for _, m := range msgs {
			if m.isCall() {
				keys = append(keys, sseCallKey(session, m.ID))
				f.calls.add(keys[len(keys)-1])
			}
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusAccepted {
			// Refused (unknown session, say): no answer will come on any stream.
			for _, k := range keys {
				f.calls.done(k)
			}
		}
	}
}

func sseCallKey(session string, id json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, id) != nil {
		b.Reset()
		b.Write(id)
	}
	return "sse-" + session + "\x00" + b.String()
}

// sseStream is an SSE stream the front is serving: the session table learns its session as
// mcp-go opens it (sseSessionID).
type sseStream struct {
	cancel context.CancelFunc
	id     string
	detach func()
}

type sseStreamKey struct{}

// sseSessionID starts the session of the SSE stream being opened in ctx, in the session
// table; mcp-go calls it from the stream's handler.
func (f *front) sseSessionID(ctx context.Context, _ *http.Request) (string, error) {
	st, ok := ctx.Value(sseStreamKey{}).(*sseStream)
	if !ok {
		return "", errors.New("an SSE stream that did not pass the front")
	}
	st.id, st.detach = f.sessions.openStream(st.cancel)
	return st.id, nil
}

// trackSSEStream watches a session's stream: each answer written to it ends a call, and when
// the stream ends, the calls it would have answered are given up.
func (f *front) trackSSEStream(next http.Handler) bodyHandler {
	return func(w http.ResponseWriter, r *http.Request, _ []byte) {
		if r.Method != http.MethodGet {
			next.ServeHTTP(w, r)
			return
		}
		if f.draining.Load() {
			refuseDraining(w)
			return
		}
		r, cancel, cleanup := f.endsWithServer(r)
		defer cleanup()
		st := &sseStream{cancel: cancel}
		r = r.WithContext(context.WithValue(r.Context(), sseStreamKey{}, st))
		defer func() {
			if st.detach != nil {
				st.detach()
				f.calls.dropPrefix(sseCallKey(st.id, nil))
			}
		}()
		next.ServeHTTP(&sseTracker{ResponseWriter: w, calls: f.calls, stream: st}, r)
	}
}

// sseTracker reads the events mcp-go writes to an SSE stream, one event per Write, from the
// stream's handler goroutine (which also set its session id).
type sseTracker struct {
	http.ResponseWriter
	calls  *inflight
	stream *sseStream
}

func (t *sseTracker) Write(p []byte) (int, error) {
	n, err := t.ResponseWriter.Write(p)
	if t.stream.id == "" {
		return n, err
	}
	if _, data, ok := strings.Cut(string(p), "data:"); ok {
		var m rpcMessage
		if json.Unmarshal([]byte(strings.TrimSpace(data)), &m) == nil && m.Method == "" && len(m.ID) > 0 {
			t.calls.done(sseCallKey(t.stream.id, m.ID))
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
