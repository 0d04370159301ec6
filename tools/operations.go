package tools

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Long operations: no call of a long tool (launch_instance, wait_instance, save_image with
// wait) blocks longer than the call budget (GPU_MCP_CALL_BUDGET), whatever the client's
// patience.
//
// Such a call runs its whole handler, guard included, in a goroutine of its own: an
// operation. The call waits for it up to the budget. An operation that ends in time answers
// as the call always did and leaves nothing behind. One that does not is written to the
// state store (state.Operation), and the call answers status "pending" with the
// operation's id, what was done so far and what to call next; the operation goes on to its
// end, records its steps as they happen and, at the end, the very answer the call would have
// given. get_operation waits for that answer, up to the budget at a time, and gives the same
// answer however often it is asked. A client that gives up on the call (a timeout, a
// notifications/cancelled) ends nothing: only cancel_operation or tasks/cancel cancel an
// operation, and a cancelled launch is cleaned up like one that did not come up.
//
// The owner of an operation beats its heartbeat in the store; when it dies, any gpu-mcp
// process on the same store adopts the operation (state.Store.ClaimStaleOperation) and sees
// it through: a launch by following the launch ledger, which fleet's reconciler resolves; a
// wait by waiting again until the wait's deadline.

// DefaultCallBudget is the call budget when GPU_MCP_CALL_BUDGET is unset: below the minute
// after which many clients stop waiting, whatever progress arrives.
const DefaultCallBudget = 45 * time.Second

// The call budgets GPU_MCP_CALL_BUDGET accepts.
const (
	MinCallBudget = time.Second
	MaxCallBudget = 10 * time.Minute
)

// opKind is what an operation does, and so how another process sees it through.
type opKind string

const (
	opLaunch    opKind = "launch"
	opWait      opKind = "wait"
	opSaveImage opKind = "save_image"
)

// Why an operation's context ends without the operation having failed.
var (
	// errShutdown: this process stops; the operation is handed to the next one.
	errShutdown = errors.New("gpu-mcp is stopping: the operation is handed on to the next gpu-mcp process on this state store")
	// errLost: another process adopted the operation (this one's heartbeat was late).
	errLost = errors.New("another gpu-mcp process took the operation over")
)

// opRecord is what the store keeps of an operation beside its columns (in Operation.Args).
type opRecord struct {
	// Arguments are the call's, without its confirmation token.
	Arguments json.RawMessage `json:"arguments"`
	// Plan is the plan the user approved, for an answer given after a restart.
	Plan *Plan `json:"plan,omitempty"`
	// Pending is the tool's answer while the operation runs, without the pending fields.
	Pending json.RawMessage `json:"pending,omitempty"`
	// Deadline ends a wait; ImageID is what a save_image asked the vendor for.
	Deadline time.Time `json:"deadline,omitzero"`
	ImageID  string    `json:"image_id,omitempty"`
	Saved    bool      `json:"saved,omitempty"` // the vendor took the save
	// Task: the operation was asked for as an MCP task.
	Task *taskInfo `json:"task,omitempty"`
	// Cancel says when the user cancelled the operation, and how.
	Cancel string `json:"cancel,omitempty"`
}

// taskInfo is how an operation's task was asked for.
type taskInfo struct {
	// Modern: by a 2026-07-28 client with the io.modelcontextprotocol/tasks extension;
	// else a 2025-11-25 task-augmented tools/call.
	Modern bool   `json:"modern,omitempty"`
	TTL    *int64 `json:"ttl,omitempty"` // what the client asked for, in ms
}

// opAnswer is an operation's answer in the store (Operation.Result): the tool result.
type opAnswer struct {
	Text       string          `json:"text"`
	Structured json.RawMessage `json:"structured,omitempty"`
	IsError    bool            `json:"is_error,omitempty"`
}

func answerOf(res *mcp.CallToolResult) opAnswer {
	a := opAnswer{IsError: res.IsError}
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			a.Text += t.Text
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			a.Structured = b
		}
	}
	return a
}

func (a opAnswer) result() *mcp.CallToolResult {
	res := &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(a.Text)}, IsError: a.IsError}
	if len(a.Structured) > 0 {
		var v any
		if json.Unmarshal(a.Structured, &v) == nil {
			res.StructuredContent = v
		}
	}
	return res
}

