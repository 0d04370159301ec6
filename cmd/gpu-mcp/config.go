package main

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/redact"
	"github.com/gpu-mcp/gpu-mcp/tools"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// Config is gpu-mcp's configuration: environment first, flags on top.
type Config struct {
	Transport string `env:"GPU_MCP_TRANSPORT" envDefault:"stdio"`
	Addr      string `env:"GPU_MCP_ADDR" envDefault:"127.0.0.1:8080"`
	Demo      bool   `env:"GPU_MCP_DEMO"`
	// LogLevel is empty until loadConfig sets the command's default (info for the servers,
	// warn for the one-shot commands).
	LogLevel string `env:"GPU_MCP_LOG_LEVEL"`

	ReadOnly           bool     `env:"GPU_MCP_READ_ONLY"`
	MaxPricePerHour    *float64 `env:"GPU_MCP_MAX_PRICE_PER_HOUR"`
	MaxHourlySpend     *float64 `env:"GPU_MCP_MAX_HOURLY_SPEND"`
	MaxUpfront         *float64 `env:"GPU_MCP_MAX_UPFRONT"`
	MaxSpend           *float64 `env:"GPU_MCP_MAX_SPEND"`
	MaxGPUs            int      `env:"GPU_MCP_MAX_GPUS"`
	RequireElicitation bool     `env:"GPU_MCP_REQUIRE_ELICITATION"`
	// Elicitation is auto (ask through clients that declare elicitation) or off (never: plans
	// and tokens for every client).
	Elicitation string `env:"GPU_MCP_ELICITATION" envDefault:"auto"`
	AuditLog    string `env:"GPU_MCP_AUDIT_LOG"`

	// MaxLease caps every auto-stop lease; DefaultAutoStop is the lease of a launch that names none.
	MaxLease        time.Duration `env:"GPU_MCP_MAX_LEASE"`
	DefaultAutoStop time.Duration `env:"GPU_MCP_DEFAULT_AUTO_STOP"`

	// AuthToken is the bearer token every HTTP or SSE request must carry.
	AuthToken string `env:"GPU_MCP_AUTH_TOKEN"`
	// RequestTimeout bounds one HTTP request to a vendor.
	RequestTimeout time.Duration `env:"GPU_MCP_REQUEST_TIMEOUT" envDefault:"20s"`
	// ReadRetries is how often a failed read (never a change) is retried.
	ReadRetries int `env:"GPU_MCP_READ_RETRIES" envDefault:"2"`
	// OfferCacheTTL is how long an offer list is served from memory.
	OfferCacheTTL time.Duration `env:"GPU_MCP_OFFER_CACHE_TTL" envDefault:"30s"`

	// Exec is GPU_MCP_EXEC: on, confirm or off for the tools that change an instance's
	// machine; exec is it parsed.
	Exec string `env:"GPU_MCP_EXEC" envDefault:"on"`
	exec tools.ExecMode
	// SSHKey is a private key (the key itself, or its file) tried before the vendor's
	// password on every machine; SSHKeyPassphrase decrypts it.
	SSHKey           string `env:"GPU_MCP_SSH_KEY"`
	SSHKeyPassphrase string `env:"GPU_MCP_SSH_KEY_PASSPHRASE"`
	// Workspace is the directory of this host that the copy tools read and write (default
	// ~/gpu-mcp-workspace).
	Workspace string `env:"GPU_MCP_WORKSPACE"`

	// StateURL names the durable state store (see state.Open); empty: the default file,
	// except under --demo, which keeps its state in memory unless a store is named.
	StateURL string `env:"GPU_MCP_STATE_URL"`

	ConfirmSecret string        `env:"GPU_MCP_CONFIRM_SECRET"`
	ConfirmTTL    time.Duration `env:"GPU_MCP_CONFIRM_TTL" envDefault:"5m"`
	VendorTimeout time.Duration `env:"GPU_MCP_VENDOR_TIMEOUT" envDefault:"30s"`
	// CallBudget is the longest a call of a long tool blocks before it answers with a handle.
	CallBudget time.Duration `env:"GPU_MCP_CALL_BUDGET" envDefault:"45s"`
	// PollInterval is how often a launch or wait_instance asks the vendor again.
	PollInterval time.Duration `env:"GPU_MCP_POLL_INTERVAL" envDefault:"3s"`
	// DemoStepDelay is how long each transitional state of a demo instance lasts.
	DemoStepDelay time.Duration `env:"GPU_MCP_DEMO_STEP_DELAY" envDefault:"2s"`
	// DemoLatency is extra latency added to every request of the demo emulators: one duration
	// for all, or per vendor ("<vendor>=100ms,...").
	DemoLatency string `env:"GPU_MCP_DEMO_LATENCY"`
	// demoLatency is DemoLatency parsed by validate: vendor name to latency.
	demoLatency map[string]time.Duration
	// redactor removes the secrets above, and those the adapters add, from vendor errors and
	// from everything written to stderr.
	redactor *redact.Redactor

	// vendors are the vendors' own configurations, each read under its prefix.
	vendors []vendorConfig
	// flagged are the flags given on the command line, by name: an error about the value
	// names the flag when it came from one, else the environment variable.
	flagged map[string]bool
	// testHook is GPU_MCP_TESTHOOK, for crash tests only (see newFleet).
	testHook string
}

