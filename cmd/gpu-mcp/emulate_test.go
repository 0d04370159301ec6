package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests run `gpu-mcp emulate` as a process of its own, so that the cloud outlives the
// gpu-mcp processes that use it: separate `gpu-mcp call`s, a server killed and started again,
// replicas side by side.

// emulator is a running `gpu-mcp emulate`.
type emulator struct {
	t       *testing.T
	cmd     *exec.Cmd
	lines   []string // the environment lines it printed, in order
	control string
	stderr  *lockedBuffer
	exited  chan struct{}
	exitErr error
}

func startEmulate(t *testing.T, args ...string) *emulator {
	t.Helper()
	return startEmulateEnv(t, nil, args...)
}

// startEmulateEnv is startEmulate with env on top of its environment (a step delay, say).
func startEmulateEnv(t *testing.T, env []string, args ...string) *emulator {
	t.Helper()
	e := &emulator{t: t, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	e.cmd = exec.Command(binPath, append([]string{"emulate"}, args...)...)
	e.cmd.Env = slices.Concat(os.Environ(), clearedCredentials, []string{"GPU_MCP_DEMO_STEP_DELAY=100ms", "GPU_MCP_DEMO_LATENCY=", "GPU_MCP_LOG_LEVEL=debug"}, env)
	e.cmd.Stderr = e.stderr
	out, err := e.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == emulateReady {
				ready <- lines
				break
			}
			lines = append(lines, sc.Text())
		}
		_, _ = io.Copy(io.Discard, out)
		e.exitErr = e.cmd.Wait()
		close(e.exited)
	}()
	t.Cleanup(func() {
		e.cmd.Process.Kill()
		<-e.exited
	})
	select {
	case e.lines = <-ready:
	case <-e.exited:
		t.Fatalf("gpu-mcp emulate exited (%v):\n%s", e.exitErr, e.stderr.String())
	case <-time.After(30 * time.Second): // only keeps a broken build from hanging
		t.Fatalf("gpu-mcp emulate printed no %q:\n%s", emulateReady, e.stderr.String())
	}
	for _, l := range e.lines {
		if v, ok := strings.CutPrefix(l, envEmulatorControl+"="); ok {
			e.control = v
		}
	}
	if e.control == "" {
		t.Fatalf("no %s line in %q", envEmulatorControl, e.lines)
	}
	return e
}

// env is what points a gpu-mcp process at the emulators.
func (e *emulator) env() []string { return slices.Clone(e.lines) }

// request calls the control API and decodes its JSON answer into out.
func (e *emulator) request(method, path, body string, out any) int {
	e.t.Helper()
	req, err := http.NewRequest(method, e.control+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		e.t.Fatalf("%s %s: %d, not JSON: %v", method, path, res.StatusCode, err)
	}
	return res.StatusCode
}

// buys is how many buy requests reached the vendor's emulator.
func (e *emulator) buys(vendor string) int64 {
	e.t.Helper()
	var m map[string]changesView
	if code := e.request(http.MethodGet, "/changes", "", &m); code != http.StatusOK {
		e.t.Fatalf("GET /changes: %d", code)
	}
	return m[vendor].Buys
}

// gpuMCPCall runs `gpu-mcp call TOOL ARGS` as a process of its own and returns its stdout and
// exit status.
func gpuMCPCall(t *testing.T, env []string, tool string, args map[string]any) (string, int) {
	t.Helper()
	b, _ := json.Marshal(args)
	cmd := exec.Command(binPath, "call", tool, string(b))
	cmd.Env = slices.Concat(os.Environ(), clearedCredentials, []string{"GPU_MCP_LOG_LEVEL=warn", "GPU_MCP_POLL_INTERVAL=50ms"}, env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return stdout.String(), ee.ExitCode()
	case err != nil:
		t.Fatalf("gpu-mcp call %s: %v\n%s", tool, err, stderr.String())
	}
	return stdout.String(), 0
}

