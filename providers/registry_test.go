package providers

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSplitID(t *testing.T) {
	good := map[string][2]string{
		"huixingyun:gpu-105b":                       {"huixingyun", "gpu-105b"},
		"datenfab:host-cluster/2/1":                 {"datenfab", "host-cluster/2/1"},
		"chenyu:pod:abc@v1":                         {"chenyu", "pod:abc@v1"},
		"datenfab:images.neolink-ai.com/a/b:2.15.0": {"datenfab", "images.neolink-ai.com/a/b:2.15.0"},
	}
	for in, want := range good {
		p, l, err := SplitID(in)
		if err != nil || p != want[0] || l != want[1] {
			t.Errorf("SplitID(%q) = %q, %q, %v", in, p, l, err)
		}
	}
	bad := map[string]string{
		"gpu-105b":                      "no provider prefix",
		":x":                            "empty",
		"chenyu:":                       "empty",
		"chenyu:a\nb":                   "control character",
		"x:" + strings.Repeat("a", 600): "longer than",
	}
	for in, want := range bad {
		_, _, err := SplitID(in)
		if KindOf(err) != KindInvalid || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "provider:vendor-id") {
			t.Errorf("SplitID(%.20q): %v, want an invalid error containing %q and the accepted form", in, err, want)
		}
	}
}

// stub is a Provider that only has a name; the registry needs no more.
type stub struct {
	Provider
	name string
}

func (s stub) Name() string { return s.name }

func TestRegistryResolve(t *testing.T) {
	r, err := NewRegistry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve("chenyu:x"); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("empty registry: %v", err)
	}
	if _, err := NewRegistry(stub{name: "a"}, stub{name: "a"}); err == nil {
		t.Error("a provider registered twice was accepted")
	}
	r, _ = NewRegistry(stub{name: "zeta"}, stub{name: "alpha"})
	if got := strings.Join(r.Names(), ","); got != "alpha,zeta" {
		t.Errorf("names %s", got)
	}
	p, err := r.Resolve("zeta:inst-1:x")
	if err != nil || p.Name() != "zeta" {
		t.Errorf("resolve: %v %v", p, err)
	}
	if _, err := r.Resolve("gamma:x"); err == nil || !strings.Contains(err.Error(), "configured providers: alpha, zeta") {
		t.Errorf("unknown provider: %v", err)
	}
}

// recorder is an adapter that answers with local ids and records the ids it is given.
type recorder struct {
	stub
	got []string
}

func (r *recorder) ListOffers(context.Context) ([]Offer, error) { return []Offer{{ID: "o1"}}, nil }
func (r *recorder) ListImages(_ context.Context, q ImageQuery) ([]Image, error) {
	r.got = append(r.got, "images of "+q.OfferID)
	return []Image{{ID: "img1"}}, nil
}
func (r *recorder) ListInstances(context.Context) ([]Instance, error) {
	return []Instance{{ID: "i1"}}, nil
}
func (r *recorder) GetInstance(_ context.Context, id string) (Instance, error) {
	r.got = append(r.got, "get "+id)
	return Instance{ID: id}, nil
}
func (r *recorder) Precheck(req ActionRequest) ([]string, error) {
	r.got = append(r.got, "precheck "+req.Instance.ID+" "+req.Launch.OfferID+" "+req.Launch.ImageID)
	return nil, nil
}
func (r *recorder) Launch(_ context.Context, s LaunchSpec) (LaunchResult, error) {
	r.got = append(r.got, "launch "+s.OfferID+" "+s.ImageID)
	return LaunchResult{InstanceID: "i2", OrderID: "order-7", Instance: &Instance{ID: "i2"}}, nil
}
func (r *recorder) Stop(_ context.Context, id string) error {
	r.got = append(r.got, "stop "+id)
	return nil
}
func (r *recorder) SaveImage(_ context.Context, id, name string) (string, error) {
	r.got = append(r.got, "save "+id)
	return "snap1", nil
}

// scheduler is a recorder that can also schedule stops.
type scheduler struct{ *recorder }

func (s scheduler) ScheduleStop(_ context.Context, id string, _ time.Time) error {
	s.got = append(s.got, "schedule "+id)
	return nil
}

