package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

type harness struct {
	t     *testing.T
	deps  *Deps
	c     *client.Client
	fakes map[string]*fakeProvider
}

func newHarness(t *testing.T, fakes ...*fakeProvider) *harness {
	t.Helper()
	ps := make([]providers.Provider, len(fakes))
	h := &harness{t: t, fakes: map[string]*fakeProvider{}}
	for i, f := range fakes {
		ps[i] = f
		h.fakes[f.name] = f
	}
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		t.Fatal(err)
	}
	h.deps = &Deps{Providers: reg, Confirmer: testConfirmer(t, "test-secret"), Log: zerolog.New(io.Discard), Fleet: newTestFleet(t, reg)}
	h.c = inProcessClient(t, h.deps, "test", nil)
	return h
}

// inProcessClient is an initialized MCP client, named name, of a server on d, closed when t
// ends. With p it declares elicitation and lets p answer the server's questions.
func inProcessClient(t testing.TB, d *Deps, name string, p *person) *client.Client {
	t.Helper()
	var opts []client.ClientOption
	if p != nil {
		opts = append(opts, client.WithElicitationHandler(p))
	}
	c, err := client.NewInProcessClientWithOptions(NewServer(d, "test"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1"}
	if p != nil {
		init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	}
	if _, err := c.Initialize(context.Background(), init); err != nil {
		t.Fatal(err)
	}
	return c
}

// call runs a tool and returns the result with its structured content decoded into a map.
func (h *harness) call(name string, args any) (*mcp.CallToolResult, map[string]any) {
	h.t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := h.c.CallTool(context.Background(), req)
	if err != nil {
		h.t.Fatalf("%s: protocol error: %v", name, err)
	}
	var m map[string]any
	if res.StructuredContent != nil {
		b, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(b, &m); err != nil {
			h.t.Fatalf("%s: structured content is not an object: %s", name, b)
		}
	}
	return res, m
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			b.WriteString(t.Text)
		}
	}
	return b.String()
}

