package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Waiting bounds: a call that waits never outlives maxWait, whatever the agent asks.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 30 * time.Minute
	minWait     = 5 * time.Second
)

// parseWait reads a wait timeout argument ("" means the default).
func parseWait(name, s string) (time.Duration, error) {
	if s == "" {
		return defaultWait, nil
	}
	w, err := time.ParseDuration(s)
	if err != nil || w < minWait || w > maxWait {
		return 0, badArg(name, s, fmt.Sprintf(`a duration from %s to %s, e.g. "5m" or "90s"`, fleet.ShortDuration(minWait), fleet.ShortDuration(maxWait)))
	}
	return w, nil
}

// WaitArgs asks to wait for an instance to reach a state.
type WaitArgs struct {
	InstanceID string `json:"instance_id,omitempty" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"instance id from list_instances (required unless operation_id is given)"`
	Until      Until  `json:"until,omitempty" jsonschema:"enum=running,enum=ssh_ready,enum=stopped,enum=image_saved" jsonschema_description:"running; ssh_ready (running and its SSH server answers); stopped; image_saved (the last save_image finished); required unless operation_id is given"`
	ImageID    string `json:"image_id,omitempty" jsonschema:"maxLength=512" jsonschema_description:"for until=image_saved: the image_id save_image returned, if any (HuiXingYun and Datenfab instances do not report a save's progress)"`
	ImageName  string `json:"image_name,omitempty" jsonschema:"maxLength=64" jsonschema_description:"for until=image_saved when save_image returned no image_id: the image_name given to save_image"`
	Timeout    string `json:"timeout,omitempty" jsonschema:"maxLength=16" jsonschema_description:"how long to wait at most, e.g. \"5m\" (default 5m, 5s to 30m); the call then returns with reached=false"`
	// OperationID follows a wait that outlived the call budget.
	OperationID string `json:"operation_id,omitempty" jsonschema:"maxLength=64" jsonschema_description:"the operation_id of a pending wait_instance answer, given alone: waits on for it (up to the call budget again)"`
}

func (a *WaitArgs) validate() error {
	if a.OperationID != "" {
		if a.InstanceID != "" || a.Until != "" || a.ImageID != "" || a.ImageName != "" || a.Timeout != "" {
			return argInvalid("operation_id", a.OperationID, "operation_id follows a wait that is under way, and is given alone",
				"leave out instance_id, until, image_id, image_name and timeout")
		}
		return nil
	}
	if strings.TrimSpace(a.InstanceID) == "" {
		return argInvalid("instance_id", a.InstanceID, "instance_id is required (or operation_id, to follow a pending wait)",
			"pass the instance id from list_instances, or the operation_id of a pending answer")
	}
	switch a.Until {
	case UntilRunning, UntilSSHReady, UntilStopped, UntilImageSaved:
	case "":
		e := argInvalid("until", "", "until is required", "use running, ssh_ready, stopped or image_saved")
		e.Accepted = "running, ssh_ready, stopped or image_saved"
		return e
	default:
		return badArg("until", string(a.Until), "running, ssh_ready, stopped or image_saved")
	}
	if (a.ImageID != "" || a.ImageName != "") && a.Until != UntilImageSaved {
		field, value := "image_id", a.ImageID
		if value == "" {
			field, value = "image_name", a.ImageName
		}
		return argInvalid(field, value, "image_id and image_name apply to until=image_saved only", "leave them out, or wait until=image_saved")
	}
	_, err := parseWait("timeout", a.Timeout)
	return err
}

// WaitResult is wait_instance's answer.
type WaitResult struct {
	Reached bool `json:"reached"`
	// Status tells the ways of not reaching it apart.
	Status fleet.WaitOutcome `json:"status" jsonschema:"enum=reached,enum=timed_out,enum=unreachable,enum=cannot_be_confirmed,enum=pending" jsonschema_description:"reached; timed_out: not yet, wait again; unreachable: it will not get there (failed, gone, or nothing moves it there: see detail); cannot_be_confirmed: the vendor does not report this state; pending: the wait goes on past the call budget, follow operation_id"`
	Pending
	Until         Until              `json:"until"`
	WaitedSeconds int                `json:"waited_seconds"`
	Detail        string             `json:"detail,omitempty" jsonschema_description:"why the wait ended without reaching the state, or what the SSH check saw"`
	Instance      providers.Instance `json:"instance" jsonschema_description:"as last seen, without its password (get_instance has it)"`
	Demo          bool               `json:"demo,omitempty"`
}

