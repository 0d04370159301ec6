// Command mcpbench measures a built gpu-mcp binary from the outside, as an MCP client sees it,
// over stdio and streamable HTTP, next to the reference server
// @modelcontextprotocol/server-everything run with node, and prints a table. `make bench`
// runs it; see BENCHMARKS.md.
//
// It measures: the time from process start to the initialize answer; tools/list latency;
// tools/call latency (gpu-mcp: list_gpu_offers with the offer cache warm, and cold with
// GPU_MCP_OFFER_CACHE_TTL=0; the reference: its echo tool); throughput with 1, 8 and 64
// concurrent clients over HTTP; the peak RSS of the server processes (VmHWM); and the
// concurrent offer fan-out across the three demo emulators with GPU_MCP_DEMO_LATENCY.
// Everything runs on loopback against gpu-mcp's --demo emulators.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/vendors"
)

type options struct {
	bin, node, ref string
	starts, calls  int
	fanCalls       int
	dur            time.Duration
	skipRef        bool
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gpu-mcp", "the gpu-mcp binary to measure")
	flag.StringVar(&o.node, "node", "node", "the node binary that runs the reference server")
	flag.StringVar(&o.ref, "ref", "bench/node_modules/@modelcontextprotocol/server-everything/dist/index.js", "the reference server's entry point")
	flag.IntVar(&o.starts, "starts", 5, "process starts per start-up measurement (the median is shown)")
	flag.IntVar(&o.calls, "calls", 200, "calls per latency measurement")
	flag.IntVar(&o.fanCalls, "fan-calls", 7, "calls per fan-out measurement (each takes up to a second)")
	flag.DurationVar(&o.dur, "duration", 3*time.Second, "how long each throughput measurement runs")
	flag.BoolVar(&o.skipRef, "skip-ref", false, "measure gpu-mcp only")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "mcpbench:", err)
		os.Exit(1)
	}
}

// target is one way of starting a server: gpu-mcp or the reference, stdio or HTTP.
type target struct {
	name      string
	transport string // "stdio" or "http"
	start     func(ctx context.Context, env ...string) (*proc, error)
	listTool  string // the tool call measured
	listArgs  map[string]any
}

// proc is a started server process with an initialized client.
type proc struct {
	cmd     *exec.Cmd
	c       *client.Client
	initDur time.Duration                  // from process start to the initialize answer
	connect func() (*client.Client, error) // another session (HTTP only)
	done    chan struct{}                  // closed when the process has exited
}

// peakRSS is the process's VmHWM in MiB (0 when unknown).
func (p *proc) peakRSS() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// stop closes the client and ends the process: stdin closed (stdio) or SIGINT (HTTP), then
// SIGKILL if it lingers.
func (p *proc) stop() {
	p.c.Close()
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func initialize(ctx context.Context, c *client.Client) error {
	if err := c.Start(ctx); err != nil {
		return err
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "mcpbench", Version: "1"}
	_, err := c.Initialize(ctx, req)
	return err
}

// spawn starts name with args and env; lines of its stderr and stdout (when not used for
// MCP) go to watch, which may return an address to connect to.
func spawn(name string, args, env []string, stdio bool, watch func(line string)) (*exec.Cmd, io.WriteCloser, io.Reader, chan struct{}, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdin io.WriteCloser
	var stdout io.Reader
	var err error
	if stdio {
		if stdin, err = cmd.StdinPipe(); err != nil {
			return nil, nil, nil, nil, err
		}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, nil, nil, nil, err
	}
	var otherOut io.Reader
	if !stdio {
		if otherOut, err = cmd.StdoutPipe(); err != nil {
			return nil, nil, nil, nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, nil, nil, err
	}
	var wg sync.WaitGroup
	for _, r := range []io.Reader{stderr, otherOut} {
		if r == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(r)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				if watch != nil {
					watch(sc.Text())
				}
			}
			_, _ = io.Copy(io.Discard, r)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); _ = cmd.Wait(); close(done) }()
	return cmd, stdin, stdout, done, nil
}

// startStdio starts a server speaking MCP on stdin/stdout and initializes a client.
func startStdio(ctx context.Context, name string, args, env []string) (*proc, error) {
	t0 := time.Now()
	cmd, stdin, stdout, done, err := spawn(name, args, env, true, nil)
	if err != nil {
		return nil, err
	}
	c := client.NewClient(transport.NewIO(stdout, stdin, io.NopCloser(strings.NewReader(""))))
	p := &proc{cmd: cmd, c: c, done: done}
	if err := initialize(ctx, c); err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s: initialize over stdio: %w", name, err)
	}
	p.initDur = time.Since(t0)
	return p, nil
}

