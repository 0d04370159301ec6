package tools

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// LaunchAttempt is one offer launch_instance tried.
type LaunchAttempt struct {
	OfferID    string        `json:"offer_id"`
	InstanceID string        `json:"instance_id,omitempty"`
	OrderID    string        `json:"order_id,omitempty"`
	Result     AttemptResult `json:"result" jsonschema:"enum=ready,enum=running,enum=ordered,enum=refused,enum=not_running,enum=skipped,enum=error,enum=unknown" jsonschema_description:"ready: running and SSH answers; running: running but SSH did not answer in time; ordered: not waited for; refused: the vendor refused the order (e.g. sold out), nothing bought; not_running: bought but did not come up, see cleanup; skipped: not tried (limits); error or unknown: see detail"`
	Detail     string        `json:"detail,omitempty"`
	Cleanup    string        `json:"cleanup,omitempty" jsonschema_description:"what was done with an instance that did not come up"`
	Billing    BillingNow    `json:"billing" jsonschema:"enum=no,enum=yes,enum=storage_only,enum=unknown" jsonschema_description:"whether what this attempt bought still bills"`

	err error // the vendor's error when the order itself failed
}

// Progress steps of one launch; with fallbacks the count goes on past them.
var launchSteps = []string{"ordered", "starting", "running", "ssh ready"}

// launchStepper sends the launch's progress notifications in order, each step once.
type launchStepper struct {
	ctx   context.Context
	total int
	sent  int // steps of the current attempt sent so far
}

func (s *launchStepper) to(step int, detail string) {
	for s.sent < step {
		msg := launchSteps[s.sent]
		if s.sent == step-1 && detail != "" {
			msg += ": " + detail
		}
		reportProgress(s.ctx, s.total, msg)
		s.sent++
	}
}

// launchAndWait buys spec, waits for a usable instance, cleans up one that does not come up,
// and tries fallback offers as the arguments allow. It never returns an error: what happened
// is in the attempts, the first of which carries the vendor's error when the order failed.
func (d *Deps) launchAndWait(ctx context.Context, p providers.Provider, offer providers.Offer, spec providers.LaunchSpec, plan *Plan, in *LaunchArgs) (LaunchResult, string) {
	timeout, _ := parseWait("wait_timeout", in.WaitTimeout)
	total := len(launchSteps)
	if in.FallbackOffers > 0 || !in.waits() {
		total = 0
	}
	var out LaunchResult
	tried := map[string]bool{offer.ID: true}
	cur, curSpec := offer, spec
	for try := 0; ; try++ {
		step := &launchStepper{ctx: ctx, total: total}
		att, inst := d.launchOnce(ctx, p, cur, curSpec, in, timeout, step)
		out.Attempts = append(out.Attempts, att)
		if att.Result.usable() {
			out.InstanceID, out.OrderID, out.Instance = att.InstanceID, att.OrderID, inst
			out.Ready = att.Result == AttemptReady
			if inst != nil && inst.Connection != nil {
				out.SSHCommand = inst.Connection.SSHCommand
			}
			d.scheduleAutoStop(ctx, p, in, &out)
			break
		}
		retryable := att.Result == AttemptRefused || (att.Result == AttemptNotRunning && att.Billing == BillingNo)
		if !retryable || try >= in.FallbackOffers || ctx.Err() != nil {
			break
		}
		next, nextSpec, why := d.nextOffer(ctx, p, offer, plan, in, tried)
		if why != "" {
			out.Attempts = append(out.Attempts, LaunchAttempt{Result: AttemptSkipped, Detail: why, Billing: BillingNo})
			break
		}
		tried[next.ID] = true
		cur, curSpec = next, nextSpec
	}
	if !out.Attempts[len(out.Attempts)-1].Result.usable() {
		out.Status = StatusFailed
	}
	out.Billing = billingSummary(out.Attempts)
	return out, launchText(d, &out)
}