// vendorConfig is one vendor's configuration, as the environment set it.
type vendorConfig struct {
	vendor providers.Vendor
	config providers.VendorConfig
}

// latencyExample is a GPU_MCP_DEMO_LATENCY value that names every vendor.
func latencyExample() string {
	pairs := make([]string, 0, len(vendors.Names()))
	for i, n := range vendors.Names() {
		pairs = append(pairs, fmt.Sprintf("%s=%dms", n, 100*(i+1)))
	}
	return strings.Join(pairs, ",")
}

// parseDemoLatency parses GPU_MCP_DEMO_LATENCY: "" (none), one duration for every emulator,
// or comma-separated vendor=duration pairs; durations are 0 or more.
func parseDemoLatency(s string) (map[string]time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	bad := func(why string) error {
		return fmt.Errorf("GPU_MCP_DEMO_LATENCY %q is not accepted (%s); use one duration for all emulators such as 100ms, "+
			"or vendor=duration pairs such as %s (vendors: %s)",
			s, why, latencyExample(), strings.Join(vendors.Names(), ", "))
	}
	dur := func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, bad(fmt.Sprintf("%q is not a duration", strings.TrimSpace(v)))
		}
		if d < 0 {
			return 0, bad("a latency cannot be negative")
		}
		return d, nil
	}
	out := map[string]time.Duration{}
	if !strings.Contains(s, "=") {
		d, err := dur(s)
		if err != nil {
			return nil, err
		}
		for _, v := range vendors.Names() {
			out[v] = d
		}
		return out, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(part, "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok {
			return nil, bad(fmt.Sprintf("%q is not vendor=duration", strings.TrimSpace(part)))
		}
		if !slices.Contains(vendors.Names(), name) {
			return nil, bad(fmt.Sprintf("unknown vendor %q", name))
		}
		if _, dup := out[name]; dup {
			return nil, bad(fmt.Sprintf("%s is given twice", name))
		}
		d, err := dur(val)
		if err != nil {
			return nil, err
		}
		out[name] = d
	}
	return out, nil
}

