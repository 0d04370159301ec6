package tools

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// vendorPlans gets, through the MCP client and against every vendor's emulator, the plan of each
// guarded tool on a fitting instance (or the tool's refusal where the vendor cannot do it):
// tool name (plus ".prepaid" for a prepaid launch) to the plan, or to the error result's text.
func vendorPlans(t *testing.T, e *machineEnv, vendor string) map[string]any {
	t.Helper()
	plans := map[string]any{}
	plan := func(key, tool string, args map[string]any) {
		t.Helper()
		res, m := e.call(tool, args)
		switch {
		case res.IsError:
			plans[key] = text(res)
		case m["status"] != "confirmation_required":
			t.Fatalf("%s %s: no plan: %s", vendor, tool, text(res))
		default:
			plans[key] = m["plan"]
		}
	}
	args := e.launchArgs(vendor)
	plan("launch_instance", "launch_instance", args)
	if prepaid := e.prepaidArgs(vendor); prepaid != nil {
		plan("launch_instance.prepaid", "launch_instance", prepaid)
	}
	_, done := e.confirmed("launch_instance", args)
	id, _ := done["instance_id"].(string)
	if done["ready"] != true || id == "" {
		t.Fatalf("%s: the launch did not end in a running instance: %v", vendor, done)
	}
	inst := map[string]any{"instance_id": id}
	plan("stop_instance", "stop_instance", inst)
	plan("restart_instance", "restart_instance", inst)
	plan("save_image", "save_image", map[string]any{"instance_id": id, "image_name": "ckpt-1"})
	plan("set_auto_stop", "set_auto_stop", map[string]any{"instance_id": id, "auto_stop_after": "2h"})
	plan("renew_instance", "renew_instance", map[string]any{"instance_id": id, "periods": 1})
	// The tools that change the machine, guarded under GPU_MCP_EXEC=confirm.
	plan("run_command", "run_command", map[string]any{"instance_id": id, "command": "nvidia-smi"})
	if err := os.WriteFile(filepath.Join(e.ws, "data.txt"), []byte("some data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	plan("copy_to_instance", "copy_to_instance", map[string]any{"instance_id": id, "local_path": "data.txt", "remote_path": "data/"})
	plan("start_job", "start_job", map[string]any{"instance_id": id, "command": "sleep 600", "stop_instance_when_done": true})
	_, job := e.confirmed("start_job", map[string]any{"instance_id": id, "command": "sleep 600"})
	plan("stop_job", "stop_job", map[string]any{"instance_id": id, "job_id": job["job_id"]})
	e.confirmed("stop_job", map[string]any{"instance_id": id, "job_id": job["job_id"]})
	e.confirmed("stop_instance", inst)
	if res, m := e.call("wait_instance", map[string]any{"instance_id": id, "until": "stopped"}); m["reached"] != true {
		t.Fatalf("%s: not stopped: %s", vendor, text(res))
	}
	plan("start_instance", "start_instance", inst)
	plan("destroy_instance", "destroy_instance", inst)
	if prepaid := e.prepaidArgs(vendor); prepaid != nil {
		_, done := e.confirmed("launch_instance", prepaid)
		if id, _ := done["instance_id"].(string); id != "" {
			plan("renew_instance", "renew_instance", map[string]any{"instance_id": id, "periods": 1})
		}
	}
	return plans
}

// prepaidArgs finds a prepaid offer with capacity (daily, else weekly, else monthly) and a
// public image of it, or nil where the vendor sells none through its API.
func (e *vendorEnv) prepaidArgs(vendor string) map[string]any {
	e.t.Helper()
	for _, billing := range []string{"daily", "weekly", "monthly"} {
		_, m := e.call("list_gpu_offers", map[string]any{"provider": vendor, "billing": billing, "available_only": true})
		offers, _ := m["offers"].([]any)
		if len(offers) == 0 {
			continue
		}
		offer := offers[0].(map[string]any)["id"].(string)
		_, m = e.call("list_images", map[string]any{"offer_id": offer, "kind": "public"})
		images, _ := m["images"].([]any)
		if len(images) == 0 {
			e.t.Fatalf("%s: no image for %s", vendor, offer)
		}
		return map[string]any{"offer_id": offer, "image_id": images[0].(map[string]any)["id"].(string), "billing": billing, "wait": false}
	}
	return nil
}

// planOrRefusal is a plan as the person approving it reads it, or a refusal's text.
func planOrRefusal(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return v.(string) + "\n"
	}
	b, _ := json.Marshal(m)
	var p Plan
	_ = json.Unmarshal(b, &p)
	return planText(&p)
}

// sentences splits a plan's text into its clauses, normalized: what a plan must not say twice.
func sentences(s string) []string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		for _, c := range regexp.MustCompile(`[.;:]\s+|\s+\(|\)`).Split(strings.TrimPrefix(line, "- "), -1) {
			c = strings.ToLower(strings.Trim(strings.TrimSpace(c), ".,;:()"))
			if len(strings.Fields(c)) >= 3 {
				out = append(out, c)
			}
		}
	}
	return out
}

