// Command mcpbench measures MCP servers from the outside with raw JSON-RPC clients, so that
// what it reports is the servers' cost and not a client library's: gpu-mcp (the built binary,
// --demo), the floor under it (bench/baremcp: mcp-go of the same version with one echo tool)
// and the node reference server @modelcontextprotocol/server-everything. `make bench` runs it;
// BENCHMARKS.md says what it measures and what it found.
//
// The servers are started in turn, never two at once, for each of -reps repetitions, and every
// figure is reported as min / median / max over the repetitions with its ratio to the bare
// server. Over stdio the client writes newline-delimited JSON-RPC through a buffered writer and
// finds each answer by its id without decoding it; over streamable HTTP each client has its own
// session and kept-alive connection, sends requests prepared once and only searches the
// answers' bytes. An answer is decoded once per scenario, to check it is what it should be.
// Each HTTP start gets seconds of untimed load first: node's JIT needs them, the Go servers lose
// nothing by it. During the HTTP load the harness also reads the server's CPU time, which gives
// its cost per call whoever the client, and its own, which says how much the client weighs.
//
// -soak D runs 64 HTTP clients against gpu-mcp for D and checks that its RSS at the end is
// within 10% of its RSS after the first minute.
package main

import (
	"crypto/rand"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

type options struct {
	bin, bare, node, ref string
	reps                 int
	listCalls, calls     int
	warm                 int
	httpWarmup           time.Duration
	duration             time.Duration
	timeout              time.Duration
	fanCalls             int
	soak, soakEvery      time.Duration
	cpuProfile           string
}

func main() {
	var o options
	flag.StringVar(&o.bin, "bin", "bin/gpu-mcp", "the gpu-mcp binary")
	flag.StringVar(&o.bare, "bare", "bin/baremcp", "the bare mcp-go server (go build ./bench/baremcp)")
	flag.StringVar(&o.node, "node", "node", "the node binary that runs the reference server")
	flag.StringVar(&o.ref, "ref", "bench/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
		`the reference server's entry point ("": leave the reference out)`)
	flag.IntVar(&o.reps, "reps", 10, "repetitions: each starts every server in turn over stdio and HTTP (0: none, e.g. for -soak alone)")
	flag.IntVar(&o.listCalls, "list-calls", 50, "tools/list calls timed per repetition over stdio")
	flag.IntVar(&o.calls, "calls", 200, "calls of each tool timed per repetition over stdio")
	flag.IntVar(&o.warm, "warm", 50, "untimed calls before each timed series over stdio")
	flag.DurationVar(&o.httpWarmup, "http-warmup", 5*time.Second,
		"untimed load at 64 clients after each HTTP start (node's JIT needs seconds to warm up)")
	flag.DurationVar(&o.duration, "duration", time.Second, "how long each HTTP load level runs per repetition")
	flag.DurationVar(&o.timeout, "timeout", 30*time.Second, "the longest any one step may take: a start, a call, an answer")
	flag.IntVar(&o.fanCalls, "fan-calls", 7, "calls per figure of gpu-mcp's offer fan-out, each up to a second (0: skip it)")
	flag.DurationVar(&o.soak, "soak", 0, "run 64 HTTP clients against gpu-mcp this long and check its RSS over time (0: no soak)")
	flag.DurationVar(&o.soakEvery, "soak-every", 10*time.Second, "how often the soak samples the RSS")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the harness itself to this file")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mcpbench: unexpected arguments %q; every setting is a flag (-h lists them)\n", flag.Args())
		os.Exit(2)
	}

	// The servers run in their own process groups, so a ^C reaches only the harness: it ends
	// them before it goes.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sig
		killAll()
		fmt.Fprintf(os.Stderr, "mcpbench: %s: stopped every server\n", s)
		os.Exit(130)
	}()

	err := run(o)
	killAll()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mcpbench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := o.validate(); err != nil {
		return err
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	tok := make([]byte, 24)
	_, _ = rand.Read(tok)
	gpu := gpuMCP(o, hex.EncodeToString(tok))
	servers := []server{gpu, bareMCP(o)}
	if o.ref != "" {
		servers = append(servers, reference(o))
	}
	out := os.Stdout
	header(out, o, servers)
	load := sampleLoad(10 * time.Second)

	results := map[string]samples{}
	for _, s := range servers {
		results[s.name] = samples{}
	}
	for rep := range o.reps {
		var names []string
		for i := range servers {
			s := servers[(rep+i)%len(servers)] // each repetition starts with the next server
			names = append(names, s.name)
			if err := measureStdio(o, s, results[s.name]); err != nil {
				return fmt.Errorf("repetition %d: %w", rep+1, err)
			}
			if err := measureHTTP(o, s, results[s.name]); err != nil {
				return fmt.Errorf("repetition %d: %w", rep+1, err)
			}
		}
		fmt.Fprintf(os.Stderr, "mcpbench: repetition %d of %d done (%s)\n", rep+1, o.reps, strings.Join(names, ", "))
	}
	if o.reps > 0 {
		comparison(out, servers, results)
	}
	if o.fanCalls > 0 {
		fmt.Fprintln(os.Stderr, "mcpbench: gpu-mcp offer fan-out")
		fr, err := fanOut(o, gpu)
		if err != nil {
			return err
		}
		fanOutReport(out, fr)
	}
	var sr *soakResult
	if o.soak > 0 {
		fmt.Fprintf(os.Stderr, "mcpbench: soak, %s\n", o.soak)
		var err error
		if sr, err = soak(o, gpu); err != nil {
			return err
		}
		soakReport(out, gpu, sr)
	}
	targets(out, results, sr)
	ld := load.finish()
	fmt.Fprintf(out, "\nmachine: %d CPUs; 1-minute load average during the run, sampled every 10 s: %s (min / median / max)\n",
		runtime.NumCPU(), cell(ld, 2))
	return nil
}