// Pending is in the answer of a long call that outlived the call budget (status pending).
type Pending struct {
	OperationID string   `json:"operation_id,omitempty" jsonschema_description:"with status pending: the handle of the operation, which goes on in the background (also when this client disconnects, or gpu-mcp restarts); pass it to get_operation"`
	DoneSoFar   []string `json:"done_so_far,omitempty" jsonschema_description:"with status pending: the steps done so far, in order"`
	Next        string   `json:"next,omitempty" jsonschema_description:"with status pending: what to call next"`
}

// longSpec makes a tool long: its calls run as operations under the call budget.
type longSpec struct {
	kind opKind
	// pending is the tool's answer while the operation runs, from the call's arguments;
	// the pending fields are added to it.
	pending func(raw json.RawMessage) any
	// follows reports whether a call follows an operation (wait_instance operation_id),
	// which waits up to the budget by itself.
	follows func(raw json.RawMessage) bool
	inner   func(ctx context.Context, raw json.RawMessage) *mcp.CallToolResult
}

// long makes t a long tool of the given kind.
func (d *Deps) long(t Tool, kind opKind, pending func(raw json.RawMessage) any, follows func(raw json.RawMessage) bool) Tool {
	t.long = &longSpec{kind: kind, pending: pending, follows: follows, inner: t.handle}
	inner := t.handle
	t.handle = func(ctx context.Context, raw json.RawMessage) *mcp.CallToolResult {
		if d.Ops == nil || (follows != nil && follows(raw)) {
			return inner(ctx, raw)
		}
		res, _ := d.Ops.call(ctx, t, raw, nil)
		return res
	}
	return t
}

// OperationsOptions configure Operations.
type OperationsOptions struct {
	Store state.Store
	// Owner names this process in the operations' records (the replica id).
	Owner string
	// Budget is the call budget (default DefaultCallBudget).
	Budget time.Duration
	// Poll is how often a follower looks at the store and the adopter for operations whose
	// owner died (default 3s); StaleAfter is how long an owner may miss its heartbeat before
	// another process adopts its operations (default 10 polls, at least 2s).
	Poll, StaleAfter time.Duration
	Log              zerolog.Logger
}

// Operations runs the operations of this process and adopts those of dead ones. It is safe
// for concurrent use.
type Operations struct {
	d     *Deps
	o     OperationsOptions
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	live  map[string]*liveOp
	began bool
	ended bool
}

// NewOperations returns the operations of the tools of d; Start begins adopting those of
// dead processes.
func NewOperations(d *Deps, o OperationsOptions) (*Operations, error) {
	if o.Store == nil || o.Owner == "" {
		return nil, errors.New("operations: a state store and an owner are required")
	}
	if o.Budget <= 0 {
		o.Budget = DefaultCallBudget
	}
	if o.Poll <= 0 {
		o.Poll = 3 * time.Second
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = max(10*o.Poll, 2*time.Second)
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Operations{d: d, o: o, ctx: ctx, stop: stop, live: map[string]*liveOp{}}, nil
}

// Budget is the call budget.
func (o *Operations) Budget() time.Duration { return o.o.Budget }

// CallBudget is how long a tool call may block: the call budget, also for tools of their
// own that bound a wait (run_command's timeout).
func (d *Deps) CallBudget() time.Duration {
	if d.Ops == nil {
		return DefaultCallBudget
	}
	return d.Ops.Budget()
}

// Start runs the heartbeat of this process's operations and, every poll, adopts the
// operations of processes that died, until Close.
func (o *Operations) Start() {
	o.mu.Lock()
	again := o.began
	o.began = true
	o.mu.Unlock()
	if again {
		return
	}
	o.spawn(func() {
		beat := time.NewTicker(o.o.StaleAfter / 4)
		adopt := time.NewTicker(o.o.Poll)
		defer beat.Stop()
		defer adopt.Stop()
		o.adoptStale()
		for {
			select {
			case <-o.ctx.Done():
				return
			case <-beat.C:
				o.beat()
			case <-adopt.C:
				o.adoptStale()
			}
		}
	})
}

// Close hands this process's operations back to the store, for the next gpu-mcp process,
// and waits for their goroutines to stop.
func (o *Operations) Close() {
	o.mu.Lock()
	o.ended = true
	live := make([]*liveOp, 0, len(o.live))
	for _, lo := range o.live {
		live = append(live, lo)
	}
	o.mu.Unlock()
	for _, lo := range live {
		lo.cancel(errShutdown)
	}
	o.stop()
	o.wg.Wait()
}

// spawn runs fn in a goroutine that Close waits for; after Close it does not run.
func (o *Operations) spawn(fn func()) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		fn()
	}()
	return true
}

