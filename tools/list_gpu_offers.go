package tools

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// ListOffersArgs filters and sorts offers.
type ListOffersArgs struct {
	Provider        string   `json:"provider,omitempty" jsonschema:"maxLength=64" jsonschema_description:"only this provider (see list_providers)"`
	GPU             string   `json:"gpu,omitempty" jsonschema:"maxLength=100" jsonschema_description:"GPU model substring, case-insensitive, spaces and dashes ignored (e.g. 4090, a100, h800)"`
	MinGPUs         int      `json:"min_gpus,omitempty" jsonschema:"minimum=0,maximum=1024" jsonschema_description:"at least this many GPUs in one instance"`
	MinVRAMGB       int      `json:"min_vram_gb,omitempty" jsonschema:"minimum=0,maximum=100000" jsonschema_description:"at least this much memory per GPU in GB"`
	MaxPricePerHour *float64 `json:"max_price_per_hour,omitempty" jsonschema:"minimum=0" jsonschema_description:"at most this many CNY per hour for one instance with max(1, min_gpus) GPUs; offers without a published price are left out"`
	Region          string   `json:"region,omitempty" jsonschema:"maxLength=100" jsonschema_description:"region or zone substring, case-insensitive"`
	Billing         string   `json:"billing,omitempty" jsonschema:"enum=hourly,enum=daily,enum=weekly,enum=monthly" jsonschema_description:"only offers that can be billed this way; prices are then compared for this period"`
	AvailableOnly   bool     `json:"available_only,omitempty" jsonschema_description:"only offers with capacity now"`
	Limit           int      `json:"limit,omitempty" jsonschema:"minimum=0,maximum=500,default=20" jsonschema_description:"at most this many offers (default 20)"`
}

// ListOffersResult is list_gpu_offers' answer.
type ListOffersResult struct {
	Offers          []providers.Offer `json:"offers"`
	Matched         int               `json:"matched" jsonschema_description:"offers that matched before the limit"`
	UnknownPriceOut int               `json:"unknown_price_excluded,omitempty" jsonschema_description:"offers left out by max_price_per_hour because their vendor publishes no price"`
	Errors          []ProviderError   `json:"errors,omitempty" jsonschema_description:"providers that could not be asked; their offers are missing"`
	Stale           []StaleOffers     `json:"stale,omitempty" jsonschema_description:"providers that could not be asked whose offers are shown from the cache: how old they are and why"`
	Demo            bool              `json:"demo,omitempty"`
}

func listGPUOffers(d *Deps) Tool {
	return newTool("list_gpu_offers", "List GPU offers",
		"Find GPU machines to rent across all configured providers: filter by provider, GPU model, GPU count, VRAM, price, region, billing mode and availability; cheapest first (offers without a published price last). Prices are CNY per GPU. Use an offer's id as launch_instance's offer_id.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *ListOffersArgs) (ListOffersResult, string, error) {
			ps, err := d.selectProviders(in.Provider)
			if err != nil {
				return ListOffersResult{}, "", err
			}
			var mu sync.Mutex
			var stale []StaleOffers
			all, errs := fanOut(ctx, d, ps, func(ctx context.Context, p providers.Provider) ([]providers.Offer, error) {
				if d.Offers == nil {
					return p.ListOffers(ctx)
				}
				offers, note, err := d.Offers.Offers(ctx, p)
				if note != nil {
					mu.Lock()
					stale = append(stale, *note)
					mu.Unlock()
				}
				return offers, err
			})
			if err := allFailed(errs, len(ps)); err != nil {
				return ListOffersResult{}, "", err
			}
			sort.Slice(stale, func(i, j int) bool { return stale[i].Provider < stale[j].Provider })
			out := ListOffersResult{Errors: errs, Stale: stale, Demo: d.Demo, Offers: []providers.Offer{}}
			matched, unknown := filterOffers(all, in)
			out.Matched, out.UnknownPriceOut = len(matched), unknown
			limit := in.Limit
			if limit == 0 {
				limit = 20
			}
			if len(matched) > limit {
				matched = matched[:limit]
			}
			out.Offers = append(out.Offers, matched...)
			return out, d.textPrefix() + offersText(out, providers.BillingMode(in.Billing)), nil
		})
}

// gpuKey normalizes a GPU model for matching: "NVIDIA RTX-4090" -> "nvidiartx4090".
func gpuKey(s string) string {
	return strings.NewReplacer(" ", "", "-", "", "_", "").Replace(strings.ToLower(s))
}

// gpusFor is the smallest GPU count of o that is at least min (0 when none is).
func gpusFor(o providers.Offer, min int) int {
	best := 0
	for _, c := range o.GPUCounts {
		if c >= max(min, 1) && (best == 0 || c < best) {
			best = c
		}
	}
	return best
}

