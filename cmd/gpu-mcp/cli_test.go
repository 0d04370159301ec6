package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/tools"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// runIn runs gpu-mcp's run in this process, as main does, and returns what it printed.
func runIn(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, env, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

// gpuMCPProcess runs the gpu-mcp binary as a process of its own, with standard input from stdin
// (not a terminal), and returns what it printed and its exit status.
func gpuMCPProcess(t *testing.T, env []string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binPath, args...)
	cmd.Env = slices.Concat(os.Environ(), clearedCredentials, []string{"GPU_MCP_LOG_LEVEL=", "GPU_MCP_POLL_INTERVAL=50ms", "GPU_MCP_DEMO_STEP_DELAY=100ms"}, env)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("gpu-mcp %q: %v\n%s", args, err, errOut.String())
	}
	return out.String(), errOut.String(), code
}

func TestHelpGoesToStdout(t *testing.T) {
	// A broken environment does not stand in the way of the help.
	env := map[string]string{"GPU_MCP_CONFIRM_TTL": "soon"}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"-help"}, {"--demo", "--help"}} {
		stdout, stderr, code := runIn(t, env, "", args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "gpu-mcp: an MCP server") {
			t.Fatalf("%q: exit %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
		for _, c := range commands {
			if !strings.Contains(stdout, "\n  "+c.name) {
				t.Errorf("%q: the usage does not list the command %s", args, c.name)
			}
		}
		var cfg Config
		var inv invocation
		global := flag.NewFlagSet("", flag.ContinueOnError)
		globalFlags(global, &cfg, &inv.version)
		global.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(stdout, "--"+f.Name) {
				t.Errorf("%q: the usage does not list --%s", args, f.Name)
			}
			if m := bracketedVariable.FindStringSubmatch(f.Usage); m != nil && !strings.Contains(stdout, "["+m[1]+"]") {
				t.Errorf("%q: the usage does not name %s, the variable of --%s", args, m[1], f.Name)
			}
		})
		// Every vendor of the list, the test-only one included: the usage is made from it.
		for _, v := range vendors.All() {
			for _, name := range vendors.Variables(v) {
				if !strings.Contains(stdout, name) {
					t.Errorf("%q: the usage does not name %s's variable %s", args, v.Name, name)
				}
			}
		}
		for _, name := range environmentOnly(global) {
			if !strings.Contains(stdout, name) {
				t.Errorf("%q: the usage does not name %s", args, name)
			}
		}
	}
	for _, args := range [][]string{{"help", "call"}, {"call", "--help"}, {"--help", "call"}, {"call", "-h"}, {"call", "launch_instance", "--help"}} {
		stdout, stderr, code := runIn(t, env, "", args...)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "Usage: gpu-mcp [flags] call TOOL [ARGS]") {
			t.Fatalf("%q: exit %d, stderr %q, stdout:\n%s", args, code, stderr, stdout)
		}
		for _, want := range []string{"--json", "--yes", "--no-input", "Proceed? [y/N]", "@FILE", "exit status 3"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("%q: the help of call does not say %q", args, want)
			}
		}
	}
	if stdout, _, code := runIn(t, nil, "", "help", "emulate"); code != 0 || !strings.Contains(stdout, "--addr") || !strings.Contains(stdout, envEmulatorControl) {
		t.Errorf("help emulate: exit %d:\n%s", code, stdout)
	}
}

func TestVersionFlag(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"--demo", "--version"}, {"call", "list_providers", "--version"}} {
		// Like the help, the version does not depend on the environment being right.
		stdout, stderr, code := runIn(t, map[string]string{"GPU_MCP_CONFIRM_TTL": "soon"}, "", args...)
		if code != 0 || stderr != "" || stdout != "gpu-mcp "+version+"\n" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, stdout, stderr)
		}
	}
}