func (o *Operations) log() *zerolog.Logger { return &o.o.Log }

// liveOp is an operation this process runs.
type liveOp struct {
	o       *Operations
	id      string
	tool    string
	kind    opKind
	created time.Time
	cancel  context.CancelCauseFunc
	done    chan struct{}

	mu     sync.Mutex
	rec    opRecord
	steps  []string
	stored bool
	result *mcp.CallToolResult
	// caller is the progress of the call that waits for the operation, while it waits.
	caller *progress
}

// newOpID is an operation's id, which is also the id of its task: unguessable, since it is
// a bearer handle on the operation's answer.
func newOpID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "op-" + hex.EncodeToString(b)
}

type opKey struct{}

func withOp(ctx context.Context, lo *liveOp) context.Context {
	return context.WithValue(ctx, opKey{}, lo)
}

func opFrom(ctx context.Context) *liveOp {
	lo, _ := ctx.Value(opKey{}).(*liveOp)
	return lo
}

// opID is the id of the operation ctx runs in ("" outside one).
func opID(ctx context.Context) string {
	if lo := opFrom(ctx); lo != nil {
		return lo.id
	}
	return ""
}

// noteOp records what an operation will need to answer after a restart (the plan, the
// deadline of a wait, the image of a save); outside an operation it does nothing. It fails
// when the operation is in the store and the note cannot be written there.
func noteOp(ctx context.Context, fn func(*opRecord)) error {
	lo := opFrom(ctx)
	if lo == nil {
		return nil
	}
	lo.mu.Lock()
	defer lo.mu.Unlock()
	fn(&lo.rec)
	if !lo.stored {
		return nil
	}
	return lo.o.update(lo.id, func(op *state.Operation) error { return lo.encodeInto(op) })
}

// withoutToken is a call's arguments as an operation keeps them: no confirmation token.
func withoutToken(raw json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return json.RawMessage("{}")
	}
	delete(m, "confirm_token")
	delete(m, "confirmation_token") // its old name, accepted until 0.3
	b, _ := json.Marshal(m)
	return b
}

// begin makes the live operation of one call of t.
func (o *Operations) begin(t Tool, raw json.RawMessage) *liveOp {
	lo := &liveOp{o: o, id: newOpID(), tool: t.Name, kind: t.long.kind, created: time.Now(), done: make(chan struct{})}
	lo.rec.Arguments = withoutToken(raw)
	if b, err := json.Marshal(t.long.pending(raw)); err == nil {
		lo.rec.Pending = b
	}
	return lo
}

// register adds lo to the live operations; false after Close.
func (o *Operations) register(lo *liveOp) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return false
	}
	o.live[lo.id] = lo
	return true
}

func (o *Operations) forget(lo *liveOp) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.live[lo.id] == lo {
		delete(o.live, lo.id)
	}
}

func (o *Operations) liveOne(id string) *liveOp {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.live[id]
}

// call runs one call of the long tool t as an operation and waits for it up to the call
// budget: its answer, or the pending answer (and the operation, then in the store). A task
// (task set) is in the store before it starts; a 2025-11-25 task is not waited for at all.
func (o *Operations) call(ctx context.Context, t Tool, raw json.RawMessage, task *taskInfo) (*mcp.CallToolResult, *liveOp) {
	lo := o.begin(t, raw)
	lo.rec.Task = task
	if task != nil {
		if _, err := lo.persist(); err != nil {
			return errorResult(&providers.Error{Kind: providers.KindUnavailable, Provider: providers.Own, Err: err, Message: fmt.Sprintf("%s: the task could not be recorded in the state store (%v); nothing was done", t.Name, err), Remedy: "try again once the state store answers"}, false), nil
		}
	}
	octx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	lo.cancel = cancel
	octx = withOp(octx, lo)
	lo.caller, _ = ctx.Value(progressKey{}).(*progress)
	if !o.register(lo) || !o.spawn(func() { lo.finish(octx, t.long.inner(octx, raw)) }) {
		cancel(nil)
		o.forget(lo)
		return t.long.inner(ctx, raw), nil
	}
	if task != nil && !task.Modern {
		lo.detach()
		return nil, lo
	}
	timer := time.NewTimer(o.o.Budget)
	defer timer.Stop()
	select {
	case <-lo.done:
		lo.detach()
		if lo.result == nil {
			// Cut short by this process's stop and handed on: the next process answers.
			return lo.pendingResult(), lo
		}
		return lo.result, nil
	case <-timer.C:
	case <-ctx.Done():
		// The client gave up on the call: the operation goes on, in the store.
	}
	lo.detach()
	res, err := lo.persist()
	if res != nil {
		return res, nil
	}
	pending := lo.pendingResult()
	if err != nil {
		o.log().Error().Err(err).Str("operation", lo.id).Str("tool", t.Name).Msg("a pending operation could not be recorded in the state store: only this process can answer for it")
		pending.Content = append(pending.Content, mcp.NewTextContent(fmt.Sprintf(" The state store failed (%v): this handle answers only while this gpu-mcp process runs.", err)))
	}
	return pending, lo
}

