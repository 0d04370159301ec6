package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

func limit(v float64) *float64 { return &v }

// tokens makes n plans of one call, each with a token of its own.
func (h *harness) tokens(tool string, args map[string]any, n int) []string {
	h.t.Helper()
	out := make([]string, n)
	for i := range out {
		res, m := h.call(tool, args)
		if res.IsError || m["status"] != "confirmation_required" {
			h.t.Fatalf("plan %d of %s: %s", i, tool, text(res))
		}
		out[i] = m["confirmation_token"].(string)
	}
	return out
}

// confirmAll sends every token at once, each with its own args, and returns the answers in
// order.
func (h *harness) confirmAll(tool string, args []map[string]any, tokens []string) []*mcp.CallToolResult {
	h.t.Helper()
	out := make([]*mcp.CallToolResult, len(tokens))
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() {
			with := map[string]any{"confirm_token": tok}
			for k, v := range args[i] {
				with[k] = v
			}
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = tool, with
			res, err := h.c.CallTool(context.Background(), req)
			if err != nil {
				res = mcp.NewToolResultError("protocol error: " + err.Error())
			}
			out[i] = res
		})
	}
	wg.Wait()
	return out
}

func repeat(args map[string]any, n int) []map[string]any {
	out := make([]map[string]any, n)
	for i := range out {
		out[i] = args
	}
	return out
}

func launches(f *fakeProvider) int {
	n := 0
	for _, m := range f.mutations() {
		if strings.HasPrefix(m, "launch ") {
			n++
		}
	}
	return n
}