func TestFlagsGoBeforeOrAfterTheCommand(t *testing.T) {
	cases := []struct {
		args     []string
		cmd      string
		operands []string
		check    func(Config, *invocation) bool
	}{
		{[]string{"call", "list_providers", "--demo", "--json"}, "call", []string{"list_providers"},
			func(c Config, i *invocation) bool { return c.Demo && i.flags.JSON }},
		{[]string{"--json", "call", "--demo", "launch_instance", "{}", "--yes"}, "call", []string{"launch_instance", "{}"},
			func(c Config, i *invocation) bool { return c.Demo && i.flags.JSON && i.flags.Yes }},
		{[]string{"--state", "memory:", "call", "--log-level=debug", "list_providers"}, "call", []string{"list_providers"},
			func(c Config, i *invocation) bool { return c.StateURL == "memory:" && c.LogLevel == "debug" }},
		{[]string{"call", "--", "get_instance", "--json"}, "call", []string{"get_instance", "--json"},
			func(c Config, i *invocation) bool { return !i.flags.JSON }},
		{[]string{"emulate", "--addr", "127.0.0.1:7001"}, "emulate", nil,
			func(c Config, i *invocation) bool {
				return i.flags.ControlAddr == "127.0.0.1:7001" && c.Addr == "127.0.0.1:8080"
			}},
		// Before the command as after it: --addr of emulate is its control API's.
		{[]string{"--addr", "127.0.0.1:7002", "emulate"}, "emulate", nil,
			func(c Config, i *invocation) bool { return i.flags.ControlAddr == "127.0.0.1:7002" }},
		{[]string{"--transport", "http", "--addr", "127.0.0.1:7003"}, "serve", nil,
			func(c Config, i *invocation) bool { return c.Transport == "http" && c.Addr == "127.0.0.1:7003" }},
		{[]string{"tools", "--read-only"}, "tools", nil, func(c Config, i *invocation) bool { return c.ReadOnly }},
		{[]string{"reap", "--state", "memory:", "--log-level", "error"}, "reap", nil,
			func(c Config, i *invocation) bool { return c.StateURL == "memory:" && c.LogLevel == "error" }},
		{[]string{"--demo", "--", "tools"}, "tools", nil, func(c Config, i *invocation) bool { return c.Demo }},
	}
	for _, c := range cases {
		cfg, inv, err := loadConfig(c.args, nil)
		if err != nil {
			t.Errorf("%q: %v", c.args, err)
			continue
		}
		if inv.cmd.name != c.cmd || !slices.Equal(inv.operands, c.operands) || !c.check(cfg, inv) {
			t.Errorf("%q: command %s, operands %q, flags %+v, config %+v", c.args, inv.cmd.name, inv.operands, inv.flags, cfg)
		}
	}
}

func TestBadCommandLinesAreReportedShortly(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"--bogus"}, []string{"flag provided but not defined: --bogus", "Run 'gpu-mcp --help' for usage."}},
		{[]string{"--bogus", "x", "call", "list_providers"}, []string{"flag provided but not defined: --bogus"}},
		{[]string{"tools", "--json"}, []string{"flag provided but not defined: --json", "Run 'gpu-mcp help tools' for usage."}},
		{[]string{"call", "--confirm-ttl", "soon", "list_providers"}, []string{`invalid value "soon" for flag --confirm-ttl`}},
		{[]string{"--log-level"}, []string{"flag needs an argument: --log-level"}},
		{[]string{"tool"}, []string{`unknown command "tool"; did you mean "tools"?`, "Run 'gpu-mcp --help' for usage."}},
		{[]string{"--demo", "emualte"}, []string{`did you mean "emulate"?`}},
		{[]string{"launch_instance"}, []string{`unknown command "launch_instance"`, "serve, tools, call"}},
		{[]string{"call"}, []string{"call: missing arguments; usage: gpu-mcp call TOOL [ARGS]", "Run 'gpu-mcp help call' for usage."}},
		{[]string{"version", "now"}, []string{`version: unexpected arguments ["now"]`}},
		{[]string{"help", "fly"}, []string{`help: unknown command "fly"`}},
		{[]string{"call", "list_providers", "{}", "more"}, []string{`unexpected arguments ["more"]`}},
		{[]string{"--demo", "call", "launch_instance", "--yes", "--no-input"}, []string{"--yes and --no-input contradict each other"}},
	}
	for _, c := range cases {
		stdout, stderr, code := runIn(t, nil, "", c.args...)
		if code != 2 || stdout != "" {
			t.Errorf("%q: exit %d, stdout %q; want 2 and nothing on stdout", c.args, code, stdout)
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%q: stderr %q lacks %q", c.args, stderr, w)
			}
		}
		if n := strings.Count(strings.TrimSpace(stderr), "\n"); n > 1 {
			t.Errorf("%q: %d lines on stderr, want a short error:\n%s", c.args, n+1, stderr)
		}
	}
}

