package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// binPath is the gpu-mcp program the end-to-end tests run as a process and talk to over
// stdio (or HTTP) with mcp-go's client, as an MCP host would: this test binary itself, which
// runs gpu-mcp's run (as main does) when serveEnv is set. So the gpu-mcp under test knows the
// vendors this binary's list holds, the made-up one added here included.
var binPath string

// serveEnv makes this test binary serve as gpu-mcp.
const serveEnv = "GPU_MCP_E2E_SERVE"

func TestMain(m *testing.M) {
	vendors.WithExtra(fakecloud.Vendor)
	if os.Getenv(serveEnv) == "1" {
		os.Exit(run(os.Args[1:], environ(), os.Stdin, os.Stdout, os.Stderr))
	}
	binPath = os.Args[0]
	// The processes the tests start inherit the environment.
	os.Setenv(serveEnv, "1")
	clearedCredentials = append(clearedCredentials, vendorVariables()...)
	// A test that forgets to name a store must not write into the developer's own.
	stateHome, err := os.MkdirTemp("", "gpu-mcp-test-state-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", stateHome)
	code := m.Run()
	os.RemoveAll(stateHome)
	os.Exit(code)
}

// vendorVariables clears every vendor's variables.
func vendorVariables() []string {
	var out []string
	for _, v := range vendors.All() {
		for _, name := range vendors.Variables(v) {
			out = append(out, name+"=")
		}
	}
	return out
}

// lockedBuffer collects the server's stderr.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// session is an MCP client connected over stdio to a gpu-mcp process.
type session struct {
	t      *testing.T
	c      *client.Client
	stderr *lockedBuffer
}

// clearedCredentials are cleared in every server's environment, so that the developer's cannot
// leak in: these settings, and (from TestMain) every vendor's variables.
// Each server gets a store of its own in memory unless its test names a shared one.
var clearedCredentials = []string{"GPU_MCP_DEMO=", "GPU_MCP_READ_ONLY=", "GPU_MCP_REQUIRE_ELICITATION=", "GPU_MCP_MAX_PRICE_PER_HOUR=",
	"GPU_MCP_MAX_HOURLY_SPEND=", "GPU_MCP_MAX_UPFRONT=", "GPU_MCP_MAX_SPEND=", "GPU_MCP_MAX_GPUS=", "GPU_MCP_AUDIT_LOG=", "GPU_MCP_STATE_URL=" + state.MemoryURL,
	"GPU_MCP_MAX_LEASE=", "GPU_MCP_DEFAULT_AUTO_STOP=", "GPU_MCP_CALL_BUDGET=", "GPU_MCP_ELICITATION=", testHookEnv + "=",
	"GPU_MCP_EXEC=", "GPU_MCP_SSH_KEY=", "GPU_MCP_SSH_KEY_PASSPHRASE="}

func startSession(t *testing.T, env []string, args ...string) *session {
	t.Helper()
	stderr := &lockedBuffer{}
	env = append(append(append([]string{}, clearedCredentials...), "GPU_MCP_LOG_LEVEL=debug"), env...)
	c, err := client.NewStdioMCPClientWithOptions(binPath, env, args, transport.WithCommandStderrWriter(stderr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The stdio constructor starts the transport but not the client, whose Start routes the
	// server's notifications to OnNotification handlers.
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gpu-mcp-e2e", Version: "1"}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		t.Fatalf("initialize: %v\nstderr:\n%s", err, stderr.String())
	}
	if res.ServerInfo.Name != "gpu-mcp" {
		t.Fatalf("server name %q", res.ServerInfo.Name)
	}
	return &session{t: t, c: c, stderr: stderr}
}

// call runs a tool; the structured content comes back decoded.
func (s *session) call(tool string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = tool
	req.Params.Arguments = args
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		s.t.Fatalf("%s: %v\nstderr:\n%s", tool, err, s.stderr.String())
	}
	var m map[string]any
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &m); err != nil {
			s.t.Fatalf("%s: structured content %s", tool, b)
		}
	}
	return res, m
}