func (h *harness) holds() []state.Reservation {
	h.t.Helper()
	holds, _, err := h.deps.Fleet.Spending(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return holds
}

func (h *harness) committed() float64 {
	h.t.Helper()
	_, c, err := h.deps.Fleet.Spending(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// Ten approved launches confirmed at once, with room under GPU_MCP_MAX_HOURLY_SPEND for one:
// one is bought, nine are refused with the limit and the figures.
func TestConcurrentApprovedLaunchesBuyOnlyWhatTheLimitHolds(t *testing.T) {
	f := newFake("alpha")
	f.delay = 20 * time.Millisecond
	h := newHarness(t, f)
	h.deps.Limits = Limits{MaxHourlySpend: limit(4)}
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false}
	const n = 10
	answers := h.confirmAll("launch_instance", repeat(args, n), h.tokens("launch_instance", args, n))
	done := 0
	for _, res := range answers {
		switch {
		case !res.IsError && statusIn(res) == "done":
			done++
		case res.IsError && strings.Contains(text(res), "with this launch (2.50) the total would be ") && strings.Contains(text(res), "over the limit of 4.00 CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)"):
		default:
			t.Errorf("neither bought nor refused by the limit: %s", text(res))
		}
	}
	if done != 1 || launches(f) != 1 {
		t.Fatalf("%d launches done, %d bought, want 1 of each", done, launches(f))
	}
}

func statusIn(res *mcp.CallToolResult) string {
	b, _ := json.Marshal(res.StructuredContent)
	var o struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal(b, &o)
	return o.Status
}

// start_instance goes through the same step: two stopped instances started at once, room for
// one.
func TestConcurrentStartsStartOnlyWhatTheLimitHolds(t *testing.T) {
	f := newFake("alpha")
	f.delay = 20 * time.Millisecond
	for _, id := range []string{"s1", "s2"} {
		f.addInstance(id, providers.StateStopped)
		f.insts[id].PricePerHour = limit(2.5)
	}
	h := newHarness(t, f)
	h.deps.Limits = Limits{MaxHourlySpend: limit(4)}
	a1, a2 := map[string]any{"instance_id": "alpha:s1"}, map[string]any{"instance_id": "alpha:s2"}
	tokens := append(h.tokens("start_instance", a1, 1), h.tokens("start_instance", a2, 1)...)
	answers := h.confirmAll("start_instance", []map[string]any{a1, a2}, tokens)
	started := 0
	for _, res := range answers {
		switch {
		case !res.IsError && statusIn(res) == "done":
			started++
		case res.IsError && strings.Contains(text(res), "with this start (2.50) the total would be ") && strings.Contains(text(res), "over the limit of 4.00 CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)"):
		default:
			t.Errorf("neither started nor refused by the limit: %s", text(res))
		}
	}
	if started != 1 || len(f.mutations()) != 1 {
		t.Fatalf("%d started, the vendor saw %v", started, f.mutations())
	}
}

// Fallback offers go through the same step: ten launches of a sold-out offer, each allowed one
// fallback, confirmed at once with room for one instance, buy one fallback.
func TestConcurrentFallbacksBuyOnlyWhatTheLimitHolds(t *testing.T) {
	f := newFake("alpha")
	f.offers[0].Billing = []providers.BillingMode{providers.BillingHourly}
	other := f.offers[0]
	other.ID = "o2"
	f.offers = append(f.offers, other)
	f.delay = 20 * time.Millisecond
	f.onLaunch = func(spec providers.LaunchSpec) error {
		if spec.OfferID == "o1" {
			return &providers.Error{Kind: providers.KindRejected, Provider: "alpha", Message: "sold out"}
		}
		return nil
	}
	h := newHarness(t, f)
	h.deps.Limits = Limits{MaxHourlySpend: limit(4)}
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "fallback_offers": 1, "wait_timeout": "5s"}
	const n = 10
	answers := h.confirmAll("launch_instance", repeat(args, n), h.tokens("launch_instance", args, n))
	bought := 0
	for _, m := range f.mutations() {
		if m == "launch o2/img1" {
			bought++
		}
	}
	if bought != 1 {
		t.Fatalf("%d fallbacks bought, want 1: %v", bought, f.mutations())
	}
	for _, res := range answers {
		if !res.IsError && statusIn(res) == "done" {
			continue
		}
		if !strings.Contains(text(res), "GPU_MCP_MAX_HOURLY_SPEND") {
			t.Errorf("a launch that bought nothing does not name the limit: %s", text(res))
		}
	}
	// What is left held is the fallback's instance, at its price; the refused orders'
	// commitments were cancelled.
	holds := h.holds()
	if len(holds) != 1 || !strings.HasPrefix(holds[0].InstanceID, "alpha:new-") || holds[0].PricePerHour != 2.5 {
		t.Fatalf("holds after the fallbacks: %+v", holds)
	}
	if c := h.committed(); c != 60 {
		t.Fatalf("%.2f CNY committed, want 60.00 (24 h of the one instance bought)", c)
	}
}

// An instance bought but not listed yet (an order number only) holds its room: the next
// launch is refused by it. One listed counts once, through the listing or its hold; once
// stopped through gpu-mcp its hold ends.
func TestHoldsCountWhatTheVendorsDoNotListYet(t *testing.T) {
	t.Run("not listed", func(t *testing.T) {
		f := newFake("alpha")
		f.orderOnly = true
		h := newHarness(t, f)
		h.deps.Limits = Limits{MaxHourlySpend: limit(4)}
		args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false}
		_, m := h.confirmed("launch_instance", args)
		if m["status"] != "done" || m["order_id"] == nil {
			t.Fatalf("first launch: %v", m)
		}
		res, _ := h.call("launch_instance", args)
		if !res.IsError || !strings.Contains(text(res), "instances that may bill cost 2.50 CNY/hour (0 billing, 1 held for approved launches and starts); with this launch (2.50) the total would be 5.00") {
			t.Fatalf("second launch, with the first not listed: %s", text(res))
		}
	})
	t.Run("listed once, ended by a stop", func(t *testing.T) {
		f := newFake("alpha")
		h := newHarness(t, f)
		h.deps.Limits = Limits{MaxHourlySpend: limit(5.5)}
		args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false}
		h.confirmed("launch_instance", args)
		plan, m := h.confirmed("launch_instance", args)
		if m["status"] != "done" {
			t.Fatalf("second launch within 5.50: %v", m)
		}
		want := "GPU_MCP_MAX_HOURLY_SPEND: 2.50 of 5.50 CNY/hour billing now (1 billing); this adds 2.50; 0.50 left"
		if lines := plan["limits"].([]any); len(lines) != 1 || lines[0] != want {
			t.Fatalf("plan limits %v, want %q", lines, want)
		}
		res, _ := h.call("launch_instance", args)
		if !res.IsError || !strings.Contains(text(res), "cost 5.00 CNY/hour (2 billing)") {
			t.Fatalf("third launch: %s", text(res))
		}
		if holds := h.holds(); len(holds) != 2 || holds[0].InstanceID == "" || holds[1].InstanceID == "" {
			t.Fatalf("the holds do not name their instances: %+v", holds)
		}
		h.confirmed("stop_instance", map[string]any{"instance_id": "alpha:new-1"})
		if holds := h.holds(); len(holds) != 1 || holds[0].InstanceID != "alpha:new-2" {
			t.Fatalf("holds after the stop: %+v", holds)
		}
		if _, m := h.confirmed("launch_instance", args); m["status"] != "done" {
			t.Fatalf("a launch once the first is stopped: %v", m)
		}
	})
	t.Run("launched, then stopped behind gpu-mcp's back", func(t *testing.T) {
		f := newFake("alpha")
		h := newHarness(t, f)
		h.deps.Limits = Limits{MaxHourlySpend: limit(4)}
		args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false}
		h.confirmed("launch_instance", args)
		if err := f.setState("console-stop", "new-1", providers.StateStopped); err != nil {
			t.Fatal(err)
		}
		if _, m := h.confirmed("launch_instance", args); m["status"] != "done" {
			t.Fatalf("a launch once the first was stopped at the vendor: %v", m)
		}
		// A start's hold is another matter: its instance is listed stopped until the start
		// reaches the vendor, so it counts until the instance bills.
		for _, id := range []string{"s1", "s2"} {
			f.addInstance(id, providers.StateStopped)
			f.insts[id].PricePerHour = limit(1)
		}
		if _, m := h.confirmed("start_instance", map[string]any{"instance_id": "alpha:s1"}); m["status"] != "done" {
			t.Fatalf("start within the limit: %v", m)
		}
		if err := f.setState("console-stop", "s1", providers.StateStopped); err != nil {
			t.Fatal(err)
		}
		res, _ := h.call("start_instance", map[string]any{"instance_id": "alpha:s2"})
		if !res.IsError || !strings.Contains(text(res), "cost 3.50 CNY/hour (1 billing, 1 held for approved launches and starts); with this start (1.00) the total would be 4.50") {
			t.Fatalf("another start, the first one's instance listed stopped: %s", text(res))
		}
	})
	t.Run("a refused order holds nothing", func(t *testing.T) {
		f := newFake("alpha")
		f.onLaunch = func(providers.LaunchSpec) error {
			return &providers.Error{Kind: providers.KindRejected, Provider: "alpha", Message: "insufficient balance"}
		}
		h := newHarness(t, f)
		h.deps.Limits = Limits{MaxHourlySpend: limit(4), MaxSpend: limit(100)}
		args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false}
		res, m := h.call("launch_instance", args)
		args["confirm_token"] = m["confirmation_token"]
		if res, _ = h.call("launch_instance", args); !res.IsError || !strings.Contains(text(res), "insufficient balance") {
			t.Fatalf("refused order: %s", text(res))
		}
		if holds, c := h.holds(), h.committed(); len(holds) != 0 || c != 0 {
			t.Fatalf("a refused order left holds %+v and %.2f CNY committed", holds, c)
		}
	})
}

