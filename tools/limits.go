package tools

import (
	"context"
	"fmt"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Limits are the operator's spending limits, checked before any vendor is asked to spend.
// A nil or zero field is no limit.
type Limits struct {
	MaxPricePerHour *float64 // CNY per hour of one new instance
	MaxGPUs         int      // GPUs in one new instance
	MaxHourlySpend  *float64 // CNY per hour of all running instances plus the new one
}

func (l Limits) any() bool {
	return l.MaxPricePerHour != nil || l.MaxGPUs > 0 || l.MaxHourlySpend != nil
}

// limitError is a refusal by a spending limit: it names the limit and the figures.
func limitError(format string, args ...any) error {
	return &providers.Error{Kind: providers.KindRejected, Provider: "gpu-mcp", Op: "spending limit",
		Message: fmt.Sprintf(format, args...) + "; nothing was done"}
}

// effectiveHourly is what a plan costs per hour: the hourly price, or for a prepaid plan its
// up-front cost spread over the periods bought.
func effectiveHourly(p *Plan, periods int) (float64, bool) {
	if p.PricePerHour != nil {
		return *p.PricePerHour, true
	}
	if p.PeriodCost != nil && periods > 0 {
		if h := providers.BillingMode(p.Billing).Hours(); h > 0 {
			return *p.PeriodCost / (h * float64(periods)), true
		}
	}
	return 0, false
}

// checkNewSpend applies the limits to a plan that adds a billing instance (launch, start).
// exclude is the instance being started, which must not count twice.
func (d *Deps) checkNewSpend(ctx context.Context, p *Plan, periods int, exclude string) error {
	l := d.Limits
	if !l.any() {
		return nil
	}
	if l.MaxGPUs > 0 && p.Action == "launch" && p.GPUCount > l.MaxGPUs {
		return limitError("%d GPUs is over the limit of %d GPUs per instance (GPU_MCP_MAX_GPUS)", p.GPUCount, l.MaxGPUs)
	}
	price, known := effectiveHourly(p, periods)
	if l.MaxPricePerHour != nil && p.Action == "launch" {
		if !known {
			return limitError("the price of this offer is unknown (%s publishes none), and an unknown price counts as over the limit of %.2f CNY/hour (GPU_MCP_MAX_PRICE_PER_HOUR)", p.Provider, *l.MaxPricePerHour)
		}
		if price > *l.MaxPricePerHour {
			return limitError("%.2f CNY/hour is over the limit of %.2f CNY/hour per instance (GPU_MCP_MAX_PRICE_PER_HOUR)", price, *l.MaxPricePerHour)
		}
	}
	if l.MaxHourlySpend == nil {
		return nil
	}
	if !known {
		return limitError("the hourly price of this %s is unknown (%s publishes none), so the running total cannot be kept under %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)", p.Action, p.Provider, *l.MaxHourlySpend)
	}
	running, unknown, err := d.runningSpend(ctx, exclude)
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return limitError("running instances with an unknown hourly price (%s) make the running total unknown, so it cannot be kept under %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)", strings.Join(unknown, ", "), *l.MaxHourlySpend)
	}
	if running+price > *l.MaxHourlySpend {
		return limitError("running instances cost %.2f CNY/hour; with this %s (%.2f) the total would be %.2f, over the limit of %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)",
			running, p.Action, price, running+price, *l.MaxHourlySpend)
	}
	return nil
}

// runningSpend sums the hourly prices of running instances on every provider. A provider that
// cannot be asked makes the total unknowable, so it is an error.
func (d *Deps) runningSpend(ctx context.Context, exclude string) (float64, []string, error) {
	all, errs := fanOut(ctx, d, d.Providers.All(), func(ctx context.Context, p providers.Provider) ([]providers.Instance, error) {
		return p.ListInstances(ctx)
	})
	if len(errs) > 0 {
		return 0, nil, limitError("the running total cannot be checked against GPU_MCP_MAX_HOURLY_SPEND because %s could not be asked: %s", errs[0].Provider, errs[0].Error)
	}
	var sum float64
	var unknown []string
	for _, in := range all {
		if in.ID == exclude || (in.State != providers.StateRunning && in.State != providers.StateStarting && in.State != providers.StateRestarting && in.State != providers.StatePending) {
			continue
		}
		if in.PricePerHour == nil {
			unknown = append(unknown, in.ID)
			continue
		}
		sum += *in.PricePerHour
	}
	return sum, unknown, nil
}