func TestToolsListHasSchemasAndAllHints(t *testing.T) {
	h := newHarness(t, newFake("alpha"))
	res, err := h.c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"list_providers", "list_gpu_offers", "list_images", "list_instances", "get_instance", "launch_instance",
		"start_instance", "stop_instance", "restart_instance", "save_image", "renew_instance", "destroy_instance", "wait_instance", "set_auto_stop",
		"gpu_status", "run_command", "copy_to_instance", "copy_from_instance", "start_job", "job_status", "job_logs", "stop_job",
		"get_operation", "cancel_operation"}
	var got []string
	for _, tool := range res.Tools {
		got = append(got, tool.Name)
		a := tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: not all four annotation hints are set: %+v", tool.Name, a)
			continue
		}
		guarded := strings.Contains(tool.Description, "confirm_token")
		if *a.ReadOnlyHint == guarded && !changesMachine[tool.Name] {
			t.Errorf("%s: readOnly=%v but guarded=%v", tool.Name, *a.ReadOnlyHint, guarded)
		}
		if tool.InputSchema.Type != "object" || tool.OutputSchema.Type != "object" {
			t.Errorf("%s: input schema type %q, output schema type %q; want object and object", tool.Name, tool.InputSchema.Type, tool.OutputSchema.Type)
		}
		if guarded {
			if _, ok := tool.InputSchema.Properties["confirm_token"]; !ok {
				t.Errorf("%s: guarded tool without confirm_token argument", tool.Name)
			}
		}
	}
	if !slices.Equal(got, want) && !sameSet(got, want) {
		t.Errorf("tools = %v, want %v", got, want)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// changesMachine are the tools that change an instance's machine, guarded only with
// GPU_MCP_EXEC=confirm.
var changesMachine = map[string]bool{"run_command": true, "copy_to_instance": true, "start_job": true, "stop_job": true}

func TestAnnotationsMatchArchitectureTable(t *testing.T) {
	want := map[string]Hints{
		"list_providers":     {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"list_gpu_offers":    {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"list_images":        {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"list_instances":     {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"get_instance":       {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"launch_instance":    {Destructive: true, OpenWorld: true},
		"start_instance":     {Idempotent: true, OpenWorld: true},
		"stop_instance":      {Destructive: true, Idempotent: true, OpenWorld: true},
		"restart_instance":   {Destructive: true, OpenWorld: true},
		"save_image":         {Destructive: true, OpenWorld: true},
		"renew_instance":     {Destructive: true, OpenWorld: true},
		"destroy_instance":   {Destructive: true, Idempotent: true, OpenWorld: true},
		"wait_instance":      {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"set_auto_stop":      {Destructive: true, Idempotent: true, OpenWorld: true},
		"gpu_status":         {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"run_command":        {Destructive: true, OpenWorld: true},
		"copy_to_instance":   {Destructive: true, Idempotent: true, OpenWorld: true},
		"copy_from_instance": {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"start_job":          {Destructive: true, OpenWorld: true},
		"job_status":         {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"job_logs":           {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"stop_job":           {Destructive: true, Idempotent: true, OpenWorld: true},
		"get_operation":      {ReadOnly: true, Idempotent: true, OpenWorld: true},
		"cancel_operation":   {Destructive: true, Idempotent: true, OpenWorld: true},
	}
	for _, mode := range []ExecMode{"", ExecOn, ExecConfirm} {
		for _, tool := range All(&Deps{Exec: mode}) {
			if w, ok := want[tool.Name]; !ok || w != tool.Hints {
				t.Errorf("%s: hints %+v, want %+v", tool.Name, tool.Hints, w)
			}
			guarded := !tool.Hints.ReadOnly && (mode == ExecConfirm || !changesMachine[tool.Name])
			if tool.Guarded != guarded {
				t.Errorf("GPU_MCP_EXEC=%s: %s: guarded=%v readOnly=%v", mode, tool.Name, tool.Guarded, tool.Hints.ReadOnly)
			}
		}
	}
}

func TestGuardedStopNeedsTokenAndTokenIsSingleUse(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)

	res, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	if res.IsError || m["status"] != "confirmation_required" {
		t.Fatalf("first call: %v %s", m, text(res))
	}
	if len(f.mutations()) != 0 || f.state("i1") != providers.StateRunning {
		t.Fatalf("a call without token changed something: %v", f.mutations())
	}
	token, _ := m["confirmation_token"].(string)
	if token == "" || !strings.Contains(text(res), "CONFIRMATION REQUIRED") {
		t.Fatalf("no token or no plan text: %s", text(res))
	}
	plan := m["plan"].(map[string]any)
	if plan["action"] != "stop" || plan["instance_id"] != "alpha:i1" {
		t.Errorf("plan = %v", plan)
	}

	res, m = h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	if res.IsError || m["status"] != "done" {
		t.Fatalf("confirmed call: %s", text(res))
	}
	if got := f.mutations(); !slices.Equal(got, []string{"stop i1"}) || f.state("i1") != providers.StateStopped {
		t.Fatalf("mutations %v, state %s", got, f.state("i1"))
	}

	// Replay: the instance is running again, the same token comes back.
	f.setState("start", "i1", providers.StateRunning)
	res, _ = h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	if !res.IsError || !strings.Contains(text(res), "already been used") {
		t.Fatalf("replayed token accepted: %s", text(res))
	}
	if f.state("i1") != providers.StateRunning {
		t.Fatal("replayed token stopped the instance")
	}
}

func TestTokenRefusals(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	f.addInstance("i2", providers.StateRunning)
	h := newHarness(t, f)
	_, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	token := m["confirmation_token"].(string)
	parts := strings.Split(token, ".")
	tampered := parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))

	cases := []struct {
		name, tool, id, token, want string
	}{
		{"altered arguments", "stop_instance", "alpha:i2", token, "arguments differ"},
		{"other tool", "restart_instance", "alpha:i1", token, "issued for stop_instance"},
		{"forged", "stop_instance", "alpha:i1", "gmc1.Zm9yZ2Vk.Zm9yZ2Vk", "not valid"},
		{"tampered mac", "stop_instance", "alpha:i1", tampered, "not valid"},
		{"garbage", "stop_instance", "alpha:i1", "please-just-do-it", "malformed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res, _ := h.call(c.tool, map[string]any{"instance_id": c.id, "confirm_token": c.token})
			if !res.IsError || !strings.Contains(text(res), c.want) {
				t.Fatalf("got %q, want an error containing %q", text(res), c.want)
			}
			if strings.Contains(strings.ToLower(text(res)), "bypass") {
				t.Errorf("refusal talks about bypassing: %s", text(res))
			}
		})
	}
	if got := f.mutations(); len(got) != 0 {
		t.Fatalf("refused tokens changed something: %v", got)
	}
	// The genuine token still works for its own arguments after all those refusals.
	res, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	if res.IsError || m["status"] != "done" {
		t.Fatalf("genuine token refused: %s", text(res))
	}
}

func TestExpiredTokenIsRefused(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)
	now := time.Now()
	h.deps.Confirmer.now = func() time.Time { return now }
	_, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	token := m["confirmation_token"].(string)
	h.deps.Confirmer.now = func() time.Time { return now.Add(2 * time.Minute) }
	res, _ := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": token})
	if !res.IsError || !strings.Contains(text(res), "expired") {
		t.Fatalf("expired token: %s", text(res))
	}
	if len(f.mutations()) != 0 {
		t.Fatal("expired token ran the action")
	}
}

func TestTokenFromAnotherKeyIsRefusedAndSharedKeyAccepted(t *testing.T) {
	a := testConfirmer(t, "k1")
	b := testConfirmer(t, "k2")
	shared := testConfirmer(t, "k1")
	tok, _ := a.Issue("stop_instance", []byte(`{"instance_id":"x:y"}`), "d")
	if err := b.Verify(context.Background(), "stop_instance", []byte(`{"instance_id":"x:y"}`), "d", tok); err == nil {
		t.Fatal("a token signed with another key was accepted")
	}
	if err := shared.Verify(context.Background(), "stop_instance", []byte(`{"instance_id":"x:y"}`), "d", tok); err != nil {
		t.Fatalf("a process with the same key refused the token: %v", err)
	}
}

func TestPlanChangeAsksAgain(t *testing.T) {
	f := newFake("alpha")
	h := newHarness(t, f)
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1"}
	_, m := h.call("launch_instance", args)
	token := m["confirmation_token"].(string)
	f.mu.Lock()
	higher := 9.0
	f.offers[0].PricePerGPUHour = &higher
	f.mu.Unlock()
	args["confirm_token"] = token
	res, m := h.call("launch_instance", args)
	if res.IsError || m["status"] != "confirmation_required" || !strings.Contains(text(res), "situation changed") {
		t.Fatalf("a price rise did not lead to a new plan: %v %s", m["status"], text(res))
	}
	if p := m["plan"].(map[string]any)["price_per_hour"]; p != 9.0 {
		t.Errorf("new plan price %v, want 9", p)
	}
	if len(f.mutations()) != 0 {
		t.Fatal("launch ran on a stale plan")
	}
}

func TestLaunchFlowAndIdempotency(t *testing.T) {
	f := newFake("alpha")
	h := newHarness(t, f)
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": 2, "idempotency_key": "k-1"}
	res, m := h.call("launch_instance", args)
	if res.IsError {
		t.Fatal(text(res))
	}
	plan := m["plan"].(map[string]any)
	if plan["price_per_hour"] != 5.0 || plan["gpu_count"] != 2.0 {
		t.Errorf("plan %v: want 2 GPUs at 5.00 CNY/h", plan)
	}
	args["confirm_token"] = m["confirmation_token"]
	res, m = h.call("launch_instance", args)
	if res.IsError || m["status"] != "done" || m["instance_id"] != "alpha:new-1" {
		t.Fatalf("launch: %v %s", m, text(res))
	}
	delete(args, "confirm_token")
	res, m = h.call("launch_instance", args)
	if res.IsError || m["instance_id"] != "alpha:new-1" || !strings.Contains(text(res), "nothing was bought again") {
		t.Fatalf("repeated launch: %v %s", m, text(res))
	}
	if n := len(f.mutations()); n != 1 {
		t.Fatalf("%d launches reached the vendor, want 1", n)
	}
	args["gpu_count"] = 1
	res, _ = h.call("launch_instance", args)
	if !res.IsError || !strings.Contains(text(res), "other arguments") {
		t.Fatalf("same key, other arguments: %s", text(res))
	}
}

func TestLaunchRefusesBadRequestsBeforeAnyPlan(t *testing.T) {
	f := newFake("alpha")
	g := newFake("beta")
	h := newHarness(t, f, g)
	cases := []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"offer_id": "alpha:o1", "image_id": "beta:img1"}, "belongs to beta"},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": 3}, "has no gpu_count 3.\nuse 1, 2, 4."},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "billing": "weekly"}, "cannot be billed weekly"},
		{map[string]any{"offer_id": "alpha:nope", "image_id": "alpha:img1"}, "does not exist"},
		{map[string]any{"offer_id": "gamma:o1", "image_id": "alpha:img1"}, "unknown provider"},
		{map[string]any{"offer_id": "o1", "image_id": "alpha:img1"}, "no provider prefix"},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": -1}, "gpu_count -1 is not accepted.\nuse 0 to 64."},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": "two"}, `gpu_count "two" is not accepted.` + "\nuse an integer."},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "colour": "red"}, `there is no argument "colour"`},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "name": strings.Repeat("x", 100)}, "name"},
		// A blank or padded key would be one key to the ledger and another to the operation
		// that a restarted gpu-mcp adopts.
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "idempotency_key": " "}, `idempotency_key " " is not accepted`},
		{map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "idempotency_key": "k-1 "}, "without leading or trailing spaces"},
	}
	for _, c := range cases {
		res, m := h.call("launch_instance", c.args)
		if !res.IsError || !strings.Contains(text(res), c.want) {
			t.Errorf("%v: got %q (status %v), want an error containing %q", c.args, text(res), m["status"], c.want)
		}
	}
	if len(f.mutations())+len(g.mutations()) != 0 {
		t.Fatal("a refused launch reached a vendor")
	}
}

