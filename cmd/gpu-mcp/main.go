// Command gpu-mcp is an MCP server that lets an AI agent find, rent and manage GPU machines
// on HuiXingYun, Datenfab and Chenyu, with every spending or destructive action confirmed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/tools"
)

func main() {
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

// run is main without the process: it returns the exit status.
func run(args []string, environ map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, rest, err := loadConfig(args, environ, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 2
	}
	// From here on, whatever reaches stderr (logs, errors, the transports' own logs) passes
	// the redactor, which the adapters teach their credentials too.
	redacted := cfg.redactor.Writer(stderr)
	defer redacted.Flush()
	stderr = redacted
	logger := newLogger(cfg.LogLevel, stderr)
	cmd := "serve"
	if len(rest) > 0 {
		cmd, rest = rest[0], rest[1:]
	}
	if cmd == "version" {
		fmt.Fprintln(stdout, "gpu-mcp", version)
		return 0
	}
	if cmd == "emulate" {
		// The clouds alone: no store, no providers, no MCP server.
		return emulateCommand(cfg, rest, stdout, stderr, logger)
	}
	var nc netConfig
	if cmd == "serve" && cfg.Transport != "stdio" {
		// Checked before anything starts: a server that must not listen starts nothing.
		if nc, err = loadNetConfig(cfg, environ); err != nil {
			fmt.Fprintln(stderr, "gpu-mcp:", err)
			return 2
		}
	}
	app, err := newApp(cfg, logger)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 2
	}
	defer app.Close()
	switch cmd {
	case "serve":
		app.Start()
		return serve(app, cfg, nc, stdin, stdout, stderr)
	case "tools":
		return listTools(app, stdout)
	case "call":
		app.Start()
		return callTool(app, rest, stdout, stderr)
	case "reap":
		return reap(app, stdout, stderr)
	case "leases":
		return leases(app, stdout, stderr)
	}
	fmt.Fprintf(stderr, "gpu-mcp: unknown command %q; use serve (default), tools, call, reap, leases, emulate or version\n", cmd)
	return 2
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

func listTools(app *App, stdout io.Writer) int {
	for _, t := range tools.All(app.Deps) {
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
		fmt.Fprintf(stdout, "%-18s %-46s %s\n", t.Name, "["+strings.Join(flags, ",")+"]", desc)
	}
	return 0
}

// callTool runs one tool through the same MCP server, in-process, and prints its text.
func callTool(app *App, args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(stderr, "gpu-mcp: usage: gpu-mcp call TOOL ['{json arguments}']")
		return 2
	}
	var arguments json.RawMessage = []byte("{}")
	if len(args) == 2 {
		arguments = json.RawMessage(args[1])
		if !json.Valid(arguments) {
			fmt.Fprintf(stderr, "gpu-mcp: the arguments of %s are not valid JSON: %s\n", args[0], args[1])
			return 2
		}
	}
	ctx := context.Background()
	c, err := client.NewInProcessClient(app.Server)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 1
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 1
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gpu-mcp call", Version: version}
	if _, err := c.Initialize(ctx, init); err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 1
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = args[0]
	req.Params.Arguments = arguments
	res, err := c.CallTool(ctx, req)
	if err != nil {
		fmt.Fprintf(stderr, "gpu-mcp: %s: %v\n", args[0], err)
		return 1
	}
	for _, content := range res.Content {
		if t, ok := content.(mcp.TextContent); ok {
			fmt.Fprintln(stdout, t.Text)
		}
	}
	if res.IsError {
		return 1
	}
	return 0
}
