package main

import (
	"bufio"
	"context"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// launchVendor is one emulated vendor of the list for the launch tests.
type launchVendor struct {
	name string
	env  []string
	emu  emulated.Server
	// timer is whether the vendor stops an instance by its own shutdown timer, whose clock
	// advance moves; without one gpu-mcp stops it, in real time.
	timer   bool
	advance func(time.Duration)
}

// offsetClock is an emulator clock that a test can move forward.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.offset.Add(int64(d)) }

func launchVendors(t *testing.T) []launchVendor {
	const step = 60 * time.Millisecond
	var out []launchVendor
	for _, v := range vendors.All() {
		clock := &offsetClock{}
		emu, env := emulate(t, v, emulated.Options{StepDelay: step, Now: clock.Now})
		_, timer := emu.Config.Provider(providers.HTTPOptions{}, nil).(providers.StopScheduler)
		out = append(out, launchVendor{name: v.Name, env: env, emu: emu, timer: timer, advance: clock.advance})
	}
	return out
}

// progressLog collects the progress notifications of one session.
type progressLog struct {
	mu   sync.Mutex
	msgs []string
	nums []float64
}

func (p *progressLog) handle(n mcp.JSONRPCNotification) {
	if n.Method != "notifications/progress" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	f := n.Params.AdditionalFields
	msg, _ := f["message"].(string)
	num, _ := f["progress"].(float64)
	p.msgs = append(p.msgs, msg)
	p.nums = append(p.nums, num)
}

func (p *progressLog) snapshot() ([]string, []float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs), slices.Clone(p.nums)
}

