package huixingyun

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

const (
	pathStart         = "/gpu/instances/start"
	pathCardlessStart = "/gpu/instances/cardless/start"
)

func intList(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = fmt.Sprint(n)
	}
	return strings.Join(s, ", ")
}

// payUnit maps a billing mode to the buy's pay_unit code.
func payUnit(op string, m providers.BillingMode) (int, error) {
	switch m {
	case providers.BillingHourly, "":
		return payUnitHour, nil
	case providers.BillingDaily:
		return payUnitDay, nil
	case providers.BillingMonthly:
		return payUnitMonth, nil
	}
	return 0, &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
		Message: fmt.Sprintf("HuiXingYun cannot bill %q", m), Remedy: "use billing hourly, daily or monthly"}
}

// checkBilling maps the billing of a launch to pay_unit and refuses what the buy call cannot
// do, so that Precheck can refuse it before anyone is asked to approve.
func checkBilling(op string, spec providers.LaunchSpec) (int, error) {
	unit, err := payUnit(op, spec.Billing)
	if err != nil {
		return 0, err
	}
	if spec.Periods > 1 && spec.Billing != providers.BillingHourly && spec.Billing != "" {
		return 0, &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("HuiXingYun's buy prepays exactly one %s period; %d were asked", spec.Billing, spec.Periods),
			Remedy:  "launch with one period, then add more with renew_instance (daily: 1, 3 or 7 days; monthly: 1, 3 or 12 months)"}
	}
	return unit, nil
}

// Launch buys one instance. The vendor answers with an order number only (quirk 5.1.8): the
// instance is then looked up in the list by its order_uid. When it is not listed yet, the
// result carries the order number and an empty InstanceID.
func (p *Provider) Launch(ctx context.Context, spec providers.LaunchSpec) (providers.LaunchResult, error) {
	op := "launch " + spec.OfferID
	invalid := func(remedy, format string, args ...any) (providers.LaunchResult, error) {
		return providers.LaunchResult{}, &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op, Message: fmt.Sprintf(format, args...), Remedy: remedy}
	}
	unit, err := checkBilling(op, spec)
	if err != nil {
		return providers.LaunchResult{}, err
	}
	count := spec.GPUCount
	if count == 0 {
		count = 1
	}
	if count < 1 || count > maxGPUsPerInstance {
		return invalid("ask for 1 to 8 GPUs", "gpu_count %d is out of range", spec.GPUCount)
	}
	if spec.ImageID == "" {
		return invalid("pick an image with list_images", "an image id is required")
	}
	if strings.HasPrefix(spec.ImageID, appImagePrefix) {
		return p.launchApp(ctx, op, spec, unit, count)
	}
	if spec.OfferID == "" {
		return invalid("pick an offer with list_gpu_offers", "an offer id (gpu_type) is required")
	}
	items, err := p.products(ctx)
	if err != nil {
		return providers.LaunchResult{}, err
	}
	i := slices.IndexFunc(items, func(it product) bool { return string(it.GPUType) == spec.OfferID })
	if i < 0 {
		return providers.LaunchResult{}, &providers.Error{Kind: providers.KindNotFound, Provider: Name, Op: op,
			Message: fmt.Sprintf("no product with gpu_type %q", spec.OfferID), Remedy: "pick an offer from list_gpu_offers"}
	}
	body := buyRequest{
		ImageID:  spec.ImageID,
		Num:      p.reqInt(1),
		GPUType:  spec.OfferID,
		GPUCount: p.reqInt(count),
		PayUnit:  p.reqInt(unit),
		RoomName: string(items[i].RoomName),
	}
	return p.buy(ctx, httpx.Request{Path: "/gpu/instances/buy", Body: body, Mutating: true, Op: op})
}

