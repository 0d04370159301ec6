package tools

import (
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// wait_instance tells the truth on every vendor, through the MCP client: a state the vendor
// cannot report is "cannot be confirmed", never reached; a state nothing moves the instance
// towards fails at once; a reached state is reported; no result carries the SSH password.
func TestWaitsTellTheTruth(t *testing.T) {
	e := newVendorEnv(t, envOptions{http: fast})
	for _, vendor := range e.names {
		_, done := e.confirmed("launch_instance", e.launchArgs(vendor))
		id, _ := done["instance_id"].(string)
		if done["ready"] != true {
			t.Fatalf("%s: launch: %v", vendor, done)
		}
		caps := e.ps[vendor].Capabilities()
		wait := func(args map[string]any) (string, map[string]any) {
			t.Helper()
			args["instance_id"] = id
			res, m := e.call("wait_instance", args)
			if res.IsError {
				t.Fatalf("%s wait %v: %s", vendor, args, text(res))
			}
			if conn, _ := m["instance"].(map[string]any)["connection"].(map[string]any); conn["ssh_password"] != nil {
				t.Errorf("%s wait %v: the result carries the SSH password", vendor, args)
			}
			return text(res), m
		}
		if _, m := wait(map[string]any{"until": "running"}); m["status"] != "reached" || m["reached"] != true {
			t.Errorf("%s: running: %v", vendor, m)
		}
		// get_instance, and only it, gives the password.
		if _, m := e.call("get_instance", map[string]any{"instance_id": id}); m["instance"].(map[string]any)["connection"].(map[string]any)["ssh_password"] == nil {
			t.Errorf("%s: get_instance has no password to hold back elsewhere; the check above proves nothing", vendor)
		}
		// Nothing stops it: the wait for stopped fails at once (a 30-minute timeout would
		// otherwise be waited out) and says what to call.
		if txt, m := wait(map[string]any{"until": "stopped", "timeout": "30m"}); m["status"] != "unreachable" || !strings.Contains(txt, "call stop_instance") {
			t.Errorf("%s: stopped while nothing stops it: %v %s", vendor, m, txt)
		}
		// No save in progress: at once, whatever the vendor reports.
		txt, m := wait(map[string]any{"until": "image_saved", "timeout": "30m"})
		switch caps.ImageSaved {
		case providers.SaveReportNone:
			if m["status"] != "cannot_be_confirmed" || !strings.Contains(txt, "cannot be confirmed: "+vendor+" does not report when an image is ready") {
				t.Errorf("%s: image_saved: %v %s", vendor, m, txt)
			}
		default:
			if m["status"] != "unreachable" || m["reached"] != false {
				t.Errorf("%s: image_saved with no save: %v %s", vendor, m, txt)
			}
		}
		// A save: reached where the vendor reports it, never where it cannot.
		_, saved := e.confirmed("save_image", map[string]any{"instance_id": id, "image_name": "ckpt-1"})
		args := map[string]any{"until": "image_saved", "timeout": "30m"}
		if img, _ := saved["image_id"].(string); img != "" {
			args["image_id"] = img
		} else if caps.ImageSaved == providers.SaveReportImages {
			args["image_name"] = "ckpt-1"
		}
		txt, m = wait(args)
		want := "reached"
		if caps.ImageSaved == providers.SaveReportNone {
			want = "cannot_be_confirmed"
		}
		if m["status"] != want || (want != "reached") == (m["reached"] == true) || strings.Contains(txt, "is image saved after") != (want == "reached") {
			t.Errorf("%s: image_saved after save_image: status %v, want %s: %s", vendor, m["status"], want, txt)
		}
	}
}