// launch runs launch_instance through plan and token, asking for progress on the second call.
func (s *session) launch(args map[string]any) (*mcp.CallToolResult, map[string]any) {
	s.t.Helper()
	plan := s.ok("launch_instance", args)
	if plan["status"] != "confirmation_required" {
		s.t.Fatalf("launch without token: %v", plan)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "launch_instance"
	with := map[string]any{"confirm_token": plan["confirmation_token"]}
	for k, v := range args {
		with[k] = v
	}
	req.Params.Arguments = with
	req.Params.Meta = &mcp.Meta{ProgressToken: "launch-1"}
	res, err := s.c.CallTool(ctx, req)
	if err != nil {
		s.t.Fatalf("launch: %v\n%s", err, s.stderr.String())
	}
	if res.IsError {
		s.t.Fatalf("launch failed: %s\n%s", resultText(res), s.stderr.String())
	}
	return res, structured(s.t, res)
}

func structured(t *testing.T, res *mcp.CallToolResult) map[string]any {
	t.Helper()
	m, ok := res.StructuredContent.(map[string]any)
	if !ok {
		t.Fatalf("no structured content: %s", resultText(res))
	}
	return m
}

// offersOf returns the available hourly offers of one GPU of the first GPU model that has
// two of them at least, cheapest first: a fallback goes from one to another.
func offersOf(t *testing.T, s *session, provider string) []map[string]any {
	t.Helper()
	m := s.ok("list_gpu_offers", map[string]any{"provider": provider, "billing": "hourly", "available_only": true, "limit": 100})
	byGPU := map[string][]map[string]any{}
	var models []string
	for _, o := range m["offers"].([]any) {
		o := o.(map[string]any)
		if gpu := o["gpu_model"].(string); slices.Contains(o["gpu_counts"].([]any), any(float64(1))) {
			if byGPU[gpu] == nil {
				models = append(models, gpu)
			}
			byGPU[gpu] = append(byGPU[gpu], o)
		}
	}
	for _, gpu := range models {
		if len(byGPU[gpu]) >= 2 {
			return byGPU[gpu]
		}
	}
	t.Fatalf("%s: no GPU model has two available hourly offers of one GPU: %v", provider, m)
	return nil
}

func imageFor(t *testing.T, s *session, offer string) string {
	t.Helper()
	return firstID(t, s.ok("list_images", map[string]any{"offer_id": offer, "kind": "public"}), "images")
}

var sshCommandRE = regexp.MustCompile(`^ssh -p (\d+) ([a-z_][a-z0-9_-]*)@([0-9.]+)$`)

// sshAnswers runs the TCP half of the ssh command: the server must send its banner.
func sshAnswers(t *testing.T, command string) string {
	t.Helper()
	m := sshCommandRE.FindStringSubmatch(command)
	if m == nil {
		t.Fatalf("ssh command %q is not ssh -p PORT user@host", command)
	}
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(m[3], m[1]), 5*time.Second)
	if err != nil {
		t.Fatalf("ssh %s: %v", command, err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-") {
		t.Fatalf("ssh %s: banner %q, %v", command, line, err)
	}
	return line
}

// A launch waits for a usable machine, with progress in order, and returns a working ssh
// command; one that never runs is cleaned up; a sold-out offer falls back to the next one;
// auto_stop_after stops the instance. On each emulated vendor, over stdio.
func TestStdioLaunchEndsInAUsableMachine(t *testing.T) {
	for _, v := range launchVendors(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			var progress progressLog
			s := startSession(t, append(slices.Clone(v.env), "GPU_MCP_POLL_INTERVAL=40ms", "GPU_MCP_OFFER_CACHE_TTL=0"))
			s.c.OnNotification(progress.handle)
			offers := offersOf(t, s, v.name)
			cheap, dear := offers[0]["id"].(string), offers[len(offers)-1]["id"].(string)
			image := imageFor(t, s, cheap)

			t.Run("waits, with progress in order, for a machine that answers on SSH", func(t *testing.T) {
				// A vendor's timer needs a time some minutes ahead (Chenyu's at least 5): its clock
				// is moved instead. gpu-mcp's own stops in real time.
				autoStop := "6s"
				if v.timer {
					autoStop = "10m"
				}
				res, m := s.launch(map[string]any{"offer_id": cheap, "image_id": image, "auto_stop_after": autoStop})
				if m["status"] != "done" || m["ready"] != true {
					t.Fatalf("launch: %v", m)
				}
				want := []string{"ordered", "starting", "running", "ssh ready"}
				// The last notification may be written after the answer: give it a moment.
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
					if msgs, _ := progress.snapshot(); len(msgs) >= len(want) {
						break
					}
				}
				msgs, nums := progress.snapshot()
				if len(msgs) != len(want) {
					t.Fatalf("progress %q, want %q\n%s", msgs, want, s.stderr.String())
				}
				for i := range want {
					if !strings.HasPrefix(msgs[i], want[i]) || nums[i] != float64(i+1) {
						t.Fatalf("progress %q %v, want %q counting 1..4", msgs, nums, want)
					}
				}
				sshAnswers(t, m["ssh_command"].(string))
				if !strings.Contains(resultText(res), m["ssh_command"].(string)) {
					t.Errorf("the text lacks the ssh command: %s", resultText(res))
				}
				stop := m["auto_stop"].(map[string]any)
				wantBy := "gpu-mcp"
				if v.timer {
					wantBy = "vendor"
				}
				if stop["by"] != wantBy {
					t.Errorf("auto_stop %v, want by %s", stop, wantBy)
				}
				id := m["instance_id"].(string)
				got := s.ok("get_instance", map[string]any{"instance_id": id})["instance"].(map[string]any)
				if got["stops_at"] == nil {
					t.Errorf("get_instance does not show the auto-stop: %v", got)
				}
				listed := s.ok("list_instances", nil)["instances"].([]any)
				if i := slices.IndexFunc(listed, func(x any) bool { return x.(map[string]any)["id"] == id }); i < 0 || listed[i].(map[string]any)["stops_at"] == nil {
					t.Errorf("list_instances does not show the auto-stop of %s: %v", id, listed)
				}
				// auto_stop_after: stopped without anyone asking, a few seconds later.
				if v.timer {
					v.advance(11 * time.Minute)
				}
				w := s.ok("wait_instance", map[string]any{"instance_id": id, "until": "stopped", "timeout": "30s"})
				if w["reached"] != true {
					t.Fatalf("auto_stop_after did not stop %s: %v\n%s", id, w, s.stderr.String())
				}
			})

			t.Run("an instance that never runs is cleaned up and reported", func(t *testing.T) {
				v.emu.SetLaunchOutcome(local(cheap), emulated.LaunchNeverRuns)
				defer v.emu.SetLaunchOutcome(local(cheap), emulated.LaunchNormal)
				before := len(s.ok("list_instances", nil)["instances"].([]any))
				res, m := s.launch(map[string]any{"offer_id": cheap, "image_id": image, "wait_timeout": "5s"})
				atts := m["attempts"].([]any)
				att := atts[0].(map[string]any)
				if m["status"] != "failed" || m["ready"] != false || len(atts) != 1 || att["result"] != "not_running" || att["cleanup"] == "" {
					t.Fatalf("launch of a machine that never runs: %v", m)
				}
				if !strings.Contains(resultText(res), "billing now:") {
					t.Errorf("the text does not say what bills: %s", resultText(res))
				}
				id, _ := att["instance_id"].(string)
				// Stopped, then destroyed; or destroyed at once where the vendor allows
				// that of a booting instance (Chenyu, which cannot stop one).
				if cleanup, _ := att["cleanup"].(string); att["billing"] != "no" || (cleanup != "destroyed" && cleanup != "stopped, then destroyed") {
					t.Fatalf("%s cleanup: %v", v.name, att)
				}
				after := s.ok("list_instances", nil)["instances"].([]any)
				for _, x := range after {
					x := x.(map[string]any)
					if x["id"] == id && x["state"] != "deleting" {
						t.Fatalf("the stuck instance is still listed: %v", x)
					}
				}
				if len(after) > before+1 {
					t.Fatalf("%d instances before, %d after", before, len(after))
				}
			})

			t.Run("a sold-out offer falls back to the next matching one", func(t *testing.T) {
				v.emu.SetLaunchOutcome(local(dear), emulated.LaunchSoldOut)
				defer v.emu.SetLaunchOutcome(local(dear), emulated.LaunchNormal)
				dearImage := imageFor(t, s, dear)
				_, m := s.launch(map[string]any{"offer_id": dear, "image_id": dearImage, "fallback_offers": 2})
				atts := m["attempts"].([]any)
				if m["status"] != "done" || m["ready"] != true || len(atts) != 2 {
					t.Fatalf("fallback: %v", m)
				}
				first, second := atts[0].(map[string]any), atts[1].(map[string]any)
				if first["offer_id"] != dear || first["result"] != "refused" || first["billing"] != "no" ||
					second["offer_id"] == dear || second["result"] != "ready" {
					t.Fatalf("fallback attempts: %v", atts)
				}
				sshAnswers(t, m["ssh_command"].(string))
			})
		})
	}
}