// sortPrice is the per-GPU price an offer is sorted by: the hourly one, or that of the
// requested billing period.
func sortPrice(o providers.Offer, billing providers.BillingMode) (float64, bool) {
	if billing == "" {
		billing = providers.BillingHourly
	}
	return o.PeriodPrice(billing)
}

func filterOffers(all []providers.Offer, in *ListOffersArgs) ([]providers.Offer, int) {
	gpu, region := gpuKey(in.GPU), strings.ToLower(strings.TrimSpace(in.Region))
	billing := providers.BillingMode(in.Billing)
	var out []providers.Offer
	unknown := 0
	for _, o := range all {
		if gpu != "" && !strings.Contains(gpuKey(o.GPUModel), gpu) {
			continue
		}
		n := gpusFor(o, in.MinGPUs)
		if n == 0 {
			continue
		}
		if in.MinVRAMGB > 0 && o.VRAMGB < in.MinVRAMGB {
			continue
		}
		if region != "" && !strings.Contains(strings.ToLower(o.Region), region) {
			continue
		}
		if billing != "" && !hasBilling(o.Billing, billing) {
			continue
		}
		if in.AvailableOnly && !o.Available {
			continue
		}
		if in.MaxPricePerHour != nil {
			price, ok := o.HourlyPrice(n)
			if !ok {
				unknown++
				continue
			}
			if price > *in.MaxPricePerHour {
				continue
			}
		}
		out = append(out, o)
	}
	sort.SliceStable(out, func(i, j int) bool {
		pi, oki := sortPrice(out[i], billing)
		pj, okj := sortPrice(out[j], billing)
		if oki != okj {
			return oki
		}
		if oki && pi != pj {
			return pi < pj
		}
		return out[i].ID < out[j].ID
	})
	return out, unknown
}

func hasBilling(modes []providers.BillingMode, m providers.BillingMode) bool {
	for _, b := range modes {
		if b == m {
			return true
		}
	}
	return false
}

func offersText(r ListOffersResult, billing providers.BillingMode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d offers match", r.Matched)
	if len(r.Offers) < r.Matched {
		fmt.Fprintf(&b, " (showing %d)", len(r.Offers))
	}
	b.WriteString(", cheapest first; prices in CNY per GPU.")
	if r.UnknownPriceOut > 0 {
		fmt.Fprintf(&b, " %d offers without a published price were left out by max_price_per_hour.", r.UnknownPriceOut)
	}
	rows := make([][]string, 0, len(r.Offers))
	for _, o := range r.Offers {
		counts := make([]string, len(o.GPUCounts))
		for i, c := range o.GPUCounts {
			counts[i] = strconv.Itoa(c)
		}
		modes := make([]string, len(o.Billing))
		for i, m := range o.Billing {
			modes[i] = string(m)
		}
		free := "no"
		if o.Available {
			free = "yes"
			if o.AvailableGPUs != nil {
				free = strconv.Itoa(*o.AvailableGPUs)
			}
		}
		rows = append(rows, []string{o.ID, o.GPUModel, strings.Join(counts, ","), gb(o.VRAMGB),
			fmt.Sprintf("%s/%s", num(o.VCPUs), gb(o.RAMGB)), orDash(o.Region), priceCell(o, billing),
			strings.Join(modes, ","), free})
	}
	if len(rows) > 0 {
		b.WriteString("\n")
		b.WriteString(table([]string{"offer_id", "gpu", "gpus", "vram", "cpu/ram", "region", "price", "billing", "free"}, rows))
	}
	for _, s := range r.Stale {
		fmt.Fprintf(&b, "\n! %s offers are %ds old: it could not be asked again (%s)", s.Provider, s.AgeSeconds, s.Error)
	}
	b.WriteString(errorsText(r.Errors))
	return b.String()
}

func priceCell(o providers.Offer, billing providers.BillingMode) string {
	if billing != "" && billing != providers.BillingHourly {
		if p, ok := o.PeriodPrice(billing); ok {
			return fmt.Sprintf("%.2f/%s", p, periodUnit(billing))
		}
	}
	if o.PricePerGPUHour != nil {
		return fmt.Sprintf("%.2f/h", *o.PricePerGPUHour)
	}
	for _, p := range o.Prices {
		return fmt.Sprintf("%.2f/%s", p.CNY, periodUnit(p.Billing))
	}
	return "?"
}

func periodUnit(m providers.BillingMode) string {
	switch m {
	case providers.BillingDaily:
		return "day"
	case providers.BillingWeekly:
		return "week"
	case providers.BillingMonthly:
		return "month"
	}
	return "h"
}

func gb(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n) + "G"
}

func num(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}
