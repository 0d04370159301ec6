package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers/machinetest"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// machineEnv is every vendor's emulator, with the machine tools set up: a store, a Work, a
// workspace and an audit log; everything the tools answered is kept, to look for secrets.
type machineEnv struct {
	*vendorEnv
	store     state.Store
	ws        string
	auditPath string

	mu   sync.Mutex
	seen strings.Builder
}

func newMachineEnv(t *testing.T, mode ExecMode) *machineEnv {
	t.Helper()
	st, err := state.Open(context.Background(), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	me := &machineEnv{store: st, ws: t.TempDir(), auditPath: filepath.Join(t.TempDir(), "audit.jsonl")}
	me.vendorEnv = newVendorEnv(t, envOptions{deps: func(d *Deps) {
		w, err := work.New(work.Options{Providers: d.Providers, Store: st, Log: d.Log})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { w.Close() })
		audit, err := NewAuditLog(AuditOptions{Store: st, Path: me.auditPath})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { audit.Close() })
		d.Work, d.Exec, d.Workspace, d.Audit, d.Store = w, mode, me.ws, audit, st
		// One store, as in gpu-mcp: the fleet sees the leases the machine tools put.
		d.Fleet = newTestFleet(t, d.Providers, func(o *fleet.Options) { o.Store, o.Work = st, w })
	}})
	return me
}

// machineToolNames are the tools that work on a machine.
var machineToolNames = []string{"gpu_status", "run_command", "copy_to_instance", "copy_from_instance", "start_job", "job_status", "job_logs", "stop_job"}

// call runs a tool and keeps what a machine tool answered (get_instance and launch_instance
// show the password by design).
func (e *machineEnv) call(name string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	e.t.Helper()
	res, m := e.harness.call(name, args)
	if slices.Contains(machineToolNames, name) {
		b, _ := json.Marshal(res)
		e.mu.Lock()
		e.seen.Write(b)
		e.mu.Unlock()
	}
	return res, m
}

func (e *machineEnv) ok(name string, args map[string]any) map[string]any {
	e.t.Helper()
	res, m := e.call(name, args)
	if res.IsError {
		e.t.Fatalf("%s %v: %s", name, args, text(res))
	}
	return m
}

func (e *machineEnv) fails(name string, args map[string]any, want ...string) string {
	e.t.Helper()
	res, _ := e.call(name, args)
	for _, w := range want {
		if !res.IsError || !strings.Contains(text(res), w) {
			e.t.Fatalf("%s %v: got %q, want an error saying %q", name, args, text(res), w)
		}
	}
	return text(res)
}

// confirm runs a guarded call through plan and token.
func (e *machineEnv) confirm(name string, args map[string]any) map[string]any {
	e.t.Helper()
	m := e.ok(name, args)
	if m["status"] != "confirmation_required" {
		e.t.Fatalf("%s without a token: %v", name, m)
	}
	with := map[string]any{"confirm_token": m["confirmation_token"]}
	for k, v := range args {
		with[k] = v
	}
	return e.ok(name, with)
}

// launched is an instance launched for a test, with its offer's GPU model.
type launched struct {
	vendor, id, model string
	password          string
}

// launch buys a one-GPU hourly instance of vendor through launch_instance and waits until its
// SSH server answers.
func (e *machineEnv) launch(vendor string) launched {
	e.t.Helper()
	m := e.ok("list_gpu_offers", map[string]any{"provider": vendor, "billing": "hourly", "available_only": true, "limit": 100})
	var offer map[string]any
	for _, o := range m["offers"].([]any) {
		if o := o.(map[string]any); slices.Contains(o["gpu_counts"].([]any), any(float64(1))) {
			offer = o
			break
		}
	}
	if offer == nil {
		e.t.Fatalf("%s: no hourly offer of one GPU", vendor)
	}
	images := e.ok("list_images", map[string]any{"offer_id": offer["id"], "kind": "public"})["images"].([]any)
	res := e.confirm("launch_instance", map[string]any{"offer_id": offer["id"], "image_id": images[0].(map[string]any)["id"], "gpu_count": 1, "billing": "hourly"})
	id, _ := res["instance_id"].(string)
	if res["ready"] != true || id == "" {
		e.t.Fatalf("%s: launch %v", vendor, res)
	}
	inst := e.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)
	pw, _ := inst["connection"].(map[string]any)["ssh_password"].(string)
	return launched{vendor: vendor, id: id, model: offer["gpu_model"].(string), password: pw}
}