// statusOf is a guarded tool's outcome status.
func statusOf(res *mcp.CallToolResult) string {
	var o struct {
		Status string `json:"status"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &o)
	return o.Status
}

var tokenInText = regexp.MustCompile(`confirm_token="([^"]+)"`)

func withToken(args map[string]any, token string) map[string]any {
	out := map[string]any{"confirm_token": token}
	for k, v := range args {
		out[k] = v
	}
	return out
}

func TestEmulatePrintsItsEnvironmentAndStopsOnSIGTERM(t *testing.T) {
	e := startEmulate(t)
	if !slices.IsSorted(e.lines) {
		t.Errorf("the lines are not sorted: %q", e.lines)
	}
	for _, v := range vendors.All() {
		for _, name := range vendors.Variables(v) {
			if name == v.EnvPrefix+"BASE_URL" && !slices.ContainsFunc(e.lines, func(l string) bool { return strings.HasPrefix(l, name+"=http://127.0.0.1:") }) {
				t.Errorf("no loopback %s line in %q", name, e.lines)
			}
		}
	}
	var insts map[string][]instanceView
	if code := e.request(http.MethodGet, "/instances", "", &insts); code != http.StatusOK || len(insts) != len(vendors.All()) {
		t.Fatalf("GET /instances: %d %v", code, insts)
	}
	for _, c := range []struct{ path, body, want string }{
		{"/outcome", `{"vendor":"aws","outcome":"fails"}`, "is not one of " + strings.Join(vendors.Names(), ", ")},
		{"/outcome", `{"vendor":"` + vendors.Names()[0] + `","outcome":"explodes"}`, "fails, never_runs, normal, sold_out"},
		{"/latency", `{"latency":"soon"}`, "not a duration"},
		{"/latency", `not json`, "not the JSON object"},
	} {
		var m map[string]string
		if code := e.request(http.MethodPost, c.path, c.body, &m); code != http.StatusBadRequest || !strings.Contains(m["error"], c.want) {
			t.Errorf("POST %s %s: %d %q, want 400 saying %q", c.path, c.body, code, m["error"], c.want)
		}
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	if e.exitErr != nil {
		t.Fatalf("after SIGTERM: %v\n%s", e.exitErr, e.stderr.String())
	}
}

func TestEmulateControlAPIListenOnLoopbackOnly(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"emulate", "--addr", "0.0.0.0:0"}, nil, strings.NewReader(""), &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "loopback only") {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// The replay: a plan from one `gpu-mcp call` process, confirmed by a second, and the
// same token sent by a third on the same store, with the cloud in its own process. The third
// is refused and the vendor sees one buy; the store's audit trail has one "done".
func TestTokenReplayAcrossCallProcessesIsRefused(t *testing.T) {
	e := startEmulate(t)
	v := vendors.All()[0]
	offer, image := hourlyOffer(t, startSession(t, e.env()), v.Name)
	for _, c := range []struct{ name, secret string }{{"key from the store", ""}, {"configured key", "a-configured-confirm-secret-0123456789"}} {
		t.Run(c.name, func(t *testing.T) {
			storeURL := statetest.SQLiteURL(t)
			env := append(e.env(), "GPU_MCP_STATE_URL="+storeURL, "GPU_MCP_CONFIRM_SECRET="+c.secret)
			args := map[string]any{"offer_id": offer, "image_id": image, "wait": false}
			before := e.buys(v.Name)

			out, code := gpuMCPCall(t, env, "launch_instance", args)
			m := tokenInText.FindStringSubmatch(out)
			if code != 0 || m == nil || !strings.Contains(out, "CONFIRMATION REQUIRED") {
				t.Fatalf("the plan: exit %d:\n%s", code, out)
			}
			if n := e.buys(v.Name) - before; n != 0 {
				t.Fatalf("the plan bought %d instances", n)
			}
			if out, code := gpuMCPCall(t, env, "launch_instance", withToken(args, m[1])); code != 0 || e.buys(v.Name)-before != 1 {
				t.Fatalf("the confirmation: exit %d, %d buys:\n%s", code, e.buys(v.Name)-before, out)
			}
			out, code = gpuMCPCall(t, env, "launch_instance", withToken(args, m[1]))
			if code != 1 || !strings.Contains(out, "already been used") {
				t.Fatalf("the replay: exit %d:\n%s", code, out)
			}
			if n := e.buys(v.Name) - before; n != 1 {
				t.Fatalf("%d buys after the replay, want 1", n)
			}

			recs, err := statetest.Open(t, storeURL, state.Options{}).ListAudit(context.Background(), time.Time{}, 0)
			if err != nil {
				t.Fatal(err)
			}
			var outcomes []string
			for _, r := range recs {
				if r.Tool == "launch_instance" {
					outcomes = append(outcomes, r.Outcome)
				}
			}
			if want := []string{"confirmation_required", "running", "done", "refused"}; !slices.Equal(outcomes, want) {
				t.Fatalf("the audit trail has %v, want %v", outcomes, want)
			}
			if !strings.Contains(recs[len(recs)-1].Detail, "already been used") {
				t.Errorf("the refusal's record: %+v", recs[len(recs)-1])
			}
		})
	}
}

// A plan made by a process that is then killed (SIGKILL) is confirmed once by the process
// started after it on the same store.
func TestPlanOutlivesTheProcessThatMadeIt(t *testing.T) {
	e := startEmulate(t)
	v := vendors.All()[0]
	env := append(e.env(), "GPU_MCP_STATE_URL="+statetest.SQLiteURL(t), "GPU_MCP_AUTH_TOKEN="+testAuthToken)
	first := startNetServer(t, "http", env)
	a := first.connect(nil)
	offer, image := hourlyOffer(t, a, v.Name)
	args := map[string]any{"offer_id": offer, "image_id": image, "wait": false}
	plan := a.ok("launch_instance", args)
	token, _ := plan["confirmation_token"].(string)
	if token == "" {
		t.Fatalf("no plan: %v", plan)
	}
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-first.exited

	b := startNetServer(t, "http", env).connect(nil)
	before := e.buys(v.Name)
	if done := b.ok("launch_instance", withToken(args, token)); done["status"] != "done" {
		t.Fatalf("confirmed after the restart: %v", done)
	}
	b.fails("launch_instance", withToken(args, token), "already been used")
	if n := e.buys(v.Name) - before; n != 1 {
		t.Fatalf("%d buys, want 1", n)
	}
}

// Two replicas on one PostgreSQL and one cloud, without GPU_MCP_CONFIRM_SECRET: a plan made on
// A is confirmed on B, and one valid token sent 20 times at once, split over both, makes
// exactly one purchase.
func TestReplicasOnOnePostgreSQL(t *testing.T) {
	storeURL := statetest.PostgresURL(t)
	e := startEmulate(t)
	v := vendors.All()[0]
	env := append(e.env(), "GPU_MCP_STATE_URL="+storeURL, "GPU_MCP_AUTH_TOKEN="+testAuthToken)
	replicas := []*netServer{startNetServer(t, "http", env), startNetServer(t, "http", env)}
	a, b := replicas[0].connect(nil), replicas[1].connect(nil)
	offer, image := hourlyOffer(t, a, v.Name)
	args := map[string]any{"offer_id": offer, "image_id": image, "wait": false}

	before := e.buys(v.Name)
	plan := a.ok("launch_instance", args)
	if done := b.ok("launch_instance", withToken(args, plan["confirmation_token"].(string))); done["status"] != "done" {
		t.Fatalf("A's plan confirmed on B: %v", done)
	}
	if n := e.buys(v.Name) - before; n != 1 {
		t.Fatalf("%d buys for A's plan confirmed on B, want 1", n)
	}

	token := a.ok("launch_instance", args)["confirmation_token"].(string)
	const calls = 20
	sessions := make([]*session, calls)
	for i := range sessions {
		sessions[i] = replicas[i%2].connect(nil)
	}
	before = e.buys(v.Name)
	var mu sync.Mutex
	var done, used int
	var others []string
	var wg sync.WaitGroup
	for _, s := range sessions {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "launch_instance", withToken(args, token)
			res, err := s.c.CallTool(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				others = append(others, err.Error())
			case !res.IsError && statusOf(res) == "done":
				done++
			case res.IsError && strings.Contains(resultText(res), "already been used"):
				used++
			default:
				others = append(others, resultText(res))
			}
		})
	}
	wg.Wait()
	if done != 1 || used != calls-1 || len(others) > 0 {
		t.Fatalf("%d launched, %d refused as used, want 1 and %d; others: %q", done, used, calls-1, others)
	}
	if n := e.buys(v.Name) - before; n != 1 {
		t.Fatalf("%d buys for one token sent %d times, want 1", n, calls)
	}

	// The trail is shared, and says which replica did what.
	recs, err := statetest.Open(t, storeURL, state.Options{}).ListAudit(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	writers := map[string]bool{}
	var dones int
	for _, r := range recs {
		writers[r.Replica] = true
		if r.Tool == "launch_instance" && r.Outcome == "done" {
			dones++
		}
	}
	if dones != 2 || len(writers) != 2 {
		t.Fatalf("the trail has %d launches done, by %d replicas; want 2 by 2:\n%s", dones, len(writers), fmt.Sprint(recs))
	}
}

