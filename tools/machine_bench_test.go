package tools

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// machineBench is benchClient with the machine tools set up (an in-memory store, a workspace)
// and the first running instance the emulators list (Chenyu's sample instance), whose machine
// is an SSH server in this process on loopback.
func machineBench(b *testing.B) (id, ws string, call func(string, map[string]any) map[string]any) {
	b.Helper()
	st, err := state.Open(b.Context(), state.MemoryURL, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ws = b.TempDir()
	cl := benchClient(b, func(d *Deps) {
		w, err := work.New(work.Options{Providers: d.Providers, Store: st, Log: d.Log})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { w.Close() })
		d.Work, d.Workspace = w, ws
	})
	call = func(tool string, args map[string]any) map[string]any { return benchCall(b, cl, tool, args) }
	for _, in := range call("list_instances", map[string]any{"state": "running"})["instances"].([]any) {
		id = in.(map[string]any)["id"].(string)
		break
	}
	if id == "" {
		b.Fatal("no emulator lists a running instance")
	}
	return id, ws, call
}

// BenchmarkRunCommandTool is run_command's round trip through the MCP server on a warm
// connection (dialed and pinned before the loop): the tool call, the vendor's GetInstance
// (the instance must run), the SSH session with its wrapper, `true`, the result.
func BenchmarkRunCommandTool(b *testing.B) {
	id, _, call := machineBench(b)
	args := map[string]any{"instance_id": id, "command": "true"}
	call("run_command", args)
	b.ReportAllocs()
	for b.Loop() {
		if r := call("run_command", args); r["exit_code"] != float64(0) {
			b.Fatalf("%v", r)
		}
	}
}

// BenchmarkCopyTools is copy_to_instance and copy_from_instance of a 64 MiB file through the
// MCP server on loopback, each checked with sha256sum on the machine.
func BenchmarkCopyTools(b *testing.B) {
	id, ws, call := machineBench(b)
	const size = 64 << 20
	data := make([]byte, size)
	_, _ = rand.Read(data)
	if err := os.WriteFile(filepath.Join(ws, "payload.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	up := map[string]any{"instance_id": id, "local_path": "payload.bin", "remote_path": "payload.bin"}
	b.Run("to_instance", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if r := call("copy_to_instance", up); r["verified"] != true {
				b.Fatalf("%v", r)
			}
		}
	})
	down := map[string]any{"instance_id": id, "remote_path": "payload.bin", "local_path": "back.bin", "overwrite": true}
	b.Run("from_instance", func(b *testing.B) {
		b.SetBytes(size)
		for b.Loop() {
			if r := call("copy_from_instance", down); r["verified"] != true {
				b.Fatalf("%v", r)
			}
		}
	})
}