// launchOnce buys one instance and, if asked, waits for it and cleans it up when it fails.
func (d *Deps) launchOnce(ctx context.Context, p providers.Provider, offer providers.Offer, spec providers.LaunchSpec, in *LaunchArgs, timeout time.Duration, step *launchStepper) (LaunchAttempt, *providers.Instance) {
	att := LaunchAttempt{OfferID: offer.ID, Billing: BillingNo}
	res, err := p.Launch(ctx, spec)
	if err != nil {
		att.err, att.Detail = err, errorText(err)
		switch providers.KindOf(err) {
		case providers.KindUnknown:
			d.Offers.Invalidate(p.Name())
			att.Result, att.Billing = AttemptUnknown, BillingUnknown
		case providers.KindRejected, providers.KindConflict:
			att.Result = AttemptRefused
		default:
			att.Result = AttemptError
		}
		return att, nil
	}
	d.Offers.Invalidate(p.Name())
	att.OrderID, att.InstanceID = res.OrderID, res.InstanceID
	att.Billing = BillingYes
	inst := res.Instance
	step.to(1, strings.TrimSpace(strings.Join([]string{att.InstanceID, orderText(att.OrderID)}, " ")))
	if !in.waits() {
		att.Result = AttemptOrdered
		if inst == nil {
			if found, err := findInstance(ctx, p, res.InstanceID, res.OrderID); err == nil {
				inst = &found
				att.InstanceID = found.ID
			}
		}
		return att, inst
	}
	w := waiter{p: p, id: res.InstanceID, orderID: res.OrderID, until: UntilSSHReady, timeout: timeout,
		onState: func(i providers.Instance) {
			switch i.State {
			case providers.StatePending, providers.StateStarting, providers.StateRestarting:
				step.to(2, string(i.State))
			case providers.StateRunning:
				step.to(3, "")
			}
		}}
	got, reached, detail, werr := d.waitFor(ctx, w)
	if got.ID != "" {
		inst = &got
		att.InstanceID = got.ID
	}
	switch {
	case reached:
		step.to(4, detail)
		att.Result, att.Detail = AttemptReady, detail
		return att, inst
	case werr != nil:
		// The caller gave up: the instance was bought and may yet come up. The wait goes on
		// without it, and an instance that does not come up is cleaned up all the same.
		att.Result, att.Detail = AttemptOrdered, "the wait was cancelled ("+werr.Error()+"); the instance exists and bills; gpu-mcp keeps watching it and cleans it up if it does not come up"
		d.Log.Warn().Str("instance", att.InstanceID).Str("order", att.OrderID).Msg("launch wait cancelled by the client: watching the instance in the background")
		w.onState = func(providers.Instance) {}
		w.until = UntilRunning
		go d.finishAbandonedLaunch(p, w, att.InstanceID)
		return att, inst
	case inst != nil && inst.State == providers.StateRunning:
		att.Result, att.Detail = AttemptRunning, "running, but its SSH server did not answer: "+detail
		return att, inst
	}
	att.Result, att.Detail = AttemptNotRunning, detail
	att.Cleanup, att.Billing = d.cleanupLaunch(p, att.InstanceID, res.OrderID)
	if inst != nil {
		// Show the state after the cleanup, when it can still be read.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if after, err := p.GetInstance(rctx, inst.ID); err == nil {
			inst = &after
		}
		cancel()
	}
	return att, inst
}

// finishAbandonedLaunch waits for a launch whose caller went away; if the instance does not
// come up within the wait the caller asked for, it is cleaned up as if the caller had stayed.
func (d *Deps) finishAbandonedLaunch(p providers.Provider, w waiter, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout+time.Minute)
	defer cancel()
	if id != "" {
		w.id = id
	}
	inst, reached, detail, err := d.waitFor(ctx, w)
	log := d.Log.With().Str("instance", inst.ID).Str("order", w.orderID).Logger()
	if reached || (err == nil && inst.State == providers.StateRunning) {
		log.Info().Msg("abandoned launch: the instance is running and bills; see list_instances")
		return
	}
	cleanup, billing := d.cleanupLaunch(p, inst.ID, w.orderID)
	log.Warn().Str("why", detail).Str("cleanup", cleanup).Str("billing", string(billing)).Msg("abandoned launch did not come up: cleaned up")
	rec := AuditEntry{Time: time.Now().UTC(), Tool: "launch_cleanup", Confirmation: ConfirmedAtLaunch, Outcome: StatusDone,
		Detail: inst.ID + ": " + cleanup + "; billing: " + string(billing), Demo: d.Demo}
	if aerr := d.Audit.Record(ctx, rec); aerr != nil {
		log.Error().Err(aerr).Msg("audit log write failed")
	}
}

