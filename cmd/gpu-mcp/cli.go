package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// command is one subcommand of gpu-mcp, as the command line and the help know it.
type command struct {
	name     string
	operands string // the operands, as the usage shows them
	summary  string // one line in the list of commands
	help     string // what `gpu-mcp help NAME` adds to the summary
	// oneShot commands print a result and exit: their logs default to warn, since an INF line
	// before the result is noise. The others serve until stopped and default to info.
	oneShot bool
	// minOperands and maxOperands bound how many operands it takes.
	minOperands, maxOperands int
	// flags defines its own flags, bound to o; they shadow a global flag of the same name.
	flags func(fs *flag.FlagSet, o *commandFlags)
}

// commandFlags are the subcommands' own flags.
type commandFlags struct {
	JSON, Yes, NoInput bool   // call
	ControlAddr        string // emulate
}

// commands are gpu-mcp's subcommands, in the order the usage lists them; serve is the default.
var commands = []*command{
	{name: "serve", summary: "serve MCP over stdio, or over --transport http or sse (the default command)",
		help: "Serves until the client goes, or until SIGINT or SIGTERM; logs go to stderr (info by default), stdout is the stdio protocol."},
	{name: "tools", oneShot: true, summary: "list the tools the server would serve with this configuration",
		help: "One line per tool: its name, its hints (readOnly, destructive, idempotent, openWorld) and guarded when it asks for a confirmation first. --read-only lists only the tools read-only mode serves."},
	{name: "call", operands: "TOOL [ARGS]", oneShot: true, minOperands: 1, maxOperands: 2,
		summary: "run one tool in-process and print its answer",
		help: `ARGS are the tool's arguments as a JSON object: '{"gpu":"4090"}', - (read from standard input) or @FILE.
It prints the tool's text, or with --json its structured result (an error as {"error": "..."}).

A tool that spends, interrupts or deletes answers first with a plan:
  - at a terminal (standard input and standard error), gpu-mcp shows the plan and asks
    "Proceed? [y/N]"; y or yes runs it, anything else runs nothing (exit status 3);
  - without a terminal, or with --no-input, it prints the plan and its confirmation token and
    runs nothing: the same command with "confirm_token" added to ARGS runs it, from this
    process or any other on the same state store (GPU_MCP_STATE_URL) and the same clouds;
  - --yes runs it without asking: for scripts, it bypasses the person. The audit trail records
    it as cli_yes (a yes at the terminal as terminal), and GPU_MCP_REQUIRE_ELICITATION=true
    refuses it.`,
		flags: func(fs *flag.FlagSet, o *commandFlags) {
			fs.BoolVar(&o.JSON, "json", false, "print the structured result as one JSON document (an error as {\"error\": ...})")
			fs.BoolVar(&o.Yes, "yes", false, "confirm a plan without asking: for scripts; no person sees the plan")
			fs.BoolVar(&o.NoInput, "no-input", false, "never ask at the terminal: print the plan and its token, as without a terminal")
		}},
	{name: "reap", oneShot: true, summary: "carry out the auto-stops due and the launches left in flight, then exit: for cron",
		help: "One reconciliation pass over the state store: a line per action on stdout, and exit status 1 when something due\ncould not be done. For cron, a systemd timer or a launchd agent, where no gpu-mcp server runs to keep the auto-stops."},
	{name: "leases", oneShot: true, summary: "list the auto-stops (overdue ones flagged) and the orphans",
		help: "The auto-stop leases in the state store, pending ones first, and the orphans: instances gpu-mcp launched that no\nworking promise covers. Exit status 1 when a provider could not be asked."},
	{name: "emulate", summary: "run every cloud's emulator until stopped, printing the lines that point gpu-mcp at them",
		help: "Prints NAME=value lines (sorted), then \"" + emulateReady + "\"; gpu-mcp processes started with those\nlines in their environment (without --demo) share the emulated clouds. " +
			envEmulatorControl + " is a control API on --addr (loopback only): GET /instances, GET /changes, POST /outcome, POST /latency. " +
			"Serves until SIGINT or SIGTERM.",
		flags: func(fs *flag.FlagSet, o *commandFlags) {
			fs.StringVar(&o.ControlAddr, "addr", "127.0.0.1:0", "loopback address of the control API (port 0: a free one; the emulators take free ports)")
		}},
	{name: "version", oneShot: true, summary: "print the version (also --version)"},
	{name: "help", oneShot: true, operands: "[COMMAND]", maxOperands: 1, summary: "print this help, or a command's (also --help, -h, COMMAND --help)"},
}