// wait_instance follows a save_image to its end on each vendor, and a stop.
func TestStdioWaitInstanceAfterSaveImageAndStop(t *testing.T) {
	for _, v := range launchVendors(t) {
		t.Run(v.name, func(t *testing.T) {
			t.Parallel()
			s := startSession(t, append(slices.Clone(v.env), "GPU_MCP_POLL_INTERVAL=40ms"))
			var progress progressLog
			s.c.OnNotification(progress.handle)
			offer := offersOf(t, s, v.name)[0]["id"].(string)
			_, m := s.launch(map[string]any{"offer_id": offer, "image_id": imageFor(t, s, offer)})
			id := m["instance_id"].(string)
			saved := s.ok("save_image", map[string]any{"instance_id": id, "image_name": "ckpt-" + v.name})
			if saved["status"] != "confirmation_required" {
				t.Fatalf("save_image without token: %v", saved)
			}
			saved = s.ok("save_image", map[string]any{"instance_id": id, "image_name": "ckpt-" + v.name, "confirm_token": saved["confirmation_token"]})
			if saved["status"] != "done" {
				t.Fatalf("save_image: %v", saved)
			}
			args := map[string]any{"instance_id": id, "until": "image_saved", "timeout": "30s"}
			if img, _ := saved["image_id"].(string); img != "" {
				args["image_id"] = img
			} else {
				args["image_name"] = "ckpt-" + v.name
			}
			// Datenfab cannot report a saved image: the wait says so instead of "reached".
			w := s.ok("wait_instance", args)
			unconfirmed := vendorOf(t, v.name).Capabilities.ImageSaved == providers.SaveReportNone
			if w["reached"] == unconfirmed || (w["status"] == "cannot_be_confirmed") != unconfirmed {
				t.Fatalf("image_saved: %v\n%s", w, s.stderr.String())
			}
			if vendorOf(t, v.name).Capabilities.SaveImageStops {
				// Saving stopped the instance (Datenfab, Chenyu); start it again first.
				if w := s.ok("wait_instance", map[string]any{"instance_id": id, "until": "stopped", "timeout": "30s"}); w["reached"] != true {
					t.Fatalf("stopped after saving: %v", w)
				}
				st := s.ok("start_instance", map[string]any{"instance_id": id})
				if st["status"] == "confirmation_required" {
					s.ok("start_instance", map[string]any{"instance_id": id, "confirm_token": st["confirmation_token"]})
				}
				if w := s.ok("wait_instance", map[string]any{"instance_id": id, "until": "ssh_ready", "timeout": "30s"}); w["reached"] != true {
					t.Fatalf("ssh_ready after start: %v", w)
				}
			}
			stop := s.ok("stop_instance", map[string]any{"instance_id": id})
			s.ok("stop_instance", map[string]any{"instance_id": id, "confirm_token": stop["confirmation_token"]})
			before, _ := progress.snapshot()
			req := mcp.CallToolRequest{}
			req.Params.Name = "wait_instance"
			req.Params.Arguments = map[string]any{"instance_id": id, "until": "stopped", "timeout": "30s"}
			req.Params.Meta = &mcp.Meta{ProgressToken: "wait-1"}
			res, err := s.c.CallTool(context.Background(), req)
			if err != nil || res.IsError || structured(t, res)["reached"] != true {
				t.Fatalf("wait for stopped: %v %s", err, resultText(res))
			}
			eventually(t, "a progress notification of the wait", func() bool {
				after, _ := progress.snapshot()
				return len(after) > len(before)
			})
		})
	}
}

func vendorOf(t *testing.T, name string) providers.Vendor {
	t.Helper()
	i := slices.Index(vendors.Names(), name)
	if i < 0 {
		t.Fatalf("no vendor %s", name)
	}
	return vendors.All()[i]
}
