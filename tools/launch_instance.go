package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// LaunchArgs asks for a new instance.
type LaunchArgs struct {
	OfferID        string `json:"offer_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"offer id from list_gpu_offers"`
	ImageID        string `json:"image_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"image id from list_images, of the same provider as the offer"`
	GPUCount       int    `json:"gpu_count,omitempty" jsonschema:"minimum=0,maximum=64" jsonschema_description:"GPUs in the instance; one of the offer's gpu_counts (default: the smallest)"`
	Billing        string `json:"billing,omitempty" jsonschema:"enum=hourly,enum=daily,enum=weekly,enum=monthly" jsonschema_description:"billing mode; one of the offer's (default: hourly when offered)"`
	Periods        int    `json:"periods,omitempty" jsonschema:"minimum=0,maximum=36" jsonschema_description:"for daily, weekly or monthly billing: how many periods to prepay (default 1)"`
	Name           string `json:"name,omitempty" jsonschema:"maxLength=64" jsonschema_description:"display name for the instance"`
	IdempotencyKey string `json:"idempotency_key,omitempty" jsonschema:"maxLength=128" jsonschema_description:"optional key; a repeated launch with the same key and arguments returns the first result instead of buying again"`
	Wait           *bool  `json:"wait,omitempty" jsonschema_description:"wait until the instance runs and its SSH server answers, with progress notifications (default true); false returns once the vendor took the order"`
	WaitTimeout    string `json:"wait_timeout,omitempty" jsonschema:"maxLength=16" jsonschema_description:"how long to wait for a usable instance, e.g. \"10m\" (default 5m, 5s to 30m); an instance that is not running by then is cleaned up"`
	FallbackOffers int    `json:"fallback_offers,omitempty" jsonschema:"minimum=0,maximum=5" jsonschema_description:"when the offer is sold out or its instance does not come up: how many other offers of the same provider, GPU model and count, at no higher price, to try (default 0)"`
	AutoStopAfter  string `json:"auto_stop_after,omitempty" jsonschema:"maxLength=16" jsonschema_description:"stop the instance this long after launch, e.g. \"2h\" (5s to 720h); by the vendor's shutdown timer where it has one, else by gpu-mcp while its process runs"`
	Confirm
}