// invocation is what the command line asks for.
type invocation struct {
	cmd      *command
	operands []string
	flags    commandFlags
	help     bool // --help, -h or the help command: print the usage of helpFor
	helpFor  *command
	version  bool
}

// usageError is a command line gpu-mcp cannot take: it is reported with a pointer to the
// help (of cmd, when known), and exit status 2.
type usageError struct {
	msg string
	cmd *command
}

func (e *usageError) Error() string { return e.msg }

// helpHint says where the usage is.
func (e *usageError) helpHint() string {
	if e.cmd == nil || e.cmd.name == "serve" {
		return "Run 'gpu-mcp --help' for usage."
	}
	return "Run 'gpu-mcp help " + e.cmd.name + "' for usage."
}

func usageErrorf(cmd *command, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), cmd: cmd}
}

// singleDashFlag finds the flags the flag package names in its errors, -name, to write them as
// people type them here, --name.
var singleDashFlag = regexp.MustCompile(`(^|[ :])-([a-z][a-z-]*)`)

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// globalFlags defines the flags every command takes, bound to cfg; each names, in brackets, the
// environment variable it overrides.
func globalFlags(fs *flag.FlagSet, cfg *Config, version *bool) {
	fs.StringVar(&cfg.Transport, "transport", cfg.Transport, "MCP over stdio, http (streamable HTTP at /mcp) or sse (at /sse) [GPU_MCP_TRANSPORT]")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "where http and sse listen [GPU_MCP_ADDR]")
	fs.BoolVar(&cfg.Demo, "demo", cfg.Demo, "run against built-in emulators of every cloud; nothing is real [GPU_MCP_DEMO]")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "debug, info, warn or error; logs go to stderr (default info for serve and emulate, warn for the others) [GPU_MCP_LOG_LEVEL]")
	fs.StringVar(&cfg.StateURL, "state", cfg.StateURL, "the state store: sqlite:///ABSOLUTE/PATH, postgres://... or memory: (default a file in the user's state directory; memory: under --demo) [GPU_MCP_STATE_URL]")
	fs.BoolVar(&cfg.ReadOnly, "read-only", cfg.ReadOnly, "serve only the tools that change nothing [GPU_MCP_READ_ONLY]")
	fs.DurationVar(&cfg.ConfirmTTL, "confirm-ttl", cfg.ConfirmTTL, "how long a confirmation token is good [GPU_MCP_CONFIRM_TTL]")
	fs.DurationVar(&cfg.VendorTimeout, "vendor-timeout", cfg.VendorTimeout, "how long each vendor's part of a read may take [GPU_MCP_VENDOR_TIMEOUT]")
	fs.BoolVar(version, "version", false, "print the version and exit")
}

