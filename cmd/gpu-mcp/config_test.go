package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/vendors"
)

func TestFlagsWinOverEnvironment(t *testing.T) {
	env := map[string]string{"GPU_MCP_TRANSPORT": "sse", "GPU_MCP_LOG_LEVEL": "debug", "GPU_MCP_CONFIRM_TTL": "1m", "GPU_MCP_DEMO": "true"}
	cfg, rest, err := loadConfig([]string{"--transport", "stdio", "--confirm-ttl", "90s", "call", "list_providers"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport != "stdio" || cfg.LogLevel != "debug" || cfg.ConfirmTTL != 90*time.Second || !cfg.Demo {
		t.Errorf("cfg = %+v", cfg)
	}
	if rest.cmd.name != "call" || strings.Join(rest.operands, " ") != "list_providers" {
		t.Errorf("command %s, operands %v", rest.cmd.name, rest.operands)
	}
}

func TestConfigDefaultsAndCredentials(t *testing.T) {
	// Every vendor's variables, under its prefix, with its secrets distinct.
	environ := map[string]string{}
	for _, v := range vendors.All() {
		for _, name := range vendors.Variables(v) {
			environ[name] = "value-of-" + name
			if strings.HasSuffix(name, "_URL") {
				environ[name] = "https://" + strings.ToLower(name) + ".example"
			}
		}
	}
	cfg, _, err := loadConfig(nil, environ)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxPricePerHour != nil || cfg.MaxHourlySpend != nil || cfg.MaxUpfront != nil || cfg.MaxSpend != nil || cfg.MaxGPUs != 0 || cfg.ReadOnly {
		t.Errorf("limits set by default: %+v", cfg)
	}
	lim, _, err := loadConfig([]string{"--read-only"}, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "0", "GPU_MCP_MAX_HOURLY_SPEND": "12.5", "GPU_MCP_MAX_GPUS": "2",
		"GPU_MCP_MAX_UPFRONT": "300", "GPU_MCP_MAX_SPEND": "500.5"})
	if err != nil {
		t.Fatal(err)
	}
	if lim.MaxPricePerHour == nil || *lim.MaxPricePerHour != 0 || *lim.MaxHourlySpend != 12.5 || lim.MaxGPUs != 2 || !lim.ReadOnly ||
		lim.MaxUpfront == nil || *lim.MaxUpfront != 300 || lim.MaxSpend == nil || *lim.MaxSpend != 500.5 {
		t.Errorf("limits: %+v", lim)
	}
	if cfg.Transport != "stdio" || cfg.Addr != "127.0.0.1:8080" || cfg.ConfirmTTL != 5*time.Minute || cfg.Demo || cfg.CallBudget != 45*time.Second {
		t.Errorf("defaults: %+v", cfg)
	}
	if len(cfg.vendors) != len(vendors.All()) {
		t.Fatalf("%d vendor configurations, want %d", len(cfg.vendors), len(vendors.All()))
	}
	for _, v := range cfg.vendors {
		if on, err := v.config.Enabled(); !on || err != nil {
			t.Errorf("%s not enabled by its variables: %v", v.vendor.Name, err)
		}
		for _, sec := range v.config.Secrets() {
			if !strings.HasPrefix(sec, "value-of-"+v.vendor.EnvPrefix) || !slices.Contains(cfg.secrets(), sec) {
				t.Errorf("%s: secret %q is not one of its variables, or not among the secrets kept out of the logs", v.vendor.Name, sec)
			}
		}
	}
	if ps := configuredProviders(cfg, zerolog.Nop()); len(ps) != len(vendors.All()) {
		t.Errorf("%d providers configured, want every vendor", len(ps))
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	first := vendors.Names()[0]
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--transport", "carrier-pigeon"}, nil, "use stdio, http or sse"},
		{[]string{"--log-level", "loud"}, nil, "use debug, info, warn or error"},
		{nil, map[string]string{"GPU_MCP_CONFIRM_TTL": "1s"}, "GPU_MCP_CONFIRM_TTL 1s is not accepted; use a duration from 10s to 24h"},
		{nil, map[string]string{"GPU_MCP_CONFIRM_TTL": "soon"}, "GPU_MCP_CONFIRM_TTL"},
		// A value from a flag is named by the flag, one from the environment by its variable.
		{[]string{"--confirm-ttl", "1s"}, nil, "--confirm-ttl 1s is not accepted"},
		{nil, map[string]string{"GPU_MCP_TRANSPORT": "carrier-pigeon"}, `GPU_MCP_TRANSPORT "carrier-pigeon" is not accepted`},
		{nil, map[string]string{"GPU_MCP_LOG_LEVEL": "loud"}, `GPU_MCP_LOG_LEVEL "loud" is not accepted`},
		// Settings that cannot work.
		{nil, map[string]string{"GPU_MCP_CONFIRM_SECRET": "short-secret"}, "GPU_MCP_CONFIRM_SECRET is 12 bytes long; use at least 32"},
		{nil, map[string]string{"GPU_MCP_READ_RETRIES": "-1"}, "GPU_MCP_READ_RETRIES -1 is not accepted; use a whole number from 0 to 10"},
		{nil, map[string]string{"GPU_MCP_VENDOR_TIMEOUT": "0s"}, "GPU_MCP_VENDOR_TIMEOUT 0s is not accepted; use a duration from 100ms to 10m"},
		{[]string{"--vendor-timeout", "0"}, nil, "--vendor-timeout 0s is not accepted"},
		{nil, map[string]string{"GPU_MCP_REQUEST_TIMEOUT": "0s"}, "GPU_MCP_REQUEST_TIMEOUT 0s is not accepted"},
		{nil, map[string]string{"GPU_MCP_REQUEST_TIMEOUT": "-5s"}, "GPU_MCP_REQUEST_TIMEOUT -5s is not accepted"},
		{nil, map[string]string{"GPU_MCP_OFFER_CACHE_TTL": "-1s"}, "GPU_MCP_OFFER_CACHE_TTL -1s is not accepted; use a duration from 0s to 1h (0: no cache"},
		{nil, map[string]string{"GPU_MCP_DEMO_STEP_DELAY": "-1s"}, "GPU_MCP_DEMO_STEP_DELAY -1s is not accepted"},
		{nil, map[string]string{"GPU_MCP_POLL_INTERVAL": "0s"}, "GPU_MCP_POLL_INTERVAL 0s is not accepted"},

		{nil, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "-1"}, "0 or more"},
		{nil, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "cheap"}, "GPU_MCP_MAX_PRICE_PER_HOUR"},
		{nil, map[string]string{"GPU_MCP_MAX_GPUS": "-4"}, "GPU_MCP_MAX_GPUS"},
		{nil, map[string]string{"GPU_MCP_MAX_UPFRONT": "-0.01"}, "GPU_MCP_MAX_UPFRONT -0.01 is not accepted; use a number of CNY, 0 or more"},
		{nil, map[string]string{"GPU_MCP_MAX_UPFRONT": "lots"}, "GPU_MCP_MAX_UPFRONT"},
		{nil, map[string]string{"GPU_MCP_MAX_SPEND": "NaN"}, "GPU_MCP_MAX_SPEND NaN is not accepted"},
		{nil, map[string]string{"GPU_MCP_MAX_SPEND": "+Inf"}, "GPU_MCP_MAX_SPEND +Inf is not accepted"},
		{nil, map[string]string{"GPU_MCP_MAX_HOURLY_SPEND": "-3"}, "GPU_MCP_MAX_HOURLY_SPEND -3 is not accepted"},
		{nil, map[string]string{"GPU_MCP_CALL_BUDGET": "200ms"}, "GPU_MCP_CALL_BUDGET 200ms is not accepted; use a duration from 1s to 10m"},
		{nil, map[string]string{"GPU_MCP_CALL_BUDGET": "11m"}, "from 1s to 10m"},
		{nil, map[string]string{"GPU_MCP_CALL_BUDGET": "a while"}, "GPU_MCP_CALL_BUDGET"},
		{nil, map[string]string{"GPU_MCP_ELICITATION": "sometimes"}, `GPU_MCP_ELICITATION "sometimes" is not accepted; use auto`},
		{nil, map[string]string{"GPU_MCP_ELICITATION": "off", "GPU_MCP_REQUIRE_ELICITATION": "true"}, "contradict each other"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "slow"}, "GPU_MCP_DEMO_LATENCY"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "aws=100ms"}, latencyExample()},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": first + "=fast"}, "GPU_MCP_DEMO_LATENCY"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "-5ms"}, "cannot be negative"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": first + "=1ms," + first + "=2ms"}, "given twice"},
	}
	// Every vendor's base URL is checked, and named in the error.
	for _, v := range vendors.All() {
		for _, name := range vendors.Variables(v) {
			if !strings.HasSuffix(name, "_URL") {
				continue
			}
			for _, bad := range []string{"not-a-url", "ftp://files.example", "https://", "api.example.com/v1"} {
				cases = append(cases, struct {
					args []string
					env  map[string]string
					want string
				}{nil, map[string]string{name: bad}, fmt.Sprintf("%s %q is not accepted; use an http or https URL with a host", name, bad)})
			}
		}
	}
	for _, c := range cases {
		_, _, err := loadConfig(c.args, c.env)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: err = %v, want one containing %q", c.args, c.env, err, c.want)
		}
	}
	// The boundaries themselves are accepted.
	for _, env := range []map[string]string{{"GPU_MCP_OFFER_CACHE_TTL": "0"}, {"GPU_MCP_DEMO_STEP_DELAY": "0"}, {"GPU_MCP_READ_RETRIES": "0"},
		{"GPU_MCP_CONFIRM_SECRET": strings.Repeat("k", 32)}, {vendors.All()[0].EnvPrefix + "BASE_URL": "http://127.0.0.1:9"}} {
		if _, _, err := loadConfig(nil, env); err != nil {
			t.Errorf("%v: %v", env, err)
		}
	}
}