// An unknown command is reported before anything starts: no store is opened, no emulator is
// started, nothing is logged, even at the debug level.
func TestUnknownCommandStartsNothing(t *testing.T) {
	store := filepath.Join(t.TempDir(), "never.db")
	stdout, stderr, code := runIn(t, map[string]string{"GPU_MCP_DEMO": "true", "GPU_MCP_LOG_LEVEL": "debug", "GPU_MCP_STATE_URL": "sqlite://" + filepath.ToSlash(store)}, "", "emualte", "--addr", "127.0.0.1:0")
	if code != 2 || stdout != "" || !strings.Contains(stderr, `did you mean "emulate"?`) {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, logged := range []string{" DBG ", " INF ", " WRN ", "emulators started"} {
		if strings.Contains(stderr, logged) {
			t.Errorf("an unknown command logged %q:\n%s", logged, stderr)
		}
	}
	if _, err := os.Stat(store); !os.IsNotExist(err) {
		t.Errorf("an unknown command opened the store %s (%v)", store, err)
	}
}

func TestOneShotCommandsLogWarningsOnly(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, nil, "info"},
		{[]string{"serve"}, nil, "info"},
		{[]string{"emulate"}, nil, "info"},
		{[]string{"tools"}, nil, "warn"},
		{[]string{"call", "list_providers"}, nil, "warn"},
		{[]string{"reap"}, nil, "warn"},
		{[]string{"--state", "memory:", "leases"}, nil, "warn"},
		{[]string{"call", "list_providers"}, map[string]string{"GPU_MCP_LOG_LEVEL": "debug"}, "debug"},
		{[]string{"--log-level", "error"}, map[string]string{"GPU_MCP_LOG_LEVEL": "debug"}, "error"},
	} {
		cfg, _, err := loadConfig(c.args, c.env)
		if err != nil || cfg.LogLevel != c.want {
			t.Errorf("%q %v: log level %q (%v), want %q", c.args, c.env, cfg.LogLevel, err, c.want)
		}
	}
	// The demo says at the info level that its emulators started: a call shows its result alone.
	stdout, stderr, code := runIn(t, nil, "", "--demo", "call", "list_providers")
	if code != 0 || !strings.Contains(stdout, "[demo:") || stderr != "" {
		t.Errorf("call at the default level: exit %d, stderr %q", code, stderr)
	}
	if _, stderr, _ := runIn(t, map[string]string{"GPU_MCP_LOG_LEVEL": "info"}, "", "--demo", "call", "list_providers"); !strings.Contains(stderr, " INF demo: vendor emulators started") {
		t.Errorf("call with GPU_MCP_LOG_LEVEL=info logged no INF line:\n%s", stderr)
	}
}

// `gpu-mcp tools` lists exactly what a server with the same configuration serves.
func TestToolsListsWhatTheServerServes(t *testing.T) {
	var counts []int
	for _, env := range [][]string{nil, {"GPU_MCP_READ_ONLY=true"}, {"GPU_MCP_EXEC=off"}} {
		res, err := startSession(t, env, "--demo").c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		var served []string
		for _, tool := range res.Tools {
			served = append(served, tool.Name)
		}
		stdout, stderr, code := gpuMCPProcess(t, env, "", "--demo", "tools")
		var listed []string
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
			listed = append(listed, strings.Fields(line)[0])
		}
		slices.Sort(served)
		slices.Sort(listed)
		if code != 0 || stderr != "" || !slices.Equal(listed, served) {
			t.Errorf("%v: exit %d, stderr %q: tools lists %q, the server serves %q", env, code, stderr, listed, served)
		}
		counts = append(counts, len(listed))
	}
	if counts[0] <= counts[1] || counts[0] <= counts[2] {
		t.Errorf("read-only mode lists %d tools, GPU_MCP_EXEC=off %d, the full server %d: the test compares nothing", counts[1], counts[2], counts[0])
	}
}

