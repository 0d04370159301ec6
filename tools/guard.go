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
)

// Confirm is embedded in the arguments of every guarded tool.
type Confirm struct {
	ConfirmToken string `json:"confirm_token,omitempty" jsonschema:"maxLength=1024" jsonschema_description:"token from this tool's confirmation_required answer; send it only after the user approved the plan, with the same arguments"`
}

func (c *Confirm) takeToken() string {
	t := c.ConfirmToken
	c.ConfirmToken = ""
	return t
}

// Plan describes what a guarded action will do, before it is done.
type Plan struct {
	Action       string   `json:"action" jsonschema_description:"what will be done"`
	Summary      string   `json:"summary" jsonschema_description:"the plan in one sentence"`
	Provider     string   `json:"provider"`
	InstanceID   string   `json:"instance_id,omitempty"`
	InstanceName string   `json:"instance_name,omitempty"`
	OfferID      string   `json:"offer_id,omitempty"`
	ImageID      string   `json:"image_id,omitempty"`
	GPUModel     string   `json:"gpu_model,omitempty"`
	GPUCount     int      `json:"gpu_count,omitempty"`
	Billing      string   `json:"billing,omitempty"`
	PricePerHour *float64 `json:"price_per_hour,omitempty" jsonschema_description:"CNY per hour while the instance runs; absent when the vendor publishes no price"`
	PeriodCost   *float64 `json:"period_cost,omitempty" jsonschema_description:"CNY charged up front for the prepaid periods bought, when known"`
	Effects      []string `json:"effects" jsonschema_description:"what happens, what is interrupted, what is lost, what is billed"`
}

// Outcome is embedded in the result of every guarded tool.
type Outcome struct {
	Status            Status     `json:"status" jsonschema:"enum=confirmation_required,enum=done,enum=failed,enum=nothing_to_do,enum=declined,enum=cancelled,enum=pending" jsonschema_description:"confirmation_required: nothing was done yet; done: the action ran; failed: it ran but did not achieve its aim (see the result's details); nothing_to_do: already in the wanted state; declined or cancelled: the user said no and nothing was done; pending: the approved action runs on past the call budget, follow operation_id with get_operation"`
	Plan              *Plan      `json:"plan,omitempty"`
	ConfirmationToken string     `json:"confirmation_token,omitempty" jsonschema_description:"pass as confirm_token, with the same arguments, once the user approved the plan"`
	ExpiresAt         *time.Time `json:"expires_at,omitempty" jsonschema_description:"when the confirmation token expires"`
	Message           string     `json:"message,omitempty"`
	Demo              bool       `json:"demo,omitempty" jsonschema_description:"true when the providers are gpu-mcp's built-in emulators"`
}

func (o *Outcome) outcome() *Outcome { return o }

// guardedArgs are the arguments of a guarded tool: they embed Confirm.
type guardedArgs[In any] interface {
	*In
	takeToken() string
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
	// spend, when set, says that the plan adds a billing instance: the guard checks the
	// spending limits before the plan is shown and again, since instances may have started
	// meanwhile, before it runs.
	spend *newSpend
	run   func(ctx context.Context) (Out, string, error)
}

// newSpend is what a plan adds to the spending, for the limits.
type newSpend struct {
	periods int    // prepaid periods bought (0: billed by the hour)
	exclude string // the instance being started, which must not count twice
}

// checkSpend applies the spending limits to a plan that adds spending.
func (p *prepared[Out]) checkSpend(ctx context.Context, d *Deps) error {
	if p.spend == nil {
		return nil
	}
	return d.checkNewSpend(ctx, p.plan, p.spend.periods, p.spend.exclude)
}

