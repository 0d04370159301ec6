package tools

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// defaultOfferPage is how many offers an answer shows when no limit is given: enough to choose
// from, few enough for an agent's budget.
const defaultOfferPage = 5

// ListOffersArgs filters and sorts offers.
type ListOffersArgs struct {
	Provider        string   `json:"provider,omitempty" jsonschema:"maxLength=64" jsonschema_description:"only this provider (see list_providers)"`
	GPU             string   `json:"gpu,omitempty" jsonschema:"maxLength=100" jsonschema_description:"GPU model substring, case-insensitive, spaces and dashes ignored (e.g. 4090, a100, h800)"`
	MinGPUs         int      `json:"min_gpus,omitempty" jsonschema:"minimum=0,maximum=1024" jsonschema_description:"at least this many GPUs in one instance"`
	MinVRAMGB       int      `json:"min_vram_gb,omitempty" jsonschema:"minimum=0,maximum=100000" jsonschema_description:"at least this much memory per GPU in GB"`
	MaxPricePerHour *float64 `json:"max_price_per_hour,omitempty" jsonschema:"minimum=0" jsonschema_description:"at most this many CNY per hour for one instance with max(1, min_gpus) GPUs, prepaid prices spread over their period; offers without a published price are left out"`
	Region          string   `json:"region,omitempty" jsonschema:"maxLength=100" jsonschema_description:"region or zone substring, case-insensitive, of its id or its English name (e.g. beijing, 105)"`
	Billing         string   `json:"billing,omitempty" jsonschema:"enum=hourly,enum=daily,enum=weekly,enum=monthly" jsonschema_description:"only offers that can be billed this way; prices are then compared for this period"`
	AvailableOnly   bool     `json:"available_only,omitempty" jsonschema_description:"only offers with capacity now"`
	Limit           int      `json:"limit,omitempty" jsonschema:"minimum=0,maximum=500,default=5" jsonschema_description:"at most this many offers (default 5)"`
	Offset          int      `json:"offset,omitempty" jsonschema:"minimum=0,maximum=100000" jsonschema_description:"skip this many matching offers: the next_offset of the previous answer"`
}

// ListOffersResult is list_gpu_offers' answer.
type ListOffersResult struct {
	Offers          []providers.Offer `json:"offers"`
	Matched         int               `json:"matched" jsonschema_description:"on all pages"`
	NextOffset      int               `json:"next_offset,omitempty" jsonschema_description:"more match: call again with this offset"`
	UnknownPriceOut int               `json:"unknown_price_excluded,omitempty" jsonschema_description:"left out by max_price_per_hour for having no price"`
	Hint            string            `json:"hint,omitempty" jsonschema_description:"no match for gpu or region: what there is"`
	Errors          []ProviderError   `json:"errors,omitempty" jsonschema_description:"providers not asked (offers missing) or cut short"`
	Stale           []StaleOffers     `json:"stale,omitempty" jsonschema_description:"providers not asked, shown from the cache"`
	Demo            bool              `json:"demo,omitempty"`
}