func (e *machineEnv) machineOf(l launched) *machinetest.Machine {
	e.t.Helper()
	m, ok := e.emus[l.vendor].Machine(strings.TrimPrefix(l.id, l.vendor+":"))
	if !ok {
		e.t.Fatalf("no machine for %s", l.id)
	}
	return m
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// The workflow of an agent on every vendor: the GPUs of the offer, a script copied up, a job
// that runs it, followed by offset while it runs, its result copied back with the checksum of
// the bytes on the machine, its exit code, and the lease that stops the instance when it ends.
func TestMachineWorkflowOnEveryVendor(t *testing.T) {
	noLeaks(t)
	e := newMachineEnv(t, ExecOn)
	for _, vendor := range e.names {
		l := e.launch(vendor)
		g := e.ok("gpu_status", map[string]any{"instance_id": l.id})
		gpus := g["gpus"].([]any)
		if len(gpus) != 1 || gpus[0].(map[string]any)["name"] != l.model || g["untrusted_output"] != true {
			t.Fatalf("%s: gpu_status %v, the offer's GPU is %q", vendor, g, l.model)
		}

		script := []byte("echo step 1\nsleep 0.1\necho step 2\necho \"$(hostname) result\" >result.txt\n" +
			"while [ ! -e release ]; do sleep 0.05; done\necho step 3\nexit 7\n")
		if err := os.MkdirAll(filepath.Join(e.ws, "proj"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(e.ws, "proj", "train.sh"), script, 0o644); err != nil {
			t.Fatal(err)
		}
		up := e.ok("copy_to_instance", map[string]any{"instance_id": l.id, "local_path": "proj/train.sh", "remote_path": "work/train.sh"})
		files := up["files"].([]any)
		if up["status"] != "done" || up["verified"] != true || len(files) != 1 || files[0].(map[string]any)["sha256"] != sum(script) ||
			files[0].(map[string]any)["path"] != "work/train.sh" {
			t.Fatalf("%s: copy_to_instance %v", vendor, up)
		}

		job := e.ok("start_job", map[string]any{"instance_id": l.id, "command": "sh train.sh", "dir": "work", "stop_instance_when_done": true})
		jobID, _ := job["job_id"].(string)
		if job["state"] != "running" || jobID == "" || job["stop_instance_when_done"] != true || len(job["leases"].([]any)) != 1 {
			t.Fatalf("%s: start_job %v", vendor, job)
		}
		// get_instance shows the stop on the job's end among what gpu-mcp keeps of it.
		gi := e.ok("get_instance", map[string]any{"instance_id": l.id})
		managed, _ := gi["instance"].(map[string]any)["managed"].(map[string]any)
		if work, _ := managed["work"].([]any); len(work) != 1 || work[0].(map[string]any)["kind"] != "job_end" || work[0].(map[string]any)["action"] != "stop" {
			t.Fatalf("%s: managed after start_job: %v", vendor, managed)
		}
		// Follow the log by offset until the job has written its result.
		var lines []string
		offset := 0.0
		for deadline := time.Now().Add(time.Minute); !slices.Contains(lines, "step 2"); time.Sleep(20 * time.Millisecond) {
			logs := e.ok("job_logs", map[string]any{"instance_id": l.id, "job_id": jobID, "offset": offset})
			if logs["job_state"] != "running" || logs["untrusted_output"] != true {
				t.Fatalf("%s: job_logs %v", vendor, logs)
			}
			for _, s := range logs["lines"].([]any) {
				lines = append(lines, s.(string))
			}
			offset = logs["next_offset"].(float64)
			if time.Now().After(deadline) {
				t.Fatalf("%s: the log has %q after a minute", vendor, lines)
			}
		}
		if lines[0] != "step 1" || slices.Compact(slices.Clone(lines))[1] != "step 2" {
			t.Fatalf("%s: followed lines %q (read twice, or out of order)", vendor, lines)
		}
		if st := e.ok("job_status", map[string]any{"instance_id": l.id, "job_id": jobID}); st["state"] != "running" || st["source"] != "machine" {
			t.Fatalf("%s: job_status while it runs: %v", vendor, st)
		}
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if _, err := os.Stat(filepath.Join(e.machineOf(l).Dir(), "work", "result.txt")); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no result after a minute", vendor)
			}
		}
		down := e.ok("copy_from_instance", map[string]any{"instance_id": l.id, "remote_path": "work/result.txt", "local_path": "out/" + vendor + "/"})
		got, err := os.ReadFile(filepath.Join(e.ws, "out", vendor, "result.txt"))
		files = down["files"].([]any)
		if err != nil || down["verified"] != true || len(files) != 1 || files[0].(map[string]any)["sha256"] != sum(got) || !strings.HasSuffix(string(got), " result\n") {
			t.Fatalf("%s: copy_from_instance %v, local file %q %v", vendor, down, got, err)
		}
		e.fails("copy_from_instance", map[string]any{"instance_id": l.id, "remote_path": "work/result.txt", "local_path": "out/" + vendor + "/"},
			"exists; nothing was downloaded")

		e.ok("run_command", map[string]any{"instance_id": l.id, "command": "touch work/release"})
		var st map[string]any
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
			if st = e.ok("job_status", map[string]any{"instance_id": l.id, "job_id": jobID}); st["state"] != "running" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the job still runs a minute after its release", vendor)
			}
		}
		if st["state"] != "exited" || st["exit_code"] != float64(7) {
			t.Fatalf("%s: job_status after the end: %v", vendor, st)
		}
		res, m := e.call("job_logs", map[string]any{"instance_id": l.id, "job_id": "job-nosuch", "lines": 1})
		if !res.IsError || m["kind"] != "not_found" || m["field"] != "job_id" || strings.Contains(text(res), "try again") {
			t.Fatalf("%s: job_logs of a job the machine does not know: %v %q", vendor, m, text(res))
		}
		tail := e.ok("job_logs", map[string]any{"instance_id": l.id, "job_id": jobID, "lines": 1})
		if ls := tail["lines"].([]any); len(ls) != 1 || ls[0] != "step 3" || tail["exit_code"] != float64(7) {
			t.Fatalf("%s: the last line: %v", vendor, tail)
		}
		rec, err := e.store.GetJob(t.Context(), jobID)
		if err != nil || rec.ExitCode == nil || *rec.ExitCode != 7 || rec.InstanceID != l.id || !rec.StopInstanceWhenDone {
			t.Fatalf("%s: the job's record %+v %v", vendor, rec, err)
		}
		leases, err := e.store.ListLeases(t.Context(), state.LeaseFilter{InstanceID: l.id, Kind: state.LeaseJobEnd, Pending: true})
		if err != nil || len(leases) != 1 {
			t.Fatalf("%s: job_end lease %v %v", vendor, leases, err)
		}
		c, err := e.deps.Work.CheckLease(t.Context(), leases[0], time.Now())
		if err != nil || !c.Due || !strings.Contains(c.Reason, "exited with status 7") {
			t.Fatalf("%s: the lease after the job: %+v %v", vendor, c, err)
		}
		e.noSecret(l.password)
	}
}

