// Package chenyu is the gpu-mcp adapter for Chenyu's (晨羽智云) open API v2
// (vendor-api.md section 4, quirks 5.3).
//
// Identifiers (all vendor-local; the registry adds "chenyu:" for everything above it):
//   - offer:    the GPU model's gpu_uuid from GET /gpu/list, e.g. "gpu_1234...". Chenyu has no
//     regions; one offer serves 1, 2, 4 or 8 GPUs.
//   - image:    a market or private image's uuid ("img_..."), launched with create_by_image;
//     or an app-market Pod as "pod:<uuid>" (its latest version) or "pod:<uuid>@<tag>",
//     launched with create_by_pod.
//   - instance: instance_uuid, e.g. "inst_1234...".
//
// Every answer is the {code,msg,data} envelope; code 0 (number or string) is success and
// action answers carry no data. Decisions where the documents are silent are written next to
// the code they shape; the ones an agent needs are repeated in Capabilities().Notes.
package chenyu

import (
	"context"
	"net/http"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

// Name is the provider name, the prefix the registry gives every identifier of this adapter.
const Name = "chenyu"

// DefaultBaseURL is Chenyu's API root.
const DefaultBaseURL = "https://www.chenyu.cn/api/open/v2"

// Config configures the adapter.
type Config struct {
	// APIKey is a key created in the Chenyu console ("API管理"); sent as
	// "Authorization: Bearer <APIKey>".
	APIKey string `env:"API_KEY"`
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string `env:"BASE_URL"`
	// HTTPClient nil means http.DefaultTransport; HTTP.Timeout bounds each request anyway.
	HTTPClient *http.Client `env:"-"`
	// HTTP sets the timeout per request, the retries of reads and the circuit breaker.
	HTTP providers.HTTPOptions `env:"-"`
	// Logger nil means no logs.
	Logger *zerolog.Logger `env:"-"`
}

// Provider is the Chenyu adapter. It is safe for concurrent use.
type Provider struct {
	http   *httpx.Client // authenticated calls
	public *httpx.Client // GET /image/market/list, which needs no key: the key is not sent there
	log    zerolog.Logger
	now    func() time.Time
}

var (
	_ providers.Provider        = (*Provider)(nil)
	_ providers.BalanceReporter = (*Provider)(nil)
	_ providers.StopScheduler   = (*Provider)(nil)
)

// New returns an adapter for cfg.
func New(cfg Config) *Provider {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	key := cfg.APIKey
	c := httpx.New(Name, base, func(h http.Header) { h.Set("Authorization", "Bearer "+key) })
	c.HTTP, c.UserAgent = cfg.HTTPClient, "gpu-mcp"
	pub := httpx.New(Name, base, nil)
	pub.HTTP, pub.UserAgent = cfg.HTTPClient, "gpu-mcp"
	// One breaker for both clients: it is the vendor that fails, whichever key is sent.
	br := httpx.NewBreaker(cfg.HTTP)
	c.Configure(cfg.HTTP, br)
	pub.Configure(cfg.HTTP, br)
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = cfg.Logger.With().Str("provider", Name).Logger()
	}
	return &Provider{http: c, public: pub, log: log, now: time.Now}
}

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, log *zerolog.Logger) providers.Provider {
	cfg := *c
	cfg.HTTP, cfg.Logger = o, log
	return New(cfg)
}

// Enabled implements providers.VendorConfig: the API key enables Chenyu.
func (c *Config) Enabled() (bool, error) { return c.APIKey != "", nil }

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.APIKey} }

// Name implements providers.Provider.
func (p *Provider) Name() string { return Name }

// renewWhy is why renew is unsupported.
const renewWhy = "chenyu documents no renew call and no billing choice at create: instances are billed by the hour"

// Capabilities implements providers.Provider.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities }

// Precheck implements providers.Provider with rules.
func (p *Provider) Precheck(req providers.ActionRequest) ([]string, error) {
	return rules.Precheck(req)
}

// capabilities says what Chenyu's API allows, for list_providers and the rules of Precheck.
var capabilities = providers.Capabilities{
	Unsupported: map[providers.Action]string{providers.ActionRenew: renewWhy},
	Billing:     []providers.BillingMode{providers.BillingHourly},
	Notes: []string{
		"Chenyu bills instances created through its API by the hour only. Offers also list Chenyu's day, week and month prices for information; gpu-mcp treats every listed price as per GPU (Chenyu does not say) and none but the hourly one can be chosen.",
		"An offer takes 1, 2, 4 or 8 GPUs. Images: public (market base images), private (your saved images) and app (app-market Pods: pod:<uuid> runs the latest version, pod:<uuid>@<tag> a given one).",
		"An instance's price_per_hour is the GPU model's listed hourly price times its GPU count; a Pod's own listed price is not added, because Chenyu does not say whether it is charged on top.",
		"save_image works only on a running instance, and Chenyu shuts the instance down once the image is saved; progress shows as image_save_status (saving, saved, failed) and the image in list_images kind=private. Image names must be unique.",
		"Destroy deletes the instance and all its data for good. Chenyu documents no required state; gpu-mcp refuses to destroy a running, stopping or restarting instance: stop it first.",
		"An instance stuck creating (1) or starting (24) cannot be shut down (Chenyu shuts down running instances only) but can be destroyed, which ends its billing (Chenyu documents no rule; it may refuse).",
		"A scheduled stop is sent as an absolute Unix time, as the shutdown_time field is documented (the page's example and notes speak of minutes; unverified). It must be at least 5 minutes ahead and needs a running instance.",
	},
	SaveImageStops:  true,
	PublishesPrices: true,
	KeepsBilling: map[providers.Action]string{
		providers.ActionStop:    "perhaps its disk (Chenyu does not document whether a stopped instance's disk is billed)",
		providers.ActionDestroy: "perhaps the private images saved from it, which are kept (Chenyu does not document whether they are billed)",
	},
	ImageSaved: providers.SaveReportInstance,
	// Every state but shut down (22, 4); Chenyu reports no deleting state. It documents no
	// billing by state, so creating, starting, restarting, shutting down, an abnormal stop (23)
	// and any unknown status count: they may bill.
	BillingStates: []providers.State{providers.StatePending, providers.StateStarting, providers.StateRunning,
		providers.StateRestarting, providers.StateStopping, providers.StateSaving, providers.StateError, providers.StateUnknown},
}

// Renew implements providers.Provider: Chenyu has no renew call.
func (p *Provider) Renew(ctx context.Context, id string, periods int) error {
	return providers.Unsupported(Name, providers.ActionRenew, renewWhy)
}

// errf builds an adapter error.
func errf(kind providers.ErrorKind, op, remedy, format string, args ...any) *providers.Error {
	return providers.Errorf(kind, Name, op, remedy, format, args...)
}
