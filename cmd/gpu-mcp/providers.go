package main

import (
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// configuredProviders builds the providers whose credentials are set; the others are simply
// not registered.
func configuredProviders(cfg Config, log zerolog.Logger) []providers.Provider {
	var ps []providers.Provider
	if cfg.HuiXingYunToken != "" {
		ps = append(ps, huixingyun.New(huixingyun.Config{Token: cfg.HuiXingYunToken, BaseURL: cfg.HuiXingYunBaseURL, Logger: &log}))
	}
	if cfg.DatenfabToken != "" && cfg.DatenfabNamespace != "" {
		ps = append(ps, datenfab.New(datenfab.Config{Token: cfg.DatenfabToken, Namespace: cfg.DatenfabNamespace, BaseURL: cfg.DatenfabBaseURL, Logger: &log}))
	}
	if cfg.ChenyuAPIKey != "" {
		ps = append(ps, chenyu.New(chenyu.Config{APIKey: cfg.ChenyuAPIKey, BaseURL: cfg.ChenyuBaseURL, Logger: &log}))
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
	log.Info().Str("huixingyun", hxy.URL()).Str("datenfab", df.URL()).Str("chenyu", cy.URL()).Dur("step_delay", step).
		Msg("demo: vendor emulators started on loopback; nothing is real")
	ps := []providers.Provider{
		huixingyun.New(huixingyun.Config{Token: hxy.Token(), BaseURL: hxy.URL(), Logger: &log}),
		datenfab.New(datenfab.Config{Token: df.Token(), Namespace: df.Namespace(), BaseURL: df.URL(), Logger: &log}),
		chenyu.New(chenyu.Config{APIKey: cy.APIKey(), BaseURL: cy.URL(), Logger: &log}),
	}
	return ps, func() { hxy.Close(); df.Close(); cy.Close() }
}
