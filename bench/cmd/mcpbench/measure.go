package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// levels are the numbers of concurrent HTTP clients measured.
var levels = []int{1, 8, 64}

// grace is how long a server may take to exit once asked before it is killed.
const grace = 5 * time.Second

// timeCalls runs f n times and returns the mean time of one run, in ms.
func timeCalls(n int, f func() error) (float64, error) {
	t0 := time.Now()
	for range n {
		if err := f(); err != nil {
			return 0, err
		}
	}
	return ms(time.Since(t0)) / float64(n), nil
}

// repeat runs f n times.
func repeat(n int, f func() error) error {
	for range n {
		if err := f(); err != nil {
			return err
		}
	}
	return nil
}

// measureStdio starts s over stdio and measures the start-up, tools/list, each tool call and
// the peak RSS.
func measureStdio(o options, s server, m samples) error {
	p, err := spawn(s.name, s.stdio)
	if err != nil {
		return err
	}
	defer p.stop(grace)
	fail := func(what string, err error) error {
		return fmt.Errorf("%s over stdio: %s: %w%s", s.name, what, err, p.describe())
	}
	c := newStdioClient(p, o.timeout)
	if err := c.initialize(); err != nil {
		return fail("start", err)
	}
	m.add(metric{kind: startStdio}, ms(c.initialized.Sub(p.started)))

	list := func() error {
		msg, err := c.call("tools/list", nil)
		if err == nil {
			err = quickCheck(msg)
		}
		return err
	}
	msg, err := c.call("tools/list", nil)
	if err != nil {
		return fail("tools/list", err)
	}
	tools, err := fullCheck(msg)
	if err != nil {
		return fail("tools/list", err)
	}
	m.add(metric{kind: listTools}, float64(tools))
	m.add(metric{kind: listBytes}, float64(len(msg)))
	if err := repeat(o.warm, list); err != nil {
		return fail("tools/list", err)
	}
	mean, err := timeCalls(o.listCalls, list)
	if err != nil {
		return fail("tools/list", err)
	}
	m.add(metric{kind: listTime}, mean)

	for i, tc := range s.calls {
		params := toolCallParams(tc.tool, tc.args)
		call := func() error {
			msg, err := c.call("tools/call", params)
			if err == nil {
				err = quickCheck(msg)
			}
			return err
		}
		msg, err := c.call("tools/call", params)
		if err == nil {
			_, err = fullCheck(msg)
		}
		if err == nil {
			err = repeat(o.warm, call)
		}
		if err != nil {
			return fail(tc.label, err)
		}
		mean, err := timeCalls(o.calls, call)
		if err != nil {
			return fail(tc.label, err)
		}
		m.add(metric{kind: callTime, call: i}, mean)
	}

	mem, err := p.memory()
	if err != nil {
		return fail("peak RSS", err)
	}
	m.add(metric{kind: rssStdio}, mib(mem.hwm))
	return nil
}

// startHTTPServer starts s over HTTP and connects n clients, each with its own session and
// connection. It returns when the first has its initialize answer.
func startHTTPServer(o options, s server, n int) (*proc, []*httpClient, time.Duration, error) {
	l, err := s.http()
	if err != nil {
		return nil, nil, 0, err
	}
	p, err := spawn(s.name, l)
	if err != nil {
		return nil, nil, 0, err
	}
	fail := func(what string, err error) (*proc, []*httpClient, time.Duration, error) {
		err = fmt.Errorf("%s over HTTP: %s: %w%s", s.name, what, err, p.describe())
		p.stop(grace)
		return nil, nil, 0, err
	}
	addr, err := p.waitAddr(o.timeout)
	if err != nil {
		return fail("start", err)
	}
	first, err := newHTTPClient(addr, s.auth, o.timeout)
	if err != nil {
		return fail("start", err)
	}
	startup := time.Since(p.started)
	clients := []*httpClient{first}
	for len(clients) < n {
		c, err := newHTTPClient(addr, s.auth, o.timeout)
		if err != nil {
			closeAll(clients)
			return fail(fmt.Sprintf("session %d of %d", len(clients)+1, n), err)
		}
		clients = append(clients, c)
	}
	return p, clients, startup, nil
}

func closeAll(clients []*httpClient) {
	for _, c := range clients {
		c.close()
	}
}

