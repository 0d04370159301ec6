package tools

import (
	"context"
	"fmt"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
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
			// What it charges is said once, by renewalCost: the price found, or why it is unknown.
			cost, how := renewalCost(ctx, p, inst, in.Periods)
			effect := fmt.Sprintf("the lease is extended by %d %s period(s), %s", in.Periods, orDash(string(inst.Billing)), how)
			if inst.ExpiresAt != nil {
				effect += "; the lease currently ends " + timeCell(inst.ExpiresAt)
			}
			plan, err := d.instancePlan(p, inst, providers.ActionRequest{Action: providers.ActionRenew, Instance: inst, Periods: in.Periods},
				fmt.Sprintf("Renew for %d period(s)", in.Periods), []string{effect})
			if err != nil {
				return nil, err
			}
			plan.PeriodCost = cost
			spend := &spending{kind: state.CommitRenew, what: "renewal", provider: p.Name(), instanceID: inst.ID, upfront: true, cost: cost}
			return &prepared[InstanceActionResult]{plan: plan, spend: spend, run: func(ctx context.Context) (InstanceActionResult, string, error) {
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

// renewalCost is what renewing inst for periods of its billing period charges, and how that
// was found. A renewal is charged at the vendor's price of the instance's period; which offer
// an instance came from is not kept, so the price is the highest that the vendor lists for
// that period among the offers of its GPU model (in its region, when known), times its GPUs
// and the periods. nil when the vendor publishes no such price: an unknown charge, which
// counts as over any limit on it.
func renewalCost(ctx context.Context, p providers.Provider, inst providers.Instance, periods int) (*float64, string) {
	unknown := func(why string) (*float64, string) {
		return nil, "charged now at a price unknown here (" + why + "): check the vendor's price list"
	}
	if !p.Capabilities().PublishesPrices {
		return unknown(p.Name() + " publishes no prices in its API")
	}
	if inst.Billing == "" || inst.Billing == providers.BillingHourly {
		return unknown(p.Name() + " does not say the instance's billing period")
	}
	offers, err := p.ListOffers(ctx)
	if err != nil {
		return unknown("the offers, which carry the prices, could not be read (" + errorText(err) + ")")
	}
	var price float64
	found := false
	for _, o := range offers {
		if o.GPUModel != inst.GPUModel || (inst.Region != "" && o.Region != inst.Region) {
			continue
		}
		if c, ok := o.PeriodPrice(inst.Billing); ok && (!found || c > price) {
			price, found = c, true
		}
	}
	if !found {
		return unknown(fmt.Sprintf("%s lists no %s price for %s", p.Name(), inst.Billing, orDash(inst.GPUModel)))
	}
	gpus := max(inst.GPUCount, 1)
	cost := price * float64(gpus) * float64(periods)
	return &cost, fmt.Sprintf("charged now: %.2f CNY (%d %s period(s) x %d GPU(s) x %.2f CNY, the highest %s price %s lists for %s)",
		cost, periods, inst.Billing, gpus, price, inst.Billing, p.Name(), inst.GPUModel)
}