// startHTTP starts a server that says its address on a log line (addrOf finds it there),
// connects to url(addr) with headers and initializes a client.
func startHTTP(ctx context.Context, name string, args, env []string, addrOf func(string) string, url func(string) string, headers map[string]string) (*proc, error) {
	addrc := make(chan string, 1)
	var once sync.Once
	t0 := time.Now()
	cmd, _, _, done, err := spawn(name, args, env, false, func(line string) {
		if a := addrOf(line); a != "" {
			once.Do(func() { addrc <- a })
		}
	})
	if err != nil {
		return nil, err
	}
	var addr string
	select {
	case addr = <-addrc:
	case <-done:
		return nil, fmt.Errorf("%s exited before it listened", name)
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s did not say where it listens within 30s", name)
	}
	connect := func() (*client.Client, error) {
		c, err := client.NewStreamableHttpClient(url(addr), transport.WithHTTPHeaders(headers))
		if err != nil {
			return nil, err
		}
		if err := initialize(ctx, c); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	c, err := connect()
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("%s: initialize over HTTP: %w", name, err)
	}
	return &proc{cmd: cmd, c: c, initDur: time.Since(t0), connect: connect, done: done}, nil
}

var gpuAddrRE = regexp.MustCompile(`serving MCP over streamable HTTP.*\baddr=(\S+)`)

func gpuMCPTargets(o options, token string) []target {
	base := []string{"GPU_MCP_DEMO_STEP_DELAY=10ms"}
	offers := map[string]any{"limit": 20}
	return []target{
		{name: "gpu-mcp", transport: "stdio", listTool: "list_gpu_offers", listArgs: offers,
			start: func(ctx context.Context, env ...string) (*proc, error) {
				return startStdio(ctx, o.bin, []string{"--demo", "--log-level", "info"}, append(base, env...))
			}},
		{name: "gpu-mcp", transport: "http", listTool: "list_gpu_offers", listArgs: offers,
			start: func(ctx context.Context, env ...string) (*proc, error) {
				return startHTTP(ctx, o.bin, []string{"--demo", "--log-level", "info", "--transport", "http", "--addr", "127.0.0.1:0"},
					append(append(base, "GPU_MCP_AUTH_TOKEN="+token), env...),
					func(line string) string {
						if m := gpuAddrRE.FindStringSubmatch(line); m != nil {
							return m[1]
						}
						return ""
					},
					func(addr string) string { return "http://" + addr + "/mcp" },
					map[string]string{"Authorization": "Bearer " + token})
			}},
	}
}

var refPortRE = regexp.MustCompile(`listening on port (\d+)`)