// GPU_MCP_MAX_SPEND adds up what gpu-mcp committed in the last 24 h: launches for their
// auto-stop, a lease moved later; each plan shows the figures and what is left.
func TestMaxSpendAddsUpTheCommitments(t *testing.T) {
	f := newFake("alpha")
	h := newHarness(t, f)
	h.deps.Limits = Limits{MaxSpend: limit(13)}
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false, "auto_stop_after": "2h"}
	plan, _ := h.confirmed("launch_instance", args)
	want := "GPU_MCP_MAX_SPEND: 0.00 of 13.00 CNY committed in the last 24 h; this adds 5.00 (2.50 CNY/hour for its 2h auto-stop); 8.00 left"
	if lines := plan["limits"].([]any); len(lines) != 1 || lines[0] != want {
		t.Fatalf("plan limits %v, want %q", lines, want)
	}
	if !strings.Contains(planText(planOf(t, plan)), "Spending limits (checked again when it runs):\n- "+want) {
		t.Errorf("the plan's text lacks the limits: %s", planText(planOf(t, plan)))
	}
	h.confirmed("launch_instance", args)
	res, _ := h.call("launch_instance", args)
	if !res.IsError || !strings.Contains(text(res), "10.00 CNY was committed through gpu-mcp in the last 24 h; this launch commits 5.00 more (2.50 CNY/hour for its 2h auto-stop), 15.00 in all, over the limit of 13.00 CNY per 24 hours (GPU_MCP_MAX_SPEND)") {
		t.Fatalf("third launch: %s", text(res))
	}
	// Moving an auto-stop 1h later commits an hour more of its price.
	plan, m := h.confirmed("set_auto_stop", map[string]any{"instance_id": "alpha:new-1", "auto_stop_after": "3h"})
	if m["status"] != "done" || !strings.Contains(strings.Join(strs(plan["limits"]), "\n"), "GPU_MCP_MAX_SPEND: 10.00 of 13.00 CNY committed in the last 24 h; this adds 2.50 (2.50 CNY/hour for the 1h its auto-stop moves later); 0.50 left") {
		t.Fatalf("a lease moved later: %v %v", plan, m)
	}
	res, _ = h.call("set_auto_stop", map[string]any{"instance_id": "alpha:new-2", "auto_stop_after": "4h"})
	if !res.IsError || !strings.Contains(text(res), "GPU_MCP_MAX_SPEND") || h.committed() != 12.5 {
		t.Fatalf("a lease moved 2h later over the limit: %s (%.2f committed)", text(res), h.committed())
	}
	if holds := h.holds(); len(holds) != 2 {
		t.Fatalf("a lease change left a hold: %+v", holds)
	}
}

