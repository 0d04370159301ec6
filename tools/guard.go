package tools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Confirm is embedded in the arguments of every guarded tool.
type Confirm struct {
	ConfirmToken string `json:"confirm_token,omitempty" jsonschema:"maxLength=1024" jsonschema_description:"from this tool's confirmation_required answer; send it with the same arguments only after the user approved the plan"`
	// OldToken is confirm_token under the name results gave it in 0.1: accepted until 0.3, so
	// that an agent that sends back the field it read is not refused. The schema leaves it out.
	OldToken string `json:"confirmation_token,omitempty" jsonschema:"-"`
}

func (c *Confirm) takeToken() (string, error) { return takeToken(&c.ConfirmToken, &c.OldToken) }

// takeToken removes the token, under its name or its old one, from the arguments, which it must
// not be part of, and returns it.
func takeToken(token, old *string) (string, error) {
	t, o := *token, *old
	*token, *old = "", ""
	if t != "" && o != "" && t != o {
		return "", argInvalid("confirmation_token", nil, "confirm_token and confirmation_token (its deprecated name) hold different tokens",
			"send confirm_token only")
	}
	if t == "" {
		t = o
	}
	return t, nil
}

// Plan describes what a guarded action will do, before it is done.
type Plan struct {
	Action       string   `json:"action"`
	Summary      string   `json:"summary"`
	Provider     string   `json:"provider"`
	InstanceID   string   `json:"instance_id,omitempty"`
	InstanceName string   `json:"instance_name,omitempty"`
	OfferID      string   `json:"offer_id,omitempty"`
	ImageID      string   `json:"image_id,omitempty"`
	GPUModel     string   `json:"gpu_model,omitempty"`
	GPUCount     int      `json:"gpu_count,omitempty"`
	Billing      string   `json:"billing,omitempty"`
	PricePerHour *float64 `json:"price_per_hour,omitempty" jsonschema_description:"CNY while it runs; absent: no published price"`
	PeriodCost   *float64 `json:"period_cost,omitempty" jsonschema_description:"CNY charged up front for prepaid periods"`
	Effects      []string `json:"effects" jsonschema_description:"what happens, is interrupted, lost, billed"`
	// Limits are figures of the moment, checked again when the plan runs: they are not part
	// of what a token approves (see planDigest).
	Limits []string `json:"limits,omitempty" jsonschema_description:"each spending limit that applies: figures, what this adds, what is left; checked again when it runs"`
}

// Outcome is embedded in the result of every guarded tool.
type Outcome struct {
	Status       Status `json:"status" jsonschema:"enum=confirmation_required,enum=done,enum=failed,enum=nothing_to_do,enum=declined,enum=cancelled,enum=pending" jsonschema_description:"confirmation_required: nothing done yet, show the plan; done; failed: ran but missed its aim (see message); nothing_to_do: already so; declined, cancelled: the user said no, nothing done; pending: runs on past the call budget, follow operation_id with get_operation"`
	Plan         *Plan  `json:"plan,omitempty" jsonschema_description:"what it will do, for the user to approve"`
	ConfirmToken string `json:"confirm_token,omitempty" jsonschema_description:"pass back as confirm_token, same arguments, once the user approved"`
	// ConfirmationToken is confirm_token under its old name, sent until 0.3 and kept out of
	// the schemas, which speak of confirm_token alone (output schemas admit it as an extra).
	ConfirmationToken string     `json:"confirmation_token,omitempty" jsonschema:"-"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty"`
	Message           string     `json:"message,omitempty"`
	Demo              bool       `json:"demo,omitempty"`
}

func (o *Outcome) outcome() *Outcome { return o }

// answersAlone reports whether the Outcome is the whole answer: a plan waiting for approval,
// or one the user declined or cancelled, did nothing, so none of the result's own fields
// (a job's state, the files copied) has a value to show; their zero values would not even
// match the output schema's enums and types.
func (o Outcome) answersAlone() (Outcome, bool) {
	switch o.Status {
	case StatusConfirmationRequired, StatusDeclined, StatusCancelled:
		return o, true
	}
	return o, false
}

