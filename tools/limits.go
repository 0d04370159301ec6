package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Limits are the operator's spending limits. A nil or zero field is no limit. What each one
// bounds:
//   - MaxPricePerHour: the rate of one new instance, CNY per hour (a prepaid plan: its charge
//     over the hours it buys). A rate is not an amount: a prepaid launch also needs
//     MaxUpfront set, and is refused while only this one is.
//   - MaxGPUs: GPUs in one new instance.
//   - MaxHourlySpend: CNY per hour of every instance that may bill (per vendor,
//     providers.Capabilities.BillingStates), every instance held for an approved launch or
//     start the vendors do not list yet, and the new one: for launch and start.
//   - MaxUpfront: CNY charged at once by one launch (prepaid periods) or one renewal.
//   - MaxSpend: CNY committed through gpu-mcp in the last state.SpendWindow (24 hours):
//     up-front charges, and hourly prices times the hours they are committed for (a launch's
//     or start's auto-stop, a lease moved later; 24 hours where nothing stops it sooner).
type Limits struct {
	MaxPricePerHour *float64
	MaxGPUs         int
	MaxHourlySpend  *float64
	MaxUpfront      *float64
	MaxSpend        *float64
}

func (l Limits) any() bool {
	return l.MaxPricePerHour != nil || l.MaxGPUs > 0 || l.MaxHourlySpend != nil || l.MaxUpfront != nil || l.MaxSpend != nil
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

// noEndHours is how many hours of its price count as committed for an instance that nothing
// stops sooner: within the spend window it may bill that long.
const noEndHours = 24.0

// spending is what an approved plan adds to what gpu-mcp spends, for the limits.
type spending struct {
	kind       state.CommitmentKind // launch, start, renew or lease_extend
	what       string               // "launch", "start", "renewal", "auto-stop change": for the texts
	provider   string
	instanceID string // the instance started, renewed or given a later auto-stop
	launchKey  string
	gpus       int // a launch's
	// bills: the action makes an instance bill by the hour (launch, start), at price (a
	// prepaid launch: its hourly equivalent, and prepaid is set); nil when unknown.
	bills   bool
	price   *float64
	prepaid bool
	// upfront: the action charges cost at once (a prepaid launch, a renewal); nil cost when
	// unknown.
	upfront bool
	cost    *float64
	// hours of billing at price that the action commits, and why that many.
	hours    float64
	hoursWhy string

	// hold is the spending room the guard holds for the run (see fleet.Hold).
	hold string
}

// commits is what the action commits, for GPU_MCP_MAX_SPEND, and false when it is unknown.
func (s *spending) commits() (float64, bool) {
	var sum float64
	if s.upfront {
		if s.cost == nil {
			return 0, false
		}
		sum += *s.cost
	}
	if s.hours > 0 {
		if s.price == nil {
			return 0, false
		}
		sum += *s.price * s.hours
	}
	return sum, true
}

// commitText says what the commitment is made of.
func (s *spending) commitText() string {
	var parts []string
	if s.upfront {
		parts = append(parts, "charged at once")
	}
	if s.hours > 0 && s.price != nil {
		parts = append(parts, fmt.Sprintf("%.2f CNY/hour for %s", *s.price, s.hoursWhy))
	}
	return strings.Join(parts, " and ")
}

// hoursUntil is the hours from now until a stop at at, as committed hours: none for a stop
// already due, noEndHours for no stop.
func hoursUntil(at *time.Time, now time.Time) (float64, string) {
	if at == nil {
		return noEndHours, "24 h, as nothing stops it sooner"
	}
	h := max(at.Sub(now).Hours(), 0)
	return h, "until its auto-stop in " + fleet.ShortDuration(time.Duration(h*float64(time.Hour)).Round(time.Minute))
}

// epsilon absorbs the rounding of sums of CNY amounts, so that a total exactly at a limit
// passes.
const epsilon = 1e-9

// spendView is what the limits that depend on other spending decide on: the instances the
// vendors list as billing, the holds in the state store, and what was committed in the last
// 24 hours.
type spendView struct {
	billing   map[string]float64 // instance id: hourly price
	unknown   []string           // billing instances whose price the vendor does not report
	listed    map[string]bool    // every instance listed, whatever its state
	holds     []state.Reservation
	committed float64
}

// hourly is the running total and what s adds to it. An instance is counted once: from the
// listing when the vendor lists it as billing, else from its hold; a hold of a launch whose
// instance is not named yet counts on its own. A launched instance the vendor lists in a state
// that does not bill was stopped since (from its console, by a save that stops it), so its
// hold no longer counts; a start's does until the instance bills, since its start may not have
// reached the vendor yet. An instance started again adds only what its new price exceeds the
// counted one.
func (v spendView) hourly(s *spending) (current, add float64, billing, held int) {
	counted := make(map[string]float64, len(v.billing))
	for id, p := range v.billing {
		counted[id] = p
	}
	billing = len(counted)
	for _, h := range v.holds {
		if h.InstanceID != "" {
			if _, ok := counted[h.InstanceID]; ok || (h.LaunchKey != "" && v.listed[h.InstanceID]) {
				continue
			}
			counted[h.InstanceID] = h.PricePerHour
		}
		current += h.PricePerHour
		held++
	}
	ids := make([]string, 0, len(v.billing))
	for id := range v.billing {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		current += v.billing[id]
	}
	add = *s.price
	if c, ok := counted[s.instanceID]; ok && s.instanceID != "" {
		add = max(add-c, 0)
	}
	return current, add, billing, held
}

// judgeOwn applies the limits that depend on the plan alone; it returns a line per limit that
// applies, with the figures, or the first refusal.
func (l Limits) judgeOwn(s *spending) ([]string, error) {
	var lines []string
	launch := s.kind == state.CommitLaunch
	if l.MaxGPUs > 0 && launch {
		if s.gpus > l.MaxGPUs {
			return nil, limitError("%d GPUs is over the limit of %d GPUs per instance (GPU_MCP_MAX_GPUS)", s.gpus, l.MaxGPUs)
		}
		lines = append(lines, fmt.Sprintf("GPU_MCP_MAX_GPUS: %d of at most %d GPUs per instance", s.gpus, l.MaxGPUs))
	}
	if l.MaxPricePerHour != nil && launch {
		if s.price == nil {
			return nil, limitError("the price of this offer is unknown (%s publishes none), and an unknown price counts as over the limit of %.2f CNY/hour (GPU_MCP_MAX_PRICE_PER_HOUR)", s.provider, *l.MaxPricePerHour)
		}
		if *s.price > *l.MaxPricePerHour+epsilon {
			return nil, limitError("%.2f CNY/hour is over the limit of %.2f CNY/hour per instance (GPU_MCP_MAX_PRICE_PER_HOUR)", *s.price, *l.MaxPricePerHour)
		}
		line := fmt.Sprintf("GPU_MCP_MAX_PRICE_PER_HOUR: %.2f of at most %.2f CNY/hour per instance", *s.price, *l.MaxPricePerHour)
		if s.prepaid {
			line += " (the prepaid charge over the hours it buys)"
		}
		lines = append(lines, line)
		if s.upfront && l.MaxUpfront == nil {
			return nil, limitError("this prepaid launch charges %s at once; GPU_MCP_MAX_PRICE_PER_HOUR bounds a price per hour, not a charge made up front, and no limit on up-front charges (GPU_MCP_MAX_UPFRONT) is set, so a prepaid launch is refused", cny(s.cost))
		}
	}
	if l.MaxUpfront != nil && s.upfront {
		if s.cost == nil {
			return nil, limitError("what this %s charges at once is unknown (%s publishes no price for it), and an unknown charge counts as over the limit of %.2f CNY (GPU_MCP_MAX_UPFRONT)", s.what, s.provider, *l.MaxUpfront)
		}
		if *s.cost > *l.MaxUpfront+epsilon {
			return nil, limitError("this %s charges %.2f CNY at once, over the limit of %.2f CNY per launch or renewal (GPU_MCP_MAX_UPFRONT)", s.what, *s.cost, *l.MaxUpfront)
		}
		lines = append(lines, fmt.Sprintf("GPU_MCP_MAX_UPFRONT: this charges %.2f of at most %.2f CNY at once; %.2f left", *s.cost, *l.MaxUpfront, *l.MaxUpfront-*s.cost))
	}
	return lines, nil
}

// judgeRunning applies the limits that depend on other spending as v shows it.
func (l Limits) judgeRunning(s *spending, v spendView) ([]string, error) {
	var lines []string
	if l.MaxHourlySpend != nil && s.bills {
		limit := *l.MaxHourlySpend
		if s.price == nil {
			return nil, limitError("the hourly price of this %s is unknown (%s publishes none), so the running total cannot be kept under %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)", s.what, s.provider, limit)
		}
		if len(v.unknown) > 0 {
			return nil, limitError("instances that may bill with an unknown hourly price (%s) make the running total unknown, so it cannot be kept under %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)", strings.Join(v.unknown, ", "), limit)
		}
		current, add, billing, held := v.hourly(s)
		of := fmt.Sprintf("%d billing", billing)
		if held > 0 {
			of += fmt.Sprintf(", %d held for approved launches and starts", held)
		}
		if current+add > limit+epsilon {
			return nil, limitError("instances that may bill cost %.2f CNY/hour (%s); with this %s (%.2f) the total would be %.2f, over the limit of %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)",
				current, of, s.what, add, current+add, limit)
		}
		lines = append(lines, fmt.Sprintf("GPU_MCP_MAX_HOURLY_SPEND: %.2f of %.2f CNY/hour billing now (%s); this adds %.2f; %.2f left",
			current, limit, of, add, limit-current-add))
	}
	if l.MaxSpend != nil {
		limit := *l.MaxSpend
		amount, known := s.commits()
		if !known {
			return nil, limitError("what this %s commits is unknown (%s publishes no price for it), and an unknown amount counts as over the limit of %.2f CNY per 24 hours (GPU_MCP_MAX_SPEND)", s.what, s.provider, limit)
		}
		detail := ""
		if t := s.commitText(); t != "" {
			detail = " (" + t + ")"
		}
		if v.committed+amount > limit+epsilon {
			return nil, limitError("%.2f CNY was committed through gpu-mcp in the last 24 h; this %s commits %.2f more%s, %.2f in all, over the limit of %.2f CNY per 24 hours (GPU_MCP_MAX_SPEND)",
				v.committed, s.what, amount, detail, v.committed+amount, limit)
		}
		lines = append(lines, fmt.Sprintf("GPU_MCP_MAX_SPEND: %.2f of %.2f CNY committed in the last 24 h; this adds %.2f%s; %.2f left",
			v.committed, limit, amount, detail, limit-v.committed-amount))
	}
	return lines, nil
}

func cny(v *float64) string {
	if v == nil {
		return "an unknown amount"
	}
	return fmt.Sprintf("%.2f CNY", *v)
}

// needsListing reports whether the limits need the vendors' billing instances for s.
func (l Limits) needsListing(s *spending) bool { return l.MaxHourlySpend != nil && s.bills }

// previewSpend applies the limits to a plan before it is shown, and writes what each limit
// that applies says into the plan. It is a preview: the figures may change until the plan
// runs, when holdSpend decides.
func (d *Deps) previewSpend(ctx context.Context, s *spending, plan *Plan) error {
	if s == nil || !d.Limits.any() {
		return nil
	}
	own, err := d.Limits.judgeOwn(s)
	if err != nil {
		return err
	}
	var v spendView
	if d.Limits.needsListing(s) {
		if v, err = d.billingInstances(ctx); err != nil {
			return err
		}
	}
	if d.Limits.needsListing(s) || d.Limits.MaxSpend != nil {
		if v.holds, v.committed, err = d.Fleet.Spending(ctx); err != nil {
			return err
		}
	}
	running, err := d.Limits.judgeRunning(s, v)
	if err != nil {
		return err
	}
	plan.Limits = append(own, running...)
	return nil
}

// holdSpend applies every limit to an approved plan and holds its room, in one step: the
// vendors' billing instances are read first, then the check against them and the store's holds
// and commitments, and the hold itself, are one transaction serialized across replicas (see
// fleet.Reserve). It returns the hold's id.
func (d *Deps) holdSpend(ctx context.Context, s *spending) (string, error) {
	if s == nil {
		return "", nil
	}
	if _, err := d.Limits.judgeOwn(s); err != nil {
		return "", err
	}
	var listed spendView
	if d.Limits.needsListing(s) {
		var err error
		if listed, err = d.billingInstances(ctx); err != nil {
			return "", err
		}
	}
	h := fleet.Hold{Provider: s.provider, InstanceID: s.instanceID, LaunchKey: s.launchKey}
	if s.bills && s.price != nil {
		h.PricePerHour = *s.price
	}
	if s.upfront && s.cost != nil {
		h.Upfront = *s.cost
	}
	if amount, known := s.commits(); known {
		h.Commit, h.Kind = amount, s.kind
	}
	return d.Fleet.Reserve(ctx, h, func(snap state.Snapshot) error {
		v := listed
		v.holds, v.committed = snap.Reservations, snap.Committed()
		_, err := d.Limits.judgeRunning(s, v)
		return err
	})
}

// billingInstances is what every provider lists: the instances in a state in which it may
// bill, with their hourly prices, those whose price it does not report, and every instance
// listed. A provider that cannot be asked makes the total unknowable, so it is an error.
func (d *Deps) billingInstances(ctx context.Context) (spendView, error) {
	type seen struct {
		inst  providers.Instance
		bills bool
	}
	all, errs := fanOut(ctx, d, d.Providers.All(), func(ctx context.Context, p providers.Provider) ([]seen, error) {
		insts, err := p.ListInstances(ctx)
		caps := p.Capabilities()
		out := make([]seen, len(insts))
		for i, in := range insts {
			out[i] = seen{in, caps.Bills(in.State)}
		}
		return out, err
	})
	if len(errs) > 0 {
		return spendView{}, limitError("the running total cannot be checked against GPU_MCP_MAX_HOURLY_SPEND because %s could not be asked: %s", errs[0].Provider, errs[0].Error)
	}
	v := spendView{billing: map[string]float64{}, listed: map[string]bool{}}
	for _, s := range all {
		v.listed[s.inst.ID] = true
		switch {
		case !s.bills:
		case s.inst.PricePerHour == nil:
			v.unknown = append(v.unknown, s.inst.ID)
		default:
			v.billing[s.inst.ID] = *s.inst.PricePerHour
		}
	}
	sort.Strings(v.unknown)
	return v, nil
}
