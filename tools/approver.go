package tools

import "context"

// How gpu-mcp's own command line (gpu-mcp call, an in-process client) approves a plan: it
// sends the plan's token back like any client, and says through the context who stands
// behind it, so that the audit trail tells a person's yes from a script's.
const (
	// ConfirmedAtTerminal: a person at gpu-mcp call's terminal saw the plan and answered yes.
	ConfirmedAtTerminal Confirmation = "terminal"
	// ConfirmedByCLIYes: gpu-mcp call --yes, a script's word that no person saw the plan.
	ConfirmedByCLIYes Confirmation = "cli_yes"
)

type approverKey struct{}

// WithApprover says who stands behind the confirmation tokens sent with ctx:
// ConfirmedAtTerminal or ConfirmedByCLIYes (otherwise a token counts as ConfirmedByToken).
// Only code in this process can set it, never a client's request. A person at the terminal
// is the approval GPU_MCP_REQUIRE_ELICITATION asks for, so under it ConfirmedAtTerminal is
// also given plans and its tokens are accepted; --yes is not.
func WithApprover(ctx context.Context, c Confirmation) context.Context {
	return context.WithValue(ctx, approverKey{}, c)
}

// approverOf is who stands behind a token sent with ctx.
func approverOf(ctx context.Context) Confirmation {
	if c, ok := ctx.Value(approverKey{}).(Confirmation); ok && (c == ConfirmedAtTerminal || c == ConfirmedByCLIYes) {
		return c
	}
	return ConfirmedByToken
}

// personAtTerminal reports whether a person at gpu-mcp call's terminal approves the calls of ctx.
func personAtTerminal(ctx context.Context) bool { return approverOf(ctx) == ConfirmedAtTerminal }

// Text renders the plan for the person who must approve it, as the tools' answers do.
func (p *Plan) Text() string { return planText(p) }
