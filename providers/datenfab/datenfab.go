// Package datenfab is the gpu-mcp adapter for Datenfab's compute API, a re-branded copy of
// NeoLink.AI's MatrixDC ("mdc") API (vendor-api.md section 3, quirks 5.2).
//
// Identifiers (all vendor-local; the registry adds "datenfab:" for everything above it):
//   - offer:    "<clusterName>/<skusID>/<sellingType>", e.g. "host-cluster/2/1": one SKU row
//     of GET /skus/computings, which carries one selling type (billing mode). Create needs the
//     cluster (path), the SKU id (Cost.GPUSKUID) and the selling type (Cost.CostType).
//   - image:    the full registry reference the create call takes, e.g.
//     "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-...". Any reference is accepted.
//   - instance: the instance "name" (e.g. "instance-4ca9xxxx"), not its uid. The cluster an
//     instance lives in is remembered from list and create answers; on a miss every cluster
//     is listed.
//
// Decisions where the documents are silent are written next to the code they shape; the
// important ones are repeated in Capabilities().Notes so that an agent sees them.
package datenfab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

// Name is the provider name, the prefix the registry gives every identifier of this adapter.
const Name = "datenfab"

// DefaultBaseURL is Datenfab's API root. The upstream NeoLink.AI deployment is at
// https://neolink-ai.com/mdc/api/v1 and answers the same API.
const DefaultBaseURL = "https://demo.cdc.datenfab.com/mdc/api/v1"

// Config configures the adapter.
type Config struct {
	// Token is an API credential created in the console ("API 凭证"). Sent as
	// "Authorization: bearer <token>" (lowercase bearer, as every document example).
	Token string `env:"TOKEN"`
	// Namespace is the account's user id; sent as the "namespace" header and in create bodies.
	Namespace string `env:"NAMESPACE"`
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string `env:"BASE_URL"`
	// HTTPClient nil means http.DefaultTransport; HTTP.Timeout bounds each request anyway.
	HTTPClient *http.Client `env:"-"`
	// HTTP sets the timeout per request, the retries of reads and the circuit breaker.
	HTTP providers.HTTPOptions `env:"-"`
	// Logger nil means no logs.
	Logger *zerolog.Logger `env:"-"`
}

// Provider is the Datenfab adapter. It is safe for concurrent use.
type Provider struct {
	http      *httpx.Client
	namespace string
	log       zerolog.Logger
	now       func() time.Time

	mu       sync.Mutex
	clusters map[string]string     // instance name -> cluster name
	regions  map[string]regionInfo // cluster name -> region
	// regionList is GET /regions as last read (nil: not read, or forgotten), at regionsAt.
	regionList []wireRegion
	regionsAt  time.Time
	saved      []savedImage // images this process asked to save
}

type regionInfo struct {
	Name, Harbor string
}

type savedImage struct {
	Ref, Instance, Cluster, Region string
	At                             time.Time
}

var _ providers.Provider = (*Provider)(nil)

// New returns an adapter for cfg.
func New(cfg Config) *Provider {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	token, ns := cfg.Token, cfg.Namespace
	c := httpx.New(Name, base, func(h http.Header) {
		h.Set("Authorization", "bearer "+token)
		h.Set("namespace", ns)
	})
	c.HTTP = cfg.HTTPClient
	c.Configure(cfg.HTTP, httpx.NewBreaker(cfg.HTTP))
	c.UserAgent = "gpu-mcp"
	log := zerolog.Nop()
	if cfg.Logger != nil {
		log = cfg.Logger.With().Str("provider", Name).Logger()
	}
	return &Provider{
		http: c, namespace: ns, log: log, now: time.Now,
		clusters: map[string]string{}, regions: map[string]regionInfo{},
	}
}

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, log *zerolog.Logger) providers.Provider {
	cfg := *c
	cfg.HTTP, cfg.Logger = o, log
	return New(cfg)
}

// Enabled implements providers.VendorConfig: the token and the namespace, both, enable
// Datenfab.
func (c *Config) Enabled() (bool, error) {
	switch {
	case c.Token != "" && c.Namespace == "":
		return false, errors.New("DATENFAB_TOKEN is set but DATENFAB_NAMESPACE is not: datenfab needs both")
	case c.Token == "" && c.Namespace != "":
		return false, errors.New("DATENFAB_NAMESPACE is set but DATENFAB_TOKEN is not: datenfab needs both")
	}
	return c.Token != "", nil
}

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.Token} }

// Name implements providers.Provider.
func (p *Provider) Name() string { return Name }