func orderText(id string) string {
	if id == "" {
		return ""
	}
	return "order " + id
}

// cleanupLaunch stops and destroys an instance that did not come up, as far as the vendor
// allows. It runs on its own deadline: the caller having gone must not leave it billing.
func (d *Deps) cleanupLaunch(p providers.Provider, id, orderID string) (string, BillingNow) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	inst, err := findInstance(ctx, p, id, orderID)
	if providers.KindOf(err) == providers.KindNotFound {
		if id == "" {
			return fmt.Sprintf("no instance of order %s is listed; if one appears later it bills: check list_instances", orderID), BillingUnknown
		}
		return "the instance no longer exists", BillingNo
	}
	if err != nil {
		return "could not read the instance to clean it up (" + errorText(err) + "); stop or destroy it with stop_instance or destroy_instance", BillingUnknown
	}
	log := d.Log.With().Str("instance", inst.ID).Logger()
	destroy := func() (string, BillingNow, bool) {
		if ok, _ := p.Capabilities().Supports(providers.ActionDestroy); !ok {
			return "", "", false
		}
		if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst}); err != nil {
			return "", "", false
		}
		if err := p.Destroy(ctx, inst.ID); err != nil {
			return "destroy failed (" + errorText(err) + "); destroy it with destroy_instance", BillingUnknown, true
		}
		log.Info().Msg("launch cleanup: destroyed")
		return "destroyed", BillingNo, true
	}
	if what, billing, done := destroy(); done {
		return what, billing
	}
	if inst.State != providers.StateStopped {
		if ok, why := p.Capabilities().Supports(providers.ActionStop); !ok {
			return "left as it is: " + why + "; it bills until the vendor ends it", BillingYes
		}
		if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionStop, Instance: inst}); err != nil {
			return "left as it is: " + p.Name() + " allows neither stopping nor destroying it now (" + errorText(err) + "); it may bill: check it with get_instance and destroy it when the vendor allows", BillingYes
		}
		if err := p.Stop(ctx, inst.ID); err != nil {
			return "stop failed (" + errorText(err) + "); it may bill: stop it with stop_instance", BillingUnknown
		}
		log.Info().Msg("launch cleanup: stopped")
		stopped, ok, _, _ := d.waitFor(ctx, waiter{p: p, id: inst.ID, until: UntilStopped, timeout: 2 * time.Minute, onState: func(providers.Instance) {}})
		if !ok {
			return "stop sent, but it was not reported stopped yet; check it with get_instance", BillingUnknown
		}
		inst = stopped
	}
	if what, billing, done := destroy(); done {
		return "stopped, then " + what, billing
	}
	_, why := p.Capabilities().Supports(providers.ActionDestroy)
	if why == "" {
		if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionDestroy, Instance: inst}); err != nil {
			why = errorText(err)
		}
	}
	return "stopped; not destroyed: " + why + "; its disk may still be billed", BillingStorageOnly
}