// commandFlagSet is every flag cmd takes: its own, then the global ones it does not shadow.
func commandFlagSet(cmd *command, cfg *Config, inv *invocation) *flag.FlagSet {
	fs := flag.NewFlagSet("gpu-mcp "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed by run, to the right stream
	fs.Usage = func() {}
	if cmd.flags != nil {
		cmd.flags(fs, &inv.flags)
	}
	global := flag.NewFlagSet("global", flag.ContinueOnError)
	globalFlags(global, cfg, &inv.version)
	global.VisitAll(func(f *flag.Flag) {
		if fs.Lookup(f.Name) == nil {
			fs.Var(f.Value, f.Name, f.Usage)
		}
	})
	return fs
}

// parseCommandLine reads the command line into cfg (the global flags) and an invocation. Flags
// go before or after the command, and between its operands; "--" ends the flags.
func parseCommandLine(args []string, cfg *Config) (*invocation, error) {
	inv := &invocation{}
	at, err := findCommand(args, cfg)
	if err != nil {
		return nil, err
	}
	inv.cmd = lookupCommand("serve")
	if at >= 0 {
		name := args[at]
		if inv.cmd = lookupCommand(name); inv.cmd == nil {
			msg := fmt.Sprintf("unknown command %q", name)
			if near := closest(name, commandNames()); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			}
			return nil, usageErrorf(nil, "%s (commands: %s)", msg, strings.Join(commandNames(), ", "))
		}
		args = slices.Delete(slices.Clone(args), at, at+1)
	}
	fs := commandFlagSet(inv.cmd, cfg, inv)
	for {
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			inv.help, inv.helpFor = true, inv.cmd
			if at < 0 {
				inv.helpFor = nil
			}
			return inv, nil
		}
		if err != nil {
			return nil, usageErrorf(inv.cmd, "%s", singleDashFlag.ReplaceAllString(err.Error(), "$1--$2"))
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			inv.operands = append(inv.operands, rest...)
			break
		}
		if len(rest) == 0 {
			break
		}
		inv.operands = append(inv.operands, rest[0])
		args = rest[1:]
	}
	cfg.flagged = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.flagged[f.Name] = true })
	if inv.cmd.name == "version" && len(inv.operands) == 0 {
		inv.version = true
	}
	if inv.version {
		return inv, nil
	}
	if inv.cmd.name == "help" {
		inv.help = true
		if len(inv.operands) == 1 {
			if inv.helpFor = lookupCommand(inv.operands[0]); inv.helpFor == nil {
				return nil, usageErrorf(nil, "help: unknown command %q (commands: %s)", inv.operands[0], strings.Join(commandNames(), ", "))
			}
		}
	}
	if n := len(inv.operands); n < inv.cmd.minOperands || n > inv.cmd.maxOperands {
		synopsis := strings.TrimSpace("gpu-mcp " + inv.cmd.name + " " + inv.cmd.operands)
		if n > inv.cmd.maxOperands {
			return nil, usageErrorf(inv.cmd, "%s: unexpected arguments %q; usage: %s", inv.cmd.name, inv.operands[inv.cmd.maxOperands:], synopsis)
		}
		return nil, usageErrorf(inv.cmd, "%s: missing arguments; usage: %s", inv.cmd.name, synopsis)
	}
	return inv, nil
}

// findCommand returns the index of the command in args (-1: none), the first argument that is
// neither a flag nor a flag's value; any command's flags may come before it.
func findCommand(args []string, cfg *Config) (int, error) {
	// Every command's flags, and whether each takes a value.
	takesValue := map[string]bool{"h": false, "help": false}
	var scratch invocation
	for _, c := range commands {
		commandFlagSet(c, cfg, &scratch).VisitAll(func(f *flag.Flag) {
			b, ok := f.Value.(interface{ IsBoolFlag() bool })
			takesValue[f.Name] = !ok || !b.IsBoolFlag()
		})
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return i + 1, nil
			}
			return -1, nil
		}
		if len(a) < 2 || a[0] != '-' {
			return i, nil
		}
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		value, known := takesValue[name]
		if !known {
			return -1, usageErrorf(nil, "flag provided but not defined: --%s", name)
		}
		if value && !hasValue {
			i++ // its value; a missing one is reported by the flag parser
		}
	}
	return -1, nil
}

func commandNames() []string {
	out := make([]string, len(commands))
	for i, c := range commands {
		out[i] = c.name
	}
	return out
}

// closest is the candidate a typo of s most likely meant: within two edits (or s a prefix
// of it), else "".
func closest(s string, candidates []string) string {
	best, bestDist := "", 3
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), c)
		if len(s) >= 2 && strings.HasPrefix(c, strings.ToLower(s)) {
			d = min(d, 1)
		}
		if d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// exitStatuses are gpu-mcp's exit statuses, as the usage lists them.
const exitStatuses = `Exit status:
  0  done; for call also a plan printed without a terminal (nothing was done)
  1  the tool answered with an error, or gpu-mcp failed; for reap something due was not done
  2  bad usage or configuration (nothing was started)
  3  call: the plan was declined at the prompt (nothing was done)
`