// guardedTool builds a tool that changes something at a vendor. prepare only reads. The action
// runs only after a person said yes through the client (elicitation), or with a valid token
// for the same arguments and the same plan, and within the spending limits.
func guardedTool[In, Out any, PIn guardedArgs[In], POut guardedResult[Out]](d *Deps, name, title, description string, hints Hints,
	prepare func(ctx context.Context, in PIn) (*prepared[Out], error)) Tool {
	return newTool(name, title, description, hints, true, func(ctx context.Context, in *In) (_ Out, _ string, err error) {
		var zero Out
		token := PIn(in).takeToken()
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
		if err := p.checkSpend(ctx, d); err != nil {
			return zero, "", err
		}
		rec.Plan = p.plan
		digest := planDigest(p.plan)

		mr := roundTripFrom(ctx)
		if answer := server.ElicitationResponse(mr.InputResponses, elicitID); answer != nil {
			// The person's answer to the question this tool asked through the client. The
			// request state is a token bound to the arguments and the plan that were shown.
			rec.Confirmation = confirmedBy(string(answer.Action))
			if err := d.Confirmer.Verify(ctx, name, args, digest, mr.RequestState); err != nil {
				return zero, "", fmt.Errorf("%s refused: %v", name, err)
			}
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
			if clientCanElicit(ctx) {
				state, _ := d.Confirmer.Issue(name, args, digest)
				rec.Outcome = StatusElicitationRequested
				return zero, "", askPerson(name, p.plan, state)
			}
			if d.RequireElicitation {
				return zero, "", fmt.Errorf("%s refused: this server only acts on a person's approval given through the MCP client, and this client cannot ask its user; nothing was done", name)
			}
			rec.Outcome = StatusConfirmationRequired
			return confirmationRequired[Out, POut](d, name, args, digest, p.plan, "")
		}
		rec.Confirmation = ConfirmedByToken
		if d.RequireElicitation {
			return zero, "", fmt.Errorf("%s refused: this server only acts on a person's approval given through the MCP client, not on confirmation tokens; nothing was done", name)
		}
		if err := d.Confirmer.Verify(ctx, name, args, digest, token); err != nil {
			if te, ok := isTokenError(err); ok && te.PlanChanged {
				rec.Outcome, rec.Detail = StatusConfirmationRequired, te.Reason
				return confirmationRequired[Out, POut](d, name, args, digest, p.plan, te.Reason+". The new plan follows.")
			}
			d.Log.Warn().Str("tool", name).Str("reason", err.Error()).Msg("confirmation refused")
			return zero, "", fmt.Errorf("%s refused: %v", name, err)
		}
		return runConfirmed[Out, POut](ctx, d, name, p, &rec)
	})
}

// runConfirmed carries out an approved plan, within the spending limits, once the audit trail
// holds that it runs: an action whose approval cannot be recorded does not run.
func runConfirmed[Out any, POut guardedResult[Out]](ctx context.Context, d *Deps, name string, p *prepared[Out], rec *AuditEntry) (Out, string, error) {
	var zero Out
	if err := p.checkSpend(ctx, d); err != nil {
		return zero, "", err
	}
	running := *rec
	running.Time, running.Outcome = time.Now().UTC(), StatusRunning
	if err := d.Audit.Record(ctx, running); err != nil {
		d.Log.Error().Err(err).Str("tool", name).Msg("approved action refused: its approval could not be recorded in the audit trail")
		return zero, "", fmt.Errorf("%s refused: could not record the approval in the audit trail (%v); nothing was done", name, err)
	}
	d.Log.Info().Str("tool", name).Str("plan", p.plan.Summary).Str("confirmation", string(rec.Confirmation)).Msg("approved action running")
	out, text, err := p.run(ctx)
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
	o.Status, o.Plan, o.ConfirmationToken, o.ExpiresAt, o.Message, o.Demo = StatusConfirmationRequired, plan, token, &exp, note, d.Demo
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
func planDigest(p *Plan) string {
	b, _ := json.Marshal(p)
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:12])
}

// planText renders a plan for the human who must approve it.
func planText(p *Plan) string {
	var b strings.Builder
	b.WriteString(p.Summary)
	b.WriteString("\n")
	if p.PricePerHour != nil {
		fmt.Fprintf(&b, "Price: %.2f CNY/hour while running\n", *p.PricePerHour)
	} else if p.Action == "launch" || p.Action == "start" {
		b.WriteString("Price: not published by the vendor's API; check the vendor's price list\n")
	}
	if p.PeriodCost != nil {
		fmt.Fprintf(&b, "Charged up front: %.2f CNY\n", *p.PeriodCost)
	}
	for _, e := range p.Effects {
		b.WriteString("- " + e + "\n")
	}
	return b.String()
}
