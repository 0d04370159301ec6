// Package fakecloud is the adapter of FakeCloud, a made-up fourth vendor that exists for the
// cross-vendor tests alone: test binaries add its Vendor to the vendor list (vendors.WithExtra)
// and the fault matrix, the tools' vendor tests and the launch end-to-end tests run against it
// as against the real ones, which proves that a new cloud needs its package and one line in
// the list. It is never part of the program's list. Its emulator is package fctest.
//
// Identifiers (vendor-local): offers, images and machines by the ids the emulator gives them.
package fakecloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud/fctest"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

// Name is the provider name.
const Name = "fakecloud"

// Vendor describes FakeCloud to the vendor list of a test binary.
var Vendor = providers.Vendor{Name: Name, Title: "FakeCloud", EnvPrefix: "FAKECLOUD_", Hint: "FAKECLOUD_API_KEY",
	Config: func() providers.VendorConfig { return &Config{} }, Capabilities: capabilities,
	Emulate: fctest.Emulate, Endpoints: fctest.Endpoints}

// Config configures the adapter.
type Config struct {
	APIKey  string                `env:"API_KEY"`
	BaseURL string                `env:"BASE_URL"`
	HTTP    providers.HTTPOptions `env:"-"`
	Logger  *zerolog.Logger       `env:"-"`
}

// Enabled implements providers.VendorConfig.
func (c *Config) Enabled() (bool, error) { return c.APIKey != "", nil }

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.APIKey} }

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, _ *zerolog.Logger) providers.Provider {
	key := c.APIKey
	cl := httpx.New(Name, c.BaseURL, func(h http.Header) { h.Set("X-Api-Key", key) })
	return &Provider{http: cl.Configure(o, httpx.NewBreaker(o))}
}

// Provider is the FakeCloud adapter.
type Provider struct{ http *httpx.Client }

var _ providers.Provider = (*Provider)(nil)

var capabilities = providers.Capabilities{
	Unsupported:     map[providers.Action]string{providers.ActionRenew: "FakeCloud bills by the hour and has no leases"},
	Billing:         []providers.BillingMode{providers.BillingHourly},
	PublishesPrices: true,
	ImageSaved:      providers.SaveReportImages,
	BillingStates: []providers.State{providers.StatePending, providers.StateStarting, providers.StateRunning,
		providers.StateRestarting, providers.StateStopping, providers.StateSaving, providers.StateError, providers.StateUnknown},
}

// Name implements providers.Provider.
func (p *Provider) Name() string { return Name }

// Capabilities implements providers.Provider.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities }

// Precheck implements providers.Provider with the shared rule table.
func (p *Provider) Precheck(req providers.ActionRequest) ([]string, error) {
	return rules.Precheck(req)
}

var rules = providers.StateRules{
	Provider: Name, Title: "FakeCloud", Unsupported: capabilities.Unsupported,
	Busy: map[providers.State]string{providers.StateDeleting: "the machine is being deleted"},
	Actions: map[providers.Action]providers.ActionRule{
		providers.ActionLaunch:  {},
		providers.ActionStart:   {Allowed: []providers.State{providers.StateStopped}},
		providers.ActionStop:    {Allowed: []providers.State{providers.StateRunning, providers.StatePending, providers.StateStarting}},
		providers.ActionRestart: {Allowed: []providers.State{providers.StateRunning}},
		providers.ActionSaveImage: {Allowed: []providers.State{providers.StateRunning, providers.StateStopped},
			Warnings: []string{"the image is ready a moment later; wait_instance until=image_saved with its image_id"}},
		providers.ActionDestroy: {Allowed: []providers.State{providers.StateStopped, providers.StateError},
			Need: "stop it first and wait until it is stopped"},
	},
}

type wireOffer struct {
	ID, GPU   string
	PriceHour float64 `json:"price_hour"`
	Counts    []int   `json:"gpu_counts"`
	VRAMGB    int     `json:"vram_gb"`
	Free      int     `json:"free_gpus"`
}

type wireImage struct {
	ID, Name, Kind string
	Ready          bool
}