// The control API decides what becomes of launches, and can hold a buy open: the gpu-mcp that
// sent it is killed meanwhile, and the cloud, which got the request, still makes the instance.
func TestEmulateControlsOutcomesAndHoldsBuys(t *testing.T) {
	e := startEmulate(t)
	v := vendors.All()[0]
	offer, image := hourlyOffer(t, startSession(t, e.env()), v.Name)
	env := append(e.env(), "GPU_MCP_STATE_URL="+statetest.SQLiteURL(t))
	args := map[string]any{"offer_id": offer, "image_id": image, "wait": false}
	instances := func() int {
		var m map[string][]instanceView
		if code := e.request(http.MethodGet, "/instances", "", &m); code != http.StatusOK {
			t.Fatalf("GET /instances: %d", code)
		}
		return len(m[v.Name])
	}
	plan := func() string {
		out, _ := gpuMCPCall(t, env, "launch_instance", args)
		m := tokenInText.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no plan:\n%s", out)
		}
		return m[1]
	}
	var ack map[string]any
	start := instances()

	if code := e.request(http.MethodPost, "/outcome", `{"vendor":"`+v.Name+`","offer":"`+offer+`","outcome":"sold_out"}`, &ack); code != http.StatusOK {
		t.Fatalf("POST /outcome: %d %v", code, ack)
	}
	if out, code := gpuMCPCall(t, env, "launch_instance", withToken(args, plan())); code != 1 || !strings.Contains(strings.ToLower(out), "sold out") {
		t.Fatalf("a launch of a sold-out offer: exit %d:\n%s", code, out)
	}
	if n := instances(); n != start {
		t.Fatalf("a sold-out offer made %d instances", n-start)
	}
	if code := e.request(http.MethodPost, "/outcome", `{"vendor":"`+v.Name+`","offer":"`+offer+`","outcome":"normal"}`, &ack); code != http.StatusOK {
		t.Fatalf("POST /outcome: %d %v", code, ack)
	}

	if code := e.request(http.MethodPost, "/latency", `{"vendor":"`+v.Name+`","latency":"1h","buy_only":true}`, &ack); code != http.StatusOK {
		t.Fatalf("POST /latency: %d %v", code, ack)
	}
	buys := e.buys(v.Name)
	b, _ := json.Marshal(withToken(args, plan())) // the plan's reads are not held
	confirm := exec.Command(binPath, "call", "launch_instance", string(b))
	confirm.Env = slices.Concat(os.Environ(), clearedCredentials, env)
	if err := confirm.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the buy reaches the vendor", func() bool { return e.buys(v.Name) == buys+1 })
	if n := instances(); n != start {
		t.Fatalf("a held buy made %d instances already", n-start)
	}
	if err := confirm.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = confirm.Wait()
	eventually(t, "the cloud makes the instance whose buy lost its sender", func() bool { return instances() == start+1 })
}
