package chenyu

import (
	"fmt"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Precheck implements providers.Provider. The rules follow Chenyu's pages: startup from
// stopped, shutdown and save_image while running, a shutdown timer while running. Restart is
// taken to need a running instance. Destroy has no documented precondition; refusing a running
// or changing instance is this adapter's safe rule. A status gpu-mcp does not know is let
// through with a warning, since Chenyu decides.
func (p *Provider) Precheck(req providers.ActionRequest) ([]string, error) {
	in := req.Instance
	local := in.ID
	if _, l, err := providers.SplitID(in.ID); err == nil {
		local = l
	}
	op := fmt.Sprintf("%s %s", req.Action, local)
	refuse := func(need string) error {
		return errf(providers.KindConflict, op, need,
			"cannot %s instance %s while it is %s (chenyu status %s)", req.Action, local, in.State, orDash(in.RawState))
	}
	var warnings []string
	if in.State == providers.StateUnknown && req.Action != providers.ActionLaunch {
		warnings = append(warnings, fmt.Sprintf("gpu-mcp does not know chenyu status %s; Chenyu may refuse this action in that state", orDash(in.RawState)))
	}
	saving := in.ImageSaveStatus == "saving"

	switch req.Action {
	case providers.ActionLaunch:
		return []string{"Chenyu bills by the hour from creation until the instance is stopped or destroyed"}, nil

	case providers.ActionRenew:
		return nil, providers.Unsupported(Name, providers.ActionRenew, renewWhy)

	case providers.ActionStart:
		switch in.State {
		case providers.StateStopped, providers.StateError, providers.StateUnknown:
		default:
			return nil, refuse("chenyu starts only a stopped instance (status 22); wait until it is stopped")
		}
		return append(warnings,
			"the instance boots with its GPU model and count; if no such GPU is free, Chenyu refuses the start",
			"hourly billing resumes once it is running"), nil

	case providers.ActionStop:
		if saving {
			return nil, refuse("an image of this instance is being saved; Chenyu shuts it down by itself when the save is done")
		}
		switch in.State {
		case providers.StateRunning, providers.StateUnknown:
		default:
			return nil, refuse("chenyu shuts down only a running instance (status 2); wait until it is running")
		}
		return append(warnings,
			"running processes are killed and unsaved memory state is lost; the disk and its data are kept",
			"the GPU is released: starting again later needs a free GPU of the same model"), nil

	case providers.ActionRestart:
		if saving {
			return nil, refuse("an image of this instance is being saved; wait until image_save_status is saved")
		}
		switch in.State {
		case providers.StateRunning, providers.StateUnknown:
		default:
			return nil, refuse("chenyu restarts a running instance (status 2); start a stopped one instead")
		}
		return append(warnings, "running processes are killed and the instance reboots; the disk and its data are kept"), nil

	case providers.ActionSaveImage:
		if strings.TrimSpace(req.ImageName) == "" {
			return nil, errf(providers.KindInvalid, op, "give the image a name", "no image name given")
		}
		if saving {
			return nil, refuse("an image of this instance is already being saved; wait until image_save_status is saved or failed")
		}
		switch in.State {
		case providers.StateRunning, providers.StateUnknown:
		default:
			return nil, refuse("chenyu saves an image only from a running instance (status 2): start it first and wait until it is running")
		}
		return append(warnings,
			"saving the image shuts the instance down when the save is done: running processes are killed; start it again afterwards if needed",
			"the image name must be unique among your Chenyu private images",
			"progress shows as image_save_status on get_instance (saving, saved or failed)"), nil

	case providers.ActionDestroy:
		switch in.State {
		case providers.StateStopped, providers.StateError, providers.StateUnknown:
		case providers.StatePending, providers.StateStarting:
			// A stuck boot cannot be shut down (shutdown needs status 2): destroy is the only
			// way to end its billing.
			warnings = append(warnings, "the instance has not come up yet: destroying it aborts the boot; Chenyu documents no rule for this and may refuse")
		case providers.StateRunning:
			return nil, refuse("stop it first with stop_instance: Chenyu documents no rule for destroying, and gpu-mcp does not delete a running instance so that no work in progress is lost unnoticed")
		default:
			return nil, refuse("wait until it is stopped: gpu-mcp destroys a stopped instance, or one stuck creating or starting, on Chenyu")
		}
		if saving {
			return nil, refuse("an image of this instance is being saved; wait until image_save_status is saved or failed")
		}
		return append(warnings,
			"the instance and all data on its disk are deleted permanently; this cannot be undone",
			"private images saved from it are kept"), nil
	}
	return nil, errf(providers.KindInvalid, op, "use launch, start, stop, restart, save_image, renew or destroy", "unknown action %q", req.Action)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
