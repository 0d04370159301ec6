package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// MCP tasks for the long tools, answered by gpu-mcp in front of mcp-go.
//
// mcp-go v1.2.1 runs 2025-11-25 task-augmented tool calls itself, but keeps its tasks in a
// map inside the server process with no hook for a store: a task would not survive a
// restart, and its cancellation is only a context's, which for a launch means "the client
// stopped waiting", not "clean up". It has no part of the 2026-07-28 Tasks extension
// (io.modelcontextprotocol/tasks): no tasks/update, no task handle in place of a tool result,
// no task with its result inline. So gpu-mcp answers these messages itself, before they
// reach mcp-go (Tasks.Handle, called by the stdio and streamable HTTP transports of
// cmd/gpu-mcp), and its tasks are its operations: in the state store, adopted after a
// restart, cancelled with the cleanup rules of a failed launch. What stays mcp-go's: the
// capabilities it advertises (server.WithTaskCapabilities, server.WithExtensions), the
// taskSupport of the tools in tools/list, its types (mcp.Task and the task results) and
// its error codes.

// TasksExtension identifies the 2026-07-28 Tasks extension.
const TasksExtension = "io.modelcontextprotocol/tasks"

// Task methods.
const (
	methodTasksGet    = "tasks/get"
	methodTasksResult = "tasks/result"
	methodTasksList   = "tasks/list"
	methodTasksCancel = "tasks/cancel"
	methodTasksUpdate = "tasks/update"
)

// Tasks answers the task protocol for the long tools. It is safe for concurrent use.
type Tasks struct {
	d      *Deps
	long   map[string]Tool
	server mcp.Implementation

	mu       sync.Mutex
	inflight map[string]context.CancelFunc // requests it answers, for notifications/cancelled
}

// NewTasks returns the task front of the tools d registers; version is the server's.
func NewTasks(d *Deps, version string) *Tasks {
	t := &Tasks{d: d, long: map[string]Tool{}, server: mcp.Implementation{Name: "gpu-mcp", Version: version}, inflight: map[string]context.CancelFunc{}}
	for _, tool := range Registered(d) {
		if tool.long != nil {
			t.long[tool.Name] = tool
		}
	}
	return t
}

type requestCapsKey struct{}

// withRequestCaps gives a call the capabilities its 2026-07-28 request declared: a call
// answered here has no mcp-go session to ask.
func withRequestCaps(ctx context.Context, caps *mcp.ClientCapabilities) context.Context {
	return context.WithValue(ctx, requestCapsKey{}, caps)
}

func requestCaps(ctx context.Context) *mcp.ClientCapabilities {
	caps, _ := ctx.Value(requestCapsKey{}).(*mcp.ClientCapabilities)
	return caps
}

// message is what Handle reads of a JSON-RPC message.
type message struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// taskParams are the parameters of the messages Handle answers.
type taskParams struct {
	mcp.CallToolParams
	TaskID    string          `json:"taskId"`
	RequestID json.RawMessage `json:"requestId"` // of notifications/cancelled
}

// UnmarshalJSON reads the tool call's parameters with mcp-go's own decoding (which keeps
// the raw arguments) and the task's id beside them.
func (p *taskParams) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, &p.CallToolParams); err != nil {
		return err
	}
	var ids struct {
		TaskID    string          `json:"taskId"`
		RequestID json.RawMessage `json:"requestId"`
	}
	if err := json.Unmarshal(b, &ids); err != nil {
		return err
	}
	p.TaskID, p.RequestID = ids.TaskID, ids.RequestID
	return nil
}

// Handle answers msg when gpu-mcp serves it itself (see Route), and reports false for
// every other message, which is mcp-go's to answer.
func (t *Tasks) Handle(ctx context.Context, raw json.RawMessage) (mcp.JSONRPCMessage, bool) {
	answer, ok := t.Route(raw)
	if !ok {
		return nil, false
	}
	return answer(ctx), true
}

