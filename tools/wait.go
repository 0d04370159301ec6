package tools

import (
	"context"
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
		return 0, badArg(name, s, fmt.Sprintf(`a duration from %s to %s, e.g. "5m" or "90s"`, shortDuration(minWait), shortDuration(maxWait)))
	}
	return w, nil
}

// WaitArgs asks to wait for an instance to reach a state.
type WaitArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"instance id from list_instances"`
	Until      Until  `json:"until" jsonschema:"enum=running,enum=ssh_ready,enum=stopped,enum=image_saved" jsonschema_description:"running; ssh_ready (running and its SSH server answers); stopped; image_saved (the last save_image finished)"`
	ImageID    string `json:"image_id,omitempty" jsonschema:"maxLength=512" jsonschema_description:"for until=image_saved: the image_id save_image returned, if any (HuiXingYun and Datenfab instances do not report a save's progress)"`
	ImageName  string `json:"image_name,omitempty" jsonschema:"maxLength=64" jsonschema_description:"for until=image_saved when save_image returned no image_id: the image_name given to save_image"`
	Timeout    string `json:"timeout,omitempty" jsonschema:"maxLength=16" jsonschema_description:"how long to wait at most, e.g. \"5m\" (default 5m, 5s to 30m); the call then returns with reached=false"`
}

func (a *WaitArgs) validate() error {
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
	Reached bool `json:"reached" jsonschema_description:"whether the instance reached the state asked for"`
	// Status tells the ways of not reaching it apart.
	Status        fleet.WaitOutcome  `json:"status" jsonschema:"enum=reached,enum=timed_out,enum=unreachable,enum=cannot_be_confirmed" jsonschema_description:"reached; timed_out: not yet, wait again; unreachable: it will not get there (failed, gone, or nothing moves it there: see detail); cannot_be_confirmed: the vendor does not report this state"`
	Until         Until              `json:"until"`
	WaitedSeconds int                `json:"waited_seconds"`
	Detail        string             `json:"detail,omitempty" jsonschema_description:"why the wait ended without reaching the state, or what the SSH check saw"`
	Instance      providers.Instance `json:"instance" jsonschema_description:"as last seen, without its password (get_instance has it)"`
	Demo          bool               `json:"demo,omitempty"`
}

func waitInstance(d *Deps) Tool {
	return newTool("wait_instance", "Wait for an instance",
		"Wait until an instance is running, its SSH server answers, it is stopped, or its image is saved; for use after launch_instance (wait=false), start_instance, stop_instance or save_image. Sends progress notifications as the state changes; changes nothing. Returns when the state is reached, when it cannot be reached any more (e.g. the instance failed or is gone), or at the timeout.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *WaitArgs) (WaitResult, string, error) {
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
			timeout, _ := parseWait("timeout", in.Timeout)
			start := time.Now()
			w := fleet.Waiter{Provider: p, ID: in.InstanceID, Until: in.Until, ImageID: strings.TrimSpace(in.ImageID), ImageName: in.ImageName, Timeout: timeout,
				OnState: func(i providers.Instance) { reportProgress(ctx, 0, string(i.State)) }, FailWhenIdle: true}
			got, err := d.Fleet.Wait(ctx, w)
			if err != nil {
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
		})
}