func strs(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

func planOf(t *testing.T, m map[string]any) *Plan {
	t.Helper()
	b, _ := json.Marshal(m)
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

// A renewal is charged at the vendor's price of its period; over GPU_MCP_MAX_UPFRONT, or of a
// price the vendor does not publish, it is refused with the figures.
func TestRenewalIsBoundByTheUpfrontLimit(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("m1", providers.StateRunning)
	f.insts["m1"].Billing = providers.BillingMonthly
	h := newHarness(t, f)
	args := map[string]any{"instance_id": "alpha:m1", "periods": 2}

	h.deps.Limits = Limits{MaxUpfront: limit(1500)}
	res, _ := h.call("renew_instance", args)
	if !res.IsError || !strings.Contains(text(res), "this renewal charges 2000.00 CNY at once, over the limit of 1500.00 CNY per launch or renewal (GPU_MCP_MAX_UPFRONT)") {
		t.Fatalf("renewal over the limit: %s", text(res))
	}
	h.deps.Limits = Limits{MaxUpfront: limit(2500), MaxSpend: limit(3000)}
	plan, m := h.confirmed("renew_instance", args)
	if m["status"] != "done" || plan["period_cost"] != 2000.0 ||
		!strings.Contains(effects(plan), "charged now: 2000.00 CNY (2 monthly period(s) x 1 GPU(s) x 1000.00 CNY") {
		t.Fatalf("renewal within the limit: %v %v", plan, m)
	}
	lines := strings.Join(strs(plan["limits"]), "\n")
	if !strings.Contains(lines, "GPU_MCP_MAX_UPFRONT: this charges 2000.00 of at most 2500.00 CNY at once; 500.00 left") ||
		!strings.Contains(lines, "GPU_MCP_MAX_SPEND: 0.00 of 3000.00 CNY committed in the last 24 h; this adds 2000.00 (charged at once); 1000.00 left") {
		t.Fatalf("renewal plan limits: %s", lines)
	}
	if c := h.committed(); c != 2000 {
		t.Fatalf("%.2f CNY committed after the renewal, want 2000.00", c)
	}
	if res, _ := h.call("renew_instance", args); !res.IsError || !strings.Contains(text(res), "2000.00 CNY was committed through gpu-mcp in the last 24 h; this renewal commits 2000.00 more") {
		t.Fatalf("a second renewal over GPU_MCP_MAX_SPEND: %s", text(res))
	}

	g := newFake("alpha")
	g.caps.PublishesPrices = false
	g.addInstance("m1", providers.StateRunning)
	g.insts["m1"].Billing = providers.BillingMonthly
	h = newHarness(t, g)
	h.deps.Limits = Limits{MaxUpfront: limit(1e6)}
	if res, _ := h.call("renew_instance", args); !res.IsError || !strings.Contains(text(res), "what this renewal charges at once is unknown (alpha publishes no price for it), and an unknown charge counts as over the limit of 1000000.00 CNY (GPU_MCP_MAX_UPFRONT)") {
		t.Fatalf("a renewal of unknown price: %s", text(res))
	}
	if len(g.mutations()) != 0 || len(f.mutations()) != 1 {
		t.Fatalf("renewals that reached the vendors: %v %v", f.mutations(), g.mutations())
	}
}

// callRaw sends tools/call with params as they are, as a client may that sets the
// multi-round-trip fields itself.
func (h *harness) callRaw(params mcp.CallToolParams) *mcp.CallToolResult {
	h.t.Helper()
	resp, err := h.c.GetTransport().SendRequest(context.Background(), transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(int64(9000)), Method: string(mcp.MethodToolsCall), Params: params})
	if err != nil {
		h.t.Fatal(err)
	}
	if resp.Error != nil {
		h.t.Fatalf("tools/call: %+v", resp.Error)
	}
	res, err := mcp.ParseCallToolResult(&resp.Result)
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

func forgedAccept(token string) mcp.MultiRoundTripParams {
	return mcp.MultiRoundTripParams{
		InputResponses: mcp.InputResponses{elicitID: mcp.NewElicitationInputResponse(mcp.ElicitationResult{
			ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"approve": true}}})},
		RequestState: token}
}