// launchApp buys a one-click app ("app:<app_type>"). Its request names no product: the
// vendor picks the machine, so an offer is only checked against the app's own gpu_type
// when the app list gives one (quirk 5.1.11).
func (p *Provider) launchApp(ctx context.Context, op string, spec providers.LaunchSpec, unit, count int) (providers.LaunchResult, error) {
	appType := strings.TrimPrefix(spec.ImageID, appImagePrefix)
	apps, err := p.apps(ctx)
	if err != nil {
		return providers.LaunchResult{}, err
	}
	i := slices.IndexFunc(apps, func(a app) bool { return string(a.AppType) == appType })
	if i < 0 {
		return providers.LaunchResult{}, &providers.Error{Kind: providers.KindNotFound, Provider: Name, Op: op,
			Message: fmt.Sprintf("no one-click app %q", appType), Remedy: "pick an app image (app:...) from list_images"}
	}
	if t := string(apps[i].GPUType); t != "" && spec.OfferID != "" && t != spec.OfferID {
		return providers.LaunchResult{}, &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("app %s runs on %s, not on %s", appType, t, spec.OfferID), Remedy: "launch it with offer huixingyun:" + t}
	}
	if count != 1 {
		return providers.LaunchResult{}, &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("one-click apps come with the size HuiXingYun sets (1 GPU); %d GPUs were asked", count), Remedy: "ask for 1 GPU"}
	}
	body := appBuyRequest{Num: p.reqInt(1), PayUnit: p.reqInt(unit), AppType: appType}
	return p.buy(ctx, httpx.Request{Path: "/gpu/application/buy", Body: body, Mutating: true, Op: op + " app " + appType})
}

func (p *Provider) buy(ctx context.Context, r httpx.Request) (providers.LaunchResult, error) {
	var ans batchAnswer
	if err := p.call(ctx, r, &ans); err != nil {
		return providers.LaunchResult{}, err
	}
	order, err := buyOrder(r.Op, ans)
	if err != nil {
		return providers.LaunchResult{}, p.http.RedactError(err)
	}
	res := providers.LaunchResult{OrderID: order}
	p.log.Info().Str("op", r.Op).Str("order_uid", order).Msg("huixingyun order placed")
	if order == "" {
		return res, nil
	}
	items, err := p.instances(ctx, r.Op+": find the new instance")
	if err != nil {
		// The order stands; failing here would invite a second purchase.
		p.log.Warn().Err(err).Str("order_uid", order).Msg("cannot list instances after a buy")
		return res, nil
	}
	for _, it := range items {
		if string(it.OrderUID) == order && it.GID != "" {
			inst := p.instanceOf(it)
			res.InstanceID = it.GID
			res.Instance = &inst
			break
		}
	}
	return res, nil
}

// buyOrder reads a buy answer: the order_uid sits in success[] in the example and at the
// top level in the field table (quirk 5.1.8), so both are read.
func buyOrder(op string, ans batchAnswer) (string, error) {
	successes := parseBatchItems(ans.Success)
	order := string(ans.OrderUID)
	for _, s := range successes {
		if order == "" && s.OrderUID != "" {
			order = s.OrderUID
		}
	}
	if len(successes) > 0 || ans.SuccessInstance > 0 || order != "" {
		return order, nil
	}
	fails := parseBatchItems(ans.Fails)
	said := failMessages(fails, "")
	if m := ans.vendorMessage(); m != "" {
		said = append(said, m)
	}
	if len(fails) > 0 || ans.FailInstance > 0 || len(said) > 0 || successIsFalse(ans.Success) {
		msg := "HuiXingYun refused the order"
		if len(said) > 0 {
			msg += ": " + strings.Join(said, "; ")
		}
		return "", &providers.Error{Kind: providers.KindRejected, Provider: Name, Op: op, Message: msg,
			Remedy: "check the account balance and the offer's availability (list_gpu_offers), or pick another offer"}
	}
	return "", &providers.Error{Kind: providers.KindUnknown, Provider: Name, Op: op,
		Message: "the answer says neither success nor failure",
		Remedy:  "the vendor may or may not have created an instance: check list_instances before trying again"}
}

// failMessages collects what fails[] says about gid ("" = about anything).
func failMessages(fails []batchItem, gid string) []string {
	var out []string
	for _, f := range fails {
		if gid != "" && f.GID != "" && f.GID != gid {
			continue
		}
		if f.Message != "" {
			out = append(out, f.Message)
		}
	}
	return out
}

// act sends a batch action for one gid and checks that the answer confirms that gid.
func (p *Provider) act(ctx context.Context, path, op, gid string, body any, remedy string) error {
	var ans batchAnswer
	if err := p.call(ctx, httpx.Request{Path: path, Body: body, Mutating: true, Op: op}, &ans); err != nil {
		return err
	}
	return p.http.RedactError(confirmed(op, gid, ans, remedy))
}