// noSecret fails when s appears in anything the tools answered or in the audit log.
func (e *machineEnv) noSecret(s string) {
	e.t.Helper()
	if s == "" {
		e.t.Fatal("no secret to look for")
	}
	e.mu.Lock()
	seen := e.seen.String()
	e.mu.Unlock()
	audit, _ := os.ReadFile(e.auditPath)
	for where, text := range map[string]string{"the results": seen, "the audit log": string(audit)} {
		if strings.Contains(text, s) {
			e.t.Errorf("%s hold the SSH password", where)
		}
	}
}

// A launch can ask to be stopped once its GPUs stay idle: the plan says so, and the lease is in
// the store once the instance runs.
func TestLaunchWithStopWhenGPUIdle(t *testing.T) {
	noLeaks(t)
	e := newMachineEnv(t, ExecOn)
	vendor := e.names[0]
	m := e.ok("list_gpu_offers", map[string]any{"provider": vendor, "billing": "hourly", "available_only": true, "limit": 100})
	offer := m["offers"].([]any)[0].(map[string]any)
	images := e.ok("list_images", map[string]any{"offer_id": offer["id"], "kind": "public"})["images"].([]any)
	args := map[string]any{"offer_id": offer["id"], "image_id": images[0].(map[string]any)["id"], "billing": "hourly",
		"stop_when_gpu_idle": map[string]any{"below_pct": 5, "for": "30m"}}
	plan := e.ok("launch_instance", args)
	effects, _ := json.Marshal(plan["plan"].(map[string]any)["effects"])
	if !strings.Contains(string(effects), "under 5% utilization for 30m") {
		t.Fatalf("the plan does not say it: %s", effects)
	}
	res := e.confirm("launch_instance", args)
	id, _ := res["instance_id"].(string)
	idle, _ := res["idle_stop"].(map[string]any)
	if idle == nil || idle["kind"] != "gpu_idle" || idle["action"] != "stop" {
		t.Fatalf("launch: %v", res)
	}
	leases, err := e.store.ListLeases(t.Context(), state.LeaseFilter{InstanceID: id, Kind: state.LeaseGPUIdle, Pending: true})
	if err != nil || len(leases) != 1 || !strings.Contains(string(leases[0].Params), `"for":"30m0s"`) {
		t.Fatalf("the lease: %+v %v", leases, err)
	}
	args["wait"] = false
	e.fails("launch_instance", args, "stop_when_gpu_idle needs wait=true")
	args["wait"] = true
	args["stop_when_gpu_idle"] = map[string]any{"below_pct": 5, "for": "10s"}
	e.fails("launch_instance", args, "from 1m to 24h")
}

