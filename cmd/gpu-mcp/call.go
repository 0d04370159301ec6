package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"golang.org/x/term"

	"github.com/gpu-mcp/gpu-mcp/providers/redact"
	"github.com/gpu-mcp/gpu-mcp/tools"
)

// Exit statuses of gpu-mcp call beyond 0, 1 and 2 (exitStatuses lists them all).
const exitDeclined = 3 // the person answered no at the prompt: nothing was done

// maxCallArguments bounds the arguments read from standard input or a file.
const maxCallArguments = 4 << 20

// maxConfirmRounds bounds how often one call is confirmed: a plan that changed between the
// question and the action (a price, a state) comes back as a new plan, to be approved anew.
const maxConfirmRounds = 3

// callRequest is one `gpu-mcp call`: the tool, its arguments and how a plan is to be approved.
type callRequest struct {
	tool      string
	arguments map[string]any
	json      bool // print the structured result
	yes       bool // approve plans without asking
	noInput   bool // never ask, even at a terminal
	// interactive: standard input and standard error are a terminal, so a person can be asked.
	interactive bool
}

// newCallRequest reads the operands of call: TOOL and its arguments, a JSON object given as
// it is, as - (standard input) or as @FILE.
func newCallRequest(inv *invocation, stdin io.Reader) (*callRequest, error) {
	req := &callRequest{tool: inv.operands[0], json: inv.flags.JSON, yes: inv.flags.Yes, noInput: inv.flags.NoInput,
		arguments: map[string]any{}}
	if req.yes && req.noInput {
		return nil, errors.New("--yes and --no-input contradict each other: --yes approves a plan, --no-input only prints it")
	}
	if len(inv.operands) < 2 {
		return req, nil
	}
	raw, from := []byte(inv.operands[1]), "the arguments of "+req.tool
	switch src := inv.operands[1]; {
	case src == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, maxCallArguments+1))
		if err != nil {
			return nil, fmt.Errorf("reading the arguments from standard input: %w", err)
		}
		raw, from = b, "the arguments of "+req.tool+" on standard input"
	case strings.HasPrefix(src, "@"):
		f, err := os.Open(src[1:])
		if err != nil {
			return nil, fmt.Errorf("reading the arguments: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, maxCallArguments+1))
		if err != nil {
			return nil, fmt.Errorf("reading the arguments from %s: %w", src[1:], err)
		}
		raw, from = b, "the arguments of "+req.tool+" in "+src[1:]
	}
	if len(raw) > maxCallArguments {
		return nil, fmt.Errorf("%s are larger than %d MiB", from, maxCallArguments>>20)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers reach the tool as they were written
	var v any
	err := dec.Decode(&v)
	if err == nil && dec.More() {
		err = errors.New("more follows the first value")
	}
	obj, isObject := v.(map[string]any)
	if err == nil && !isObject {
		err = fmt.Errorf("they are %s", jsonKind(v))
	}
	if err != nil {
		return nil, fmt.Errorf(`%s are not a JSON object: %v; give them as '{"name": value, ...}', as - to read them from standard input, or as @FILE`, from, err)
	}
	req.arguments = obj
	return req, nil
}

// jsonKind names the kind of a decoded JSON value that is not an object.
func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	}
	return "null"
}

// confirmation is the part of a guarded tool's answer the terminal needs.
type confirmation struct {
	Status            tools.Status `json:"status"`
	Plan              *tools.Plan  `json:"plan"`
	ConfirmationToken string       `json:"confirm_token"`
	Message           string       `json:"message"`
	Demo              bool         `json:"demo"`
}

// planOf returns the plan a result asks to approve, or nil when it asks for nothing.
func planOf(res *mcp.CallToolResult) *confirmation {
	if res.IsError || res.StructuredContent == nil {
		return nil
	}
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return nil
	}
	var c confirmation
	if json.Unmarshal(b, &c) != nil || c.Status != tools.StatusConfirmationRequired || c.ConfirmationToken == "" || c.Plan == nil {
		return nil
	}
	return &c
}

