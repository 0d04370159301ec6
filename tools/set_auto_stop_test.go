package tools

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/fleet"
	"github.com/gpu-mcp/gpu-mcp/providers"
)

// confirmed calls a guarded tool, then again with the token its plan came with; it returns
// the plan and the answer.
func (h *harness) confirmed(tool string, args map[string]any) (map[string]any, map[string]any) {
	h.t.Helper()
	res, m := h.call(tool, args)
	if res.IsError || m["status"] != "confirmation_required" {
		h.t.Fatalf("%s without a token: %s", tool, text(res))
	}
	plan := m["plan"].(map[string]any)
	with := map[string]any{"confirm_token": m["confirm_token"]}
	for k, v := range args {
		with[k] = v
	}
	res, m = h.call(tool, with)
	if res.IsError {
		h.t.Fatalf("%s with the token: %s", tool, text(res))
	}
	return plan, m
}

func effects(plan map[string]any) string {
	var s []string
	for _, e := range plan["effects"].([]any) {
		s = append(s, e.(string))
	}
	return strings.Join(s, "\n")
}

// set_auto_stop sets, moves and clears a lease on an instance gpu-mcp did not launch; each
// plan says how much longer or shorter it may bill, at its price.
func TestSetAutoStopSetsMovesAndClears(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	price := 4.0
	f.insts["i1"].PricePerHour = &price
	h := newHarness(t, f)

	plan, m := h.confirmed("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": "2h"})
	if m["status"] != "done" || !strings.Contains(plan["summary"].(string), "Stop alpha instance alpha:i1") ||
		!strings.Contains(effects(plan), "it has no auto-stop now; from then on it bills at most 2h more: about 8.00 CNY at 4.00 CNY per hour") ||
		!strings.Contains(effects(plan), "no shutdown timer: gpu-mcp carries it out whenever any gpu-mcp process runs") {
		t.Fatalf("set: %v %v", plan, m)
	}
	stop := m["auto_stop"].(map[string]any)
	if stop["by"] != "gpu-mcp" || stop["action"] != "stop" {
		t.Fatalf("auto_stop %v", stop)
	}
	res, got := h.call("get_instance", map[string]any{"instance_id": "alpha:i1"})
	lease := got["instance"].(map[string]any)["managed"].(map[string]any)["lease"].(map[string]any)
	if lease["by"] != "gpu-mcp" || got["instance"].(map[string]any)["stops_at"] == nil || !strings.Contains(text(res), "auto-stop at ") {
		t.Fatalf("get_instance: %v\n%s", got, text(res))
	}

	plan, _ = h.confirmed("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": "5h"})
	if !strings.Contains(effects(plan), "moves later than the current one") || !strings.Contains(effects(plan), "about 3h longer, about 12.00 CNY at 4.00 CNY per hour more") {
		t.Fatalf("later: %v", effects(plan))
	}
	plan, _ = h.confirmed("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": "1h", "action": "destroy"})
	if !strings.Contains(effects(plan), "moves earlier than the current one") || !strings.Contains(effects(plan), "about 4h less") ||
		!strings.Contains(effects(plan), "deleted permanently") || !strings.HasPrefix(plan["summary"].(string), "Destroy") {
		t.Fatalf("earlier: %v", plan)
	}
	plan, m = h.confirmed("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": ""})
	if !strings.HasPrefix(plan["summary"].(string), "Clear the auto-stop") || !strings.Contains(effects(plan), "it bills until someone stops it, with no end") {
		t.Fatalf("clear: %v", plan)
	}
	if l, err := h.deps.Fleet.Lease(context.Background(), "alpha:i1"); err != nil || l != nil {
		t.Fatalf("cleared, the lease is %+v %v", l, err)
	}
	res, m = h.call("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": ""})
	if res.IsError || m["status"] != "nothing_to_do" {
		t.Fatalf("clear again: %s", text(res))
	}
	if len(f.mutations()) != 0 {
		t.Fatalf("set_auto_stop changed the instance: %v", f.mutations())
	}
}