func TestNoOpAndPrecheckRefusal(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateStopped)
	f.addInstance("i2", providers.StateRunning)
	h := newHarness(t, f)
	res, m := h.call("stop_instance", map[string]any{"instance_id": "alpha:i1"})
	if res.IsError || m["status"] != "nothing_to_do" {
		t.Fatalf("stop of a stopped instance: %v %s", m, text(res))
	}
	res, _ = h.call("destroy_instance", map[string]any{"instance_id": "alpha:i2"})
	if !res.IsError || !strings.Contains(text(res), "stopped") {
		t.Fatalf("destroy of a running instance was not refused before planning: %s", text(res))
	}
	if len(f.mutations()) != 0 {
		t.Fatal(f.mutations())
	}
}

func TestUnsupportedActionNamesProvider(t *testing.T) {
	f := newFake("alpha")
	f.caps.Unsupported = map[providers.Action]string{providers.ActionRenew: "alpha documents no renew call"}
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)
	res, _ := h.call("renew_instance", map[string]any{"instance_id": "alpha:i1", "periods": 1})
	if !res.IsError || !strings.Contains(text(res), "alpha: renew is unsupported") {
		t.Fatalf("renew on a provider without renew: %s", text(res))
	}
	_, m := h.call("list_providers", map[string]any{})
	p := m["providers"].([]any)[0].(map[string]any)
	if p["unsupported"].(map[string]any)["renew_instance"] == nil {
		t.Errorf("list_providers does not say renew is unsupported: %v", p)
	}
}

