package chenyu

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/flex"
)

// gpuCounts are the only gpu_nums Chenyu accepts (create and startup).
var gpuCounts = []int{1, 2, 4, 8}

func validGPUCount(n int) bool { return slices.Contains(gpuCounts, n) }

// ListOffers implements providers.Provider: one offer per GPU model of GET /gpu/list.
func (p *Provider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	gpus, err := p.listGPUs(ctx)
	if err != nil && providers.AsIncomplete(err) == nil {
		return nil, err
	}
	out := make([]providers.Offer, 0, len(gpus))
	for _, g := range gpus {
		if strings.TrimSpace(g.GPUUUID) == "" {
			continue
		}
		out = append(out, p.offer(g))
	}
	return out, err
}

func (p *Provider) listGPUs(ctx context.Context) ([]wireGPU, error) {
	return fetchAll(ctx, p, p.http, "/gpu/list", "gpu_list", "list GPU models", nil, func(g wireGPU) string { return g.GPUUUID })
}

func (p *Provider) offer(g wireGPU) providers.Offer {
	o := providers.Offer{
		ID:        g.GPUUUID,
		Provider:  Name,
		GPUModel:  strings.TrimSpace(string(g.GPUName)),
		GPUCounts: append([]int(nil), gpuCounts...),
		VRAMGB:    vramGB(string(g.GPUName)),
		Billing:   []providers.BillingMode{providers.BillingHourly},
		// Only status 1 is documented, as "available" ([CY-TY]).
		Available: g.Status == 1,
	}
	var notes []string
	if g.Price != nil {
		o.PricePerGPUHour = priceOf(g.Price.Hour)
		for _, pp := range []struct {
			m providers.BillingMode
			v *float64
		}{
			{providers.BillingHourly, priceOf(g.Price.Hour)},
			{providers.BillingDaily, priceOf(g.Price.Day)},
			{providers.BillingWeekly, priceOf(g.Price.Week)},
			{providers.BillingMonthly, priceOf(g.Price.Month)},
		} {
			if pp.v != nil {
				o.Prices = append(o.Prices, providers.Price{Billing: pp.m, CNY: *pp.v})
			}
		}
		if y := priceOf(g.Price.Year); y != nil {
			notes = append(notes, fmt.Sprintf("yearly %.2f", *y))
		}
	}
	// The long form of these is in the capabilities' notes (list_providers details=true).
	if len(o.Prices) > 1 || len(notes) > 0 {
		notes = append([]string{"per GPU (assumed); periods other than hourly are list prices only: the API bills hourly"}, notes...)
	}
	if !o.Available {
		notes = append(notes, fmt.Sprintf("chenyu status %d", int64(g.Status)))
	}
	o.Notes = strings.Join(notes, "; ")
	return o
}

// vramRE finds a memory size written in a model name, such as the "80G" of "NVIDIA A100 80G".
var vramRE = regexp.MustCompile(`(?i)(?:^|[\s_-])(\d{1,3})\s*GB?(?:$|[\s_-])`)

// knownVRAM is the memory of GPU models that are made in one memory size only, so that the
// model name alone says it. Models sold in several sizes (A100, A800, V100, RTX 3080, H100) are
// left out: their size must be stated in the name.
var knownVRAM = []struct {
	re *regexp.Regexp
	gb int
}{
	{regexp.MustCompile(`(?i)\b(rtx\s*)?4090d?\b`), 24},
	{regexp.MustCompile(`(?i)\b(rtx\s*)?3090(\s*ti)?\b`), 24},
	{regexp.MustCompile(`(?i)\b(rtx\s*)?4080\b`), 16},
	{regexp.MustCompile(`(?i)\bl40s?\b`), 48},
	{regexp.MustCompile(`(?i)\bl20\b`), 48},
	{regexp.MustCompile(`(?i)\bh800\b`), 80},
	{regexp.MustCompile(`(?i)\bh20\b`), 96},
	{regexp.MustCompile(`(?i)\ba10\b`), 24},
	{regexp.MustCompile(`(?i)\bt4\b`), 16},
	{regexp.MustCompile(`(?i)\ba6000\b`), 48},
}

// vramGB is the memory size a model name states, else the one fixed size of a known model,
// else 0: Chenyu's GPU list has no memory field.
func vramGB(name string) int {
	if m := vramRE.FindStringSubmatch(name); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n
		}
	}
	for _, k := range knownVRAM {
		if k.re.MatchString(name) {
			return k.gb
		}
	}
	return 0
}

// priceOf is a listed price, or nil when it is absent or not positive: a zero price is more
// likely a placeholder than a free GPU, and a spending cap must not take it at its word.
func priceOf(f *flex.Float) *float64 {
	if f == nil || *f <= 0 {
		return nil
	}
	v := float64(*f)
	return &v
}
