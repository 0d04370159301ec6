package main

import (
	"context"
	"io"
	"maps"
	"slices"
	"sync"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/vendors"
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

// TestElicitationAgainstTheEmulators runs every guarded tool that a vendor of the list can
// do with a client that can ask its human, against that vendor's emulator: accept reaches
// the vendor and changes the instance, decline and cancel send it nothing.
func TestElicitationAgainstTheEmulators(t *testing.T) {
	answers := []struct {
		action  mcp.ElicitationResponseAction
		content any
		runs    bool
	}{
		{mcp.ElicitationResponseActionAccept, map[string]any{"approve": true}, true},
		{mcp.ElicitationResponseActionDecline, nil, false},
		{mcp.ElicitationResponseActionCancel, nil, false},
	}
	type setup struct {
		prepaid bool // billed by a longer period than the hour (renew needs one)
		stopped bool
	}
	cases := []struct {
		tool   string
		action providers.Action
		setup  *setup // the instance the tool acts on; nil for launch
		args   func(seed seeded) map[string]any
		after  providers.State // the instance's state once the action ran ("": not checked)
	}{
		{"launch_instance", providers.ActionLaunch, nil,
			func(s seeded) map[string]any {
				return map[string]any{"offer_id": s.offer, "image_id": s.image, "wait": false}
			}, ""},
		{"start_instance", providers.ActionStart, &setup{stopped: true}, idArgs, providers.StateRunning},
		{"stop_instance", providers.ActionStop, &setup{}, idArgs, providers.StateStopped},
		{"restart_instance", providers.ActionRestart, &setup{}, idArgs, ""},
		{"save_image", providers.ActionSaveImage, &setup{},
			func(s seeded) map[string]any { return map[string]any{"instance_id": s.id, "image_name": "asked-first"} }, ""},
		{"renew_instance", providers.ActionRenew, &setup{prepaid: true},
			func(s seeded) map[string]any { return map[string]any{"instance_id": s.id, "periods": 1} }, ""},
		{"destroy_instance", providers.ActionDestroy, &setup{stopped: true}, idArgs, ""},
	}
	for _, v := range vendors.All() {
		for _, c := range cases {
			if ok, _ := v.Capabilities.Supports(c.action); !ok {
				continue
			}
			for _, a := range answers {
				t.Run(v.Name+"/"+c.tool+"/"+string(a.action), func(t *testing.T) {
					emu, _ := emulate(t, v, emulated.Options{})
					seed := seedInstance(t, emu.Config, c.setup != nil, c.setup != nil && c.setup.prepaid, c.setup != nil && c.setup.stopped)
					h := &human{action: a.action, content: a.content}
					c2 := elicitingClient(t, emu, h)
					before := emu.Changes()
					req := mcp.CallToolRequest{}
					req.Params.Name = c.tool
					req.Params.Arguments = c.args(seed)
					res, err := c2.CallTool(context.Background(), req)
					if err != nil || res.IsError {
						t.Fatalf("call: %v %v", err, res)
					}
					if len(h.asked) != 1 {
						t.Fatalf("the human was asked %d times", len(h.asked))
					}
					if ran := emu.Changes() > before; ran != a.runs {
						t.Fatalf("%s: the action reached the vendor=%v, want %v", a.action, ran, a.runs)
					}
					if a.runs && c.after != "" {
						if in, err := seed.p.GetInstance(context.Background(), local(seed.id)); err != nil || in.State != c.after {
							t.Fatalf("after %s: %+v %v, want %s", c.tool, in, err, c.after)
						}
					}
				})
			}
		}
	}
}

func idArgs(s seeded) map[string]any { return map[string]any{"instance_id": s.id} }

// seeded is what seedInstance set up: an offer and image to launch from, and the instance.
type seeded struct {
	p                providers.Provider // the vendor's adapter, outside gpu-mcp's tools
	offer, image, id string             // qualified, as the tools take them
}

// seedInstance picks an available offer of one GPU (billed by a longer period than the hour
// when prepaid), a public image of it and, when launch, creates an instance of them through the
// adapter, outside gpu-mcp's tools, and stops it when stopped.
func seedInstance(t *testing.T, cfg providers.VendorConfig, launch, prepaid, stopped bool) seeded {
	t.Helper()
	ctx := context.Background()
	p := cfg.Provider(providers.HTTPOptions{}, nil)
	offers, err := p.ListOffers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range offers {
		billing := providers.BillingHourly
		if prepaid {
			i := slices.IndexFunc(o.Billing, func(b providers.BillingMode) bool { return b != providers.BillingHourly })
			if i < 0 {
				continue
			}
			billing = o.Billing[i]
		}
		if !o.Available || !slices.Contains(o.GPUCounts, 1) || !slices.Contains(o.Billing, billing) {
			continue
		}
		ims, err := p.ListImages(ctx, providers.ImageQuery{OfferID: o.ID})
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(ims, func(im providers.Image) bool { return im.Kind == providers.ImagePublic })
		if i < 0 {
			continue
		}
		s := seeded{p: p, offer: providers.QualifyID(p.Name(), o.ID), image: providers.QualifyID(p.Name(), ims[i].ID)}
		if !launch {
			return s
		}
		res, err := p.Launch(ctx, providers.LaunchSpec{OfferID: o.ID, ImageID: ims[i].ID, GPUCount: 1, Billing: billing})
		if err != nil || res.InstanceID == "" {
			t.Fatalf("seed launch: %v %+v", err, res)
		}
		s.id = providers.QualifyID(p.Name(), res.InstanceID)
		if stopped {
			if err := p.Stop(ctx, res.InstanceID); err != nil {
				t.Fatal(err)
			}
			if in, err := p.GetInstance(ctx, res.InstanceID); err != nil || in.State != providers.StateStopped {
				t.Fatalf("seed stop: %+v %v", in, err)
			}
		}
		return s
	}
	t.Fatalf("%s has no offer to seed an instance from (prepaid %v)", p.Name(), prepaid)
	return seeded{}
}

func elicitingClient(t *testing.T, emu *vendors.Emulated, h *human) *client.Client {
	t.Helper()
	env := maps.Clone(emu.Env)
	env["GPU_MCP_STATE_URL"] = state.MemoryURL
	cfg, _, err := loadConfig(nil, env)
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