// printUsage writes the usage of gpu-mcp, or of one command, to w.
func printUsage(w io.Writer, cmd *command) {
	var cfg Config
	_ = env.ParseWithOptions(&cfg, env.Options{Environment: map[string]string{}}) // the defaults
	var inv invocation
	if cmd != nil {
		fmt.Fprintf(w, "Usage: %s\n\n%s.\n", strings.TrimSpace("gpu-mcp [flags] "+cmd.name+" "+cmd.operands), upperFirst(cmd.summary))
		if cmd.help != "" {
			fmt.Fprintf(w, "\n%s\n", cmd.help)
		}
		if cmd.flags != nil {
			own := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
			cmd.flags(own, &inv.flags)
			fmt.Fprintf(w, "\nFlags of %s:\n", cmd.name)
			printFlags(w, own)
		}
		fmt.Fprintf(w, "\nThe global flags and the environment: gpu-mcp --help.\n")
		return
	}
	fmt.Fprintf(w, `gpu-mcp: an MCP server for renting GPU machines on %s.

Usage: gpu-mcp [flags] [command] [arguments]    (flags go before or after the command)

Commands:
`, vendors.Titles())
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.operands), c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nFlags (each also read from the environment variable in brackets; flags win):\n")
	global := flag.NewFlagSet("gpu-mcp", flag.ContinueOnError)
	globalFlags(global, &cfg, &inv.version)
	printFlags(w, global)
	for _, c := range commands {
		if c.flags == nil {
			continue
		}
		own := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(own, &inv.flags)
		fmt.Fprintf(w, "\nFlags of %s (gpu-mcp help %s says more):\n", c.name, c.name)
		printFlags(w, own)
	}
	fmt.Fprint(w, "\nProviders, each enabled by its credentials in the environment (*_BASE_URL points it elsewhere):\n")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, v := range vendors.All() {
		var also []string
		for _, name := range vendors.Variables(v) {
			if !strings.Contains(v.Hint, name) {
				also = append(also, name)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s (also %s)\n", v.Name, v.Hint, strings.Join(also, ", "))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nMore settings, from the environment only (README, Configuration):\n%s\n", wrap(strings.Join(environmentOnly(global), ", "), "  ", 96))
	fmt.Fprint(w, "\n"+exitStatuses)
}

// valueNames name the values of the flags that take one, in the usage.
var valueNames = map[string]string{"transport": "stdio|http|sse", "addr": "HOST:PORT", "log-level": "LEVEL", "state": "URL",
	"confirm-ttl": "DURATION", "vendor-timeout": "DURATION"}

// printFlags lists fs's flags in the form people type, --name VALUE, with the defaults of an
// empty environment before the variable that sets them.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		value, usage := flag.UnquoteUsage(f)
		value = orDefault(valueNames[f.Name], strings.ToUpper(value))
		variable := ""
		if m := bracketedVariable.FindStringSubmatchIndex(usage); m != nil {
			usage, variable = strings.TrimSpace(usage[:m[0]]), " "+usage[m[0]:]
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			value = ""
		} else if f.DefValue != "" && !strings.Contains(usage, "(default") {
			usage += " (default " + shortDuration(f.DefValue) + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s%s\n", strings.TrimSpace("--"+f.Name+" "+value), usage, variable)
	})
	tw.Flush()
}

var bracketedVariable = regexp.MustCompile(`\[([A-Z0-9_]+)\]$`)

// environmentOnly names the settings that no flag of fs overrides.
func environmentOnly(fs *flag.FlagSet) []string {
	flagged := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) {
		if m := bracketedVariable.FindStringSubmatch(f.Usage); m != nil {
			flagged[m[1]] = true
		}
	})
	var out []string
	for _, v := range []any{&Config{}, &netConfig{}} {
		params, err := env.GetFieldParams(v)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", reflect.TypeOf(v), err))
		}
		for _, p := range params {
			if !flagged[p.Key] {
				out = append(out, p.Key)
			}
		}
	}
	return out
}

// wrap breaks s at spaces into lines of at most width, each starting with indent.
func wrap(s, indent string, width int) string {
	var lines []string
	line := indent
	for _, word := range strings.Fields(s) {
		if len(line) > len(indent) && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = indent
		}
		if len(line) > len(indent) {
			line += " "
		}
		line += word
	}
	return strings.Join(append(lines, line), "\n")
}

// shortDuration writes a duration as people do (5m, not 5m0s); anything else is kept.
func shortDuration(s string) string {
	d, err := time.ParseDuration(s)
	if err != nil {
		return s
	}
	return fleet.ShortDuration(d)
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
