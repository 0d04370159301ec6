package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// OperationArgs names an operation.
type OperationArgs struct {
	OperationID string `json:"operation_id" jsonschema:"minLength=3,maxLength=64" jsonschema_description:"the operation_id of a pending answer (status pending)"`
}

// OperationAnswer is the answer of the tool whose call became the operation, in that tool's
// own shape (see its output schema): its pending answer while the operation runs, its result
// once it ended.
type OperationAnswer map[string]any

// JSONSchema says what OperationAnswer holds: another tool's answer, so any object.
func (OperationAnswer) JSONSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "object", AdditionalProperties: jsonschema.TrueSchema,
		Description: "the answer of the tool whose call became this operation, in that tool's own shape (its output schema): with status pending, operation_id, done_so_far and next while it runs; its result once it ended, the same however often it is asked"}
}

func getOperation(d *Deps) Tool {
	return Tool{Name: "get_operation", Title: "Follow an operation",
		Description: "Follow a long call that outlived the call budget: given the operation_id of its pending answer, wait for the operation (up to the call budget again) and return the tool's own answer: its result once done, the same however often it is asked, or the pending answer with what is done so far. Operations go on when the client disconnects and after gpu-mcp restarts. Changes nothing.",
		Hints:       Hints{ReadOnly: true, Idempotent: true, OpenWorld: true},
		InputType:   reflect.TypeFor[OperationArgs](), OutputType: reflect.TypeFor[OperationAnswer](),
		handle: rawHandler("get_operation", false, func(ctx context.Context, in *OperationArgs) *mcp.CallToolResult {
			_, res, err := d.follow(ctx, strings.TrimSpace(in.OperationID), d.CallBudget())
			if err != nil {
				return toolResult(nil, "", err, false)
			}
			return res
		})}
}

