package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/crypto/ssh"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// Work on the machine through an MCP client over stdio, on each vendor of the list: the
// emulator runs in this test process (its instances are real SSH machines on loopback), the
// gpu-mcp process talks to it as to the vendor.

// machineSession is a session whose machine tools' answers are kept, to look for secrets in.
type machineSession struct {
	*session
	mu   sync.Mutex
	seen strings.Builder
}

var machineToolNames = []string{"gpu_status", "run_command", "copy_to_instance", "copy_from_instance", "start_job", "job_status", "job_logs", "stop_job"}

func (s *machineSession) call(tool string, args map[string]any) map[string]any {
	s.t.Helper()
	res, m := s.session.call(tool, args)
	if slices.Contains(machineToolNames, tool) {
		b, _ := json.Marshal(res)
		s.mu.Lock()
		s.seen.Write(b)
		s.mu.Unlock()
	}
	if res.IsError {
		s.t.Fatalf("%s %v: %s", tool, args, resultText(res))
	}
	return m
}

func (s *machineSession) fails(tool string, args map[string]any, want ...string) {
	s.t.Helper()
	res, _ := s.session.call(tool, args)
	for _, w := range want {
		if !res.IsError || !strings.Contains(resultText(res), w) {
			s.t.Fatalf("%s %v: %q, want an error saying %q", tool, args, resultText(res), w)
		}
	}
}

// testKey is an inline private key for GPU_MCP_SSH_KEY, which no machine accepts (they log in
// with the vendor's password): it must never show anywhere.
func testKey(t *testing.T) string {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(block))
}