// Route says whether gpu-mcp answers msg itself: a tools/call of a long tool made as a
// 2025-11-25 task or by a 2026-07-28 client that declared the Tasks extension, and the task
// methods. For those it returns the function that answers, which may take long (tasks/result
// waits for the task, a 2026-07-28 call up to the call budget): a transport runs it apart,
// and hands every other message to mcp-go in order. A notifications/cancelled of a request
// answered here ends it, and goes on to mcp-go too.
func (t *Tasks) Route(raw json.RawMessage) (func(context.Context) mcp.JSONRPCMessage, bool) {
	if t == nil || t.d.Ops == nil {
		return nil, false
	}
	var m message
	if json.Unmarshal(raw, &m) != nil || m.Method == "" {
		return nil, false
	}
	var p taskParams
	if len(m.Params) > 0 && json.Unmarshal(m.Params, &p) != nil {
		return nil, false
	}
	if len(m.ID) == 0 || string(m.ID) == "null" {
		if m.Method == string(mcp.MethodNotificationCancelled) {
			t.cancelRequest(p.RequestID)
		}
		return nil, false
	}
	answer := func(msg mcp.JSONRPCMessage) func(context.Context) mcp.JSONRPCMessage {
		return func(context.Context) mcp.JSONRPCMessage { return msg }
	}
	id := m.ID
	modern := mcp.IsModernProtocol(p.Meta.ProtocolVersion())
	caps := p.Meta.ClientCapabilities()
	declared := modern && caps != nil && caps.Extensions != nil && caps.Extensions[TasksExtension] != nil
	switch m.Method {
	case string(mcp.MethodToolsCall):
		tool, ok := t.long[p.Name]
		switch {
		case !ok:
			return nil, false
		case declared:
			return func(ctx context.Context) mcp.JSONRPCMessage {
				return t.serve(ctx, id, func(ctx context.Context) mcp.JSONRPCMessage { return t.callModern(ctx, id, tool, &p, caps) })
			}, true
		case !modern && p.Task != nil:
			return func(ctx context.Context) mcp.JSONRPCMessage { return t.createTask(ctx, id, tool, &p) }, true
		}
		return nil, false
	case methodTasksGet, methodTasksCancel, methodTasksUpdate:
		if modern && !declared {
			return answer(missingExtension(id)), true
		}
		if m.Method == methodTasksUpdate && !modern {
			return nil, false
		}
	case methodTasksResult, methodTasksList:
		// Both are gone from the 2026-07-28 extension: mcp-go refuses them there.
		if modern {
			return nil, false
		}
	default:
		return nil, false
	}
	if m.Method != methodTasksList && strings.TrimSpace(p.TaskID) == "" {
		return answer(rpcError(id, mcp.INVALID_PARAMS, m.Method+" needs params.taskId, the taskId of a task gpu-mcp created", nil)), true
	}
	taskID := p.TaskID
	switch m.Method {
	case methodTasksGet:
		return func(ctx context.Context) mcp.JSONRPCMessage { return t.get(ctx, id, taskID, modern) }, true
	case methodTasksCancel:
		return func(ctx context.Context) mcp.JSONRPCMessage { return t.cancel(ctx, id, taskID, modern) }, true
	case methodTasksUpdate:
		// gpu-mcp's tasks never ask for input (an approval is asked before the task exists),
		// so no response is outstanding: an update is acknowledged and its responses ignored.
		return func(ctx context.Context) mcp.JSONRPCMessage {
			if _, ok := t.operation(ctx, taskID); !ok {
				return taskNotFound(id, taskID)
			}
			return rpcResult(id, map[string]any{"resultType": mcp.ResultTypeComplete})
		}, true
	case methodTasksResult:
		return func(ctx context.Context) mcp.JSONRPCMessage {
			return t.serve(ctx, id, func(ctx context.Context) mcp.JSONRPCMessage { return t.result(ctx, id, taskID) })
		}, true
	}
	return func(ctx context.Context) mcp.JSONRPCMessage { return t.list(ctx, id) }, true
}

