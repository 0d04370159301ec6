package tools

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// SetAutoStopArgs sets, moves or clears an instance's auto-stop.
type SetAutoStopArgs struct {
	InstanceID    string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified instance id from list_instances; gpu-mcp need not have launched it"`
	AutoStopAfter string `json:"auto_stop_after" jsonschema:"maxLength=16" jsonschema_description:"stop (or destroy) the instance this long after the change is approved, e.g. \"2h\" (5s to 720h, and no more than the server's GPU_MCP_MAX_LEASE); \"\" clears the auto-stop"`
	Action        string `json:"action,omitempty" jsonschema:"enum=stop,enum=destroy" jsonschema_description:"what happens then: stop (default; the disk is kept) or destroy (the instance and all its data are deleted)"`
	Confirm
}

func (a *SetAutoStopArgs) validate() error {
	if _, err := parseAutoStop(a.AutoStopAfter); err != nil {
		return err
	}
	if a.AutoStopAfter == "" && a.Action != "" {
		return argInvalid("action", a.Action, `action applies only when auto_stop_after sets an auto-stop; "" clears it`,
			"leave action out to clear the auto-stop, or give auto_stop_after a duration")
	}
	return nil
}

// SetAutoStopResult is set_auto_stop's answer.
type SetAutoStopResult struct {
	Outcome
	AutoStop *fleet.AutoStop     `json:"auto_stop,omitempty" jsonschema_description:"now set (as in launch_instance); absent: cleared"`
	Instance *providers.Instance `json:"instance,omitempty" jsonschema_description:"as in get_instance"`
}

// The plan rounds how much longer or shorter an instance may bill, so that it is the same
// plan when the confirmation comes a little later.
const billingDeltaStep = 15 * time.Minute

func setAutoStop(d *Deps) Tool {
	return guardedTool(d, "set_auto_stop", "Set auto-stop",
		"Set, move or clear when an instance is stopped (or destroyed) automatically, on any instance, also one gpu-mcp did not launch. Kept in gpu-mcp's state store, it is carried out with or without a client connected: by the vendor's shutdown timer where it has one (set too), else by any gpu-mcp process or gpu-mcp reap that runs. Moving it later or clearing it lets the instance bill longer, so it is guarded: the first call returns the plan (how much longer or shorter it may bill, at what price) and a confirm_token; call again with it after the user approves.",
		Hints{Destructive: true, Idempotent: true, OpenWorld: true},
		func(ctx context.Context, in *SetAutoStopArgs) (*prepared[SetAutoStopResult], error) {
			p, inst, err := d.lookupInstance(ctx, in.InstanceID)
			if err != nil {
				return nil, err
			}
			cur, err := d.Fleet.Lease(ctx, inst.ID)
			if err != nil {
				return nil, err
			}
			var current *time.Time // the stop now due, by gpu-mcp's lease or the vendor's timer
			if cur != nil {
				current = &cur.DueAt
			} else if inst.StopsAt != nil {
				current = inst.StopsAt
			}
			after, _ := parseAutoStop(in.AutoStopAfter)
			action := state.LeaseAction(orDefault(in.Action, string(state.ActionStop)))
			plan, spend, noop, err := autoStopPlan(d, p, inst, current, after, action)
			if err != nil {
				return nil, err
			}
			if noop != "" {
				out := SetAutoStopResult{Instance: ptr(withoutSecrets(d.annotated(ctx, inst)))}
				return &prepared[SetAutoStopResult]{noop: noop, noopOut: out}, nil
			}
			return &prepared[SetAutoStopResult]{plan: plan, spend: spend, run: func(ctx context.Context) (SetAutoStopResult, string, error) {
				var out SetAutoStopResult
				var text string
				if after == 0 {
					note, err := d.Fleet.ClearLease(ctx, p, inst.ID)
					if err != nil {
						return out, "", err
					}
					text = inst.ID + ": auto-stop cleared; it runs until someone stops it."
					if note != "" {
						text += " " + note + "."
					}
					out.Message = text
				} else {
					at := time.Now().Add(after).Truncate(time.Second)
					as, err := d.Fleet.SetLease(ctx, p, inst.ID, at, action, "")
					if err != nil {
						return out, "", err
					}
					out.AutoStop = as
					text = fmt.Sprintf("%s: %s at %s by %s. %s", inst.ID, action, as.At.UTC().Format(time.RFC3339), as.By, as.Note)
				}
				if after, err := p.GetInstance(ctx, inst.ID); err == nil {
					out.Instance = ptr(withoutSecrets(d.annotated(ctx, after)))
				}
				return out, text, nil
			}}, nil
		})
}