func TestSaveImageAndRenewAndDestroyRun(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)
	confirm := func(tool string, args map[string]any) map[string]any {
		t.Helper()
		res, m := h.call(tool, args)
		if res.IsError || m["status"] != "confirmation_required" {
			t.Fatalf("%s: %s", tool, text(res))
		}
		args["confirm_token"] = m["confirmation_token"]
		res, m = h.call(tool, args)
		if res.IsError || m["status"] != "done" {
			t.Fatalf("%s confirmed: %s", tool, text(res))
		}
		return m
	}
	_, m := h.call("save_image", map[string]any{"instance_id": "alpha:i1", "image_name": "ckpt-1"})
	effects := m["plan"].(map[string]any)["effects"].([]any)
	if !slices.ContainsFunc(effects, func(e any) bool { return strings.Contains(e.(string), "saving stops") }) {
		t.Errorf("save_image plan lacks the provider's warning: %v", effects)
	}
	m = confirm("save_image", map[string]any{"instance_id": "alpha:i1", "image_name": "ckpt-1"})
	if m["image_id"] != "alpha:img-ckpt-1" {
		t.Errorf("image_id = %v", m["image_id"])
	}
	m = confirm("renew_instance", map[string]any{"instance_id": "alpha:i1", "periods": 3})
	if m["instance"].(map[string]any)["expires_at"] == nil {
		t.Errorf("renew result has no expiry: %v", m)
	}
	confirm("destroy_instance", map[string]any{"instance_id": "alpha:i1"})
	if f.state("i1") != "absent" {
		t.Fatal("destroy did not delete")
	}
	want := []string{"save_image i1", "renew i1", "destroy i1"}
	if got := f.mutations(); !slices.Equal(got, want) {
		t.Fatalf("mutations %v, want %v", got, want)
	}
}

