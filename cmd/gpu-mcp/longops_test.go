package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests are the Done-when of long operations, through mcp-go's client over stdio
// against the built program and `gpu-mcp emulate`, scaled down: the client gives up on a
// request after 10s as Claude Desktop does after about a minute, the call budget
// (GPU_MCP_CALL_BUDGET) is a few seconds instead of 45s, and the emulators' step delay makes
// a launch take several budgets.

// clientTimeout is how long the test client waits for any one answer.
const clientTimeout = 10 * time.Second

// within calls a tool and waits clientTimeout at most for its answer, as a client that gives
// up would; the answer must come.
func (s *session) within(tool string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		s.t.Fatalf("%s: no answer within the client's %s: %v\n%s", tool, clientTimeout, err, s.stderr.String())
	}
	return res, structured(s.t, res)
}

// followHandle follows an operation with get_operation until it ended: its answer, and how
// many calls it took.
func (s *session) followHandle(id string) (*mcp.CallToolResult, map[string]any, int) {
	s.t.Helper()
	for n := 1; ; n++ {
		res, m := s.within("get_operation", map[string]any{"operation_id": id})
		if res.IsError || m["status"] != "pending" {
			return res, m, n
		}
		if m["operation_id"] != id {
			s.t.Fatalf("get_operation answers another operation: %v", m)
		}
	}
}

// longEnv is the environment of a gpu-mcp on e with a short call budget and a store file.
func longEnv(t *testing.T, e *emulator, budget string) []string {
	return append(e.env(), "GPU_MCP_STATE_URL="+statetest.SQLiteURL(t), "GPU_MCP_POLL_INTERVAL=100ms", "GPU_MCP_OFFER_CACHE_TTL=0",
		"GPU_MCP_CALL_BUDGET="+budget)
}

// Done when, 1: a client that waits 10s for any answer launches a machine whose launch takes
// several call budgets; it gets a handle within the budget, follows it with get_operation,
// and ends with a running machine and an ssh command. The emulator saw one buy.
func TestLaunchOutlivingTheClientsPatienceEndsByTheHandle(t *testing.T) {
	t.Parallel()
	e := startEmulateEnv(t, []string{"GPU_MCP_DEMO_STEP_DELAY=8s"})
	s := startKillable(t, longEnv(t, e, "3s")).session
	v := vendors.Names()[0]
	offer, image := hourlyOffer(t, s, v)
	args := map[string]any{"offer_id": offer, "image_id": image, "wait_timeout": "5m"}
	_, plan := s.within("launch_instance", args)
	if plan["status"] != "confirmation_required" || !strings.Contains(fmt.Sprint(plan["plan"]), "operation_id") {
		t.Fatalf("the plan says nothing of the handle: %v", plan)
	}
	res, m := s.within("launch_instance", withToken(args, plan["confirmation_token"].(string)))
	id, _ := m["operation_id"].(string)
	if res.IsError || m["status"] != "pending" || id == "" || !strings.Contains(resultText(res), "get_operation with operation_id="+id) {
		t.Fatalf("the launch's first answer: %v\n%s", m, resultText(res))
	}
	res, m, calls := s.followHandle(id)
	inst, _ := m["instance"].(map[string]any)
	if res.IsError || m["status"] != "done" || m["ready"] != true || m["ssh_command"] == "" || inst == nil {
		t.Fatalf("the launch's answer after %d get_operation calls: %v\n%s", calls, m, resultText(res))
	}
	sshAnswers(t, m["ssh_command"].(string))
	if st := e.states()[m["instance_id"].(string)]; st != providers.StateRunning {
		t.Fatalf("the emulator shows the instance %s", st)
	}
	if n := e.buys(v); n != 1 {
		t.Fatalf("%s: %d buys, want 1", v, n)
	}
	_, again := s.within("get_operation", map[string]any{"operation_id": id})
	if !reflect.DeepEqual(again, m) {
		t.Fatalf("get_operation again: %v, want %v", again, m)
	}
}