// callTool runs one tool through the same MCP server, in-process, and prints its answer. A
// plan is approved by the person at the terminal, by --yes, or printed with its token.
func callTool(app *App, cfg Config, req *callRequest, stdin io.Reader, stdout io.Writer, stderr *redact.Writer) int {
	ctx := context.Background()
	c, err := connectInProcess(ctx, app)
	if err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
		return 1
	}
	defer c.Close()
	progress := &progressLines{w: stderr}
	if req.interactive {
		c.OnNotification(progress.show)
	}
	tool, status := servedTool(app, req.tool, stderr)
	if tool == nil {
		return status
	}
	if tool.Guarded && req.yes && cfg.RequireElicitation {
		fmt.Fprintf(stderr, "gpu-mcp call: --yes is not accepted for %s: GPU_MCP_REQUIRE_ELICITATION=true acts only on a person's approval, and --yes is a script's; run it at a terminal and answer the question\n", req.tool)
		return 2
	}

	// Who stands behind the token sent back: set before the first call too, since under
	// GPU_MCP_REQUIRE_ELICITATION only a person at the terminal is given a plan.
	approver := tools.ConfirmedByToken
	_, hasToken := req.arguments["confirm_token"]
	switch {
	case hasToken:
	case req.yes:
		approver = tools.ConfirmedByCLIYes
	case req.interactive && !req.noInput:
		approver = tools.ConfirmedAtTerminal
	}
	answers := bufio.NewReader(stdin)
	args := req.arguments
	for round := 1; ; round++ {
		creq := mcp.CallToolRequest{}
		creq.Params.Name, creq.Params.Arguments = req.tool, args
		if req.interactive {
			creq.Params.Meta = &mcp.Meta{ProgressToken: mcp.ProgressToken(round)}
		}
		progress.wait(true)
		res, err := c.CallTool(tools.WithApprover(ctx, approver), creq)
		progress.wait(false)
		if err != nil {
			fmt.Fprintf(stderr, "gpu-mcp: %s: %v\n", req.tool, err)
			return 1
		}
		plan := planOf(res)
		if plan == nil {
			res = followPending(ctx, c, res, req, progress, stderr)
			code := printResult(res, req.json, stdout, stderr)
			if code == 0 && pendingOf(res) != "" {
				return 1 // not followed to its end: say so by the status too
			}
			return code
		}
		switch {
		case round > maxConfirmRounds:
			fmt.Fprintf(stderr, "gpu-mcp call: the plan of %s changed %d times while it was being approved; nothing was done, try again\n", req.tool, maxConfirmRounds)
			return 1
		case req.yes:
			showPlan(stderr, req.tool, plan)
			fmt.Fprintln(stderr, "Approved by --yes, without asking.")
		case req.interactive && !req.noInput:
			showPlan(stderr, req.tool, plan)
			fmt.Fprint(stderr, "Proceed? [y/N] ")
			stderr.Flush() // the question has no line end to wait for
			line, _ := answers.ReadString('\n')
			if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
				return declined(plan, req.json, stdout, stderr)
			}
		default:
			printResult(res, req.json, stdout, stderr)
			howToConfirm(stderr, cfg, plan)
			return 0
		}
		args = withConfirmToken(args, plan.ConfirmationToken)
	}
}

// pendingOf is the operation a result says goes on past the call budget, or "".
func pendingOf(res *mcp.CallToolResult) string {
	if res == nil || res.IsError {
		return ""
	}
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil || json.Unmarshal(b, &m) != nil {
			return ""
		}
	}
	id, _ := m["operation_id"].(string)
	if m["status"] != "pending" || id == "" {
		return ""
	}
	return id
}

// followPending follows an answer that went on past the call budget (a launch, a wait, a save)
// with get_operation until the operation ends, and returns its end: gpu-mcp call is the
// process that carries the operation out, so it must not exit while it runs (an operation left
// behind waits for the next gpu-mcp process, and a launch's auto-stop with it).
func followPending(ctx context.Context, c *client.Client, res *mcp.CallToolResult, req *callRequest, progress *progressLines, stderr *redact.Writer) *mcp.CallToolResult {
	for round := 1; ; round++ {
		id := pendingOf(res)
		if id == "" {
			return res
		}
		if round == 1 {
			fmt.Fprintf(stderr, "gpu-mcp call: %s goes on past the call budget (operation %s); following it until it ends\n", req.tool, id)
		}
		greq := mcp.CallToolRequest{}
		greq.Params.Name, greq.Params.Arguments = "get_operation", map[string]any{"operation_id": id}
		if req.interactive {
			greq.Params.Meta = &mcp.Meta{ProgressToken: mcp.ProgressToken(fmt.Sprintf("op-%d", round))}
		}
		progress.wait(true)
		next, err := c.CallTool(ctx, greq)
		progress.wait(false)
		if err != nil {
			fmt.Fprintf(stderr, "gpu-mcp call: following operation %s: %v; it is kept in the state store, and get_operation operation_id=%s follows it from any gpu-mcp\n", id, err, id)
			return res
		}
		res = next
	}
}