// loadConfig reads the environment, then the command line (flags win): the configuration and
// what to run. A command line it cannot take is a *usageError, reported before the environment
// is judged, so that --help works whatever the environment holds.
func loadConfig(args []string, environ map[string]string) (Config, *invocation, error) {
	var cfg Config
	envErr := env.ParseWithOptions(&cfg, env.Options{Environment: environ})
	inv, err := parseCommandLine(args, &cfg)
	if err != nil || inv.help || inv.version {
		return cfg, inv, err
	}
	if envErr != nil {
		return cfg, inv, envError(envErr)
	}
	if strings.TrimSpace(cfg.LogLevel) == "" {
		cfg.LogLevel = "info"
		if inv.cmd.oneShot {
			cfg.LogLevel = "warn"
		}
	}
	cfg.testHook = environ[testHookEnv]
	for _, v := range vendors.All() {
		vc, err := vendors.Load(v, environ)
		if err != nil {
			return cfg, inv, err
		}
		cfg.vendors = append(cfg.vendors, vendorConfig{vendor: v, config: vc})
	}
	if err := cfg.validate(); err != nil {
		return cfg, inv, err
	}
	cfg.redactor = redact.New(cfg.secrets()...)
	return cfg, inv, nil
}

// envError names the environment variable a parse error is about, and what it accepts.
func envError(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("configuration: %w", err)
	}
	var msgs []string
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			msgs = append(msgs, e.Error())
			continue
		}
		name := pe.Name
		for _, t := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[netConfig]()} {
			if f, ok := t.FieldByName(pe.Name); ok {
				name = f.Tag.Get("env")
			}
		}
		what := map[string]string{"time.Duration": "a duration such as 90s or 5m", "bool": "true or false",
			"*float64": "a number", "int": "a whole number"}[pe.Type.String()]
		msgs = append(msgs, fmt.Sprintf("%s is not accepted (%v); use %s", name, pe.Err, orDefault(what, pe.Type.String())))
	}
	return errors.New(strings.Join(msgs, "; "))
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// name is how an error names a setting: by its flag when the command line gave it, else by
// its environment variable.
func (c *Config) name(flagName, envName string) string {
	if c.flagged[flagName] {
		return "--" + flagName
	}
	return envName
}

// minConfirmSecret is the shortest GPU_MCP_CONFIRM_SECRET accepted: the key of an HMAC that
// guards purchases must not be guessable (the key made when it is unset has 32 random bytes).
const minConfirmSecret = 32

// durationRange is a duration setting and the values it accepts: min <= d <= max.
type durationRange struct {
	flag, env string
	d         *time.Duration
	min, max  time.Duration
	note      string // what the default or 0 means
}

