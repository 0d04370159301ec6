package fleet

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// LaunchRequest is a launch the user approved.
type LaunchRequest struct {
	// Key is the launch's idempotency key ("" generates one); ArgsHash digests the arguments
	// the key is bound to.
	Key, ArgsHash string
	Offer         providers.Offer
	// Spec is what was approved, with qualified ids; Spec.Name is the agent's name, to which
	// the vendor name (VendorName) is added.
	Spec providers.LaunchSpec
	// Wait: wait until the instance runs and SSH answers, at most WaitTimeout, and clean up
	// an instance that does not come up by then.
	Wait        bool
	WaitTimeout time.Duration
	// Fallbacks is how many other offers may be tried when this one is sold out or does not
	// come up; Vet says whether the user's approval covers one (the spec to buy it with), or
	// why not.
	Fallbacks int
	Vet       func(ctx context.Context, o providers.Offer) (providers.LaunchSpec, error)
	// Hold is the spending room the guard holds for the first attempt (see Reserve); Rehold
	// holds it for a fallback offer, in the same one step as the check of every limit, or
	// says why not. The launch attaches each hold to its instance and ends it when the
	// attempt leaves nothing billing.
	Hold   string
	Rehold func(ctx context.Context, o providers.Offer, spec providers.LaunchSpec) (string, error)
	// AutoStop, when positive, stops (or with AutoStopAction destroy, destroys) the instance
	// this long after it came up, by a lease in the state store.
	AutoStop       time.Duration
	AutoStopAction state.LeaseAction
	// IdleStop, when set, also stops the instance once its GPUs stay idle (a lease on its work,
	// fleet/work), put on the instance once it is usable, by this process or by the one that
	// sees the launch through.
	IdleStop *work.IdlePolicy
	// Progress, when set, is told each step of the launch; total is 0 when unknown.
	Progress func(total int, message string)
}

// Progress steps of one launch; with fallbacks the count goes on past them.
var launchSteps = []string{"ordered", "starting", "running", "ssh ready"}

// stepper sends a launch's progress in order, each step once.
type stepper struct {
	progress func(int, string)
	total    int
	sent     int // steps of the current attempt sent so far
}

func (s *stepper) to(step int, detail string) {
	for s.sent < step {
		msg := launchSteps[s.sent]
		if s.sent == step-1 && detail != "" {
			msg += ": " + detail
		}
		if s.progress != nil {
			s.progress(s.total, msg)
		}
		s.sent++
	}
}