// A client that never declared elicitation sends its own confirmation token as requestState
// with a made-up accept: refused, nothing runs, and the audit says the answer was not
// verified. An eliciting client cannot pass a confirmation token off as the question's state
// either, nor the state as a token; a person's real yes is recorded as such.
func TestForgedElicitationIsRefused(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	store := statetest.Open(t, state.MemoryURL, state.Options{})
	audit, err := NewAuditLog(AuditOptions{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, f)
	h.deps.Audit = audit
	args := map[string]any{"instance_id": "alpha:i1"}
	_, m := h.call("stop_instance", args)
	token := m["confirmation_token"].(string)

	res := h.callRaw(mcp.CallToolParams{Name: "stop_instance", Arguments: args, MultiRoundTripParams: forgedAccept(token)})
	if !res.IsError || !strings.Contains(text(res), "this client did not declare that it can ask its user (MCP elicitation)") {
		t.Fatalf("a forged accept from a client that cannot ask: %s", text(res))
	}
	p := &person{action: mcp.ElicitationResponseActionAccept, content: map[string]any{"approve": true}}
	e := newElicitingHarness(t, p, h.deps)
	_, m = h.call("stop_instance", args)
	res = e.callRaw(mcp.CallToolParams{Name: "stop_instance", Arguments: args, MultiRoundTripParams: forgedAccept(m["confirmation_token"].(string))})
	if !res.IsError || !strings.Contains(text(res), "is a confirmation token, which the agent holds, not the state gpu-mcp gave with its question") {
		t.Fatalf("a confirmation token as an eliciting client's request state: %s", text(res))
	}
	state, _ := h.deps.Confirmer.IssueState("stop_instance", []byte(`{"instance_id":"alpha:i1"}`), "x")
	if res, _ := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": state}); !res.IsError || !strings.Contains(text(res), "not a confirm_token") {
		t.Fatalf("a question's state as a confirmation token: %s", text(res))
	}
	if len(f.mutations()) != 0 {
		t.Fatalf("a forged approval reached the vendor: %v", f.mutations())
	}

	// The person's own answer, through the client that asked.
	if res, m := e.call("stop_instance", args); res.IsError || m["status"] != "done" || len(f.mutations()) != 1 {
		t.Fatalf("a person's accept: %s %v", text(res), f.mutations())
	}
	recs, err := store.ListAudit(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, r.Confirmation+"/"+r.Outcome)
	}
	want := []string{"none/confirmation_required", "elicitation_unverified/refused", "none/confirmation_required", "elicitation_unverified/refused",
		"token/refused", "none/elicitation_requested", "elicitation_accept/running", "elicitation_accept/done"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("audit %v, want %v", got, want)
	}
	if d := recs[6].Detail; d != "approved by the user of eliciting-test 1, asked through the client (MCP elicitation)" {
		t.Errorf("the running record says %q", d)
	}
	if !strings.Contains(recs[1].Detail, "did not declare that it can ask its user") {
		t.Errorf("the refused forgery's record says %q", recs[1].Detail)
	}
}

// Every state in which a vendor may bill counts toward the running total, as the vendor's
// capabilities say: saving, error and unknown instances too, stopped ones not.
func TestEveryStateThatMayBillCounts(t *testing.T) {
	for _, v := range vendors.All() {
		t.Run(v.Name, func(t *testing.T) {
			for _, st := range []providers.State{providers.StateSaving, providers.StateError, providers.StateUnknown, providers.StateRunning} {
				if !v.Capabilities.Bills(st) {
					t.Errorf("%s does not count %s instances as billing", v.Name, st)
				}
			}
			if v.Capabilities.Bills(providers.StateStopped) {
				t.Errorf("%s counts stopped instances as billing their hourly price", v.Name)
			}
			f := newFake("alpha")
			f.caps = v.Capabilities
			bills := 0
			for _, st := range providers.States {
				id := "in-" + string(st)
				f.addInstance(id, st)
				f.insts[id].PricePerHour = limit(1)
				if v.Capabilities.Bills(st) {
					bills++
				}
			}
			h := newHarness(t, f)
			h.deps.Limits = Limits{MaxHourlySpend: limit(100)}
			_, m := h.call("launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"})
			want := fmt.Sprintf("GPU_MCP_MAX_HOURLY_SPEND: %d.00 of 100.00 CNY/hour billing now (%d billing); this adds 2.50", bills, bills)
			if lines := strs(m["plan"].(map[string]any)["limits"]); len(lines) != 1 || !strings.HasPrefix(lines[0], want) {
				t.Fatalf("limits %q, want %q", lines, want)
			}
		})
	}
}
