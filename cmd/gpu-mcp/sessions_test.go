package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"
)

// tableClock is a settable time for the session table.
type tableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *tableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *tableClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func testTable(max int, idle time.Duration) (*sessionTable, *tableClock, *[]string) {
	var ended []string
	c := &tableClock{now: time.Unix(1_700_000_000, 0)}
	t := newSessionTable(max, idle, func(id string) { ended = append(ended, id) })
	t.now = c.Now
	return t, c, &ended
}

func TestSessionTableEvictsTheLeastRecentlyUsed(t *testing.T) {
	tab, clk, ended := testTable(3, 0)
	a, b, c := tab.Generate(), tab.Generate(), tab.Generate()
	clk.add(time.Second)
	if _, err := tab.Validate(a); err != nil { // a is now the most recently used
		t.Fatal(err)
	}
	d := tab.Generate()
	if tab.known(b) || !tab.known(a) || !tab.known(c) || !tab.known(d) || tab.len() != 3 {
		t.Fatalf("after a fourth session: a %v b %v c %v d %v (%d live)", tab.known(a), tab.known(b), tab.known(c), tab.known(d), tab.len())
	}
	if len(*ended) != 1 || (*ended)[0] != b {
		t.Fatalf("ended %v, want [%s]", *ended, b)
	}
	if _, err := tab.Validate(b); err == nil || !strings.Contains(err.Error(), "GPU_MCP_MAX_SESSIONS") {
		t.Fatalf("an evicted id: %v", err)
	}
	if _, err := tab.Validate("mcp-session-made-up"); err == nil {
		t.Fatal("an id the table never issued was accepted")
	}
	if _, err := tab.Terminate(a); err != nil || tab.known(a) || len(*ended) != 1 {
		t.Fatalf("terminate: known %v, ended %v", tab.known(a), *ended)
	}
}

func TestSessionTableExpiresIdleSessionsButNotOpenStreams(t *testing.T) {
	tab, clk, ended := testTable(10, time.Minute)
	idle, streaming, busy := tab.Generate(), tab.Generate(), tab.Generate()
	var streamEnded atomic.Bool
	detach, ok := tab.attach(streaming, func() { streamEnded.Store(true) })
	if !ok {
		t.Fatal("attach to a live session refused")
	}
	clk.add(40 * time.Second)
	tab.touch(busy)
	clk.add(30 * time.Second) // idle and streaming: 70s unused; busy: 30s
	if _, err := tab.Validate(busy); err != nil {
		t.Fatal(err)
	}
	if tab.known(idle) || !tab.known(streaming) || !tab.known(busy) {
		t.Fatalf("idle %v streaming %v busy %v", tab.known(idle), tab.known(streaming), tab.known(busy))
	}
	if len(*ended) != 1 || (*ended)[0] != idle || streamEnded.Load() {
		t.Fatalf("ended %v, stream ended %v", *ended, streamEnded.Load())
	}
	// Once its stream is over, the session idles like any other.
	detach()
	clk.add(2 * time.Minute)
	tab.Generate()
	if tab.known(streaming) || tab.known(busy) {
		t.Fatal("sessions unused for 2m outlived an idle expiry of 1m")
	}
}

func TestSessionTableStreams(t *testing.T) {
	tab, _, ended := testTable(2, 0)
	s := tab.Generate()
	var first, second atomic.Bool
	detach1, _ := tab.attach(s, func() { first.Store(true) })
	detach2, _ := tab.attach(s, func() { second.Store(true) })
	if !first.Load() || second.Load() {
		t.Fatal("a second stream of a session must replace the first")
	}
	detach1() // the replaced stream's end leaves its successor in place
	var third atomic.Bool
	own, detachOwn := tab.openStream(func() { third.Store(true) })
	tab.Generate() // evicts s (least recently used) and its stream
	if !second.Load() || tab.known(s) {
		t.Fatal("evicting a session must end its stream")
	}
	detach2()
	if !tab.known(own) || third.Load() {
		t.Fatal("a stream's own session is evicted only in its turn")
	}
	detachOwn()
	if tab.known(own) || len(*ended) != 1 {
		t.Fatalf("a stream's own session outlived the stream (ended %v)", *ended)
	}
	if _, ok := tab.attach("mcp-session-unknown", func() {}); ok {
		t.Fatal("a stream of an unknown session was accepted")
	}
}

