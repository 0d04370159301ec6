package tools

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// rpcReply is a JSON-RPC answer of Tasks.Handle.
type rpcReply struct {
	Result map[string]any           `json:"result"`
	Error  *mcp.JSONRPCErrorDetails `json:"error"`
}

// rpc sends one request through the task front; claimed reports whether it answered it.
func rpc(t *testing.T, tasks *Tasks, method string, params map[string]any) (rpcReply, bool) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
	msg, claimed := tasks.Handle(context.Background(), raw)
	if !claimed {
		return rpcReply{}, false
	}
	b, _ := json.Marshal(msg)
	var r rpcReply
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: answer %s", method, b)
	}
	return r, true
}

// modernMeta is the _meta of a 2026-07-28 request, with the Tasks extension or not.
func modernMeta(tasks, elicitation bool) map[string]any {
	caps := map[string]any{}
	if tasks {
		caps["extensions"] = map[string]any{TasksExtension: map[string]any{}}
	}
	if elicitation {
		caps["elicitation"] = map[string]any{}
	}
	return map[string]any{mcp.MetaKeyProtocolVersion: mcp.ProtocolVersion20260728, mcp.MetaKeyClientCapabilities: caps,
		mcp.MetaKeyClientInfo: map[string]any{"name": "test", "version": "1"}}
}

// withToken is args with the token of the plan a synchronous call gave.
func (h *harness) withToken(tool string, args map[string]any) map[string]any {
	h.t.Helper()
	plan := h.planOf(tool, args)
	with := map[string]any{"confirm_token": plan["confirmation_token"]}
	for k, v := range args {
		with[k] = v
	}
	return with
}

// A 2025-11-25 task-augmented launch is a task at once, in the store; tasks/get follows it
// to completed, and tasks/result is the answer a synchronous call gives (the operation's,
// which get_operation gives too). A completed task cannot be cancelled.
func TestTaskAugmentedLaunch(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StateStarting
	h := newOpsHarness(t, nil, "replica-a", f)
	tasks := NewTasks(h.deps, "test")
	created, ok := rpc(t, tasks, "tools/call", map[string]any{"name": "launch_instance", "arguments": h.withToken("launch_instance", launchArgs()), "task": map[string]any{"ttl": 60000}})
	task, _ := created.Result["task"].(map[string]any)
	if !ok || task == nil || task["status"] != "working" || !strings.HasPrefix(task["taskId"].(string), "op-") {
		t.Fatalf("the task-augmented call: %+v", created)
	}
	id := task["taskId"].(string)
	if _, err := h.deps.Ops.o.Store.GetOperation(context.Background(), id); err != nil {
		t.Fatalf("the task is not in the store when its handle is given: %v", err)
	}
	got, _ := rpc(t, tasks, "tasks/get", map[string]any{"taskId": id})
	if got.Result["status"] != "working" {
		t.Fatalf("tasks/get while it boots: %+v", got)
	}
	for f.count("launch") == 0 {
		got, _ = rpc(t, tasks, "tasks/get", map[string]any{"taskId": id})
	}
	f.boot("new-1")
	for got.Result["status"] == "working" {
		got, _ = rpc(t, tasks, "tasks/get", map[string]any{"taskId": id})
	}
	if got.Result["status"] != "completed" || !strings.Contains(got.Result["statusMessage"].(string), "ready") {
		t.Fatalf("tasks/get at the end: %+v", got)
	}
	res, _ := rpc(t, tasks, "tasks/result", map[string]any{"taskId": id})
	structured, _ := res.Result["structuredContent"].(map[string]any)
	if structured["status"] != "done" || structured["ready"] != true || structured["instance_id"] != "alpha:new-1" {
		t.Fatalf("tasks/result: %+v", res)
	}
	_, op := h.call("get_operation", map[string]any{"operation_id": id})
	if !reflect.DeepEqual(op, structured) {
		t.Fatalf("tasks/result %v differs from get_operation %v", structured, op)
	}
	f.launchState = providers.StateRunning
	_, sync := h.approved("launch_instance", launchArgs())
	if sync["status"] == "pending" {
		// Past this test's short budget on a slow machine: its answer, as the call gives it.
		_, sync, _ = h.follow(sync["operation_id"].(string))
	}
	for _, k := range []string{"status", "ready", "plan", "billing_now"} {
		if !reflect.DeepEqual(sync[k], structured[k]) && k != "billing_now" {
			t.Errorf("%s: task %v, synchronous call %v", k, structured[k], sync[k])
		}
	}
	if strings.Replace(sync["billing_now"].(string), "new-2", "new-1", 1) != structured["billing_now"] {
		t.Errorf("billing_now: task %v, synchronous call %v", structured["billing_now"], sync["billing_now"])
	}
	if r, _ := rpc(t, tasks, "tasks/cancel", map[string]any{"taskId": id}); r.Error == nil || r.Error.Code != mcp.INVALID_PARAMS {
		t.Fatalf("cancelling a completed task: %+v", r)
	}
	list, _ := rpc(t, tasks, "tasks/list", map[string]any{})
	if tl, _ := list.Result["tasks"].([]any); len(tl) != 1 || tl[0].(map[string]any)["taskId"] != id {
		t.Fatalf("tasks/list: %+v", list)
	}
}

