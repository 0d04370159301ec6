package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

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
	LogLevel  string `env:"GPU_MCP_LOG_LEVEL" envDefault:"info"`

	ReadOnly           bool     `env:"GPU_MCP_READ_ONLY"`
	MaxPricePerHour    *float64 `env:"GPU_MCP_MAX_PRICE_PER_HOUR"`
	MaxHourlySpend     *float64 `env:"GPU_MCP_MAX_HOURLY_SPEND"`
	MaxGPUs            int      `env:"GPU_MCP_MAX_GPUS"`
	RequireElicitation bool     `env:"GPU_MCP_REQUIRE_ELICITATION"`
	AuditLog           string   `env:"GPU_MCP_AUDIT_LOG"`

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

// loadConfig reads the environment, then the flags in args; it returns the remaining
// arguments (the subcommand and its operands).
func loadConfig(args []string, environ map[string]string, stderr io.Writer) (Config, []string, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, nil, envError(err)
	}
	cfg.testHook = environ[testHookEnv]
	for _, v := range vendors.All() {
		vc, err := vendors.Load(v, environ)
		if err != nil {
			return cfg, nil, err
		}
		cfg.vendors = append(cfg.vendors, vendorConfig{vendor: v, config: vc})
	}
	fs := flag.NewFlagSet("gpu-mcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "stdio, http (streamable HTTP at /mcp) or sse (at /sse) [GPU_MCP_TRANSPORT]")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "listen address for http and sse [GPU_MCP_ADDR]")
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "run against built-in emulators of every cloud [GPU_MCP_DEMO]")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error; logs go to stderr [GPU_MCP_LOG_LEVEL]")
	fs.StringVar(&cfg.StateURL, "state", cfg.StateURL, "the state store: sqlite:///ABSOLUTE/PATH, postgres://... or memory: (default: a file in the user's state directory; memory: under --demo) [GPU_MCP_STATE_URL]")
	fs.BoolVar(&cfg.ReadOnly, "read-only", cfg.ReadOnly, "offer only the tools that change nothing [GPU_MCP_READ_ONLY]")
	fs.DurationVar(&cfg.ConfirmTTL, "confirm-ttl", cfg.ConfirmTTL, "lifetime of confirmation tokens [GPU_MCP_CONFIRM_TTL]")
	fs.DurationVar(&cfg.VendorTimeout, "vendor-timeout", cfg.VendorTimeout, "deadline of each vendor's part of a read [GPU_MCP_VENDOR_TIMEOUT]")
	fs.Usage = func() { usage(fs, stderr) }
	if err := fs.Parse(args); err != nil {
		return cfg, nil, err
	}
	if err := cfg.validate(); err != nil {
		return cfg, nil, err
	}
	cfg.redactor = redact.New(cfg.secrets()...)
	return cfg, fs.Args(), nil
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

func (c *Config) validate() error {
	switch c.Transport {
	case "stdio", "http", "sse":
	default:
		return fmt.Errorf("--transport %q is not accepted; use stdio, http or sse", c.Transport)
	}
	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error", "disabled":
	default:
		return fmt.Errorf("--log-level %q is not accepted; use debug, info, warn or error", c.LogLevel)
	}
	if c.ConfirmTTL < 10*time.Second || c.ConfirmTTL > 24*time.Hour {
		return fmt.Errorf("GPU_MCP_CONFIRM_TTL %s is not accepted; use between 10s and 24h", c.ConfirmTTL)
	}
	for name, v := range map[string]*float64{"GPU_MCP_MAX_PRICE_PER_HOUR": c.MaxPricePerHour, "GPU_MCP_MAX_HOURLY_SPEND": c.MaxHourlySpend} {
		if v != nil && *v < 0 {
			return fmt.Errorf("%s %v is not accepted; use a number of CNY, 0 or more", name, *v)
		}
	}
	if c.MaxGPUs < 0 {
		return fmt.Errorf("GPU_MCP_MAX_GPUS %d is not accepted; use a whole number of GPUs, 1 or more (0: no limit)", c.MaxGPUs)
	}
	if c.PollInterval < 10*time.Millisecond || c.PollInterval > time.Minute {
		return fmt.Errorf("GPU_MCP_POLL_INTERVAL %s is not accepted; use a duration between 10ms and 1m (default 3s)", c.PollInterval)
	}
	if c.CallBudget < tools.MinCallBudget || c.CallBudget > tools.MaxCallBudget {
		return fmt.Errorf("GPU_MCP_CALL_BUDGET %s is not accepted; use a duration between %s and %s (default 45s): the longest a tool call blocks before it answers with a handle to follow", c.CallBudget, tools.MinCallBudget, tools.MaxCallBudget)
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

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `gpu-mcp: an MCP server for renting GPU machines on `+vendors.Titles()+`.

Usage:
  gpu-mcp [flags]                    serve MCP over stdio (the default)
  gpu-mcp [flags] tools              list the tools
  gpu-mcp [flags] call TOOL ['{json}']  run one tool in-process and print its text
  gpu-mcp emulate [--addr 127.0.0.1:0]  serve the vendor emulators until stopped; prints the
                                     environment lines that point gpu-mcp at them
  gpu-mcp [flags] reap               carry out due auto-stops and launches left in flight, then
                                     exit (a line per action; status 1 if one failed): for cron
  gpu-mcp [flags] leases             list the auto-stops, overdue ones and orphans
  gpu-mcp version

Flags (each also read from the environment variable in brackets; flags win):
`)
	fs.PrintDefaults()
	hints := make([]string, 0, len(vendors.All()))
	for _, v := range vendors.All() {
		hints = append(hints, v.Hint)
	}
	fmt.Fprintf(w, "\nProviders are enabled by their credentials: %s (and *_BASE_URL to point them elsewhere).\n",
		strings.Join(hints, "; "))
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