// detach ends the forwarding of progress to the call that waited.
func (lo *liveOp) detach() {
	lo.mu.Lock()
	lo.caller = nil
	lo.mu.Unlock()
}

// step records a step of the operation, and tells the waiting call, if any.
func (lo *liveOp) step(total int, msg string) {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	lo.steps = append(lo.steps, msg)
	if lo.caller != nil {
		lo.caller.send(total, msg)
	}
	if lo.stored {
		steps := strings.Join(lo.steps, "\n")
		if err := lo.o.update(lo.id, func(op *state.Operation) error { op.Progress = steps; return nil }); err != nil {
			lo.o.log().Warn().Err(err).Str("operation", lo.id).Msg("an operation's step could not be recorded")
		}
	}
}

// encodeInto writes the operation's record into op.
func (lo *liveOp) encodeInto(op *state.Operation) error {
	b, err := json.Marshal(lo.rec)
	if err != nil {
		return err
	}
	op.Args = b
	return nil
}

// persist writes the operation to the store, unless it has its answer already (which it
// then returns) or is there already.
func (lo *liveOp) persist() (*mcp.CallToolResult, error) {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	if lo.result != nil {
		return lo.result, nil
	}
	return nil, lo.storeLocked(lo.o.o.Owner, time.Now())
}

// handBackLocked leaves the operation, cut short because this process stops, to the next
// process: one its call was still waiting for is written to the store first.
func (lo *liveOp) handBackLocked() {
	if lo.stored {
		lo.o.handBack(lo.id)
		return
	}
	if err := lo.storeLocked("", handedBack); err != nil {
		lo.o.log().Error().Err(err).Str("operation", lo.id).Str("tool", lo.tool).Msg("an operation cut short by the stop could not be handed on in the state store; check list_instances")
	}
}

// storeLocked writes the operation to the store, unless it is there already.
func (lo *liveOp) storeLocked(owner string, heartbeat time.Time) error {
	if lo.stored {
		return nil
	}
	op := state.Operation{ID: lo.id, Kind: string(lo.kind), Tool: lo.tool, Status: state.OperationPending,
		Progress: strings.Join(lo.steps, "\n"), Owner: owner, Heartbeat: heartbeat}
	if err := lo.encodeInto(&op); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := lo.o.o.Store.PutOperation(ctx, op); err != nil {
		return err
	}
	lo.stored = true
	return nil
}

// finish records the operation's answer, unless this process is stopping (or lost the
// operation): then the next process sees it through.
func (lo *liveOp) finish(ctx context.Context, res *mcp.CallToolResult) {
	defer close(lo.done)
	defer lo.o.forget(lo)
	cause := context.Cause(ctx)
	lo.mu.Lock()
	defer lo.mu.Unlock()
	handOn := errors.Is(cause, errShutdown) || errors.Is(cause, errLost)
	if res == nil {
		res = errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: lo.tool + " ended without an answer", Remedy: "check list_instances"}, true)
	}
	if !handOn {
		lo.result = res
	}
	if handOn {
		if errors.Is(cause, errShutdown) {
			lo.handBackLocked()
		}
		return
	}
	if !lo.stored {
		return
	}
	answer, _ := json.Marshal(answerOf(res))
	status := state.OperationDone
	switch {
	case lo.rec.Cancel != "":
		status = state.OperationCancelled
	case res.IsError:
		status = state.OperationFailed
	}
	err := lo.o.update(lo.id, func(op *state.Operation) error {
		op.Status, op.Result, op.Progress = status, answer, strings.Join(lo.steps, "\n")
		return lo.encodeInto(op)
	})
	if err != nil {
		lo.o.log().Error().Err(err).Str("operation", lo.id).Str("tool", lo.tool).Msg("OPERATION ANSWER NOT RECORDED: its handle keeps answering pending; the next gpu-mcp process sees it through again")
	}
}

