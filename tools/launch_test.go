package tools

import (
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// A machine that never comes up and that the vendor lets nobody stop or destroy is left
// alone, and the answer says it bills.
func TestLaunchThatNeverRunsAndCannotBeCleanedUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newFake("alpha"))
	f := h.fakes["alpha"]
	f.launchState, f.noStop = providers.StatePending, true
	args := map[string]any{"offer_id": "alpha:o1", "image_id": "alpha:img1", "wait_timeout": "5s"}
	_, plan := h.call("launch_instance", args)
	args["confirm_token"] = plan["confirmation_token"]
	res, m := h.call("launch_instance", args)
	if res.IsError {
		t.Fatal(text(res))
	}
	att := m["attempts"].([]any)[0].(map[string]any)
	if m["status"] != "failed" || att["result"] != "not_running" || att["billing"] != "yes" ||
		!strings.Contains(att["cleanup"].(string), "allows neither stopping nor destroying") ||
		!strings.Contains(m["billing_now"].(string), "alpha:new-1 bills") {
		t.Fatalf("result: %v", m)
	}
	if !strings.Contains(text(res), "billing now: alpha:new-1 bills") {
		t.Fatalf("text: %s", text(res))
	}
	if f.state("new-1") != providers.StatePending {
		t.Fatal("the instance changed")
	}
}

func TestWaitInstanceArguments(t *testing.T) {
	t.Parallel()
	h := newHarness(t, newFake("alpha"))
	h.fakes["alpha"].addInstance("i1", providers.StateRunning)
	for _, c := range []struct {
		args map[string]any
		want string
	}{
		{map[string]any{"instance_id": "alpha:i1"}, "until is required"},
		{map[string]any{"instance_id": "alpha:i1", "until": "up"}, `until "up" is not accepted`},
		{map[string]any{"instance_id": "alpha:i1", "until": "running", "image_id": "alpha:x"}, "image_id and image_name apply to until=image_saved only"},
		{map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "2h"}, "from 5s to 30m"},
		{map[string]any{"instance_id": "alpha:i1", "until": "running", "timeout": "soon"}, `timeout "soon" is not accepted`},
	} {
		res, _ := h.call("wait_instance", c.args)
		if !res.IsError || !strings.Contains(text(res), c.want) {
			t.Errorf("%v: %q, want %q", c.args, text(res), c.want)
		}
	}
	res, m := h.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "ssh_ready"})
	if res.IsError || m["reached"] != true {
		t.Fatalf("ssh_ready on a running instance with an answering sshd: %s", text(res))
	}
	// Nothing stops it: the wait ends at once, and says what to call.
	res, m = h.call("wait_instance", map[string]any{"instance_id": "alpha:i1", "until": "stopped", "timeout": "5m"})
	if res.IsError || m["reached"] != false || m["status"] != "unreachable" || !strings.Contains(m["detail"].(string), "call stop_instance") {
		t.Fatalf("stopped on a running instance that nothing stops: %s", text(res))
	}
}