func TestRegistryQualifiesEveryIDAndGivesAdaptersLocalOnes(t *testing.T) {
	rec := &recorder{stub: stub{name: "zeta"}}
	r, err := NewRegistry(scheduler{rec}, stub{name: "alpha"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Resolve("zeta:anything")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	offers, _ := p.ListOffers(ctx)
	images, _ := p.ListImages(ctx, ImageQuery{OfferID: "zeta:o1"})
	ins, _ := p.ListInstances(ctx)
	one, _ := p.GetInstance(ctx, "zeta:i1")
	spec := LaunchSpec{OfferID: "zeta:o1", ImageID: "zeta:img1"}
	if _, err := p.Precheck(ActionRequest{Action: ActionLaunch, Instance: Instance{ID: "zeta:i1"}, Launch: &spec}); err != nil {
		t.Fatal(err)
	}
	res, _ := p.Launch(ctx, spec)
	ref, _ := p.SaveImage(ctx, "zeta:i1", "x")
	if err := p.(StopScheduler).ScheduleStop(ctx, "zeta:i2", time.Now()); err != nil {
		t.Fatal(err)
	}
	if offers[0].ID != "zeta:o1" || images[0].ID != "zeta:img1" || ins[0].ID != "zeta:i1" || one.ID != "zeta:i1" ||
		res.InstanceID != "zeta:i2" || res.Instance.ID != "zeta:i2" || res.OrderID != "order-7" || ref != "zeta:snap1" {
		t.Errorf("ids out: %v %v %v %v %+v %q", offers, images, ins, one, res, ref)
	}
	if spec.OfferID != "zeta:o1" {
		t.Errorf("the caller's launch spec was changed: %+v", spec)
	}
	want := "images of o1; get i1; precheck i1 o1 img1; launch o1 img1; save i1; schedule i2"
	if got := strings.Join(rec.got, "; "); got != want {
		t.Errorf("the adapter was given %q, want %q", got, want)
	}

	rec.got = nil
	for _, id := range []string{"alpha:i1", "i1", "zeta:"} {
		if err := p.Stop(ctx, id); KindOf(err) != KindInvalid {
			t.Errorf("stop %q: %v, want an invalid id", id, err)
		}
	}
	if len(rec.got) != 0 {
		t.Errorf("ids of other providers reached the adapter: %v", rec.got)
	}
	if err := p.Stop(ctx, "alpha:i1"); !strings.Contains(err.Error(), "belongs to alpha, not to zeta") {
		t.Errorf("a foreign id: %v", err)
	}

	plain, _ := r.Get("alpha")
	if _, ok := plain.(StopScheduler); ok {
		t.Error("the wrapper of an adapter without a shutdown timer claims one")
	}
	if _, ok := plain.(BalanceReporter); ok {
		t.Error("the wrapper of an adapter without a balance claims one")
	}
}

// zoned answers in Beijing time, as HuiXingYun and Datenfab do.
type zoned struct {
	stub
	at time.Time
}

func (z zoned) ListInstances(context.Context) ([]Instance, error) {
	return []Instance{{ID: "i1", CreatedAt: &z.at, ExpiresAt: &z.at, StopsAt: &z.at}}, nil
}

func (z zoned) ListImages(context.Context, ImageQuery) ([]Image, error) {
	return []Image{{ID: "m1", CreatedAt: &z.at}}, nil
}

func TestRegistryHandsOnTimesInUTC(t *testing.T) {
	at := time.Date(2024, 6, 20, 17, 46, 58, 0, time.FixedZone("CST", 8*3600))
	r, _ := NewRegistry(zoned{stub{name: "z"}, at})
	p, _ := r.Get("z")
	ins, _ := p.ListInstances(t.Context())
	ims, _ := p.ListImages(t.Context(), ImageQuery{})
	for _, tm := range []*time.Time{ins[0].CreatedAt, ins[0].ExpiresAt, ins[0].StopsAt, ims[0].CreatedAt} {
		if tm.Location() != time.UTC || !tm.Equal(at) || tm.Format(time.RFC3339) != "2024-06-20T09:46:58Z" {
			t.Fatalf("time %s, want %s in UTC", tm, at)
		}
	}
}
