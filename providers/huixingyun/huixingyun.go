// Package huixingyun is the gpu-mcp adapter for HuiXingYun's (慧星云) GPU API
// (vendor-api.md section 2, quirks 5.1).
//
// Identifiers (all vendor-local; the registry adds "huixingyun:" for everything above it):
//   - offer:    the product's gpu_type, e.g. "geforce_rtx_4090_16u100m_106" (it already ends
//     with its zone code).
//   - image:    the image_id of a public or own image (a UUID), or "app:<app_type>" (e.g.
//     "app:comfyui") for a one-click app, which Launch buys through /gpu/application/buy.
//   - instance: the gid, e.g. "gpu-105b63811...". A gid never contains a comma: the API
//     treats "a,b" as two instances, so such ids are refused.
//
// The API has no get-one endpoint (an instance is found by filtering the list), no prices and
// no documented error format. Decisions where the documents are silent are written next to
// the code they shape; the important ones are repeated in Capabilities().Notes.
package huixingyun

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

// Name is the provider name, the prefix the registry gives every identifier of this adapter.
const Name = "huixingyun"

// DefaultBaseURL is HuiXingYun's API root.
const DefaultBaseURL = "https://api-v1.huixingyun.com"

// appImagePrefix marks an image id that names a one-click app rather than a disk image.
const appImagePrefix = "app:"

// Config configures the adapter.
type Config struct {
	// Token is an API token (a UUID from POST /generate/token or the console). It is sent as
	// the bare value of the Authorization header: no "Bearer", no quotes.
	Token string `env:"TOKEN"`
	// BaseURL defaults to DefaultBaseURL.
	BaseURL string `env:"BASE_URL"`
	// HTTPClient nil means http.DefaultTransport; HTTP.Timeout bounds each request anyway.
	HTTPClient *http.Client `env:"-"`
	// HTTP sets the timeout per request, the retries of reads and the circuit breaker.
	HTTP providers.HTTPOptions `env:"-"`
	// Logger nil means no logs.
	Logger *zerolog.Logger `env:"-"`
	// IntsAsNumbers sends request integers (num, gpu_count, pay_unit, pay_period) as JSON
	// numbers. The zero value sends them as strings ("1"), as every example in the vendor's
	// document does; the field table says int, and which one the server insists on is not
	// known (quirk 5.1.1).
	IntsAsNumbers bool `env:"-"`
}

// Provider is the HuiXingYun adapter. It is safe for concurrent use.
type Provider struct {
	http          *httpx.Client
	token         string
	intsAsNumbers bool
	log           zerolog.Logger

	mu sync.Mutex
	// cardless remembers how this process stopped each instance (gid -> card-less or not),
	// because the list does not say and each stop mode has its own start endpoint.
	cardless map[string]bool
}

var _ providers.Provider = (*Provider)(nil)

// New returns an adapter for cfg.
func New(cfg Config) *Provider {
	base := cfg.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	token := strings.TrimSpace(cfg.Token)
	p := &Provider{token: token, intsAsNumbers: cfg.IntsAsNumbers, log: zerolog.Nop(), cardless: map[string]bool{}}
	if cfg.Logger != nil {
		p.log = cfg.Logger.With().Str("provider", Name).Logger()
	}
	p.http = httpx.New(Name, base, func(h http.Header) { h.Set("Authorization", token) })
	p.http.HTTP = cfg.HTTPClient
	p.http.Configure(cfg.HTTP, httpx.NewBreaker(cfg.HTTP))
	return p
}

// Provider implements providers.VendorConfig.
func (c *Config) Provider(o providers.HTTPOptions, log *zerolog.Logger) providers.Provider {
	cfg := *c
	cfg.HTTP, cfg.Logger = o, log
	return New(cfg)
}

// Enabled implements providers.VendorConfig: the token enables HuiXingYun.
func (c *Config) Enabled() (bool, error) { return c.Token != "", nil }

// Secrets implements providers.VendorConfig.
func (c *Config) Secrets() []string { return []string{c.Token} }

// Name returns "huixingyun".
func (p *Provider) Name() string { return Name }

// Capabilities describes what HuiXingYun's API allows.
func (p *Provider) Capabilities() providers.Capabilities { return capabilities }

// Precheck refuses what HuiXingYun would refuse in the instance's current state and lists
// what the action interrupts or costs (rules).
func (p *Provider) Precheck(req providers.ActionRequest) ([]string, error) {
	return rules.Precheck(req)
}

