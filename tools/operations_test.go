package tools

import (
	"context"
	"encoding/json"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// testBudget is the call budget of these tests: far shorter than their launches, which
// wait for the test to let the instance come up.
const testBudget = 60 * time.Millisecond

// newOpsHarness is a harness whose long calls are operations under testBudget, on store
// (nil: a store of its own), as the process owner.
func newOpsHarness(t *testing.T, store state.Store, owner string, fakes ...*fakeProvider) *harness {
	return newBudgetHarness(t, store, owner, testBudget, fakes...)
}

func newBudgetHarness(t *testing.T, store state.Store, owner string, budget time.Duration, fakes ...*fakeProvider) *harness {
	t.Helper()
	ps := make([]providers.Provider, len(fakes))
	h := &harness{t: t, fakes: map[string]*fakeProvider{}}
	for i, f := range fakes {
		ps[i] = f
		h.fakes[f.name] = f
	}
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		t.Fatal(err)
	}
	fl := newTestFleet(t, reg, func(o *fleet.Options) {
		if store != nil {
			o.Store = store
		}
		store, o.Owner = o.Store, owner
	})
	d := &Deps{Providers: reg, Confirmer: testConfirmer(t, "test-secret"), Log: zerolog.New(io.Discard), Fleet: fl}
	ops, err := NewOperations(d, OperationsOptions{Store: store, Owner: owner, Budget: budget, Poll: 5 * time.Millisecond, StaleAfter: 200 * time.Millisecond, Log: zerolog.New(io.Discard)})
	if err != nil {
		t.Fatal(err)
	}
	d.Ops = ops
	ops.Start()
	t.Cleanup(ops.Close)
	h.deps = d
	h.c = inProcessClient(t, d, "test", nil)
	return h
}

// launchArgs are the arguments of a launch of the fake's offer.
func launchArgs() map[string]any {
	return map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait_timeout": "1m"}
}

// approved runs a guarded call through its plan and token, and returns the second answer.
func (h *harness) approved(tool string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	h.t.Helper()
	plan := h.planOf(tool, args)
	if plan["status"] != "confirmation_required" {
		h.t.Fatalf("%s without a token: %v", tool, plan)
	}
	with := map[string]any{"confirm_token": plan["confirmation_token"]}
	for k, v := range args {
		with[k] = v
	}
	return h.call(tool, with)
}

// planOf is a guarded tool's plan: on a slow machine even the plan may outlive this test's
// short budget, and is then followed to its end.
func (h *harness) planOf(tool string, args map[string]any) map[string]any {
	h.t.Helper()
	_, plan := h.call(tool, args)
	if plan["status"] == "pending" {
		_, plan, _ = h.follow(plan["operation_id"].(string))
	}
	return plan
}

// follow calls get_operation until the operation ended, and returns its answer and how many
// calls it took.
func (h *harness) follow(id string) (*mcp.CallToolResult, map[string]any, int) {
	h.t.Helper()
	for n := 1; ; n++ {
		res, m := h.call("get_operation", map[string]any{"operation_id": id})
		if m["status"] != "pending" {
			return res, m, n
		}
		if m["operation_id"] != id || len(m["next"].(string)) == 0 {
			h.t.Fatalf("pending answer of get_operation: %v", m)
		}
		if n > 2000 {
			h.t.Fatalf("operation %s still pending: %s", id, text(res))
		}
	}
}

