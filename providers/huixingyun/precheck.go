package huixingyun

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// rules are HuiXingYun's: only "Stopped" is documented, so a state this adapter does not know
// is left to the vendor, except for a destroy, which cannot be undone.
var rules = providers.StateRules{Provider: Name, Title: "HuiXingYun",
	Busy: map[providers.State]string{providers.StateDeleting: "the instance is being destroyed"},
	Actions: map[providers.Action]providers.ActionRule{
		providers.ActionLaunch: {
			Check: func(req providers.ActionRequest) error {
				if req.Launch == nil {
					return nil
				}
				_, err := checkBilling("launch "+req.Launch.OfferID, *req.Launch)
				return err
			},
			Warn: func(req providers.ActionRequest) []string {
				if req.Launch == nil || req.Launch.Billing == providers.BillingHourly || req.Launch.Billing == "" {
					return nil
				}
				return []string{"this cannot be undone: HuiXingYun destroys only hourly-billed instances, so a " + string(req.Launch.Billing) +
					" instance can never be destroyed through its API; it bills until its lease ends, and stopping it refunds nothing"}
			},
		},
		providers.ActionStart: {
			Allowed: []providers.State{providers.StateStopped},
		},
		providers.ActionStop: {
			Allowed: []providers.State{providers.StateRunning, providers.StateError, providers.StatePending, providers.StateStarting},
			Loss:    "running processes are killed and unsaved data in memory is lost; the disks are kept",
			Warn:    stopWarnings,
		},
		providers.ActionRestart: {
			Allowed: []providers.State{providers.StateRunning},
			Loss:    "running processes are killed, unsaved data in memory is lost and the machine reboots; the disks are kept",
		},
		providers.ActionSaveImage: {
			Allowed: []providers.State{providers.StateRunning, providers.StateStopped},
			Check: func(req providers.ActionRequest) error {
				if strings.TrimSpace(req.ImageName) == "" {
					return &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: req.Op(),
						Message: "an image name is required", Remedy: "pass image_name"}
				}
				return nil
			},
			Warn: func(req providers.ActionRequest) []string {
				where := "its zone"
				if req.Instance.Region != "" {
					where = "zone " + req.Instance.Region
				}
				return []string{"the image is saved in " + where + " and appears among your own images when it is done",
					"HuiXingYun does not document whether saving interrupts the instance: save unsaved work first"}
			},
		},
		providers.ActionRenew: {Check: checkRenew},
		providers.ActionDestroy: {
			Allowed: []providers.State{providers.StateStopped}, UnknownRefused: true,
			Need:  "HuiXingYun destroys only hourly-billed instances that are stopped: stop it first and wait until it is stopped",
			Check: hourlyOnly,
			Loss:  "the instance and its system and data disks are deleted for good; save an image first to keep anything",
		},
	},
}

func stopWarnings(req providers.ActionRequest) []string {
	in := req.Instance
	var w []string
	if in.State == providers.StatePending || in.State == providers.StateStarting {
		w = append(w, "the instance has not come up yet: stopping aborts its boot; HuiXingYun does not document stopping an instance in this state and may refuse")
		if in.Billing == providers.BillingHourly {
			w = append(w, "once it is stopped, it can be destroyed to end the hourly billing")
		}
	}
	if in.Billing == providers.BillingDaily || in.Billing == providers.BillingMonthly {
		w = append(w, "stopping does not end or refund a prepaid "+string(in.Billing)+" lease")
	}
	return w
}

// renewPeriods are the pay_period values /gpu/instances/renew accepts per billing mode.
var renewPeriods = map[providers.BillingMode][]int{
	providers.BillingDaily:   {1, 3, 7},
	providers.BillingMonthly: {1, 3, 12},
}

func renewBy(req providers.ActionRequest) int { return max(req.Periods, 1) }

func checkRenew(req providers.ActionRequest) error {
	in := req.Instance
	allowed, ok := renewPeriods[in.Billing]
	if !ok {
		how := string(in.Billing)
		if how == "" {
			how = "in a way this server does not recognize"
		}
		return &providers.Error{Kind: providers.KindConflict, Provider: Name, Op: req.Op(),
			Message: fmt.Sprintf("HuiXingYun renews only daily-billed (1, 3 or 7 days) and monthly-billed (1, 3 or 12 months) instances; this one is billed %s", how),
			Remedy:  "hourly instances need no renewal: they bill while they exist"}
	}
	if n := renewBy(req); !slices.Contains(allowed, n) {
		return &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: req.Op(),
			Message: fmt.Sprintf("a %s instance can be renewed by %s periods, not %d", in.Billing, intList(allowed), n),
			Remedy:  "pass periods as one of " + intList(allowed)}
	}
	return nil
}

func hourlyOnly(req providers.ActionRequest) error {
	if b := req.Instance.Billing; b != providers.BillingHourly {
		how := string(b)
		if how == "" {
			how = "not recognized as hourly"
		}
		return &providers.Error{Kind: providers.KindConflict, Provider: Name, Op: req.Op(),
			Message: fmt.Sprintf("HuiXingYun destroys only hourly-billed instances that are stopped; this one is billed %s", how),
			Remedy:  "a prepaid instance ends when its lease expires; it cannot be destroyed through the API"}
	}
	return nil
}