// ok runs a tool that must succeed.
func (s *session) ok(tool string, args map[string]any) map[string]any {
	s.t.Helper()
	res, m := s.call(tool, args)
	if res.IsError {
		s.t.Fatalf("%s %v failed: %s", tool, args, resultText(res))
	}
	return m
}

// fails runs a tool that must fail with a message containing want.
func (s *session) fails(tool string, args map[string]any, want string) string {
	s.t.Helper()
	res, _ := s.call(tool, args)
	if !res.IsError || !strings.Contains(resultText(res), want) {
		s.t.Fatalf("%s %v: got %q, want an error containing %q", tool, args, resultText(res), want)
	}
	return resultText(res)
}

// confirm runs a guarded tool through the protocol: the first call must only plan (the vendor
// sees no mutation), the second, with the token, must run.
func (s *session) confirm(tool string, args map[string]any, mutations func() int) map[string]any {
	s.t.Helper()
	before := mutations()
	m := s.ok(tool, args)
	if m["status"] != "confirmation_required" || m["confirmation_token"] == nil || m["plan"] == nil {
		s.t.Fatalf("%s without token: %v", tool, m)
	}
	if n := mutations(); n != before {
		s.t.Fatalf("%s without token sent %d mutating requests to the vendor", tool, n-before)
	}
	withToken := map[string]any{"confirm_token": m["confirmation_token"]}
	for k, v := range args {
		withToken[k] = v
	}
	m = s.ok(tool, withToken)
	if m["status"] != "done" {
		s.t.Fatalf("%s with token: %v", tool, m)
	}
	if mutations() == before {
		s.t.Fatalf("%s with token reached no vendor", tool)
	}
	return m
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

// local strips the provider prefix from a qualified id.
func local(id any) string {
	_, l, _ := strings.Cut(id.(string), ":")
	return l
}

func firstID(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	items, _ := m[key].([]any)
	if len(items) == 0 {
		t.Fatalf("no %s in %v", key, m)
	}
	return items[0].(map[string]any)["id"].(string)
}

// noSecretsIn fails when any secret appears in the server's logs.
func (s *session) noSecretsIn(secrets ...string) {
	s.t.Helper()
	logs := s.stderr.String()
	if logs == "" {
		s.t.Fatal("the server logged nothing to stderr at debug level")
	}
	for _, sec := range secrets {
		if sec != "" && strings.Contains(logs, sec) {
			s.t.Errorf("the logs hold a secret %q", sec)
		}
	}
}

func TestStdioToolsListHasSchemasAndAnnotations(t *testing.T) {
	s := startSession(t, nil, "--demo")
	res, err := s.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 24 {
		t.Fatalf("%d tools, want 24", len(res.Tools))
	}
	for _, tool := range res.Tools {
		a := tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: hints not all set", tool.Name)
		}
		if tool.InputSchema.Type != "object" || tool.OutputSchema.Type != "object" || tool.Description == "" {
			t.Errorf("%s: schemas or description missing", tool.Name)
		}
	}
	m := s.ok("list_providers", nil)
	if m["demo"] != true || len(m["providers"].([]any)) != len(vendors.All()) {
		t.Fatalf("demo providers: %v", m)
	}
}

func TestStdioReadOnlyListsOnlyReadTools(t *testing.T) {
	s := startSession(t, []string{"GPU_MCP_READ_ONLY=true"}, "--demo")
	res, err := s.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 11 {
		t.Fatalf("%d tools in read-only mode, want 11", len(res.Tools))
	}
	for _, tool := range res.Tools {
		if !*tool.Annotations.ReadOnlyHint {
			t.Errorf("%s is not read-only", tool.Name)
		}
	}
}

func TestStdioWithoutProvidersSaysHowToConfigure(t *testing.T) {
	s := startSession(t, nil)
	s.fails("list_gpu_offers", nil, vendors.ConfigureHint())
	m := s.ok("list_providers", nil)
	for _, v := range vendors.All() {
		if !strings.Contains(m["hint"].(string), v.Hint) {
			t.Fatalf("hint lacks %s: %v", v.Hint, m)
		}
	}
}