// keyParts are the parts of a PEM key that would give it away.
func keyParts(key string) []string {
	var out []string
	for _, line := range strings.Split(key, "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// machineLaunch is a running instance launched for a test.
type machineLaunch struct {
	id, model, password string
	machine             *machinetest.Machine
}

// launchOne buys v's cheapest available hourly instance of one GPU and waits until its SSH
// server answers.
func launchOne(t *testing.T, s *machineSession, v providers.Vendor, emu *vendors.Emulated) machineLaunch {
	t.Helper()
	m := s.ok("list_gpu_offers", map[string]any{"provider": v.Name, "billing": "hourly", "available_only": true, "limit": 100})
	var offer map[string]any
	for _, o := range m["offers"].([]any) {
		if o := o.(map[string]any); slices.Contains(o["gpu_counts"].([]any), any(float64(1))) {
			offer = o
			break
		}
	}
	if offer == nil {
		t.Fatalf("%s: no available hourly offer of one GPU", v.Name)
	}
	res := s.confirm("launch_instance", map[string]any{"offer_id": offer["id"], "image_id": imageFor(t, s.session, offer["id"].(string)),
		"gpu_count": 1, "billing": "hourly"}, emu.Changes)
	id, _ := res["instance_id"].(string)
	if res["ready"] != true || id == "" {
		t.Fatalf("%s: launch %v", v.Name, res)
	}
	inst := s.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)
	pw, _ := inst["connection"].(map[string]any)["ssh_password"].(string)
	mach, ok := emu.Machine(local(id))
	if !ok || pw == "" {
		t.Fatalf("%s: no machine or no password for %s", v.Name, id)
	}
	return machineLaunch{id: id, model: offer["gpu_model"].(string), password: pw, machine: mach}
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// noSecrets fails when a secret is in the server's stderr, the machine tools' answers, the
// audit log file or the store's audit trail.
func (s *machineSession) noSecrets(auditFile string, trail []state.AuditRecord, secrets ...string) {
	s.t.Helper()
	s.mu.Lock()
	seen := s.seen.String()
	s.mu.Unlock()
	audit, err := os.ReadFile(auditFile)
	if err != nil || len(audit) == 0 {
		s.t.Fatalf("no audit log at %s: %v", auditFile, err)
	}
	trailJSON, _ := json.Marshal(trail)
	for where, text := range map[string]string{"stderr": s.stderr.String(), "the results": seen, "the audit log file": string(audit), "the store's audit trail": string(trailJSON)} {
		for _, sec := range secrets {
			if sec == "" {
				s.t.Fatal("an empty secret to look for")
			}
			if strings.Contains(text, sec) {
				s.t.Errorf("%s holds a secret (%.8s...)", where, sec)
			}
		}
	}
}

func TestStdioWorkOnTheMachineOfEveryVendor(t *testing.T) {
	for _, v := range vendors.All() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			emu, env := emulate(t, v, emulated.Options{})
			ws, dir := t.TempDir(), t.TempDir()
			key := testKey(t)
			storeURL := "sqlite://" + filepath.ToSlash(filepath.Join(dir, "state.db"))
			auditFile := filepath.Join(dir, "audit.jsonl")
			s := &machineSession{session: startSession(t, append(env, "GPU_MCP_WORKSPACE="+ws, "GPU_MCP_AUDIT_LOG="+auditFile,
				"GPU_MCP_SSH_KEY="+key, "GPU_MCP_STATE_URL="+storeURL, "GPU_MCP_POLL_INTERVAL=100ms"))}
			l := launchOne(t, s, v, emu)

			g := s.call("gpu_status", map[string]any{"instance_id": l.id})
			if gpus := g["gpus"].([]any); len(gpus) != 1 || gpus[0].(map[string]any)["name"] != l.model {
				t.Fatalf("gpu_status %v; the offer is 1 x %s", g, l.model)
			}

			script := []byte("echo epoch 1\nsleep 0.2\necho epoch 2\nprintf 'weights of %s\\n' \"$(pwd)\" >model.ckpt\n" +
				"while [ ! -e release ]; do sleep 0.05; done\necho done\nexit 7\n")
			if err := os.WriteFile(filepath.Join(ws, "train.sh"), script, 0o644); err != nil {
				t.Fatal(err)
			}
			up := s.call("copy_to_instance", map[string]any{"instance_id": l.id, "local_path": "train.sh", "remote_path": "run/train.sh"})
			if f := up["files"].([]any); up["verified"] != true || len(f) != 1 || f[0].(map[string]any)["sha256"] != sha(script) {
				t.Fatalf("copy_to_instance %v", up)
			}

			job := s.call("start_job", map[string]any{"instance_id": l.id, "command": "sh train.sh", "dir": "run", "stop_instance_when_done": true})
			jobID, _ := job["job_id"].(string)
			if job["state"] != "running" || jobID == "" {
				t.Fatalf("start_job %v", job)
			}
			var lines []string
			offset := 0.0
			for deadline := time.Now().Add(time.Minute); !slices.Contains(lines, "epoch 2"); time.Sleep(50 * time.Millisecond) {
				logs := s.call("job_logs", map[string]any{"instance_id": l.id, "job_id": jobID, "offset": offset})
				if logs["job_state"] != "running" {
					t.Fatalf("job_logs while it runs: %v", logs)
				}
				for _, line := range logs["lines"].([]any) {
					lines = append(lines, line.(string))
				}
				offset = logs["next_offset"].(float64)
				if time.Now().After(deadline) {
					t.Fatalf("the log holds %q after a minute", lines)
				}
			}
			if !slices.Equal(lines, []string{"epoch 1", "epoch 2"}) {
				t.Fatalf("followed by offset: %q", lines)
			}
			if st := s.call("job_status", map[string]any{"instance_id": l.id, "job_id": jobID}); st["state"] != "running" {
				t.Fatalf("job_status while it runs: %v", st)
			}
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
				if _, err := os.Stat(filepath.Join(l.machine.Dir(), "run", "model.ckpt")); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("no checkpoint after a minute")
				}
			}
			down := s.call("copy_from_instance", map[string]any{"instance_id": l.id, "remote_path": "run/model.ckpt", "local_path": "results/"})
			got, err := os.ReadFile(filepath.Join(ws, "results", "model.ckpt"))
			if f := down["files"].([]any); err != nil || down["verified"] != true || len(f) != 1 || f[0].(map[string]any)["sha256"] != sha(got) ||
				!strings.HasPrefix(string(got), "weights of ") {
				t.Fatalf("copy_from_instance %v; local %q %v", down, got, err)
			}

			s.call("run_command", map[string]any{"instance_id": l.id, "command": "touch run/release"})
			var st map[string]any
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
				if st = s.call("job_status", map[string]any{"instance_id": l.id, "job_id": jobID}); st["state"] != "running" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the job still runs a minute after its release")
				}
			}
			if st["state"] != "exited" || st["exit_code"] != float64(7) {
				t.Fatalf("job_status after the end: %v", st)
			}

			// The job has ended: gpu-mcp's reconciler stops the instance by itself (the lease of
			// stop_instance_when_done), and what the job did stays known.
			if w := s.ok("wait_instance", map[string]any{"instance_id": l.id, "until": "stopped", "timeout": "1m"}); w["reached"] != true {
				t.Fatalf("the instance was not stopped by its lease: %v", w)
			}
			if st := s.call("job_status", map[string]any{"instance_id": l.id, "job_id": jobID}); st["source"] != "record" || st["exit_code"] != float64(7) {
				t.Fatalf("job_status of the stopped instance: %v", st)
			}
			list := s.ok("list_instances", map[string]any{"provider": v.Name, "state": "running"})
			if slices.Contains(instanceIDs(list), l.id) {
				t.Fatalf("still running: %v", list)
			}
			s.confirm("destroy_instance", map[string]any{"instance_id": l.id}, emu.Changes)
			if _, ok := emu.SSHAddr(local(l.id)); ok {
				t.Fatal("the destroyed instance still exists at the vendor")
			}
			if m := s.ok("list_instances", map[string]any{"provider": v.Name}); slices.Contains(instanceIDs(m), l.id) {
				t.Fatalf("left at the vendor: %v", m)
			}

			st2, err := state.Open(t.Context(), storeURL, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st2.Close()
			trail, err := st2.ListAudit(t.Context(), time.Time{}, 0)
			if err != nil || !slices.ContainsFunc(trail, func(r state.AuditRecord) bool { return r.Tool == "start_job" && r.Outcome == "done" }) {
				t.Fatalf("the store's audit trail has no start_job: %v %v", len(trail), err)
			}
			if !slices.ContainsFunc(trail, func(r state.AuditRecord) bool {
				return r.Tool == "auto_stop" && r.Outcome == "done" && r.Confirmation == "asked_with_the_work" && strings.Contains(r.Detail, "when its jobs end")
			}) {
				t.Fatalf("the store's audit trail has no auto-stop by the job's lease: %+v", trail)
			}
			s.noSecrets(auditFile, trail, append([]string{l.password, emu.Credential()}, keyParts(key)...)...)
		})
	}
}

