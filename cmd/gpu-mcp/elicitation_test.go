package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

// human answers the server's elicitations with a fixed action and remembers the questions.
type human struct {
	mu      sync.Mutex
	action  mcp.ElicitationResponseAction
	content any
	asked   []string
}

func (h *human) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.asked = append(h.asked, req.Params.Message)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: h.action, Content: h.content}}, nil
}

// TestElicitationAgainstTheEmulator runs every guarded tool with a client that can ask its
// human, against the HuiXingYun emulator: accept changes the emulator's state, decline and
// cancel leave it untouched.
func TestElicitationAgainstTheEmulator(t *testing.T) {
	answers := []struct {
		action  mcp.ElicitationResponseAction
		content any
		runs    bool
	}{
		{mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}, true},
		{mcp.ElicitationResponseActionDecline, nil, false},
		{mcp.ElicitationResponseActionCancel, nil, false},
	}
	const offer = "geforce_rtx_4090_16u100m_106"
	type setup struct {
		billing providers.BillingMode
		stopped bool
	}
	cases := []struct {
		tool  string
		setup *setup // the instance the tool acts on; nil for launch
		args  func(gid string) map[string]any
		done  func(t *testing.T, emu *hxytest.Server, gid string, before int) bool // true when the action happened
	}{
		{"launch_instance", nil,
			func(string) map[string]any {
				return map[string]any{"offer_id": "huixingyun:" + offer, "image_id": "huixingyun:" + firstPublicImage(t, offer)}
			},
			func(t *testing.T, emu *hxytest.Server, _ string, before int) bool {
				return len(emu.Instances()) > before
			}},
		{"start_instance", &setup{providers.BillingHourly, true},
			func(gid string) map[string]any { return map[string]any{"instance_id": "huixingyun:" + gid} },
			func(t *testing.T, emu *hxytest.Server, gid string, _ int) bool {
				return status(emu, gid) == hxytest.StatusRunning
			}},
		{"stop_instance", &setup{providers.BillingHourly, false},
			func(gid string) map[string]any { return map[string]any{"instance_id": "huixingyun:" + gid} },
			func(t *testing.T, emu *hxytest.Server, gid string, _ int) bool {
				return status(emu, gid) == hxytest.StatusStopped
			}},
		{"restart_instance", &setup{providers.BillingHourly, false},
			func(gid string) map[string]any { return map[string]any{"instance_id": "huixingyun:" + gid} },
			func(t *testing.T, emu *hxytest.Server, gid string, before int) bool { return mutationsOf(emu) > before }},
		{"save_image", &setup{providers.BillingHourly, false},
			func(gid string) map[string]any {
				return map[string]any{"instance_id": "huixingyun:" + gid, "image_name": "asked-first"}
			},
			func(t *testing.T, emu *hxytest.Server, gid string, _ int) bool {
				for _, im := range emu.Images() {
					if im.Name == "asked-first" {
						return true
					}
				}
				return false
			}},
		{"renew_instance", &setup{providers.BillingMonthly, false},
			func(gid string) map[string]any {
				return map[string]any{"instance_id": "huixingyun:" + gid, "periods": 1}
			},
			func(t *testing.T, emu *hxytest.Server, gid string, before int) bool { return mutationsOf(emu) > before }},
		{"destroy_instance", &setup{providers.BillingHourly, true},
			func(gid string) map[string]any { return map[string]any{"instance_id": "huixingyun:" + gid} },
			func(t *testing.T, emu *hxytest.Server, gid string, _ int) bool {
				_, ok := emu.Instance(gid)
				return !ok
			}},
	}
	for _, c := range cases {
		for _, a := range answers {
			t.Run(c.tool+"/"+string(a.action), func(t *testing.T) {
				emu := hxytest.NewServer(hxytest.Options{})
				defer emu.Close()
				gid := ""
				if c.setup != nil {
					gid = seedInstance(t, emu, offer, c.setup.billing, c.setup.stopped)
				}
				h := &human{action: a.action, content: a.content}
				c2 := elicitingClient(t, emu, h)
				beforeInstances, beforeMutations := len(emu.Instances()), mutationsOf(emu)
				before := beforeMutations
				if c.tool == "launch_instance" {
					before = beforeInstances
				}
				req := mcp.CallToolRequest{}
				req.Params.Name = c.tool
				req.Params.Arguments = c.args(gid)
				res, err := c2.CallTool(context.Background(), req)
				if err != nil || res.IsError {
					t.Fatalf("call: %v %v", err, res)
				}
				if len(h.asked) != 1 {
					t.Fatalf("the human was asked %d times", len(h.asked))
				}
				if got := c.done(t, emu, gid, before); got != a.runs {
					t.Fatalf("%s: the action happened=%v, want %v", a.action, got, a.runs)
				}
				if !a.runs && mutationsOf(emu) != beforeMutations {
					t.Fatalf("%s: %d mutating requests reached the emulator", a.action, mutationsOf(emu)-beforeMutations)
				}
			})
		}
	}
}

func status(emu *hxytest.Server, gid string) string {
	in, _ := emu.Instance(gid)
	return in.Status
}

var hxyReads = map[string]bool{"/gpu/product/list": true, "/gpu/application/list": true, "/gpu/images/list": true, "/gpu/images/mine": true, "/gpu/instances/list": true}

func mutationsOf(emu *hxytest.Server) int {
	n := 0
	for _, r := range emu.Requests() {
		if !hxyReads[r.Path] {
			n++
		}
	}
	return n
}

// firstPublicImage asks a throw-away emulator for a public image of gpuType; the catalog is
// the same in every emulator.
func firstPublicImage(t *testing.T, gpuType string) string {
	emu := hxytest.NewServer(hxytest.Options{})
	defer emu.Close()
	p := huixingyun.New(huixingyun.Config{Token: emu.Credential(), BaseURL: emu.URL()})
	ims, err := p.ListImages(context.Background(), providers.ImageQuery{OfferID: gpuType})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range ims {
		if im.Kind == providers.ImagePublic {
			_, l, _ := strings.Cut(im.ID, ":")
			return l
		}
	}
	t.Fatal("no public image")
	return ""
}

// seedInstance creates an instance in the emulator through the adapter, outside gpu-mcp's tools.
func seedInstance(t *testing.T, emu *hxytest.Server, gpuType string, billing providers.BillingMode, stopped bool) string {
	t.Helper()
	ctx := context.Background()
	p := huixingyun.New(huixingyun.Config{Token: emu.Credential(), BaseURL: emu.URL()})
	res, err := p.Launch(ctx, providers.LaunchSpec{OfferID: gpuType, ImageID: firstPublicImage(t, gpuType), GPUCount: 1, Billing: billing})
	if err != nil || res.InstanceID == "" {
		t.Fatalf("seed launch: %v %+v", err, res)
	}
	if stopped {
		if err := p.Stop(ctx, res.InstanceID); err != nil {
			t.Fatal(err)
		}
	}
	return res.InstanceID
}

func elicitingClient(t *testing.T, emu *hxytest.Server, h *human) *client.Client {
	t.Helper()
	cfg, _, err := loadConfig(nil, map[string]string{"HUIXINGYUN_TOKEN": emu.Credential(), "HUIXINGYUN_BASE_URL": emu.URL()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	app, err := newApp(cfg, zerolog.New(io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(app.Close)
	c, err := client.NewInProcessClientWithOptions(app.Server, client.WithElicitationHandler(h))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "eliciting", Version: "1"}
	init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	return c
}