// nextOffer picks the cheapest untried offer the user's consent covers: same provider, GPU
// model and count, billing mode, available, the image usable with it, and no dearer than the
// plan approved (an unknown price only where the approved one was unknown too).
func (d *Deps) nextOffer(ctx context.Context, p providers.Provider, orig providers.Offer, plan *Plan, in *LaunchArgs, tried map[string]bool) (providers.Offer, providers.LaunchSpec, string) {
	offers, err := p.ListOffers(ctx)
	if err != nil {
		return providers.Offer{}, providers.LaunchSpec{}, "no fallback: the offers could not be read (" + errorText(err) + ")"
	}
	approved, approvedKnown := effectiveHourly(plan, max(in.Periods, 1))
	var cands []providers.Offer
	for _, o := range offers {
		if tried[o.ID] || o.GPUModel != orig.GPUModel || !o.Available || !slices.Contains(o.GPUCounts, plan.GPUCount) || !hasBilling(o.Billing, providers.BillingMode(plan.Billing)) {
			continue
		}
		cands = append(cands, o)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		pi, ki := cands[i].HourlyPrice(plan.GPUCount)
		pj, kj := cands[j].HourlyPrice(plan.GPUCount)
		if ki != kj {
			return ki
		}
		return pi < pj
	})
	skipped := []string{}
	for _, o := range cands {
		args := *in
		args.GPUCount = plan.GPUCount
		args.Billing = plan.Billing
		spec, cplan, err := launchPlan(o, &args)
		if err != nil {
			skipped = append(skipped, o.ID+": "+errorText(err))
			continue
		}
		price, known := effectiveHourly(cplan, spec.Periods)
		if known != approvedKnown || (known && price > approved+1e-9) {
			skipped = append(skipped, o.ID+": its price is not within the approved one")
			continue
		}
		if !d.imageFits(ctx, p, o, in.ImageID) {
			skipped = append(skipped, o.ID+": the image is not offered with it")
			continue
		}
		if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionLaunch, Launch: &spec}); err != nil {
			skipped = append(skipped, o.ID+": "+errorText(err))
			continue
		}
		if err := d.checkNewSpend(ctx, cplan, spec.Periods, ""); err != nil {
			skipped = append(skipped, o.ID+": "+errorText(err))
			continue
		}
		return o, spec, ""
	}
	why := "no other offer of " + p.Name() + " with " + orig.GPUModel + " is available within the approved price"
	if len(skipped) > 0 {
		why += " (" + strings.Join(skipped, "; ") + ")"
	}
	return providers.Offer{}, providers.LaunchSpec{}, why
}

// imageFits reports whether the image is listed for the offer.
func (d *Deps) imageFits(ctx context.Context, p providers.Provider, o providers.Offer, imageID string) bool {
	images, err := p.ListImages(ctx, providers.ImageQuery{OfferID: o.ID})
	if err != nil {
		return false
	}
	return slices.ContainsFunc(images, func(im providers.Image) bool { return im.ID == imageID })
}

// scheduleAutoStop arranges auto_stop_after: the vendor's timer where it has one, else this
// process's.
func (d *Deps) scheduleAutoStop(ctx context.Context, p providers.Provider, in *LaunchArgs, out *LaunchResult) {
	after, _ := parseAutoStop(in.AutoStopAfter)
	if after == 0 {
		return
	}
	if out.InstanceID == "" {
		out.AutoStop = nil
		out.Message = strings.TrimSpace(out.Message + " auto_stop_after could not be arranged: the instance is not listed yet; stop it with stop_instance when done.")
		return
	}
	at := time.Now().Add(after).Truncate(time.Second)
	if ss, ok := p.(providers.StopScheduler); ok {
		err := ss.ScheduleStop(ctx, out.InstanceID, at)
		if err == nil {
			out.AutoStop = &AutoStop{At: at, By: StopByVendor, Note: p.Name() + "'s shutdown timer stops it, whether or not gpu-mcp runs"}
			if out.Instance != nil && out.Instance.StopsAt == nil {
				out.Instance.StopsAt = &at
			}
			return
		}
		d.Log.Warn().Str("instance", out.InstanceID).Str("error", errorText(err)).Msg("vendor shutdown timer refused; gpu-mcp will stop the instance itself")
		d.stops.schedule(d, p, out.InstanceID, at)
		out.AutoStop = &AutoStop{At: at, By: StopByGPUMCP, Note: "the vendor's shutdown timer failed (" + errorText(err) + "); gpu-mcp stops it instead, but only while this gpu-mcp process runs"}
	} else {
		d.stops.schedule(d, p, out.InstanceID, at)
		out.AutoStop = &AutoStop{At: at, By: StopByGPUMCP, Note: p.Name() + " has no shutdown timer: gpu-mcp stops it, but only while this gpu-mcp process runs; if it ends first, the instance keeps billing"}
	}
	if out.Instance != nil {
		d.stops.overlay(out.Instance)
	}
}