func waitInstance(d *Deps) Tool {
	t := newTool("wait_instance", "Wait for an instance",
		"Wait until an instance is running, its SSH server answers, it is stopped, or its image is saved (after launch_instance wait=false, start_instance, stop_instance or save_image), with progress notifications; changes nothing. Returns when the state is reached, when it cannot be any more (e.g. the instance failed or is gone), or at the timeout; past the call budget it answers status pending with an operation_id, which wait_instance operation_id=... (or get_operation) follows.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *WaitArgs) (WaitResult, string, error) {
			if in.OperationID != "" {
				return d.followWait(ctx, in.OperationID)
			}
			timeout, _ := parseWait("timeout", in.Timeout)
			start := time.Now()
			deadline := start.Add(timeout)
			if err := noteOp(ctx, func(r *opRecord) { r.Deadline = deadline }); err != nil {
				return WaitResult{}, "", storeFailed("record the wait's operation", err)
			}
			return d.waitFor(ctx, in, start, deadline)
		})
	return d.long(t, opWait, func(raw json.RawMessage) any {
		var in WaitArgs
		_ = json.Unmarshal(raw, &in)
		return WaitResult{Until: in.Until, Instance: providers.Instance{ID: in.InstanceID}, Demo: d.Demo}
	}, func(raw json.RawMessage) bool {
		var in WaitArgs
		return json.Unmarshal(raw, &in) == nil && in.OperationID != ""
	})
}

// waitFor waits as in says, from start until deadline: the wait of wait_instance, also when
// another process sees it through after a restart.
func (d *Deps) waitFor(ctx context.Context, in *WaitArgs, start, deadline time.Time) (WaitResult, string, error) {
	p, err := d.resolve(in.InstanceID, "instance_id")
	if err != nil {
		return WaitResult{}, "", err
	}
	if in.ImageID != "" {
		ip, err := d.resolve(in.ImageID, "image_id")
		if err != nil {
			return WaitResult{}, "", err
		}
		if ip.Name() != p.Name() {
			return WaitResult{}, "", argInvalid("image_id", in.ImageID, fmt.Sprintf("image_id %s belongs to %s, the instance to %s", in.ImageID, ip.Name(), p.Name()),
				"pass the image_id that save_image returned for this instance")
		}
	}
	w := fleet.Waiter{Provider: p, ID: in.InstanceID, Until: in.Until, ImageID: strings.TrimSpace(in.ImageID), ImageName: in.ImageName, Timeout: max(time.Until(deadline), 0),
		OnState: func(i providers.Instance) { reportProgress(ctx, 0, string(i.State)) }, FailWhenIdle: true}
	got, err := d.Fleet.Wait(ctx, w)
	if err != nil {
		if errors.Is(context.Cause(ctx), fleet.ErrCancelled) {
			return WaitResult{}, "", fmt.Errorf("the wait for %s was cancelled at the user's request; nothing at the vendor was changed", in.InstanceID)
		}
		return WaitResult{}, "", err
	}
	inst, reached, detail := withoutSecrets(d.annotated(ctx, got.Instance)), got.Reached, got.Detail
	out := WaitResult{Reached: reached, Status: got.Outcome, Until: in.Until, WaitedSeconds: int(time.Since(start).Round(time.Second) / time.Second),
		Detail: detail, Instance: inst, Demo: d.Demo}
	var b strings.Builder
	b.WriteString(d.textPrefix())
	state := strings.ReplaceAll(string(in.Until), "_", " ")
	switch got.Outcome {
	case fleet.WaitReached:
		fmt.Fprintf(&b, "%s is %s after %ds.", inst.ID, state, out.WaitedSeconds)
	case fleet.WaitUnconfirmable:
		fmt.Fprintf(&b, "%s: %s %s.", inst.ID, state, detail)
	default:
		fmt.Fprintf(&b, "%s did not reach %s after %ds: %s.", inst.ID, state, out.WaitedSeconds, detail)
	}
	b.WriteString("\n" + instanceText(inst))
	return out, b.String(), nil
}

// followWait is wait_instance operation_id: the answer of a wait operation, as get_operation
// gives it.
func (d *Deps) followWait(ctx context.Context, id string) (WaitResult, string, error) {
	op, res, err := d.follow(ctx, id, d.CallBudget())
	if err != nil {
		return WaitResult{}, "", err
	}
	if op.Kind != string(opWait) {
		return WaitResult{}, "", argInvalid("operation_id", id, fmt.Sprintf("operation %s is a %s, not a wait", id, op.Tool), "follow it with get_operation operation_id="+id)
	}
	var out WaitResult
	a := answerOf(res)
	if a.IsError {
		// The stored error result as it is (its kind, remedy, retryable), as get_operation gives it.
		return WaitResult{}, "", &inputRequired{res: res}
	}
	if err := json.Unmarshal(a.Structured, &out); err != nil {
		return WaitResult{}, "", fmt.Errorf("operation %s: its answer cannot be read: %v", id, err)
	}
	return out, a.Text, nil
}
