package huixingyun_test

// Benchmarks only (they run with -bench, never in `go test`): the cost of decoding and
// normalizing HuiXingYun's offer and instance lists as they grow, through the adapter's real
// path (HTTP on loopback, JSON decoding, normalization). The payloads are the documents'
// examples in testdata/huixingyun, replicated to 10, 100 and 1,000 items.

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
)

const vendorDir = "huixingyun"

func benchProvider(tb testing.TB, bodies map[string]func(*http.Request) []byte) *huixingyun.Provider {
	return huixingyun.New(huixingyun.Config{Token: "bench-token", BaseURL: wiretest.ServeJSON(tb, bodies)})
}

func BenchmarkListOffers(b *testing.B) {
	for _, n := range wiretest.BenchSizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			p := benchProvider(b, map[string]func(*http.Request) []byte{
				"/gpu/product/list": wiretest.Fixed(wiretest.Replicate(b, vendorDir, "product_list.json", []string{"items"}, "gpu_type", n)),
			})
			b.ReportAllocs()
			for b.Loop() {
				offers, err := p.ListOffers(b.Context())
				if err != nil || len(offers) != n {
					b.Fatalf("%d offers, %v", len(offers), err)
				}
			}
		})
	}
}

func BenchmarkListInstances(b *testing.B) {
	for _, n := range wiretest.BenchSizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			p := benchProvider(b, map[string]func(*http.Request) []byte{
				"/gpu/instances/list": wiretest.Fixed(wiretest.Replicate(b, vendorDir, "instances_list.json", []string{"items"}, "gid", n)),
			})
			b.ReportAllocs()
			for b.Loop() {
				ins, err := p.ListInstances(b.Context())
				if err != nil || len(ins) != n {
					b.Fatalf("%d instances, %v", len(ins), err)
				}
			}
		})
	}
}