// launchExtras are the plan's lines for waiting, fallbacks and auto-stop.
func launchExtras(p providers.Provider, plan *Plan, in *LaunchArgs) []string {
	var e []string
	if in.waits() {
		timeout, _ := parseWait("wait_timeout", in.WaitTimeout)
		e = append(e, fmt.Sprintf("waits up to %s for the instance to run and answer on SSH; if it is not running by then it is stopped and destroyed where %s allows (what remains is reported)", shortDuration(timeout), p.Name()))
	}
	if in.FallbackOffers > 0 {
		price := "at an unknown price, as this one"
		if h, ok := effectiveHourly(plan, max(in.Periods, 1)); ok {
			price = fmt.Sprintf("at no more than %.2f CNY per hour", h)
		}
		e = append(e, fmt.Sprintf("if this offer is sold out or its instance does not come up, up to %d other %s offers with %d x %s, billed %s, %s, may be bought instead (one at a time, each failed one cleaned up)",
			in.FallbackOffers, p.Name(), plan.GPUCount, plan.GPUModel, plan.Billing, price))
	}
	if after, _ := parseAutoStop(in.AutoStopAfter); after > 0 {
		if _, ok := p.(providers.StopScheduler); ok {
			e = append(e, fmt.Sprintf("stops automatically %s after launch, by %s's shutdown timer (or by gpu-mcp while it runs, where the timer refuses so short a time)", shortDuration(after), p.Name()))
		} else {
			e = append(e, fmt.Sprintf("is stopped by gpu-mcp %s after launch, but only while this gpu-mcp process runs: if it ends first, the instance keeps billing", shortDuration(after)))
		}
	}
	return e
}

func billingSummary(atts []LaunchAttempt) string {
	var parts []string
	for _, a := range atts {
		id := a.InstanceID
		if id == "" {
			id = orderText(a.OrderID)
		}
		switch a.Billing {
		case BillingYes:
			parts = append(parts, id+" bills")
		case BillingStorageOnly:
			parts = append(parts, id+" is stopped (its disk may still bill)")
		case BillingUnknown:
			if id == "" {
				id = "the order to " + a.OfferID
			}
			parts = append(parts, id+": unknown, check list_instances")
		}
	}
	if len(parts) == 0 {
		return "nothing: no instance of this call exists"
	}
	return strings.Join(parts, "; ")
}

func launchText(d *Deps, out *LaunchResult) string {
	var b strings.Builder
	last := out.Attempts[len(out.Attempts)-1]
	switch {
	case out.Ready:
		b.WriteString("Launched and ready. ")
	case out.InstanceID != "" && last.Result == AttemptRunning:
		b.WriteString("Launched; it runs, but SSH did not answer from here: " + last.Detail + ". ")
	case last.Result == AttemptOrdered:
		if out.InstanceID == "" {
			b.WriteString(fmt.Sprintf("Ordered (%s); the instance is not listed yet and bills once it exists: check list_instances or wait_instance. ", orderText(out.OrderID)))
		} else {
			b.WriteString("Ordered; not waited for: use wait_instance until=ssh_ready. ")
		}
	default:
		b.WriteString("No usable instance. ")
	}
	if out.SSHCommand != "" {
		b.WriteString("\nssh: " + out.SSHCommand)
		if out.Instance != nil && out.Instance.Connection != nil && out.Instance.Connection.SSHPassword != "" {
			b.WriteString("  (password: in instance.connection.ssh_password; a secret, show it only to the user)")
		}
	}
	if out.Instance != nil && out.Instance.Connection != nil {
		for _, u := range out.Instance.Connection.WebURLs {
			b.WriteString("\n" + u.Name + ": " + u.URL)
		}
	}
	if out.AutoStop != nil {
		b.WriteString(fmt.Sprintf("\nauto-stop at %s by %s", out.AutoStop.At.UTC().Format(time.RFC3339), out.AutoStop.By))
	}
	if len(out.Attempts) > 1 || !out.Ready {
		for i, a := range out.Attempts {
			fmt.Fprintf(&b, "\nattempt %d: %s %s", i+1, orDefault(a.OfferID, "-"), a.Result)
			if a.Detail != "" {
				b.WriteString(": " + a.Detail)
			}
			if a.Cleanup != "" {
				b.WriteString("; cleanup: " + a.Cleanup)
			}
		}
	}
	b.WriteString("\nbilling now: " + out.Billing)
	if out.Message != "" {
		b.WriteString("\n" + out.Message)
	}
	return b.String()
}

// shortDuration writes 2h rather than 2h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
