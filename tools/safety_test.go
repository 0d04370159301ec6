package tools

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

// person answers elicitations the way a test tells it to, and remembers what it was shown.
type person struct {
	mu      sync.Mutex
	action  mcp.ElicitationResponseAction
	content any
	asked   []string
}

func (p *person) Elicit(ctx context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, req.Params.Message)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: p.action, Content: p.content}}, nil
}

func newElicitingHarness(t *testing.T, p *person, d *Deps) *harness {
	t.Helper()
	return &harness{t: t, deps: d, c: inProcessClient(t, d, "eliciting-test", p)}
}

func depsFor(t *testing.T, fakes ...*fakeProvider) *Deps {
	t.Helper()
	ps := make([]providers.Provider, len(fakes))
	for i, f := range fakes {
		ps[i] = f
	}
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return &Deps{Providers: reg, Confirmer: testConfirmer(t, "test-secret"), Log: zerolog.New(io.Discard), Fleet: newTestFleet(t, reg)}
}

// guardedCalls is one call of each guarded tool, against instance i1 (running) or the offer.
var guardedCalls = []struct {
	tool     string
	args     map[string]any
	mutation string
	state    providers.State // the instance's state before the call
}{
	{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"}, "launch o1/img1", providers.StateRunning},
	{"start_instance", map[string]any{"instance_id": "alpha:i1"}, "start i1", providers.StateStopped},
	{"stop_instance", map[string]any{"instance_id": "alpha:i1"}, "stop i1", providers.StateRunning},
	{"restart_instance", map[string]any{"instance_id": "alpha:i1"}, "restart i1", providers.StateRunning},
	{"save_image", map[string]any{"instance_id": "alpha:i1", "image_name": "snap"}, "save_image i1", providers.StateRunning},
	{"renew_instance", map[string]any{"instance_id": "alpha:i1", "periods": 1}, "renew i1", providers.StateRunning},
	{"destroy_instance", map[string]any{"instance_id": "alpha:i1"}, "destroy i1", providers.StateStopped},
}

func TestElicitationAcceptRunsDeclineAndCancelDoNothing(t *testing.T) {
	answers := []struct {
		action  mcp.ElicitationResponseAction
		content any
		runs    bool
		status  string
	}{
		{mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}, true, "done"},
		{mcp.ElicitationResponseActionAccept, map[string]any{"approve": false}, false, "declined"},
		{mcp.ElicitationResponseActionDecline, nil, false, "declined"},
		{mcp.ElicitationResponseActionCancel, nil, false, "cancelled"},
	}
	for _, gc := range guardedCalls {
		for _, a := range answers {
			t.Run(gc.tool+"/"+string(a.action)+"/"+a.status, func(t *testing.T) {
				f := newFake("alpha")
				f.addInstance("i1", gc.state)
				p := &person{action: a.action, content: a.content}
				h := newElicitingHarness(t, p, depsFor(t, f))
				res, m := h.call(gc.tool, gc.args)
				if res.IsError {
					t.Fatalf("error: %s", text(res))
				}
				if m["status"] != a.status {
					t.Fatalf("status %v, want %s: %s", m["status"], a.status, text(res))
				}
				if len(p.asked) != 1 || !strings.Contains(p.asked[0], m["plan"].(map[string]any)["summary"].(string)) {
					t.Fatalf("the person was not shown the plan: %q", p.asked)
				}
				got := f.mutations()
				if a.runs && !slices.Equal(got, []string{gc.mutation}) {
					t.Fatalf("accepted, but the vendor saw %v", got)
				}
				if !a.runs && len(got) != 0 {
					t.Fatalf("%s, but the vendor saw %v", a.status, got)
				}
			})
		}
	}
}

func TestElicitationPlanMessageNamesPriceAndLoss(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateStopped)
	p := &person{action: mcp.ElicitationResponseActionDecline}
	h := newElicitingHarness(t, p, depsFor(t, f))
	h.call("launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": 2})
	h.call("destroy_instance", map[string]any{"instance_id": "alpha:i1"})
	if len(p.asked) != 2 {
		t.Fatalf("asked %d times", len(p.asked))
	}
	if !strings.Contains(p.asked[0], "5.00 CNY/h") || !strings.Contains(p.asked[0], "2 x NVIDIA RTX 4090") {
		t.Errorf("launch question lacks price or GPUs: %s", p.asked[0])
	}
	if !strings.Contains(p.asked[1], "deleted permanently") {
		t.Errorf("destroy question does not say what is lost: %s", p.asked[1])
	}
}

