package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/redact"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// echoingVendors starts every vendor's emulator answering every request with an error body
// that quotes its Authorization header, URL and headers, and returns the environment that points
// gpu-mcp at them, the secrets that environment holds, and calls that reach every vendor, read
// and guarded.
func echoingVendors(t *testing.T, status int) (map[string]string, []string, []echoCall) {
	t.Helper()
	const confirmSecret = "confirm-secret-0123456789abcdef0123456789"
	env := map[string]string{
		"GPU_MCP_CONFIRM_SECRET": confirmSecret, "GPU_MCP_LOG_LEVEL": "debug",
		"GPU_MCP_READ_RETRIES": "0", "GPU_MCP_OFFER_CACHE_TTL": "0", "GPU_MCP_STATE_URL": state.MemoryURL,
	}
	secrets := []string{confirmSecret}
	calls := []echoCall{{"list_providers", `{}`}, {"list_gpu_offers", `{}`}, {"list_instances", `{}`}}
	for i, v := range vendors.All() {
		e, err := vendors.Emulate(v, emulated.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		e.SetFaults(emulated.Faults{EchoStatus: status})
		for k, val := range e.Env {
			env[k] = val
		}
		secrets = append(secrets, e.Credential())
		id := func(local string) string { return fmt.Sprintf("%q", v.Name+":"+local) }
		calls = append(calls,
			echoCall{"list_images", `{"provider":"` + v.Name + `"}`},
			echoCall{"get_instance", `{"instance_id":` + id("inst-0123456789") + `}`})
		// One guarded call of each kind is enough: they share the path to the vendor.
		if i%2 == 0 {
			calls = append(calls, echoCall{"stop_instance", `{"instance_id":` + id("inst-0123") + `}`})
		} else {
			calls = append(calls, echoCall{"launch_instance", `{"offer_id":` + id("x") + `,"image_id":` + id("y") + `}`})
		}
	}
	return env, secrets, calls
}

// echoCall is one tool call with its arguments.
type echoCall struct{ tool, args string }

func assertNoSecret(t *testing.T, what, text string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q:\n%s", what, s, text)
		}
	}
}

func TestEchoingVendorsLeakNoKeyThroughCall(t *testing.T) {
	for _, status := range []int{200, 401, 500} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			env, secrets, calls := echoingVendors(t, status)
			var stdout, stderr bytes.Buffer
			for _, c := range calls {
				run([]string{"call", c.tool, c.args}, env, strings.NewReader(""), &stdout, &stderr)
			}
			assertNoSecret(t, "the tool results (stdout)", stdout.String(), secrets)
			assertNoSecret(t, "stderr", stderr.String(), secrets)
			// The echo got through (redacted): otherwise this test proves nothing.
			if !strings.Contains(stdout.String(), redact.Mask) {
				t.Fatalf("no result quoted the vendors' echo:\n%s", stdout.String())
			}
		})
	}
}

func TestEchoingVendorsLeakNoKeyThroughTheTools(t *testing.T) {
	env, secrets, calls := echoingVendors(t, 403)
	var logs bytes.Buffer
	cfg, _, err := loadConfig(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	stderr := cfg.redactor.Writer(&logs)
	app, err := newApp(cfg, newLogger(cfg.LogLevel, stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	ctx := context.Background()
	c, err := client.NewInProcessClient(app.Server)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	var results strings.Builder
	for _, call := range calls {
		req := mcp.CallToolRequest{}
		req.Params.Name = call.tool
		req.Params.Arguments = json.RawMessage(call.args)
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", call.tool, err)
		}
		b, err := json.Marshal(res) // text, structuredContent and all
		if err != nil {
			t.Fatal(err)
		}
		results.Write(b)
	}
	stderr.Flush()
	assertNoSecret(t, "the tool results", results.String(), secrets)
	assertNoSecret(t, "the log", logs.String(), secrets)
	if !strings.Contains(results.String(), "structuredContent") || !strings.Contains(results.String(), redact.Mask) {
		t.Fatalf("the results do not quote the vendors' echo:\n%s", results.String())
	}
}