// maxSaneGPUHourCNY bounds what the adapter believes an hourly "unit-price" annotation can be
// per GPU. The seed shows "250" on a one-GPU RTX 4090 instance whose SKU costs far less per
// hour, so the annotation's unit is not CNY/hour there (fen would fit: 2.50 CNY); values above
// this bound are not shown as a price rather than guessed at.
const maxSaneGPUHourCNY = 50

// Capabilities implements providers.Provider.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities }

// Precheck implements providers.Provider with rules.
func (p *Provider) Precheck(req providers.ActionRequest) ([]string, error) {
	return rules.Precheck(req)
}

// capabilities says what Datenfab's API allows, for list_providers and the rules of Precheck.
var capabilities = providers.Capabilities{
	Unsupported: map[providers.Action]string{
		providers.ActionRestart: "Datenfab has no restart call; stop the instance, then start it (two separate confirmed actions)",
		providers.ActionRenew:   "datenfab documents no renew call (its create call hints at one with CostTime \"+3D\", but the endpoint is not documented); extend a prepaid lease in the Datenfab console",
	},
	Billing: []providers.BillingMode{providers.BillingHourly, providers.BillingDaily, providers.BillingWeekly, providers.BillingMonthly},
	Notes: []string{
		"Each offer is one SKU row with one billing mode: launch with the offer whose billing matches (hourly, daily, weekly or monthly) and its GPU count; a prepaid launch buys `periods` periods (default 1).",
		"Offer prices are the SKU's listed price for one period divided by its GPU count. Discount ratios are shown in the offer notes while their window is open; Datenfab does not document whether the listed price already includes them.",
		"An instance's price_per_hour comes from its unit-price annotation only when it is hourly-billed and the value is plausible in CNY/hour (at most 50 per GPU); otherwise it is left out because the annotation's unit is undocumented.",
		"Destroy needs a stopped instance: stop it first. Deleting removes the instance and its disks; this cannot be undone.",
		"An instance that never leaves Creating can be powered off (Datenfab documents no rule; it may refuse) and then deleted; a failed one can be deleted directly.",
		"The API reports ScheduleStopTimestamp but documents no call to set it: an automatic stop has to be sent by the caller when the time comes.",
		"save_image powers the instance off and saves the running container as an image; the resulting reference is assumed to be <registry>/<namespace>/<name>:<tag>, which the documents do not confirm. Datenfab has no call to check whether the save finished.",
		"Datenfab has no image-list API: list_images shows the official images known from the documents and the images saved through this server; any full registry reference is accepted as image_id.",
		"Per NeoLink's rules (inherited, unconfirmed for Datenfab): storage is charged while powered off, and an instance's data is deleted after 15 days powered off; a prepaid instance powers off at expiry.",
	},
	SaveImageStops:  true,
	PublishesPrices: true,
	KeepsBilling: map[providers.Action]string{
		providers.ActionStop:      "the storage of its disks, ¥0.01/GB/day (NeoLink's rules, unconfirmed for Datenfab)",
		providers.ActionSaveImage: savedImagesBill,
		providers.ActionDestroy:   savedImagesBill,
	},
	ImageSaved: providers.SaveReportNone,
	// Pay-as-you-go is billed from power-on to power-off or deletion (NeoLink's rules): every
	// state until the instance is off. Powered off, only storage is charged, by the GB and day;
	// deleting starts from powered off.
	BillingStates: []providers.State{providers.StatePending, providers.StateStarting, providers.StateRunning,
		providers.StateRestarting, providers.StateStopping, providers.StateSaving, providers.StateError, providers.StateUnknown},
}

// savedImagesBill is what saved images cost on Datenfab.
const savedImagesBill = "the storage of saved images beyond 30 GB in total, ¥0.01/GB/day (NeoLink's rules, unconfirmed for Datenfab)"

// Renew implements providers.Provider: Datenfab documents no renew call.
func (p *Provider) Renew(ctx context.Context, id string, periods int) error {
	return providers.Unsupported(Name, providers.ActionRenew, "datenfab documents no renew call; extend a prepaid lease in the Datenfab console")
}

// Restart implements providers.Provider. Stop-then-start would be two mutations that can fail
// half-way, so it is refused instead of emulated.
func (p *Provider) Restart(ctx context.Context, id string) error {
	return providers.Unsupported(Name, providers.ActionRestart, "Datenfab has no restart call; stop the instance, then start it")
}