// follow waits up to within for the operation id to end: its answer, or its pending answer.
// An operation whose process died is adopted by this one at once.
func (d *Deps) follow(ctx context.Context, id string, within time.Duration) (state.Operation, *mcp.CallToolResult, error) {
	if d.Ops == nil {
		return state.Operation{}, nil, invalidf("this gpu-mcp runs no operations, so operation %q is not known here", id)
	}
	o := d.Ops
	deadline := time.Now().Add(within)
	for {
		op, err := o.o.Store.GetOperation(ctx, id)
		if errors.Is(err, state.ErrNotFound) {
			return op, nil, invalidf("no operation %q is known: operation ids come from a pending answer (status pending, operation_id) and are kept in gpu-mcp's state store (GPU_MCP_STATE_URL); a gpu-mcp on another store, or --demo's store in memory after a restart, does not know them", id)
		}
		if err != nil {
			return op, nil, storeFailed("read operation "+id, err)
		}
		if op.Status != state.OperationPending {
			var a opAnswer
			if err := json.Unmarshal(op.Result, &a); err != nil {
				return op, nil, fmt.Errorf("operation %s ended (%s), but its answer cannot be read from the state store: %v", id, op.Status, err)
			}
			return op, a.result(), nil
		}
		if op.Owner != o.o.Owner && op.Heartbeat.Before(time.Now().Add(-o.o.StaleAfter)) {
			o.adoptStale()
		}
		wait := min(o.o.Poll, time.Until(deadline))
		if wait <= 0 || ctx.Err() != nil {
			return op, d.storedPending(op), nil
		}
		timer := time.NewTimer(wait)
		if lo := o.liveOne(id); lo != nil {
			release := lo.attach(ctx)
			select {
			case <-lo.done:
			case <-timer.C:
			case <-ctx.Done():
			}
			release()
		} else {
			select {
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		timer.Stop()
	}
}

// attach sends the operation's steps to the call of ctx too, unless another call gets them.
func (lo *liveOp) attach(ctx context.Context) func() {
	p, _ := ctx.Value(progressKey{}).(*progress)
	lo.mu.Lock()
	defer lo.mu.Unlock()
	if p == nil || lo.caller != nil {
		return func() {}
	}
	lo.caller = p
	return func() {
		lo.mu.Lock()
		if lo.caller == p {
			lo.caller = nil
		}
		lo.mu.Unlock()
	}
}

// storedPending is the pending answer of an operation as the store has it.
func (d *Deps) storedPending(op state.Operation) *mcp.CallToolResult {
	var rec opRecord
	_ = json.Unmarshal(op.Args, &rec)
	var steps []string
	if op.Progress != "" {
		steps = strings.Split(op.Progress, "\n")
	}
	return d.pendingAnswer(op.ID, op.Tool, opKind(op.Kind), rec, steps, time.Since(op.CreatedAt))
}

// storeFailed is the error of a state store that failed before anything was done.
func storeFailed(what string, err error) error {
	return &providers.Error{Kind: providers.KindUnavailable, Provider: "gpu-mcp", Op: what, Err: err,
		Message: "the state store failed: " + err.Error(), Remedy: "check GPU_MCP_STATE_URL and the database; nothing was done"}
}

// CancelOperationResult is cancel_operation's answer.
type CancelOperationResult struct {
	Outcome
	OperationID string `json:"operation_id"`
	Tool        string `json:"tool,omitempty" jsonschema_description:"the tool whose call the operation is"`
	// Answer is the operation's answer once the cancellation ended it.
	Answer OperationAnswer `json:"answer,omitempty"`
}

func cancelOperation(d *Deps) Tool {
	return guardedTool(d, "cancel_operation", "Cancel an operation",
		"Cancel a launch still under way (the operation_id of a pending launch_instance answer): the launch stops, and an instance the vendor already created for it is stopped and destroyed as far as the vendor allows; the answer says what remains and bills. Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves. A wait changes nothing and needs no cancelling. A client that merely stops waiting cancels nothing: the operation goes on.",
		Hints{Destructive: true, Idempotent: true, OpenWorld: true},
		func(ctx context.Context, in *CancelOperationArgs) (*prepared[CancelOperationResult], error) {
			if d.Ops == nil {
				return nil, invalidf("this gpu-mcp runs no operations, so operation %q is not known here", in.OperationID)
			}
			id := strings.TrimSpace(in.OperationID)
			op, err := d.Ops.o.Store.GetOperation(ctx, id)
			if errors.Is(err, state.ErrNotFound) {
				return nil, invalidf("no operation %q is known: operation ids come from a pending answer (status pending, operation_id)", id)
			}
			if err != nil {
				return nil, storeFailed("read operation "+id, err)
			}
			var rec opRecord
			_ = json.Unmarshal(op.Args, &rec)
			noop := func(msg string) (*prepared[CancelOperationResult], error) {
				return &prepared[CancelOperationResult]{noop: msg, noopOut: CancelOperationResult{OperationID: id, Tool: op.Tool}}, nil
			}
			switch {
			case op.Status != state.OperationPending:
				return noop(fmt.Sprintf("Operation %s (%s) already ended (%s); nothing was cancelled. An instance it left is yours: destroy_instance removes it.", id, op.Tool, op.Status))
			case rec.Cancel != "":
				return noop(fmt.Sprintf("Operation %s is being cancelled already (%s); follow it with get_operation operation_id=%s.", id, rec.Cancel, id))
			case op.Kind != string(opLaunch):
				until := ""
				if !rec.Deadline.IsZero() {
					until = " at " + rec.Deadline.UTC().Format(time.RFC3339)
				}
				return noop(fmt.Sprintf("Operation %s (%s) only waits and changes nothing at the vendor, so there is nothing to undo; it ends by itself%s. Stop following it, or cancel its task with tasks/cancel.", id, op.Tool, until))
			}
			plan := &Plan{Action: "cancel_launch", Provider: "gpu-mcp",
				Summary: fmt.Sprintf("Cancel the launch under way in operation %s.", id)}
			if rec.Plan != nil {
				plan.Provider, plan.OfferID, plan.GPUModel, plan.GPUCount, plan.Billing = rec.Plan.Provider, rec.Plan.OfferID, rec.Plan.GPUModel, rec.Plan.GPUCount, rec.Plan.Billing
				plan.Summary = fmt.Sprintf("Cancel the launch under way in operation %s: %s", id, rec.Plan.Summary)
			}
			plan.Effects = []string{
				"the launch stops: nothing more is bought, and an instance the vendor already created for it is stopped and destroyed as far as " + plan.Provider + " allows (what the vendor does not allow is reported and may bill), as with a launch that did not come up",
				"the user approved this launch; cancelling undoes it, and the machine it was to give is gone",
			}
			if rec.Plan != nil && rec.Plan.Billing != "" && rec.Plan.Billing != string(providers.BillingHourly) {
				plan.Effects = append(plan.Effects, "a prepaid period already charged for it is not refunded by gpu-mcp")
			}
			return &prepared[CancelOperationResult]{plan: plan, run: func(ctx context.Context) (CancelOperationResult, string, error) {
				start := time.Now()
				if _, err := d.Ops.cancel(ctx, id, "cancel_operation"); err != nil {
					return CancelOperationResult{}, "", storeFailed("record the cancellation of operation "+id, err)
				}
				out := CancelOperationResult{OperationID: id, Tool: op.Tool}
				after, res, err := d.follow(ctx, id, max(d.CallBudget()-time.Since(start), time.Second))
				if err != nil {
					return out, "", err
				}
				a := answerOf(res)
				if len(a.Structured) > 0 {
					_ = json.Unmarshal(a.Structured, &out.Answer)
				}
				if after.Status == state.OperationPending {
					out.Message = fmt.Sprintf("Cancelled; the cleanup goes on: get_operation operation_id=%s says what remains.", id)
					return out, out.Message + "\n" + a.Text, nil
				}
				out.Message = "Cancelled; the launch's answer says what was cleaned up and what still bills."
				return out, "Cancelled.\n" + a.Text, nil
			}}, nil
		})
}

// CancelOperationArgs names the operation to cancel.
type CancelOperationArgs struct {
	OperationArgs
	Confirm
}

// resume sees an adopted operation through: the answer its call would have given.
func (d *Deps) resume(ctx context.Context, lo *liveOp) *mcp.CallToolResult {
	lo.mu.Lock()
	rec := lo.rec
	lo.mu.Unlock()
	switch lo.kind {
	case opLaunch:
		return d.resumeLaunch(ctx, lo, rec)
	case opWait:
		if rec.Cancel != "" {
			return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: fmt.Sprintf("the wait of operation %s was cancelled (%s); nothing at the vendor was changed", lo.id, rec.Cancel)}, true)
		}
		var in WaitArgs
		if err := json.Unmarshal(rec.Arguments, &in); err != nil || in.validate() != nil {
			return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: fmt.Sprintf("operation %s: its wait cannot be read back from the state store; wait again with wait_instance", lo.id)}, true)
		}
		deadline := rec.Deadline
		if deadline.IsZero() {
			timeout, _ := parseWait("timeout", in.Timeout)
			deadline = lo.created.Add(timeout)
		}
		out, text, err := d.waitFor(ctx, &in, lo.created, deadline)
		return toolResult(out, text, err, false)
	case opSaveImage:
		return d.resumeSave(ctx, lo, rec)
	}
	return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: fmt.Sprintf("operation %s is of a kind (%q) this gpu-mcp does not know how to see through; check list_instances", lo.id, lo.kind)}, true)
}

