package main

import (
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// httpOptions is how every adapter talks to its vendor: GPU_MCP_REQUEST_TIMEOUT per request,
// GPU_MCP_READ_RETRIES retries of reads (never of changes), the default circuit breaker, and
// the redactor of every configured secret.
func httpOptions(cfg Config) providers.HTTPOptions {
	return providers.HTTPOptions{Timeout: cfg.RequestTimeout, Retries: max(cfg.ReadRetries, 0), Redactor: cfg.redactor}
}

// configuredProviders builds the providers whose credentials are set; the others are simply
// not registered.
func configuredProviders(cfg Config, log zerolog.Logger) []providers.Provider {
	var ps []providers.Provider
	for _, v := range cfg.vendors {
		if on, _ := v.config.Enabled(); on {
			ps = append(ps, v.config.Provider(httpOptions(cfg), &log))
		}
	}
	return ps
}

// startDemo starts every vendor's emulator on loopback and points adapters at them; the
// emulators are returned by vendor name.
func startDemo(cfg Config, log zerolog.Logger) ([]providers.Provider, map[string]emulated.Server, error) {
	step := max(cfg.DemoStepDelay, 0)
	var ps []providers.Provider
	emus := map[string]emulated.Server{}
	ev := log.Info()
	for _, v := range vendors.All() {
		emu, err := vendors.Emulate(v, emulated.Options{StepDelay: step})
		if err != nil {
			return nil, emus, err
		}
		// GPU_MCP_DEMO_LATENCY: every request of an emulator waits this long before it is handled.
		if d := cfg.demoLatency[v.Name]; d > 0 {
			emu.SetFaults(emulated.Faults{Latency: d})
		}
		emus[v.Name] = emu
		ev = ev.Str(v.Name, emu.URL())
		ps = append(ps, emu.Config.Provider(httpOptions(cfg), &log))
	}
	ev.Dur("step_delay", step).Str("latency", cfg.DemoLatency).Msg("demo: vendor emulators started on loopback; nothing is real")
	return ps, emus, nil
}
