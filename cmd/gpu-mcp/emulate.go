package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// emulateReady is the line `gpu-mcp emulate` prints after the environment lines, once every
// emulator and the control API listen.
const emulateReady = "# gpu-mcp emulate: ready"

// envEmulatorControl is the variable whose line gives the control API's URL.
const envEmulatorControl = "GPU_MCP_EMULATOR_CONTROL"

// emulateCommand runs `gpu-mcp emulate [--addr 127.0.0.1:0]`: every vendor's emulator in this
// process, each on its own loopback port, keeping its cloud's state while the process runs, so
// that gpu-mcp processes can come, crash and share one cloud. It prints the environment lines
// that point gpu-mcp at them (and at the control API on addr), then emulateReady, and serves
// until SIGINT or SIGTERM.
func emulateCommand(cfg Config, addr string, stdout, stderr io.Writer, logger zerolog.Logger) int {
	if host, _, err := net.SplitHostPort(addr); err != nil || !isLoopback(host) {
		fmt.Fprintf(stderr, "gpu-mcp emulate: --addr %q is not accepted: the control API listens on loopback only; use 127.0.0.1:PORT (0: a free port)\n", addr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	ec, err := newEmulatorControl(cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp emulate:", err)
		return 1
	}
	defer ec.close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(stderr, "gpu-mcp emulate: cannot listen on %s: %v\n", addr, err)
		return 1
	}
	srv := &http.Server{Handler: ec.handler(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(stderr, "gpu-mcp emulate: ", 0)}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	lines := []string{envEmulatorControl + "=http://" + ln.Addr().String()}
	ev := logger.Info()
	for _, e := range ec.emus {
		lines = append(lines, e.emu.EnvLines()...)
		ev = ev.Str(e.vendor.Name, e.emu.URL())
	}
	slices.Sort(lines)
	fmt.Fprintln(stdout, strings.Join(lines, "\n"))
	fmt.Fprintln(stdout, emulateReady)
	ev.Str("control", "http://"+ln.Addr().String()).Dur("step_delay", max(cfg.DemoStepDelay, 0)).
		Msg("emulate: vendor emulators serving on loopback until SIGINT or SIGTERM; nothing is real")

	status := 0
	select {
	case err := <-served:
		logger.Error().Err(err).Msg("emulate: the control API stopped")
		status = 1
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutdown)
	return status
}

// emulatorControl is the control API of `gpu-mcp emulate`, a thin layer over the emulators:
//
//	GET  /instances  every vendor's instances: id (as gpu-mcp names it), state, name
//	GET  /changes    per vendor: buys (requests to its buy endpoint) and changes (every
//	                 request that changes something: buy, stop, delete, ...)
//	POST /outcome    {"vendor":..., "offer":... ("": every offer), "outcome": normal,
//	                 never_runs, fails or sold_out}: what becomes of the next launches
//	POST /latency    {"vendor":... ("": every vendor), "latency":"2s", "buy_only":false}:
//	                 every request (or only buys) waits that long first
type emulatorControl struct {
	emus []*controlled
	reg  *providers.Registry
}

// controlled is one vendor's emulator, with the buys counted as they arrive and the latencies
// set through the control API.
type controlled struct {
	vendor providers.Vendor
	emu    *vendors.Emulated
	buys   atomic.Int64

	mu              sync.Mutex
	latency, buyLat time.Duration
}

func newEmulatorControl(cfg Config, logger zerolog.Logger) (*emulatorControl, error) {
	ec := &emulatorControl{}
	byVendor := map[string]*controlled{}
	emus, err := startEmulators(cfg, func(v providers.Vendor) func(http.Handler) http.Handler {
		c := &controlled{vendor: v}
		byVendor[v.Name] = c
		return func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.EqualFold(r.Method, v.Endpoints.Buy.Method) && strings.HasSuffix(r.URL.Path, v.Endpoints.Buy.Path) {
					c.buys.Add(1)
				}
				h.ServeHTTP(w, r)
			})
		}
	})
	if err != nil {
		return nil, err
	}
	var ps []providers.Provider
	for i, v := range vendors.All() {
		c := byVendor[v.Name]
		c.emu = emus[i]
		c.setLatency(cfg.demoLatency[v.Name], false)
		ec.emus = append(ec.emus, c)
		ps = append(ps, c.emu.Config.Provider(httpOptions(cfg), &logger))
	}
	if ec.reg, err = providers.NewRegistry(ps...); err != nil {
		ec.close()
		return nil, err
	}
	return ec, nil
}

func (ec *emulatorControl) close() {
	for _, c := range ec.emus {
		c.emu.Close()
	}
}

