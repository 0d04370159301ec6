package main

import (
	"bytes"
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
	cfg, rest, err := loadConfig([]string{"--transport", "stdio", "--confirm-ttl", "90s", "call", "list_providers"}, env, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Transport != "stdio" || cfg.LogLevel != "debug" || cfg.ConfirmTTL != 90*time.Second || !cfg.Demo {
		t.Errorf("cfg = %+v", cfg)
	}
	if strings.Join(rest, " ") != "call list_providers" {
		t.Errorf("rest = %v", rest)
	}
}

func TestConfigDefaultsAndCredentials(t *testing.T) {
	// Every vendor's variables, under its prefix, with its secrets distinct.
	environ := map[string]string{}
	for _, v := range vendors.All() {
		for _, name := range vendors.Variables(v) {
			environ[name] = "value-of-" + name
		}
	}
	cfg, _, err := loadConfig(nil, environ, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxPricePerHour != nil || cfg.MaxHourlySpend != nil || cfg.MaxGPUs != 0 || cfg.ReadOnly {
		t.Errorf("limits set by default: %+v", cfg)
	}
	lim, _, err := loadConfig([]string{"--read-only"}, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "0", "GPU_MCP_MAX_HOURLY_SPEND": "12.5", "GPU_MCP_MAX_GPUS": "2"}, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if lim.MaxPricePerHour == nil || *lim.MaxPricePerHour != 0 || *lim.MaxHourlySpend != 12.5 || lim.MaxGPUs != 2 || !lim.ReadOnly {
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
		{nil, map[string]string{"GPU_MCP_CONFIRM_TTL": "1s"}, "between 10s and 24h"},
		{nil, map[string]string{"GPU_MCP_CONFIRM_TTL": "soon"}, "GPU_MCP_CONFIRM_TTL"},

		{nil, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "-1"}, "0 or more"},
		{nil, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "cheap"}, "GPU_MCP_MAX_PRICE_PER_HOUR"},
		{nil, map[string]string{"GPU_MCP_MAX_GPUS": "-4"}, "GPU_MCP_MAX_GPUS"},
		{nil, map[string]string{"GPU_MCP_CALL_BUDGET": "200ms"}, "GPU_MCP_CALL_BUDGET 200ms is not accepted; use a duration between 1s and 10m0s"},
		{nil, map[string]string{"GPU_MCP_CALL_BUDGET": "11m"}, "between 1s and 10m0s"},
		{nil, map[string]string{"GPU_MCP_CALL_BUDGET": "a while"}, "GPU_MCP_CALL_BUDGET"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "slow"}, "GPU_MCP_DEMO_LATENCY"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "aws=100ms"}, latencyExample()},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": first + "=fast"}, "GPU_MCP_DEMO_LATENCY"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "-5ms"}, "cannot be negative"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": first + "=1ms," + first + "=2ms"}, "given twice"},
	}
	for _, c := range cases {
		_, _, err := loadConfig(c.args, c.env, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: err = %v, want one containing %q", c.args, c.env, err, c.want)
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
		cfg, _, err := loadConfig([]string{"--demo"}, map[string]string{"GPU_MCP_DEMO_LATENCY": c.in}, &bytes.Buffer{})
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
			cfg, err := vendors.Load(v, map[string]string{name: "x"})
			if err != nil {
				t.Fatal(err)
			}
			_, why := cfg.Enabled()
			if why == nil {
				continue
			}
			found = true
			if _, _, err := loadConfig(nil, map[string]string{name: "x"}, &bytes.Buffer{}); err == nil || err.Error() != why.Error() {
				t.Errorf("only %s: %v, want %v", name, err, why)
			}
			if _, _, err := loadConfig([]string{"--demo"}, map[string]string{name: "x"}, &bytes.Buffer{}); err != nil {
				t.Errorf("only %s, with --demo: %v", name, err)
			}
		}
	}
	if !found {
		t.Skip("no vendor of the list can be half configured")
	}
}