// topics are the matters each plan must speak of at most once, however it words them.
var topics = map[string]*regexp.Regexp{
	"what is killed":          regexp.MustCompile(`(?i)\bkilled\b`),
	"what is deleted":         regexp.MustCompile(`(?i)\bdeleted (permanently|for good)\b`),
	"the price is not known":  regexp.MustCompile(`(?i)no price|not (report|publish)|publishes none|cost is unknown|unknown price`),
	"billing starts/resumes":  regexp.MustCompile(`(?i)billing (starts|resumes)`),
	"billing stops":           regexp.MustCompile(`(?i)stops [0-9.]+ CNY/h|stops its hourly billing|ends all billing`),
	"what cannot be undone":   regexp.MustCompile(`(?i)cannot be undone`),
	"the instance boots":      regexp.MustCompile(`(?i)instance boots`),
	"the price per hour":      regexp.MustCompile(`[0-9]+\.[0-9]{2} CNY/h\b`),
	"what a stopped instance": regexp.MustCompile(`(?i)still billed`),
}

// No plan of any guarded tool on any vendor (the test-only one included) says a sentence, or
// speaks of a matter, twice; a stop and a destroy say the billing they end and what still
// bills; a prepaid launch says what cannot be undone. The plans of the vendors of the list are
// kept in the repository's testdata/plans (UPDATE_GOLDEN=1 rewrites them; the test-only vendor
// has none, its texts being made up for the tests).
func TestPlansSayEachThingOnce(t *testing.T) {
	update := os.Getenv("UPDATE_GOLDEN") == "1"
	e := newMachineEnv(t, ExecConfirm)
	for _, vendor := range e.names {
		plans := vendorPlans(t, e, vendor)
		for _, key := range sortedKeys(plans) {
			txt := strings.ReplaceAll(planOrRefusal(plans[key]), e.ws, "<workspace>")
			seen := map[string]bool{}
			for _, s := range sentences(txt) {
				if seen[s] {
					t.Errorf("%s %s says %q twice:\n%s", vendor, key, s, txt)
				}
				seen[s] = true
			}
			for topic, re := range topics {
				if n := len(re.FindAllString(txt, -1)); n > 1 {
					t.Errorf("%s %s speaks of %s %d times:\n%s", vendor, key, topic, n, txt)
				}
			}
			if _, isPlan := plans[key].(map[string]any); isPlan {
				checkPlanSays(t, vendor, key, txt)
			}
			if vendor == fakecloud.Name {
				continue
			}
			path := filepath.Join("..", "testdata", "plans", vendor, key+".txt")
			norm := normalizePlan(txt, plans[key])
			if update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(norm), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Errorf("%s: %v (UPDATE_GOLDEN=1 writes it)", path, err)
				continue
			}
			if string(want) != norm {
				t.Errorf("%s differs from the plan now made (UPDATE_GOLDEN=1 rewrites it; review the diff):\n--- want\n%s--- got\n%s", path, want, norm)
			}
		}
	}
}

// checkPlanSays holds a plan to what its action must say.
func checkPlanSays(t *testing.T, vendor, key, txt string) {
	t.Helper()
	must := map[string][]string{
		"stop_instance":           {`stops [0-9.]+ CNY/h of billing|stops its hourly billing`, `killed`},
		"destroy_instance":        {`ends all billing of the instance`, `deleted`},
		"restart_instance":        {`killed`},
		"launch_instance":         {`billing starts when the instance is created`},
		"launch_instance.prepaid": {`prepays 1 (daily|weekly|monthly) period`, `cannot be undone`},
		"start_instance":          {`billing resumes`},
	}
	for _, re := range must[key] {
		if !regexp.MustCompile(re).MatchString(txt) {
			t.Errorf("%s %s does not say /%s/:\n%s", vendor, key, re, txt)
		}
	}
	if strings.Contains(txt, "Price:") {
		t.Errorf("%s %s has a price line beside its effects:\n%s", vendor, key, txt)
	}
}

// normalizePlan replaces what differs from run to run (ids, names) by placeholders.
func normalizePlan(txt string, plan any) string {
	m, _ := plan.(map[string]any)
	for _, f := range []string{"instance_id", "instance_name", "offer_id", "image_id"} {
		if v, _ := m[f].(string); v != "" {
			txt = strings.ReplaceAll(txt, v, "<"+f+">")
		}
	}
	txt = regexp.MustCompile(`\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d)?Z`).ReplaceAllString(txt, "<time>")
	txt = regexp.MustCompile(`job-\d{8}-\d{6}-[0-9a-f]+`).ReplaceAllString(txt, "<job_id>")
	return regexp.MustCompile(`(`+strings.Join(vendors.Names(), "|")+`):[A-Za-z0-9_.:/@-]+`).ReplaceAllString(txt, "<id>")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