func TestListOffersFiltersSortsAndLimits(t *testing.T) {
	a, b := newFake("alpha"), newFake("beta")
	cheap, dear := 1.0, 7.0
	a.offers = append(a.offers,
		providers.Offer{ID: "o2", Provider: "alpha", GPUModel: "NVIDIA A100 80G", GPUCounts: []int{8}, VRAMGB: 80, PricePerGPUHour: &dear, Billing: []providers.BillingMode{providers.BillingHourly}, Available: true, Region: "Beijing"},
		providers.Offer{ID: "o3", Provider: "alpha", GPUModel: "RTX 3090", GPUCounts: []int{1}, VRAMGB: 24, Billing: []providers.BillingMode{providers.BillingHourly}, Available: true})
	b.offers = []providers.Offer{{ID: "x", Provider: "beta", GPUModel: "GeForce RTX-4090", GPUCounts: []int{1}, VRAMGB: 24, PricePerGPUHour: &cheap, Billing: []providers.BillingMode{providers.BillingHourly}, Available: false}}
	h := newHarness(t, a, b)

	ids := func(m map[string]any) []string {
		var out []string
		for _, o := range m["offers"].([]any) {
			out = append(out, o.(map[string]any)["id"].(string))
		}
		return out
	}
	cases := []struct {
		args map[string]any
		want []string
	}{
		{map[string]any{}, []string{"beta:x", "alpha:o1", "alpha:o2", "alpha:o3"}},
		{map[string]any{"gpu": "rtx4090"}, []string{"beta:x", "alpha:o1"}},
		{map[string]any{"gpu": "4090", "available_only": true}, []string{"alpha:o1"}},
		{map[string]any{"min_gpus": 3}, []string{"alpha:o1", "alpha:o2"}},
		{map[string]any{"min_vram_gb": 48}, []string{"alpha:o2"}},
		{map[string]any{"max_price_per_hour": 3}, []string{"beta:x", "alpha:o1"}},
		// o1's monthly price spread over 720 hours is 1.39 per GPU: 5.56 for 4 GPUs.
		{map[string]any{"max_price_per_hour": 8, "min_gpus": 4}, []string{"alpha:o1"}},
		{map[string]any{"max_price_per_hour": 5, "min_gpus": 4}, []string{}},
		{map[string]any{"region": "beij"}, []string{"alpha:o2"}},
		{map[string]any{"billing": "monthly"}, []string{"alpha:o1"}},
		{map[string]any{"provider": "beta"}, []string{"beta:x"}},
		{map[string]any{"limit": 2}, []string{"beta:x", "alpha:o1"}},
	}
	for _, c := range cases {
		res, m := h.call("list_gpu_offers", c.args)
		if res.IsError {
			t.Errorf("%v: %s", c.args, text(res))
			continue
		}
		if got := ids(m); !slices.Equal(got, c.want) && !(len(got) == 0 && len(c.want) == 0) {
			t.Errorf("%v: got %v, want %v", c.args, got, c.want)
		}
	}
	_, m := h.call("list_gpu_offers", map[string]any{"max_price_per_hour": 100})
	if m["unknown_price_excluded"] != 1.0 {
		t.Errorf("unknown_price_excluded = %v, want 1 (the 3090 has no price)", m["unknown_price_excluded"])
	}
	res, _ := h.call("list_gpu_offers", map[string]any{})
	if !strings.Contains(text(res), "offer_id | gpu ") || !strings.Contains(text(res), "beta:x   | GeForce RTX-4090 |") {
		t.Errorf("text is not a compact table:\n%s", text(res))
	}
}

func TestListOffersReportsFailingProviderBesideOthers(t *testing.T) {
	a, b := newFake("alpha"), newFake("beta")
	b.failOf = &providers.Error{Kind: providers.KindUnavailable, Provider: "beta", Message: "HTTP 503", Remedy: "try again later"}
	h := newHarness(t, a, b)
	res, m := h.call("list_gpu_offers", map[string]any{})
	if res.IsError || len(m["offers"].([]any)) != 1 {
		t.Fatalf("one failing provider hid the others: %s", text(res))
	}
	errs := m["errors"].([]any)
	if len(errs) != 1 || errs[0].(map[string]any)["provider"] != "beta" || !strings.Contains(text(res), "beta failed: beta: HTTP 503") {
		t.Fatalf("errors = %v, text %s", errs, text(res))
	}
	a.failOf = errors.New("boom")
	res, _ = h.call("list_instances", map[string]any{})
	if !res.IsError || !strings.Contains(text(res), "every provider failed") {
		t.Fatalf("all failing: %s", text(res))
	}
}

