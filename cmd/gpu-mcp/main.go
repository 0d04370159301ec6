// Command gpu-mcp is an MCP server that lets an AI agent find, rent and manage GPU machines
// on HuiXingYun, Datenfab and Chenyu, with every spending or destructive action confirmed.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/tools"
)

func main() {
	// gpu-mcp keeps 1-2 MB of live heap, and Go lets the heap grow to 4 MB at least between
	// collections whatever it keeps. Half of that bounds the memory the process takes to
	// about what it needs (peak RSS 18 MiB instead of 20 over stdio), at a cost that a heap
	// this small makes negligible. GOGC, when set, decides instead.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	// Every time gpu-mcp makes (a plan's expiry, a lease, an audit record, a log line) is in UTC
	// whatever the machine's zone, as its results say; the vendors' own are converted by the
	// registry.
	time.Local = time.UTC
	os.Exit(run(os.Args[1:], environ(), os.Stdin, os.Stdout, os.Stderr))
}

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// run is main without the process: it returns the exit status (see exitStatuses).
func run(args []string, environ map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, inv, err := loadConfig(args, environ)
	var ue *usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "gpu-mcp: %v\n%s\n", err, ue.helpHint())
		return 2
	case err != nil:
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 2
	case inv.help:
		printUsage(stdout, inv.helpFor)
		return 0
	case inv.version:
		fmt.Fprintln(stdout, "gpu-mcp", version)
		return 0
	}
	// Whether a person can be asked is the terminal's, not the redactor's that wraps stderr.
	interactive := isTerminal(stdin) && isTerminal(stderr)
	// From here on, whatever reaches stderr (logs, errors, the transports' own logs) passes
	// the redactor, which the adapters teach their credentials too.
	redacted := cfg.redactor.Writer(stderr)
	defer redacted.Flush()
	stderr = redacted
	logger := newLogger(cfg.LogLevel, stderr)
	var nc netConfig
	var call *callRequest
	switch inv.cmd.name {
	case "emulate":
		// The clouds alone: no store, no providers, no MCP server.
		return emulateCommand(cfg, inv.flags.ControlAddr, stdout, stderr, logger)
	case "serve":
		if cfg.Transport != "stdio" {
			// Checked before anything starts: a server that must not listen starts nothing.
			if nc, err = loadNetConfig(cfg, environ); err != nil {
				fmt.Fprintln(stderr, "gpu-mcp:", err)
				return 2
			}
		}
	case "call":
		// The arguments are read before anything starts: bad ones start no store or cloud.
		if call, err = newCallRequest(inv, stdin); err != nil {
			fmt.Fprintf(stderr, "gpu-mcp call: %v\nRun 'gpu-mcp help call' for usage.\n", err)
			return 2
		}
		call.interactive = interactive
	}
	app, err := newApp(cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 2
	}
	defer app.Close()
	switch inv.cmd.name {
	case "tools":
		return listTools(app, stdout)
	case "call":
		app.Start()
		return callTool(app, cfg, call, stdin, stdout, redacted)
	case "reap":
		return reap(app, stdout, stderr)
	case "leases":
		return leases(app, stdout, stderr)
	}
	app.Start()
	return serve(app, cfg, nc, stdin, stdout, stderr)
}

func newLogger(level string, w io.Writer) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(strings.ToLower(level))
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true}).Level(lvl).With().Timestamp().Logger()
}

// serve serves MCP on the configured transport until the client goes or a signal (SIGINT,
// SIGTERM) comes.
func serve(app *App, cfg Config, nc netConfig, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if cfg.Transport != "stdio" {
		return serveNetwork(ctx, app, cfg, nc, stderr, stop)
	}
	s := server.NewStdioServer(app.Server)
	s.SetErrorLogger(log.New(stderr, "gpu-mcp stdio: ", 0))
	app.Log.Info().Strs("providers", app.Deps.Providers.Names()).Bool("demo", cfg.Demo).Msg("serving MCP over stdio")
	in, out, done := frontStdio(ctx, app.Tasks, stdin, stdout, app.Log)
	defer done()
	if err := s.Listen(ctx, in, out); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		app.Log.Error().Err(err).Msg("stdio server stopped")
		return 1
	}
	return 0
}

// listTools lists the tools the server registers with this configuration: one line each, with
// its hints and whether it is guarded.
func listTools(app *App, stdout io.Writer) int {
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	for _, t := range tools.Registered(app.Deps) {
		var flags []string
		for _, f := range []struct {
			on   bool
			name string
		}{{t.Hints.ReadOnly, "readOnly"}, {t.Hints.Destructive, "destructive"}, {t.Hints.Idempotent, "idempotent"}, {t.Hints.OpenWorld, "openWorld"}, {t.Guarded, "guarded"}} {
			if f.on {
				flags = append(flags, f.name)
			}
		}
		desc, _, _ := strings.Cut(t.Description, ". ")
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.Name, "["+strings.Join(flags, ",")+"]", desc)
	}
	if err := tw.Flush(); err != nil {
		return 1
	}
	return 0
}