// Launch buys what req says, waits for a usable instance, cleans up one that does not come
// up, tries fallback offers as req allows, and arranges the auto-stop. Its ledger entry is
// written before the vendor is called and after each step, so that another process can see
// the launch through if this one ends. The error is the vendor's when the only order failed
// (nothing was bought, or its outcome is unknown), or that of a key another launch holds;
// otherwise what happened is in the Outcome's attempts.
func (f *Fleet) Launch(ctx context.Context, req LaunchRequest) (Outcome, error) {
	p, err := f.o.Providers.Get(req.Offer.Provider)
	if err != nil {
		return Outcome{}, err
	}
	if cancelled(ctx) {
		return Outcome{Failed: true, Billing: billingSummary(nil),
			Attempts: []Attempt{{OfferID: req.Offer.ID, Result: AttemptCancelled, Detail: "cancelled at the user's request before anything was bought", Billing: BillingNo}}}, nil
	}
	key := req.Key
	if key == "" {
		key = NewKey()
	}
	r := &record{Spec: req.Spec, GPUModel: req.Offer.GPUModel, Wait: req.Wait, WaitFor: req.WaitTimeout, Attempt: 1, Started: f.now()}
	if req.AutoStop > 0 {
		r.AutoStop = &leaseTerms{After: req.AutoStop, Action: orStop(req.AutoStopAction)}
	}
	if req.IdleStop != nil {
		r.IdleStop = &idleTerms{Policy: *req.IdleStop}
	}
	entry := state.Launch{Key: key, ArgsHash: req.ArgsHash, Provider: p.Name(), OfferID: req.Spec.OfferID, ImageID: req.Spec.ImageID,
		VendorName: VendorName(key, req.Spec.Name, 1), Status: state.LaunchIntent, Owner: f.o.Owner, Result: r.encode()}
	existing, err := f.o.Store.CreateLaunch(ctx, entry)
	if err != nil {
		return Outcome{}, storeError("record the launch before buying", err)
	}
	if existing != nil {
		// A key under which nothing was bought is free again; any other is taken.
		_, _, err := f.write(ctx, key, func(l *state.Launch, old *record) error {
			if !freed(l, old) {
				return keyTaken(key)
			}
			*l, *old = entry, *r
			return nil
		})
		if err != nil {
			if providers.KindOf(err) == providers.KindConflict {
				return Outcome{}, err
			}
			return Outcome{}, storeError("record the launch before buying", err)
		}
	}
	release := f.own(key)
	defer release()

	out, handed := f.attempts(ctx, p, key, req, r)
	first := out.Attempts[0]
	if len(out.Attempts) == 1 && first.err != nil {
		// Nothing was bought, and the key is free again; or the outcome is unknown, and the
		// reconciler looks for the instance by its name.
		status := state.LaunchFailed
		if providers.KindOf(first.err) == providers.KindUnknown {
			status = state.LaunchUnknown
		}
		f.note(key, func(l *state.Launch, rec *record) {
			l.Status, l.Error, l.Owner = status, errorText(first.err), ""
			rec.Outcome = nil
		})
		return Outcome{}, first.err
	}
	f.note(key, func(l *state.Launch, rec *record) {
		if handed {
			// The goroutine that follows the launch records its end, which may be written
			// already; until then a repeat of the launch gets this answer.
			if slices.Contains(inFlight, l.Status) {
				rec.Outcome = withoutPasswords(out)
			}
			return
		}
		rec.Outcome, rec.Attempts = withoutPasswords(out), out.Attempts[:len(out.Attempts)-1]
		if rec.AutoStop != nil && out.AutoStop != nil {
			rec.AutoStop.Applied = true
		}
		if rec.IdleStop != nil && out.IdleLease != nil {
			rec.IdleStop.Applied = true
		}
		l.Status = finalStatus(&out)
		if l.Status == state.LaunchOrdered || l.Status == state.LaunchUnknown {
			l.Owner = "" // the reconciler goes on looking for the instance
		}
	})
	return out, nil
}

func orStop(a state.LeaseAction) state.LeaseAction {
	if a == "" {
		return state.ActionStop
	}
	return a
}

// finalStatus is the ledger status of a launch that came to out.
func finalStatus(out *Outcome) state.LaunchStatus {
	last := out.Attempts[len(out.Attempts)-1]
	switch {
	case last.Result.Usable() && out.InstanceID == "":
		return state.LaunchOrdered
	case last.Result.Usable():
		return state.LaunchReady
	case last.Result == AttemptUnknown:
		return state.LaunchUnknown
	}
	for _, a := range out.Attempts {
		if a.Cleanup != "" {
			return state.LaunchCleanedUp
		}
	}
	return state.LaunchFailed
}

// withoutPasswords is out as the ledger keeps it: no SSH password.
func withoutPasswords(out Outcome) *Outcome {
	out.Instance = withoutSecrets(out.Instance)
	return &out
}

