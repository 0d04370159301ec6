package tools

import (
	"context"
	"fmt"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// RenewArgs extends a prepaid lease.
type RenewArgs struct {
	InstanceID string `json:"instance_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"provider-qualified instance id of a prepaid (daily, weekly or monthly) instance"`
	Periods    int    `json:"periods" jsonschema:"minimum=1,maximum=36" jsonschema_description:"how many billing periods of the instance's current mode to add"`
	Confirm
}

func renewInstance(d *Deps) Tool {
	return guardedTool(d, actionTool[providers.ActionRenew], "Renew instance",
		"Extend a prepaid instance's lease by some billing periods. SPENDS MONEY. Not every provider can (see list_providers). Guarded: the first call returns the plan and a confirm_token; call again with it after the user approves.",
		Hints{Destructive: true, OpenWorld: true},
		func(ctx context.Context, in *RenewArgs) (*prepared[InstanceActionResult], error) {
			p, inst, err := d.lookupInstance(ctx, in.InstanceID)
			if err != nil {
				return nil, err
			}
			// No vendor that can renew publishes a renewal price (HuiXingYun has no prices at all).
			effect := fmt.Sprintf("the lease is extended by %d %s period(s), charged now at a price %s does not publish", in.Periods, orDash(string(inst.Billing)), p.Name())
			if inst.ExpiresAt != nil {
				effect += "; the lease currently ends " + timeCell(inst.ExpiresAt)
			}
			plan, err := d.instancePlan(p, inst, providers.ActionRequest{Action: providers.ActionRenew, Instance: inst, Periods: in.Periods},
				fmt.Sprintf("Renew for %d period(s)", in.Periods), []string{effect})
			if err != nil {
				return nil, err
			}
			return &prepared[InstanceActionResult]{plan: plan, run: func(ctx context.Context) (InstanceActionResult, string, error) {
				if err := p.Renew(ctx, inst.ID, in.Periods); err != nil {
					return InstanceActionResult{}, "", err
				}
				r, text, err := d.afterAction(ctx, p, inst, fmt.Sprintf("%s: renewed for %d period(s).", inst.ID, in.Periods))
				if err == nil && r.Instance != nil && r.Instance.ExpiresAt != nil {
					text += " Expires " + timeCell(r.Instance.ExpiresAt) + "."
				}
				return r, text, err
			}}, nil
		})
}