type wireMachine struct {
	ID, Name, Status, Offer, GPU, Image string
	GPUs                                int
	PriceHour                           float64 `json:"price_hour"`
	Created                             time.Time
	SSH                                 struct {
		Host, User, Password string
		Port                 int
	}
}

var states = map[string]providers.State{
	"creating": providers.StatePending, "running": providers.StateRunning, "stopping": providers.StateStopping,
	"stopped": providers.StateStopped, "starting": providers.StateStarting, "restarting": providers.StateRestarting,
	"deleting": providers.StateDeleting, "failed": providers.StateError,
}

// call sends r and decodes the answer into out (nil: none expected), with FakeCloud's
// refusals ({"error","code"}) as the message and kind.
func (p *Provider) call(ctx context.Context, r httpx.Request, out any) error {
	resp, err := p.http.Do(ctx, r)
	var pe *providers.Error
	if errors.As(err, &pe) && resp != nil && resp.Status >= 400 && resp.Status < 500 {
		var body struct{ Error, Code string }
		if json.Unmarshal(resp.Body, &body) == nil && body.Error != "" {
			pe.Message = fmt.Sprintf("HTTP %d: %s", resp.Status, body.Error)
			switch body.Code {
			case "sold_out":
				pe.Kind, pe.Remedy = providers.KindRejected, "choose another offer with list_gpu_offers"
			case "conflict":
				pe.Kind, pe.Remedy = providers.KindConflict, "check the instance with get_instance"
			case "auth":
				pe.Remedy = "check FAKECLOUD_API_KEY"
			}
		}
	}
	if err != nil || out == nil {
		return err
	}
	if err := p.http.DecodeJSON(r, resp, out); err != nil {
		if r.Mutating && errors.As(err, &pe) {
			pe.Kind, pe.Remedy = providers.KindUnknown, "FakeCloud may or may not have done it: check with list_instances or get_instance before trying again"
		}
		return err
	}
	return nil
}

// ListOffers implements providers.Provider.
func (p *Provider) ListOffers(ctx context.Context) ([]providers.Offer, error) {
	var ans struct{ Offers []wireOffer }
	if err := p.call(ctx, httpx.Request{Method: http.MethodGet, Path: "/v1/offers", Op: "list offers"}, &ans); err != nil {
		return nil, err
	}
	out := make([]providers.Offer, 0, len(ans.Offers))
	for _, o := range ans.Offers {
		price, free := o.PriceHour, o.Free
		out = append(out, providers.Offer{ID: o.ID, Provider: Name, GPUModel: o.GPU, GPUCounts: o.Counts, VRAMGB: o.VRAMGB,
			PricePerGPUHour: &price, Prices: []providers.Price{{Billing: providers.BillingHourly, CNY: price}},
			Billing: capabilities.Billing, Available: free > 0, AvailableGPUs: &free})
	}
	return out, nil
}

// ListImages implements providers.Provider.
func (p *Provider) ListImages(ctx context.Context, q providers.ImageQuery) ([]providers.Image, error) {
	var query url.Values
	if q.OfferID != "" {
		query = url.Values{"offer": {q.OfferID}}
	}
	var ans struct{ Images []wireImage }
	if err := p.call(ctx, httpx.Request{Method: http.MethodGet, Path: "/v1/images", Query: query, Op: "list images"}, &ans); err != nil {
		return nil, err
	}
	out := make([]providers.Image, 0, len(ans.Images))
	for _, im := range ans.Images {
		img := providers.Image{ID: im.ID, Provider: Name, Name: im.Name, Kind: providers.ImagePublic}
		if im.Kind == "private" {
			img.Kind, img.Status = providers.ImagePrivate, "saving"
			if im.Ready {
				img.Status = "ready"
			}
		}
		out = append(out, img)
	}
	return out, nil
}