func (c *Config) validate() error {
	switch c.Transport {
	case "stdio", "http", "sse":
	default:
		return fmt.Errorf("%s %q is not accepted; use stdio, http or sse", c.name("transport", "GPU_MCP_TRANSPORT"), c.Transport)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error", "disabled":
	default:
		return fmt.Errorf("%s %q is not accepted; use debug, info, warn or error", c.name("log-level", "GPU_MCP_LOG_LEVEL"), c.LogLevel)
	}
	for _, r := range []durationRange{
		{"confirm-ttl", "GPU_MCP_CONFIRM_TTL", &c.ConfirmTTL, 10 * time.Second, 24 * time.Hour, "default 5m"},
		{"vendor-timeout", "GPU_MCP_VENDOR_TIMEOUT", &c.VendorTimeout, 100 * time.Millisecond, 10 * time.Minute, "default 30s"},
		{"", "GPU_MCP_REQUEST_TIMEOUT", &c.RequestTimeout, 100 * time.Millisecond, 10 * time.Minute, "default 20s"},
		{"", "GPU_MCP_OFFER_CACHE_TTL", &c.OfferCacheTTL, 0, time.Hour, "0: no cache; default 30s"},
		{"", "GPU_MCP_POLL_INTERVAL", &c.PollInterval, 10 * time.Millisecond, time.Minute, "default 3s"},
		{"", "GPU_MCP_DEMO_STEP_DELAY", &c.DemoStepDelay, 0, time.Hour, "0: each step at the next request; default 2s"},
	} {
		if *r.d < r.min || *r.d > r.max {
			return fmt.Errorf("%s %s is not accepted; use a duration from %s to %s (%s)", c.name(r.flag, r.env), *r.d, fleet.ShortDuration(r.min), fleet.ShortDuration(r.max), r.note)
		}
	}
	switch strings.ToLower(strings.TrimSpace(c.Elicitation)) {
	case "auto", "":
	case "off":
		if c.RequireElicitation {
			return errors.New("GPU_MCP_ELICITATION=off and GPU_MCP_REQUIRE_ELICITATION=true contradict each other: the one never asks through the client, the other acts only on an answer given there; unset one")
		}
	default:
		return fmt.Errorf("GPU_MCP_ELICITATION %q is not accepted; use auto (ask through clients that declare elicitation, the default) or off (never ask: a plan and a token for every client)", c.Elicitation)
	}
	if c.ReadRetries < 0 || c.ReadRetries > 10 {
		return fmt.Errorf("GPU_MCP_READ_RETRIES %d is not accepted; use a whole number from 0 to 10 (default 2)", c.ReadRetries)
	}
	if n := len(c.ConfirmSecret); n > 0 && n < minConfirmSecret {
		return fmt.Errorf("GPU_MCP_CONFIRM_SECRET is %d bytes long; use at least %d random bytes, e.g. openssl rand -hex 32 (unset: a random key kept in the state store)", n, minConfirmSecret)
	}
	for _, l := range []struct {
		name string
		v    *float64
	}{{"GPU_MCP_MAX_PRICE_PER_HOUR", c.MaxPricePerHour}, {"GPU_MCP_MAX_HOURLY_SPEND", c.MaxHourlySpend},
		{"GPU_MCP_MAX_UPFRONT", c.MaxUpfront}, {"GPU_MCP_MAX_SPEND", c.MaxSpend}} {
		if l.v != nil && (*l.v < 0 || math.IsNaN(*l.v) || math.IsInf(*l.v, 0)) {
			return fmt.Errorf("%s %v is not accepted; use a number of CNY, 0 or more", l.name, *l.v)
		}
	}
	if c.MaxGPUs < 0 {
		return fmt.Errorf("GPU_MCP_MAX_GPUS %d is not accepted; use a whole number of GPUs, 1 or more (0: no limit)", c.MaxGPUs)
	}
	if c.CallBudget < tools.MinCallBudget || c.CallBudget > tools.MaxCallBudget {
		return fmt.Errorf("%s %s is not accepted; use a duration from %s to %s (default 45s): the longest a tool call blocks before it answers with a handle to follow", c.name("", "GPU_MCP_CALL_BUDGET"), c.CallBudget, fleet.ShortDuration(tools.MinCallBudget), fleet.ShortDuration(tools.MaxCallBudget))
	}
	if err := c.validateLeases(); err != nil {
		return err
	}
	exec, err := tools.ParseExecMode(c.Exec)
	if err != nil {
		return err
	}
	c.exec = exec
	lat, err := parseDemoLatency(c.DemoLatency)
	if err != nil {
		return err
	}
	c.demoLatency = lat
	for _, v := range c.vendors {
		if _, err := v.config.Enabled(); err != nil && !c.Demo {
			return err
		}
	}
	return nil
}

// secrets are the configured credentials, which must never be written anywhere.
func (c *Config) secrets() []string {
	out := []string{c.ConfirmSecret, c.AuthToken, c.SSHKeyPassphrase}
	if key := strings.TrimSpace(c.SSHKey); strings.HasPrefix(key, "-----BEGIN") {
		out = append(out, key) // a key given inline, and each line of it
		for _, line := range strings.Split(key, "\n") {
			if line = strings.TrimSpace(line); len(line) >= 16 && !strings.HasPrefix(line, "-----") {
				out = append(out, line)
			}
		}
	}
	if u, err := url.Parse(c.StateURL); err == nil && u.User != nil {
		if pw, ok := u.User.Password(); ok {
			out = append(out, pw) // the database's, in a postgres:// URL
		}
	}
	for _, v := range c.vendors {
		out = append(out, v.config.Secrets()...)
	}
	return out
}