func TestRunCommandCapsTimesOutAndStreams(t *testing.T) {
	noLeaks(t)
	e := newMachineEnv(t, ExecOn)
	l := e.launch(e.names[0])
	r := e.ok("run_command", map[string]any{"instance_id": l.id, "command": "head -c 100000 /dev/zero | tr '\\0' x; echo; echo THE-END; echo oops >&2; exit 3"})
	out, _ := r["stdout"].(string)
	if r["exit_code"] != float64(3) || r["stderr"] != "oops\n" || r["stdout_truncated_bytes"].(float64) <= 0 || !strings.HasSuffix(out, "xx\nTHE-END\n") ||
		len(out) != maxToolOutput || r["untrusted_output"] != true {
		t.Fatalf("capped: exit %v stderr %q cut %v, %d bytes ending %q", r["exit_code"], r["stderr"], r["stdout_truncated_bytes"], len(out), out[max(len(out)-20, 0):])
	}
	// A command past its timeout is killed on the machine, not merely left behind.
	r = e.ok("run_command", map[string]any{"instance_id": l.id, "command": "echo $$ >sleeper.pid; exec sleep 300", "timeout": "1s"})
	if r["timed_out"] != true || r["exit_code"] != float64(-1) {
		t.Fatalf("timeout: %v", r)
	}
	r = e.ok("run_command", map[string]any{"instance_id": l.id, "command": "if kill -0 $(cat sleeper.pid) 2>/dev/null; then echo alive; else echo gone; fi"})
	if r["stdout"] != "gone\n" {
		t.Fatalf("the timed-out command on the machine: %v", r["stdout"])
	}
	e.fails("run_command", map[string]any{"instance_id": l.id, "command": "true", "timeout": "2m"}, "from 1s to 45s (the call budget, GPU_MCP_CALL_BUDGET)")

	// Output lines come as progress notifications while the command runs.
	var mu sync.Mutex
	var progress []string
	e.c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			mu.Lock()
			progress = append(progress, n.Params.AdditionalFields["message"].(string))
			mu.Unlock()
		}
	})
	req := mcp.CallToolRequest{}
	req.Params.Name = "run_command"
	req.Params.Arguments = map[string]any{"instance_id": l.id, "command": "echo first; sleep 0.5; echo second >&2"}
	req.Params.Meta = &mcp.Meta{ProgressToken: "run-1"}
	if res, err := e.c.CallTool(t.Context(), req); err != nil || res.IsError {
		t.Fatalf("%v %v", res, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		got := slices.Clone(progress)
		mu.Unlock()
		if slices.Equal(got, []string{"stdout| first", "stderr| second"}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress %q", got)
		}
	}
}