// decodeOne decodes stdout, which must hold exactly one JSON document.
func decodeOne(t *testing.T, stdout string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("stdout is not a JSON object: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
	return m
}

func TestCallPrintsJSONOrText(t *testing.T) {
	stdout, _, code := runIn(t, nil, "", "--demo", "call", "--json", "list_providers")
	if m := decodeOne(t, stdout); code != 0 || m["demo"] != true || len(m["providers"].([]any)) != len(vendors.All()) {
		t.Errorf("list_providers --json: exit %d:\n%s", code, stdout)
	}
	if !strings.HasPrefix(stdout, "{\n  \"") {
		t.Errorf("the JSON is not indented:\n%s", stdout)
	}
	missing := `{"instance_id":"` + vendors.Names()[0] + `:no-such-instance"}`
	stdout, _, code = runIn(t, nil, "", "--demo", "call", "get_instance", missing, "--json")
	m := decodeOne(t, stdout)
	if msg, _ := m["error"].(string); code != 1 || len(m) != 1 || msg == "" {
		t.Errorf("an error with --json: exit %d, %v; want 1 and {\"error\": ...}", code, m)
	}
	text, _, code := runIn(t, nil, "", "--demo", "call", "get_instance", missing)
	if code != 1 || json.Valid([]byte(text)) || !strings.Contains(text, m["error"].(string)) {
		t.Errorf("the same error as text: exit %d:\n%s", code, text)
	}
}

func TestCallArgumentsFromStdinOrAFile(t *testing.T) {
	args := `{"limit": 1, "provider": "` + vendors.Names()[0] + `"}`
	file := filepath.Join(t.TempDir(), "args.json")
	if err := os.WriteFile(file, []byte(args), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ operand, stdin string }{{args, ""}, {"-", args}, {"@" + file, ""}} {
		stdout, stderr, code := runIn(t, nil, c.stdin, "--demo", "call", "list_gpu_offers", c.operand, "--json")
		m := decodeOne(t, stdout)
		offers, _ := m["offers"].([]any)
		if code != 0 || len(offers) != 1 || !strings.HasPrefix(offers[0].(map[string]any)["id"].(string), vendors.Names()[0]+":") {
			t.Errorf("%s: exit %d, stderr %q:\n%s", c.operand, code, stderr, stdout)
		}
	}
	for _, c := range []struct{ operand, stdin, want string }{
		{`{"limit":`, "", "are not a JSON object: unexpected EOF"},
		{`[1, 2]`, "", "are not a JSON object: they are an array"},
		{`{} {}`, "", "more follows"},
		{"-", "", "on standard input are not a JSON object"},
		{"@" + file + ".missing", "", "no such file"},
	} {
		stdout, stderr, code := runIn(t, map[string]string{"GPU_MCP_LOG_LEVEL": "debug"}, c.stdin, "--demo", "call", "list_gpu_offers", c.operand)
		if code != 2 || stdout != "" || !strings.Contains(stderr, c.want) || strings.Contains(stderr, "emulators started") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, an error saying %q, and nothing started", c.operand, code, stdout, stderr, c.want)
		}
	}
}

