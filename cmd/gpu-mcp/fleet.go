package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/tools"
)

// testHookEnv is for crash tests only: pause_after_buy stops every launch between the
// vendor's answer to its buy and the ledger's record of it, and logs testHookPaused, so that
// the test can kill the process there.
const testHookEnv = "GPU_MCP_TESTHOOK"

// testHookPaused is the log line of a launch paused by the test hook.
const testHookPaused = "testhook: paused after buy"

// newFleet builds the owner of the launches and leases on the store, for the app's providers;
// its timings scale with the poll interval (GPU_MCP_POLL_INTERVAL).
func newFleet(cfg Config, log zerolog.Logger, store state.Store, owner string, d *tools.Deps) (*fleet.Fleet, error) {
	o := fleet.Options{Providers: d.Providers, Store: store, Log: log, Owner: owner, Poll: pollInterval(cfg),
		MaxLease: cfg.MaxLease, DefaultAutoStop: cfg.DefaultAutoStop, Audit: d.RecordEvent, Work: d.Work,
		Bought: func(provider string) { d.Offers.Invalidate(provider) }}
	switch cfg.testHook {
	case "":
	case "pause_after_buy":
		o.AfterBuy = func() {
			log.Warn().Msg(testHookPaused)
			select {}
		}
	default:
		return nil, fmt.Errorf("%s %q is not accepted; it is for crash tests only, and takes pause_after_buy", testHookEnv, cfg.testHook)
	}
	return fleet.New(o)
}

// pollInterval is how often the fleet and the operations look again: GPU_MCP_POLL_INTERVAL,
// or in the demo as often as the emulators change state, so that the demo is brisk.
func pollInterval(cfg Config) time.Duration {
	if cfg.Demo && cfg.DemoStepDelay < 2*cfg.PollInterval {
		return max(cfg.DemoStepDelay/2, 50*time.Millisecond)
	}
	return cfg.PollInterval
}

// reap runs one reconciliation pass and exits: a line per action on stdout, and status 1 when
// something due could not be done. For cron, a systemd timer or a launchd agent.
func reap(app *App, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	rep, err := app.Deps.Fleet.ReconcileOnce(ctx)
	for _, a := range rep.Actions {
		fmt.Fprintln(stdout, a.String())
	}
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp reap:", err)
		return 1
	}
	if rep.Failed() {
		return 1
	}
	return 0
}

// leases prints the leases (pending ones first, overdue ones flagged) and the orphans: the
// instances gpu-mcp launched that no working promise covers.
func leases(app *App, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	all, err := app.Deps.Fleet.Leases(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp leases:", err)
		return 1
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "INSTANCE\tACTION\tDUE (UTC)\tBY\tSTATUS\tATTEMPTS\tLAST ERROR")
	for _, l := range all {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", l.InstanceID, l.Action, leaseDue(l.Lease), l.View.By,
			leaseStatus(l), l.Attempts, dash(l.LastError))
	}
	if err := w.Flush(); err != nil {
		return 1
	}
	orphans, failed, err := app.Deps.Fleet.Orphans(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp leases:", err)
		return 1
	}
	fmt.Fprintf(stdout, "\norphans: %d\n", len(orphans))
	for _, o := range orphans {
		fmt.Fprintf(stdout, "%s (%s, %s): %s\n", o.Instance.ID, dash(o.Instance.Name), o.Instance.State, o.Why)
	}
	for _, f := range failed {
		fmt.Fprintf(stdout, "! %s could not be asked, its orphans are not shown: %v\n", f.Provider, f.Err)
	}
	if len(failed) > 0 {
		return 1
	}
	return 0
}

// leaseDue is when a lease is due: its time, or for a lease on work what it waits for.
func leaseDue(l state.Lease) string {
	if due := fleet.WorkDue(l.Kind); due != "" {
		return due
	}
	return l.DueAt.UTC().Format(time.RFC3339)
}

func leaseStatus(l fleet.LeaseInfo) string {
	switch {
	case !l.FiredAt.IsZero():
		return "done " + l.FiredAt.UTC().Format(time.RFC3339) + ": " + l.Outcome
	case l.View.OverdueSince != nil:
		return "OVERDUE since " + l.View.OverdueSince.UTC().Format(time.RFC3339)
	}
	return "pending"
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "\n", " ")
}

// validateLeases checks GPU_MCP_MAX_LEASE and GPU_MCP_DEFAULT_AUTO_STOP: each 0 (none) or an
// auto-stop gpu-mcp accepts, and the default within the cap.
func (c *Config) validateLeases() error {
	for _, v := range []struct {
		name string
		d    time.Duration
	}{{"GPU_MCP_MAX_LEASE", c.MaxLease}, {"GPU_MCP_DEFAULT_AUTO_STOP", c.DefaultAutoStop}} {
		if v.d != 0 && (v.d < fleet.MinAutoStop || v.d > fleet.MaxAutoStop) {
			return fmt.Errorf("%s %s is not accepted; use a duration between 5s and 720h, e.g. 8h (unset: none)", v.name, v.d)
		}
	}
	if c.MaxLease > 0 && c.DefaultAutoStop > c.MaxLease {
		return fmt.Errorf("GPU_MCP_DEFAULT_AUTO_STOP %s is longer than GPU_MCP_MAX_LEASE %s; set it to %s or less", c.DefaultAutoStop, c.MaxLease, c.MaxLease)
	}
	return nil
}
