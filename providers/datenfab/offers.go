package datenfab

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Selling types (sku sellingType, create Cost.CostType) and the billing modes they are.
var (
	sellingToBilling = map[string]providers.BillingMode{
		"1": providers.BillingHourly, "2": providers.BillingMonthly, "3": providers.BillingWeekly, "4": providers.BillingDaily,
	}
	billingToSelling = map[providers.BillingMode]string{
		providers.BillingHourly: "1", providers.BillingMonthly: "2", providers.BillingWeekly: "3", providers.BillingDaily: "4",
	}
	// billingToCostTimeUnit is the CostTime suffix of a prepaid mode ("3D" = three days).
	billingToCostTimeUnit = map[providers.BillingMode]string{
		providers.BillingDaily: "D", providers.BillingWeekly: "W", providers.BillingMonthly: "M",
	}
)

// RegionsTTL is how long the region list is reused. Regions change far more rarely than the
// SKUs' prices and stock, so a catalog read asks for them only this often and otherwise costs
// one round trip (the regions' SKUs, asked at once) instead of two.
const RegionsTTL = 10 * time.Minute

// listRegions returns the regions, from the cache when it is younger than RegionsTTL, else
// from /regions (which also refreshes the cluster -> region map).
func (p *Provider) listRegions(ctx context.Context) ([]wireRegion, error) {
	p.mu.Lock()
	rs, at := p.regionList, p.regionsAt
	p.mu.Unlock()
	if rs != nil && p.now().Sub(at) < RegionsTTL {
		return rs, nil
	}
	return p.fetchRegions(ctx)
}

// fetchRegions reads /regions and refreshes both caches.
func (p *Provider) fetchRegions(ctx context.Context) ([]wireRegion, error) {
	var rs []wireRegion
	if err := p.getJSON(ctx, "/regions", nil, "list regions", &rs); err != nil {
		return nil, err
	}
	if rs == nil {
		rs = []wireRegion{}
	}
	p.mu.Lock()
	for _, r := range rs {
		if r.ClusterName != "" {
			p.regions[r.ClusterName] = regionInfo{Name: r.Region, Harbor: r.HarborAddr}
		}
	}
	p.regionList, p.regionsAt = rs, p.now()
	p.mu.Unlock()
	return rs, nil
}

// forgetRegions drops the cached region list, after a region's SKUs could not be read: the
// region may be gone, and the next read asks again.
func (p *Provider) forgetRegions() {
	p.mu.Lock()
	p.regionList = nil
	p.mu.Unlock()
}

// listSKUs fetches the SKU rows of one region. The query parameter is snake case although the
// answer says "regionID" (quirk 5.2.16).
func (p *Provider) listSKUs(ctx context.Context, r wireRegion) ([]wireSKU, error) {
	var skus []wireSKU
	q := url.Values{"region_id": {r.ID}}
	if err := p.getJSON(ctx, "/skus/computings", q, "list GPU SKUs of region "+r.Region, &skus); err != nil {
		return nil, err
	}
	for i := range skus {
		if skus[i].ClusterName == "" {
			skus[i].ClusterName = r.ClusterName
		}
		if skus[i].RegionName == "" {
			skus[i].RegionName = r.Region
		}
	}
	return skus, nil
}

// catalog returns every SKU row of every region.
func (p *Provider) catalog(ctx context.Context) ([]wireSKU, error) {
	regions, err := p.listRegions(ctx)
	if err != nil {
		return nil, err
	}
	// The regions are asked at once: a catalog read costs one round trip when the regions are
	// known, two when they are read first, never one per region.
	per := make([][]wireSKU, len(regions))
	errs := make([]error, len(regions))
	var wg sync.WaitGroup
	for i, r := range regions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			per[i], errs[i] = p.listSKUs(ctx, r)
		}()
	}
	wg.Wait()
	var all []wireSKU
	for i := range regions {
		if errs[i] != nil {
			p.forgetRegions()
			return nil, errs[i]
		}
		all = append(all, per[i]...)
	}
	return all, nil
}

// ListOffers implements providers.Provider: one offer per SKU row (each row has one selling type).
func (p *Provider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	skus, err := p.catalog(ctx)
	if err != nil {
		return nil, err
	}
	offers := make([]providers.Offer, 0, len(skus))
	for _, s := range skus {
		o, ok := p.offerOf(s)
		if ok {
			offers = append(offers, o)
		}
	}
	return offers, nil
}

// offerLocalID is "<clusterName>/<skusID>/<sellingType>": what create needs.
func offerLocalID(s wireSKU) string {
	return s.ClusterName + "/" + string(s.SKUsID) + "/" + string(s.SellingType)
}