// guardedArgs are the arguments of a guarded tool: they embed Confirm.
type guardedArgs[In any] interface {
	*In
	takeToken() (string, error)
}

// guardedResult is the result of a guarded tool: it embeds Outcome.
type guardedResult[Out any] interface {
	*Out
	outcome() *Outcome
}

// prepared is what a guarded tool's preparation found: either nothing to do, or a plan and
// the function that carries it out.
type prepared[Out any] struct {
	plan    *Plan
	noop    string // non-empty: nothing to do, and why
	noopOut Out
	// spend, when set, is what the plan adds to the spending: the guard previews the limits
	// before the plan is shown, and when it runs checks them again and holds its room in one
	// step (holdSpend), since others may have spent meanwhile.
	spend *spending
	run   func(ctx context.Context) (Out, string, error)
}

// guardedTool builds a tool that changes something at a vendor. prepare only reads. The action
// runs only after a person said yes through the client (elicitation), or with a valid token
// for the same arguments and the same plan, and within the spending limits.
func guardedTool[In, Out any, PIn guardedArgs[In], POut guardedResult[Out]](d *Deps, name, title, description string, hints Hints,
	prepare func(ctx context.Context, in PIn) (*prepared[Out], error)) Tool {
	return newTool(name, title, description, hints, true, func(ctx context.Context, in *In) (_ Out, _ string, err error) {
		var zero Out
		token, err := PIn(in).takeToken()
		if err != nil {
			return zero, "", err
		}
		args, err := json.Marshal(in)
		if err != nil {
			return zero, "", err
		}
		rec := AuditEntry{Time: time.Now().UTC(), Tool: name, Arguments: args, Confirmation: ConfirmedNot, Demo: d.Demo}
		defer func() {
			if err != nil && rec.Outcome == "" {
				rec.Outcome, rec.Detail = StatusRefused, errorText(err)
			}
			if aerr := d.Audit.Record(ctx, rec); aerr != nil {
				d.Log.Error().Err(aerr).Str("tool", name).Str("outcome", string(rec.Outcome)).Msg("AUDIT NOT RECORDED: the outcome of this guarded call is missing from the audit trail")
			}
		}()

		p, err := prepare(ctx, in)
		if err != nil {
			return zero, "", err
		}
		if p.noop != "" {
			out := p.noopOut
			o := POut(&out).outcome()
			o.Status, o.Message, o.Demo = StatusNothingToDo, p.noop, d.Demo
			rec.Outcome, rec.Detail = StatusNothingToDo, p.noop
			return out, d.textPrefix() + p.noop, nil
		}
		if err := d.previewSpend(ctx, p.spend, p.plan); err != nil {
			return zero, "", err
		}
		rec.Plan = p.plan
		digest := planDigest(p.plan)

		mr := roundTripFrom(ctx)
		if answer := server.ElicitationResponse(mr.InputResponses, elicitID); answer != nil && d.NoElicitation {
			return zero, "", &providers.Error{Kind: providers.KindRejected, Provider: providers.Own,
				Message: name + " refused: this server puts no questions through the client (GPU_MCP_ELICITATION=off), so an answer is not an approval; nothing was done",
				Remedy:  "call " + name + " without an answer for a plan and a confirm_token, and show the plan to the user"}
		} else if answer != nil {
			// An answer to the question this tool asked through the client. It is a person's
			// only from a client that declared it can ask its user, on a transport that could
			// have delivered the question, and with the request state gpu-mcp gave with that
			// question (a token of its own purpose, bound to the arguments and the plan shown):
			// an agent cannot make its own confirmation token stand for a person's yes.
			rec.Confirmation = ConfirmedUnverified
			if !clientCanElicit(ctx) {
				d.Log.Warn().Str("tool", name).Str("client", clientName(ctx)).Msg("refused an elicitation answer from a client that cannot ask its user")
				return zero, "", &providers.Error{Kind: providers.KindRejected, Provider: providers.Own,
					Message: name + " refused: this client did not declare that it can ask its user (MCP elicitation), so an answer sent in its user's name is not an approval; nothing was done",
					Remedy:  "call " + name + " without an answer for a plan and a confirm_token, and show the plan to the user"}
			}
			if err := d.Confirmer.VerifyState(ctx, name, args, digest, mr.RequestState); err != nil {
				d.Log.Warn().Str("tool", name).Str("reason", err.Error()).Msg("elicitation answer refused")
				if te, ok := isTokenError(err); ok {
					return zero, "", &providers.Error{Kind: providers.KindRejected, Provider: providers.Own,
						Message: name + " refused: " + te.Reason, Remedy: "call " + name + " again for a new question to the user"}
				}
				return zero, "", refusal(name, err)
			}
			rec.Confirmation = confirmedBy(string(answer.Action))
			if answer.Action != mcp.ElicitationResponseActionAccept || !approved(answer.Content) {
				status, msg := StatusDeclined, "The user declined the plan; nothing was done."
				if answer.Action == mcp.ElicitationResponseActionCancel {
					status, msg = StatusCancelled, "The user cancelled without approving; nothing was done."
				}
				rec.Outcome = status
				var out Out
				o := POut(&out).outcome()
				o.Status, o.Plan, o.Message, o.Demo = status, p.plan, msg, d.Demo
				return out, d.textPrefix() + msg, nil
			}
			return runConfirmed[Out, POut](ctx, d, name, p, &rec)
		}

		if token == "" {
			if !d.NoElicitation && clientCanElicit(ctx) {
				state, _ := d.Confirmer.IssueState(name, args, digest)
				rec.Outcome = StatusElicitationRequested
				return zero, "", askPerson(name, p.plan, state)
			}
			if d.RequireElicitation && !personAtTerminal(ctx) {
				return zero, "", &providers.Error{Kind: providers.KindRejected, Provider: providers.Own,
					Message: name + " refused: this server only acts on a person's approval given through the MCP client, and this client cannot ask its user; nothing was done",
					Remedy:  "ask the user to approve it from an MCP client that supports elicitation"}
			}
			rec.Outcome = StatusConfirmationRequired
			return confirmationRequired[Out, POut](d, name, args, digest, p.plan, "")
		}
		rec.Confirmation = approverOf(ctx)
		if d.RequireElicitation && !personAtTerminal(ctx) {
			return zero, "", &providers.Error{Kind: providers.KindRejected, Provider: providers.Own, Field: "confirm_token",
				Message: name + " refused: this server only acts on a person's approval given through the MCP client, not on confirmation tokens; nothing was done",
				Remedy:  "call it without confirm_token from an MCP client that can ask its user (elicitation)"}
		}
		if err := d.Confirmer.Verify(ctx, name, args, digest, token); err != nil {
			if te, ok := isTokenError(err); ok && te.PlanChanged {
				rec.Outcome, rec.Detail = StatusConfirmationRequired, te.Reason
				return confirmationRequired[Out, POut](d, name, args, digest, p.plan, te.Reason+". The new plan follows.")
			}
			d.Log.Warn().Str("tool", name).Str("reason", err.Error()).Msg("confirmation refused")
			return zero, "", refusal(name, err)
		}
		return runConfirmed[Out, POut](ctx, d, name, p, &rec)
	})
}