func TestChangedHostKeyIsRefusedUntilAccepted(t *testing.T) {
	noLeaks(t)
	e := newMachineEnv(t, ExecOn)
	l := e.launch(e.names[0])
	e.ok("run_command", map[string]any{"instance_id": l.id, "command": "true"})
	m := e.machineOf(l)
	if _, err := m.RotateHostKey(); err != nil {
		t.Fatal(err)
	}
	e.deps.Work.Pool().Disconnect(l.id) // a new connection, as after a reboot
	commands := m.Stats().Commands
	for _, tool := range []string{"run_command", "gpu_status"} {
		args := map[string]any{"instance_id": l.id}
		if tool == "run_command" {
			args["command"] = "echo should not run"
		}
		e.fails(tool, args, "host key of instance "+l.id+" changed", "accept_new_host_key=true")
	}
	if m.Stats().Commands != commands {
		t.Fatal("a command reached a machine whose host key changed")
	}
	r := e.ok("run_command", map[string]any{"instance_id": l.id, "command": "echo accepted", "accept_new_host_key": true})
	if r["stdout"] != "accepted\n" {
		t.Fatalf("after accepting: %v", r)
	}
	e.ok("gpu_status", map[string]any{"instance_id": l.id})
	audit, _ := os.ReadFile(e.auditPath)
	if !strings.Contains(string(audit), `"tool":"accept_new_host_key"`) || !strings.Contains(string(audit), l.id) {
		t.Fatalf("the accepted key is not in the audit log: %s", audit)
	}
}