type offerRef struct {
	cluster, skuID, sellingType string
	billing                     providers.BillingMode
}

// parseOfferID parses an offer's local id.
func parseOfferID(id string) (offerRef, error) {
	parts := strings.Split(id, "/")
	bad := func(why string) error {
		return errf(providers.KindInvalid, "launch", "use an offer id from list_gpu_offers (datenfab offers look like datenfab:<cluster>/<sku id>/<selling type>, e.g. datenfab:host-cluster/2/1)",
			"malformed datenfab offer id %q: %s", id, why)
	}
	if len(parts) != 3 {
		return offerRef{}, bad("expected <cluster>/<sku id>/<selling type>")
	}
	for _, s := range parts {
		if !kubeName(s) {
			return offerRef{}, bad("empty or invalid part")
		}
	}
	b, ok := sellingToBilling[parts[2]]
	if !ok {
		return offerRef{}, bad("selling type must be 1 (hourly), 2 (monthly), 3 (weekly) or 4 (daily)")
	}
	return offerRef{cluster: parts[0], skuID: parts[1], sellingType: parts[2], billing: b}, nil
}

// offerOf maps one SKU row; rows that cannot be launched as documented are skipped and logged.
func (p *Provider) offerOf(s wireSKU) (providers.Offer, bool) {
	billing, ok := sellingToBilling[string(s.SellingType)]
	if !ok || s.ClusterName == "" || s.SKUsID == "" || s.GPUCounts <= 0 {
		p.log.Warn().Str("sku", string(s.SKUsID)).Str("selling_type", string(s.SellingType)).Int64("gpu_counts", int64(s.GPUCounts)).
			Msg("datenfab SKU row skipped: unknown selling type, missing cluster or SKU id, or no GPU count")
		return providers.Offer{}, false
	}
	gpus := int(s.GPUCounts)
	remain := int(s.RemainGPUCount)
	model := s.Name
	if model == "" {
		model = s.GPUProduct
	}
	o := providers.Offer{
		ID:            offerLocalID(s),
		Provider:      Name,
		GPUModel:      model,
		GPUCounts:     []int{gpus},
		VRAMGB:        int(s.GPUMemory),
		VCPUs:         int(s.CPUCores),
		RAMGB:         int(s.MemoryCount),
		SystemDiskGB:  int(s.SystemStorage),
		DataDiskGB:    int(s.DataStorage),
		Region:        s.RegionName,
		RegionName:    regionInEnglish(s.RegionName),
		Billing:       []providers.BillingMode{billing},
		Available:     remain >= gpus,
		AvailableGPUs: &remain,
	}
	var notes []string
	// The price is taken as CNY for the whole SKU (all its GPUs) for one period of its selling
	// type; the document gives no unit. A non-positive price is treated as not published.
	if price := float64(s.Price); price > 0 {
		per := round4(price / float64(gpus))
		if billing == providers.BillingHourly {
			o.PricePerGPUHour = &per
		}
		o.Prices = []providers.Price{{Billing: billing, CNY: per}}
	} else {
		notes = append(notes, "no price listed for this SKU")
	}
	if n := p.discountNote(s); n != "" {
		notes = append(notes, n)
	}
	if billing != providers.BillingHourly {
		notes = append(notes, fmt.Sprintf("prepaid %s: launch with billing=%s; price is per GPU for one %s", billing, billing, periodWord(billing)))
	}
	o.Notes = strings.Join(notes, "; ")
	return o, true
}

// discountNote describes a discount while its window is open. Datenfab does not say whether
// ratio is the factor applied to price, the part taken off, or already included in price.
func (p *Provider) discountNote(s wireSKU) string {
	r := float64(s.Ratio)
	if r <= 0 || r == 1 {
		return ""
	}
	now := p.now()
	start, end := p.parseTime(s.DiscountStartTime), p.parseTime(s.DiscountEndTime)
	if (start != nil && now.Before(*start)) || (end != nil && !now.Before(*end)) {
		return ""
	}
	n := fmt.Sprintf("discount ratio %g", r)
	if s.DiscountID != "" {
		n += " (discount " + string(s.DiscountID) + ")"
	}
	if end != nil {
		n += " until " + end.UTC().Format(time.RFC3339)
	}
	// The long form is in the capabilities' notes (list_providers details=true).
	return n + " (meaning undocumented: prices shown are the listed ones)"
}

func periodWord(b providers.BillingMode) string {
	switch b {
	case providers.BillingDaily:
		return "day"
	case providers.BillingWeekly:
		return "week"
	case providers.BillingMonthly:
		return "month"
	}
	return "hour"
}

func round4(f float64) float64 { return math.Round(f*10000) / 10000 }