func TestRequireElicitationRefusesClientsThatCannotAsk(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)
	h.deps.RequireElicitation = true
	res, _ := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	if !res.IsError || !strings.Contains(text(res), "cannot ask its user") {
		t.Fatalf("got %s", text(res))
	}
	token, _ := h.deps.Confirmer.Issue("stop_instance", []byte(`{"instance_id":"alpha:i1"}`), "x")
	res, _ = h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	if !res.IsError || !strings.Contains(text(res), "not on confirmation tokens") {
		t.Fatalf("a token was accepted under GPU_MCP_REQUIRE_ELICITATION: %s", text(res))
	}
	if len(f.mutations()) != 0 {
		t.Fatal(f.mutations())
	}
	for _, word := range []string{"bypass", "GPU_MCP_REQUIRE_ELICITATION", "unset", "disable"} {
		if strings.Contains(text(res), word) {
			t.Errorf("the refusal hints at a way around the guard (%q): %s", word, text(res))
		}
	}
}

func TestSpendLimits(t *testing.T) {
	lim := func(v float64) *float64 { return &v }
	cases := []struct {
		name    string
		limits  Limits
		args    map[string]any
		running []float64 // hourly prices of running instances
		allowed bool
		want    string
	}{
		{"price just under", Limits{MaxPricePerHour: lim(5.0)}, map[string]any{"gpu_count": 2}, nil, true, ""},
		{"price just over", Limits{MaxPricePerHour: lim(4.99)}, map[string]any{"gpu_count": 2}, nil, false, "5.00 CNY/hour is over the limit of 4.99"},
		{"gpus just under", Limits{MaxGPUs: 2}, map[string]any{"gpu_count": 2}, nil, true, ""},
		{"gpus just over", Limits{MaxGPUs: 2}, map[string]any{"gpu_count": 4}, nil, false, "4 GPUs is over the limit of 2"},
		{"spend just under", Limits{MaxHourlySpend: lim(10)}, map[string]any{"gpu_count": 2}, []float64{3, 2}, true, ""},
		{"spend just over", Limits{MaxHourlySpend: lim(9.99)}, map[string]any{"gpu_count": 2}, []float64{3, 2}, false, "the total would be 10.00, over the limit of 9.99"},
		{"prepaid spread over its hours, within the up-front limit", Limits{MaxPricePerHour: lim(1.39), MaxUpfront: lim(1000)}, map[string]any{"billing": "monthly"}, nil, true, ""},
		{"prepaid under a price limit alone", Limits{MaxPricePerHour: lim(1.39)}, map[string]any{"billing": "monthly"}, nil, false,
			"this prepaid launch charges 1000.00 CNY at once; GPU_MCP_MAX_PRICE_PER_HOUR bounds a price per hour, not a charge made up front"},
		{"up-front just over", Limits{MaxUpfront: lim(999.99)}, map[string]any{"billing": "monthly"}, nil, false,
			"this launch charges 1000.00 CNY at once, over the limit of 999.99 CNY per launch or renewal (GPU_MCP_MAX_UPFRONT)"},
		// The issue's case: 36 months prepaid pass a per-hour limit by their rate, not by their charge.
		{"36 months prepaid", Limits{MaxPricePerHour: lim(3), MaxUpfront: lim(5000)}, map[string]any{"billing": "monthly", "periods": 36}, nil, false,
			"this launch charges 36000.00 CNY at once, over the limit of 5000.00 CNY"},
		{"24 h of spend just under", Limits{MaxSpend: lim(60)}, map[string]any{}, nil, true, ""},
		{"24 h of spend just over", Limits{MaxSpend: lim(59.99)}, map[string]any{}, nil, false,
			"0.00 CNY was committed through gpu-mcp in the last 24 h; this launch commits 60.00 more (2.50 CNY/hour for 24 h, as it has no auto-stop), 60.00 in all, over the limit of 59.99 CNY per 24 hours (GPU_MCP_MAX_SPEND)"},
		{"the spend of a lease", Limits{MaxSpend: lim(5)}, map[string]any{"auto_stop_after": "2h"}, nil, true, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake("alpha")
			for i, p := range c.running {
				id := "r" + string(rune('0'+i))
				f.addInstance(id, providers.StateRunning)
				f.insts[id].PricePerHour = &p
			}
			h := newHarness(t, f)
			h.deps.Limits = c.limits
			args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"}
			for k, v := range c.args {
				args[k] = v
			}
			res, m := h.call("launch_instance", args)
			if c.allowed {
				if res.IsError || m["status"] != "confirmation_required" {
					t.Fatalf("refused: %s", text(res))
				}
				return
			}
			if !res.IsError || !strings.Contains(text(res), c.want) || !strings.Contains(text(res), "nothing was done") {
				t.Fatalf("got %q, want a refusal containing %q", text(res), c.want)
			}
			if len(f.mutations()) != 0 {
				t.Fatal(f.mutations())
			}
		})
	}
}

