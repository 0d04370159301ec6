package main

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests hold GPU_MCP_MAX_HOURLY_SPEND under concurrent approved launches against the
// emulators, in one process and across two replicas on one PostgreSQL: the vendor's buy
// count says what was bought.

// pricedVendors are the vendors whose API publishes prices: a limit on the running total can
// admit a launch there.
func pricedVendors() []providers.Vendor {
	return slices.DeleteFunc(vendors.All(), func(v providers.Vendor) bool { return !v.Capabilities.PublishesPrices })
}

// hourlyPrice is the price per GPU-hour of offer, as list_gpu_offers shows it.
func hourlyPrice(t *testing.T, s *session, provider, offer string) float64 {
	t.Helper()
	m := s.ok("list_gpu_offers", map[string]any{"provider": provider, "billing": "hourly", "limit": 100})
	for _, o := range m["offers"].([]any) {
		if o := o.(map[string]any); o["id"] == offer {
			if p, ok := o["price_per_gpu_hour"].(float64); ok {
				return p
			}
		}
	}
	t.Fatalf("offer %s has no hourly price: %v", offer, m)
	return 0
}

// billingNow is what the instances that may bill cost per hour now, on every provider s has,
// each by its provider's billing states (list_providers).
func billingNow(t *testing.T, s *session) float64 {
	t.Helper()
	bills := map[string][]any{}
	for _, p := range s.ok("list_providers", nil)["providers"].([]any) {
		p := p.(map[string]any)
		bills[p["name"].(string)] = p["billing_states"].([]any)
	}
	var sum float64
	for _, in := range s.ok("list_instances", nil)["instances"].([]any) {
		in := in.(map[string]any)
		if !slices.Contains(bills[in["provider"].(string)], in["state"]) {
			continue
		}
		p, ok := in["price_per_hour"].(float64)
		if !ok {
			t.Fatalf("an instance that may bill has no price, so no launch fits any hourly limit: %v", in)
		}
		sum += p
	}
	return sum
}

// roomForOne is a GPU_MCP_MAX_HOURLY_SPEND, in whole fen, that leaves room for exactly one
// more instance at price.
func roomForOne(t *testing.T, s *session, price float64) float64 {
	t.Helper()
	return math.Round((billingNow(t, s)+1.5*price)*100) / 100
}

// confirmConcurrently sends one confirmation per token at once, over the sessions in turn,
// and sorts the answers: how many were done, and the texts of the others.
func confirmConcurrently(t *testing.T, sessions []*session, args map[string]any, tokens []string) (int, []string) {
	t.Helper()
	var mu sync.Mutex
	done, refused := 0, []string{}
	var wg sync.WaitGroup
	for i, tok := range tokens {
		s := sessions[i%len(sessions)]
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "launch_instance", withToken(args, tok)
			res, err := s.c.CallTool(ctx, req)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				refused = append(refused, "protocol error: "+err.Error())
			case !res.IsError && statusOf(res) == "done":
				done++
			default:
				refused = append(refused, resultText(res))
			}
		})
	}
	wg.Wait()
	return done, refused
}

// limitRefusal reports whether text is a refusal by GPU_MCP_MAX_HOURLY_SPEND with the figures.
func limitRefusal(text string, price, limit float64) bool {
	return strings.Contains(text, fmt.Sprintf("with this launch (%.2f) the total would be ", price)) &&
		strings.Contains(text, fmt.Sprintf("over the limit of %.2f CNY/hour (GPU_MCP_MAX_HOURLY_SPEND)", limit))
}

// Ten approved launches confirmed at once, with room under GPU_MCP_MAX_HOURLY_SPEND for
// exactly one: the vendor sees one buy, and nine are refused with the limit and the figures.
func TestConcurrentApprovedLaunchesBuyOnce(t *testing.T) {
	for _, v := range pricedVendors() {
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			emu, env := emulate(t, v, emulated.Options{})
			probe := startSession(t, env)
			offer, image := hourlyOffer(t, probe, v.Name)
			price := hourlyPrice(t, probe, v.Name, offer)
			limit := roomForOne(t, probe, price)
			s := startSession(t, append(env, fmt.Sprintf("GPU_MCP_MAX_HOURLY_SPEND=%.2f", limit)))
			args := map[string]any{"offer_id": offer, "image_id": image, "wait": false}
			const n = 10
			tokens := make([]string, n)
			for i := range tokens {
				tokens[i] = s.ok("launch_instance", args)["confirmation_token"].(string)
			}
			buys := func() int {
				return len(slices.DeleteFunc(emu.Requests(), func(r emulated.Recorded) bool {
					return !strings.EqualFold(r.Method, v.Endpoints.Buy.Method) || !strings.HasSuffix(r.Path, v.Endpoints.Buy.Path)
				}))
			}
			before := buys()
			done, refused := confirmConcurrently(t, []*session{s}, args, tokens)
			if bought := buys() - before; done != 1 || bought != 1 {
				t.Fatalf("%d launches done and %d bought, want 1 of each; refusals: %q", done, bought, refused)
			}
			for _, r := range refused {
				if !limitRefusal(r, price, limit) {
					t.Errorf("not refused by the limit with the figures: %s", r)
				}
			}
		})
	}
}

