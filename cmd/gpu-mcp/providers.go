package main

import (
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// httpOptions is how every adapter talks to its vendor: GPU_MCP_REQUEST_TIMEOUT per request,
// GPU_MCP_READ_RETRIES retries of reads (never of changes), the default circuit breaker.
func httpOptions(cfg Config) providers.HTTPOptions {
	return providers.HTTPOptions{Timeout: cfg.RequestTimeout, Retries: max(cfg.ReadRetries, 0)}
}

// configuredProviders builds the providers whose credentials are set; the others are simply
// not registered.
func configuredProviders(cfg Config, log zerolog.Logger) []providers.Provider {
	var ps []providers.Provider
	o := httpOptions(cfg)
	if cfg.HuiXingYunToken != "" {
		ps = append(ps, huixingyun.New(huixingyun.Config{Token: cfg.HuiXingYunToken, BaseURL: cfg.HuiXingYunBaseURL, Logger: &log, HTTP: o}))
	}
	if cfg.DatenfabToken != "" && cfg.DatenfabNamespace != "" {
		ps = append(ps, datenfab.New(datenfab.Config{Token: cfg.DatenfabToken, Namespace: cfg.DatenfabNamespace, BaseURL: cfg.DatenfabBaseURL, Logger: &log, HTTP: o}))
	}
	if cfg.ChenyuAPIKey != "" {
		ps = append(ps, chenyu.New(chenyu.Config{APIKey: cfg.ChenyuAPIKey, BaseURL: cfg.ChenyuBaseURL, Logger: &log, HTTP: o}))
	}
	return ps
}

// startDemo starts the three vendor emulators on loopback and points adapters at them.
func startDemo(cfg Config, log zerolog.Logger) ([]providers.Provider, func()) {
	step := cfg.DemoStepDelay
	if step < 0 {
		step = 0
	}
	hxy := hxytest.NewServer(hxytest.Options{StepDelay: step})
	df := dftest.NewServer(dftest.Options{StepDelay: step})
	cy := cytest.NewServer(cytest.Options{StepDelay: step})
	// GPU_MCP_DEMO_LATENCY: every request of an emulator waits this long before it is handled.
	if d := cfg.demoLatency["huixingyun"]; d > 0 {
		hxy.SetFaults(emulated.Faults{Latency: d})
	}
	if d := cfg.demoLatency["datenfab"]; d > 0 {
		df.SetFaults(emulated.Faults{Latency: d})
	}
	if d := cfg.demoLatency["chenyu"]; d > 0 {
		cy.SetFaults(emulated.Faults{Latency: d})
	}
	log.Info().Str("huixingyun", hxy.URL()).Str("datenfab", df.URL()).Str("chenyu", cy.URL()).Dur("step_delay", step).Str("latency", cfg.DemoLatency).
		Msg("demo: vendor emulators started on loopback; nothing is real")
	o := httpOptions(cfg)
	ps := []providers.Provider{
		huixingyun.New(huixingyun.Config{Token: hxy.Credential(), BaseURL: hxy.URL(), Logger: &log, HTTP: o}),
		datenfab.New(datenfab.Config{Token: df.Credential(), Namespace: df.Namespace(), BaseURL: df.URL(), Logger: &log, HTTP: o}),
		chenyu.New(chenyu.Config{APIKey: cy.Credential(), BaseURL: cy.URL(), Logger: &log, HTTP: o}),
	}
	return ps, func() { hxy.Close(); df.Close(); cy.Close() }
}
