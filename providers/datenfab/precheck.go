package datenfab

import (
	"fmt"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Precheck implements providers.Provider. The state rules follow NeoLink's instance-status
// page (power on from Shutdown, power off from Running, delete from Shutdown); a status this
// adapter does not recognise is let through with a warning, because Datenfab decides.
func (p *Provider) Precheck(req providers.ActionRequest) ([]string, error) {
	in := req.Instance
	local := in.ID
	if _, l, err := providers.SplitID(in.ID); err == nil {
		local = l
	}
	op := fmt.Sprintf("%s %s", req.Action, local)
	refuse := func(need string) error {
		return errf(providers.KindConflict, op, need,
			"cannot %s instance %s while it is %s (datenfab status %q)", req.Action, local, in.State, in.RawState)
	}
	if in.State == providers.StateDeleting && req.Action != providers.ActionLaunch {
		return nil, refuse("the instance is being deleted; nothing can be done to it")
	}
	var warnings []string
	if in.State == providers.StateUnknown {
		warnings = append(warnings, fmt.Sprintf("gpu-mcp does not recognise datenfab status %q; Datenfab may refuse this action in that state", in.RawState))
	}
	prepaid := in.Billing != "" && in.Billing != providers.BillingHourly

	switch req.Action {
	case providers.ActionLaunch:
		return nil, nil
	case providers.ActionRestart:
		return nil, providers.Unsupported(Name, providers.ActionRestart, "Datenfab has no restart call; stop the instance, then start it")
	case providers.ActionRenew:
		return nil, providers.Unsupported(Name, providers.ActionRenew, "datenfab documents no renew call; extend a prepaid lease in the Datenfab console")

	case providers.ActionStart:
		switch in.State {
		case providers.StateStopped, providers.StateUnknown:
		default:
			return nil, refuse("datenfab powers on only a stopped (Shutdown) instance; wait until it is stopped")
		}
		warnings = append(warnings, "the instance powers on and a GPU is allocated again; if none is free, the start fails")
		if !prepaid {
			warnings = append(warnings, "hourly billing resumes from power-on")
		}
		return warnings, nil

	case providers.ActionStop:
		switch in.State {
		case providers.StateRunning, providers.StateStarting, providers.StateError, providers.StateUnknown:
		case providers.StatePending:
			warnings = append(warnings, "the instance is still being created: powering it off abandons its creation; Datenfab does not document this and may refuse",
				"once it is stopped it can be deleted to end the billing")
		default:
			return nil, refuse("datenfab powers off only a running (or still creating or starting) instance; wait until it is running")
		}
		warnings = append(warnings,
			fmt.Sprintf("running processes get %d seconds to exit, then are killed; the disks are kept", gracePeriodSeconds),
			"storage is still charged while powered off, and (per NeoLink's rules) the data of an instance powered off for 15 days is deleted")
		if prepaid {
			warnings = append(warnings, "Datenfab does not document whether a prepaid lease pauses while the instance is off; assume it keeps running")
		}
		return warnings, nil

	case providers.ActionSaveImage:
		if _, _, err := parseImageName(op, req.ImageName); err != nil {
			return nil, err
		}
		switch in.State {
		case providers.StateRunning, providers.StateUnknown:
		default:
			return nil, refuse("datenfab saves an image from a running instance (while powering it off); start it first and wait until it is running")
		}
		warnings = append(warnings,
			"saving the image powers the instance off: running processes get 10 seconds to exit, then are killed; start it again afterwards if needed",
			"the image reference returned is inferred (<registry>/<namespace>/<name>:<tag>); Datenfab cannot report when the image is ready",
			"images beyond 30 GB in total are charged for storage (per NeoLink's rules)")
		return warnings, nil

	case providers.ActionDestroy:
		switch in.State {
		case providers.StateStopped, providers.StateError, providers.StateUnknown:
		default:
			return nil, refuse("datenfab deletes only a stopped instance: stop it first with stop_instance and wait until it is stopped")
		}
		warnings = append(warnings, "the instance, its system disk and its data volume are deleted permanently; anything not saved elsewhere is lost")
		if prepaid {
			warnings = append(warnings, "the prepaid time left is not refunded as far as Datenfab documents")
		}
		return warnings, nil
	}
	return nil, errf(providers.KindInvalid, op, "", "unknown action %q", req.Action)
}
