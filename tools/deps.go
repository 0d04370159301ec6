package tools

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/fleet/work"
	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
)

// Deps is what the tools need from the rest of the program.
type Deps struct {
	Providers *providers.Registry
	Demo      bool
	Confirmer *Confirmer
	// Store is the durable state store, shared with every replica that opens it: spent
	// tokens and the audit trail are kept there.
	Store state.Store
	Log   zerolog.Logger
	// VendorTimeout bounds each provider's part of a fan-out read (list_gpu_offers, ...).
	VendorTimeout time.Duration
	// Limits are the operator's spending limits.
	Limits Limits
	// ReadOnly registers only the tools that change nothing.
	ReadOnly bool
	// RequireElicitation refuses guarded actions unless a person approves through the client.
	RequireElicitation bool
	// Audit, when set, records every guarded call.
	Audit *AuditLog
	// Offers, when set, caches offers for list_gpu_offers; nil asks the vendors every time.
	// launch_instance never uses it: a purchase is planned on the vendor's live offer.
	Offers *OfferCache

	// Fleet owns the launches, their waiting and cleanup, and the leases (auto-stops), in the
	// state store: launch_instance, wait_instance, set_auto_stop and the instance lists need it.
	Fleet *fleet.Fleet
	// Ops runs the calls of the long tools as operations under the call budget, in the
	// state store; nil runs them to their end, however long they take.
	Ops *Operations

	// Work runs the tools that work on instances' machines over SSH (nil: they say that this
	// server is not set up for it).
	Work *work.Work
	// Exec is GPU_MCP_EXEC: whether the tools that change a machine run at once (on, also
	// when empty), need a person's yes (confirm), or are not offered (off).
	Exec ExecMode
	// Workspace is the directory on this host that copy_to_instance reads from and
	// copy_from_instance writes to (GPU_MCP_WORKSPACE).
	Workspace string

	// Clouds names the clouds this build can manage, for the server's instructions
	// ("HuiXingYun, Datenfab and Chenyu").
	Clouds string
	// ConfigureHint says how to enable a provider, for the answers given when none is.
	ConfigureHint string
}

func (d *Deps) textPrefix() string {
	if d.Demo {
		return "[demo: built-in emulators, nothing here is real] "
	}
	return ""
}

// ProviderError reports a provider that failed during a read across providers.
type ProviderError struct {
	Provider string `json:"provider"`
	Error    string `json:"error" jsonschema_description:"what went wrong and what to do"`
}

// configureHint says how to enable a provider.
func (d *Deps) configureHint() string {
	if d.ConfigureHint != "" {
		return d.ConfigureHint
	}
	return "configure a provider in the server's environment (gpu-mcp --help names the variables), or start it with --demo to try the built-in emulators"
}

// noProvider is the error of a call that needs a provider when none is configured, or nil.
func (d *Deps) noProvider() error {
	if d.Providers != nil && d.Providers.Len() > 0 {
		return nil
	}
	return &providers.Error{Kind: providers.KindInvalid, Provider: "gpu-mcp", Message: "no provider is configured", Remedy: d.configureHint()}
}

// selectProviders returns the named provider, or all of them for "".
func (d *Deps) selectProviders(name string) ([]providers.Provider, error) {
	if err := d.noProvider(); err != nil {
		return nil, err
	}
	if name == "" {
		return d.Providers.All(), nil
	}
	p, err := d.Providers.Get(strings.ToLower(strings.TrimSpace(name)))
	if err != nil {
		return nil, err
	}
	return []providers.Provider{p}, nil
}