// confirmed maps a batch answer to gid's outcome: gid in success is done; gid in fails, or
// absent from success, is a refusal carrying whatever the vendor said (quirks 5.1.10, 5.1.13).
func confirmed(op, gid string, ans batchAnswer, remedy string) error {
	if successIsTrue(ans.Success) {
		return nil
	}
	successes := parseBatchItems(ans.Success)
	var others []string
	for _, s := range successes {
		if s.GID == gid {
			return nil
		}
		if s.GID != "" {
			others = append(others, s.GID)
		}
	}
	fails := parseBatchItems(ans.Fails)
	listed := slices.ContainsFunc(fails, func(f batchItem) bool { return f.GID == gid })
	said := failMessages(fails, gid)
	if m := ans.vendorMessage(); m != "" {
		said = append(said, m)
	}
	var msg string
	switch {
	case listed:
		msg = "HuiXingYun listed " + gid + " as failed"
	case len(others) > 0:
		msg = fmt.Sprintf("HuiXingYun did not confirm %s (it confirmed %s instead)", gid, strings.Join(others, ", "))
	default:
		msg = "HuiXingYun did not confirm " + gid
	}
	if len(said) > 0 {
		msg += ": " + strings.Join(said, "; ")
	}
	return &providers.Error{Kind: providers.KindRejected, Provider: Name, Op: op, Message: msg, Remedy: remedy}
}

const stateRemedy = "check the instance's state with get_instance"

// Start starts a stopped instance. A normal stop and a card-less stop each have their own
// start endpoint and the list does not say which one applies (quirk 5.1.7): the endpoint
// matching the stop this process made is tried first (the normal one when it does not
// know), then, if the vendor refuses, the other one once. A refused start changes nothing,
// so the second try cannot do harm.
func (p *Provider) Start(ctx context.Context, id string) error {
	op := "start " + id
	if err := checkGID(op, id); err != nil {
		return err
	}
	first, second := pathStart, pathCardlessStart
	if cardless, known := p.stopMode(id); known && cardless {
		first, second = second, first
	}
	err1 := p.act(ctx, first, op, id, gidRequest{GID: id}, stateRemedy)
	if err1 == nil {
		p.forgetStop(id)
		return nil
	}
	switch providers.KindOf(err1) {
	case providers.KindRejected, providers.KindConflict, providers.KindInvalid:
	default:
		return err1
	}
	p.log.Debug().Str("gid", id).Str("path", first).Msg("start refused; trying the other start endpoint")
	err2 := p.act(ctx, second, op, id, gidRequest{GID: id}, stateRemedy)
	if err2 == nil {
		p.forgetStop(id)
		return nil
	}
	e := &providers.Error{Kind: providers.KindOf(err2), Provider: Name, Op: op,
		Message: fmt.Sprintf("both start endpoints failed: %s: %s; %s: %s", first, message(err1), second, message(err2)),
		Remedy:  stateRemedy + "; an instance can be started only when it is stopped", Err: err2}
	var pe *providers.Error
	if errors.As(err2, &pe) {
		e.Status = pe.Status
		if pe.Kind == providers.KindUnknown {
			e.Remedy = pe.Remedy
		}
	}
	return e
}

func message(err error) string {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return pe.Message
	}
	return err.Error()
}

// Stop stops an instance normally (card_less false).
func (p *Provider) Stop(ctx context.Context, id string) error { return p.stop(ctx, id, false) }

// StopCardless stops an instance "card-less" (无卡关机): the vendor releases its GPU and keeps
// its disks. Start then uses the card-less start endpoint.
func (p *Provider) StopCardless(ctx context.Context, id string) error { return p.stop(ctx, id, true) }

func (p *Provider) stop(ctx context.Context, id string, cardless bool) error {
	op := "stop " + id
	if cardless {
		op = "card-less stop " + id
	}
	if err := checkGID(op, id); err != nil {
		return err
	}
	if err := p.act(ctx, "/gpu/instances/stop", op, id, stopRequest{GID: id, CardLess: cardless},
		stateRemedy+"; an instance can be stopped when it is running (or still being created or started)"); err != nil {
		return err
	}
	p.rememberStop(id, cardless)
	return nil
}

// Restart restarts a running instance.
func (p *Provider) Restart(ctx context.Context, id string) error {
	op := "restart " + id
	if err := checkGID(op, id); err != nil {
		return err
	}
	return p.act(ctx, "/gpu/instances/restart", op, id, gidRequest{GID: id}, stateRemedy+"; an instance can be restarted only when it is running")
}