func (o options) validate() error {
	if _, err := os.Stat(o.bin); err != nil {
		return fmt.Errorf("%w (run make build first)", err)
	}
	if o.reps > 0 { // the soak and the fan-out measure gpu-mcp alone
		if _, err := os.Stat(o.bare); err != nil {
			return fmt.Errorf("%w (run go build -o bin/baremcp ./bench/baremcp first, or make bench)", err)
		}
		if o.ref != "" {
			if _, err := os.Stat(o.ref); err != nil {
				return fmt.Errorf("reference server: %w (make bench installs it with npm ci in bench/; -ref \"\" leaves it out)", err)
			}
			if _, err := exec.LookPath(o.node); err != nil {
				return fmt.Errorf("the reference server needs node: %w", err)
			}
		}
	}
	switch {
	case o.reps < 0:
		return fmt.Errorf("-reps %d: want 0 or more", o.reps)
	case o.reps == 0 && o.soak == 0 && o.fanCalls == 0:
		return errors.New("-reps 0 with no -soak and -fan-calls 0: nothing to measure")
	case o.listCalls < 1 || o.calls < 1:
		return fmt.Errorf("-list-calls %d, -calls %d: want 1 or more", o.listCalls, o.calls)
	case o.warm < 0 || o.fanCalls < 0:
		return fmt.Errorf("-warm %d, -fan-calls %d: want 0 or more", o.warm, o.fanCalls)
	case o.duration <= 0 || o.timeout <= 0 || o.soakEvery <= 0 || o.httpWarmup < 0:
		return fmt.Errorf("-duration %s, -timeout %s, -soak-every %s: want more than 0; -http-warmup %s: want 0 or more",
			o.duration, o.timeout, o.soakEvery, o.httpWarmup)
	}
	return nil
}

// mcpGoVersion is the mcp-go version the bare server was built with, read from the binary.
func mcpGoVersion(bin string) string {
	if bi, err := buildinfo.ReadFile(bin); err == nil {
		for _, d := range bi.Deps {
			if d.Path == "github.com/mark3labs/mcp-go" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

// referenceVersion is the version in the reference package's package.json, beside dist/.
func referenceVersion(entry string) string {
	b, err := os.ReadFile(filepath.Join(filepath.Dir(entry), "..", "package.json"))
	if err != nil {
		return "(unknown version)"
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil || pkg.Version == "" {
		return "(unknown version)"
	}
	return pkg.Version
}

func nodeVersion(node string) string {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "(node not found)"
	}
	return strings.TrimSpace(string(out))
}
