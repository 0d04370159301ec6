package providers

import (
	"context"
	"fmt"
	"time"
)

// qualified is an adapter seen through the registry: the ids it is given are
// provider-qualified and leave it vendor-local; the ids it returns leave it qualified.
type qualified struct {
	p    Provider
	name string
}

// qualify wraps p, keeping the optional abilities it has (and only those), so that a type
// assertion on the wrapper answers as one on p would.
func qualify(p Provider) Provider {
	q := &qualified{p: p, name: p.Name()}
	br, reports := p.(BalanceReporter)
	ss, schedules := p.(StopScheduler)
	switch {
	case reports && schedules:
		return struct {
			*qualified
			BalanceReporter
			StopScheduler
		}{q, br, qualifiedStops{q, ss}}
	case reports:
		return struct {
			*qualified
			BalanceReporter
		}{q, br}
	case schedules:
		return struct {
			*qualified
			StopScheduler
		}{q, qualifiedStops{q, ss}}
	}
	return q
}

// local is the vendor-local part of an id qualified with this provider's name.
func (q *qualified) local(id string) (string, error) {
	name, local, err := SplitID(id)
	if err != nil {
		return "", err
	}
	if name != q.name {
		return "", &Error{Kind: KindInvalid, Provider: "gpu-mcp", Message: fmt.Sprintf("id %s belongs to %s, not to %s", id, name, q.name),
			Remedy: "pass ids of one provider together, as the list tools return them"}
	}
	return local, nil
}

func (q *qualified) id(local string) string {
	if local == "" {
		return ""
	}
	return QualifyID(q.name, local)
}

func (q *qualified) instance(in Instance) Instance {
	in.ID = q.id(in.ID)
	in.CreatedAt, in.ExpiresAt, in.StopsAt = utc(in.CreatedAt), utc(in.ExpiresAt), utc(in.StopsAt)
	return in
}

// utc is t in UTC: vendors answer in their own zones (HuiXingYun and Datenfab in Beijing
// time), and everything above the registry speaks UTC.
func utc(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func (q *qualified) Name() string               { return q.name }
func (q *qualified) Capabilities() Capabilities { return q.p.Capabilities() }

func (q *qualified) ListOffers(ctx context.Context) ([]Offer, error) {
	offers, err := q.p.ListOffers(ctx)
	for i := range offers {
		offers[i].ID = q.id(offers[i].ID)
	}
	return offers, err
}

func (q *qualified) ListImages(ctx context.Context, iq ImageQuery) ([]Image, error) {
	if iq.OfferID != "" {
		var err error
		if iq.OfferID, err = q.local(iq.OfferID); err != nil {
			return nil, err
		}
	}
	images, err := q.p.ListImages(ctx, iq)
	for i := range images {
		images[i].ID = q.id(images[i].ID)
		images[i].CreatedAt = utc(images[i].CreatedAt)
	}
	return images, err
}

func (q *qualified) ListInstances(ctx context.Context) ([]Instance, error) {
	ins, err := q.p.ListInstances(ctx)
	for i := range ins {
		ins[i] = q.instance(ins[i])
	}
	return ins, err
}

func (q *qualified) GetInstance(ctx context.Context, id string) (Instance, error) {
	local, err := q.local(id)
	if err != nil {
		return Instance{}, err
	}
	in, err := q.p.GetInstance(ctx, local)
	if err != nil {
		return Instance{}, err
	}
	return q.instance(in), nil
}

// spec makes a launch's offer and image ids local.
func (q *qualified) spec(s LaunchSpec) (LaunchSpec, error) {
	var err error
	if s.OfferID != "" {
		if s.OfferID, err = q.local(s.OfferID); err != nil {
			return LaunchSpec{}, err
		}
	}
	if s.ImageID != "" {
		if s.ImageID, err = q.local(s.ImageID); err != nil {
			return LaunchSpec{}, err
		}
	}
	return s, nil
}

func (q *qualified) Precheck(req ActionRequest) ([]string, error) {
	var err error
	if req.Instance.ID != "" {
		if req.Instance.ID, err = q.local(req.Instance.ID); err != nil {
			return nil, err
		}
	}
	if req.Launch != nil {
		spec, err := q.spec(*req.Launch)
		if err != nil {
			return nil, err
		}
		req.Launch = &spec
	}
	return q.p.Precheck(req)
}

func (q *qualified) Launch(ctx context.Context, s LaunchSpec) (LaunchResult, error) {
	spec, err := q.spec(s)
	if err != nil {
		return LaunchResult{}, err
	}
	res, err := q.p.Launch(ctx, spec)
	if err != nil {
		return LaunchResult{}, err
	}
	res.InstanceID = q.id(res.InstanceID)
	if res.Instance != nil {
		in := q.instance(*res.Instance)
		res.Instance = &in
	}
	return res, nil
}

// act runs an action on the instance id names.
func (q *qualified) act(id string, f func(local string) error) error {
	local, err := q.local(id)
	if err != nil {
		return err
	}
	return f(local)
}

func (q *qualified) Start(ctx context.Context, id string) error {
	return q.act(id, func(l string) error { return q.p.Start(ctx, l) })
}

func (q *qualified) Stop(ctx context.Context, id string) error {
	return q.act(id, func(l string) error { return q.p.Stop(ctx, l) })
}

func (q *qualified) Restart(ctx context.Context, id string) error {
	return q.act(id, func(l string) error { return q.p.Restart(ctx, l) })
}

func (q *qualified) Renew(ctx context.Context, id string, periods int) error {
	return q.act(id, func(l string) error { return q.p.Renew(ctx, l, periods) })
}

func (q *qualified) Destroy(ctx context.Context, id string) error {
	return q.act(id, func(l string) error { return q.p.Destroy(ctx, l) })
}

func (q *qualified) SaveImage(ctx context.Context, id, name string) (string, error) {
	var ref string
	err := q.act(id, func(l string) error {
		var err error
		ref, err = q.p.SaveImage(ctx, l, name)
		return err
	})
	return q.id(ref), err
}

type qualifiedStops struct {
	q  *qualified
	ss StopScheduler
}

func (s qualifiedStops) ScheduleStop(ctx context.Context, id string, at time.Time) error {
	return s.q.act(id, func(l string) error { return s.ss.ScheduleStop(ctx, l, at) })
}