func TestExecConfirmPlansFirst(t *testing.T) {
	noLeaks(t)
	e := newMachineEnv(t, ExecConfirm)
	l := e.launch(e.names[0])
	m := e.machineOf(l)
	before := m.Stats().Commands
	plan := e.ok("run_command", map[string]any{"instance_id": l.id, "command": "echo hello >greeting"})
	p, _ := plan["plan"].(map[string]any)
	if plan["status"] != "confirmation_required" || p == nil || !slices.Contains(p["effects"].([]any), any("command: echo hello >greeting")) {
		t.Fatalf("plan %v", plan)
	}
	if m.Stats().Commands != before {
		t.Fatal("a plan ran a command on the machine")
	}
	r := e.confirm("run_command", map[string]any{"instance_id": l.id, "command": "cat greeting 2>/dev/null || echo none"})
	if r["status"] != "done" || r["stdout"] != "none\n" {
		t.Fatalf("confirmed: %v", r)
	}
	if err := os.WriteFile(filepath.Join(e.ws, "f.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"copy_to_instance", map[string]any{"instance_id": l.id, "local_path": "f.txt", "remote_path": "f.txt"}, "Copy f.txt (1 file, 1 bytes)"},
		{"start_job", map[string]any{"instance_id": l.id, "command": "sleep 1", "stop_instance_when_done": true}, "Start a job"},
		{"stop_job", map[string]any{"instance_id": l.id, "job_id": "job-x"}, "Stop job job-x"},
	} {
		if m := e.ok(c.tool, c.args); m["status"] != "confirmation_required" || !strings.Contains(m["plan"].(map[string]any)["summary"].(string), c.want) {
			t.Errorf("%s: %v", c.tool, m)
		}
	}
	if _, err := os.Stat(filepath.Join(m.Dir(), "f.txt")); !os.IsNotExist(err) {
		t.Fatal("a planned copy reached the machine")
	}
	if ls, _ := e.store.ListJobs(t.Context(), l.id); len(ls) != 0 {
		t.Fatalf("a planned job started: %v", ls)
	}
}

func TestExecOffAndReadOnlyOfferOnlyTheReadTools(t *testing.T) {
	reads := []string{"copy_from_instance", "gpu_status", "job_logs", "job_status"}
	for _, d := range []*Deps{{Exec: ExecOff}, {ReadOnly: true}} {
		var got []string
		for _, tool := range Registered(d) {
			if slices.Contains(machineToolNames, tool.Name) {
				got = append(got, tool.Name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, reads) {
			t.Errorf("exec %q read-only %v: machine tools %v, want %v", d.Exec, d.ReadOnly, got, reads)
		}
	}
	if _, err := ParseExecMode("sometimes"); err == nil || !strings.Contains(err.Error(), "on ") {
		t.Fatalf("a bad GPU_MCP_EXEC: %v", err)
	}
}

func TestWorkOnAnInstanceThatDoesNotRun(t *testing.T) {
	noLeaks(t)
	e := newMachineEnv(t, ExecOn)
	l := e.launch(e.names[0])
	job := e.ok("start_job", map[string]any{"instance_id": l.id, "command": "exit 4"})
	jobID := job["job_id"].(string)
	for deadline := time.Now().Add(time.Minute); e.ok("job_status", map[string]any{"instance_id": l.id, "job_id": jobID})["state"] == "running"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the job still runs after a minute")
		}
	}
	e.confirm("stop_instance", map[string]any{"instance_id": l.id})
	e.fails("run_command", map[string]any{"instance_id": l.id, "command": "true"}, "is stopped", "start_instance")
	e.fails("gpu_status", map[string]any{"instance_id": l.id}, "is stopped")
	st := e.ok("job_status", map[string]any{"instance_id": l.id, "job_id": jobID})
	if st["source"] != "record" || st["state"] != "exited" || st["exit_code"] != float64(4) {
		t.Fatalf("job_status of a stopped instance: %v", st)
	}
	e.fails("job_status", map[string]any{"instance_id": l.id, "job_id": "job-unknown"}, "is stopped", "no record")
	e.fails("job_logs", map[string]any{"instance_id": l.id, "job_id": jobID, "lines": 3, "offset": 0}, "not both")
}

func TestLocalPathsStayInTheWorkspace(t *testing.T) {
	ws := t.TempDir()
	outside := t.TempDir()
	d := &Deps{Workspace: filepath.Join(ws, "w")}
	root := filepath.Join(ws, "w")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "out")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(root, "sub"), filepath.Join(root, "in")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want, refused string
	}{
		{"a.txt", filepath.Join(root, "a.txt"), ""},
		{"sub/", filepath.Join(root, "sub") + "/", ""},
		{"new/dir/f", filepath.Join(root, "new/dir/f"), ""},
		{"sub/../a.txt", filepath.Join(root, "a.txt"), ""},
		{filepath.Join(root, "sub", "x"), filepath.Join(root, "sub", "x"), ""},
		{"in/x", filepath.Join(root, "sub", "x"), ""},
		{"../escape", "", "outside the workspace"},
		{"sub/../../escape", "", "outside the workspace"},
		{"/etc/passwd", "", "outside the workspace"},
		{"out/x", "", "through a symbolic link"},
		{"out", "", "through a symbolic link"},
		{"", "", "local_path is required"},
	} {
		got, err := d.localPath(c.path)
		switch {
		case c.refused != "" && (err == nil || !strings.Contains(err.Error(), c.refused)):
			t.Errorf("%q: %q, %v; want refused as %q", c.path, got, err, c.refused)
		case c.refused == "" && (err != nil || got != c.want):
			t.Errorf("%q: %q, %v; want %q", c.path, got, err, c.want)
		}
	}
	if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
		t.Fatalf("the workspace was not made: %v", err)
	}
}
