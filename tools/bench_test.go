package tools

// Benchmarks only (they run with -bench, never in `go test`): tool calls through the MCP
// server in-process (mcp-go's in-process client, JSON-RPC and all), against the demo emulator
// of every vendor of the list on loopback; and the guarded path, whole and its confirmation
// tokens alone.

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// benchClient starts every vendor's emulator (transitions complete at once), the adapters on
// them with the default HTTP options, and an initialized in-process client; tune adjusts the
// Deps before the server is built.
func benchClient(b *testing.B, tune func(*Deps)) *client.Client {
	b.Helper()
	var ps []providers.Provider
	for _, v := range vendors.All() {
		emu, err := vendors.Emulate(v, emulated.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(emu.Close)
		ps = append(ps, emu.Config.Provider(providers.HTTPOptions{}, nil))
	}
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		b.Fatal(err)
	}
	d := &Deps{Providers: reg, Confirmer: testConfirmer(b, "bench-secret"), Log: zerolog.New(io.Discard), VendorTimeout: 10 * time.Second,
		Fleet: newTestFleet(b, reg)}
	if tune != nil {
		tune(d)
	}
	c, err := client.NewInProcessClient(NewServer(d, "bench"))
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "bench", Version: "1"}
	if _, err := c.Initialize(context.Background(), init); err != nil {
		b.Fatal(err)
	}
	return c
}

// benchCall calls a tool and returns its structured content; a protocol error or a tool
// error fails the benchmark.
func benchCall(b *testing.B, c *client.Client, name string, args map[string]any) map[string]any {
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(b.Context(), req)
	if err != nil {
		b.Fatalf("%s: %v", name, err)
	}
	if res.IsError {
		b.Fatalf("%s: %s", name, text(res))
	}
	var m map[string]any
	raw, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(raw, &m); err != nil {
		b.Fatalf("%s: structured content %s: %v", name, raw, err)
	}
	return m
}

func BenchmarkToolsList(b *testing.B) {
	c := benchClient(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		res, err := c.ListTools(b.Context(), mcp.ListToolsRequest{})
		if err != nil || len(res.Tools) == 0 {
			b.Fatalf("%v tools, %v", res, err)
		}
	}
}

// BenchmarkListGPUOffers calls list_gpu_offers across the emulators: warm (every iteration
// served by the offer cache), cold-nocache (no cache: every iteration asks every vendor, as
// GPU_MCP_OFFER_CACHE_TTL=0 does) and cold-invalidated (the cache is on but
// emptied before each call, so the cache's own bookkeeping is included).
func BenchmarkListGPUOffers(b *testing.B) {
	args := map[string]any{"limit": 50}
	check := func(b *testing.B, m map[string]any) {
		if offers, _ := m["offers"].([]any); len(offers) == 0 {
			b.Fatalf("no offers: %v", m)
		}
	}
	b.Run("warm", func(b *testing.B) {
		var cache *OfferCache
		c := benchClient(b, func(d *Deps) {
			cache = NewOfferCache(OfferCacheOptions{TTL: time.Hour, RefreshTimeout: 10 * time.Second})
			d.Offers = cache
		})
		b.Cleanup(cache.Close)
		check(b, benchCall(b, c, "list_gpu_offers", args)) // fills the cache
		b.ReportAllocs()
		for b.Loop() {
			check(b, benchCall(b, c, "list_gpu_offers", args))
		}
	})
	b.Run("cold-nocache", func(b *testing.B) {
		c := benchClient(b, nil)
		b.ReportAllocs()
		for b.Loop() {
			check(b, benchCall(b, c, "list_gpu_offers", args))
		}
	})
	b.Run("cold-invalidated", func(b *testing.B) {
		var cache *OfferCache
		c := benchClient(b, func(d *Deps) {
			cache = NewOfferCache(OfferCacheOptions{TTL: time.Hour, RefreshTimeout: 10 * time.Second})
			d.Offers = cache
		})
		b.Cleanup(cache.Close)
		b.ReportAllocs()
		for b.Loop() {
			for _, p := range vendors.Names() {
				cache.Invalidate(p)
			}
			check(b, benchCall(b, c, "list_gpu_offers", args))
		}
	})
}

// BenchmarkGuardedStopStart is the whole guarded path twice per iteration, on the first
// running instance the emulators list (Chenyu's sample instance): stop_instance without a
// token (precheck, plan, token issued), stop_instance with it (token verified, plan checked
// again, stop sent), then the same for start_instance, so that every iteration starts from a
// running instance. Four tool calls per iteration.
func BenchmarkGuardedStopStart(b *testing.B) {
	c := benchClient(b, nil)
	id := ""
	for _, in := range benchCall(b, c, "list_instances", map[string]any{"state": "running"})["instances"].([]any) {
		id = in.(map[string]any)["id"].(string)
		break
	}
	if id == "" {
		b.Fatal("no emulator lists a running instance")
	}
	guarded := func(tool string) {
		plan := benchCall(b, c, tool, map[string]any{"instance_id": id})
		token, _ := plan["confirmation_token"].(string)
		if plan["status"] != "confirmation_required" || token == "" {
			b.Fatalf("%s: no plan: %v", tool, plan)
		}
		done := benchCall(b, c, tool, map[string]any{"instance_id": id, "confirm_token": token})
		if done["status"] != "done" {
			b.Fatalf("%s: not done: %v", tool, done)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		guarded("stop_instance")
		guarded("start_instance")
	}
}

// BenchmarkConfirmer is issuing a token and verifying (spending) it: a unique insert into the
// store, in memory and in a SQLite file.
func BenchmarkConfirmer(b *testing.B) {
	for _, backend := range []struct{ name, url string }{{"memory", state.MemoryURL}, {"sqlite-file", statetest.SQLiteURL(b)}} {
		b.Run(backend.name, func(b *testing.B) {
			c := confirmerOn(b, statetest.Open(b, backend.url, state.Options{}), "bench-secret")
			args := []byte(`{"instance_id":"zeta:inst_12345678-1234-1234-1234-123456789012"}`)
			b.ReportAllocs()
			for b.Loop() {
				token, _ := c.Issue("stop_instance", args, "digest")
				if err := c.Verify(context.Background(), "stop_instance", args, "digest", token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
