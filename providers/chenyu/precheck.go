package chenyu

import (
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// rules follow Chenyu's pages: startup from stopped, shutdown and save_image while running, a
// shutdown timer while running. Restart is taken to need a running instance. Destroy has no
// documented precondition; refusing a running or changing instance is this adapter's safe
// rule. A status gpu-mcp does not know is let through with a warning, since Chenyu decides.
var rules = providers.StateRules{Provider: Name, Title: "Chenyu", Unsupported: capabilities.Unsupported,
	Actions: map[providers.Action]providers.ActionRule{
		providers.ActionLaunch: {},
		providers.ActionStart: {
			Allowed:  []providers.State{providers.StateStopped, providers.StateError},
			Need:     "chenyu starts only a stopped instance (status 22); wait until it is stopped",
			Warnings: []string{"the instance boots with its GPU model and count; if no such GPU is free, Chenyu refuses the start"},
		},
		providers.ActionStop: {
			Allowed:  []providers.State{providers.StateRunning},
			Need:     "chenyu shuts down only a running instance (status 2); wait until it is running",
			Check:    notSaving("an image of this instance is being saved; Chenyu shuts it down by itself when the save is done"),
			Loss:     "running processes are killed and unsaved memory state is lost; the disk and its data are kept",
			Warnings: []string{"the GPU is released: starting again later needs a free GPU of the same model"},
		},
		providers.ActionRestart: {
			Allowed: []providers.State{providers.StateRunning},
			Need:    "chenyu restarts a running instance (status 2); start a stopped one instead",
			Check:   notSaving("an image of this instance is being saved; wait until image_save_status is saved"),
			Loss:    "running processes are killed and the instance reboots; the disk and its data are kept",
		},
		providers.ActionSaveImage: {
			Allowed: []providers.State{providers.StateRunning},
			Need:    "chenyu saves an image only from a running instance (status 2): start it first and wait until it is running",
			Check: func(req providers.ActionRequest) error {
				if strings.TrimSpace(req.ImageName) == "" {
					return errf(providers.KindInvalid, req.Op(), "give the image a name", "no image name given")
				}
				return notSaving("an image of this instance is already being saved; wait until image_save_status is saved or failed")(req)
			},
			Loss: "saving the image shuts the instance down when the save is done: running processes are killed; start it again afterwards if needed",
			Warnings: []string{
				"the image name must be unique among your Chenyu private images",
				"progress shows as image_save_status on get_instance (saving, saved or failed)",
			},
		},
		providers.ActionDestroy: {
			// A stuck boot cannot be shut down (shutdown needs status 2): destroy is the only
			// way to end its billing.
			Allowed: []providers.State{providers.StateStopped, providers.StateError, providers.StatePending, providers.StateStarting},
			Need:    "wait until it is stopped: gpu-mcp destroys a stopped instance, or one stuck creating or starting, on Chenyu",
			NeedIn: map[providers.State]string{providers.StateRunning: "stop it first with stop_instance: Chenyu documents no rule for destroying, " +
				"and gpu-mcp does not delete a running instance so that no work in progress is lost unnoticed"},
			Check: notSaving("an image of this instance is being saved; wait until image_save_status is saved or failed"),
			Loss:  "the instance and all data on its disk are deleted permanently; this cannot be undone",
			Warn: func(req providers.ActionRequest) []string {
				if s := req.Instance.State; s != providers.StatePending && s != providers.StateStarting {
					return nil
				}
				return []string{"the instance has not come up yet: destroying it aborts the boot; Chenyu documents no rule for this and may refuse"}
			},
		},
	},
}

// notSaving refuses while an image of the instance is being saved, with remedy.
func notSaving(remedy string) func(providers.ActionRequest) error {
	return func(req providers.ActionRequest) error {
		if req.Instance.ImageSaveStatus == "saving" {
			return providers.Refusal(Name, req, remedy)
		}
		return nil
	}
}