// runConfirmed carries out an approved plan, within the spending limits (checked again, and
// its room held, in one step), once the audit trail holds that it runs: an action whose
// approval cannot be recorded does not run.
func runConfirmed[Out any, POut guardedResult[Out]](ctx context.Context, d *Deps, name string, p *prepared[Out], rec *AuditEntry) (Out, string, error) {
	var zero Out
	hold, err := d.holdSpend(ctx, p.spend)
	if err != nil {
		return zero, "", err
	}
	if p.spend != nil {
		p.spend.hold = hold
	}
	running := *rec
	running.Time, running.Outcome, running.Detail = time.Now().UTC(), StatusRunning, approvedBy(ctx, rec.Confirmation)
	if err := d.Audit.Record(ctx, running); err != nil {
		d.Fleet.EndHold(hold, true)
		d.Log.Error().Err(err).Str("tool", name).Msg("approved action refused: its approval could not be recorded in the audit trail")
		return zero, "", &providers.Error{Kind: providers.KindUnavailable, Provider: providers.Own, Err: err,
			Message: fmt.Sprintf("%s refused: could not record the approval in the audit trail (%v); nothing was done", name, err),
			Remedy:  "try again once the state store answers"}
	}
	d.Log.Info().Str("tool", name).Str("plan", p.plan.Summary).Str("confirmation", string(rec.Confirmation)).Msg("approved action running")
	out, text, err := p.run(ctx)
	if hold != "" && (err != nil && providers.KindOf(err) != providers.KindUnknown) {
		// Nothing was spent: the vendor refused, or the action failed before reaching it.
		d.Fleet.EndHold(hold, true)
	} else if hold != "" && !p.spend.bills {
		// A renewal or a later auto-stop makes nothing bill by the hour: only its commitment stays.
		d.Fleet.EndHold(hold, false)
	}
	if err != nil {
		d.Log.Warn().Str("tool", name).Err(err).Msg("approved action failed")
		rec.Outcome, rec.Detail = StatusFailed, errorText(err)
		return zero, "", err
	}
	o := POut(&out).outcome()
	if o.Status == "" {
		o.Status = StatusDone
	}
	o.Plan, o.Demo = p.plan, d.Demo
	rec.Time, rec.Outcome, rec.Detail = time.Now().UTC(), o.Status, o.Message
	return out, d.textPrefix() + text, nil
}

