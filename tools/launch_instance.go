package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// LaunchArgs asks for a new instance.
type LaunchArgs struct {
	OfferID         string        `json:"offer_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"offer id from list_gpu_offers"`
	ImageID         string        `json:"image_id" jsonschema:"minLength=3,maxLength=512" jsonschema_description:"image id from list_images, of the same provider as the offer"`
	GPUCount        int           `json:"gpu_count,omitempty" jsonschema:"minimum=0,maximum=64" jsonschema_description:"GPUs in the instance; one of the offer's gpu_counts (default: the smallest)"`
	Billing         string        `json:"billing,omitempty" jsonschema:"enum=hourly,enum=daily,enum=weekly,enum=monthly" jsonschema_description:"billing mode; one of the offer's (default: hourly when offered)"`
	Periods         int           `json:"periods,omitempty" jsonschema:"minimum=0,maximum=36" jsonschema_description:"for daily, weekly or monthly billing: how many periods to prepay (default 1)"`
	Name            string        `json:"name,omitempty" jsonschema:"maxLength=64" jsonschema_description:"display name; gpu-mcp appends -gm-<8 hex> (from the idempotency key) to find the instance again"`
	IdempotencyKey  string        `json:"idempotency_key,omitempty" jsonschema:"maxLength=128" jsonschema_description:"optional key; a repeated launch with the same key and arguments returns the first result instead of buying again"`
	Wait            *bool         `json:"wait,omitempty" jsonschema_description:"wait until the instance runs and its SSH server answers, with progress notifications (default true); false returns once the vendor took the order"`
	WaitTimeout     string        `json:"wait_timeout,omitempty" jsonschema:"maxLength=16" jsonschema_description:"how long to wait for a usable instance, e.g. \"10m\" (default 5m, 5s to 30m); an instance that is not running by then is cleaned up"`
	FallbackOffers  int           `json:"fallback_offers,omitempty" jsonschema:"minimum=0,maximum=5" jsonschema_description:"when the offer is sold out or its instance does not come up: how many other offers of the same provider, GPU model and count, at no higher price, to try (default 0)"`
	AutoStopAfter   string        `json:"auto_stop_after,omitempty" jsonschema:"maxLength=16" jsonschema_description:"stop the instance this long after it came up, e.g. \"2h\" (5s to 720h, at most the server's GPU_MCP_MAX_LEASE; default its GPU_MCP_DEFAULT_AUTO_STOP, if set); kept in gpu-mcp's state store, it holds after gpu-mcp exits: the vendor's shutdown timer where it has one, else any gpu-mcp process (or gpu-mcp reap) that runs carries it out"`
	StopWhenGPUIdle *IdleStopArgs `json:"stop_when_gpu_idle,omitempty" jsonschema_description:"also stop the instance once every GPU stayed under below_pct utilization for the window for (e.g. {\"below_pct\": 5, \"for\": \"30m\"}), watched over SSH by gpu-mcp with no client connected; needs wait=true"`
	Confirm
}

// validName reports whether s is 1 to 64 letters (of any script), digits, spaces, dots, dashes
// or underscores, starting with a letter or digit. (A regular expression with \p{L} would say
// the same, but compiling one costs milliseconds and megabytes at every start.)
func validName(s string) bool {
	n := 0
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsNumber(r) && (n == 0 || !strings.ContainsRune(" ._-", r)) {
			return false
		}
		n++
	}
	return n >= 1 && n <= 64
}

func (a *LaunchArgs) validate() error {
	if a.IdempotencyKey != "" && (strings.TrimSpace(a.IdempotencyKey) != a.IdempotencyKey || strings.ContainsFunc(a.IdempotencyKey, unicode.IsControl)) {
		return badArg("idempotency_key", a.IdempotencyKey, "a key without leading or trailing spaces or control characters (or none)")
	}
	if a.Name != "" && !validName(a.Name) {
		return badArg("name", a.Name, "1 to 64 letters, digits, spaces, dots, dashes or underscores, starting with a letter or digit")
	}
	if a.Billing == string(providers.BillingHourly) && a.Periods > 0 {
		return argInvalid("periods", a.Periods, "periods applies to daily, weekly or monthly billing only",
			"leave periods out: hourly billing runs until the instance is destroyed")
	}
	if _, err := parseWait("wait_timeout", a.WaitTimeout); err != nil {
		return err
	}
	if a.WaitTimeout != "" && !a.waits() {
		return argInvalid("wait_timeout", a.WaitTimeout, "wait_timeout applies only when wait is true", "leave wait_timeout out, or set wait to true")
	}
	if a.FallbackOffers > 0 && !a.waits() {
		return argInvalid("fallback_offers", a.FallbackOffers, "fallback_offers needs wait=true: whether an instance came up is only known by waiting for it",
			"set wait to true, or leave fallback_offers out")
	}
	if a.StopWhenGPUIdle != nil {
		if _, err := a.StopWhenGPUIdle.policy(); err != nil {
			return err
		}
		if !a.waits() {
			return invalidf("stop_when_gpu_idle needs wait=true: the idle watch starts on the instance once it runs")
		}
	}
	_, err := parseAutoStop(a.AutoStopAfter)
	return err
}