// TestSessionFloodStaysUnderTheCap opens 50,000 streamable HTTP sessions over loopback,
// concurrently (the figure of the issue, which measured 698 MB without a cap), and checks that
// mcp-go never holds many more than GPU_MCP_MAX_SESSIONS of them and that the heap stays
// within a bound computed from the cap. Under the race detector, which would take half a
// minute for them, it opens 5,000; `make test-go` runs it once more without, at 50,000.
func TestSessionFloodStaysUnderTheCap(t *testing.T) {
	const capSessions, workers = 1000, 16
	floodSessions := int64(50_000)
	if raceEnabled {
		floodSessions = 5_000
	}
	var live, peak atomic.Int64
	hooks := &server.Hooks{}
	hooks.AddOnRegisterSession(func(ctx context.Context, s server.ClientSession) {
		n := live.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
	})
	hooks.AddOnUnregisterSession(func(ctx context.Context, s server.ClientSession) { live.Add(-1) })
	app := &App{Server: server.NewMCPServer("flood", "1", server.WithHooks(hooks)), Log: zerolog.Nop()}
	nc, err := loadNetConfig(Config{Transport: "http", Addr: "127.0.0.1:0", AuthToken: testAuthToken}, map[string]string{"GPU_MCP_MAX_SESSIONS": fmt.Sprint(capSessions)})
	if err != nil {
		t.Fatal(err)
	}
	f := newFront(app, Config{Transport: "http", AuthToken: testAuthToken}, nc, io.Discard)
	ts := httptest.NewServer(f)
	defer ts.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	defer client.CloseIdleConnections()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	var next atomic.Int64
	var first, last atomic.Value
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= floodSessions; i = next.Add(1) {
				req, _ := http.NewRequest(http.MethodPost, ts.URL+"/mcp", strings.NewReader(initializeBody))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Accept", "application/json, text/event-stream")
				req.Header.Set("Authorization", "Bearer "+testAuthToken)
				res, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				id := res.Header.Get(server.HeaderKeySessionID)
				if res.StatusCode != http.StatusOK || id == "" {
					errs <- fmt.Errorf("initialize %d: status %d, session %q", i, res.StatusCode, id)
					return
				}
				if i == 1 {
					first.Store(id)
				}
				if i == floodSessions {
					last.Store(id)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	// A session registers after its initialize has been answered, and an evicted one is
	// released just after the eviction: each worker can hold one more for a moment.
	if p := peak.Load(); p > capSessions+workers {
		t.Errorf("%d sessions were live at once; the cap is %d (+%d initializes under way)", p, capSessions, workers)
	}
	if n := live.Load(); n > capSessions || f.sessions.len() > capSessions {
		t.Errorf("after the flood: %d sessions registered, %d in the table; the cap is %d", n, f.sessions.len(), capSessions)
	}
	// Without the cap, 50,000 sessions held 698 MB; 64 KiB for each allowed one is generous.
	const perSession = 64 << 10
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > capSessions*perSession {
		t.Errorf("the heap grew by %d MB over the flood; at most %d MB are allowed for %d sessions", grew>>20, capSessions*perSession>>20, capSessions)
	}
	t.Logf("%d sessions opened; at most %d live at once, %d now; heap %+d KB", floodSessions, peak.Load(), live.Load(), (int64(after.HeapAlloc)-int64(before.HeapAlloc))>>10)

	// The oldest session is gone, the newest works.
	for id, want := range map[string]int{first.Load().(string): http.StatusNotFound, last.Load().(string): http.StatusOK} {
		res, body := post(t, ts.URL+"/mcp", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, map[string]string{
			"Authorization": "Bearer " + testAuthToken, server.HeaderKeySessionID: id, "Mcp-Protocol-Version": "2025-11-25"})
		if res.StatusCode != want {
			t.Errorf("session %s: status %d, want %d: %s", id, res.StatusCode, want, body)
		}
	}
}

// TestEvictionEndsTheStreamOfASession opens a session's GET stream, then enough sessions to
// evict it: the stream ends, and its id is refused from then on.
func TestEvictionEndsTheStreamOfASession(t *testing.T) {
	f, ts := testFront(t, "http", testAuthToken, map[string]string{"GPU_MCP_MAX_SESSIONS": "2"})
	auth := map[string]string{"Authorization": "Bearer " + testAuthToken}
	res, _ := post(t, ts.URL+"/mcp", initializeBody, auth)
	id := res.Header.Get(server.HeaderKeySessionID)

	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/mcp", nil)
	req.Header.Set("Authorization", "Bearer "+testAuthToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set(server.HeaderKeySessionID, id)
	stream, err := http.DefaultClient.Do(req)
	if err != nil || stream.StatusCode != http.StatusOK {
		t.Fatalf("GET stream: %v %v", err, stream)
	}
	defer stream.Body.Close()
	ended := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, stream.Body); ended <- err }()

	for range 2 {
		post(t, ts.URL+"/mcp", initializeBody, auth)
	}
	select {
	case <-ended:
	case <-time.After(30 * time.Second): // only keeps a broken build from hanging
		t.Fatal("the stream of the evicted session did not end")
	}
	if f.sessions.known(id) {
		t.Fatal("the evicted session is still in the table")
	}
	req.Header.Set(server.HeaderKeySessionID, id)
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if again.StatusCode != http.StatusNotFound {
		t.Fatalf("a GET stream of an evicted session: %d, want 404", again.StatusCode)
	}
}

// TestSSEStreamsAreCapped opens one SSE stream more than GPU_MCP_MAX_SESSIONS: the oldest
// is closed, and a message to it is refused.
func TestSSEStreamsAreCapped(t *testing.T) {
	f, ts := testFront(t, "sse", testAuthToken, map[string]string{"GPU_MCP_MAX_SESSIONS": "3"})
	type stream struct {
		session string
		ended   chan struct{}
	}
	open := func() stream {
		req, _ := http.NewRequest(http.MethodGet, ts.URL+"/sse", nil)
		req.Header.Set("Authorization", "Bearer "+testAuthToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET /sse: %v %v", err, res)
		}
		t.Cleanup(func() { res.Body.Close() })
		r := bufio.NewReader(res.Body)
		s := stream{ended: make(chan struct{})}
		for s.session == "" {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("no endpoint event: %v", err)
			}
			if _, id, ok := strings.Cut(line, "sessionId="); ok {
				s.session = strings.TrimSpace(id)
			}
		}
		go func() { io.Copy(io.Discard, r); close(s.ended) }()
		return s
	}
	streams := []stream{open(), open(), open(), open()}
	select {
	case <-streams[0].ended:
	case <-time.After(30 * time.Second): // only keeps a broken build from hanging
		t.Fatal("the oldest stream did not end")
	}
	for i, s := range streams[1:] {
		select {
		case <-s.ended:
			t.Fatalf("stream %d ended; only the oldest must", i+1)
		default:
		}
	}
	if f.sessions.len() != 3 {
		t.Fatalf("%d streams in the table, cap 3", f.sessions.len())
	}
	auth := map[string]string{"Authorization": "Bearer " + testAuthToken}
	eventually(t, "the evicted session unregistered", func() bool {
		res, _ := post(t, ts.URL+"/message?sessionId="+streams[0].session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, auth)
		return res.StatusCode == http.StatusBadRequest
	})
	if res, body := post(t, ts.URL+"/message?sessionId="+streams[3].session, initializeBody, auth); res.StatusCode != http.StatusAccepted {
		t.Fatalf("a live stream's message: %d %s", res.StatusCode, body)
	}
}