// Done when, 3: gpu-mcp is SIGKILLed while a launch is pending; the next gpu-mcp on the same
// store answers the handle, sees the launch through, and nothing is bought twice.
func TestHandleAnswersAfterARestart(t *testing.T) {
	t.Parallel()
	e := startEmulateEnv(t, []string{"GPU_MCP_DEMO_STEP_DELAY=5s"})
	env := longEnv(t, e, "2s")
	first := startKillable(t, env)
	v := vendors.Names()[len(vendors.Names())-1]
	offer, image := hourlyOffer(t, first.session, v)
	args := map[string]any{"offer_id": offer, "image_id": image, "auto_stop_after": "1h"}
	_, plan := first.within("launch_instance", args)
	_, m := first.within("launch_instance", withToken(args, plan["confirmation_token"].(string)))
	id, _ := m["operation_id"].(string)
	if m["status"] != "pending" || id == "" {
		t.Fatalf("the launch's first answer: %v", m)
	}
	first.kill()

	next := startKillable(t, env)
	res, m, _ := next.followHandle(id)
	if res.IsError || m["status"] != "done" || m["ready"] != true || m["ssh_command"] == "" || m["plan"] == nil {
		t.Fatalf("the handle after the restart: %v\n%s\n%s", m, resultText(res), next.stderr.String())
	}
	if st := e.states()[m["instance_id"].(string)]; st != providers.StateRunning {
		t.Fatalf("the emulator shows the instance %s", st)
	}
	if n := e.buys(v); n != 1 {
		t.Fatalf("%s: %d buys, want 1", v, n)
	}
	listed, _ := next.ok("get_instance", map[string]any{"instance_id": m["instance_id"]})["instance"].(map[string]any)
	if mg, _ := listed["managed"].(map[string]any); mg == nil || mg["lease"] == nil {
		t.Fatalf("the adopted instance has no auto-stop: %v", listed)
	}
}

// taskCall sends a 2025-11-25 task-augmented tools/call, which mcp-go's client has no call
// for, through the client's transport, and returns the task.
func (s *session) taskCall(id int64, tool string, args map[string]any) mcp.Task {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	res, err := s.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id),
		Method: string(mcp.MethodToolsCall), Params: map[string]any{"name": tool, "arguments": args, "task": map[string]any{"ttl": 600000}}})
	if err != nil || res.Error != nil {
		s.t.Fatalf("task-augmented %s: %v %+v", tool, err, res)
	}
	var created mcp.CreateTaskResult
	if err := json.Unmarshal(res.Result, &created); err != nil || created.Task.TaskId == "" || created.Task.Status != mcp.TaskStatusWorking {
		s.t.Fatalf("task-augmented %s: %s (%v)", tool, res.Result, err)
	}
	return created.Task
}

// poll follows a task with tasks/get until it is terminal.
func (s *session) poll(id string) *mcp.GetTaskResult {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	got, err := s.c.WaitForTask(ctx, mcp.GetTaskRequest{Params: mcp.GetTaskParams{TaskId: id}}, 100*time.Millisecond)
	if err != nil {
		s.t.Fatalf("polling task %s: %v", id, err)
	}
	return got
}

func (s *session) taskResult(id string) (*mcp.TaskResultResult, map[string]any) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := s.c.TaskResult(ctx, mcp.TaskResultRequest{Params: mcp.TaskResultParams{TaskId: id}})
	if err != nil {
		s.t.Fatalf("tasks/result %s: %v", id, err)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res, m
}