// attempts runs the launch's attempts: the approved offer, then fallbacks as req allows. It
// reports whether the last attempt was handed to a goroutine that follows it (its client
// stopped waiting).
func (f *Fleet) attempts(ctx context.Context, p providers.Provider, key string, req LaunchRequest, r *record) (Outcome, bool) {
	total := len(launchSteps)
	if req.Fallbacks > 0 || !req.Wait {
		total = 0
	}
	var out Outcome
	tried := map[string]bool{req.Offer.ID: true}
	cur, curSpec := req.Offer, req.Spec
	hold := req.Hold
	handed := false
	for try := 0; ; try++ {
		n := try + 1
		curSpec.Name = VendorName(key, req.Spec.Name, n)
		if try > 0 {
			done := slices.Clone(out.Attempts)
			f.note(key, func(l *state.Launch, rec *record) {
				l.Status, l.OfferID, l.ImageID = state.LaunchIntent, curSpec.OfferID, curSpec.ImageID
				l.InstanceID, l.OrderID = "", ""
				rec.Spec, rec.GPUModel, rec.Attempt, rec.Started, rec.Attempts = curSpec, cur.GPUModel, n, f.now(), done
			})
		}
		step := &stepper{progress: req.Progress, total: total}
		var att Attempt
		var inst *providers.Instance
		att, inst, handed = f.launchOnce(ctx, p, key, cur, curSpec, req, step, hold)
		out.Attempts = append(out.Attempts, att)
		if att.Result.Usable() {
			out.InstanceID, out.OrderID, out.Instance = att.InstanceID, att.OrderID, inst
			out.Ready = att.Result == AttemptReady
			if inst != nil && inst.Connection != nil {
				out.SSHCommand = inst.Connection.SSHCommand
			}
			if handed {
				if r.AutoStop != nil || r.IdleStop != nil {
					out.note("the auto-stop is arranged once the instance runs")
				}
			} else {
				f.arrangeAutoStop(ctx, p, key, r.AutoStop, &out)
				f.arrangeIdleStop(ctx, key, r.IdleStop, &out)
			}
			break
		}
		retryable := att.Result == AttemptRefused || (att.Result == AttemptNotRunning && att.Billing == BillingNo)
		if !retryable || try >= req.Fallbacks || ctx.Err() != nil || req.Vet == nil {
			break
		}
		next, nextSpec, why := f.nextOffer(ctx, p, req, tried)
		if why != "" {
			out.Attempts = append(out.Attempts, Attempt{Result: AttemptSkipped, Detail: why, Billing: BillingNo})
			break
		}
		tried[next.ID] = true
		if req.Rehold != nil {
			h, err := req.Rehold(ctx, next, nextSpec)
			if err != nil {
				out.Attempts = append(out.Attempts, Attempt{OfferID: next.ID, Result: AttemptSkipped, Detail: "not bought: " + errorText(err), Billing: BillingNo})
				break
			}
			hold = h
		}
		cur, curSpec = next, nextSpec
	}
	out.settle()
	return out, handed
}

// launchOnce buys one instance and, if asked, waits for it and cleans it up when it fails.
// When the caller stops waiting, a goroutine of the Fleet follows the instance on (and the
// result says so). hold is the attempt's spending hold: it follows the instance, and ends
// when the attempt leaves nothing billing.
func (f *Fleet) launchOnce(ctx context.Context, p providers.Provider, key string, offer providers.Offer, spec providers.LaunchSpec, req LaunchRequest, step *stepper, hold string) (Attempt, *providers.Instance, bool) {
	att := Attempt{OfferID: offer.ID, Billing: BillingNo}
	if cancelled(ctx) {
		att.Result, att.Detail = AttemptCancelled, "cancelled at the user's request before anything was bought"
		return att, nil, false
	}
	// The buy is sent once and never cut short: a buy whose answer is lost leaves an
	// instance of unknown fate, and a cancellation is carried out once the answer is in.
	res, err := p.Launch(context.WithoutCancel(ctx), spec)
	if err != nil {
		att.err, att.Detail = err, errorText(err)
		switch providers.KindOf(err) {
		case providers.KindUnknown:
			f.bought(p.Name())
			att.Result, att.Billing = AttemptUnknown, BillingUnknown
		case providers.KindRejected, providers.KindConflict:
			att.Result = AttemptRefused
		default:
			att.Result = AttemptError
		}
		if att.Billing == BillingNo {
			f.EndHold(hold, true)
		}
		return att, nil, false
	}
	if f.o.AfterBuy != nil {
		f.o.AfterBuy()
	}
	f.bought(p.Name())
	att.OrderID, att.InstanceID = res.OrderID, res.InstanceID
	att.Billing = BillingYes
	f.AttachHold(hold, att.InstanceID)
	f.noteIDs(key, att.InstanceID, att.OrderID)
	inst := res.Instance
	step.to(1, strings.TrimSpace(strings.Join([]string{att.InstanceID, orderText(att.OrderID)}, " ")))
	if cancelled(ctx) {
		return att, f.cancelAttempt(p, &att, "while the vendor took the order"), false
	}
	if !req.Wait {
		att.Result = AttemptOrdered
		if inst == nil {
			if found, err := findInstance(ctx, p, res.InstanceID, res.OrderID); err == nil {
				inst = &found
				att.InstanceID = found.ID
				f.noteIDs(key, att.InstanceID, att.OrderID)
				f.AttachHold(hold, att.InstanceID)
			}
		}
		return att, inst, false
	}
	w := Waiter{Provider: p, ID: res.InstanceID, OrderID: res.OrderID, Until: UntilSSHReady, Timeout: req.WaitTimeout,
		OnState: func(i providers.Instance) {
			switch i.State {
			case providers.StatePending, providers.StateStarting, providers.StateRestarting:
				step.to(2, string(i.State))
			case providers.StateRunning:
				step.to(3, "")
			}
		}}
	got, werr := f.Wait(ctx, w)
	if got.Instance.ID != "" {
		inst = &got.Instance
		if att.InstanceID == "" {
			att.InstanceID = got.Instance.ID
			f.noteIDs(key, att.InstanceID, att.OrderID)
			f.AttachHold(hold, att.InstanceID)
		}
	}
	switch {
	case cancelled(ctx):
		// Also when it came up meanwhile: the user asked for it to be gone.
		if after := f.cancelAttempt(p, &att, "while it came up"); after != nil {
			inst = after
		}
		return att, inst, false
	case got.Reached:
		step.to(4, got.Detail)
		att.Result, att.Detail = AttemptReady, got.Detail
		return att, inst, false
	case werr != nil:
		// The caller gave up: the instance was bought and may yet come up. It is followed on
		// without the caller, and cleaned up all the same if it does not come up.
		att.Result, att.Detail = AttemptOrdered, "the wait was cancelled ("+werr.Error()+"); the instance exists and bills; gpu-mcp keeps watching it and cleans it up if it does not come up"
		f.log.Warn().Str("instance", att.InstanceID).Str("order", att.OrderID).Msg("launch wait cancelled by the client: watching the instance in the background")
		f.follow(p, key)
		return att, inst, true
	case inst != nil && inst.State == providers.StateRunning:
		att.Result, att.Detail = AttemptRunning, "running, but its SSH server did not answer: "+got.Detail
		return att, inst, false
	}
	att.Result, att.Detail = AttemptNotRunning, got.Detail
	att.Cleanup, att.Billing = f.cleanupLaunch(p, att.InstanceID, res.OrderID)
	if att.Billing == BillingNo {
		f.EndHold(hold, false)
	}
	if inst != nil {
		// Show the state after the cleanup, when it can still be read.
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if after, err := p.GetInstance(rctx, inst.ID); err == nil {
			inst = &after
		}
		cancel()
	}
	return att, inst, false
}