// A changed host key is refused, an output over the cap is cut with its tail kept, a command
// past its timeout is killed on the machine, and a job survives its MCP client going away.
func TestStdioMachineSafety(t *testing.T) {
	v := vendors.All()[0]
	emu, env := emulate(t, v, emulated.Options{})
	dir := t.TempDir()
	env = append(env, "GPU_MCP_WORKSPACE="+t.TempDir(), "GPU_MCP_STATE_URL=sqlite://"+filepath.ToSlash(filepath.Join(dir, "state.db")))
	s := &machineSession{session: startSession(t, env)}
	l := launchOne(t, s, v, emu)

	r := s.call("run_command", map[string]any{"instance_id": l.id, "command": "seq 1 20000; echo LAST LINE"})
	if out := r["stdout"].(string); r["stdout_truncated_bytes"].(float64) <= 0 || !strings.HasSuffix(out, "19999\n20000\nLAST LINE\n") || r["exit_code"] != float64(0) {
		t.Fatalf("over the cap: cut %v, tail %q", r["stdout_truncated_bytes"], out[max(len(out)-40, 0):])
	}
	r = s.call("run_command", map[string]any{"instance_id": l.id, "command": "echo $$ >sleeper.pid; exec sleep 600", "timeout": "1s"})
	if r["timed_out"] != true {
		t.Fatalf("timeout: %v", r)
	}
	pidText, err := os.ReadFile(filepath.Join(l.machine.Dir(), "sleeper.pid"))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile("/proc/" + strings.TrimSpace(string(pidText)) + "/stat"); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Fatalf("the timed-out command still runs on the machine: %s", b)
	}

	job := s.call("start_job", map[string]any{"instance_id": l.id, "command": "sleep 1; echo survived"})
	jobID := job["job_id"].(string)
	s.c.Close() // the client goes away, and with it the gpu-mcp process
	s2 := &machineSession{session: startSession(t, env)}
	var st map[string]any
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if st = s2.call("job_status", map[string]any{"instance_id": l.id, "job_id": jobID}); st["state"] != "running" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the job still runs after a minute")
		}
	}
	logs := s2.call("job_logs", map[string]any{"instance_id": l.id, "job_id": jobID})
	if st["state"] != "exited" || st["exit_code"] != float64(0) || !slices.Contains(logs["lines"].([]any), any("survived")) {
		t.Fatalf("after the client went away: %v, log %v", st, logs["lines"])
	}

	// The instance is rebuilt: a new host key, and a reboot (a stop and a start here). The key pinned in the store (by
	// the first process) no longer matches: refused until the user says so.
	if _, err := l.machine.RotateHostKey(); err != nil {
		t.Fatal(err)
	}
	s2.confirm("stop_instance", map[string]any{"instance_id": l.id}, emu.Changes)
	s2.confirm("start_instance", map[string]any{"instance_id": l.id}, emu.Changes)
	if w := s2.ok("wait_instance", map[string]any{"instance_id": l.id, "until": "ssh_ready", "timeout": "30s"}); w["reached"] != true {
		t.Fatalf("after the restart: %v", w)
	}
	before := l.machine.Stats().Commands
	s2.fails("run_command", map[string]any{"instance_id": l.id, "command": "echo must not run"}, "host key of instance "+l.id+" changed", "accept_new_host_key=true")
	if l.machine.Stats().Commands != before {
		t.Fatal("a command reached the machine whose host key changed")
	}
	if r := s2.call("run_command", map[string]any{"instance_id": l.id, "command": "echo trusted again", "accept_new_host_key": true}); r["stdout"] != "trusted again\n" {
		t.Fatalf("after accepting the new key: %v", r)
	}
	s2.noSecretsShown(l.password)
}

