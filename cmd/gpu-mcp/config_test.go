package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
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
	cfg, _, err := loadConfig(nil, map[string]string{"HUIXINGYUN_TOKEN": "t", "CHENYU_API_KEY": "k"}, &bytes.Buffer{})
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
	if cfg.Transport != "stdio" || cfg.Addr != "127.0.0.1:8080" || cfg.ConfirmTTL != 5*time.Minute || cfg.Demo {
		t.Errorf("defaults: %+v", cfg)
	}
	if cfg.HuiXingYunToken != "t" || cfg.ChenyuAPIKey != "k" {
		t.Errorf("credentials not read: %+v", cfg)
	}
}

func TestBadConfigurationIsRefused(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--transport", "carrier-pigeon"}, nil, "use stdio, http or sse"},
		{[]string{"--log-level", "loud"}, nil, "use debug, info, warn or error"},
		{nil, map[string]string{"GPU_MCP_CONFIRM_TTL": "1s"}, "between 10s and 24h"},
		{nil, map[string]string{"GPU_MCP_CONFIRM_TTL": "soon"}, "GPU_MCP_CONFIRM_TTL"},
		{nil, map[string]string{"DATENFAB_TOKEN": "x"}, "DATENFAB_NAMESPACE"},
		{nil, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "-1"}, "0 or more"},
		{nil, map[string]string{"GPU_MCP_MAX_PRICE_PER_HOUR": "cheap"}, "GPU_MCP_MAX_PRICE_PER_HOUR"},
		{nil, map[string]string{"GPU_MCP_MAX_GPUS": "-4"}, "GPU_MCP_MAX_GPUS"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "slow"}, "GPU_MCP_DEMO_LATENCY"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "aws=100ms"}, "huixingyun=100ms,datenfab=200ms,chenyu=300ms"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "chenyu=fast"}, "GPU_MCP_DEMO_LATENCY"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "-5ms"}, "cannot be negative"},
		{nil, map[string]string{"GPU_MCP_DEMO_LATENCY": "chenyu=1ms,chenyu=2ms"}, "given twice"},
	}
	for _, c := range cases {
		_, _, err := loadConfig(c.args, c.env, &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: err = %v, want one containing %q", c.args, c.env, err, c.want)
		}
	}
}

func TestDemoLatencyIsParsed(t *testing.T) {
	cases := []struct {
		in   string
		want map[string]time.Duration
	}{
		{"", nil},
		{"150ms", map[string]time.Duration{"huixingyun": 150 * time.Millisecond, "datenfab": 150 * time.Millisecond, "chenyu": 150 * time.Millisecond}},
		{"huixingyun=100ms, datenfab=200ms,Chenyu=300ms", map[string]time.Duration{"huixingyun": 100 * time.Millisecond, "datenfab": 200 * time.Millisecond, "chenyu": 300 * time.Millisecond}},
		{"chenyu=1s", map[string]time.Duration{"chenyu": time.Second}},
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