func TestListInstancesHidesPasswordsGetInstanceShowsThem(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)
	res, m := h.call("list_instances", map[string]any{})
	if b, _ := json.Marshal(m); strings.Contains(string(b), "s3cret-pw") || strings.Contains(text(res), "s3cret-pw") {
		t.Fatal("list_instances leaks the password")
	}
	if m["running"] != 1.0 {
		t.Errorf("running = %v", m["running"])
	}
	res, m = h.call("get_instance", map[string]any{"instance_id": "alpha:i1"})
	conn := m["instance"].(map[string]any)["connection"].(map[string]any)
	if conn["ssh_password"] != "s3cret-pw" || !strings.Contains(text(res), fmt.Sprintf("ssh -p %d root@127.0.0.1", fakeSSH.Port)) {
		t.Fatalf("get_instance lacks connection details: %v %s", conn, text(res))
	}
	res, _ = h.call("get_instance", map[string]any{"instance_id": "alpha:nope"})
	if !res.IsError || !strings.Contains(text(res), "no instance nope") {
		t.Fatalf("missing instance: %s", text(res))
	}
}

func TestNoProviderConfiguredSaysHow(t *testing.T) {
	h := newHarness(t)
	h.deps.ConfigureHint = "set ZETA_TOKEN in the server's environment"
	for tool, args := range map[string]map[string]any{"list_gpu_offers": {}, "list_instances": {}, "get_instance": {"instance_id": "zeta:x"}} {
		res, _ := h.call(tool, args)
		if !res.IsError || !strings.Contains(text(res), "ZETA_TOKEN") {
			t.Errorf("%s without providers: %s", tool, text(res))
		}
	}
	res, m := h.call("list_providers", map[string]any{})
	if res.IsError || !strings.Contains(m["hint"].(string), "ZETA_TOKEN") {
		t.Errorf("list_providers without providers: %s", text(res))
	}
	h.deps.ConfigureHint = ""
	if res, m = h.call("list_providers", map[string]any{}); !strings.Contains(m["hint"].(string), "--demo") {
		t.Errorf("list_providers without a configure hint: %s", text(res))
	}
}

