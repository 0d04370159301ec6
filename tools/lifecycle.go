package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// The four instance actions that take only an instance id share their shape; each has its own
// description, hints, no-op rule and effects.

// InstanceActionArgs names the instance to act on.
type InstanceActionArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified instance id from list_instances"`
	Confirm
}

// InstanceActionResult is the answer of start, stop, restart and destroy.
type InstanceActionResult struct {
	Outcome
	Instance *providers.Instance `json:"instance,omitempty" jsonschema_description:"afterwards (as in get_instance)"`
}

type instanceAction struct {
	title, description string
	action             providers.Action
	hints              Hints
	noop               func(providers.Instance) string // non-empty: already done
	// effects are what the tool says beside the vendor's rule (the billing that starts or
	// stops); what the action interrupts or deletes is the vendor's to say (Precheck).
	effects     func(providers.Instance, providers.Capabilities) []string
	verb        string
	spends      bool // billing resumes: the spending limits apply
	endsBilling bool // the instance no longer bills by the hour: its spending holds end
	call        func(ctx context.Context, p providers.Provider, id string) error
}

var instanceActions = []instanceAction{
	{
		title: "Start instance", action: providers.ActionStart, verb: "Start", spends: true,
		description: "Start a stopped instance. Billing resumes. Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves.",
		hints:       Hints{Idempotent: true, OpenWorld: true},
		noop: func(in providers.Instance) string {
			if in.State == providers.StateRunning || in.State == providers.StateStarting {
				return fmt.Sprintf("%s is already %s; nothing was done.", in.ID, in.State)
			}
			return ""
		},
		effects: func(in providers.Instance, _ providers.Capabilities) []string {
			switch {
			case prepaid(in):
				return []string{"it runs on its prepaid " + string(in.Billing) + " lease"}
			case in.PricePerHour != nil:
				return []string{fmt.Sprintf("billing resumes once it runs: %.2f CNY/h", *in.PricePerHour)}
			}
			return []string{"billing resumes once it runs, at a price " + in.Provider + " does not report"}
		},
		call: func(ctx context.Context, p providers.Provider, id string) error { return p.Start(ctx, id) },
	},
	{
		title: "Stop instance", action: providers.ActionStop, verb: "Stop", endsBilling: true,
		description: "Stop (power off) an instance; its disk is kept. Running processes are killed. Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves.",
		hints:       Hints{Destructive: true, Idempotent: true, OpenWorld: true},
		noop: func(in providers.Instance) string {
			if in.State == providers.StateStopped || in.State == providers.StateStopping {
				return fmt.Sprintf("%s is already %s; nothing was done.", in.ID, in.State)
			}
			return ""
		},
		effects: func(in providers.Instance, c providers.Capabilities) []string {
			return []string{billingEnds(in, c, providers.ActionStop)}
		},
		call: func(ctx context.Context, p providers.Provider, id string) error { return p.Stop(ctx, id) },
	},
	{
		title: "Restart instance", action: providers.ActionRestart, verb: "Restart",
		description: "Restart (reboot) a running instance. Running processes are killed. Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves.",
		hints:       Hints{Destructive: true, OpenWorld: true},
		noop:        func(providers.Instance) string { return "" },
		effects:     func(providers.Instance, providers.Capabilities) []string { return nil },
		call:        func(ctx context.Context, p providers.Provider, id string) error { return p.Restart(ctx, id) },
	},
	{
		title: "Destroy instance", action: providers.ActionDestroy, verb: "Destroy", endsBilling: true,
		description: "Delete an instance and ALL data on its disks, permanently. Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves. Save an image first to keep the disk.",
		hints:       Hints{Destructive: true, Idempotent: true, OpenWorld: true},
		noop:        func(providers.Instance) string { return "" },
		effects: func(in providers.Instance, c providers.Capabilities) []string {
			return []string{billingEnds(in, c, providers.ActionDestroy)}
		},
		call: func(ctx context.Context, p providers.Provider, id string) error { return p.Destroy(ctx, id) },
	},
}

func (a instanceAction) build(d *Deps) Tool {
	return guardedTool(d, actionTool[a.action], a.title, a.description, a.hints,
		func(ctx context.Context, in *InstanceActionArgs) (*prepared[InstanceActionResult], error) {
			p, inst, err := d.lookupInstance(ctx, in.InstanceID)
			if err != nil {
				return nil, err
			}
			if msg := a.noop(inst); msg != "" {
				return &prepared[InstanceActionResult]{noop: msg, noopOut: InstanceActionResult{Instance: ptr(withoutSecrets(inst))}}, nil
			}
			plan, err := d.instancePlan(p, inst, providers.ActionRequest{Action: a.action, Instance: inst}, a.verb, a.effects(inst, p.Capabilities()))
			if err != nil {
				return nil, err
			}
			var spend *spending
			if a.spends {
				if spend, err = d.startSpending(ctx, p, inst); err != nil {
					return nil, err
				}
			}
			return &prepared[InstanceActionResult]{plan: plan, spend: spend, run: func(ctx context.Context) (InstanceActionResult, string, error) {
				if err := a.call(ctx, p, inst.ID); err != nil {
					return InstanceActionResult{}, "", err
				}
				if a.endsBilling {
					d.Fleet.EndHoldsOf(inst.ID)
				}
				return d.afterAction(ctx, p, inst, fmt.Sprintf("%s: %s requested.", inst.ID, a.action))
			}}, nil
		})
}