// refusal is the error of a confirmation that was not accepted: a token refused (kind invalid,
// about confirm_token), or one that could not be recorded as spent (unavailable).
func refusal(tool string, err error) error {
	if te, ok := isTokenError(err); ok {
		return &providers.Error{Kind: providers.KindInvalid, Provider: providers.Own, Field: "confirm_token",
			Message: tool + " refused: " + te.Reason, Remedy: "call " + tool + " without confirm_token for a new plan, and show it to the user"}
	}
	return &providers.Error{Kind: providers.KindUnavailable, Provider: providers.Own, Err: err,
		Message: tool + " refused: " + err.Error(), Remedy: "try again once the state store answers"}
}

// elicitID names the one question a guarded tool asks through the client.
const elicitID = "approve"

// approvalSchema is the form shown to the person: one explicit yes.
var approvalSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"approve": map[string]any{"type": "boolean", "title": "Approve", "description": "Tick to let gpu-mcp carry out this plan", "default": false},
	},
	"required": []string{"approve"},
}

// approved reads the form: an accept counts unless the person left "approve" false.
func approved(content any) bool {
	m, ok := content.(map[string]any)
	if !ok {
		return true
	}
	v, present := m["approve"]
	if !present {
		return true
	}
	b, ok := v.(bool)
	return ok && b
}

// askPerson is the input-required answer that makes the client ask its user about the plan.
func askPerson(tool string, plan *Plan, state string) error {
	msg := "gpu-mcp asks for your approval (" + tool + "):\n" + planText(plan)
	res := server.NewInputRequestBuilder(state).Elicit(elicitID, mcp.ElicitationParams{
		Message: msg, RequestedSchema: approvalSchema,
	}).ToolResult()
	return &inputRequired{res: res}
}

// inputRequired carries a result that asks the client for input instead of answering.
// inputRequired is an answer that is a whole tool result of its own, given as it is: a
// question put to the person (elicitation), or a stored result an operation ended with.
type inputRequired struct{ res *mcp.CallToolResult }

func (e *inputRequired) Error() string { return "input required" }

type roundTripKey struct{}

func withRoundTrip(ctx context.Context, p mcp.MultiRoundTripParams) context.Context {
	return context.WithValue(ctx, roundTripKey{}, p)
}

func roundTripFrom(ctx context.Context) mcp.MultiRoundTripParams {
	p, _ := ctx.Value(roundTripKey{}).(mcp.MultiRoundTripParams)
	return p
}