// noSecretsShown looks for secrets in stderr and the machine tools' answers.
func (s *machineSession) noSecretsShown(secrets ...string) {
	s.t.Helper()
	s.mu.Lock()
	seen := s.seen.String()
	s.mu.Unlock()
	for _, sec := range secrets {
		if strings.Contains(s.stderr.String(), sec) || strings.Contains(seen, sec) {
			s.t.Errorf("a secret (%.8s...) was logged or returned", sec)
		}
	}
}

// The tool lists as GPU_MCP_EXEC has them.
func TestStdioExecModes(t *testing.T) {
	for _, c := range []struct {
		env  string
		want int
	}{{"GPU_MCP_EXEC=off", 20}, {"GPU_MCP_EXEC=confirm", 24}} {
		s := startSession(t, []string{c.env}, "--demo")
		res, err := s.c.ListTools(context.Background(), mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Tools) != c.want {
			t.Errorf("%s: %d tools, want %d", c.env, len(res.Tools), c.want)
		}
		for _, tool := range res.Tools {
			if c.env == "GPU_MCP_EXEC=off" && (tool.Name == "run_command" || tool.Name == "start_job" || tool.Name == "copy_to_instance" || tool.Name == "stop_job") {
				t.Errorf("GPU_MCP_EXEC=off serves %s", tool.Name)
			}
			if tool.Name == "run_command" && c.env == "GPU_MCP_EXEC=confirm" && !strings.Contains(tool.Description, "confirm_token") {
				t.Errorf("run_command under GPU_MCP_EXEC=confirm does not say it is guarded: %s", tool.Description)
			}
		}
	}
}