// Every bad argument is an error result whose structured content names the argument, the value
// given and what is accepted, and whose text says each once, with no prefix stacked on it.
func TestBadArgumentsAreClearErrors(t *testing.T) {
	h := newHarness(t, newFake("alpha"))
	long := strings.Repeat("x", 100000)
	cases := []struct {
		tool     string
		args     map[string]any
		field    string
		value    any // nil: not compared
		accepted string
		want     string // in the text
	}{
		{"list_gpu_offers", map[string]any{"min_gpus": -1}, "min_gpus", -1, "0 to 1024", "min_gpus -1 is not accepted"},
		{"list_gpu_offers", map[string]any{"billing": "yearly"}, "billing", "yearly", "hourly, daily, weekly or monthly", `billing "yearly" is not accepted`},
		{"list_gpu_offers", map[string]any{"limit": 100000}, "limit", 100000, "0 to 500", "limit 100000"},
		{"list_gpu_offers", map[string]any{"max_price_per_hour": -0.5}, "max_price_per_hour", -0.5, "0 or more", "-0.5"},
		{"list_gpu_offers", map[string]any{"min_vram_gb": 100001}, "min_vram_gb", 100001, "0 to 100000", "100001"},
		{"list_instances", map[string]any{"state": "on"}, "state", "on", "pending, starting, running", `state "on"`},
		{"renew_instance", map[string]any{"instance_id": "alpha:i1", "periods": 0}, "periods", 0, "1 to 36", "periods 0"},
		{"renew_instance", map[string]any{"instance_id": "alpha:i1", "periods": -3}, "periods", -3, "1 to 36", "periods -3"},
		{"list_images", map[string]any{"limit": -1}, "limit", -1, "0 to 500", "limit -1"},
		{"save_image", map[string]any{"instance_id": "alpha:i1", "image_name": "bad name!"}, "image_name", "bad name!", "letters, digits", "not accepted"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": -1}, "gpu_count", -1, "0 to 64", "gpu_count -1"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": 65}, "gpu_count", 65, "0 to 64", "gpu_count 65"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "billing": "monthly", "periods": 37}, "periods", 37, "0 to 36", "periods 37"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "name": strings.Repeat("n", 65)}, "name", nil, "at most 64 characters", "name is 65 characters long"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": 3}, "gpu_count", 3, "1, 2, 4", "has no gpu_count 3"},
		{"wait_instance", map[string]any{"instance_id": "alpha:i1"}, "until", nil, "running, ssh_ready, stopped or image_saved", "until is required"},
		{"wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "up"}, "until", "up", "running, ssh_ready, stopped or image_saved", `until "up"`},
		{"wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "2h"}, "timeout", "2h", "5s to 30m", `timeout "2h"`},
		// Wrong types: the argument, the value and the type it takes.
		{"list_gpu_offers", map[string]any{"gpu": 4090}, "gpu", 4090, "a string", "gpu 4090 is not accepted"},
		{"list_gpu_offers", map[string]any{"min_gpus": "2"}, "min_gpus", "2", "an integer", `min_gpus "2"`},
		{"list_gpu_offers", map[string]any{"available_only": "yes"}, "available_only", "yes", "true or false", `available_only "yes"`},
		{"list_gpu_offers", map[string]any{"max_price_per_hour": "cheap"}, "max_price_per_hour", "cheap", "a number", `"cheap"`},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "gpu_count": 1.5}, "gpu_count", 1.5, "an integer", "gpu_count 1.5"},
		{"stop_instance", map[string]any{"instance_id": []any{"alpha:i1"}}, "instance_id", nil, "a string", "instance_id"},
		{"renew_instance", map[string]any{"instance_id": "alpha:i1", "periods": map[string]any{"n": 1}}, "periods", nil, "an integer", "periods"},
		// Unknown arguments: the ones accepted are listed.
		{"list_gpu_offers", map[string]any{"gpus": 2}, "gpus", nil, "min_gpus", `there is no argument "gpus"`},
		{"destroy_instance", map[string]any{"instance_id": "alpha:i1", "force": true}, "force", nil, "confirm_token, instance_id", `"force"`},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "confirm": true}, "confirm", nil, "confirm_token", `"confirm"`},
		// Huge strings: the limit, not the value.
		{"list_gpu_offers", map[string]any{"gpu": long}, "gpu", nil, "at most 100 characters", "gpu is 100000 characters long"},
		{"list_images", map[string]any{"name": strings.Repeat("x", 5000)}, "name", nil, "at most 100 characters", "5000 characters"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "idempotency_key": strings.Repeat("k", 129)}, "idempotency_key", nil, "at most 128 characters", "129 characters"},
		{"stop_instance", map[string]any{"instance_id": "alpha:i1", "confirm_token": strings.Repeat("t", 1<<20)}, "confirm_token", nil, "at most 1024 characters", "confirm_token is 1048576 characters long"},
		// Ids.
		{"get_instance", map[string]any{"instance_id": strings.Repeat("a", 600) + ":x"}, "instance_id", nil, "at most 512 characters", "instance_id is 602 characters long"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "name": "-x"}, "name", "-x", "1 to 64 letters", `name "-x" is not accepted`},
		{"get_instance", map[string]any{"instance_id": "alpha:\u0000x"}, "instance_id", nil, "", "control character"},
		{"stop_instance", map[string]any{"instance_id": "i1"}, "instance_id", "i1", "", "no provider prefix"},
		{"stop_instance", map[string]any{"instance_id": ":i1"}, "instance_id", ":i1", "", "empty provider or vendor id"},
		{"stop_instance", map[string]any{"instance_id": "alpha:"}, "instance_id", "alpha:", "", "empty provider or vendor id"},
		{"stop_instance", map[string]any{"instance_id": "zeta:i1"}, "instance_id", "zeta:i1", "", `unknown provider "zeta"`},
		{"stop_instance", map[string]any{}, "instance_id", nil, "provider:vendor-id", "instance_id is required"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img\nrm -rf"}, "image_id", nil, "", "control character"},
	}
	f := h.fakes["alpha"]
	f.addInstance("i1", providers.StateRunning)
	for _, c := range cases {
		res, m := h.call(c.tool, c.args)
		txt := text(res)
		name := fmt.Sprintf("%s %v", c.tool, truncateText(fmt.Sprint(c.args)))
		if !res.IsError || m["kind"] != "invalid" || m["provider"] != "gpu-mcp" || m["retryable"] != false || m["remedy"] == "" {
			t.Errorf("%s: %v %s, want an invalid error from gpu-mcp with a remedy", name, m, truncateText(txt))
			continue
		}
		if m["field"] != c.field {
			t.Errorf("%s: field %v, want %q", name, m["field"], c.field)
		}
		if c.value != nil && fmt.Sprint(m["value"]) != fmt.Sprint(c.value) {
			t.Errorf("%s: value %v, want %v", name, m["value"], c.value)
		}
		if !strings.Contains(fmt.Sprint(m["accepted"]), c.accepted) {
			t.Errorf("%s: accepted %q, want it to contain %q", name, m["accepted"], c.accepted)
		}
		if !strings.Contains(txt, c.want) || strings.HasPrefix(txt, c.tool) || strings.Contains(txt, "gpu-mcp:") {
			t.Errorf("%s: text %q, want %q in it and no tool or gpu-mcp prefix", name, truncateText(txt), c.want)
		}
		if lines := strings.Split(txt, "\n"); len(lines) > 2 {
			t.Errorf("%s: %d lines of text, want what went wrong and what to do: %q", name, len(lines), truncateText(txt))
		}
		if acc, _ := m["accepted"].(string); acc != "" && strings.Count(txt, acc) > 1 {
			t.Errorf("%s: the text says what is accepted more than once: %q", name, truncateText(txt))
		}
	}
	if m := f.mutations(); len(m) != 0 || f.state("i1") != providers.StateRunning {
		t.Fatalf("bad arguments changed something: %v", m)
	}
}