func (f *Fleet) bought(provider string) {
	if f.o.Bought != nil {
		f.o.Bought(provider)
	}
}

// noteIDs records what the vendor named of a launch's instance.
func (f *Fleet) noteIDs(key, instanceID, orderID string) {
	f.note(key, func(l *state.Launch, _ *record) {
		if orderID != "" {
			l.OrderID = orderID
		}
		if instanceID != "" {
			l.InstanceID = instanceID
		}
		if l.Status == state.LaunchIntent || l.Status == state.LaunchOrdered {
			l.Status = state.LaunchOrdered
			if l.InstanceID != "" {
				l.Status = state.LaunchCreated
			}
		}
	})
}

// follow sees a launch whose caller went away through, in the background: once it runs its
// auto-stop is arranged; if it is not running by the launch's wait deadline it is cleaned up.
// When this process ends first, the launch is handed back to the store and the next
// reconciliation, in any gpu-mcp process, goes on with it.
func (f *Fleet) follow(p providers.Provider, key string) {
	release := f.own(key)
	ok := f.background(func() {
		defer release()
		for {
			done, _, err := f.resumeOwned(f.ctx, p, key, "")
			if err != nil && f.ctx.Err() == nil {
				f.log.Warn().Err(err).Str("launch", key).Msg("following a launch whose client went away")
			}
			if done {
				return
			}
			select {
			case <-f.ctx.Done():
				return
			case <-time.After(f.o.Poll):
			}
		}
	})
	if !ok {
		release()
	}
}