// Done when, 2: a client with 2025-11-25 tasks (mcp-go's) gets a task for a launch, polls it
// with tasks/get, and gets from tasks/result what the call answers synchronously (and what
// get_operation answers for it). Cancelling launch tasks, on every vendor, leaves their
// instances stopped and destroyed as far as the vendor allows, and their results say so.
func TestLaunchAsATask(t *testing.T) {
	t.Parallel()
	e := startEmulateEnv(t, []string{"GPU_MCP_DEMO_STEP_DELAY=3s"})
	s := startKillableAt(t, longEnv(t, e, "60s"), mcp.ProtocolVersion20251125).session
	if caps := s.c.GetServerCapabilities(); caps.Tasks == nil || caps.Tasks.Requests == nil || caps.Tasks.Requests.Tools == nil || caps.Tasks.Cancel == nil {
		t.Fatalf("no task capability: %+v", caps.Tasks)
	}
	tools, err := s.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range tools.Tools {
		long := slices.Contains([]string{"launch_instance", "wait_instance", "save_image"}, tool.Name)
		if got := tool.Execution != nil && tool.Execution.TaskSupport == mcp.TaskSupportOptional; got != long {
			t.Errorf("%s: taskSupport %+v", tool.Name, tool.Execution)
		}
	}
	names := vendors.Names()
	v := names[0]
	offer, image := hourlyOffer(t, s, v)
	args := map[string]any{"offer_id": offer, "image_id": image}
	_, plan := s.within("launch_instance", args)
	task := s.taskCall(900001, "launch_instance", withToken(args, plan["confirmation_token"].(string)))
	if got := s.poll(task.TaskId); got.Status != mcp.TaskStatusCompleted {
		t.Fatalf("the launch task ended %s: %s", got.Status, got.StatusMessage)
	}
	res, m := s.taskResult(task.TaskId)
	if res.IsError || m["status"] != "done" || m["ready"] != true || m["ssh_command"] == "" {
		t.Fatalf("tasks/result: %v", m)
	}
	if _, op := s.within("get_operation", map[string]any{"operation_id": task.TaskId}); !reflect.DeepEqual(op, m) {
		t.Fatalf("tasks/result %v, get_operation %v", m, op)
	}
	// The synchronous call, on the same offer: the same answer but for the instance it made.
	_, plan = s.within("launch_instance", args)
	_, sync := s.call("launch_instance", withToken(args, plan["confirmation_token"].(string)))
	for _, k := range []string{"status", "ready", "plan", "order_id"} {
		if (sync[k] == nil) != (m[k] == nil) || (k != "order_id" && !reflect.DeepEqual(sync[k], m[k])) {
			t.Errorf("%s: task %v, synchronous call %v", k, m[k], sync[k])
		}
	}
	if keys(sync) != keys(m) {
		t.Errorf("the task's answer has %s, the synchronous call's %s", keys(m), keys(sync))
	}

	// Launches that never come up, cancelled while they boot.
	tasks := map[string]string{}
	for i, v := range names {
		offer, image := hourlyOffer(t, s, v)
		if code := e.request(http.MethodPost, "/outcome", fmt.Sprintf(`{"vendor":%q,"offer":%q,"outcome":"never_runs"}`, v, offer), &map[string]any{}); code != http.StatusOK {
			t.Fatalf("POST /outcome: %d", code)
		}
		args := map[string]any{"offer_id": offer, "image_id": image}
		_, plan := s.within("launch_instance", args)
		buys := e.buys(v)
		tasks[v] = s.taskCall(int64(900100+i), "launch_instance", withToken(args, plan["confirmation_token"].(string))).TaskId
		eventually(t, v+"'s buy", func() bool { return e.buys(v) == buys+1 })
	}
	for v, id := range tasks {
		ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
		cancelled, err := s.c.CancelTask(ctx, mcp.CancelTaskRequest{Params: mcp.CancelTaskParams{TaskId: id}})
		cancel()
		if err != nil || cancelled.Status != mcp.TaskStatusCancelled {
			t.Fatalf("%s: tasks/cancel: %+v %v", v, cancelled, err)
		}
	}
	for v, id := range tasks {
		res, m := s.taskResult(id)
		atts, _ := m["attempts"].([]any)
		if len(atts) != 1 {
			t.Fatalf("%s: the cancelled task's result: %v", v, m)
		}
		att := atts[0].(map[string]any)
		inst, _ := att["instance_id"].(string)
		// The vendor's states once this task's result is in (its cleanup is done by then).
		states := e.states()
		text := ""
		for _, c := range res.Content {
			if tc, ok := c.(mcp.TextContent); ok {
				text += tc.Text
			}
		}
		if att["result"] != "cancelled" || att["cleanup"] == "" || !strings.Contains(text, "cancelled at the user's request") {
			t.Fatalf("%s: the cancelled task's result: %v\n%s", v, m, text)
		}
		// What the vendor allows: destroyed (gone), or stopped with its disk billed.
		switch att["billing"] {
		case "no":
			if st, ok := states[inst]; ok && st != providers.StateDeleting {
				t.Fatalf("%s: %s is %s, but the result says it bills nothing: %v", v, inst, st, att)
			}
		case "storage_only":
			if states[inst] != providers.StateStopped {
				t.Fatalf("%s: %s is %s, but the result says it is stopped: %v", v, inst, states[inst], att)
			}
		default:
			t.Fatalf("%s: the cancelled launch still bills: %v", v, att)
		}
		got := s.poll(id)
		if got.Status != mcp.TaskStatusCancelled || !strings.Contains(got.StatusMessage, "billing now") {
			t.Fatalf("%s: tasks/get of the cancelled task: %+v", v, got)
		}
	}
}