// TestArgumentsThatAreNotAnObject covers what an MCP client cannot send but a raw caller can.
func TestArgumentsThatAreNotAnObject(t *testing.T) {
	f := newFake("alpha")
	d := depsFor(t, f)
	for _, tool := range All(d) {
		for raw, want := range map[string]string{`[]`: "not a JSON object", `"x"`: "not a JSON object", `1`: "not a JSON object",
			`{} {}`: "more than one JSON object", `{"instance_id":`: "not valid JSON", `{"x":1}`: `no argument "x"`} {
			res := tool.Call(t.Context(), []byte(raw))
			e, _ := res.StructuredContent.(ErrorResult)
			if !res.IsError || !strings.Contains(text(res), want) || e.Kind != providers.KindInvalid {
				t.Errorf("%s %s: %q %+v, want an invalid error containing %q", tool.Name, raw, text(res), e, want)
			}
		}
	}
	if len(f.mutations()) != 0 {
		t.Fatal("bad arguments changed something")
	}
}

func truncateText(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// list_providers names each action a provider lacks by the tool an agent would call.
func TestListProvidersNamesTheToolsOfUnsupportedActions(t *testing.T) {
	f := newFake("alpha")
	f.caps.Unsupported = map[providers.Action]string{}
	for a := range actionTool {
		f.caps.Unsupported[a] = "no " + string(a)
	}
	h := newHarness(t, f)
	_, m := h.call("list_providers", map[string]any{})
	unsupported := m["providers"].([]any)[0].(map[string]any)["unsupported"].(map[string]any)
	names := map[string]bool{}
	for _, tool := range All(h.deps) {
		names[tool.Name] = true
	}
	if len(unsupported) != len(actionTool) {
		t.Fatalf("unsupported %v", unsupported)
	}
	for tool, why := range unsupported {
		if !names[tool] || !strings.HasPrefix(why.(string), "no ") {
			t.Errorf("unsupported %q (%v) is not a tool's name", tool, why)
		}
	}
}

func TestCheapestIsTheStartOfTheSortedList(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, size := range []int{0, 1, 7, 100, 1000} {
		offers := make([]providers.Offer, size)
		keys := make([]offerKey, size)
		for i := range keys {
			offers[i].ID = fmt.Sprintf("o%04d", rng.IntN(size+1))
			price := float64(rng.IntN(20))
			if rng.IntN(5) == 0 {
				price = math.Inf(1)
			}
			keys[i] = offerKey{offer: &offers[i], price: price}
		}
		sorted := slices.Clone(keys)
		slices.SortFunc(sorted, cheaper)
		for _, n := range []int{1, 5, 20, size} {
			if n > size {
				continue
			}
			got := cheapest(slices.Clone(keys), n)
			for i := range n {
				if cheaper(got[i], sorted[i]) != 0 {
					t.Fatalf("size %d, first %d: at %d %v, want %v", size, n, i, got[i], sorted[i])
				}
			}
		}
	}
}

func TestInstanceNamesAsTheRuleSays(t *testing.T) {
	rule := regexp.MustCompile(`^[\p{L}\p{N}][\p{L}\p{N} ._-]{0,63}$`)
	for _, name := range []string{"a", "train-1", "训练 任务_2.v3", "٣d", " lead", "-x", "a!", "a\nb", strings.Repeat("x", 64), strings.Repeat("x", 65),
		strings.Repeat("训", 64), strings.Repeat("训", 65), "x\xff", "Ⅻ roman", "a  b"} {
		if got, want := validName(name), rule.MatchString(name); got != want {
			t.Errorf("validName(%q) = %v, the rule says %v", name, got, want)
		}
	}
}
