package main

import (
	"cmp"
	"context"
	"strings"

	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/tools"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// App is the wired program: the state store, providers, tools and the MCP server.
type App struct {
	Deps   *tools.Deps
	Server *server.MCPServer
	Log    zerolog.Logger
	// Store is the state store (openStore), opened first and closed last.
	Store state.Store
	// Replica names this process in the store's records.
	Replica string
	// Emulators are the demo's vendor emulators by vendor name (none without --demo): their
	// instances' SSH endpoints and launch outcomes.
	Emulators map[string]emulated.Server
	// Tasks answers the task requests of the long tools in front of mcp-go (nil over SSE).
	Tasks   *tools.Tasks
	closers []func()
}

// newApp builds the providers the configuration enables (or the demo emulators) and the server.
func newApp(cfg Config, log zerolog.Logger) (*App, error) {
	app := &App{Log: log, Replica: replicaID()}
	// The store opens (SQLite's schema, the confirmation key: milliseconds) while the
	// providers start: neither needs the other, and both are on the way to the first answer.
	type opened struct {
		store     state.Store
		confirmer *tools.Confirmer
		err       error
	}
	storeOpened := make(chan opened, 1)
	go func() {
		store, err := openStore(cfg)
		if err != nil {
			storeOpened <- opened{err: err}
			return
		}
		confirmer, err := tools.NewConfirmer(context.Background(), store, cfg.ConfirmSecret, cfg.ConfirmTTL)
		storeOpened <- opened{store, confirmer, err}
	}()
	var ps []providers.Provider
	var demoErr error
	if cfg.Demo {
		ps, app.Emulators, demoErr = startDemo(cfg, log)
		app.closers = append(app.closers, func() {
			for _, e := range app.Emulators {
				e.Close()
			}
		})
	} else {
		ps = configuredProviders(cfg, log)
	}
	o := <-storeOpened
	if o.store != nil {
		app.Store = o.store
		// Opened first in effect, closed last.
		app.closers = append([]func(){func() {
			if err := o.store.Close(); err != nil {
				log.Error().Err(err).Msg("closing the state store")
			}
		}}, app.closers...)
		log.Debug().Str("backend", o.store.Backend()).Str("replica", app.Replica).Msg("state store open")
	}
	if err := cmp.Or(o.err, demoErr); err != nil {
		app.Close()
		return nil, err
	}
	store, confirmer := o.store, o.confirmer
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		app.Close()
		return nil, err
	}
	if reg.Len() == 0 {
		log.Warn().Msg("no provider is configured: " + vendors.ConfigureHint())
	}
	app.Deps = &tools.Deps{
		Providers:          reg,
		Demo:               cfg.Demo,
		Confirmer:          confirmer,
		Store:              store,
		Log:                log,
		VendorTimeout:      cfg.VendorTimeout,
		ReadOnly:           cfg.ReadOnly,
		RequireElicitation: cfg.RequireElicitation,
		NoElicitation:      strings.EqualFold(strings.TrimSpace(cfg.Elicitation), "off"),
		Limits: tools.Limits{MaxPricePerHour: cfg.MaxPricePerHour, MaxHourlySpend: cfg.MaxHourlySpend, MaxGPUs: cfg.MaxGPUs,
			MaxUpfront: cfg.MaxUpfront, MaxSpend: cfg.MaxSpend},
		Clouds:        vendors.Titles(),
		ConfigureHint: vendors.ConfigureHint(),
	}
	w, ws, err := machineWork(cfg, reg, store, log)
	if err != nil {
		app.Close()
		return nil, err
	}
	app.closers = append(app.closers, func() { _ = w.Close() })
	app.Deps.Work, app.Deps.Exec, app.Deps.Workspace = w, cfg.exec, ws
	if cfg.OfferCacheTTL > 0 {
		cache := tools.NewOfferCache(tools.OfferCacheOptions{TTL: cfg.OfferCacheTTL, RefreshTimeout: cfg.VendorTimeout})
		app.Deps.Offers = cache
		app.closers = append(app.closers, cache.Close)
	}
	audit, err := tools.NewAuditLog(tools.AuditOptions{Store: store, Replica: app.Replica, Path: cfg.AuditLog, Secrets: cfg.secrets(), Log: log})
	if err != nil {
		app.Close()
		return nil, err
	}
	app.Deps.Audit = audit
	app.closers = append(app.closers, func() { audit.Close() })
	fl, err := newFleet(cfg, log, store, app.Replica, app.Deps)
	if err != nil {
		app.Close()
		return nil, err
	}
	app.Deps.Fleet = fl
	// Closed first (last opened): the work it hands back to the store is still audited.
	app.closers = append(app.closers, fl.Close)
	ops, err := tools.NewOperations(app.Deps, tools.OperationsOptions{Store: store, Owner: app.Replica, Budget: cfg.CallBudget,
		Poll: pollInterval(cfg), Log: log})
	if err != nil {
		app.Close()
		return nil, err
	}
	app.Deps.Ops = ops
	// Before the fleet: a launch handed back by an operation is handed back by the fleet too.
	app.closers = append(app.closers, ops.Close)
	var opts []tools.ServerOption
	if cfg.Transport != "sse" {
		// mcp-go's SSE transport answers on its own stream, where gpu-mcp cannot answer the
		// task requests itself (tools.Tasks): SSE clients follow handles instead.
		opts = append(opts, tools.WithTasks())
		app.Tasks = tools.NewTasks(app.Deps, version)
	}
	app.Server = tools.NewServer(app.Deps, version, opts...)
	return app, nil
}

// Start begins the work of the process of its own: the fleet's reconciler, and the adoption
// of operations whose process ended.
func (a *App) Start() {
	a.Deps.Fleet.Start()
	a.Deps.Ops.Start()
}

// Close stops the offer cache's refreshes and the demo emulators, if any, and closes the store.
func (a *App) Close() {
	// Last opened, first closed: the cache's refreshes stop before the emulators they ask.
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}