// serve answers a request that may wait, cancellable by notifications/cancelled.
func (t *Tasks) serve(ctx context.Context, id json.RawMessage, fn func(context.Context) mcp.JSONRPCMessage) mcp.JSONRPCMessage {
	ctx, cancel := context.WithCancel(ctx)
	key := string(id)
	t.mu.Lock()
	t.inflight[key] = cancel
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.inflight, key)
		t.mu.Unlock()
		cancel()
	}()
	return fn(ctx)
}

func (t *Tasks) cancelRequest(id json.RawMessage) {
	t.mu.Lock()
	cancel := t.inflight[string(id)]
	t.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// createTask runs a 2025-11-25 task-augmented call as an operation, in the store before the
// answer leaves.
func (t *Tasks) createTask(ctx context.Context, id json.RawMessage, tool Tool, p *taskParams) mcp.JSONRPCMessage {
	res, lo := t.d.Ops.call(withRoundTrip(ctx, p.MultiRoundTripParams), tool, arguments(p), &taskInfo{TTL: p.Task.TTL})
	if lo == nil {
		return rpcError(id, mcp.INTERNAL_ERROR, answerOf(res).Text, nil)
	}
	op, ok := t.operation(ctx, lo.id)
	if !ok {
		return rpcError(id, mcp.INTERNAL_ERROR, "the task "+lo.id+" was created but cannot be read back from the state store", nil)
	}
	created := mcp.CreateTaskResult{Task: t.legacyTask(op)}
	created.Meta = mcp.WithModelImmediateResponse(fmt.Sprintf("%s runs as task %s, in the background; poll tasks/get, then tasks/result has its answer.", tool.Name, lo.id))
	return rpcResult(id, created)
}

// callModern runs a call of a 2026-07-28 client with the Tasks extension: the tool's answer
// when it comes within the call budget, else a task.
func (t *Tasks) callModern(ctx context.Context, id json.RawMessage, tool Tool, p *taskParams, caps *mcp.ClientCapabilities) mcp.JSONRPCMessage {
	ctx = withRequestCaps(withRoundTrip(ctx, p.MultiRoundTripParams), caps)
	res, lo := t.d.Ops.call(ctx, tool, arguments(p), &taskInfo{Modern: true})
	if lo == nil {
		if res.ResultType == "" {
			res.ResultType = mcp.ResultTypeComplete
		}
		if res.Meta == nil {
			res.Meta = &mcp.Meta{}
		}
		res.Meta.SetServerInfo(t.server)
		return rpcResult(id, res)
	}
	op, ok := t.operation(ctx, lo.id)
	if !ok {
		// Not durably created: the call's pending answer, whose handle works in this process.
		res.ResultType = mcp.ResultTypeComplete
		return rpcResult(id, res)
	}
	created := t.modernTask(op)
	created["resultType"] = "task"
	return rpcResult(id, created)
}

// arguments are a call's raw arguments.
func arguments(p *taskParams) json.RawMessage {
	if len(p.RawArguments) > 0 {
		return p.RawArguments
	}
	b, err := json.Marshal(p.Arguments)
	if err != nil || string(b) == "null" {
		return json.RawMessage("{}")
	}
	return b
}

// operation reads the operation of a task.
func (t *Tasks) operation(ctx context.Context, id string) (state.Operation, bool) {
	op, err := t.d.Ops.o.Store.GetOperation(context.WithoutCancel(ctx), strings.TrimSpace(id))
	return op, err == nil
}

func (t *Tasks) get(ctx context.Context, id json.RawMessage, taskID string, modern bool) mcp.JSONRPCMessage {
	op, ok := t.operation(ctx, taskID)
	if !ok {
		return taskNotFound(id, taskID)
	}
	if modern {
		task := t.modernTask(op)
		task["resultType"] = mcp.ResultTypeComplete
		return rpcResult(id, task)
	}
	return rpcResult(id, mcp.GetTaskResult{Task: t.legacyTask(op)})
}

func (t *Tasks) cancel(ctx context.Context, id json.RawMessage, taskID string, modern bool) mcp.JSONRPCMessage {
	op, ok := t.operation(ctx, taskID)
	if !ok {
		return taskNotFound(id, taskID)
	}
	status, _ := taskStatus(op)
	if !modern && status.IsTerminal() {
		return rpcError(id, mcp.INVALID_PARAMS, fmt.Sprintf("cannot cancel task %s in terminal status %s", taskID, status), nil)
	}
	if !status.IsTerminal() {
		if _, err := t.d.Ops.cancel(context.WithoutCancel(ctx), op.ID, "tasks/cancel"); err != nil {
			return rpcError(id, mcp.INTERNAL_ERROR, "the cancellation of task "+taskID+" could not be recorded: "+err.Error(), nil)
		}
	}
	if modern {
		return rpcResult(id, map[string]any{"resultType": mcp.ResultTypeComplete})
	}
	if op, ok = t.operation(ctx, taskID); !ok {
		return taskNotFound(id, taskID)
	}
	return rpcResult(id, mcp.CancelTaskResult{Task: t.legacyTask(op)})
}

// result waits for a 2025-11-25 task's answer (a cancelled one's too: its cleanup).
func (t *Tasks) result(ctx context.Context, id json.RawMessage, taskID string) mcp.JSONRPCMessage {
	for {
		op, ok := t.operation(ctx, taskID)
		if !ok {
			return taskNotFound(id, taskID)
		}
		if op.Status != state.OperationPending {
			var a opAnswer
			if err := json.Unmarshal(op.Result, &a); err != nil {
				return rpcError(id, mcp.INTERNAL_ERROR, "the answer of task "+taskID+" cannot be read from the state store: "+err.Error(), nil)
			}
			res := a.result()
			return rpcResult(id, mcp.TaskResultResult{Result: mcp.Result{Meta: mcp.WithRelatedTask(op.ID)},
				Content: res.Content, StructuredContent: res.StructuredContent, IsError: res.IsError})
		}
		timer := time.NewTimer(t.d.Ops.o.Poll)
		var done <-chan struct{}
		if lo := t.d.Ops.liveOne(op.ID); lo != nil {
			done = lo.done
		}
		select {
		case <-ctx.Done():
			timer.Stop()
			return rpcError(id, mcp.REQUEST_INTERRUPTED, "tasks/result was cancelled before task "+taskID+" ended; the task goes on", nil)
		case <-done:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// list lists the 2025-11-25 tasks of the last day.
func (t *Tasks) list(ctx context.Context, id json.RawMessage) mcp.JSONRPCMessage {
	ops, err := t.d.Ops.o.Store.ListOperations(context.WithoutCancel(ctx), state.OperationFilter{})
	if err != nil {
		return rpcError(id, mcp.INTERNAL_ERROR, "the tasks cannot be read from the state store: "+err.Error(), nil)
	}
	since := time.Now().Add(-24 * time.Hour)
	tasks := []mcp.Task{}
	for _, op := range ops {
		var rec opRecord
		if json.Unmarshal(op.Args, &rec) == nil && rec.Task != nil && !rec.Task.Modern && op.CreatedAt.After(since) {
			tasks = append(tasks, t.legacyTask(op))
		}
	}
	slices.SortFunc(tasks, func(a, b mcp.Task) int { return strings.Compare(a.TaskId, b.TaskId) })
	return rpcResult(id, mcp.ListTasksResult{Tasks: tasks})
}

// taskStatus is an operation as a task: its status and a message for the user. A cancelled
// operation is a cancelled task at once, while its cleanup goes on.
func taskStatus(op state.Operation) (mcp.TaskStatus, string) {
	var rec opRecord
	_ = json.Unmarshal(op.Args, &rec)
	last := op.Progress
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	var a opAnswer
	_ = json.Unmarshal(op.Result, &a)
	summary, _, _ := strings.Cut(strings.TrimSpace(strings.TrimPrefix(a.Text, "[demo: built-in emulators, nothing here is real] ")), "\n")
	switch {
	case op.Status == state.OperationPending && rec.Cancel != "":
		return mcp.TaskStatusCancelled, "cancelled (" + rec.Cancel + "); the cleanup goes on: " + orDefault(last, "starting")
	case op.Status == state.OperationPending:
		return mcp.TaskStatusWorking, orDefault(last, "started")
	case op.Status == state.OperationCancelled:
		return mcp.TaskStatusCancelled, "cancelled (" + rec.Cancel + "): " + cleanupSummary(a, summary)
	}
	return mcp.TaskStatusCompleted, summary
}

// cleanupSummary says what a cancelled launch left: its attempts' cleanup and what bills.
func cleanupSummary(a opAnswer, summary string) string {
	var out struct {
		Attempts []struct {
			Cleanup string `json:"cleanup"`
		} `json:"attempts"`
		Billing string `json:"billing_now"`
	}
	if json.Unmarshal(a.Structured, &out) != nil || out.Billing == "" {
		return summary
	}
	var parts []string
	for _, at := range out.Attempts {
		if at.Cleanup != "" {
			parts = append(parts, at.Cleanup)
		}
	}
	return strings.Join(append(parts, "billing now: "+out.Billing), "; ")
}

func (t *Tasks) pollMS() int64 { return max(t.d.Ops.o.Poll, 100*time.Millisecond).Milliseconds() }

// legacyTask is an operation as a 2025-11-25 task. Its records are kept (ttl null).
func (t *Tasks) legacyTask(op state.Operation) mcp.Task {
	status, msg := taskStatus(op)
	poll := t.pollMS()
	return mcp.Task{TaskId: op.ID, Status: status, StatusMessage: msg, CreatedAt: op.CreatedAt.UTC().Format(time.RFC3339),
		LastUpdatedAt: op.UpdatedAt.UTC().Format(time.RFC3339), PollInterval: &poll}
}

// modernTask is an operation as a 2026-07-28 task, with its result once completed.
func (t *Tasks) modernTask(op state.Operation) map[string]any {
	status, msg := taskStatus(op)
	task := map[string]any{"taskId": op.ID, "status": status, "createdAt": op.CreatedAt.UTC().Format(time.RFC3339),
		"lastUpdatedAt": op.UpdatedAt.UTC().Format(time.RFC3339), "ttlMs": nil, "pollIntervalMs": t.pollMS(),
		"_meta": map[string]any{mcp.MetaKeyServerInfo: t.server}}
	if msg != "" {
		task["statusMessage"] = msg
	}
	if status == mcp.TaskStatusCompleted {
		var a opAnswer
		if json.Unmarshal(op.Result, &a) == nil {
			res := a.result()
			res.ResultType = mcp.ResultTypeComplete
			task["result"] = res
		}
	}
	return task
}

func requestID(raw json.RawMessage) mcp.RequestId {
	var id mcp.RequestId
	_ = json.Unmarshal(raw, &id)
	return id
}

func rpcResult(id json.RawMessage, result any) mcp.JSONRPCMessage {
	return mcp.JSONRPCResponse{JSONRPC: mcp.JSONRPC_VERSION, ID: requestID(id), Result: result}
}

func rpcError(id json.RawMessage, code int, msg string, data any) mcp.JSONRPCMessage {
	return mcp.JSONRPCError{JSONRPC: mcp.JSONRPC_VERSION, ID: requestID(id), Error: mcp.JSONRPCErrorDetails{Code: code, Message: msg, Data: data}}
}

func taskNotFound(id json.RawMessage, taskID string) mcp.JSONRPCMessage {
	return rpcError(id, mcp.INVALID_PARAMS, fmt.Sprintf("Failed to retrieve task: Task not found (%q is no task of this gpu-mcp's state store)", taskID), nil)
}

// missingExtension is the answer to a 2026-07-28 task request of a client that did not
// declare the Tasks extension.
func missingExtension(id json.RawMessage) mcp.JSONRPCMessage {
	return rpcError(id, mcp.MISSING_REQUIRED_CLIENT_CAPABILITY, "Missing required client capability",
		map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{TasksExtension: map[string]any{}}}})
}