func (a *LaunchArgs) waits() bool { return a.Wait == nil || *a.Wait }

// LaunchResult is launch_instance's answer.
type LaunchResult struct {
	Outcome
	Pending
	InstanceID string              `json:"instance_id,omitempty" jsonschema_description:"when the vendor already shows it"`
	OrderID    string              `json:"order_id,omitempty"`
	Ready      bool                `json:"ready" jsonschema_description:"running and SSH answers"`
	SSHCommand string              `json:"ssh_command,omitempty" jsonschema_description:"the password, if any: instance.connection.ssh_password (a secret)"`
	Instance   *providers.Instance `json:"instance,omitempty" jsonschema_description:"as in get_instance"`
	AutoStop   *fleet.AutoStop     `json:"auto_stop,omitempty"`
	IdleStop   *WorkLease          `json:"idle_stop,omitempty" jsonschema_description:"the stop when the GPUs stay idle (stop_when_gpu_idle), kept in gpu-mcp's state store"`
	Attempts   []fleet.Attempt     `json:"attempts,omitempty" jsonschema_description:"each offer tried, its fate, its cleanup"`
	Billing    string              `json:"billing_now,omitempty" jsonschema_description:"what this call left billing"`
}

func launchInstance(d *Deps) Tool {
	t := guardedTool(d, actionTool[providers.ActionLaunch], "Launch instance",
		"Rent a new GPU instance from an offer and an image. SPENDS MONEY: billing starts when the vendor creates it. Called without confirm_token it only returns the plan (price, GPUs, billing) and a token; show the plan to the user and call again with the token only after they approve. Then it waits (wait, wait_timeout) until the instance runs and SSH answers, with progress notifications, and returns the ssh command; an instance that does not come up is stopped and destroyed where the vendor allows, and the result says what still exists and bills. A launch that outlives the call budget answers status pending with an operation_id: it goes on, and get_operation follows it. Optional: fallback_offers, auto_stop_after.",
		Hints{Destructive: true, OpenWorld: true},
		func(ctx context.Context, in *LaunchArgs) (*prepared[LaunchResult], error) {
			b, _ := json.Marshal(in)
			argsKey := argsDigest(b)
			if in.IdempotencyKey != "" {
				prior, err := d.Fleet.Lookup(ctx, in.IdempotencyKey, argsKey)
				if err != nil {
					return nil, err
				}
				if prior != nil {
					return d.repeatedLaunch(ctx, in.IdempotencyKey, prior)
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
				return nil, argInvalid("image_id", in.ImageID, fmt.Sprintf("image_id %s belongs to %s but offer_id %s to %s", in.ImageID, ip.Name(), in.OfferID, p.Name()),
					"list the images of the offer's provider with list_images offer_id="+in.OfferID)
			}
			if ok, why := p.Capabilities().Supports(providers.ActionLaunch); !ok {
				return nil, providers.Unsupported(p.Name(), providers.ActionLaunch, why)
			}
			autoStop, source, err := d.autoStopFor(in)
			if err != nil {
				return nil, err
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
			plan.Effects = append(plan.Effects, launchExtras(p, plan, in, autoStop, source, d.CallBudget())...)
			timeout, _ := parseWait("wait_timeout", in.WaitTimeout)
			// An operation's launch is keyed by the operation, so that the process that adopts
			// the operation after a restart finds the launch in the ledger.
			key := in.IdempotencyKey
			if key == "" {
				key = opID(ctx)
			}
			if key == "" {
				key = fleet.NewKey()
			}
			req := fleet.LaunchRequest{Key: key, ArgsHash: argsKey, Offer: offer, Spec: spec, Wait: in.waits(), WaitTimeout: timeout,
				Fallbacks: in.FallbackOffers, Vet: d.fallbackVet(plan, in, autoStop, key), AutoStop: autoStop}
			if in.StopWhenGPUIdle != nil {
				policy, _ := in.StopWhenGPUIdle.policy() // validated with the arguments
				req.IdleStop = &policy
			}
			req.Rehold = func(ctx context.Context, o providers.Offer, _ providers.LaunchSpec) (string, error) {
				fspec, fplan, err := fallbackPlan(o, plan, in)
				if err != nil {
					return "", err
				}
				return d.holdSpend(ctx, launchSpending(fplan, fspec, autoStop, key))
			}
			spend := launchSpending(plan, spec, autoStop, key)
			return &prepared[LaunchResult]{plan: plan, spend: spend, run: func(ctx context.Context) (LaunchResult, string, error) {
				req.Hold = spend.hold
				if err := noteOp(ctx, func(r *opRecord) { r.Plan = plan }); err != nil {
					return LaunchResult{}, "", storeFailed("record the launch's operation", err)
				}
				req.Progress = func(total int, msg string) { reportProgress(ctx, total, msg) }
				o, err := d.Fleet.Launch(ctx, req)
				if err != nil {
					return LaunchResult{}, "", err
				}
				out := launchResult(o)
				return out, launchText(&out), nil
			}}, nil
		})
	return d.long(t, opLaunch, func(json.RawMessage) any { return LaunchResult{Outcome: Outcome{Demo: d.Demo}} }, nil)
}

// launchResult is the fleet's outcome of a launch as the tool answers it.
func launchResult(o fleet.Outcome) LaunchResult {
	out := LaunchResult{InstanceID: o.InstanceID, OrderID: o.OrderID, Ready: o.Ready, SSHCommand: o.SSHCommand, Instance: o.Instance,
		AutoStop: o.AutoStop, Attempts: o.Attempts, Billing: o.Billing}
	if l := o.IdleLease; l != nil {
		out.IdleStop = &WorkLease{Kind: string(l.Kind), Action: string(l.Action), When: idleWhen(*l)}
	}
	if o.Failed {
		out.Status = StatusFailed
	}
	out.Message = strings.Join(o.Notes, " ")
	return out
}

// launchSpending is what a launch of plan adds to the spending: its price while it bills (a
// prepaid plan's hourly equivalent), and what it commits: a prepaid plan's charge, or its price
// for the hours of its auto-stop (24 without one).
func launchSpending(plan *Plan, spec providers.LaunchSpec, autoStop time.Duration, key string) *spending {
	s := &spending{kind: state.CommitLaunch, what: "launch", provider: plan.Provider, launchKey: key, gpus: plan.GPUCount, bills: true}
	if h, ok := effectiveHourly(plan, spec.Periods); ok {
		s.price = &h
	}
	if spec.Billing != providers.BillingHourly {
		s.prepaid, s.upfront, s.cost = true, true, plan.PeriodCost
		return s
	}
	s.hours, s.hoursWhy = noEndHours, "24 h, as it has no auto-stop"
	if autoStop > 0 {
		s.hours, s.hoursWhy = autoStop.Hours(), "its "+fleet.ShortDuration(autoStop)+" auto-stop"
	}
	return s
}

// fallbackPlan is the plan a fallback offer o would have under the approved plan's GPUs and
// billing.
func fallbackPlan(o providers.Offer, plan *Plan, in *LaunchArgs) (providers.LaunchSpec, *Plan, error) {
	args := *in
	args.GPUCount = plan.GPUCount
	args.Billing = plan.Billing
	return launchPlan(o, &args)
}

// fallbackVet says whether the user's approval covers a fallback offer: the plan it would
// have, at no higher price than the approved one, within the spending limits as they stand
// (the buy itself is held by the launch's Rehold, in one step with the limits' check).
func (d *Deps) fallbackVet(plan *Plan, in *LaunchArgs, autoStop time.Duration, key string) func(context.Context, providers.Offer) (providers.LaunchSpec, error) {
	approved, approvedKnown := effectiveHourly(plan, max(in.Periods, 1))
	return func(ctx context.Context, o providers.Offer) (providers.LaunchSpec, error) {
		spec, cplan, err := fallbackPlan(o, plan, in)
		if err != nil {
			return spec, err
		}
		price, known := effectiveHourly(cplan, spec.Periods)
		if known != approvedKnown || (known && price > approved+1e-9) {
			return spec, errors.New("its price is not within the approved one")
		}
		return spec, d.previewSpend(ctx, launchSpending(cplan, spec, autoStop, key), cplan)
	}
}

// repeatedLaunch answers a launch whose idempotency key was seen before, without buying.
func (d *Deps) repeatedLaunch(ctx context.Context, key string, prior *fleet.Prior) (*prepared[LaunchResult], error) {
	if prior.Outcome == nil {
		msg := fmt.Sprintf("the launch with idempotency_key %q is still in progress or its outcome is unknown; nothing was bought again", key)
		if prior.Error != "" {
			msg += " (" + prior.Error + ")"
		}
		return nil, &providers.Error{Kind: providers.KindConflict, Provider: "gpu-mcp", Op: "launch", Message: msg, Remedy: "check list_instances"}
	}
	out := launchResult(*prior.Outcome)
	if out.InstanceID != "" {
		// As it is now, with its connection details, which the ledger does not keep.
		if p, err := d.resolve(out.InstanceID, "instance_id"); err == nil {
			if inst, err := p.GetInstance(ctx, out.InstanceID); err == nil {
				inst = d.annotated(ctx, inst)
				out.Instance = &inst
			}
		}
	}
	out.Message = fmt.Sprintf("a launch with idempotency_key %q already ran; this is its result and nothing was bought again", key)
	return &prepared[LaunchResult]{noop: out.Message + ". " + launchText(&out), noopOut: out}, nil
}

// parseAutoStop reads auto_stop_after ("" means none).
func parseAutoStop(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < fleet.MinAutoStop || v > fleet.MaxAutoStop {
		return 0, badArg("auto_stop_after", s, `a duration from 5s to 720h, e.g. "90m" or "8h"`)
	}
	return v, nil
}

// autoStopFor is the lease a launch gets: its auto_stop_after, else GPU_MCP_DEFAULT_AUTO_STOP,
// else GPU_MCP_MAX_LEASE; source names the setting that chose it ("" for the argument). One
// longer than GPU_MCP_MAX_LEASE is refused.
func (d *Deps) autoStopFor(in *LaunchArgs) (time.Duration, string, error) {
	after, err := parseAutoStop(in.AutoStopAfter)
	if err != nil {
		return 0, "", err
	}
	ceiling := d.Fleet.MaxLease()
	switch {
	case after > 0 && ceiling > 0 && after > ceiling:
		return 0, "", limitError("auto_stop_after %s is longer than the longest lease allowed, %s (GPU_MCP_MAX_LEASE)", fleet.ShortDuration(after), fleet.ShortDuration(ceiling))
	case after > 0:
		return after, "", nil
	case d.Fleet.DefaultAutoStop() > 0:
		return d.Fleet.DefaultAutoStop(), "GPU_MCP_DEFAULT_AUTO_STOP", nil
	case ceiling > 0:
		return ceiling, "GPU_MCP_MAX_LEASE", nil
	}
	return 0, "", nil
}

// launchPlan checks the request against the offer and describes it.
func launchPlan(o providers.Offer, in *LaunchArgs) (providers.LaunchSpec, *Plan, error) {
	count := in.GPUCount
	if count == 0 {
		count = gpusFor(&o, 1)
	}
	if !slices.Contains(o.GPUCounts, count) {
		e := argInvalid("gpu_count", count, fmt.Sprintf("offer %s has no gpu_count %d", o.ID, count), "use "+intsText(o.GPUCounts))
		e.Accepted = intsText(o.GPUCounts)
		return providers.LaunchSpec{}, nil, e
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
		e := argInvalid("billing", string(billing), fmt.Sprintf("offer %s cannot be billed %s", o.ID, billing),
			fmt.Sprintf("use %s, or find offers billed %s with list_gpu_offers billing=%s", orList(modes), billing, billing))
		e.Accepted = orList(modes)
		return providers.LaunchSpec{}, nil, e
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
			plan.Effects = append(plan.Effects, fmt.Sprintf("billing starts when the instance is created: %.2f CNY/h (%.2f CNY/day) until it is stopped or destroyed", *plan.PricePerHour, *plan.PricePerHour*24))
		} else {
			plan.Effects = append(plan.Effects, "billing starts when the instance is created, by the hour until it is stopped or destroyed, at a price "+o.Provider+" does not publish")
		}
	} else {
		if p, ok := o.PeriodPrice(billing); ok {
			cost := p * float64(count) * float64(periods)
			plan.PeriodCost = &cost
			plan.Effects = append(plan.Effects, fmt.Sprintf("prepays %d %s period(s) now: %.2f CNY", periods, billing, cost))
		} else {
			plan.Effects = append(plan.Effects, fmt.Sprintf("prepays %d %s period(s) now, at a price %s does not publish", periods, billing, o.Provider))
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

// launchExtras are the plan's lines for waiting, fallbacks and the auto-stop. source names the
// setting that chose the auto-stop, when the arguments did not.
func launchExtras(p providers.Provider, plan *Plan, in *LaunchArgs, autoStop time.Duration, source string, budget time.Duration) []string {
	var e []string
	if in.waits() {
		timeout, _ := parseWait("wait_timeout", in.WaitTimeout)
		e = append(e, fmt.Sprintf("waits up to %s for the instance to run and answer on SSH; if it is not running by then it is stopped and destroyed where %s allows (what remains is reported)", fleet.ShortDuration(timeout), p.Name()))
		if timeout > budget {
			e = append(e, fmt.Sprintf("the launch may take up to %s, longer than one call may block (%s, GPU_MCP_CALL_BUDGET): if it is not done by then, the agent is handed a handle (operation_id) and the launch goes on in the background, also if the agent's client gives up, until it is ready or cleaned up; the agent follows it with get_operation", fleet.ShortDuration(timeout), fleet.ShortDuration(budget)))
		}
	}
	if in.FallbackOffers > 0 {
		price := "at an unknown price, as this one"
		if h, ok := effectiveHourly(plan, max(in.Periods, 1)); ok {
			price = fmt.Sprintf("at no more than %.2f CNY per hour", h)
		}
		e = append(e, fmt.Sprintf("if this offer is sold out or its instance does not come up, up to %d other %s offers with %d x %s, billed %s, %s, may be bought instead (one at a time, each failed one cleaned up)",
			in.FallbackOffers, p.Name(), plan.GPUCount, plan.GPUModel, plan.Billing, price))
	}
	if autoStop > 0 {
		e = append(e, autoStopEffect(p, autoStop, source))
	}
	if idle := in.StopWhenGPUIdle; idle != nil {
		e = append(e, fmt.Sprintf("is stopped by gpu-mcp once every GPU stayed under %d%% utilization for %s (nvidia-smi over SSH at each pass of its reconciler, whenever any gpu-mcp process or `gpu-mcp reap` runs)", idle.BelowPct, idle.For))
	}
	return e
}

// autoStopEffect says the truth about an auto-stop: durable on every vendor, by whom, and
// what happens when no gpu-mcp process runs.
func autoStopEffect(p providers.Provider, after time.Duration, source string) string {
	set := ""
	if source != "" {
		set = " (set by the server's " + source + ")"
	}
	if _, ok := p.(providers.StopScheduler); ok {
		return fmt.Sprintf("stops automatically %s after it came up%s, by %s's shutdown timer, whether or not gpu-mcp runs; gpu-mcp checks afterwards that it did, and stops it itself where the timer refuses so short a time (then as below for vendors without a timer: whenever any gpu-mcp process runs, or gpu-mcp reap from cron)",
			fleet.ShortDuration(after), set, p.Name())
	}
	return fmt.Sprintf("is stopped %s after it came up%s by gpu-mcp: %s has no shutdown timer, so gpu-mcp's reconciler does it whenever any gpu-mcp process runs, or `gpu-mcp reap` from cron; with no gpu-mcp process running and no reap scheduled, the stop happens at the next start of gpu-mcp, and the instance bills until then",
		fleet.ShortDuration(after), set, p.Name())
}

func launchText(out *LaunchResult) string {
	var b strings.Builder
	last := out.Attempts[len(out.Attempts)-1]
	switch {
	case out.Ready:
		b.WriteString("Launched and ready. ")
	case out.InstanceID != "" && last.Result == fleet.AttemptRunning:
		b.WriteString("Launched; it runs, but SSH did not answer from here: " + last.Detail + ". ")
	case last.Result == fleet.AttemptOrdered:
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
	if out.IdleStop != nil {
		b.WriteString("\nauto-stop " + out.IdleStop.When)
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

func orderText(id string) string {
	if id == "" {
		return ""
	}
	return "order " + id
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