// TestSlowBodyIsCut sends an authenticated POST whose body comes at one byte a second: the
// server answers 408 and closes the connection before the body is complete.
func TestSlowBodyIsCut(t *testing.T) {
	for _, transport := range []string{"http", "sse"} {
		t.Run(transport, func(t *testing.T) {
			f, ts := testFront(t, transport, testAuthToken, nil)
			f.nc.BodyTimeout = 500 * time.Millisecond // below the accepted range, to keep the test short
			path := map[string]string{"http": "/mcp", "sse": "/message?sessionId=x"}[transport]
			conn, err := net.Dial("tcp", ts.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const length = 60
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n",
				path, ts.Listener.Addr(), testAuthToken, length)
			var sent atomic.Int64
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(time.Second)
				defer tick.Stop()
				for range length {
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
					sent.Add(1)
					select {
					case <-tick.C:
					case <-stop:
						return
					}
				}
			}()
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer to a slow body: %v", err)
			}
			body, _ := io.ReadAll(res.Body) // ends when the server closes the connection
			if res.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(body), "GPU_MCP_BODY_TIMEOUT") {
				t.Fatalf("status %d %q, want 408 naming GPU_MCP_BODY_TIMEOUT", res.StatusCode, body)
			}
			if !res.Close {
				t.Error("the server keeps the connection of a body it gave up on")
			}
			if n := sent.Load(); n >= length {
				t.Fatalf("the whole body (%d bytes) was read; it should have been cut", n)
			}
			if _, err := conn.Read(make([]byte, 1)); err == nil {
				t.Fatal("the connection is still open")
			}
		})
	}
}