// capabilities says what HuiXingYun's API allows, for list_providers and the rules of Precheck.
var capabilities = providers.Capabilities{
	Billing: []providers.BillingMode{providers.BillingHourly, providers.BillingDaily, providers.BillingMonthly},
	Notes: []string{
		"The API publishes no prices: offers carry none and the cost of a launch or renewal cannot be shown in advance.",
		"A launch prepays exactly one period for daily or monthly billing; extend it with renew_instance.",
		"Only hourly-billed instances can be destroyed, and only once they are stopped.",
		"An instance that never leaves Creating or Starting can be stopped (HuiXingYun documents no rule; it may refuse) and then, if billed by the hour, destroyed; a prepaid one keeps its lease until it expires.",
		"The API has no scheduled stop: an automatic stop has to be sent by the caller when the time comes.",
		"Renewal is for daily (1, 3 or 7 days) and monthly (1, 3 or 12 months) instances; hourly instances cannot be renewed.",
		"A launch answers with an order number only; the instance id appears once the vendor lists the instance.",
		"Image ids app:<app_type> launch a one-click app; its machine size is fixed by the vendor (1 GPU).",
		"Instance names are chosen by the vendor; a requested name is not sent.",
		"A saved image appears among the zone's own images when it is done; whether saving interrupts the instance is not documented.",
		"Card-less stops (GPU released) need their own start endpoint; this server remembers the stop mode only while it runs, and otherwise tries both.",
	},
	SaveImageStops:  false,
	PublishesPrices: false,
	KeepsBilling: map[providers.Action]string{
		providers.ActionStop: "perhaps its disks (HuiXingYun does not document whether a stopped instance's disks are billed; destroy it to be sure nothing is)",
	},
	ImageSaved: providers.SaveReportImages,
	// Every state but stopped and deleting: HuiXingYun documents no billing by state, and
	// destroys only stopped instances. A stopped instance is taken to bill no compute (a
	// card-less stop releases its GPU; what a normal stop bills is not documented).
	BillingStates: []providers.State{providers.StatePending, providers.StateStarting, providers.StateRunning,
		providers.StateRestarting, providers.StateStopping, providers.StateSaving, providers.StateError, providers.StateUnknown},
}

// call sends one request and decodes a 2xx answer into out (when non-nil).
func (p *Provider) call(ctx context.Context, r httpx.Request, out any) error {
	if p.token == "" {
		return &providers.Error{Kind: providers.KindAuth, Provider: Name, Op: r.Op,
			Message: "no API token is configured", Remedy: "set HUIXINGYUN_TOKEN to a token made with HuiXingYun's /generate/token or console"}
	}
	r.Method = http.MethodPost // every HuiXingYun endpoint is a POST (quirk 5.1.6 for the start endpoints)
	if r.Body == nil {
		r.Body = struct{}{} // "no parameters": an empty object is the safe choice
	}
	start := time.Now()
	resp, err := p.http.Do(ctx, r)
	ev := p.log.Debug().Str("op", r.Op).Str("path", r.Path).Dur("took", time.Since(start))
	if resp != nil {
		ev = ev.Int("status", resp.Status)
	}
	ev.Msg("huixingyun request")
	if err != nil {
		return p.refine(err, resp)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		// The body is not quoted in the message: instance lists carry passwords.
		e := &providers.Error{Kind: providers.KindUnavailable, Provider: Name, Op: r.Op, Status: resp.Status,
			Message: fmt.Sprintf("unreadable answer: %v", err), Remedy: "HuiXingYun answered something unexpected; try again later"}
		if r.Mutating {
			e.Kind = providers.KindUnknown
			e.Remedy = "the vendor may or may not have done it: check with list_instances before trying again"
		}
		return e
	}
	return nil
}

// refine puts the vendor's own words into an HTTP error, since its error format is not
// documented (quirk 5.1.14): a JSON message field when there is one.
func (p *Provider) refine(err error, resp *httpx.Response) error {
	e, ok := err.(*providers.Error)
	if !ok || resp == nil {
		return err
	}
	if m := errorBody(resp.Body); m != "" {
		e.Message = fmt.Sprintf("HTTP %d: %s", resp.Status, m)
	}
	if e.Kind == providers.KindAuth {
		e.Message = "the API token was refused (" + e.Message + ")"
		e.Remedy = "check HUIXINGYUN_TOKEN: it must be an active token from /generate/token or the console"
	}
	return e
}

// checkGID refuses ids the API would misread: empty ones, and lists ("a,b" acts on both).
func checkGID(op, gid string) error {
	if strings.TrimSpace(gid) == "" || strings.ContainsAny(gid, ", \t\r\n") {
		return &providers.Error{Kind: providers.KindInvalid, Provider: Name, Op: op,
			Message: fmt.Sprintf("%q is not a single instance id", gid),
			Remedy:  "pass one gid (e.g. gpu-105b638...) as list_instances shows it"}
	}
	return nil
}

func (p *Provider) reqInt(n int) reqInt { return reqInt{n: n, asNumber: p.intsAsNumbers} }

// rememberStop records how gid was stopped; forgetStop drops it.
func (p *Provider) rememberStop(gid string, cardless bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cardless[gid] = cardless
}

func (p *Provider) forgetStop(gid string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.cardless, gid)
}

func (p *Provider) stopMode(gid string) (cardless, known bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cardless, known = p.cardless[gid]
	return cardless, known
}