// update applies fn to the stored operation id.
func (o *Operations) update(id string, fn func(*state.Operation) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := o.o.Store.UpdateOperation(ctx, id, fn)
	return err
}

// handedBack is the heartbeat of an operation handed to the next process: long past, so that
// the next process adopts it at once.
var handedBack = time.Unix(1, 0)

// handBack leaves an operation of this process to the next process.
func (o *Operations) handBack(id string) {
	err := o.update(id, func(op *state.Operation) error {
		if op.Owner != o.o.Owner || op.Status != state.OperationPending {
			return state.ErrNotOwner
		}
		op.Owner, op.Heartbeat = "", handedBack
		return nil
	})
	if err != nil && !errors.Is(err, state.ErrNotOwner) {
		o.log().Warn().Err(err).Str("operation", id).Msg("could not hand an operation back to the state store; another process adopts it once its heartbeat is stale")
	}
}

// beat refreshes the heartbeat of this process's stored operations, and carries out a
// cancellation another process recorded.
func (o *Operations) beat() {
	o.mu.Lock()
	live := make([]*liveOp, 0, len(o.live))
	for _, lo := range o.live {
		live = append(live, lo)
	}
	o.mu.Unlock()
	for _, lo := range live {
		lo.mu.Lock()
		stored := lo.stored
		lo.mu.Unlock()
		if !stored {
			continue
		}
		var cancelAsked string
		err := o.update(lo.id, func(op *state.Operation) error {
			if op.Owner != o.o.Owner {
				return state.ErrNotOwner
			}
			op.Heartbeat = time.Now()
			var rec opRecord
			if json.Unmarshal(op.Args, &rec) == nil {
				cancelAsked = rec.Cancel
			}
			return nil
		})
		switch {
		case errors.Is(err, state.ErrNotOwner):
			o.log().Warn().Str("operation", lo.id).Msg("another gpu-mcp process adopted this operation (this one's heartbeat was late); it goes on there")
			lo.cancel(errLost)
		case err != nil:
			o.log().Warn().Err(err).Str("operation", lo.id).Msg("an operation's heartbeat could not be recorded")
		case cancelAsked != "":
			lo.mu.Lock()
			mine := lo.rec.Cancel
			if mine == "" {
				lo.rec.Cancel = cancelAsked
			}
			lo.mu.Unlock()
			if mine == "" {
				o.cancelLive(lo)
			}
		}
	}
}

// adoptStale adopts every pending operation whose owner stopped beating.
func (o *Operations) adoptStale() {
	for range 64 {
		ctx, cancel := context.WithTimeout(o.ctx, 10*time.Second)
		op, err := o.o.Store.ClaimStaleOperation(ctx, o.o.Owner, time.Now().Add(-o.o.StaleAfter))
		cancel()
		if err != nil {
			if o.ctx.Err() == nil {
				o.log().Warn().Err(err).Msg("looking for operations left by a gpu-mcp process that ended")
			}
			return
		}
		if op == nil {
			return
		}
		o.adopt(*op)
	}
}

// adopt sees an operation of a dead process through in this one.
func (o *Operations) adopt(op state.Operation) {
	if o.liveOne(op.ID) != nil {
		// One of this process's own, whose heartbeat came late: the claim refreshed it.
		return
	}
	lo := &liveOp{o: o, id: op.ID, tool: op.Tool, kind: opKind(op.Kind), created: op.CreatedAt, done: make(chan struct{}), stored: true}
	if err := json.Unmarshal(op.Args, &lo.rec); err != nil {
		o.log().Error().Err(err).Str("operation", op.ID).Msg("an operation's record cannot be read; it is marked failed")
	}
	if op.Progress != "" {
		lo.steps = strings.Split(op.Progress, "\n")
	}
	octx, cancel := context.WithCancelCause(o.ctx)
	lo.cancel = cancel
	octx = withOp(octx, lo)
	if !o.register(lo) {
		cancel(nil)
		o.handBack(op.ID)
		return
	}
	o.log().Info().Str("operation", op.ID).Str("tool", op.Tool).Msg("adopted an operation whose gpu-mcp process ended; seeing it through")
	if !o.spawn(func() { lo.finish(octx, o.d.resume(octx, lo)) }) {
		cancel(nil)
		o.forget(lo)
		o.handBack(op.ID)
	}
}