// tasks/cancel of a launch task cancels it at once and runs the cleanup: tasks/result (which
// waits for it) says the instance was stopped and destroyed.
func TestTaskCancelCleansUpTheLaunch(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StateStarting
	h := newOpsHarness(t, nil, "replica-a", f)
	tasks := NewTasks(h.deps, "test")
	created, _ := rpc(t, tasks, "tools/call", map[string]any{"name": "launch_instance", "arguments": h.withToken("launch_instance", launchArgs()), "task": map[string]any{}})
	id := created.Result["task"].(map[string]any)["taskId"].(string)
	for f.count("launch") == 0 {
		got, _ := rpc(t, tasks, "tasks/get", map[string]any{"taskId": id})
		if got.Result["status"] != "working" {
			t.Fatalf("before the buy: %+v", got)
		}
	}
	cancelled, _ := rpc(t, tasks, "tasks/cancel", map[string]any{"taskId": id})
	if cancelled.Result["status"] != "cancelled" {
		t.Fatalf("tasks/cancel: %+v", cancelled)
	}
	res, _ := rpc(t, tasks, "tasks/result", map[string]any{"taskId": id})
	structured := res.Result["structuredContent"].(map[string]any)
	att := structured["attempts"].([]any)[0].(map[string]any)
	if att["result"] != "cancelled" || !strings.Contains(att["cleanup"].(string), "destroyed") || att["billing"] != "no" {
		t.Fatalf("the cancelled task's result: %+v", structured)
	}
	content := res.Result["content"].([]any)[0].(map[string]any)["text"].(string)
	if !strings.Contains(content, "cancelled at the user's request") || !strings.Contains(content, "billing now: nothing") {
		t.Fatalf("the cancelled task's text: %s", content)
	}
	if f.state("new-1") != "absent" {
		t.Fatalf("the instance is %s", f.state("new-1"))
	}
	got, _ := rpc(t, tasks, "tasks/get", map[string]any{"taskId": id})
	if got.Result["status"] != "cancelled" || !strings.Contains(got.Result["statusMessage"].(string), "destroyed") {
		t.Fatalf("tasks/get of the cancelled task: %+v", got)
	}
	if op, err := h.deps.Ops.o.Store.GetOperation(context.Background(), id); err != nil || op.Status != state.OperationCancelled {
		t.Fatalf("its operation: %+v %v", op, err)
	}
}