// resumeLaunch follows the ledger of an adopted launch operation until the launch is seen
// through (fleet's reconciler does that), and answers as launch_instance would have.
func (d *Deps) resumeLaunch(ctx context.Context, lo *liveOp, rec opRecord) *mcp.CallToolResult {
	key := launchKey(lo.id, rec.Arguments)
	if rec.Cancel != "" {
		if _, err := d.Fleet.CancelLaunch(ctx, key); err != nil {
			d.Log.Error().Err(err).Str("launch", key).Msg("the cancellation of an adopted launch could not be recorded in its ledger")
		}
	}
	told := false
	for {
		prior, err := d.Fleet.Launched(context.WithoutCancel(ctx), key)
		switch {
		case err != nil:
			d.Log.Warn().Err(err).Str("operation", lo.id).Msg("reading the launch ledger for an adopted operation; trying again")
		case prior == nil:
			return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: "launch_instance: gpu-mcp stopped before this launch reached the vendor, so nothing was bought; launch again (with a new plan and approval)"}, true)
		case !prior.InFlight:
			return d.launchAnswer(ctx, rec.Plan, prior)
		case !told:
			lo.step(0, "gpu-mcp restarted: the launch is seen through from its ledger")
			told = true
		}
		if !d.Ops.pause(ctx) {
			return nil
		}
	}
}