// startSpending is what starting inst adds to the spending: its hourly price while it runs,
// committed until its auto-stop (gpu-mcp's lease, else the vendor's timer; 24 h without one).
// A prepaid instance was paid for when it was bought: starting it commits nothing more.
func (d *Deps) startSpending(ctx context.Context, p providers.Provider, inst providers.Instance) (*spending, error) {
	s := &spending{kind: state.CommitStart, what: "start", provider: p.Name(), instanceID: inst.ID, bills: true, price: inst.PricePerHour}
	if inst.Billing != "" && inst.Billing != providers.BillingHourly {
		return s, nil
	}
	stop := inst.StopsAt
	lease, err := d.Fleet.Lease(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	if lease != nil {
		stop = &lease.DueAt
	}
	s.hours, s.hoursWhy = hoursUntil(stop, time.Now())
	return s, nil
}

// lookupInstance resolves an instance id and reads the instance's current state.
func (d *Deps) lookupInstance(ctx context.Context, id string) (providers.Provider, providers.Instance, error) {
	p, err := d.resolve(id, "instance_id")
	if err != nil {
		return nil, providers.Instance{}, err
	}
	inst, err := p.GetInstance(ctx, id)
	if err != nil {
		return nil, providers.Instance{}, err
	}
	return p, inst, nil
}

// instancePlan checks that the provider can do the action in the instance's current state
// and describes it.
func (d *Deps) instancePlan(p providers.Provider, inst providers.Instance, req providers.ActionRequest, verb string, effects []string) (*Plan, error) {
	if ok, why := p.Capabilities().Supports(req.Action); !ok {
		return nil, providers.Unsupported(p.Name(), req.Action, why)
	}
	warnings, err := p.Precheck(req)
	if err != nil {
		return nil, err
	}
	gpu := ""
	if inst.GPUModel != "" {
		gpu = fmt.Sprintf(", %d x %s", inst.GPUCount, inst.GPUModel)
	}
	plan := &Plan{Action: string(req.Action), Provider: p.Name(), InstanceID: inst.ID, InstanceName: inst.Name,
		GPUModel: inst.GPUModel, GPUCount: inst.GPUCount, Billing: string(inst.Billing), PricePerHour: inst.PricePerHour,
		Summary: fmt.Sprintf("%s %s instance %s (%s%s, now %s).", verb, p.Name(), inst.ID, orDash(inst.Name), gpu, inst.State),
		Effects: append(effects, warnings...)}
	return plan, nil
}

// afterAction reports the instance as the vendor shows it after an action.
func (d *Deps) afterAction(ctx context.Context, p providers.Provider, before providers.Instance, done string) (InstanceActionResult, string, error) {
	after, err := p.GetInstance(ctx, before.ID)
	if err != nil {
		if providers.KindOf(err) == providers.KindNotFound {
			return InstanceActionResult{Outcome: Outcome{Message: done + " The instance no longer exists."}}, done + " The instance no longer exists.", nil
		}
		msg := fmt.Sprintf("%s Its state could not be read back (%s); check get_instance.", done, errorText(err))
		return InstanceActionResult{Outcome: Outcome{Message: msg}, Instance: ptr(withoutSecrets(before))}, msg, nil
	}
	return InstanceActionResult{Instance: ptr(withoutSecrets(after))}, done + " Now: " + string(after.State) + ".", nil
}

func ptr[T any](v T) *T { return &v }

func prepaid(in providers.Instance) bool {
	return in.Billing != "" && in.Billing != providers.BillingHourly
}

// billingEnds is the plan's sentence on the billing a stop or a destroy ends, and what still
// bills afterwards, as the vendor documents it (Capabilities.KeepsBilling).
func billingEnds(in providers.Instance, c providers.Capabilities, a providers.Action) string {
	var s string
	idle := in.State == providers.StateStopped || in.State == providers.StateStopping
	switch {
	case idle && a == providers.ActionDestroy:
		s = "ends all billing of the instance, stopped or not"
	case prepaid(in):
		s = "ends no billing by the hour: the instance is prepaid (" + string(in.Billing) + ")"
	case in.PricePerHour != nil:
		s = fmt.Sprintf("stops %.2f CNY/h of billing", *in.PricePerHour)
	default:
		s = "stops its hourly billing, at a price " + in.Provider + " does not report"
	}
	if keeps := c.KeepsBilling[a]; keeps != "" {
		s += "; still billed: " + keeps
	}
	return s
}
