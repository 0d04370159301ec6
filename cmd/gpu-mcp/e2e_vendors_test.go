package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// Each vendor of the list in turn: the gpu-mcp process against that vendor's emulator,
// started here so that the test can read what reached the vendor after every step, takes an
// instance through its life over stdio, every guarded step through plan and token. What a
// vendor cannot do (its Capabilities) is refused, naming the vendor. The vendors' own rules
// are tested in their packages.

func instanceIDs(m map[string]any) []string {
	var ids []string
	for _, in := range m["instances"].([]any) {
		ids = append(ids, in.(map[string]any)["id"].(string))
	}
	return ids
}

// emulate starts a new emulator of v, closed when the test ends, and returns the variables
// that configure gpu-mcp for it.
func emulate(t *testing.T, v providers.Vendor, o emulated.Options) (*vendors.Emulated, []string) {
	t.Helper()
	emu, err := vendors.Emulate(v, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	return emu, emu.EnvLines()
}

// vendorSession starts gpu-mcp configured with v alone, on a new emulator of v.
func vendorSession(t *testing.T, v providers.Vendor, o emulated.Options) (*session, *vendors.Emulated) {
	t.Helper()
	emu, env := emulate(t, v, o)
	return startSession(t, env), emu
}

// hourlyOffer is the cheapest available hourly offer of v with one GPU, and a public image of it.
func hourlyOffer(t *testing.T, s *session, v string) (offer, image string) {
	t.Helper()
	m := s.ok("list_gpu_offers", map[string]any{"provider": v, "billing": "hourly", "available_only": true, "limit": 100})
	for _, o := range m["offers"].([]any) {
		if o := o.(map[string]any); slices.Contains(o["gpu_counts"].([]any), any(float64(1))) {
			offer = o["id"].(string)
			break
		}
	}
	if offer == "" {
		t.Fatalf("%s has no available hourly offer of one GPU: %v", v, m)
	}
	return offer, firstID(t, s.ok("list_images", map[string]any{"offer_id": offer, "kind": "public"}), "images")
}

func TestStdioLifecycleOnEveryVendor(t *testing.T) {
	for _, v := range vendors.All() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			s, emu := vendorSession(t, v, emulated.Options{})
			caps := v.Capabilities
			offer, image := hourlyOffer(t, s, v.Name)

			m := s.confirm("launch_instance", map[string]any{"offer_id": offer, "image_id": image, "name": "e2e"}, emu.Changes)
			id, _ := m["instance_id"].(string)
			if !strings.HasPrefix(id, v.Name+":") {
				t.Fatalf("launch result: %v", m)
			}
			if _, ok := emu.SSHAddr(local(id)); !ok {
				t.Fatalf("the emulator has no instance %s", id)
			}
			if w := s.ok("wait_instance", map[string]any{"instance_id": id, "until": "ssh_ready", "timeout": "30s"}); w["reached"] != true {
				t.Fatalf("ssh_ready: %v", w)
			}
			if !slices.Contains(instanceIDs(s.ok("list_instances", map[string]any{"provider": v.Name})), id) {
				t.Fatal("list_instances does not show the new instance")
			}
			inst := s.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)
			conn, _ := inst["connection"].(map[string]any)
			addr, _ := emu.SSHAddr(local(id))
			_, port, _ := strings.Cut(addr, ":")
			if conn == nil || !strings.Contains(conn["ssh_command"].(string), port) {
				t.Fatalf("connection %v, the emulator's SSH endpoint %s", conn, addr)
			}
			password, _ := conn["ssh_password"].(string)
			state := func() string {
				return s.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)["state"].(string)
			}

			s.confirm("stop_instance", map[string]any{"instance_id": id}, emu.Changes)
			if st := state(); st != "stopped" {
				t.Fatalf("after stop: %s", st)
			}
			s.confirm("start_instance", map[string]any{"instance_id": id}, emu.Changes)
			if st := state(); st != "running" {
				t.Fatalf("after start: %s", st)
			}
			unsupported := func(tool string, a providers.Action, args map[string]any) bool {
				if ok, _ := caps.Supports(a); ok {
					return false
				}
				s.fails(tool, args, v.Name+": "+string(a)+" is unsupported")
				return true
			}
			if !unsupported("restart_instance", providers.ActionRestart, map[string]any{"instance_id": id}) {
				s.confirm("restart_instance", map[string]any{"instance_id": id}, emu.Changes)
				if st := state(); st != "running" {
					t.Fatalf("after restart: %s", st)
				}
			}
			unsupported("renew_instance", providers.ActionRenew, map[string]any{"instance_id": id, "periods": 1})

			name := "e2e-" + v.Name
			plan := s.ok("save_image", map[string]any{"instance_id": id, "image_name": name})
			effects := strings.Join(toStrings(plan["plan"].(map[string]any)["effects"]), " ")
			if caps.SaveImageStops != regexp.MustCompile(`(?i)\bstop|shuts? [a-z ]*down|powers? [a-z ]*off`).MatchString(effects) {
				t.Errorf("%s stops the instance to save an image: %v, but the plan says %q", v.Name, caps.SaveImageStops, effects)
			}
			saved := s.confirm("save_image", map[string]any{"instance_id": id, "image_name": name}, emu.Changes)
			wait := map[string]any{"instance_id": id, "until": "image_saved", "timeout": "30s"}
			if img, _ := saved["image_id"].(string); img != "" {
				wait["image_id"] = img
			} else {
				wait["image_name"] = name
			}
			// Reached where the vendor reports a saved image; never where it cannot.
			w := s.ok("wait_instance", wait)
			if unconfirmed := caps.ImageSaved == providers.SaveReportNone; w["reached"] == unconfirmed || (w["status"] == "cannot_be_confirmed") != unconfirmed {
				t.Fatalf("image_saved: %v", w)
			}

			if state() != "stopped" {
				s.fails("destroy_instance", map[string]any{"instance_id": id}, "stop")
				s.confirm("stop_instance", map[string]any{"instance_id": id}, emu.Changes)
			}
			s.confirm("destroy_instance", map[string]any{"instance_id": id}, emu.Changes)
			if _, ok := emu.SSHAddr(local(id)); ok {
				t.Fatal("the destroyed instance still exists at the vendor")
			}
			s.noSecretsIn(emu.Credential(), password)
		})
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