func TestCallOfAToolNotServed(t *testing.T) {
	_, stderr, code := runIn(t, nil, "", "--demo", "call", "launch_instanse")
	if code != 2 || !strings.Contains(stderr, `unknown tool "launch_instanse"; did you mean "launch_instance"?`) {
		t.Errorf("a misspelt tool: exit %d, %s", code, stderr)
	}
	_, stderr, code = runIn(t, nil, "", "--demo", "--read-only", "call", "launch_instance", "{}")
	if code != 2 || !strings.Contains(stderr, "launch_instance is not served with this configuration (read-only mode") {
		t.Errorf("a guarded tool in read-only mode: exit %d, %s", code, stderr)
	}
	_, stderr, code = runIn(t, map[string]string{"GPU_MCP_EXEC": "off"}, "", "--demo", "call", "run_command", "{}")
	if code != 2 || !strings.Contains(stderr, "run_command is not served with this configuration (GPU_MCP_EXEC=off") {
		t.Errorf("a machine tool with GPU_MCP_EXEC=off: exit %d, %s", code, stderr)
	}
}

// cloudCall is a gpu-mcp call against the clouds of `gpu-mcp emulate`, on a store of its own.
type cloudCall struct {
	e     *emulator
	store string
	env   []string
	args  string // launch_instance's arguments
	v     string // the vendor launched on
}

func newCloudCall(t *testing.T, extraEnv ...string) *cloudCall {
	t.Helper()
	e := startEmulate(t)
	v := vendors.All()[0].Name
	offer, image := hourlyOffer(t, startSession(t, e.env()), v)
	store := statetest.SQLiteURL(t)
	b, _ := json.Marshal(map[string]any{"offer_id": offer, "image_id": image})
	return &cloudCall{e: e, store: store, env: slices.Concat(e.env(), []string{"GPU_MCP_STATE_URL=" + store}, extraEnv), args: string(b), v: v}
}

// instances is how many instances the emulated cloud has of the vendor launched on.
func (c *cloudCall) instances(t *testing.T) int {
	t.Helper()
	var m map[string][]instanceView
	if code := c.e.request("GET", "/instances", "", &m); code != 200 {
		t.Fatalf("GET /instances: %d", code)
	}
	return len(m[c.v])
}

// changes is how many requests that change something reached the vendor launched on.
func (c *cloudCall) changes(t *testing.T) int {
	t.Helper()
	var m map[string]changesView
	if code := c.e.request("GET", "/changes", "", &m); code != 200 {
		t.Fatalf("GET /changes: %d", code)
	}
	return m[c.v].Changes
}

// confirmations are the launch records of the store's audit trail: outcome and how it was confirmed.
func (c *cloudCall) confirmations(t *testing.T) []string {
	t.Helper()
	recs, err := statetest.Open(t, c.store, state.Options{}).ListAudit(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		if r.Tool == "launch_instance" {
			out = append(out, r.Outcome+"/"+r.Confirmation)
		}
	}
	return out
}

// Without a terminal, call prints the plan, runs nothing, and says how to confirm: the
// arguments it prints, given to the next process, run the plan once.
func TestCallWithoutATerminalPrintsThePlanAndHowToConfirm(t *testing.T) {
	c := newCloudCall(t)
	before := c.instances(t)
	stdout, stderr, code := gpuMCPProcess(t, c.env, "", "call", "launch_instance", c.args)
	if code != 0 || !strings.Contains(stdout, "CONFIRMATION REQUIRED") || c.e.buys(c.v) != 0 {
		t.Fatalf("the plan: exit %d, %d buys:\n%s\n%s", code, c.e.buys(c.v), stdout, stderr)
	}
	token := tokenInText.FindStringSubmatch(stdout)
	if !strings.Contains(stderr, "nothing was done") || !strings.Contains(stderr, `"confirm_token"`) || !strings.Contains(stderr, "--yes") || token == nil {
		t.Fatalf("no token on stdout, or stderr does not say how to confirm:\n%s\n%s", stdout, stderr)
	}
	var args map[string]any
	if err := json.Unmarshal([]byte(c.args), &args); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(withToken(args, token[1]))
	confirm := string(b)
	stdout, stderr, code = gpuMCPProcess(t, c.env, "", "call", "launch_instance", confirm, "--json")
	if m := decodeOne(t, stdout); code != 0 || m["status"] != "done" || c.e.buys(c.v) != 1 || c.instances(t) != before+1 {
		t.Fatalf("confirmed by the next process: exit %d, %d buys, stderr %q:\n%s", code, c.e.buys(c.v), stderr, stdout)
	}
	if got, want := c.confirmations(t), []string{"confirmation_required/none", "running/token", "done/token"}; !slices.Equal(got, want) {
		t.Errorf("the audit trail has %q, want %q", got, want)
	}
}