// pause waits a poll interval; false when the operation's process stops (or lost it). A
// cancellation does not end the wait: the cancelled launch's cleanup is still to be seen.
func (o *Operations) pause(ctx context.Context) bool {
	t := time.NewTimer(o.o.Poll)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), fleet.ErrCancelled) {
				ctx = context.WithoutCancel(ctx)
				continue
			}
			return false
		}
	}
}

// launchAnswer is launch_instance's answer for a launch the ledger saw through.
func (d *Deps) launchAnswer(ctx context.Context, plan *Plan, prior *fleet.Prior) *mcp.CallToolResult {
	if prior.Outcome == nil {
		msg := prior.Error
		if msg == "" {
			msg = "the launch bought nothing"
		}
		return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: msg}, true)
	}
	out := launchResult(*prior.Outcome)
	if out.InstanceID != "" {
		// With its connection details, which the ledger does not keep.
		if p, err := d.resolve(out.InstanceID, "instance_id"); err == nil {
			if inst, err := p.GetInstance(context.WithoutCancel(ctx), out.InstanceID); err == nil {
				out.Instance = &inst
			}
		}
	}
	if out.Status == "" {
		out.Status = StatusDone
	}
	out.Plan, out.Demo = plan, d.Demo
	return toolResult(out, d.textPrefix()+launchText(&out), nil, true)
}

// resumeSave sees an adopted save_image with wait through: it waits for the image again.
func (d *Deps) resumeSave(ctx context.Context, lo *liveOp, rec opRecord) *mcp.CallToolResult {
	var in SaveImageArgs
	if err := json.Unmarshal(rec.Arguments, &in); err != nil {
		return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: fmt.Sprintf("operation %s: its save cannot be read back from the state store; check list_images kind=private", lo.id)}, true)
	}
	if !rec.Saved {
		return errorResult(&providers.Error{Kind: providers.KindUnknown, Provider: providers.Own, Message: fmt.Sprintf("save_image: gpu-mcp stopped before it knew whether the vendor took the save of %q from %s; check list_images kind=private and get_instance before saving again", in.ImageName, in.InstanceID)}, true)
	}
	p, err := d.resolve(in.InstanceID, "instance_id")
	if err != nil {
		return toolResult(nil, "", err, true)
	}
	out := SaveImageResult{Outcome: Outcome{Status: StatusDone, Plan: rec.Plan, Demo: d.Demo}, ImageID: rec.ImageID}
	text := fmt.Sprintf("%s: saving image %q.", in.InstanceID, in.ImageName)
	if rec.ImageID != "" {
		text += " Image: " + rec.ImageID + "."
	}
	if rec.Cancel != "" {
		return toolResult(out, d.textPrefix()+text+" Waiting for the image was cancelled ("+rec.Cancel+"); the save goes on at the vendor: check list_images kind=private.", nil, true)
	}
	out, text, err = d.saveWait(ctx, p, &in, in.InstanceID, rec.ImageID, rec.Deadline, out, text)
	return toolResult(out, d.textPrefix()+text, err, true)
}