// boot makes the instance run, once it was bought.
func (f *fakeProvider) boot(local string) {
	for {
		f.mu.Lock()
		in := f.insts[local]
		if in != nil {
			in.State = providers.StateRunning
		}
		f.mu.Unlock()
		if in != nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

func (f *fakeProvider) count(op string) int {
	n := 0
	for _, m := range f.mutations() {
		if strings.HasPrefix(m, op+" ") {
			n++
		}
	}
	return n
}

// A launch that outlives the call budget answers a handle at once; get_operation follows it,
// a budget at a time, to the answer the call would have given (ready, with its ssh command),
// and gives that same answer however often it is asked. One instance was bought.
func TestLaunchPastTheBudgetAnswersAHandleThenItsResult(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StateStarting
	h := newOpsHarness(t, nil, "replica-a", f)
	res, m := h.approved("launch_instance", launchArgs())
	id, _ := m["operation_id"].(string)
	if res.IsError || m["status"] != "pending" || !strings.HasPrefix(id, "op-") || m["ready"] != false {
		t.Fatalf("answer past the budget: %v\n%s", m, text(res))
	}
	if !strings.Contains(m["next"].(string), "get_operation with operation_id="+id) {
		t.Fatalf("pending answer: %v", m)
	}
	if line := text(res); strings.Count(line, "\n") != 0 || !strings.Contains(line, "PENDING") || !strings.Contains(line, id) {
		t.Fatalf("pending text %q: one line naming the handle", line)
	}
	// Still pending while the instance boots, with what was done so far.
	for {
		_, again := h.call("get_operation", map[string]any{"operation_id": id})
		if again["status"] != "pending" || again["plan"] == nil {
			t.Fatalf("get_operation while it boots: %v", again)
		}
		if steps, _ := again["done_so_far"].([]any); len(steps) >= 2 {
			if !strings.HasPrefix(steps[0].(string), "ordered: alpha:new-1") || !strings.HasPrefix(steps[1].(string), "starting") {
				t.Fatalf("done so far: %v", steps)
			}
			break
		}
	}
	f.boot("new-1")
	done, final, _ := h.follow(id)
	if done.IsError || final["status"] != "done" || final["ready"] != true || final["ssh_command"] == "" || final["plan"] == nil || final["operation_id"] != nil {
		t.Fatalf("the launch's answer: %v\n%s", final, text(done))
	}
	for range 3 {
		res, m := h.call("get_operation", map[string]any{"operation_id": id})
		if !reflect.DeepEqual(m, final) || text(res) != text(done) {
			t.Fatalf("get_operation again: %v, want %v", m, final)
		}
	}
	if n := f.count("launch"); n != 1 {
		t.Fatalf("%d buys, want 1", n)
	}
	op, err := h.deps.Ops.o.Store.GetOperation(context.Background(), id)
	if err != nil || op.Status != state.OperationDone || op.Kind != "launch" || !strings.Contains(op.Progress, "ssh ready") || strings.Contains(string(op.Args), "confirm_token") {
		t.Fatalf("the stored operation: %+v %v", op, err)
	}
}

// A call that ends within the budget answers as it always did and leaves no operation.
func TestQuickCallsLeaveNoOperation(t *testing.T) {
	t.Parallel()
	h := newBudgetHarness(t, nil, "replica-a", 10*time.Minute, newFake("alpha"))
	res, m := h.approved("launch_instance", launchArgs())
	if res.IsError || m["status"] != "done" || m["ready"] != true {
		t.Fatalf("a quick launch: %v\n%s", m, text(res))
	}
	ops, err := h.deps.Ops.o.Store.ListOperations(context.Background(), state.OperationFilter{})
	if err != nil || len(ops) != 0 {
		t.Fatalf("operations: %+v %v", ops, err)
	}
}

// A client that stops waiting (its request is cancelled) ends nothing: the launch goes on
// in its operation and comes up, and nothing is stopped or destroyed.
func TestAClientThatGivesUpCancelsNothing(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StateStarting
	h := newOpsHarness(t, nil, "replica-a", f)
	plan := h.planOf("launch_instance", launchArgs())
	args := launchArgs()
	args["confirm_token"] = plan["confirmation_token"]
	ctx, cancel := context.WithCancel(context.Background())
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "launch_instance", args
	go func() {
		for f.count("launch") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := h.c.CallTool(ctx, req); err == nil {
		t.Log("the call answered before its cancellation")
	}
	var id string
	for id == "" {
		ops, err := h.deps.Ops.o.Store.ListOperations(context.Background(), state.OperationFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) == 1 {
			id = ops[0].ID
		}
	}
	f.boot("new-1")
	_, m, _ := h.follow(id)
	if m["status"] != "done" || m["ready"] != true {
		t.Fatalf("the launch whose client gave up: %v", m)
	}
	if f.count("stop") != 0 || f.count("destroy") != 0 || f.state("new-1") != providers.StateRunning {
		t.Fatalf("the instance was touched: %v", f.mutations())
	}
}

// cancel_operation is guarded, and a cancelled launch is cleaned up as one that did not come
// up: stopped, then destroyed; its answer says so, and the operation is cancelled.
func TestCancelOperationCleansUpTheLaunch(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.launchState = providers.StateStarting
	h := newOpsHarness(t, nil, "replica-a", f)
	_, m := h.approved("launch_instance", launchArgs())
	id := m["operation_id"].(string)
	_, plan := h.call("cancel_operation", map[string]any{"operation_id": id})
	if plan["status"] != "confirmation_required" || !strings.Contains(effects(plan["plan"].(map[string]any)), "stopped and destroyed") {
		t.Fatalf("cancel_operation's plan: %v", plan)
	}
	if f.count("stop")+f.count("destroy") != 0 {
		t.Fatal("the plan alone changed something")
	}
	res, m := h.call("cancel_operation", map[string]any{"operation_id": id, "confirm_token": plan["confirmation_token"]})
	if res.IsError || m["status"] != "done" {
		t.Fatalf("cancel_operation: %v\n%s", m, text(res))
	}
	_, final, _ := h.follow(id)
	att := final["attempts"].([]any)[0].(map[string]any)
	if final["status"] != "failed" || att["result"] != "cancelled" || att["billing"] != "no" || !strings.Contains(att["cleanup"].(string), "destroyed") {
		t.Fatalf("the cancelled launch's answer: %v", final)
	}
	if f.state("new-1") != "absent" || f.count("stop") != 1 || f.count("destroy") != 1 {
		t.Fatalf("the instance: %s, changes %v", f.state("new-1"), f.mutations())
	}
	op, err := h.deps.Ops.o.Store.GetOperation(context.Background(), id)
	if err != nil || op.Status != state.OperationCancelled {
		t.Fatalf("the operation: %+v %v", op, err)
	}
	_, again := h.call("cancel_operation", map[string]any{"operation_id": id})
	if again["status"] != "nothing_to_do" {
		t.Fatalf("cancelling it again: %v", again)
	}
}

// A wait past the budget is followed with wait_instance operation_id; cancel_operation has
// nothing to undo for it.
func TestWaitPastTheBudgetFollowedByWaitInstance(t *testing.T) {
	t.Parallel()
	f := newFake("alpha")
	f.addInstance("i1", providers.StateStarting)
	h := newOpsHarness(t, nil, "replica-a", f)
	res, m := h.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "1m"})
	id, _ := m["operation_id"].(string)
	if res.IsError || m["status"] != "pending" || m["until"] != "running" || !strings.Contains(m["next"].(string), "wait_instance operation_id="+id) {
		t.Fatalf("wait past the budget: %v\n%s", m, text(res))
	}
	_, c := h.call("cancel_operation", map[string]any{"operation_id": id})
	if c["status"] != "nothing_to_do" || !strings.Contains(c["message"].(string), "nothing to undo") {
		t.Fatalf("cancel_operation of a wait: %v", c)
	}
	f.boot("i1")
	for {
		res, m = h.call("wait_instance", map[string]any{"operation_id": id})
		if m["status"] != "pending" {
			break
		}
	}
	if res.IsError || m["reached"] != true || m["until"] != "running" {
		t.Fatalf("followed wait: %v\n%s", m, text(res))
	}
	if res, m := h.call("wait_instance", map[string]any{"operation_id": id, "until": "running"}); !res.IsError || m["field"] != "operation_id" {
		t.Fatalf("operation_id with other arguments: %v", m)
	}
}

// An operation outlives its process: one handed back by a process that stops, and one left
// by a process that died, are adopted by another process on the same store, which answers
// their handles.
func TestOperationsAreAdoptedByTheNextProcess(t *testing.T) {
	t.Parallel()
	store, err := state.Open(context.Background(), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := newFake("alpha")
	f.addInstance("i1", providers.StateStarting)
	a := newOpsHarness(t, store, "replica-a", f)
	_, m := a.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "1m"})
	handedBack := m["operation_id"].(string)
	a.deps.Ops.Close()

	// A process that died mid-wait leaves its operation pending, with a stale heartbeat.
	rec, _ := json.Marshal(opRecord{Arguments: json.RawMessage(`{"instance_id":"alpha:i1","until":"running","timeout":"1m"}`), Deadline: time.Now().Add(time.Minute)})
	dead, err := store.PutOperation(context.Background(), state.Operation{ID: newOpID(), Kind: string(opWait), Tool: "wait_instance", Args: rec,
		Progress: "starting", Owner: "replica-dead", Heartbeat: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	b := newOpsHarness(t, store, "replica-b", f)
	for _, id := range []string{handedBack, dead.ID} {
		_, m := b.call("get_operation", map[string]any{"operation_id": id})
		if m["status"] != "pending" {
			t.Fatalf("%s before the instance runs: %v", id, m)
		}
		op, err := store.GetOperation(context.Background(), id)
		if err != nil || op.Owner != "replica-b" {
			t.Fatalf("%s is not adopted: %+v %v", id, op, err)
		}
	}
	f.boot("i1")
	for _, id := range []string{handedBack, dead.ID} {
		res, m, _ := b.follow(id)
		if res.IsError || m["reached"] != true {
			t.Fatalf("%s after adoption: %v\n%s", id, m, text(res))
		}
	}
}

// A launch operation adopted after a crash answers from the launch ledger: the launch the
// reconciler saw through, as launch_instance would have answered it.
func TestAdoptedLaunchAnswersFromTheLedger(t *testing.T) {
	t.Parallel()
	store, err := state.Open(context.Background(), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := newFake("alpha")
	b := newOpsHarness(t, store, "replica-b", f)
	offers, _ := f.ListOffers(context.Background())
	id := newOpID()
	if _, err := b.deps.Fleet.Launch(context.Background(), fleet.LaunchRequest{Key: id, ArgsHash: "h", Offer: offers[0], Wait: true, WaitTimeout: time.Minute,
		Spec: providers.LaunchSpec{OfferID: "alpha:o1", ImageID: "alpha:img1", GPUCount: 1, Billing: providers.BillingHourly}}); err != nil {
		t.Fatal(err)
	}
	plan := &Plan{Action: "launch", Summary: "Rent it.", Provider: "alpha", Effects: []string{"bills"}}
	rec, _ := json.Marshal(opRecord{Arguments: json.RawMessage(`{"offer_id":"alpha:o1","image_id":"alpha:img1"}`), Plan: plan})
	if _, err := store.PutOperation(context.Background(), state.Operation{ID: id, Kind: string(opLaunch), Tool: "launch_instance", Args: rec,
		Owner: "replica-dead", Heartbeat: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, m, _ := b.follow(id)
	if res.IsError || m["status"] != "done" || m["ready"] != true || m["instance_id"] != "alpha:new-1" || m["plan"] == nil {
		t.Fatalf("the adopted launch: %v\n%s", m, text(res))
	}
	inst := m["instance"].(map[string]any)["connection"].(map[string]any)
	if inst["ssh_password"] != "s3cret-pw" {
		t.Fatalf("the answer lacks the connection the vendor gives: %v", inst)
	}
	// A launch operation whose launch never reached the ledger bought nothing, and says so.
	lost := newOpID()
	if _, err := store.PutOperation(context.Background(), state.Operation{ID: lost, Kind: string(opLaunch), Tool: "launch_instance", Args: rec,
		Owner: "replica-dead", Heartbeat: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, _, _ = b.follow(lost)
	if !res.IsError || !strings.Contains(text(res), "nothing was bought") {
		t.Fatalf("a launch that never reached the ledger: %s", text(res))
	}
	if n := f.count("launch"); n != 1 {
		t.Fatalf("%d buys, want 1", n)
	}
}

func TestGetOperationOfAnUnknownHandle(t *testing.T) {
	t.Parallel()
	h := newOpsHarness(t, nil, "replica-a", newFake("alpha"))
	res, _ := h.call("get_operation", map[string]any{"operation_id": "op-nonesuch"})
	if !res.IsError || !strings.Contains(text(res), "no operation") || !strings.Contains(text(res), "GPU_MCP_STATE_URL") {
		t.Fatalf("unknown handle: %s", text(res))
	}
}

// The launch plan says how long the launch may take and that the agent is handed a handle
// past the call budget.
func TestLaunchPlanNamesTheHandle(t *testing.T) {
	t.Parallel()
	h := newOpsHarness(t, nil, "replica-a", newFake("alpha"))
	plan := h.planOf("launch_instance", launchArgs())
	e := effects(plan["plan"].(map[string]any))
	if !strings.Contains(e, "may take up to 1m") || !strings.Contains(e, "operation_id") || !strings.Contains(e, "GPU_MCP_CALL_BUDGET") {
		t.Fatalf("plan effects: %s", e)
	}
	if slices.Contains([]string{"", "0"}, e) {
		t.Fatal("no effects")
	}
}

// A call still within its budget when its process stops is handed on too: the call answers
// its handle, and the next process answers that.
func TestACallCutShortByAStopIsHandedOn(t *testing.T) {
	t.Parallel()
	store, err := state.Open(context.Background(), state.MemoryURL, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := newFake("alpha")
	f.addInstance("i1", providers.StateStarting)
	a := newBudgetHarness(t, store, "replica-a", 10*time.Minute, f)
	answered := make(chan map[string]any, 1)
	go func() {
		_, m := a.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "1m"})
		answered <- m
	}()
	for {
		a.deps.Ops.mu.Lock()
		n := len(a.deps.Ops.live)
		a.deps.Ops.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	a.deps.Ops.Close()
	m := <-answered
	id, _ := m["operation_id"].(string)
	if m["status"] != "pending" || id == "" {
		t.Fatalf("the call cut short: %v", m)
	}
	if op, err := store.GetOperation(context.Background(), id); err != nil || op.Owner != "" || op.Status != state.OperationPending {
		t.Fatalf("the handed-on operation: %+v %v", op, err)
	}
	b := newOpsHarness(t, store, "replica-b", f)
	f.boot("i1")
	if res, m, _ := b.follow(id); res.IsError || m["reached"] != true {
		t.Fatalf("the next process's answer: %v\n%s", m, text(res))
	}
}