// --yes approves without asking, and the trail says a script did, not a person; under
// GPU_MCP_REQUIRE_ELICITATION it is refused before anything is planned.
func TestCallYes(t *testing.T) {
	c := newCloudCall(t)
	stdout, stderr, code := gpuMCPProcess(t, c.env, "", "call", "launch_instance", c.args, "--yes", "--json")
	if m := decodeOne(t, stdout); code != 0 || m["status"] != "done" || c.e.buys(c.v) != 1 {
		t.Fatalf("--yes: exit %d, %d buys, stderr %q:\n%s", code, c.e.buys(c.v), stderr, stdout)
	}
	if !strings.Contains(stderr, "Approved by --yes") || !strings.Contains(stderr, "asks for your approval") {
		t.Errorf("--yes does not show on stderr what it approved:\n%s", stderr)
	}
	if got, want := c.confirmations(t), []string{"confirmation_required/none", "running/" + string(tools.ConfirmedByCLIYes), "done/" + string(tools.ConfirmedByCLIYes)}; !slices.Equal(got, want) {
		t.Errorf("the audit trail has %q, want %q", got, want)
	}

	strict := newCloudCall(t, "GPU_MCP_REQUIRE_ELICITATION=true")
	_, stderr, code = gpuMCPProcess(t, strict.env, "", "call", "launch_instance", strict.args, "--yes")
	if code != 2 || !strings.Contains(stderr, "--yes is not accepted") || strict.e.buys(strict.v) != 0 {
		t.Errorf("--yes under GPU_MCP_REQUIRE_ELICITATION: exit %d, %d buys: %s", code, strict.e.buys(strict.v), stderr)
	}
	stdout, _, code = gpuMCPProcess(t, strict.env, "", "call", "launch_instance", strict.args)
	if code != 1 || !strings.Contains(stdout, "cannot ask its user") || strict.e.buys(strict.v) != 0 {
		t.Errorf("no terminal under GPU_MCP_REQUIRE_ELICITATION: exit %d, %d buys: %s", code, strict.e.buys(strict.v), stdout)
	}
}

// A launch that goes on past the call budget is followed by gpu-mcp call to its end: the
// process that carries the operation out does not exit while it runs, leaving the instance
// billing with its auto-stop unarranged until another gpu-mcp runs.
func TestCallFollowsALaunchPastTheCallBudget(t *testing.T) {
	e := startEmulateEnv(t, []string{"GPU_MCP_DEMO_STEP_DELAY=1500ms"})
	v := vendors.All()[0].Name
	offer, image := hourlyOffer(t, startSession(t, e.env()), v)
	store := statetest.SQLiteURL(t)
	b, _ := json.Marshal(map[string]any{"offer_id": offer, "image_id": image, "auto_stop_after": "2h"})
	env := slices.Concat(e.env(), []string{"GPU_MCP_STATE_URL=" + store, "GPU_MCP_CALL_BUDGET=1s"})
	stdout, stderr, code := gpuMCPProcess(t, env, "", "call", "launch_instance", string(b), "--yes", "--json")
	m := decodeOne(t, stdout)
	if code != 0 || m["status"] != "done" || m["ready"] != true || m["auto_stop"] == nil || e.buys(v) != 1 {
		t.Fatalf("exit %d, %d buys, stderr %q:\n%s", code, e.buys(v), stderr, stdout)
	}
	if !strings.Contains(stderr, "goes on past the call budget") {
		t.Errorf("stderr does not say the launch was followed past the budget:\n%s", stderr)
	}
}
