package datenfab_test

// Benchmarks only (they run with -bench, never in `go test`): the cost of decoding and
// normalizing Datenfab's offer (SKU) and instance lists as they grow, through the adapter's
// real path (HTTP on loopback: /regions, then the region's SKUs or the cluster's instances;
// JSON decoding; normalization). The payloads are the documents' examples in
// testdata/datenfab, replicated to 10, 100 and 1,000 items.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
)

const vendorDir = "datenfab"

func benchProvider(tb testing.TB, bodies map[string]func(*http.Request) []byte) *datenfab.Provider {
	tb.Helper()
	regions, err := os.ReadFile(filepath.Join("..", "..", "testdata", vendorDir, "regions.json"))
	if err != nil {
		tb.Fatal(err)
	}
	bodies["/regions"] = wiretest.Fixed(regions)
	return datenfab.New(datenfab.Config{Token: "bench-token", Namespace: "bench", BaseURL: wiretest.ServeJSON(tb, bodies)})
}

func BenchmarkListOffers(b *testing.B) {
	for _, n := range wiretest.BenchSizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			p := benchProvider(b, map[string]func(*http.Request) []byte{
				"/skus/computings": wiretest.Fixed(wiretest.Replicate(b, vendorDir, "skus.json", nil, "skusID", n)),
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
				"/instances": wiretest.Fixed(wiretest.Replicate(b, vendorDir, "list_response.json", []string{"nodes"}, "name", n)),
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