func TestDemoLatencyIsParsed(t *testing.T) {
	names := vendors.Names()
	all := func(d time.Duration) map[string]time.Duration {
		m := map[string]time.Duration{}
		for _, n := range names {
			m[n] = d
		}
		return m
	}
	each := map[string]time.Duration{}
	var pairs []string
	for i, n := range names {
		each[n] = time.Duration(i+1) * 100 * time.Millisecond
		// Spaces and case are forgiven.
		pairs = append(pairs, fmt.Sprintf(" %s=%dms", strings.ToUpper(n[:1])+n[1:], 100*(i+1)))
	}
	cases := []struct {
		in   string
		want map[string]time.Duration
	}{
		{"", nil},
		{"150ms", all(150 * time.Millisecond)},
		{strings.Join(pairs, ","), each},
		{names[0] + "=1s", map[string]time.Duration{names[0]: time.Second}},
	}
	for _, c := range cases {
		cfg, _, err := loadConfig([]string{"--demo"}, map[string]string{"GPU_MCP_DEMO_LATENCY": c.in})
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if len(cfg.demoLatency) != len(c.want) {
			t.Errorf("%q: got %v, want %v", c.in, cfg.demoLatency, c.want)
		}
		for k, v := range c.want {
			if cfg.demoLatency[k] != v {
				t.Errorf("%q: %s = %v, want %v", c.in, k, cfg.demoLatency[k], v)
			}
		}
	}
}

// A vendor whose configuration is half set is refused, naming what is missing (outside the
// demo, which does not read it).
func TestHalfSetVendorIsRefused(t *testing.T) {
	found := false
	for _, v := range vendors.All() {
		for _, name := range vendors.Variables(v) {
			if strings.HasSuffix(name, "_URL") {
				continue // a URL alone enables nothing; TestBadConfigurationIsRefused checks its form
			}
			cfg, err := vendors.Load(v, map[string]string{name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			_, why := cfg.Enabled()
			if why == nil {
				continue
			}
			found = true
			if _, _, err := loadConfig(nil, map[string]string{name: "x"}); err == nil || err.Error() != why.Error() {
				t.Errorf("only %s: %v, want %v", name, err, why)
			}
			if _, _, err := loadConfig([]string{"--demo"}, map[string]string{name: "x"}); err != nil {
				t.Errorf("only %s, with --demo: %v", name, err)
			}
		}
	}
	if !found {
		t.Skip("no vendor of the list can be half configured")
	}
}