func instance(m wireMachine) providers.Instance {
	st, ok := states[m.Status]
	if !ok {
		st = providers.StateUnknown
	}
	price, created := m.PriceHour, m.Created
	in := providers.Instance{ID: m.ID, Provider: Name, Name: m.Name, State: st, RawState: m.Status, GPUModel: m.GPU, GPUCount: m.GPUs,
		Image: m.Image, Billing: providers.BillingHourly, PricePerHour: &price, CreatedAt: &created}
	if m.SSH.Host != "" {
		in.Connection = &providers.Connection{SSHHost: m.SSH.Host, SSHPort: m.SSH.Port, SSHUser: m.SSH.User, SSHPassword: m.SSH.Password,
			SSHCommand: fmt.Sprintf("ssh -p %d %s@%s", m.SSH.Port, m.SSH.User, m.SSH.Host)}
	}
	return in
}

// ListInstances implements providers.Provider.
func (p *Provider) ListInstances(ctx context.Context) ([]providers.Instance, error) {
	var ans struct{ Machines []wireMachine }
	if err := p.call(ctx, httpx.Request{Method: http.MethodGet, Path: "/v1/machines", Op: "list instances"}, &ans); err != nil {
		return nil, err
	}
	out := make([]providers.Instance, 0, len(ans.Machines))
	for _, m := range ans.Machines {
		out = append(out, instance(m))
	}
	return out, nil
}

// GetInstance implements providers.Provider.
func (p *Provider) GetInstance(ctx context.Context, id string) (providers.Instance, error) {
	var m wireMachine
	if err := p.call(ctx, httpx.Request{Method: http.MethodGet, Path: "/v1/machines/" + url.PathEscape(id), Op: "get " + id}, &m); err != nil {
		return providers.Instance{}, err
	}
	return instance(m), nil
}

// Launch implements providers.Provider.
func (p *Provider) Launch(ctx context.Context, spec providers.LaunchSpec) (providers.LaunchResult, error) {
	body := map[string]any{"offer": spec.OfferID, "image": spec.ImageID, "gpus": max(spec.GPUCount, 1), "name": spec.Name}
	var m wireMachine
	if err := p.call(ctx, httpx.Request{Method: http.MethodPost, Path: "/v1/machines", Body: body, Mutating: true, Op: "launch " + spec.OfferID}, &m); err != nil {
		return providers.LaunchResult{}, err
	}
	in := instance(m)
	return providers.LaunchResult{InstanceID: m.ID, Instance: &in}, nil
}

func (p *Provider) action(ctx context.Context, id, action string, body any) error {
	return p.call(ctx, httpx.Request{Method: http.MethodPost, Path: "/v1/machines/" + url.PathEscape(id) + "/" + action, Body: body,
		Mutating: true, Op: action + " " + id}, nil)
}

// Start implements providers.Provider.
func (p *Provider) Start(ctx context.Context, id string) error {
	return p.action(ctx, id, "start", nil)
}

// Stop implements providers.Provider.
func (p *Provider) Stop(ctx context.Context, id string) error { return p.action(ctx, id, "stop", nil) }

// Restart implements providers.Provider.
func (p *Provider) Restart(ctx context.Context, id string) error {
	return p.action(ctx, id, "restart", nil)
}

// SaveImage implements providers.Provider: the image is the snapshot FakeCloud names.
func (p *Provider) SaveImage(ctx context.Context, id, name string) (string, error) {
	var ans struct{ Image string }
	err := p.call(ctx, httpx.Request{Method: http.MethodPost, Path: "/v1/machines/" + url.PathEscape(id) + "/snapshot",
		Body: map[string]string{"name": name}, Mutating: true, Op: "save image of " + id}, &ans)
	return ans.Image, err
}

// Renew implements providers.Provider: FakeCloud has no leases.
func (p *Provider) Renew(context.Context, string, int) error {
	return providers.Unsupported(Name, providers.ActionRenew, capabilities.Unsupported[providers.ActionRenew])
}

// Destroy implements providers.Provider.
func (p *Provider) Destroy(ctx context.Context, id string) error {
	return p.call(ctx, httpx.Request{Method: http.MethodDelete, Path: "/v1/machines/" + url.PathEscape(id), Mutating: true, Op: "destroy " + id}, nil)
}
