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

	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
	"github.com/gpu-mcp/gpu-mcp/providers/redact"
)

// echoingVendors starts the three emulators answering every request with an error body that
// quotes its Authorization header, URL and headers, and returns the environment that points
// gpu-mcp at them, and the secrets that environment holds.
func echoingVendors(t *testing.T, status int) (map[string]string, []string) {
	t.Helper()
	hxy := hxytest.NewServer(hxytest.Options{})
	df := dftest.NewServer(dftest.Options{})
	cy := cytest.NewServer(cytest.Options{})
	t.Cleanup(func() { hxy.Close(); df.Close(); cy.Close() })
	hxy.SetFaults(hxytest.Faults{EchoStatus: status})
	df.SetFaults(dftest.Faults{EchoStatus: status})
	cy.SetFaults(cytest.Faults{EchoStatus: status})
	const confirmSecret = "confirm-secret-0123456789abcdef0123456789"
	env := map[string]string{
		"HUIXINGYUN_TOKEN": hxy.Token(), "HUIXINGYUN_BASE_URL": hxy.URL(),
		"DATENFAB_TOKEN": df.Token(), "DATENFAB_NAMESPACE": df.Namespace(), "DATENFAB_BASE_URL": df.URL(),
		"CHENYU_API_KEY": cy.APIKey(), "CHENYU_BASE_URL": cy.URL(),
		"GPU_MCP_CONFIRM_SECRET": confirmSecret, "GPU_MCP_LOG_LEVEL": "debug",
		"GPU_MCP_READ_RETRIES": "0", "GPU_MCP_OFFER_CACHE_TTL": "0",
	}
	return env, []string{hxy.Token(), df.Token(), cy.APIKey(), confirmSecret}
}

// echoCalls are tool calls that reach every vendor, read and guarded.
var echoCalls = []struct{ tool, args string }{
	{"list_providers", `{}`},
	{"list_gpu_offers", `{}`},
	{"list_instances", `{}`},
	{"list_images", `{"provider":"chenyu","kind":"public"}`},
	{"get_instance", `{"instance_id":"huixingyun:gpu-0123456789"}`},
	{"get_instance", `{"instance_id":"datenfab:instance-0123"}`},
	{"stop_instance", `{"instance_id":"chenyu:inst_0123"}`},
	{"launch_instance", `{"offer_id":"datenfab:x","image_id":"datenfab:y"}`},
}

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
			env, secrets := echoingVendors(t, status)
			var stdout, stderr bytes.Buffer
			for _, c := range echoCalls {
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
	env, secrets := echoingVendors(t, 403)
	var logs bytes.Buffer
	cfg, _, err := loadConfig(nil, env, &logs)
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
	for _, call := range echoCalls {
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