func listGPUOffers(d *Deps) Tool {
	return newTool("list_gpu_offers", "List GPU offers",
		"Find GPU machines to rent across all configured providers: filter by provider, GPU model, GPU count, VRAM, price, region, billing mode and availability. Cheapest first by price per GPU-hour, prepaid prices spread over their period; offers without a published price last. Prices are CNY per GPU. Pages of 5 by default (limit, offset). Use an offer's id as launch_instance's offer_id.",
		Hints{ReadOnly: true, Idempotent: true, OpenWorld: true}, false,
		func(ctx context.Context, in *ListOffersArgs) (ListOffersResult, string, error) {
			ps, err := d.selectProviders(in.Provider)
			if err != nil {
				return ListOffersResult{}, "", err
			}
			var mu sync.Mutex
			var stale []StaleOffers
			parts, errs := fanOutEach(ctx, d, ps, func(ctx context.Context, p providers.Provider) ([]providers.Offer, error) {
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
			out := ListOffersResult{Errors: errs, Stale: stale, Demo: d.Demo}
			q := newOfferQuery(in)
			keys, unknown := q.match(parts)
			out.Matched, out.UnknownPriceOut = len(keys), unknown
			limit := cmp.Or(in.Limit, defaultOfferPage)
			page := pageOf(cheapest(keys, in.Offset+limit), in.Offset, limit)
			out.Offers = make([]providers.Offer, len(page))
			prices := make([]float64, len(page))
			for i, k := range page {
				out.Offers[i] = *k.offer
				if !math.IsInf(k.price, 1) {
					prices[i] = math.Round(k.price*1e4) / 1e4
					out.Offers[i].HourlyEquivalent = &prices[i]
				}
			}
			if end := in.Offset + len(page); end < len(keys) {
				out.NextOffset = end
			}
			if len(keys) == 0 {
				out.Hint = q.hint(parts)
			}
			var b strings.Builder
			b.WriteString(d.textPrefix())
			writeOffersText(&b, out, in, q.billing)
			return out, b.String(), nil
		})
}

// offerQuery is list_gpu_offers' filter, prepared once for every offer it is matched against.
type offerQuery struct {
	in      *ListOffersArgs
	gpu     string // gpuKey of the model asked for
	region  string // lower-case
	billing providers.BillingMode
}

func newOfferQuery(in *ListOffersArgs) offerQuery {
	return offerQuery{in: in, gpu: gpuKey(in.GPU), region: lowerASCII(strings.TrimSpace(in.Region)), billing: providers.BillingMode(in.Billing)}
}

// offerKey is what the sort needs of one matching offer.
type offerKey struct {
	offer *providers.Offer
	price float64 // CNY per GPU-hour it is sorted by; +Inf when none is published
}

// cheaper orders offers cheapest first, unpriced last, then by id.
func cheaper(a, b offerKey) int {
	if c := cmp.Compare(a.price, b.price); c != 0 {
		return c
	}
	return strings.Compare(a.offer.ID, b.offer.ID)
}

// cheapest orders keys so that its first n are the n cheapest, in order (all of keys when n
// is as many), and returns keys. A page of a long list needs only those: a heap of n keys
// finds them in O(len(keys) log n) instead of sorting every key.
func cheapest(keys []offerKey, n int) []offerKey {
	if n >= len(keys)/4 {
		slices.SortFunc(keys, cheaper)
		return keys
	}
	// keys[:n] is a max-heap of the cheapest n seen so far; each later key cheaper than its
	// dearest takes that one's place.
	h := keys[:n]
	down := func(i int) {
		for {
			l, r, top := 2*i+1, 2*i+2, i
			if l < n && cheaper(h[l], h[top]) > 0 {
				top = l
			}
			if r < n && cheaper(h[r], h[top]) > 0 {
				top = r
			}
			if top == i {
				return
			}
			h[i], h[top] = h[top], h[i]
			i = top
		}
	}
	for i := n/2 - 1; i >= 0; i-- {
		down(i)
	}
	for i := n; i < len(keys); i++ {
		if n > 0 && cheaper(keys[i], h[0]) < 0 {
			h[0], keys[i] = keys[i], h[0]
			down(0)
		}
	}
	slices.SortFunc(h, cheaper)
	return keys
}

// match returns the offers that pass the filter, in no order, and how many
// max_price_per_hour left out for having no price. It reads the offers without copying or
// allocating per offer: they may be the cache's.
func (q offerQuery) match(parts [][]providers.Offer) ([]offerKey, int) {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	keys := make([]offerKey, 0, n)
	unknown := 0
	in := q.in
	for _, part := range parts {
		for i := range part {
			o := &part[i]
			if q.gpu != "" && !containsGPU(o.GPUModel, q.gpu) {
				continue
			}
			gpus := gpusFor(o, in.MinGPUs)
			if gpus == 0 || (in.MinVRAMGB > 0 && o.VRAMGB < in.MinVRAMGB) {
				continue
			}
			if q.region != "" && !containsFold(o.Region, q.region) && !containsFold(o.RegionName, q.region) {
				continue
			}
			if (q.billing != "" && !hasBilling(o.Billing, q.billing)) || (in.AvailableOnly && !o.Available) {
				continue
			}
			price, known := sortPrice(o, q.billing)
			if in.MaxPricePerHour != nil {
				if !known {
					unknown++
					continue
				}
				if price*float64(gpus) > *in.MaxPricePerHour {
					continue
				}
			}
			if !known {
				price = math.Inf(1)
			}
			keys = append(keys, offerKey{offer: o, price: price})
		}
	}
	return keys, unknown
}

// hint says what exists when the gpu or region filter matches no offer at all.
func (q offerQuery) hint(parts [][]providers.Offer) string {
	var hints []string
	if q.region != "" {
		var known []regionRef
		found := false
		for _, part := range parts {
			for i := range part {
				o := &part[i]
				found = found || containsFold(o.Region, q.region) || containsFold(o.RegionName, q.region)
				if r := (regionRef{o.Provider, o.Region, o.RegionName}); o.Region != "" && !slices.Contains(known, r) {
					known = append(known, r)
				}
			}
		}
		if !found {
			hints = append(hints, fmt.Sprintf("no offer is in a region matching %q; %s", q.in.Region, regionsList(known)))
		}
	}
	if q.gpu != "" {
		var models []string
		found := false
		for _, part := range parts {
			for i := range part {
				found = found || containsGPU(part[i].GPUModel, q.gpu)
				if !slices.Contains(models, part[i].GPUModel) {
					models = append(models, part[i].GPUModel)
				}
			}
		}
		if !found {
			sort.Strings(models)
			hints = append(hints, fmt.Sprintf("no offer's GPU matches %q; the models are %s", q.in.GPU, strings.Join(models, ", ")))
		}
	}
	return strings.Join(hints, ". ")
}

// regionLabel names a region for people: its English name with the vendor's id beside it,
// unless the name already says the id.
func regionLabel(region, name string) string {
	switch {
	case region == "":
		return "-"
	case name == "":
		return region
	case strings.Contains(name, region):
		return name
	}
	return name + " (" + region + ")"
}

// pageOf is the part of s from offset, at most limit long.
func pageOf[T any](s []T, offset, limit int) []T {
	if offset >= len(s) {
		return nil
	}
	return s[offset:min(offset+limit, len(s))]
}

// gpuKey normalizes a GPU model for matching: "NVIDIA RTX-4090" -> "nvidiartx4090".
func gpuKey(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if c := s[i]; !gpuSeparator(c) {
			b.WriteByte(lowerByte(c))
		}
	}
	return b.String()
}

func gpuSeparator(c byte) bool { return c == ' ' || c == '-' || c == '_' }

// containsGPU reports whether key, a gpuKey, occurs in gpuKey(model), without building it.
func containsGPU(model, key string) bool {
	for start := 0; start < len(model); start++ {
		if gpuSeparator(model[start]) {
			continue
		}
		i, j := start, 0
		for i < len(model) && j < len(key) {
			c := model[i]
			i++
			if gpuSeparator(c) {
				continue
			}
			if lowerByte(c) != key[j] {
				break
			}
			j++
		}
		if j == len(key) {
			return true
		}
	}
	return key == ""
}

// containsFold reports whether sub, in lower case, occurs in s with ASCII letters of any case.
func containsFold(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		j := 0
		for j < len(sub) && lowerByte(s[i+j]) == sub[j] {
			j++
		}
		if j == len(sub) {
			return true
		}
	}
	return false
}

func lowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				b[j] = lowerByte(b[j])
			}
			return string(b)
		}
	}
	return s
}

// gpusFor is the smallest GPU count of o that is at least min (0 when none is).
func gpusFor(o *providers.Offer, min int) int {
	best := 0
	for _, c := range o.GPUCounts {
		if c >= max(min, 1) && (best == 0 || c < best) {
			best = c
		}
	}
	return best
}

// sortPrice is the per-GPU price per hour an offer is sorted by: the lowest of its billing
// modes', prepaid ones spread over their period, or that of the billing mode asked for.
func sortPrice(o *providers.Offer, billing providers.BillingMode) (float64, bool) {
	if billing == "" {
		return o.LowestHourly()
	}
	p, ok := o.PeriodPrice(billing)
	return p / billing.Hours(), ok
}

func hasBilling(modes []providers.BillingMode, m providers.BillingMode) bool {
	return slices.Contains(modes, m)
}

func writeOffersText(b *strings.Builder, r ListOffersResult, in *ListOffersArgs, billing providers.BillingMode) {
	if r.Matched == 1 {
		b.WriteString("1 offer matches")
	} else {
		fmt.Fprintf(b, "%d offers match", r.Matched)
	}
	if len(r.Offers) < r.Matched {
		fmt.Fprintf(b, " (showing %d-%d)", in.Offset+1, in.Offset+len(r.Offers))
	}
	if billing == "" || billing == providers.BillingHourly {
		b.WriteString(", cheapest first by CNY per GPU-hour (prepaid prices spread over their period: day 24 h, week 168 h, month 720 h).")
	} else {
		fmt.Fprintf(b, ", cheapest first by CNY per GPU for one %s.", periodUnit(billing))
	}
	if r.UnknownPriceOut > 0 {
		fmt.Fprintf(b, " %d offers without a published price were left out by max_price_per_hour.", r.UnknownPriceOut)
	}
	if r.Hint != "" {
		b.WriteString(" " + upperFirst(r.Hint) + ".")
	}
	if len(r.Offers) > 0 {
		t := newTextTable("offer_id", "gpu", "gpus", "vram", "cpu/ram", "region", "price", "billing", "free")
		t.grow(len(r.Offers))
		for i := range r.Offers {
			o := &r.Offers[i]
			free := "no"
			if o.Available {
				free = "yes"
				if o.AvailableGPUs != nil {
					free = strconv.Itoa(*o.AvailableGPUs)
				}
			}
			t.row(o.ID, o.GPUModel, counts(o.GPUCounts), gb(o.VRAMGB), num(o.VCPUs)+"/"+gb(o.RAMGB),
				regionCell(o.Region, o.RegionName), priceCell(o, billing), modes(o.Billing), free)
		}
		b.WriteString("\n")
		t.write(b)
	}
	if r.NextOffset > 0 {
		fmt.Fprintf(b, "\nMore: call again with offset=%d (or a larger limit, up to 500).", r.NextOffset)
	}
	for _, s := range r.Stale {
		fmt.Fprintf(b, "\n! %s offers are %ds old: it could not be asked again (%s)", s.Provider, s.AgeSeconds, s.Error)
	}
	b.WriteString(errorsText(r.Errors))
}