// resolve finds the provider of a qualified id, to which the id is then given as it is.
func (d *Deps) resolve(id, what string) (providers.Provider, error) {
	if strings.TrimSpace(id) == "" {
		return nil, invalidf("%s is required; use the ids that the list tools return (provider:vendor-id)", what)
	}
	if err := d.noProvider(); err != nil {
		return nil, err
	}
	p, err := d.Providers.Resolve(id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return p, nil
}

// fanOut calls f on every provider concurrently, each within its own deadline, and gathers
// what came back; one slow or failing provider never hides the others, and the whole takes as
// long as the slowest provider, at most the deadline.
func fanOut[T any](ctx context.Context, d *Deps, ps []providers.Provider, f func(context.Context, providers.Provider) ([]T, error)) ([]T, []ProviderError) {
	type res struct {
		name  string
		items []T
		err   error
	}
	timeout := d.VendorTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	results := make([]res, len(ps))
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					results[i] = res{name: p.Name(), err: fmt.Errorf("%s: internal error: %v", p.Name(), r)}
				}
			}()
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			items, err := f(cctx, p)
			if err != nil && cctx.Err() == context.DeadlineExceeded && ctx.Err() == nil {
				err = &providers.Error{Kind: providers.KindUnavailable, Provider: p.Name(), Err: err,
					Message: fmt.Sprintf("no answer within %s (GPU_MCP_VENDOR_TIMEOUT), so its part is missing", timeout),
					Remedy:  "try again later; the other providers' results are complete"}
			}
			results[i] = res{name: p.Name(), items: items, err: err}
		}()
	}
	wg.Wait()
	var all []T
	var errs []ProviderError
	for _, r := range results {
		if r.err != nil {
			d.Log.Warn().Str("provider", r.name).Err(r.err).Msg("provider read failed")
			errs = append(errs, ProviderError{Provider: r.name, Error: errorText(r.err)})
			continue
		}
		all = append(all, r.items...)
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Provider < errs[j].Provider })
	return all, errs
}

// errorsText renders per-provider failures under a list.
func errorsText(errs []ProviderError) string {
	var b strings.Builder
	for _, e := range errs {
		fmt.Fprintf(&b, "\n! %s failed: %s", e.Provider, e.Error)
	}
	return b.String()
}

// allFailed turns a fan-out where every provider failed into an error.
func allFailed(errs []ProviderError, n int) error {
	if n == 0 || len(errs) < n {
		return nil
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error
	}
	return fmt.Errorf("every provider failed: %s", strings.Join(msgs, "; "))
}

// table renders rows as a compact pipe-separated table.
func table(header []string, rows [][]string) string {
	var b strings.Builder
	b.WriteString(strings.Join(header, " | "))
	for _, r := range rows {
		b.WriteString("\n")
		b.WriteString(strings.Join(r, " | "))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func money(p *float64) string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%.2f", *p)
}

// annotate adds what gpu-mcp keeps of each instance (its launch, its lease, orphan or not). A
// failing state store leaves the vendor's view as it is and is returned, to be shown.
func (d *Deps) annotate(ctx context.Context, insts []providers.Instance) error {
	if d.Fleet == nil {
		return nil
	}
	err := d.Fleet.Annotate(ctx, insts)
	if err != nil {
		d.Log.Warn().Err(err).Msg("what gpu-mcp keeps of the instances could not be read")
	}
	return err
}

// annotated is inst with what gpu-mcp keeps of it.
func (d *Deps) annotated(ctx context.Context, inst providers.Instance) providers.Instance {
	one := []providers.Instance{inst}
	_ = d.annotate(ctx, one)
	return one[0]
}

// RecordEvent writes what the fleet did by itself (an auto-stop, a launch cleanup, an
// adoption) to the audit trail.
func (d *Deps) RecordEvent(e fleet.Event) {
	rec := AuditEntry{Time: time.Now().UTC(), Tool: e.Kind, Confirmation: ConfirmedAtSetAutoStop, Outcome: StatusDone, Detail: e.Detail, Demo: d.Demo}
	switch {
	case e.ApprovedAtLaunch:
		rec.Confirmation = ConfirmedAtLaunch
	case work.IsWorkLease(e.Lease):
		rec.Confirmation = ConfirmedWithWork
	}
	if e.Failed {
		rec.Outcome = StatusFailed
	}
	if err := d.Audit.Record(context.Background(), rec); err != nil {
		d.Log.Error().Err(err).Msg("audit log write failed")
	}
}