// clientCanElicit reports whether the client declared the elicitation capability and the
// question can reach it: clients of protocol 2026-07-28 and later get it in the tool result
// (multi round-trip); older ones need a session that can send a server-initiated request,
// which mcp-go's SSE sessions cannot. Where it cannot, the guard answers with a plan and a
// token instead of failing the call.
func clientCanElicit(ctx context.Context) bool {
	if caps := requestCaps(ctx); caps != nil {
		return caps.Elicitation != nil
	}
	session := server.ClientSessionFromContext(ctx)
	s, ok := session.(server.SessionWithClientInfo)
	if !ok || s.GetClientCapabilities().Elicitation == nil {
		return false
	}
	if mcp.IsModernProtocol(server.RequestProtocolVersion(ctx)) {
		return true
	}
	_, canAsk := session.(server.SessionWithElicitation)
	return canAsk
}

// confirmationRequired is the answer to a guarded call that has no (or no longer a) valid
// token: the plan, and a token that approves exactly it.
func confirmationRequired[Out any, POut guardedResult[Out]](d *Deps, tool string, args []byte, digest string, plan *Plan, note string) (Out, string, error) {
	var out Out
	token, exp := d.Confirmer.Issue(tool, args, digest)
	o := POut(&out).outcome()
	exp = exp.UTC()
	o.Status, o.Plan, o.ConfirmToken, o.ConfirmationToken, o.ExpiresAt, o.Message, o.Demo = StatusConfirmationRequired, plan, token, token, &exp, note, d.Demo
	var b strings.Builder
	b.WriteString(d.textPrefix())
	if note != "" {
		b.WriteString(note + "\n")
	}
	b.WriteString("CONFIRMATION REQUIRED: nothing has been done yet.\n")
	b.WriteString(planText(plan))
	fmt.Fprintf(&b, "Show this plan to your user. Only if they approve, call %s again with the same arguments and confirm_token=%q (valid until %s).",
		tool, token, exp.UTC().Format(time.RFC3339))
	return out, b.String(), nil
}

// planDigest fingerprints a plan, so that a token approves exactly the plan that was shown.
// The limits' figures are left out: they change with every other instance that bills, and
// the limits are checked again when the plan runs.
func planDigest(p *Plan) string {
	c := *p
	c.Limits = nil
	b, _ := json.Marshal(c)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// planText renders a plan for the human who must approve it.
func planText(p *Plan) string {
	var b strings.Builder
	b.WriteString(p.Summary)
	b.WriteString("\n")
	// The price is in the effects, said once, as what starts or stops billing.
	for _, e := range p.Effects {
		b.WriteString("- " + e + "\n")
	}
	if len(p.Limits) > 0 {
		b.WriteString("Spending limits (checked again when it runs):\n")
		for _, l := range p.Limits {
			b.WriteString("- " + l + "\n")
		}
	}
	return b.String()
}

// clientName is the name and version the client gave when it initialized, for the logs and
// the audit trail: at most 64 printable characters.
func clientName(ctx context.Context) string {
	s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo)
	if !ok {
		return "an unnamed client"
	}
	info := s.GetClientInfo()
	name := strings.TrimSpace(info.Name + " " + info.Version)
	name = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, name)
	if name == "" {
		return "an unnamed client"
	}
	if r := []rune(name); len(r) > 64 {
		name = string(r[:64])
	}
	return name
}

// approvedBy says, for the audit trail, who approved an action that runs.
func approvedBy(ctx context.Context, c Confirmation) string {
	switch {
	case c == ConfirmedByToken:
		return "approved with a confirmation token sent by the client (" + clientName(ctx) + "): it proves the plan was shown, not who agreed"
	case c == ConfirmedAtTerminal:
		return "approved by a person who answered yes at gpu-mcp call's terminal, after the plan was shown there"
	case c == ConfirmedByCLIYes:
		return "approved by gpu-mcp call --yes: a script's yes, given without asking anyone"
	case strings.HasPrefix(string(c), "elicitation_"):
		return "approved by the user of " + clientName(ctx) + ", asked through the client (MCP elicitation)"
	}
	return "approved (" + string(c) + ") through " + clientName(ctx)
}