func refTargets(o options) []target {
	echo := map[string]any{"message": "hello"}
	return []target{
		{name: "reference", transport: "stdio", listTool: "echo", listArgs: echo,
			start: func(ctx context.Context, env ...string) (*proc, error) {
				return startStdio(ctx, o.node, []string{o.ref, "stdio"}, env)
			}},
		{name: "reference", transport: "http", listTool: "echo", listArgs: echo,
			start: func(ctx context.Context, env ...string) (*proc, error) {
				port, err := freePort()
				if err != nil {
					return nil, err
				}
				return startHTTP(ctx, o.node, []string{o.ref, "streamableHttp"}, append([]string{"PORT=" + port}, env...),
					func(line string) string {
						if m := refPortRE.FindStringSubmatch(line); m != nil {
							return "127.0.0.1:" + m[1]
						}
						return ""
					},
					func(addr string) string { return "http://" + addr + "/mcp" }, nil)
			}},
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// stats are the latencies of repeated calls.
type stats struct{ p50, p99, mean time.Duration }

func summarize(d []time.Duration) stats {
	if len(d) == 0 {
		return stats{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	var sum time.Duration
	for _, v := range s {
		sum += v
	}
	at := func(q float64) time.Duration { return s[min(len(s)-1, int(q*float64(len(s))))] }
	return stats{p50: at(0.50), p99: at(0.99), mean: sum / time.Duration(len(s))}
}

// sample runs f n times (after a few unmeasured warm-up calls when warm > 0) and returns the
// latencies.
func sample(n, warm int, f func() error) ([]time.Duration, error) {
	for range warm {
		if err := f(); err != nil {
			return nil, err
		}
	}
	out := make([]time.Duration, 0, n)
	for range n {
		t := time.Now()
		if err := f(); err != nil {
			return nil, err
		}
		out = append(out, time.Since(t))
	}
	return out, nil
}

func callTool(ctx context.Context, c *client.Client, name string, args map[string]any) error {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if res.IsError {
		var b strings.Builder
		for _, c := range res.Content {
			if t, ok := c.(mcp.TextContent); ok {
				b.WriteString(t.Text)
			}
		}
		return fmt.Errorf("%s: tool error: %s", name, b.String())
	}
	return nil
}

func listTools(ctx context.Context, c *client.Client) error {
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err == nil && len(res.Tools) == 0 {
		err = errors.New("tools/list returned no tools")
	}
	return err
}

// result is everything measured for one target.
type result struct {
	t          target
	start      time.Duration   // median process start to initialize answer
	toolsList  stats           // tools/list
	call       stats           // tools/call, warm for gpu-mcp
	cold       stats           // gpu-mcp: list_gpu_offers with the cache off
	throughput map[int]float64 // HTTP: clients -> calls/s
	rss        float64         // MiB, VmHWM after the measurements
}

var concurrency = []int{1, 8, 64}

func measure(ctx context.Context, o options, t target, cold bool) (*result, error) {
	r := &result{t: t}
	var starts []time.Duration
	for i := range o.starts {
		p, err := t.start(ctx)
		if err != nil {
			return nil, err
		}
		starts = append(starts, p.initDur)
		if i < o.starts-1 {
			p.stop()
			continue
		}
		// The last process gives the other figures.
		err = measureRunning(ctx, o, t, p, r)
		r.rss = p.peakRSS()
		p.stop()
		if err != nil {
			return nil, err
		}
	}
	r.start = summarize(starts).p50
	if cold {
		p, err := t.start(ctx, "GPU_MCP_OFFER_CACHE_TTL=0")
		if err != nil {
			return nil, err
		}
		d, err := sample(o.calls/2, 3, func() error { return callTool(ctx, p.c, t.listTool, t.listArgs) })
		p.stop()
		if err != nil {
			return nil, fmt.Errorf("%s %s cold: %w", t.name, t.transport, err)
		}
		r.cold = summarize(d)
	}
	return r, nil
}

func measureRunning(ctx context.Context, o options, t target, p *proc, r *result) error {
	d, err := sample(o.calls, 5, func() error { return listTools(ctx, p.c) })
	if err != nil {
		return fmt.Errorf("%s %s tools/list: %w", t.name, t.transport, err)
	}
	r.toolsList = summarize(d)
	d, err = sample(o.calls, 5, func() error { return callTool(ctx, p.c, t.listTool, t.listArgs) })
	if err != nil {
		return fmt.Errorf("%s %s tools/call: %w", t.name, t.transport, err)
	}
	r.call = summarize(d)
	if p.connect == nil {
		return nil
	}
	r.throughput = map[int]float64{}
	for _, n := range concurrency {
		cps, err := throughput(ctx, o, t, p, n)
		if err != nil {
			return fmt.Errorf("%s %s throughput with %d clients: %w", t.name, t.transport, n, err)
		}
		r.throughput[n] = cps
	}
	return nil
}

// throughput runs n clients (each its own session), each calling the tool in a loop for
// o.dur, and returns the calls per second of all of them together.
func throughput(ctx context.Context, o options, t target, p *proc, n int) (float64, error) {
	clients := make([]*client.Client, n)
	for i := range clients {
		c, err := p.connect()
		if err != nil {
			return 0, err
		}
		defer c.Close()
		clients[i] = c
	}
	var calls atomic.Int64
	var firstErr error
	var errOnce sync.Once
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t0 := time.Now()
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := callTool(ctx, c, t.listTool, t.listArgs); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				calls.Add(1)
			}
		}()
	}
	time.Sleep(o.dur)
	close(stop)
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(calls.Load()) / time.Since(t0).Seconds(), nil
}

// fanOut measures list_gpu_offers with the cache off and GPU_MCP_DEMO_LATENCY set: each
// vendor alone (provider argument), then all three at once.
type fanResult struct {
	alone map[string]time.Duration // p50 per vendor
	all   stats
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

func fanOut(ctx context.Context, o options, t target) (*fanResult, error) {
	p, err := t.start(ctx, "GPU_MCP_OFFER_CACHE_TTL=0", "GPU_MCP_DEMO_LATENCY="+fanLatency)
	if err != nil {
		return nil, err
	}
	defer p.stop()
	fr := &fanResult{alone: map[string]time.Duration{}}
	for _, v := range vendorNames {
		d, err := sample(o.fanCalls, 1, func() error {
			return callTool(ctx, p.c, "list_gpu_offers", map[string]any{"provider": v, "limit": 20})
		})
		if err != nil {
			return nil, err
		}
		fr.alone[v] = summarize(d).p50
	}
	d, err := sample(o.fanCalls, 1, func() error { return callTool(ctx, p.c, "list_gpu_offers", map[string]any{"limit": 20}) })
	if err != nil {
		return nil, err
	}
	fr.all = summarize(d)
	return fr, nil
}

func run(o options) error {
	ctx := context.Background()
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%s: %w (run make build first)", o.bin, err)
	}
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	token := hex.EncodeToString(tok)
	fmt.Printf("mcpbench: %s vs @modelcontextprotocol/server-everything (%s)\n", o.bin, nodeVersion(o.node))
	fmt.Printf("settings: %d starts, %d calls per latency figure, throughput for %s per level, GPU_MCP_DEMO_STEP_DELAY=10ms\n\n",
		o.starts, o.calls, o.dur)

	var gpu, ref []*result
	for _, t := range gpuMCPTargets(o, token) {
		r, err := measure(ctx, o, t, true)
		if err != nil {
			return err
		}
		gpu = append(gpu, r)
	}
	if !o.skipRef {
		if _, err := os.Stat(o.ref); err != nil {
			return fmt.Errorf("reference server %s: %w (make bench installs it with npm ci in bench/)", o.ref, err)
		}
		for _, t := range refTargets(o) {
			r, err := measure(ctx, o, t, false)
			if err != nil {
				return err
			}
			ref = append(ref, r)
		}
	}
	fr, err := fanOut(ctx, o, gpuMCPTargets(o, token)[0])
	if err != nil {
		return fmt.Errorf("fan-out: %w", err)
	}
	report(os.Stdout, gpu, ref, fr)
	return nil
}

func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "node not found"
	}
	return "node " + strings.TrimSpace(string(out))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }

func ratio(a, b float64) string {
	if b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func report(w io.Writer, gpu, ref []*result, fr *fanResult) {
	tw := tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\ttransport\tstart->initialize\ttools/list p50\tp99\ttools/call\tcall p50\tp99\tpeak RSS")
	for _, r := range append(slices.Clone(gpu), ref...) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f MiB\n", r.t.name, r.t.transport, ms(r.start), ms(r.toolsList.p50), ms(r.toolsList.p99),
			callName(r.t), ms(r.call.p50), ms(r.call.p99), r.rss)
		if r.cold.p50 > 0 {
			fmt.Fprintf(tw, "\t\t\t\t\t%s\t%s\t%s\t\n", "list_gpu_offers cold (cache off)", ms(r.cold.p50), ms(r.cold.p99))
		}
	}
	tw.Flush()

	fmt.Fprintln(w, "\nthroughput over streamable HTTP (calls/s; each client its own session)")
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\ttool\t1 client\t8 clients\t64 clients")
	for _, r := range append(slices.Clone(gpu), ref...) {
		if r.throughput == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%s", r.t.name, callName(r.t))
		for _, n := range concurrency {
			fmt.Fprintf(tw, "\t%.0f", r.throughput[n])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	if len(ref) == len(gpu) {
		fmt.Fprintln(w, "\nratios gpu-mcp / reference (below 1: gpu-mcp is faster or smaller; throughput above 1: gpu-mcp does more)")
		tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "transport\tstart->initialize\ttools/list p50\ttools/call p50 (list_gpu_offers warm / echo)\tpeak RSS\tthroughput 1/8/64")
		for i := range gpu {
			g, r := gpu[i], ref[i]
			tp := "-"
			if g.throughput != nil && r.throughput != nil {
				var parts []string
				for _, n := range concurrency {
					parts = append(parts, ratio(g.throughput[n], r.throughput[n]))
				}
				tp = strings.Join(parts, " / ")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", g.t.transport, ratio(float64(g.start), float64(r.start)),
				ratio(float64(g.toolsList.p50), float64(r.toolsList.p50)), ratio(float64(g.call.p50), float64(r.call.p50)),
				ratio(g.rss, r.rss), tp)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\ncold offer fan-out over stdio, GPU_MCP_OFFER_CACHE_TTL=0, GPU_MCP_DEMO_LATENCY=%s\n", fanLatency)
	tw = tabwriter.NewWriter(w, 2, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "list_gpu_offers\tp50")
	var slowest, sum time.Duration
	for _, v := range vendorNames {
		fmt.Fprintf(tw, "provider=%s alone\t%s\n", v, ms(fr.alone[v]))
		slowest = max(slowest, fr.alone[v])
		sum += fr.alone[v]
	}
	fmt.Fprintf(tw, "all three\t%s (p99 %s)\n", ms(fr.all.p50), ms(fr.all.p99))
	tw.Flush()
	fmt.Fprintf(w, "measured/slowest vendor = %s   measured/sum of vendors = %s   (concurrent: near 1x and well below 1x)\n",
		ratio(float64(fr.all.p50), float64(slowest)), ratio(float64(fr.all.p50), float64(sum)))
	fmt.Fprintf(w, "measured/300 ms (slowest per-request latency) = %s   measured/600 ms (sum of per-request latencies) = %s\n",
		ratio(float64(fr.all.p50), float64(300*time.Millisecond)), ratio(float64(fr.all.p50), float64(600*time.Millisecond)))
}

func callName(t target) string {
	if t.listTool == "list_gpu_offers" {
		return "list_gpu_offers warm"
	}
	return t.listTool
}