// connectInProcess connects an MCP client to the app's server, in this process.
func connectInProcess(ctx context.Context, app *App) (*client.Client, error) {
	c, err := client.NewInProcessClient(app.Server)
	if err != nil {
		return nil, err
	}
	if err := c.Start(ctx); err != nil {
		c.Close()
		return nil, err
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gpu-mcp call", Version: version}
	if _, err := c.Initialize(ctx, init); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// progressLines shows a person waiting at the terminal how a long call is going (a launch's
// ordered, starting, running, ...). Notifications that trail the answer are dropped: the
// answer says more.
type progressLines struct {
	w       io.Writer
	mu      sync.Mutex
	waiting bool
}

func (p *progressLines) wait(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting = on
}

func (p *progressLines) show(n mcp.JSONRPCNotification) {
	msg, _ := n.Params.AdditionalFields["message"].(string)
	p.mu.Lock()
	defer p.mu.Unlock()
	if n.Method == "notifications/progress" && msg != "" && p.waiting {
		fmt.Fprintf(p.w, "  ... %s\n", msg)
	}
}

// servedTool finds the tool the server registers under name; otherwise it says why there is
// none and returns the exit status.
func servedTool(app *App, name string, stderr io.Writer) (*tools.Tool, int) {
	var served []string
	for _, t := range tools.Registered(app.Deps) {
		if t.Name == name {
			return &t, 0
		}
		served = append(served, t.Name)
	}
	// The tools this configuration leaves out are known by the name, to say why.
	every := *app.Deps
	every.ReadOnly, every.Exec = false, tools.ExecOn
	for _, t := range tools.All(&every) {
		if t.Name != name {
			continue
		}
		why := "GPU_MCP_EXEC=off serves none of the tools that change a machine"
		if app.Deps.ReadOnly {
			why = "read-only mode serves only the tools that change nothing"
		}
		fmt.Fprintf(stderr, "gpu-mcp call: %s is not served with this configuration (%s); `gpu-mcp tools` lists those it serves\n", name, why)
		return nil, 2
	}
	msg := fmt.Sprintf("gpu-mcp call: unknown tool %q", name)
	if near := closest(name, served); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
	}
	fmt.Fprintln(stderr, msg+" `gpu-mcp tools` lists the tools")
	return nil, 2
}

func withConfirmToken(args map[string]any, token string) map[string]any {
	out := map[string]any{"confirm_token": token}
	for k, v := range args {
		if k != "confirm_token" {
			out[k] = v
		}
	}
	return out
}

// showPlan puts the plan before the person, on stderr: stdout stays the result.
func showPlan(stderr io.Writer, tool string, c *confirmation) {
	demo := ""
	if c.Demo {
		demo = " [demo: built-in emulators, nothing here is real]"
	}
	fmt.Fprintf(stderr, "%s asks for your approval; nothing has been done yet.%s\n", tool, demo)
	if c.Message != "" {
		fmt.Fprintln(stderr, c.Message)
	}
	fmt.Fprint(stderr, c.Plan.Text())
}

// declined reports a plan the person did not approve.
func declined(c *confirmation, asJSON bool, stdout, stderr io.Writer) int {
	const msg = "Nothing was done."
	if !asJSON {
		fmt.Fprintln(stdout, msg)
		return exitDeclined
	}
	out := map[string]any{"status": tools.StatusDeclined, "message": msg + " The plan was declined at the terminal.", "plan": c.Plan}
	if c.Demo {
		out["demo"] = true
	}
	if err := printJSON(stdout, out); err != nil {
		fmt.Fprintln(stderr, "gpu-mcp:", err)
	}
	return exitDeclined
}

// howToConfirm says, after a plan printed without asking, how to carry it out. The token is
// in the answer on stdout; stderr passes the redactor, which keeps tokens out of it.
func howToConfirm(stderr io.Writer, cfg Config, c *confirmation) {
	if cfg.Demo && strings.TrimSpace(cfg.StateURL) == "" {
		fmt.Fprint(stderr, "gpu-mcp call: nothing was done. Under --demo the token dies with this process (its state store is in memory):\n"+
			"run the command at a terminal to be asked, or with --yes; to confirm from another process, see gpu-mcp help emulate.\n")
		return
	}
	fmt.Fprint(stderr, "gpu-mcp call: nothing was done. To carry out this plan, run the same command with \"confirm_token\" added to its\n"+
		"arguments, set to the token above (from any process on the same state store and clouds), or add --yes to approve it without asking.\n")
}

// printResult prints a tool's answer, its text or with --json its structured result, and
// returns the exit status: 1 for an error or an action that failed.
func printResult(res *mcp.CallToolResult, asJSON bool, stdout, stderr io.Writer) int {
	var text strings.Builder
	for _, content := range res.Content {
		if t, ok := content.(mcp.TextContent); ok {
			text.WriteString(t.Text + "\n")
		}
	}
	failed := res.IsError
	var o struct {
		Status tools.Status `json:"status"`
	}
	if b, err := json.Marshal(res.StructuredContent); err == nil && json.Unmarshal(b, &o) == nil && o.Status == tools.StatusFailed {
		failed = true
	}
	if !asJSON {
		fmt.Fprint(stdout, text.String())
	} else {
		var doc any = res.StructuredContent
		switch {
		case res.IsError:
			doc = map[string]string{"error": strings.TrimSpace(text.String())}
		case doc == nil:
			doc = map[string]string{"text": strings.TrimSpace(text.String())}
		}
		if err := printJSON(stdout, doc); err != nil {
			fmt.Fprintln(stderr, "gpu-mcp:", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// isTerminal reports whether f is a terminal (a character device a person types at).
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}