// cancelLive cancels an operation this process runs: a launch is first marked cancelled in
// the ledger, so that its cleanup survives this process.
func (o *Operations) cancelLive(lo *liveOp) {
	if lo.kind == opLaunch && o.d.Fleet != nil {
		if _, err := o.d.Fleet.CancelLaunch(context.Background(), launchKey(lo.id, lo.rec.Arguments)); err != nil {
			o.log().Error().Err(err).Str("operation", lo.id).Msg("the launch's cancellation could not be recorded in its ledger; cancelling it in this process")
		}
	}
	lo.cancel(fleet.ErrCancelled)
}

// cancel asks for an operation to be cancelled, by how (cancel_operation, tasks/cancel). It
// returns the operation as it was; an operation that ended is left as it is.
func (o *Operations) cancel(ctx context.Context, id, how string) (state.Operation, error) {
	stamp := how + " at " + time.Now().UTC().Format(time.RFC3339)
	op, err := o.o.Store.UpdateOperation(ctx, id, func(op *state.Operation) error {
		if op.Status != state.OperationPending {
			return nil
		}
		var rec opRecord
		if err := json.Unmarshal(op.Args, &rec); err != nil {
			return err
		}
		if rec.Cancel != "" {
			return nil
		}
		rec.Cancel = stamp
		b, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		op.Args = b
		return nil
	})
	if err != nil || op.Status != state.OperationPending {
		return op, err
	}
	if op.Kind == string(opLaunch) && o.d.Fleet != nil {
		var rec opRecord
		_ = json.Unmarshal(op.Args, &rec)
		if _, err := o.d.Fleet.CancelLaunch(ctx, launchKey(op.ID, rec.Arguments)); err != nil {
			return op, err
		}
	}
	if lo := o.liveOne(id); lo != nil {
		lo.mu.Lock()
		lo.rec.Cancel = stamp
		lo.mu.Unlock()
		lo.cancel(fleet.ErrCancelled)
	}
	// Another live process sees the cancellation at its next heartbeat; an operation whose
	// process died is adopted with it, and a launch's ledger carries it to the reconciler.
	return op, nil
}

// launchKey is the launch ledger key of a launch operation: the agent's idempotency key, or
// the operation's id.
func launchKey(id string, args json.RawMessage) string {
	var a struct {
		Key string `json:"idempotency_key"`
	}
	if json.Unmarshal(args, &a) == nil && a.Key != "" { // as launch_instance keys it (validate refuses blank keys)
		return a.Key
	}
	return id
}

// pendingResult is the answer of a call whose operation goes on.
func (lo *liveOp) pendingResult() *mcp.CallToolResult {
	lo.mu.Lock()
	defer lo.mu.Unlock()
	return lo.o.d.pendingAnswer(lo.id, lo.tool, lo.kind, lo.rec, lo.steps, time.Since(lo.created))
}

// pendingAnswer is the pending answer of an operation: the tool's own pending answer with the
// operation's id, its steps and what to call next, and a line that says the same.
func (d *Deps) pendingAnswer(id, tool string, kind opKind, rec opRecord, steps []string, elapsed time.Duration) *mcp.CallToolResult {
	m := map[string]any{}
	_ = json.Unmarshal(rec.Pending, &m)
	next := "call get_operation with operation_id=" + id
	if kind == opWait {
		next += " (or wait_instance operation_id=" + id + ")"
	}
	done := append([]string{}, steps...)
	m["status"], m["operation_id"], m["done_so_far"], m["next"] = "pending", id, done, next
	if rec.Plan != nil {
		if _, has := m["plan"]; !has {
			m["plan"] = rec.Plan
		}
	}
	so := "nothing reported yet"
	if len(done) > 0 {
		so = strings.Join(done, ", ")
	}
	cancelled := ""
	if rec.Cancel != "" {
		cancelled = " (cancelled: its cleanup goes on)"
	}
	text := fmt.Sprintf("%sPENDING: %s is still running after %s%s, past the call budget of %s; done so far: %s. It goes on in the background: %s to follow it.",
		d.textPrefix(), tool, fleet.ShortDuration(elapsed.Round(time.Second)), cancelled, fleet.ShortDuration(d.CallBudget()), so, next)
	return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent(text)}, StructuredContent: m}
}
