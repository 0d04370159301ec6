package tools

// Benchmarks only (they run with -bench, never in `go test`): tool calls through the MCP
// server in-process (mcp-go's in-process client, JSON-RPC and all), against the demo emulator
// of every vendor of the list on loopback; and the guarded path, whole and its confirmation
// tokens alone.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
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
	return inProcessClient(b, d, "bench", nil)
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

// BenchmarkToolsList is the server's side of tools/list: the request handled and its answer
// encoded, as a transport does before it writes it; bytes/answer is the answer's size.
func BenchmarkToolsList(b *testing.B) {
	srv := NewServer(&Deps{Confirmer: testConfirmer(b, "bench-secret"), Log: zerolog.New(io.Discard)}, "bench")
	answer := serverCall(b, srv, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	b.ReportAllocs()
	for b.Loop() {
		answer = serverCall(b, srv, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
	}
	b.ReportMetric(float64(len(answer)), "bytes/answer")
}

// serverCall hands one message to srv and encodes its answer, as the transports do.
func serverCall(b *testing.B, srv *server.MCPServer, msg string) []byte {
	out, err := json.Marshal(srv.HandleMessage(context.Background(), []byte(msg)))
	if err != nil || !bytes.Contains(out, []byte(`"result"`)) || bytes.Contains(out, []byte(`"isError":true`)) {
		b.Fatalf("%s: %v %s", msg, err, out)
	}
	return out
}

// manyOffers is a provider with n offers: five GPU models, 1 to 8 GPUs, three regions,
// hourly and monthly billing, every seventh without a price.
type manyOffers struct {
	*fakeProvider
	offers []providers.Offer
}

func newManyOffers(n int) *manyOffers {
	p := &manyOffers{fakeProvider: newFake("many")}
	models := []string{"NVIDIA RTX 4090", "NVIDIA A100 80G", "NVIDIA H800", "RTX 3090", "L40S"}
	regions := [][2]string{{"北京一区", "Beijing Zone 1"}, {"上海一区", "Shanghai Zone 1"}, {"105", "zone 105"}}
	for i := range n {
		o := providers.Offer{ID: fmt.Sprintf("o%06d", i), Provider: "many", GPUModel: models[i%len(models)], GPUCounts: []int{1 + i%8},
			VRAMGB: 24 + 8*(i%7), VCPUs: 16, RAMGB: 64, Region: regions[i%3][0], RegionName: regions[i%3][1],
			Billing: []providers.BillingMode{providers.BillingHourly}, Available: i%4 != 0}
		if i%7 != 0 {
			price := 1 + float64(i%1999)/100
			o.PricePerGPUHour = &price
			o.Prices = []providers.Price{{Billing: providers.BillingHourly, CNY: price}}
			if i%3 == 0 {
				o.Billing = append(o.Billing, providers.BillingMonthly)
				o.Prices = append(o.Prices, providers.Price{Billing: providers.BillingMonthly, CNY: price * 600})
			}
		}
		p.offers = append(p.offers, o)
	}
	return p
}

func (p *manyOffers) ListOffers(context.Context) ([]providers.Offer, error) {
	return slices.Clone(p.offers), nil
}

// BenchmarkListGPUOffersAtScale is list_gpu_offers on the server's side (handled and encoded,
// as BenchmarkToolsList) from a warm offer cache holding 25, 1,000 or 10,000 offers of one
// provider: the default page of all of them, and a filtered query (GPU model, region, price,
// availability).
func BenchmarkListGPUOffersAtScale(b *testing.B) {
	for _, n := range []int{25, 1000, 10000} {
		for _, q := range []struct{ name, args string }{
			{"all", `{}`},
			{"filtered", `{"gpu":"4090","region":"beijing","max_price_per_hour":15,"available_only":true,"limit":20}`},
		} {
			b.Run(fmt.Sprintf("offers=%d/%s", n, q.name), func(b *testing.B) {
				reg, err := providers.NewRegistry(newManyOffers(n))
				if err != nil {
					b.Fatal(err)
				}
				cache := NewOfferCache(OfferCacheOptions{TTL: time.Hour})
				b.Cleanup(cache.Close)
				srv := NewServer(&Deps{Providers: reg, Offers: cache, Confirmer: testConfirmer(b, "bench-secret"), Log: zerolog.New(io.Discard)}, "bench")
				msg := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_gpu_offers","arguments":` + q.args + `}}`
				answer := serverCall(b, srv, msg) // fills the cache
				if !bytes.Contains(answer, []byte(`"id":"many:o`)) {
					b.Fatalf("no offer: %s", answer)
				}
				b.ReportAllocs()
				for b.Loop() {
					answer = serverCall(b, srv, msg)
				}
				b.ReportMetric(float64(len(answer)), "bytes/answer")
			})
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