// keys is the sorted list of a map's keys.
func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// modernRequest sends a 2026-07-28 request that declares the Tasks extension through the
// client's transport (mcp-go's client has no call for its methods), and returns the answer.
func (s *session) modernRequest(id int64, method string, params map[string]any) *transport.JSONRPCResponse {
	s.t.Helper()
	params["_meta"] = map[string]any{mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728,
		mcp.MetaKeyClientInfo:         map[string]any{"name": "gpu-mcp-e2e", "version": "1"},
		mcp.MetaKeyClientCapabilities: map[string]any{"extensions": map[string]any{"io.modelcontextprotocol/tasks": map[string]any{}}}}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	name, _ := params["name"].(string)
	if name == "" {
		name, _ = params["taskId"].(string)
	}
	header := http.Header{mcp.HeaderProtocolVersion: {mcp.ProtocolVersion20260728}, "Mcp-Method": {method}, "Mcp-Name": {name}}
	res, err := s.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Method: method, Params: params, Header: header})
	if err != nil {
		s.t.Fatalf("%s: %v\n%s", method, err, s.stderr.String())
	}
	return res
}

// Over streamable HTTP, a 2026-07-28 client with the Tasks extension gets a task for a launch
// past the call budget, polls tasks/get until the result is in it, and tasks/update is
// answered by gpu-mcp (mcp-go has no such method). Over SSE no task is offered.
func TestTasksExtensionOverHTTP(t *testing.T) {
	t.Parallel()
	e := startEmulateEnv(t, []string{"GPU_MCP_DEMO_STEP_DELAY=4s"})
	env := append(longEnv(t, e, "1s"), "GPU_MCP_AUTH_TOKEN="+testAuthToken)
	s := startNetServer(t, "http", env).connect(nil)
	if caps := s.c.GetServerCapabilities(); caps.Extensions["io.modelcontextprotocol/tasks"] == nil {
		t.Fatalf("the Tasks extension is not advertised: %+v", caps)
	}
	v := vendors.Names()[0]
	offer, image := hourlyOffer(t, s, v)
	args := map[string]any{"offer_id": offer, "image_id": image}
	_, plan := s.within("launch_instance", args)
	res := s.modernRequest(900201, "tools/call", map[string]any{"name": "launch_instance", "arguments": withToken(args, plan["confirmation_token"].(string))})
	var created map[string]any
	if err := json.Unmarshal(res.Result, &created); err != nil || res.Error != nil || created["resultType"] != "task" || created["status"] != "working" {
		t.Fatalf("the launch past the budget: %s %+v", res.Result, res.Error)
	}
	id := created["taskId"].(string)
	var task map[string]any
	for task["status"] != "completed" {
		res := s.modernRequest(900202, "tasks/get", map[string]any{"taskId": id})
		task = nil
		if err := json.Unmarshal(res.Result, &task); err != nil || res.Error != nil || (task["status"] != "working" && task["status"] != "completed") {
			t.Fatalf("tasks/get: %s %+v", res.Result, res.Error)
		}
		time.Sleep(time.Duration(task["pollIntervalMs"].(float64)) * time.Millisecond)
	}
	result := task["result"].(map[string]any)["structuredContent"].(map[string]any)
	if result["status"] != "done" || result["ready"] != true || e.buys(v) != 1 {
		t.Fatalf("the completed task: %v, %d buys", task, e.buys(v))
	}
	if res := s.modernRequest(900203, "tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{}}); res.Error != nil || !strings.Contains(string(res.Result), `"resultType":"complete"`) {
		t.Fatalf("tasks/update: %s %+v", res.Result, res.Error)
	}
	if res := s.modernRequest(900204, "tasks/update", map[string]any{"taskId": "op-nonesuch", "inputResponses": map[string]any{}}); res.Error == nil || res.Error.Code != mcp.INVALID_PARAMS {
		t.Fatalf("tasks/update of an unknown task: %s %+v", res.Result, res.Error)
	}

	sse := startNetServer(t, "sse", env).connect(nil)
	if caps := sse.c.GetServerCapabilities(); caps.Tasks != nil || caps.Extensions != nil {
		t.Fatalf("SSE offers tasks, which it cannot answer: %+v", caps)
	}
}