// A 2026-07-28 client that declares the Tasks extension gets the tool's answer when it comes
// within the budget and a task past it; tasks/get has the result inline, tasks/update is
// acknowledged, tasks/cancel too; a client without the extension is refused the task methods.
func TestTasksExtension(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StateStarting
	// Within the budget (a long one here): the tool's own answers, the plan, and for a client
	// that can answer a question, the question in the result (multi round-trip).
	quick := NewTasks(newBudgetHarness(t, nil, "replica-q", 10*time.Minute, newFake("alpha")).deps, "test")
	plan, ok := rpc(t, quick, "tools/call", map[string]any{"name": "launch_instance", "arguments": launchArgs(), "_meta": modernMeta(true, false)})
	sc, _ := plan.Result["structuredContent"].(map[string]any)
	if !ok || plan.Result["resultType"] != "complete" || sc["status"] != "confirmation_required" {
		t.Fatalf("the plan: %+v", plan)
	}
	asked, _ := rpc(t, quick, "tools/call", map[string]any{"name": "launch_instance", "arguments": launchArgs(), "_meta": modernMeta(true, true)})
	if asked.Result["resultType"] != "input_required" || asked.Result["inputRequests"] == nil {
		t.Fatalf("the question: %+v", asked)
	}
	h := newOpsHarness(t, nil, "replica-a", f)
	tasks := NewTasks(h.deps, "test")
	args := h.withToken("launch_instance", launchArgs())
	created, _ := rpc(t, tasks, "tools/call", map[string]any{"name": "launch_instance", "arguments": args, "_meta": modernMeta(true, false)})
	id, _ := created.Result["taskId"].(string)
	if created.Result["resultType"] != "task" || created.Result["status"] != "working" || id == "" || created.Result["ttlMs"] != nil {
		t.Fatalf("past the budget: %+v", created)
	}
	if r, _ := rpc(t, tasks, "tasks/get", map[string]any{"taskId": id, "_meta": modernMeta(false, false)}); r.Error == nil || r.Error.Code != mcp.MISSING_REQUIRED_CLIENT_CAPABILITY {
		t.Fatalf("tasks/get without the extension: %+v", r)
	}
	if r, _ := rpc(t, tasks, "tasks/update", map[string]any{"taskId": id, "inputResponses": map[string]any{}, "_meta": modernMeta(true, false)}); r.Error != nil || r.Result["resultType"] != "complete" {
		t.Fatalf("tasks/update: %+v", r)
	}
	if r, _ := rpc(t, tasks, "tasks/update", map[string]any{"taskId": "op-nonesuch", "_meta": modernMeta(true, false)}); r.Error == nil || r.Error.Code != mcp.INVALID_PARAMS {
		t.Fatalf("tasks/update of an unknown task: %+v", r)
	}
	if _, claimed := rpc(t, tasks, "tasks/result", map[string]any{"taskId": id, "_meta": modernMeta(true, false)}); claimed {
		t.Fatal("tasks/result is no 2026-07-28 method, and is mcp-go's to refuse")
	}
	f.boot("new-1")
	var got rpcReply
	for got.Result["status"] != "completed" {
		got, _ = rpc(t, tasks, "tasks/get", map[string]any{"taskId": id, "_meta": modernMeta(true, false)})
		if got.Error != nil || (got.Result["status"] != "working" && got.Result["status"] != "completed") {
			t.Fatalf("tasks/get: %+v", got)
		}
	}
	result := got.Result["result"].(map[string]any)
	if got.Result["resultType"] != "complete" || result["structuredContent"].(map[string]any)["ready"] != true {
		t.Fatalf("the completed task: %+v", got)
	}
	if r, _ := rpc(t, tasks, "tasks/cancel", map[string]any{"taskId": id, "_meta": modernMeta(true, false)}); r.Error != nil || r.Result["resultType"] != "complete" {
		t.Fatalf("tasks/cancel of an ended task is acknowledged: %+v", r)
	}
	if f.state("new-1") != providers.StateRunning {
		t.Fatal("cancelling an ended task touched its instance")
	}
	// Tools that are not long, and other methods, are mcp-go's.
	if _, claimed := rpc(t, tasks, "tools/call", map[string]any{"name": "list_providers", "_meta": modernMeta(true, false)}); claimed {
		t.Fatal("a short tool was claimed")
	}
	if _, claimed := rpc(t, tasks, "tools/list", map[string]any{}); claimed {
		t.Fatal("tools/list was claimed")
	}
}