func TestUnknownPriceCountsAsOverLimit(t *testing.T) {
	f := newFake("alpha")
	f.offers[0].PricePerGPUHour = nil
	f.offers[0].Prices = nil
	h := newHarness(t, f)
	five := 5.0
	h.deps.Limits = Limits{MaxPricePerHour: &five}
	res, _ := h.call("launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"})
	if !res.IsError || !strings.Contains(text(res), "unknown price counts as over the limit") {
		t.Fatalf("got %s", text(res))
	}
	// An unknown-price instance already running makes the running total unknown.
	g := newFake("alpha")
	g.addInstance("r1", providers.StateRunning)
	g.addInstance("s1", providers.StateStopped)
	two := 2.5
	g.insts["s1"].PricePerHour = &two
	h = newHarness(t, g)
	h.deps.Limits = Limits{MaxHourlySpend: &five}
	res, _ = h.call("start_instance", map[string]any{"instance_id": "alpha:s1"})
	if !res.IsError || !strings.Contains(text(res), "alpha:r1") {
		t.Fatalf("start with an unknown running total: %s", text(res))
	}
}

func TestLimitCheckedAgainWhenTheTokenComes(t *testing.T) {
	f := newFake("alpha")
	h := newHarness(t, f)
	ten := 10.0
	h.deps.Limits = Limits{MaxHourlySpend: &ten}
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"}
	_, m := h.call("launch_instance", args)
	// Meanwhile an instance starts billing 9 CNY/h.
	f.addInstance("r1", providers.StateRunning)
	nine := 9.0
	f.insts["r1"].PricePerHour = &nine
	args["confirm_token"] = m["confirmation_token"]
	res, _ := h.call("launch_instance", args)
	if !res.IsError || !strings.Contains(text(res), "over the limit of 10.00") {
		t.Fatalf("got %s", text(res))
	}
	if len(f.mutations()) != 0 {
		t.Fatal(f.mutations())
	}
}

func TestReadOnlyModeRegistersOnlyReadOnlyTools(t *testing.T) {
	d := depsFor(t, newFake("alpha"))
	d.ReadOnly = true
	c := inProcessClient(t, d, "test", nil)
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
		if tool.Annotations.ReadOnlyHint == nil || !*tool.Annotations.ReadOnlyHint {
			t.Errorf("%s is registered in read-only mode but is not readOnly", tool.Name)
		}
	}
	slices.Sort(names)
	// copy_from_instance stays: it changes nothing at a vendor or on a machine, and writes only
	// new files in the workspace (overwrite aside).
	want := []string{"copy_from_instance", "get_instance", "get_operation", "gpu_status", "job_logs", "job_status", "list_gpu_offers", "list_images",
		"list_instances", "list_providers", "wait_instance"}
	if !slices.Equal(names, want) {
		t.Errorf("read-only tools = %v, want %v", names, want)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "launch_instance"
	req.Params.Arguments = map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"}
	if r, err := c.CallTool(context.Background(), req); err == nil && !r.IsError {
		t.Error("launch_instance ran in read-only mode")
	}
}

func TestAuditLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	store := statetest.Open(t, state.MemoryURL, state.Options{})
	audit, err := NewAuditLog(AuditOptions{Store: store, Replica: "replica-1", Path: path, Secrets: []string{"vendor-key-123456"}})
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	f.insts["i1"].Name = "box vendor-key-123456"
	h := newHarness(t, f)
	h.deps.Audit = audit
	_, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	token := m["confirmation_token"].(string)
	h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": "forged"})

	p := &person{action: mcp.ElicitationResponseActionAccept}
	f.addInstance("i2", providers.StateRunning)
	eh := newElicitingHarness(t, p, h.deps)
	eh.call("restart_instance", map[string]any{"instance_id": "alpha:i2"})

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v, want 0600", info.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	for _, secret := range []string{token, "vendor-key-123456", "s3cret-pw"} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("audit log holds a secret %q", secret)
		}
	}
	var lines []AuditEntry
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		var e AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %s", sc.Text())
		}
		lines = append(lines, e)
	}
	want := []struct {
		tool         string
		confirmation Confirmation
		outcome      Status
	}{
		{"stop_instance", "none", "confirmation_required"},
		{"stop_instance", "token", "running"},
		{"stop_instance", "token", "done"},
		{"stop_instance", "none", "nothing_to_do"},
		{"restart_instance", "none", "elicitation_requested"},
		{"restart_instance", "elicitation_accept", "running"},
		{"restart_instance", "elicitation_accept", "done"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(want), raw)
	}
	for i, w := range want {
		l := lines[i]
		if l.Tool != w.tool || l.Confirmation != w.confirmation || l.Outcome != w.outcome {
			t.Errorf("line %d: %s/%s/%s, want %s/%s/%s", i, l.Tool, l.Confirmation, l.Outcome, w.tool, w.confirmation, w.outcome)
		}
		if strings.Contains(string(l.Arguments), "confirm_token") {
			t.Errorf("line %d records the token argument", i)
		}
		if l.Time.IsZero() {
			t.Errorf("line %d has no time", i)
		}
	}
	if lines[2].Plan == nil || lines[2].Plan.InstanceID != "alpha:i1" {
		t.Errorf("the done line lacks its plan: %+v", lines[2])
	}

	// The store's trail has the same records, as redacted, with the replica.
	recs, err := store.ListAudit(context.Background(), time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(want) {
		t.Fatalf("%d records in the store's trail, want %d", len(recs), len(want))
	}
	for i, w := range want {
		r := recs[i]
		if r.Tool != w.tool || r.Confirmation != string(w.confirmation) || r.Outcome != string(w.outcome) || r.Replica != "replica-1" {
			t.Errorf("record %d: %s/%s/%s by %q, want %s/%s/%s by replica-1", i, r.Tool, r.Confirmation, r.Outcome, r.Replica, w.tool, w.confirmation, w.outcome)
		}
		for _, secret := range []string{token, "vendor-key-123456", "confirm_token"} {
			if strings.Contains(string(r.Args)+string(r.Plan)+r.Detail, secret) {
				t.Errorf("record %d holds %q", i, secret)
			}
		}
	}
	if !strings.Contains(string(recs[2].Plan), "alpha:i1") {
		t.Errorf("the done record lacks its plan: %s", recs[2].Plan)
	}
}

// GPU_MCP_ELICITATION=off: a client that declares elicitation (and may never show the
// question) gets the plan and a token like any other, and an answer it sends is no approval.
func TestElicitationOffGivesPlanAndToken(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	d := depsFor(t, f)
	d.NoElicitation = true
	p := &person{action: mcp.ElicitationResponseActionAccept, content: map[string]any{"approve": true}}
	h := newElicitingHarness(t, p, d)
	args := map[string]any{"instance_id": "alpha:i1"}
	res, m := h.call("stop_instance", args)
	token, _ := m["confirm_token"].(string)
	if res.IsError || m["status"] != "confirmation_required" || token == "" || len(p.asked) != 0 {
		t.Fatalf("a plan and a token, no question: %v (asked %q)", m, p.asked)
	}
	if len(f.mutations()) != 0 {
		t.Fatalf("the plan reached the vendor: %v", f.mutations())
	}
	res = h.callRaw(mcp.CallToolParams{Name: "stop_instance", Arguments: args, MultiRoundTripParams: forgedAccept(token)})
	if !res.IsError || !strings.Contains(text(res), "GPU_MCP_ELICITATION=off") || len(f.mutations()) != 0 {
		t.Fatalf("an answer under GPU_MCP_ELICITATION=off: %s (vendor saw %v)", text(res), f.mutations())
	}
	res, m = h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	if res.IsError || m["status"] != "done" || !slices.Equal(f.mutations(), []string{"stop i1"}) {
		t.Fatalf("confirmed with the token: %v %s (vendor saw %v)", m, text(res), f.mutations())
	}
}