// SaveImage saves the instance as an own image (POST /gpu/instance/snapshot, singular path,
// one gid: quirk 5.1.12). The answer carries no image id, so the zone's own images are read
// before and after, and an image of that name that was not there before is the result; ""
// when it is not listed yet.
func (p *Provider) SaveImage(ctx context.Context, id, name string) (string, error) {
	op := "save image of " + id
	if err := checkGID(op, id); err != nil {
		return "", err
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op, Message: "an image name is required", Remedy: "pass image_name"}
	}
	it, err := p.findInstance(ctx, op, id)
	if err != nil {
		return "", err
	}
	room := string(it.RoomName)
	before, beforeErr := p.ownImages(ctx, room)
	var ans batchAnswer
	r := httpx.Request{Path: "/gpu/instance/snapshot", Body: snapshotRequest{GID: id, Name: name}, Mutating: true, Op: op}
	if err := p.call(ctx, r, &ans); err != nil {
		return "", err
	}
	remedy := stateRemedy + "; an image can be saved of a running or stopped instance"
	if successIsFalse(ans.Success) {
		msg := "HuiXingYun refused to save the image"
		if m := ans.vendorMessage(); m != "" {
			msg += ": " + p.http.Redact(m)
		}
		return "", &providers.Error{Kind: providers.KindRejected, Provider: Name, Op: op, Message: msg, Remedy: remedy}
	}
	if err := confirmed(op, id, ans, remedy); err != nil {
		return "", p.http.RedactError(err)
	}
	if beforeErr != nil {
		return "", nil
	}
	after, err := p.ownImages(ctx, room)
	if err != nil {
		p.log.Debug().Err(err).Msg("cannot list own images after a snapshot")
		return "", nil
	}
	old := map[string]bool{}
	for _, im := range before {
		old[string(im.ImageID)] = true
	}
	for _, im := range after {
		if string(im.Name) == name && !old[string(im.ImageID)] {
			return string(im.ImageID), nil
		}
	}
	return "", nil
}

// Rebuild reinstalls the instance from imageID (an image_id from list_images; apps are not
// images). The vendor refuses an image of another OS family.
func (p *Provider) Rebuild(ctx context.Context, id, imageID string) error {
	op := "rebuild " + id
	if err := checkGID(op, id); err != nil {
		return err
	}
	if imageID == "" || strings.HasPrefix(imageID, appImagePrefix) {
		return &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("%q is not a disk image id", imageID), Remedy: "pick a public or own image from list_images"}
	}
	return p.act(ctx, "/gpu/instances/rebuild", op, id, rebuildRequest{GID: id, ImageID: imageID},
		stateRemedy+"; the new image must have the same operating system family")
}

// Renew extends a daily- or monthly-billed instance by periods of its current billing mode
// (daily: 1, 3 or 7; monthly: 1, 3 or 12). 0 means 1.
func (p *Provider) Renew(ctx context.Context, id string, periods int) error {
	op := "renew " + id
	if err := checkGID(op, id); err != nil {
		return err
	}
	if periods <= 0 {
		periods = 1
	}
	if !slices.Contains([]int{1, 3, 7, 12}, periods) {
		return &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("HuiXingYun renews by 1, 3 or 7 days or 1, 3 or 12 months, not %d periods", periods),
			Remedy:  "pass periods 1, 3 or 7 for a daily instance, 1, 3 or 12 for a monthly one"}
	}
	return p.act(ctx, "/gpu/instances/renew", op, id, renewRequest{GID: id, PayPeriod: p.reqInt(periods)},
		"only daily (1, 3, 7) and monthly (1, 3, 12) instances can be renewed; "+stateRemedy)
}

// Destroy deletes a stopped, hourly-billed instance.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	op := "destroy " + id
	if err := checkGID(op, id); err != nil {
		return err
	}
	if err := p.act(ctx, "/gpu/instances/destroy", op, id, gidRequest{GID: id},
		"only hourly-billed instances that are stopped can be destroyed; "+stateRemedy); err != nil {
		return err
	}
	p.forgetStop(id)
	return nil
}

// ChangeBilling converts an instance's billing (POST /gpu/instances/lengthen): hourly to
// daily or monthly, daily to monthly.
func (p *Provider) ChangeBilling(ctx context.Context, id string, mode providers.BillingMode) error {
	op := "change billing of " + id
	if err := checkGID(op, id); err != nil {
		return err
	}
	var unit int
	switch mode {
	case providers.BillingDaily:
		unit = payUnitDay
	case providers.BillingMonthly:
		unit = payUnitMonth
	default:
		return &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("billing can be changed to daily or monthly, not %q", mode), Remedy: "pass daily or monthly"}
	}
	return p.act(ctx, "/gpu/instances/lengthen", op, id, lengthenRequest{GID: id, PayUnit: p.reqInt(unit)},
		"hourly instances can become daily or monthly, daily ones monthly; "+stateRemedy)
}
