package datenfab

import (
	"fmt"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// rules follow NeoLink's instance-status page (power on from Shutdown, power off from Running,
// delete from Shutdown); a status this adapter does not recognise is let through with a
// warning, because Datenfab decides.
var rules = providers.StateRules{Provider: Name, Title: "Datenfab", Unsupported: capabilities.Unsupported,
	Busy: map[providers.State]string{providers.StateDeleting: "the instance is being deleted; nothing can be done to it"},
	Actions: map[providers.Action]providers.ActionRule{
		providers.ActionLaunch: {
			Warn: func(req providers.ActionRequest) []string {
				if req.Launch == nil || req.Launch.Billing == providers.BillingHourly || req.Launch.Billing == "" {
					return nil
				}
				return []string{"this cannot be undone: the prepaid amount is not refunded when the instance is stopped or deleted before its lease ends, as far as Datenfab documents"}
			},
		},
		providers.ActionStart: {
			Allowed:  []providers.State{providers.StateStopped},
			Need:     "datenfab powers on only a stopped (Shutdown) instance; wait until it is stopped",
			Warnings: []string{"the instance powers on and a GPU is allocated again; if none is free, the start fails"},
		},
		providers.ActionStop: {
			Allowed:  []providers.State{providers.StateRunning, providers.StateStarting, providers.StateError, providers.StatePending},
			Need:     "datenfab powers off only a running (or still creating or starting) instance; wait until it is running",
			Loss:     fmt.Sprintf("running processes get %d seconds to exit, then are killed; the disks are kept", gracePeriodSeconds),
			Warnings: []string{"per NeoLink's rules, the data of an instance powered off for 15 days is deleted"},
			Warn: func(req providers.ActionRequest) []string {
				var w []string
				if req.Instance.State == providers.StatePending {
					w = append(w, "the instance is still being created: powering it off abandons its creation; Datenfab does not document this and may refuse",
						"once it is stopped it can be deleted to end the billing")
				}
				if prepaid(req.Instance) {
					w = append(w, "Datenfab does not document whether a prepaid lease pauses while the instance is off; assume it keeps running")
				}
				return w
			},
		},
		providers.ActionSaveImage: {
			Allowed: []providers.State{providers.StateRunning},
			Need:    "datenfab saves an image from a running instance (while powering it off); start it first and wait until it is running",
			Check: func(req providers.ActionRequest) error {
				_, _, err := parseImageName(req.Op(), req.ImageName)
				return err
			},
			Loss:     fmt.Sprintf("saving the image powers the instance off: running processes get %d seconds to exit, then are killed; start it again afterwards if needed", gracePeriodSeconds),
			Warnings: []string{"the image reference returned is inferred (<registry>/<namespace>/<name>:<tag>); Datenfab cannot report when the image is ready"},
		},
		providers.ActionDestroy: {
			Allowed: []providers.State{providers.StateStopped, providers.StateError},
			Need:    "datenfab deletes only a stopped instance: stop it first with stop_instance and wait until it is stopped",
			Loss:    "the instance, its system disk and its data volume are deleted permanently; anything not saved elsewhere is lost",
			Warn: func(req providers.ActionRequest) []string {
				if !prepaid(req.Instance) {
					return nil
				}
				return []string{"the prepaid time left is not refunded as far as Datenfab documents"}
			},
		},
	},
}

func prepaid(in providers.Instance) bool {
	return in.Billing != "" && in.Billing != providers.BillingHourly
}