// The same across two replicas on one PostgreSQL and one cloud (gpu-mcp emulate): the
// confirmations are split over both, and the limit holds across them.
func TestConcurrentApprovedLaunchesBuyOnceAcrossReplicas(t *testing.T) {
	storeURL := statetest.PostgresURL(t)
	e := startEmulate(t)
	v := pricedVendors()[0]
	probe := startSession(t, e.env())
	offer, image := hourlyOffer(t, probe, v.Name)
	price := hourlyPrice(t, probe, v.Name, offer)
	limit := roomForOne(t, probe, price)
	env := append(e.env(), "GPU_MCP_STATE_URL="+storeURL, "GPU_MCP_AUTH_TOKEN="+testAuthToken,
		fmt.Sprintf("GPU_MCP_MAX_HOURLY_SPEND=%.2f", limit))
	replicas := []*netServer{startNetServer(t, "http", env), startNetServer(t, "http", env)}
	a := replicas[0].connect(nil)
	args := map[string]any{"offer_id": offer, "image_id": image, "wait": false}
	const n = 10
	tokens := make([]string, n)
	sessions := make([]*session, n)
	for i := range tokens {
		tokens[i] = a.ok("launch_instance", args)["confirmation_token"].(string)
		sessions[i] = replicas[i%2].connect(nil)
	}
	before := e.buys(v.Name)
	done, refused := confirmConcurrently(t, sessions, args, tokens)
	if bought := e.buys(v.Name) - before; done != 1 || bought != 1 {
		t.Fatalf("%d launches done and %d bought across two replicas, want 1 of each; refusals: %q", done, bought, refused)
	}
	for _, r := range refused {
		if !limitRefusal(r, price, limit) {
			t.Errorf("not refused by the limit with the figures: %s", r)
		}
	}
}

// GPU_MCP_MAX_UPFRONT refuses, on every vendor that can do them, a prepaid launch and a
// renewal that charge more at once (or an unknown amount), with the figures.
func TestUpfrontLimitOnEveryVendor(t *testing.T) {
	for _, v := range vendors.All() {
		prepaid := slices.DeleteFunc(slices.Clone(v.Capabilities.Billing), func(b providers.BillingMode) bool { return b == providers.BillingHourly })
		renews, _ := v.Capabilities.Supports(providers.ActionRenew)
		if len(prepaid) == 0 && !renews {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			t.Parallel()
			emu, env := emulate(t, v, emulated.Options{})
			s := startSession(t, append(env, "GPU_MCP_MAX_UPFRONT=1"))
			checked := 0
			refusedWithFigures := func(what, text string) {
				t.Helper()
				checked++
				over := regexp.MustCompile(`this ` + what + ` charges [0-9]+\.[0-9]{2} CNY at once, over the limit of 1\.00 CNY per launch or renewal \(GPU_MCP_MAX_UPFRONT\)`)
				unknown := "what this " + what + " charges at once is unknown (" + v.Name + " publishes no price for it), and an unknown charge counts as over the limit of 1.00 CNY (GPU_MCP_MAX_UPFRONT)"
				if !over.MatchString(text) && !strings.Contains(text, unknown) {
					t.Errorf("%s not refused by GPU_MCP_MAX_UPFRONT with the figures: %s", what, text)
				}
			}
			before := emu.Changes()
			for _, mode := range prepaid {
				m := s.ok("list_gpu_offers", map[string]any{"provider": v.Name, "billing": string(mode), "available_only": true, "limit": 100})
				offers, _ := m["offers"].([]any)
				if len(offers) == 0 {
					continue
				}
				offer := offers[0].(map[string]any)["id"].(string)
				image := firstID(t, s.ok("list_images", map[string]any{"offer_id": offer, "kind": "public"}), "images")
				refusedWithFigures("launch", s.fails("launch_instance", map[string]any{"offer_id": offer, "image_id": image, "billing": string(mode)}, "GPU_MCP_MAX_UPFRONT"))
			}
			if renews {
				seed := seedInstance(t, emu.Config, true, true, false)
				before = emu.Changes()
				refusedWithFigures("renewal", s.fails("renew_instance", map[string]any{"instance_id": seed.id, "periods": 1}, "GPU_MCP_MAX_UPFRONT"))
			}
			if checked == 0 || emu.Changes() != before {
				t.Fatalf("%d plans checked; a refused plan reached %s: %v", checked, v.Name, emu.Changes() != before)
			}
		})
	}
}