// regionCell is a region in a table: the English name where there is one.
func regionCell(region, name string) string {
	if name != "" {
		return name
	}
	return orDash(region)
}

func counts(cs []int) string {
	var buf [32]byte
	b := buf[:0]
	for i, c := range cs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	return string(b)
}

func modes(ms []providers.BillingMode) string {
	if len(ms) == 1 {
		return string(ms[0])
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = string(m)
	}
	return strings.Join(parts, ",")
}

// priceCell is the price an offer is sorted by, for one GPU: per hour, or per period with its
// hourly equivalent.
func priceCell(o *providers.Offer, billing providers.BillingMode) string {
	if billing == "" {
		billing = cheapestMode(o)
	}
	p, ok := o.PeriodPrice(billing)
	switch {
	case !ok:
		return "?"
	case billing == providers.BillingHourly:
		return strconv.FormatFloat(p, 'f', 2, 64) + "/h"
	}
	return strconv.FormatFloat(p, 'f', 2, 64) + "/" + periodUnit(billing) + " (" + strconv.FormatFloat(p/billing.Hours(), 'f', 2, 64) + "/h)"
}

// cheapestMode is the billing mode of o with the lowest price per hour ("" when none has a
// price), as LowestHourly finds it.
func cheapestMode(o *providers.Offer) providers.BillingMode {
	var mode providers.BillingMode
	best := 0.0
	for _, m := range o.Billing {
		p, ok := o.PeriodPrice(m)
		if !ok || m.Hours() == 0 {
			continue
		}
		if h := p / m.Hours(); mode == "" || h < best {
			mode, best = m, h
		}
	}
	return mode
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