// call sends r and refines the shared client's error with the vendor's message and kind.
func (p *Provider) call(ctx context.Context, r httpx.Request) (*httpx.Response, error) {
	start := p.now()
	resp, err := p.http.Do(ctx, r)
	ev := p.log.Debug().Str("method", r.Method).Str("path", r.Path).Dur("took", p.now().Sub(start))
	if resp != nil {
		ev = ev.Int("status", resp.Status)
	}
	ev.Msg("datenfab request")
	if err != nil {
		return resp, p.refine(err, resp, r)
	}
	return resp, nil
}

// getJSON sends a GET and decodes the answer into v.
func (p *Provider) getJSON(ctx context.Context, path string, q url.Values, op string, v any) error {
	r := httpx.Request{Method: http.MethodGet, Path: path, Query: q, Op: op}
	resp, err := p.call(ctx, r)
	if err != nil {
		return err
	}
	return p.http.DecodeJSON(r, resp, v)
}

// action sends a mutating call whose answer is documented as the JSON string "ok". Any 2xx
// counts as done: "ok", another string, an empty body or an object (quirk 5.2.7).
func (p *Provider) action(ctx context.Context, method, path string, q url.Values, body any, op string) error {
	resp, err := p.call(ctx, httpx.Request{Method: method, Path: path, Query: q, Body: body, Mutating: true, Op: op})
	if err != nil {
		return err
	}
	p.checkAnswer(op, resp.Body)
	return nil
}

// checkAnswer logs a 2xx answer that is not one of the documented shapes, without its content
// beyond a short excerpt (action answers carry no secrets).
func (p *Provider) checkAnswer(op string, body []byte) {
	s := strings.TrimSpace(string(body))
	if s == "" || strings.HasPrefix(s, "{") {
		return
	}
	var str string
	if json.Unmarshal([]byte(s), &str) == nil && strings.EqualFold(strings.TrimSpace(str), "ok") {
		return
	}
	p.log.Warn().Str("op", op).Str("answer", p.http.Excerpt(body)).Msg("datenfab answered an action with something other than \"ok\"; treating the 2xx status as success")
}

// businessWords mark a 4xx answer as a business refusal (balance, stock) rather than a bad
// request. Datenfab documents no error format, so this is a heuristic on its message.
// It is compiled when first needed: case folding over these words takes a millisecond, which
// every start would pay.
var businessWords = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)insufficient|not enough|sold out|out of stock|balance|quota|余额|不足|库存|售罄|欠费`)
})

// refine turns the shared client's status error into one carrying Datenfab's own message and
// a kind and remedy that fit. Datenfab documents no error format: JSON objects with a
// message/msg/error/reason field, JSON strings and plain text are all read.
func (p *Provider) refine(err error, resp *httpx.Response, r httpx.Request) error {
	pe, ok := err.(*providers.Error)
	if !ok || resp == nil || resp.Status < 400 {
		return err
	}
	msg := vendorMessage(resp.Body)
	if msg == "" {
		msg = p.http.Excerpt(resp.Body)
	}
	pe.Message = fmt.Sprintf("HTTP %d: %s", resp.Status, msg)
	switch {
	case pe.Kind == providers.KindAuth:
		pe.Remedy = "check DATENFAB_TOKEN (an API credential from the console's API 凭证 page) and DATENFAB_NAMESPACE (your Datenfab user id)"
	case resp.Status == http.StatusConflict:
		pe.Kind = providers.KindConflict
		pe.Remedy = "the instance is not in a state that allows this; check it with get_instance and wait or change its state first"
	case resp.Status == http.StatusPaymentRequired || (resp.Status < 500 && pe.Kind == providers.KindInvalid && businessWords().MatchString(msg)):
		pe.Kind = providers.KindRejected
		pe.Remedy = "Datenfab refused for a business reason (balance or capacity): top up the account or choose another offer"
	case pe.Kind == providers.KindNotFound:
		pe.Remedy = "check the id with list_instances or list_gpu_offers"
	case pe.Kind == providers.KindInvalid:
		pe.Remedy = "Datenfab refused the request as invalid; nothing was changed"
	}
	return pe
}

// vendorMessage extracts the human message of an error body ("": none, quote the body).
func vendorMessage(body []byte) string {
	var s string
	if json.Unmarshal(body, &s) == nil && strings.TrimSpace(s) != "" {
		return s
	}
	var m map[string]any
	if json.Unmarshal(body, &m) == nil {
		for _, k := range []string{"message", "msg", "error", "reason", "detail"} {
			if v, ok := m[k].(string); ok && strings.TrimSpace(v) != "" {
				return v
			}
		}
	}
	return ""
}

// errf builds an adapter error.
func errf(kind providers.ErrorKind, op, remedy, format string, args ...any) *providers.Error {
	return providers.Errorf(kind, Name, op, remedy, format, args...)
}
