package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// httpClient is one streamable HTTP client: its own session and its own kept-alive TCP
// connection, written to with requests prepared once; of an answer it reads the status, the
// few headers that frame the body, and the body to its end into a reused buffer.
type httpClient struct {
	addr, auth string
	session    string
	timeout    time.Duration
	conn       net.Conn
	br         *bufio.Reader
	body       bytes.Buffer
}

// newHTTPClient connects to addr and initializes a session.
func newHTTPClient(addr, auth string, timeout time.Duration) (*httpClient, error) {
	c := &httpClient{addr: addr, auth: auth, timeout: timeout}
	if err := c.initialize(); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *httpClient) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
	if err != nil {
		return err
	}
	c.conn = conn
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 64<<10)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

func (c *httpClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// prepare is the whole text of a POST of body to /mcp, with this client's session.
func (c *httpClient) prepare(body []byte) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST /mcp HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Accept: application/json, text/event-stream\r\nMcp-Protocol-Version: %s\r\n", c.addr, protocolVersion)
	if c.auth != "" {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", c.auth)
	}
	if c.session != "" {
		fmt.Fprintf(&b, "Mcp-Session-Id: %s\r\n", c.session)
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	return b.Bytes()
}

// errStale marks a failure on a kept-alive connection before any answer came: the server
// closed it while it was idle (node does after 5 s), and the request can be sent again.
var errStale = errors.New("connection closed while idle")

// do sends a prepared request and reads the whole answer. The body stays valid until the next
// do. A request that fails on a reused connection before any answer is sent once more on a new
// one; every request the harness repeats is a read.
func (c *httpClient) do(req []byte) (response, error) {
	for attempt := 0; ; attempt++ {
		reused := c.conn != nil
		if !reused {
			if err := c.dial(); err != nil {
				return response{}, err
			}
		}
		resp, err := c.roundTrip(req)
		if err == nil {
			return resp, nil
		}
		c.close()
		if !reused || attempt > 0 || !errors.Is(err, errStale) {
			return response{}, err
		}
	}
}

func (c *httpClient) roundTrip(req []byte) (response, error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return response{}, err
	}
	if _, err := c.conn.Write(req); err != nil {
		return response{}, fmt.Errorf("%w: %w", errStale, err)
	}
	resp, err := readResponse(c.br, &c.body)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return response{}, fmt.Errorf("no answer within %s", c.timeout)
	}
	if err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
			return response{}, fmt.Errorf("%w: %w", errStale, err)
		}
		return response{}, err
	}
	if resp.close {
		c.close()
	}
	return resp, nil
}

// initialize runs the MCP handshake and keeps the session id the server gives.
func (c *httpClient) initialize() error {
	resp, err := c.do(c.prepare(request(firstID, "initialize", initializeParams)))
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("initialize: HTTP %d: %s", resp.status, clip(resp.body))
	}
	msg, err := sseMessage(resp.body, firstID)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	if _, err := fullCheck(msg); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	c.session = resp.session
	if c.session == "" {
		return errors.New("initialize: the answer has no Mcp-Session-Id header")
	}
	resp, err = c.do(c.prepare(initializedNotification))
	if err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	if resp.status/100 != 2 {
		return fmt.Errorf("notifications/initialized: HTTP %d: %s", resp.status, clip(resp.body))
	}
	return nil
}

// check sends a prepared request of id and decodes its answer fully (once per scenario).
func (c *httpClient) check(req []byte, id int64) error {
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.status, clip(resp.body))
	}
	msg, err := sseMessage(resp.body, id)
	if err != nil {
		return err
	}
	_, err = fullCheck(msg)
	return err
}

// call sends a prepared request and checks its answer cheaply: the status, and no tool error
// in the body, JSON or SSE alike.
func (c *httpClient) call(req []byte) error {
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	if resp.status != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.status, clip(resp.body))
	}
	if isToolError(resp.body) {
		return fmt.Errorf("tool error: %s", clip(resp.body))
	}
	return nil
}

// loadResult is one load run: calls per second, and the CPU time the harness and the server
// used during it, which says whose work bounds the figure.
type loadResult struct {
	calls                int64
	elapsed              time.Duration
	clientCPU, serverCPU time.Duration
}

func (r loadResult) perSecond() float64 { return float64(r.calls) / r.elapsed.Seconds() }

// serverCPUPerCall is the server's CPU time per call in µs: its cost, whoever the client.
func (r loadResult) serverCPUPerCall() float64 {
	return float64(r.serverCPU) / float64(time.Microsecond) / float64(r.calls)
}

// clientShare is the harness's part of the CPU time both sides used.
func (r loadResult) clientShare() float64 {
	if total := r.clientCPU + r.serverCPU; total > 0 {
		return float64(r.clientCPU) / float64(total)
	}
	return 0
}

// clientWarm is how many untimed calls each client makes before a load run, so that every
// client is connected and under way when the clock starts.
const clientWarm = 3

// runLoad has every client send its request (reqs[i] for clients[i]) in a loop: clientWarm
// calls each, then, all together, as many as fit in d. A call started before the end is counted, and
// the time runs until the last one ends. The first failure stops every client.
func runLoad(p *proc, clients []*httpClient, reqs [][]byte, d time.Duration) (loadResult, error) {
	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		end         time.Time
		failed      atomic.Bool
		errs        = make([]error, len(clients))
		counts      = make([]int64, len(clients))
	)
	for i, c := range clients {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			var err error
			for range clientWarm {
				if err = c.call(reqs[i]); err != nil {
					break
				}
			}
			ready.Done()
			<-start
			for err == nil && !failed.Load() && time.Now().Before(end) {
				if err = c.call(reqs[i]); err == nil {
					counts[i]++
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("client %d: %w", i+1, err)
				failed.Store(true)
			}
		}()
	}
	ready.Wait()
	serverCPU0, err := p.cpu()
	if err != nil {
		return loadResult{}, err
	}
	clientCPU0 := selfCPU()
	t0 := time.Now()
	end = t0.Add(d)
	close(start)
	done.Wait()
	r := loadResult{elapsed: time.Since(t0), clientCPU: selfCPU() - clientCPU0}
	if err := firstError(errs); err != nil {
		return loadResult{}, err
	}
	serverCPU1, err := p.cpu()
	if err != nil {
		return loadResult{}, err
	}
	r.serverCPU = serverCPU1 - serverCPU0
	for _, n := range counts {
		r.calls += n
	}
	return r, nil
}

// firstError is the first of errs that is not nil, saying how many others failed too.
func firstError(errs []error) error {
	var first error
	others := 0
	for _, err := range errs {
		switch {
		case err == nil:
		case first == nil:
			first = err
		default:
			others++
		}
	}
	if others > 0 {
		return fmt.Errorf("%w (and %d other clients failed)", first, others)
	}
	return first
}

// clientsString is "1 client" or "N clients".
func clientsString(n int) string {
	if n == 1 {
		return "1 client"
	}
	return strconv.Itoa(n) + " clients"
}
