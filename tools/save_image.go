package tools

import (
	"context"
	"fmt"
	"regexp"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// SaveImageArgs names the instance and the image to save.
type SaveImageArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified instance id"`
	ImageName  string `json:"image_name" jsonschema:"minLength=1,maxLength=64,pattern=^[A-Za-z0-9][A-Za-z0-9._:-]*$" jsonschema_description:"name of the new image: letters, digits, dots, dashes, underscores, and name:tag where the provider tags images"`
	Confirm
}

var imageNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$`)

func (a *SaveImageArgs) validate() error {
	if !imageNameRE.MatchString(a.ImageName) {
		return badArg("image_name", a.ImageName, "1 to 64 letters, digits, dots, dashes, underscores or colons, starting with a letter or digit")
	}
	return nil
}

// SaveImageResult is save_image's answer.
type SaveImageResult struct {
	Outcome
	ImageID  string              `json:"image_id,omitempty" jsonschema_description:"when the vendor names it; see list_images kind=private"`
	Instance *providers.Instance `json:"instance,omitempty" jsonschema_description:"as in get_instance"`
}

func saveImage(d *Deps) Tool {
	return guardedTool(d, actionTool[providers.ActionSaveImage], "Save image",
		"Save an instance's disk as a private image, to launch from later or to keep data before destroying. On some providers this stops the instance (the plan says so). Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves.",
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
			return &prepared[SaveImageResult]{plan: plan, run: func(ctx context.Context) (SaveImageResult, string, error) {
				ref, err := p.SaveImage(ctx, inst.ID, in.ImageName)
				if err != nil {
					return SaveImageResult{}, "", err
				}
				r, text, err := d.afterAction(ctx, p, inst, fmt.Sprintf("%s: saving image %q.", inst.ID, in.ImageName))
				out := SaveImageResult{Outcome: r.Outcome, Instance: r.Instance}
				if ref != "" {
					out.ImageID = ref
					text += " Image: " + ref + "."
				}
				return out, text, err
			}}, nil
		})
}