var nameRE = regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$`)

func (a *LaunchArgs) validate() error {
	if a.GPUCount < 0 || a.Periods < 0 {
		return invalidf("gpu_count and periods must be positive")
	}
	if a.Billing != "" && !providers.BillingMode(a.Billing).Valid() {
		return invalidf("billing %q is not accepted; use hourly, daily, weekly or monthly", a.Billing)
	}
	if a.Name != "" && !nameRE.MatchString(a.Name) {
		return invalidf("name %q is not accepted: 1 to 64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit", a.Name)
	}
	if a.Billing == string(providers.BillingHourly) && a.Periods > 0 {
		return invalidf("periods applies to daily, weekly or monthly billing only; hourly billing runs until the instance is destroyed")
	}
	if _, err := parseWait("wait_timeout", a.WaitTimeout); err != nil {
		return err
	}
	if a.WaitTimeout != "" && !a.waits() {
		return invalidf("wait_timeout applies only when wait is true")
	}
	if a.FallbackOffers < 0 || a.FallbackOffers > 5 {
		return invalidf("fallback_offers %d is not accepted; use 0 to 5", a.FallbackOffers)
	}
	if a.FallbackOffers > 0 && !a.waits() {
		return invalidf("fallback_offers needs wait=true: whether an instance came up is only known by waiting for it")
	}
	_, err := parseAutoStop(a.AutoStopAfter)
	return err
}

func (a *LaunchArgs) waits() bool { return a.Wait == nil || *a.Wait }

// LaunchResult is launch_instance's answer.
type LaunchResult struct {
	Outcome
	InstanceID string              `json:"instance_id,omitempty" jsonschema_description:"the new instance, when the vendor already shows it"`
	OrderID    string              `json:"order_id,omitempty" jsonschema_description:"the vendor's order number, when it gave one"`
	Ready      bool                `json:"ready" jsonschema_description:"true when the instance runs and its SSH server answered"`
	SSHCommand string              `json:"ssh_command,omitempty" jsonschema_description:"command to log in; the password, where the vendor gives one, is instance.connection.ssh_password (a secret)"`
	Instance   *providers.Instance `json:"instance,omitempty"`
	AutoStop   *AutoStop           `json:"auto_stop,omitempty"`
	Attempts   []LaunchAttempt     `json:"attempts,omitempty" jsonschema_description:"each offer tried, what became of it, and what was cleaned up"`
	Billing    string              `json:"billing_now,omitempty" jsonschema_description:"what this call left billing"`
}

func launchInstance(d *Deps) Tool {
	return guardedTool(d, actionTool[providers.ActionLaunch], "Launch instance",
		"Rent a new GPU instance from an offer and an image. SPENDS MONEY: billing starts when the vendor creates it. Called without confirm_token it only returns the plan (price, GPUs, billing) and a token; show the plan to the user and call again with the token only after they approve. Then it waits (wait, wait_timeout) until the instance runs and SSH answers, with progress notifications, and returns the ssh command; an instance that does not come up is stopped and destroyed where the vendor allows, and the result says what still exists and bills. Optional: fallback_offers, auto_stop_after.",
		Hints{Destructive: true, OpenWorld: true},
		func(ctx context.Context, in *LaunchArgs) (*prepared[LaunchResult], error) {
			argsKey := ""
			if in.IdempotencyKey != "" {
				b, _ := json.Marshal(in)
				argsKey = argsDigest(b)
				if e := d.launches.lookup(in.IdempotencyKey); e != nil {
					return repeatedLaunch(in.IdempotencyKey, argsKey, e)
				}
			}
			p, err := d.resolve(in.OfferID, "offer_id")
			if err != nil {
				return nil, err
			}
			ip, err := d.resolve(in.ImageID, "image_id")
			if err != nil {
				return nil, err
			}
			if ip.Name() != p.Name() {
				return nil, invalidf("image_id %s belongs to %s but offer_id %s to %s; list images of the offer's provider with list_images offer_id=%s",
					in.ImageID, ip.Name(), in.OfferID, p.Name(), in.OfferID)
			}
			if ok, why := p.Capabilities().Supports(providers.ActionLaunch); !ok {
				return nil, providers.Unsupported(p.Name(), providers.ActionLaunch, why)
			}
			// The live offer, never the cache: price and capacity must be current for a purchase.
			offers, err := p.ListOffers(ctx)
			if err != nil {
				return nil, err
			}
			i := slices.IndexFunc(offers, func(o providers.Offer) bool { return o.ID == strings.TrimSpace(in.OfferID) })
			if i < 0 {
				return nil, &providers.Error{Kind: providers.KindNotFound, Provider: p.Name(), Op: "launch",
					Message: fmt.Sprintf("offer %s does not exist (any more)", in.OfferID), Remedy: "pick a current offer with list_gpu_offers"}
			}
			offer := offers[i]
			spec, plan, err := launchPlan(offer, in)
			if err != nil {
				return nil, err
			}
			ws, err := p.Precheck(providers.ActionRequest{Action: providers.ActionLaunch, Launch: &spec})
			if err != nil {
				return nil, err
			}
			plan.Effects = append(plan.Effects, ws...)
			plan.Effects = append(plan.Effects, launchExtras(p, plan, in)...)
			return &prepared[LaunchResult]{plan: plan, spend: &newSpend{periods: spec.Periods}, run: func(ctx context.Context) (out LaunchResult, text string, err error) {
				if in.IdempotencyKey != "" {
					if !d.launches.begin(in.IdempotencyKey, argsKey) {
						return LaunchResult{}, "", &providers.Error{Kind: providers.KindConflict, Provider: "gpu-mcp", Op: "launch",
							Message: fmt.Sprintf("a launch with idempotency_key %q is already in progress or done; nothing was bought again", in.IdempotencyKey),
							Remedy:  "check list_instances"}
					}
					defer func() {
						if err != nil {
							// Nothing bought frees the key; an unknown outcome keeps it, without a
							// result, so that a repeat is refused rather than answered as done.
							d.launches.finish(in.IdempotencyKey, nil, "", providers.KindOf(err) != providers.KindUnknown)
							return
						}
						d.launches.finish(in.IdempotencyKey, &out, text, false)
					}()
				}
				out, text = d.launchAndWait(ctx, p, offer, spec, plan, in)
				if len(out.Attempts) == 1 && out.Attempts[0].err != nil {
					// Nothing was bought, or the outcome is unknown: an error, as before waiting.
					return LaunchResult{}, "", out.Attempts[0].err
				}
				return out, text, nil
			}}, nil
		})
}

// repeatedLaunch answers a launch whose idempotency key was seen before, without buying.
func repeatedLaunch(key, argsKey string, e *ledgerEntry) (*prepared[LaunchResult], error) {
	if e.args != argsKey {
		return nil, invalidf("idempotency_key %q was already used with other arguments; use a new key for a different launch", key)
	}
	if e.inFlight || e.result == nil {
		return nil, &providers.Error{Kind: providers.KindConflict, Provider: "gpu-mcp", Op: "launch",
			Message: fmt.Sprintf("the launch with idempotency_key %q is still in progress or its outcome is unknown; nothing was bought again", key),
			Remedy:  "check list_instances"}
	}
	out := *e.result
	out.Message = fmt.Sprintf("a launch with idempotency_key %q already ran in this server process; this is its result and nothing was bought again", key)
	return &prepared[LaunchResult]{noop: out.Message + ". " + e.text, noopOut: out}, nil
}

// launchPlan checks the request against the offer and describes it.
func launchPlan(o providers.Offer, in *LaunchArgs) (providers.LaunchSpec, *Plan, error) {
	count := in.GPUCount
	if count == 0 {
		count = gpusFor(o, 1)
	}
	if !slices.Contains(o.GPUCounts, count) {
		return providers.LaunchSpec{}, nil, invalidf("gpu_count %d is not offered by %s; accepted: %s", count, o.ID, intsText(o.GPUCounts))
	}
	billing := providers.BillingMode(in.Billing)
	if billing == "" {
		billing = providers.BillingHourly
		if !hasBilling(o.Billing, billing) && len(o.Billing) > 0 {
			billing = o.Billing[0]
		}
	}
	if !hasBilling(o.Billing, billing) {
		modes := make([]string, len(o.Billing))
		for i, m := range o.Billing {
			modes[i] = string(m)
		}
		return providers.LaunchSpec{}, nil, invalidf("offer %s cannot be billed %s; accepted: %s (list_gpu_offers billing=%s finds offers that can)",
			o.ID, billing, strings.Join(modes, ", "), billing)
	}
	if !o.Available || (o.AvailableGPUs != nil && *o.AvailableGPUs < count) {
		return providers.LaunchSpec{}, nil, &providers.Error{Kind: providers.KindConflict, Provider: o.Provider, Op: "launch",
			Message: fmt.Sprintf("offer %s has no capacity for %d GPUs now", o.ID, count), Remedy: "choose another offer with list_gpu_offers available_only=true"}
	}
	periods := in.Periods
	if billing != providers.BillingHourly && periods == 0 {
		periods = 1
	}
	spec := providers.LaunchSpec{OfferID: o.ID, ImageID: strings.TrimSpace(in.ImageID), GPUCount: count, Billing: billing, Periods: periods, Name: in.Name}
	plan := &Plan{Action: "launch", Provider: o.Provider, OfferID: o.ID, ImageID: in.ImageID, GPUModel: o.GPUModel,
		GPUCount: count, Billing: string(billing)}
	if h, ok := o.HourlyPrice(count); ok && billing == providers.BillingHourly {
		plan.PricePerHour = &h
	}
	where := ""
	if o.Region != "" {
		where = " in " + o.Region
	}
	plan.Summary = fmt.Sprintf("Rent a new %s instance with %d x %s%s from offer %s, image %s, billed %s.",
		o.Provider, count, o.GPUModel, where, o.ID, in.ImageID, billing)
	if billing == providers.BillingHourly {
		if plan.PricePerHour != nil {
			plan.Effects = append(plan.Effects, fmt.Sprintf("billing starts when the instance is created: %.2f CNY per hour (%.2f CNY per day) until it is stopped or destroyed", *plan.PricePerHour, *plan.PricePerHour*24))
		} else {
			plan.Effects = append(plan.Effects, "billing starts when the instance is created, by the hour until it is stopped or destroyed; "+o.Provider+" publishes no price in its API, so the cost is unknown here")
		}
	} else {
		if p, ok := o.PeriodPrice(billing); ok {
			cost := p * float64(count) * float64(periods)
			plan.PeriodCost = &cost
			plan.Effects = append(plan.Effects, fmt.Sprintf("prepays %d %s period(s) now: %.2f CNY, not refundable by gpu-mcp", periods, billing, cost))
		} else {
			plan.Effects = append(plan.Effects, fmt.Sprintf("prepays %d %s period(s) now; the vendor publishes no price for it, so the cost is unknown here", periods, billing))
		}
	}
	return spec, plan, nil
}

func intsText(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}