// setLatency sets the latency of every request, or of buys only; a buy waits its own latency
// when one is set, else the general one.
func (c *controlled) setLatency(d time.Duration, buyOnly bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if buyOnly {
		c.buyLat = d
	} else {
		c.latency = d
	}
	var rules []emulated.Faults
	if c.buyLat > 0 {
		buy := c.vendor.Endpoints.Buy
		rules = append(rules, emulated.Faults{Method: buy.Method, Path: buy.Path, Latency: c.buyLat})
	}
	if c.latency > 0 {
		rules = append(rules, emulated.Faults{Latency: c.latency})
	}
	c.emu.SetFaults(rules...)
}

// launchOutcomes are the outcomes POST /outcome accepts, by name.
var launchOutcomes = func() map[string]emulated.LaunchOutcome {
	m := map[string]emulated.LaunchOutcome{}
	for _, o := range []emulated.LaunchOutcome{emulated.LaunchNormal, emulated.LaunchNeverRuns, emulated.LaunchFails, emulated.LaunchSoldOut} {
		m[o.String()] = o
	}
	return m
}()

// instanceView is one instance in GET /instances.
type instanceView struct {
	ID    string          `json:"id"`
	State providers.State `json:"state"`
	Name  string          `json:"name,omitempty"`
}

// changesView is one vendor in GET /changes.
type changesView struct {
	Buys    int64 `json:"buys"`
	Changes int   `json:"changes"`
}

func (ec *emulatorControl) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /instances", func(w http.ResponseWriter, r *http.Request) {
		out := map[string][]instanceView{}
		for _, c := range ec.emus {
			p, err := ec.reg.Get(c.vendor.Name)
			if err != nil {
				controlError(w, http.StatusInternalServerError, err.Error())
				return
			}
			insts, err := p.ListInstances(r.Context())
			if err != nil {
				controlError(w, http.StatusBadGateway, fmt.Sprintf("listing the instances of %s: %v", c.vendor.Name, err))
				return
			}
			views := []instanceView{}
			for _, in := range insts {
				views = append(views, instanceView{ID: in.ID, State: in.State, Name: in.Name})
			}
			out[c.vendor.Name] = views
		}
		controlJSON(w, out)
	})
	mux.HandleFunc("GET /changes", func(w http.ResponseWriter, r *http.Request) {
		out := map[string]changesView{}
		for _, c := range ec.emus {
			out[c.vendor.Name] = changesView{Buys: c.buys.Load(), Changes: c.emu.Changes()}
		}
		controlJSON(w, out)
	})
	mux.HandleFunc("POST /outcome", func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Vendor, Offer, Outcome string }
		c, ok := ec.decode(w, r, &req, &req.Vendor, false)
		if !ok {
			return
		}
		o, known := launchOutcomes[req.Outcome]
		if !known {
			names := make([]string, 0, len(launchOutcomes))
			for n := range launchOutcomes {
				names = append(names, n)
			}
			slices.Sort(names)
			controlError(w, http.StatusBadRequest, fmt.Sprintf("outcome %q is not one of %s", req.Outcome, strings.Join(names, ", ")))
			return
		}
		// Offer ids as gpu-mcp shows them carry the vendor: the emulator knows the local part.
		c[0].emu.SetLaunchOutcome(strings.TrimPrefix(req.Offer, req.Vendor+":"), o)
		controlJSON(w, map[string]string{"vendor": req.Vendor, "offer": req.Offer, "outcome": o.String()})
	})
	mux.HandleFunc("POST /latency", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Vendor, Latency string
			BuyOnly         bool `json:"buy_only"`
		}
		cs, ok := ec.decode(w, r, &req, &req.Vendor, true)
		if !ok {
			return
		}
		d, err := time.ParseDuration(req.Latency)
		if err != nil || d < 0 {
			controlError(w, http.StatusBadRequest, fmt.Sprintf("latency %q is not a duration of 0 or more, such as 2s or 150ms", req.Latency))
			return
		}
		for _, c := range cs {
			c.setLatency(d, req.BuyOnly)
		}
		controlJSON(w, map[string]any{"vendor": req.Vendor, "latency": d.String(), "buy_only": req.BuyOnly})
	})
	return mux
}

// decode reads a JSON body into req and finds the emulators its vendor names (every one for
// "" when anyVendor). It answers the error itself and reports false.
func (ec *emulatorControl) decode(w http.ResponseWriter, r *http.Request, req any, vendor *string, anyVendor bool) ([]*controlled, bool) {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(req); err != nil {
		controlError(w, http.StatusBadRequest, "the body is not the JSON object this endpoint takes: "+err.Error())
		return nil, false
	}
	if *vendor == "" && anyVendor {
		return ec.emus, true
	}
	for _, c := range ec.emus {
		if c.vendor.Name == *vendor {
			return []*controlled{c}, true
		}
	}
	controlError(w, http.StatusBadRequest, fmt.Sprintf("vendor %q is not one of %s", *vendor, strings.Join(vendors.Names(), ", ")))
	return nil, false
}

func controlJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func controlError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}
