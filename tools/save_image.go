package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
)

// SaveImageArgs names the instance and the image to save.
type SaveImageArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified instance id"`
	ImageName  string `json:"image_name" jsonschema:"minLength=1,maxLength=64,pattern=^[A-Za-z0-9][A-Za-z0-9._:-]*$" jsonschema_description:"name of the new image: letters, digits, dots, dashes, underscores, and name:tag where the provider tags images"`
	Wait       bool   `json:"wait,omitempty" jsonschema_description:"wait until the image is saved (default false: return once the vendor took the save, and wait with wait_instance until=image_saved)"`
	// WaitTimeout bounds the wait; past the call budget the call answers pending.
	WaitTimeout string `json:"wait_timeout,omitempty" jsonschema:"maxLength=16" jsonschema_description:"with wait: how long to wait for the image at most, e.g. \"20m\" (default 5m, 5s to 30m)"`
	Confirm
}

var imageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

func (a *SaveImageArgs) validate() error {
	if !imageNameRE.MatchString(a.ImageName) {
		return badArg("image_name", a.ImageName, "1 to 64 letters, digits, dots, dashes, underscores or colons, starting with a letter or digit")
	}
	if a.WaitTimeout != "" && !a.Wait {
		return argInvalid("wait_timeout", a.WaitTimeout, "wait_timeout applies only when wait is true", "leave wait_timeout out, or set wait to true")
	}
	_, err := parseWait("wait_timeout", a.WaitTimeout)
	return err
}

// SaveImageResult is save_image's answer.
type SaveImageResult struct {
	Outcome
	Pending
	ImageID  string              `json:"image_id,omitempty" jsonschema_description:"when the vendor names it; see list_images kind=private"`
	Instance *providers.Instance `json:"instance,omitempty" jsonschema_description:"as in get_instance"`
	// Saved and SaveDetail are the outcome of the wait, with wait=true.
	Saved      bool   `json:"saved,omitempty" jsonschema_description:"with wait: the image is saved"`
	SaveDetail string `json:"save_detail,omitempty" jsonschema_description:"with wait: why the wait ended without the image saved"`
}

func saveImage(d *Deps) Tool {
	t := guardedTool(d, actionTool[providers.ActionSaveImage], "Save image",
		"Save an instance's disk as a private image, to launch from later or to keep data before destroying. On some providers this stops the instance (the plan says so). Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves. With wait it waits until the image is saved; past the call budget it answers status pending with an operation_id that get_operation follows.",
		Hints{Destructive: true, OpenWorld: true},
		func(ctx context.Context, in *SaveImageArgs) (*prepared[SaveImageResult], error) {
			p, inst, err := d.lookupInstance(ctx, in.InstanceID)
			if err != nil {
				return nil, err
			}
			// Whether saving stops the instance is the vendor's rule to say (Precheck).
			effect := fmt.Sprintf("a private image %q is saved from the instance's disk", in.ImageName)
			if keeps := p.Capabilities().KeepsBilling[providers.ActionSaveImage]; keeps != "" {
				effect += "; still billed: " + keeps
			}
			effects := []string{effect}
			plan, err := d.instancePlan(p, inst, providers.ActionRequest{Action: providers.ActionSaveImage, Instance: inst, ImageName: in.ImageName},
				"Save image "+in.ImageName+" of", effects)
			if err != nil {
				return nil, err
			}
			timeout, _ := parseWait("wait_timeout", in.WaitTimeout)
			if in.Wait {
				plan.Effects = append(plan.Effects, fmt.Sprintf("waits up to %s for the image to be saved; past %s (GPU_MCP_CALL_BUDGET) the agent is handed a handle (operation_id) and the wait goes on in the background", fleet.ShortDuration(timeout), fleet.ShortDuration(d.CallBudget())))
			}
			return &prepared[SaveImageResult]{plan: plan, run: func(ctx context.Context) (SaveImageResult, string, error) {
				if err := noteOp(ctx, func(r *opRecord) { r.Plan, r.Deadline = plan, time.Now().Add(timeout) }); err != nil {
					return SaveImageResult{}, "", storeFailed("record the save's operation", err)
				}
				// Not cut short by a cancellation or the process's end once sent: whether the
				// vendor took the save would be unknown (the buy of a launch is the same).
				ref, err := p.SaveImage(context.WithoutCancel(ctx), inst.ID, in.ImageName)
				if err != nil {
					return SaveImageResult{}, "", err
				}
				if err := noteOp(ctx, func(r *opRecord) { r.Saved, r.ImageID = true, ref }); err != nil {
					d.Log.Error().Err(err).Str("instance", inst.ID).Msg("the save's operation could not record that the vendor took the save")
				}
				r, text, err := d.afterAction(ctx, p, inst, fmt.Sprintf("%s: saving image %q.", inst.ID, in.ImageName))
				out := SaveImageResult{Outcome: r.Outcome, Instance: r.Instance}
				if ref != "" {
					out.ImageID = ref
					text += " Image: " + ref + "."
				}
				if err != nil || !in.Wait {
					return out, text, err
				}
				return d.saveWait(ctx, p, in, inst.ID, ref, time.Now().Add(timeout), out, text)
			}}, nil
		})
	return d.long(t, opSaveImage, func(json.RawMessage) any { return SaveImageResult{Outcome: Outcome{Demo: d.Demo}} }, nil)
}

// saveWait waits until the image of a save is saved, and adds what became of it to out.
func (d *Deps) saveWait(ctx context.Context, p providers.Provider, in *SaveImageArgs, instanceID, imageID string, deadline time.Time, out SaveImageResult, text string) (SaveImageResult, string, error) {
	got, err := d.Fleet.Wait(ctx, fleet.Waiter{Provider: p, ID: instanceID, Until: fleet.UntilImageSaved, ImageID: imageID, ImageName: in.ImageName,
		Timeout: max(time.Until(deadline), 0), OnState: func(i providers.Instance) { reportProgress(ctx, 0, string(i.State)) }})
	if err != nil {
		if errors.Is(context.Cause(ctx), fleet.ErrCancelled) {
			return out, text + " Waiting for the image was cancelled at the user's request; the save goes on at the vendor: check list_images kind=private.", nil
		}
		return SaveImageResult{}, "", err
	}
	if got.Instance.ID != "" {
		out.Instance = ptr(withoutSecrets(got.Instance))
	}
	out.Saved, out.SaveDetail = got.Reached, got.Detail
	if got.Reached {
		return out, text + " The image is saved.", nil
	}
	return out, text + " The image is not saved yet: " + got.Detail + ".", nil
}
