package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

func TestLeaseSettingsAreChecked(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"GPU_MCP_MAX_LEASE": "1s"}, "GPU_MCP_MAX_LEASE 1s is not accepted; use a duration between 5s and 720h"},
		{map[string]string{"GPU_MCP_DEFAULT_AUTO_STOP": "1000h"}, "GPU_MCP_DEFAULT_AUTO_STOP 1000h0m0s is not accepted"},
		{map[string]string{"GPU_MCP_MAX_LEASE": "2h", "GPU_MCP_DEFAULT_AUTO_STOP": "3h"}, "GPU_MCP_DEFAULT_AUTO_STOP 3h0m0s is longer than GPU_MCP_MAX_LEASE 2h0m0s"},
		{map[string]string{"GPU_MCP_MAX_LEASE": "soon"}, "GPU_MCP_MAX_LEASE is not accepted"},
	} {
		if _, _, err := loadConfig(nil, c.env); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want an error containing %q", c.env, err, c.want)
		}
	}
	cfg, _, err := loadConfig(nil, map[string]string{"GPU_MCP_MAX_LEASE": "8h", "GPU_MCP_DEFAULT_AUTO_STOP": "2h"})
	if err != nil || cfg.MaxLease != 8*time.Hour || cfg.DefaultAutoStop != 2*time.Hour {
		t.Fatalf("%+v %v", cfg, err)
	}
	var stderr bytes.Buffer
	env := map[string]string{"GPU_MCP_STATE_URL": state.MemoryURL, testHookEnv: "explode"}
	if code := run([]string{"tools"}, env, strings.NewReader(""), &bytes.Buffer{}, &stderr); code != 2 || !strings.Contains(stderr.String(), "for crash tests only, and takes pause_after_buy") {
		t.Fatalf("a wrong test hook: exit %d: %s", code, stderr.String())
	}
}

// gpu-mcp reap exits 1, with a FAILED line, when a due lease cannot be carried out (here:
// its provider is not configured), and gpu-mcp leases shows it overdue with its error.
func TestReapFailsLoudly(t *testing.T) {
	url := statetest.SQLiteURL(t)
	store := statetest.Open(t, url, state.Options{})
	due := time.Now().Add(-time.Minute).Truncate(time.Second)
	if _, err := store.PutLease(context.Background(), state.Lease{InstanceID: "nowhere:m-1", Provider: "nowhere", Kind: state.LeaseTime,
		Action: state.ActionStop, DueAt: due, Enforcer: state.EnforcerGPUMCP}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"GPU_MCP_STATE_URL": url, "GPU_MCP_LOG_LEVEL": "error"}
	var stdout, stderr bytes.Buffer
	code := run([]string{"reap"}, env, strings.NewReader(""), &stdout, &stderr)
	want := "FAILED nowhere:m-1 (auto-stop due " + due.UTC().Format(time.RFC3339) + "): nowhere is not configured in this gpu-mcp process"
	if code != 1 || !strings.HasPrefix(stdout.String(), want) {
		t.Fatalf("reap: exit %d:\n%s\n%s", code, stdout.String(), stderr.String())
	}
	stdout.Reset()
	if code := run([]string{"leases"}, env, strings.NewReader(""), &stdout, &stderr); code != 0 ||
		!strings.Contains(stdout.String(), "OVERDUE since "+due.UTC().Format(time.RFC3339)) || !strings.Contains(stdout.String(), "nowhere is not configured") {
		t.Fatalf("leases: exit %d:\n%s", code, stdout.String())
	}
}

// gpu-mcp leases shows a lease on work with what it waits for, pending, never overdue.
func TestLeasesShowsLeasesOnWork(t *testing.T) {
	url := statetest.SQLiteURL(t)
	store := statetest.Open(t, url, state.Options{})
	for _, k := range []state.LeaseKind{state.LeaseJobEnd, state.LeaseGPUIdle} {
		if _, err := store.PutLease(context.Background(), state.Lease{InstanceID: "nowhere:m-1", Provider: "nowhere", Kind: k,
			Action: state.ActionStop, Params: []byte(`{"job_id":"job-1","below_pct":5,"for":"30m"}`), Enforcer: state.EnforcerGPUMCP}); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	env := map[string]string{"GPU_MCP_STATE_URL": url, "GPU_MCP_LOG_LEVEL": "error"}
	if code := run([]string{"leases"}, env, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("leases: exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	if !strings.Contains(out, "when its jobs end") || !strings.Contains(out, "when its GPUs stay idle") || strings.Contains(out, "OVERDUE") || strings.Count(out, "pending") != 2 {
		t.Fatalf("leases:\n%s", out)
	}
}