// prepareCalls prepares the tools/call of tc for each client and checks it once, fully.
func prepareCalls(clients []*httpClient, tc toolCall) ([][]byte, error) {
	body := request(firstID+1, "tools/call", toolCallParams(tc.tool, tc.args))
	reqs := make([][]byte, len(clients))
	for i, c := range clients {
		reqs[i] = c.prepare(body)
	}
	return reqs, clients[0].check(reqs[0], firstID+1)
}

// measureHTTP starts s over streamable HTTP and measures the start-up, then, after o.httpWarmup
// of load, calls per second at each level of concurrency for each tool call, and the peak RSS
// after all of it.
func measureHTTP(o options, s server, m samples) error {
	p, clients, startup, err := startHTTPServer(o, s, slices.Max(levels))
	if err != nil {
		return err
	}
	defer p.stop(grace)
	defer closeAll(clients)
	fail := func(what string, err error) error {
		return fmt.Errorf("%s over HTTP: %s: %w%s", s.name, what, err, p.describe())
	}
	m.add(metric{kind: startHTTP}, ms(startup))
	if o.httpWarmup > 0 {
		reqs, err := prepareCalls(clients, s.calls[0])
		if err == nil {
			_, err = runLoad(p, clients, reqs, o.httpWarmup)
		}
		if err != nil {
			return fail("warm-up with "+s.calls[0].label, err)
		}
	}
	for i, tc := range s.calls {
		reqs, err := prepareCalls(clients, tc)
		if err != nil {
			return fail(tc.label, err)
		}
		for _, n := range levels {
			r, err := runLoad(p, clients[:n], reqs[:n], o.duration)
			if err != nil {
				return fail(fmt.Sprintf("%s with %s", tc.label, clientsString(n)), err)
			}
			m.add(metric{kind: callsPerSec, call: i, clients: n}, r.perSecond())
			m.add(metric{kind: clientShare, call: i, clients: n}, r.clientShare())
			m.add(metric{kind: serverCPU, call: i, clients: n}, r.serverCPUPerCall())
		}
	}
	mem, err := p.memory()
	if err != nil {
		return fail("peak RSS", err)
	}
	m.add(metric{kind: rssHTTP}, mib(mem.hwm))
	return nil
}

// fanOutResult is list_gpu_offers against emulators that answer late: each vendor alone, then
// all three, the median of o.fanCalls calls each.
type fanOutResult struct {
	alone []time.Duration // in the order of vendorNames
	all   time.Duration
}

// vendorNames are the vendors of the list; the nth gets (n+1)*100ms of latency.
var vendorNames = vendors.Names()

var fanLatency = func() string {
	pairs := make([]string, len(vendorNames))
	for i, v := range vendorNames {
		pairs[i] = fmt.Sprintf("%s=%dms", v, 100*(i+1))
	}
	return strings.Join(pairs, ",")
}()

// fanOut measures how gpu-mcp asks the three vendors: concurrently, the call takes as long as
// the slowest vendor; one after another, as long as their sum.
func fanOut(o options, s server) (*fanOutResult, error) {
	l := s.stdio
	l.env = append(append([]string(nil), l.env...), "GPU_MCP_OFFER_CACHE_TTL=0", "GPU_MCP_DEMO_LATENCY="+fanLatency)
	p, err := spawn(s.name, l)
	if err != nil {
		return nil, err
	}
	defer p.stop(grace)
	c := newStdioClient(p, o.timeout)
	if err := c.initialize(); err != nil {
		return nil, fmt.Errorf("fan-out: %w%s", err, p.describe())
	}
	median := func(args string) (time.Duration, error) {
		params := toolCallParams("list_gpu_offers", args)
		var ds []float64
		for i := range o.fanCalls + 1 {
			t0 := time.Now()
			msg, err := c.call("tools/call", params)
			if err == nil && i == 0 {
				_, err = fullCheck(msg)
			}
			if err != nil {
				return 0, fmt.Errorf("fan-out: list_gpu_offers %s: %w%s", args, err, p.describe())
			}
			if i > 0 { // the first call opens the connections to the emulators
				ds = append(ds, float64(time.Since(t0)))
			}
		}
		return time.Duration(summarize(ds).median), nil
	}
	r := &fanOutResult{}
	for _, v := range vendorNames {
		d, err := median(`{"provider":"` + v + `","limit":20}`)
		if err != nil {
			return nil, err
		}
		r.alone = append(r.alone, d)
	}
	if r.all, err = median(`{"limit":20}`); err != nil {
		return nil, err
	}
	return r, nil
}
