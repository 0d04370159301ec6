package main

import (
	"errors"
	"net/http"
	"sync"

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
	emus, err := startEmulators(cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	var ps []providers.Provider
	byName := map[string]emulated.Server{}
	ev := log.Info()
	for i, v := range vendors.All() {
		byName[v.Name] = emus[i]
		ev = ev.Str(v.Name, emus[i].URL())
		ps = append(ps, emus[i].Config.Provider(httpOptions(cfg), &log))
	}
	ev.Dur("step_delay", max(cfg.DemoStepDelay, 0)).Str("latency", cfg.DemoLatency).Msg("demo: vendor emulators started on loopback; nothing is real")
	return ps, byName, nil
}

// startEmulators starts every vendor's emulator on loopback and returns them in the order of
// the vendor list, with GPU_MCP_DEMO_STEP_DELAY and GPU_MCP_DEMO_LATENCY applied; wrap, when
// set, gives each vendor's API a wrapper. On an error the ones started are closed.
func startEmulators(cfg Config, wrap func(providers.Vendor) func(http.Handler) http.Handler) ([]*vendors.Emulated, error) {
	// The emulators are started side by side: each is its own servers (and, for its running
	// instances, machines with their directories), and none waits for another.
	vs := vendors.All()
	out := make([]*vendors.Emulated, len(vs))
	errs := make([]error, len(vs))
	var wg sync.WaitGroup
	for i, v := range vs {
		o := emulated.Options{StepDelay: max(cfg.DemoStepDelay, 0)}
		if wrap != nil {
			o.Wrap = wrap(v) // here, not in the goroutine: wrap need not be safe for concurrent use
		}
		wg.Go(func() { out[i], errs[i] = vendors.Emulate(v, o) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, e := range out {
			if e != nil {
				e.Close()
			}
		}
		return nil, err
	}
	for i, v := range vs {
		// GPU_MCP_DEMO_LATENCY: every request of an emulator waits this long before it is handled.
		if d := cfg.demoLatency[v.Name]; d > 0 {
			out[i].SetFaults(emulated.Faults{Latency: d})
		}
	}
	return out, nil
}