// cleanupLaunch stops and destroys an instance that did not come up, as far as the vendor
// allows. It runs on its own deadline: the caller having gone must not leave it billing.
func (f *Fleet) cleanupLaunch(p providers.Provider, id, orderID string) (string, BillingNow) {
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
	log := f.log.With().Str("instance", inst.ID).Logger()
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
		stopped, _ := f.Wait(ctx, Waiter{Provider: p, ID: inst.ID, Until: UntilStopped, Timeout: 2 * time.Minute})
		if !stopped.Reached {
			return "stop sent, but it was not reported stopped yet; check it with get_instance", BillingUnknown
		}
		inst = stopped.Instance
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

// nextOffer picks the cheapest untried offer the user's approval covers: same provider, GPU
// model and count, billing mode, available, the image usable with it, no dearer than the
// plan approved and within the limits (req.Vet says), and one the vendor would take.
func (f *Fleet) nextOffer(ctx context.Context, p providers.Provider, req LaunchRequest, tried map[string]bool) (providers.Offer, providers.LaunchSpec, string) {
	offers, err := p.ListOffers(ctx)
	if err != nil {
		return providers.Offer{}, providers.LaunchSpec{}, "no fallback: the offers could not be read (" + errorText(err) + ")"
	}
	orig, count, billing := req.Offer, req.Spec.GPUCount, req.Spec.Billing
	var cands []providers.Offer
	for _, o := range offers {
		if tried[o.ID] || o.GPUModel != orig.GPUModel || !o.Available || !slices.Contains(o.GPUCounts, count) || !slices.Contains(o.Billing, billing) {
			continue
		}
		cands = append(cands, o)
	}
	sort.SliceStable(cands, func(i, j int) bool {
		pi, ki := cands[i].HourlyPrice(count)
		pj, kj := cands[j].HourlyPrice(count)
		if ki != kj {
			return ki
		}
		return pi < pj
	})
	skipped := []string{}
	for _, o := range cands {
		spec, err := req.Vet(ctx, o)
		if err != nil {
			skipped = append(skipped, o.ID+": "+errorText(err))
			continue
		}
		if !imageFits(ctx, p, o, req.Spec.ImageID) {
			skipped = append(skipped, o.ID+": the image is not offered with it")
			continue
		}
		if _, err := p.Precheck(providers.ActionRequest{Action: providers.ActionLaunch, Launch: &spec}); err != nil {
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
func imageFits(ctx context.Context, p providers.Provider, o providers.Offer, imageID string) bool {
	images, err := p.ListImages(ctx, providers.ImageQuery{OfferID: o.ID})
	if err != nil {
		return false
	}
	return slices.ContainsFunc(images, func(im providers.Image) bool { return im.ID == imageID })
}

// arrangeIdleStop puts on a launched instance the stop when its GPUs stay idle, as a lease
// on its work.
func (f *Fleet) arrangeIdleStop(ctx context.Context, key string, terms *idleTerms, out *Outcome) {
	if terms == nil || terms.Applied {
		return
	}
	const failed = "the stop when the GPUs stay idle could not be recorded"
	switch {
	case f.o.Work == nil:
		out.note(failed + ": this server does not work on machines; stop the instance yourself when its work is done")
	case out.InstanceID == "" || out.Instance == nil:
		out.note("the stop when the GPUs stay idle is arranged once the instance is listed: gpu-mcp's reconciler keeps looking for it by its order")
	default:
		l, err := f.o.Work.StopWhenIdle(context.WithoutCancel(ctx), *out.Instance, terms.Policy, key)
		if err != nil {
			f.log.Error().Err(err).Str("instance", out.InstanceID).Msg("the stop when the GPUs stay idle could not be recorded")
			out.note(failed + " (" + errorText(err) + "); stop the instance yourself when its work is done")
			return
		}
		out.IdleLease = &l
	}
}

// arrangeAutoStop gives a launched instance its lease.
func (f *Fleet) arrangeAutoStop(ctx context.Context, p providers.Provider, key string, terms *leaseTerms, out *Outcome) {
	if terms == nil {
		return
	}
	if out.InstanceID == "" {
		out.note("the auto-stop is arranged once the instance is listed: gpu-mcp's reconciler keeps looking for it by its order")
		return
	}
	at := f.now().Add(terms.After).Truncate(time.Second)
	as, err := f.SetLease(ctx, p, out.InstanceID, at, terms.Action, key)
	if err != nil {
		f.log.Error().Err(err).Str("instance", out.InstanceID).Msg("the auto-stop could not be recorded")
		out.note("the auto-stop could not be arranged (" + errorText(err) + "); stop the instance with stop_instance when done, or set one with set_auto_stop")
		return
	}
	out.AutoStop = as
	if out.Instance != nil && out.Instance.StopsAt == nil {
		out.Instance.StopsAt = &at
	}
}