// GPU_MCP_MAX_LEASE caps set_auto_stop and launch_instance, and an auto-stop cannot be
// cleared under it; GPU_MCP_DEFAULT_AUTO_STOP applies to a launch that names none, and the
// plan says where it came from and that it holds without gpu-mcp running.
func TestLeaseLimitsAndTheLaunchPlan(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("i1", providers.StateRunning)
	h := newHarness(t, f)
	h.deps.Fleet = newTestFleet(t, h.deps.Providers, func(o *fleet.Options) { o.MaxLease, o.DefaultAutoStop = 3*time.Hour, time.Hour })
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": "4h"}, "beyond the longest lease allowed, 3h (GPU_MCP_MAX_LEASE)"},
		{"launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "auto_stop_after": "4h"}, "longer than the longest lease allowed, 3h (GPU_MCP_MAX_LEASE)"},
		{"set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": "", "action": "stop"}, "action applies only when"},
	} {
		if res, _ := h.call(c.tool, c.args); !res.IsError || !strings.Contains(text(res), c.want) {
			t.Errorf("%s %v: %s", c.tool, c.args, text(res))
		}
	}
	h.confirmed("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": "2h"})
	if res, _ := h.call("set_auto_stop", map[string]any{"instance_id": "alpha:i1", "auto_stop_after": ""}); !res.IsError || !strings.Contains(text(res), "can be moved but not cleared") {
		t.Errorf("clear under a cap: %s", text(res))
	}
	plan, m := h.confirmed("launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait": false})
	e := effects(plan)
	if !strings.Contains(e, "is stopped 1h after it came up (set by the server's GPU_MCP_DEFAULT_AUTO_STOP) by gpu-mcp") ||
		!strings.Contains(e, "whenever any gpu-mcp process runs, or `gpu-mcp reap` from cron") ||
		!strings.Contains(e, "with no gpu-mcp process running and no reap scheduled, the stop happens at the next start of gpu-mcp") {
		t.Fatalf("launch plan: %s", e)
	}
	if stop, _ := m["auto_stop"].(map[string]any); stop == nil || stop["by"] != "gpu-mcp" {
		t.Fatalf("the default auto-stop was not applied: %v", m)
	}
}

// list_instances shows which instances gpu-mcp launched and their lease, and flags an orphan.
func TestListInstancesShowsManagedAndOrphans(t *testing.T) {
	f := newFake("alpha")
	f.addInstance("mine", providers.StateRunning)
	f.addInstance("lost", providers.StateRunning)
	f.insts["lost"].Name = fleet.VendorName("a-key-whose-record-is-gone", "", 1)
	h := newHarness(t, f)
	_, m := h.confirmed("launch_instance", map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "auto_stop_after": "1h", "idempotency_key": "k-9"})
	if m["instance_id"] != "alpha:new-1" {
		t.Fatalf("launch: %v", m)
	}
	res, m := h.call("list_instances", nil)
	byID := map[string]map[string]any{}
	for _, x := range m["instances"].([]any) {
		byID[x.(map[string]any)["id"].(string)] = x.(map[string]any)
	}
	if byID["alpha:mine"]["managed"] != nil {
		t.Errorf("an instance gpu-mcp knows nothing of: %v", byID["alpha:mine"])
	}
	launched, _ := byID["alpha:new-1"]["managed"].(map[string]any)
	if launched == nil || launched["launched_by_gpu_mcp"] != true || launched["key"] != "k-9" || launched["lease"] == nil {
		t.Errorf("launched: %v", byID["alpha:new-1"])
	}
	lost, _ := byID["alpha:lost"]["managed"].(map[string]any)
	if lost == nil || !strings.Contains(lost["orphan"].(string), "no record of it") {
		t.Errorf("orphan: %v", byID["alpha:lost"])
	}
	if !strings.Contains(text(res), "! ORPHAN alpha:lost:") || !strings.Contains(text(res), "launched, stop by gpu-mcp") {
		t.Errorf("text: %s", text(res))
	}
}