// autoStopPlan describes a change of an instance's auto-stop: what it is now, what it
// becomes, and how much longer or shorter the instance may bill at its price; or, when there
// is nothing to do, why. The spending is what a later stop, or none, commits at its price: the
// hours it moves later, or 24 for a cleared one; nil when it bills no longer.
func autoStopPlan(d *Deps, p providers.Provider, inst providers.Instance, current *time.Time, after time.Duration, action state.LeaseAction) (*Plan, *spending, string, error) {
	ceiling := d.Fleet.MaxLease()
	gpu := ""
	if inst.GPUModel != "" {
		gpu = fmt.Sprintf(", %d x %s", inst.GPUCount, inst.GPUModel)
	}
	plan := &Plan{Action: "set_auto_stop", Provider: p.Name(), InstanceID: inst.ID, InstanceName: inst.Name, GPUModel: inst.GPUModel,
		GPUCount: inst.GPUCount, Billing: string(inst.Billing), PricePerHour: inst.PricePerHour}
	what := fmt.Sprintf("%s instance %s (%s%s, now %s)", p.Name(), inst.ID, orDash(inst.Name), gpu, inst.State)
	price := func(d time.Duration) string {
		if inst.PricePerHour == nil {
			return p.Name() + " reports no hourly price for it, so the cost is unknown here"
		}
		return fmt.Sprintf("about %.2f CNY at %.2f CNY per hour", *inst.PricePerHour*d.Hours(), *inst.PricePerHour)
	}
	longer := func(hours float64, why string) *spending {
		return &spending{kind: state.CommitLeaseExtend, what: "auto-stop change", provider: p.Name(), instanceID: inst.ID,
			price: inst.PricePerHour, hours: hours, hoursWhy: why}
	}
	if after == 0 {
		if current == nil {
			return nil, nil, inst.ID + " has no auto-stop; nothing was done.", nil
		}
		if ceiling > 0 {
			return nil, nil, "", limitError("this server keeps every instance on a lease of at most %s (GPU_MCP_MAX_LEASE), so an auto-stop can be moved but not cleared", fleet.ShortDuration(ceiling))
		}
		plan.Summary = "Clear the auto-stop of " + what + "."
		plan.Effects = []string{fmt.Sprintf("the instance is no longer stopped automatically at %s: it bills until someone stops it, with no end (%s)",
			timeCell(current), price(time.Hour)+" for every hour")}
		if _, ok := p.(providers.StopScheduler); ok {
			plan.Effects = append(plan.Effects, p.Name()+"'s shutdown timer is cancelled too")
		}
		return plan, longer(noEndHours, "24 h, as nothing stops it any more"), "", nil
	}
	if ceiling > 0 && after > ceiling {
		return nil, nil, "", limitError("an auto-stop %s from now is beyond the longest lease allowed, %s (GPU_MCP_MAX_LEASE)", fleet.ShortDuration(after), fleet.ShortDuration(ceiling))
	}
	verb := "Stop"
	if action == state.ActionDestroy {
		if ok, why := p.Capabilities().Supports(providers.ActionDestroy); !ok {
			return nil, nil, "", providers.Unsupported(p.Name(), providers.ActionDestroy, why)
		}
		verb = "Destroy"
	}
	plan.Summary = fmt.Sprintf("%s %s automatically %s after this is approved.", verb, what, fleet.ShortDuration(after))
	var spend *spending
	if current == nil {
		plan.Effects = append(plan.Effects, fmt.Sprintf("it has no auto-stop now; from then on it bills at most %s more: %s", fleet.ShortDuration(after), price(after)))
	} else {
		delta := time.Until(current.Add(-after)) // > 0: the new stop is earlier
		rounded := time.Duration(math.Round(float64(delta)/float64(billingDeltaStep))) * billingDeltaStep
		switch {
		case rounded < 0:
			plan.Effects = append(plan.Effects, fmt.Sprintf("its auto-stop moves later than the current one (%s): it may bill about %s longer, %s more", timeCell(current), fleet.ShortDuration(-rounded), price(-rounded)))
			spend = longer((-rounded).Hours(), "the "+fleet.ShortDuration(-rounded)+" its auto-stop moves later")
		case rounded > 0:
			plan.Effects = append(plan.Effects, fmt.Sprintf("its auto-stop moves earlier than the current one (%s): it bills about %s less, %s saved; running work is interrupted then", timeCell(current), fleet.ShortDuration(rounded), price(rounded)))
		default:
			plan.Effects = append(plan.Effects, fmt.Sprintf("its auto-stop moves to about when the current one is due (%s)", timeCell(current)))
		}
	}
	if action == state.ActionDestroy {
		plan.Effects = append(plan.Effects, "then the instance and all data on its disks are deleted permanently; this cannot be undone")
	} else {
		plan.Effects = append(plan.Effects, "then running processes are killed and unsaved work in memory is lost; the disk is kept")
	}
	if _, ok := p.(providers.StopScheduler); ok {
		plan.Effects = append(plan.Effects, p.Name()+"'s shutdown timer is set too, and gpu-mcp checks afterwards that it ran (or stops it itself where the timer refuses)")
	} else {
		plan.Effects = append(plan.Effects, p.Name()+" has no shutdown timer: gpu-mcp carries it out whenever any gpu-mcp process runs, or `gpu-mcp reap` from cron; with neither, at the next start of gpu-mcp")
	}
	return plan, spend, "", nil
}
