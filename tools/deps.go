package tools

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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
	// NoElicitation never asks through the client (GPU_MCP_ELICITATION=off): every client gets
	// the plan and a token, for clients that declare elicitation but never show the question.
	NoElicitation bool
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

// ProviderError reports a provider that failed during a read across providers, or whose list
// was cut short.
type ProviderError struct {
	Provider string `json:"provider"`
	Error    string `json:"error"`
	// Incomplete marks a provider whose part is there but cut short.
	Incomplete bool `json:"incomplete,omitempty" jsonschema_description:"its items are shown, but cut short"`
	// cause is the error itself, for a call that fails as a whole when every provider did.
	cause *providers.Error
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
		return nil, &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: what, Accepted: "provider:vendor-id",
			Message: what + " is required", Remedy: "use an id that the list tools return (provider:vendor-id)"}
	}
	if err := d.noProvider(); err != nil {
		return nil, err
	}
	p, err := d.Providers.Resolve(id)
	if err != nil {
		// The registry's error, about this argument.
		e := *asError(err, false)
		e.Field, e.Value = what, id
		return nil, &e
	}
	return p, nil
}

// fanOut calls f on every provider concurrently, each within its own deadline, and gathers
// what came back; one slow or failing provider never hides the others, and the whole takes as
// long as the slowest provider, at most the deadline. A list a provider cut short
// (providers.Incomplete) is kept, and reported with the errors.
func fanOut[T any](ctx context.Context, d *Deps, ps []providers.Provider, f func(context.Context, providers.Provider) ([]T, error)) ([]T, []ProviderError) {
	parts, errs := fanOutEach(ctx, d, ps, f)
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]T, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	return all, errs
}

// fanOutEach is fanOut with each provider's items apart, in the order of ps (nil for a
// provider that failed), for callers that need not copy them into one slice.
func fanOutEach[T any](ctx context.Context, d *Deps, ps []providers.Provider, f func(context.Context, providers.Provider) ([]T, error)) ([][]T, []ProviderError) {
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
					results[i] = res{name: p.Name(), err: &providers.Error{Kind: providers.KindUnavailable, Provider: p.Name(),
						Message: fmt.Sprintf("internal error in gpu-mcp's %s adapter: %v", p.Name(), r), Remedy: "try again; if it persists, report it"}}
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
	parts := make([][]T, len(results))
	var errs []ProviderError
	for i, r := range results {
		if r.err != nil && providers.AsIncomplete(r.err) != nil {
			errs = append(errs, ProviderError{Provider: r.name, Error: r.err.Error(), Incomplete: true})
		} else if r.err != nil {
			d.Log.Warn().Str("provider", r.name).Err(r.err).Msg("provider read failed")
			errs = append(errs, ProviderError{Provider: r.name, Error: errorText(r.err), cause: asError(r.err, false)})
			continue
		}
		parts[i] = r.items
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Provider < errs[j].Provider })
	return parts, errs
}

// errorsText renders per-provider failures under a list.
func errorsText(errs []ProviderError) string {
	var b strings.Builder
	for _, e := range errs {
		if e.Incomplete {
			fmt.Fprintf(&b, "\n! incomplete: %s", e.Error)
			continue
		}
		fmt.Fprintf(&b, "\n! %s failed: %s", e.Provider, e.Error)
	}
	return b.String()
}

// allFailed turns a fan-out where every provider failed into an error: the provider's own when
// there is one, else one of the kind they share (unavailable when they differ).
func allFailed(errs []ProviderError, n int) error {
	var failed []ProviderError
	for _, e := range errs {
		if !e.Incomplete {
			failed = append(failed, e)
		}
	}
	if n == 0 || len(failed) < n {
		return nil
	}
	if len(failed) == 1 && failed[0].cause != nil {
		return failed[0].cause
	}
	kindOf := func(e ProviderError) providers.ErrorKind {
		if e.cause == nil {
			return providers.KindUnavailable
		}
		return e.cause.Kind
	}
	kind := kindOf(failed[0])
	msgs := make([]string, len(failed))
	for i, e := range failed {
		msgs[i] = e.Error
		if kindOf(e) != kind {
			kind = providers.KindUnavailable
		}
	}
	return &providers.Error{Kind: kind, Provider: providers.Own,
		Message: "every provider failed: " + strings.Join(msgs, "; "), Remedy: "see each provider's remedy above; list_providers shows what each one needs"}
}

// table renders rows under a header as a pipe-separated table whose columns are aligned
// (wide characters, such as Chinese ones, count twice). The last column is not padded.
func table(header []string, rows [][]string) string {
	t := newTextTable(header...)
	for _, r := range rows {
		t.row(r...)
	}
	var b strings.Builder
	t.write(&b)
	return b.String()
}

// textTable collects cells, then writes them aligned.
type textTable struct {
	cols   int
	cells  []string // header first, then the rows, row by row
	widths []int    // of each cell
}

func newTextTable(header ...string) *textTable {
	t := &textTable{cols: len(header)}
	t.row(header...)
	return t
}

// row adds a row of t.cols cells.
func (t *textTable) row(cells ...string) {
	t.cells = append(t.cells, cells...)
	for _, c := range cells {
		t.widths = append(t.widths, displayWidth(c))
	}
}

// grow makes room for n more rows.
func (t *textTable) grow(n int) {
	t.cells = slices.Grow(t.cells, n*t.cols)
	t.widths = slices.Grow(t.widths, n*t.cols)
}

func (t *textTable) write(b *strings.Builder) {
	colWidths := make([]int, t.cols)
	size := 0
	for i, w := range t.widths {
		colWidths[i%t.cols] = max(colWidths[i%t.cols], w)
	}
	for _, w := range colWidths {
		size += w + 3
	}
	b.Grow(size * len(t.cells) / t.cols)
	for i, c := range t.cells {
		col := i % t.cols
		if col > 0 {
			b.WriteString(" | ")
		} else if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(c)
		if col < t.cols-1 {
			for range colWidths[col] - t.widths[i] {
				b.WriteByte(' ')
			}
		}
	}
}

// displayWidth is how many columns s takes in a fixed-width font: East Asian wide and
// full-width characters take two.
func displayWidth(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < utf8.RuneSelf {
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size - 1
		n++
		if wide(r) {
			n++
		}
	}
	return n
}

func wide(r rune) bool {
	return (r >= 0x1100 && r <= 0x115F) || (r >= 0x2E80 && r <= 0xA4CF) || (r >= 0xAC00 && r <= 0xD7A3) ||
		(r >= 0xF900 && r <= 0xFAFF) || (r >= 0xFE30 && r <= 0xFE4F) || (r >= 0xFF00 && r <= 0xFF60) ||
		(r >= 0xFFE0 && r <= 0xFFE6) || (r >= 0x20000 && r <= 0x3FFFD)
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
