package datenfab_test

// Benchmarks only (they run with -bench, never in `go test`): the cost of decoding and
// normalizing Datenfab's offer (SKU) and instance lists as they grow, through the adapter's
// real path (HTTP on loopback: /regions, then the region's SKUs or the cluster's instances;
// JSON decoding; normalization), with the documents' examples in testdata/datenfab replicated
// to 10, 100 and 1,000 items; and the round trips of a catalog read from the emulator when
// every request takes a while.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/gpu-mcp/gpu-mcp/providers/datenfab"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
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

// BenchmarkColdOffersWithLatency lists offers from the emulator (two regions) with every
// request delayed by 20 ms, as a vendor far away answers: "regions-known" is each catalog read
// of a running adapter (its region list cached: one round trip, the regions' SKUs asked at
// once), "first-read" a new adapter's first (the regions, then their SKUs: two round trips).
func BenchmarkColdOffersWithLatency(b *testing.B) {
	const latency = 20 * time.Millisecond
	srv := dftest.NewServer(dftest.Options{})
	b.Cleanup(srv.Close)
	srv.SetFaults(emulated.Faults{Latency: latency})
	adapter := func() *datenfab.Provider {
		return datenfab.New(datenfab.Config{Token: srv.Credential(), Namespace: srv.Namespace(), BaseURL: srv.URL()})
	}
	read := func(b *testing.B, p *datenfab.Provider) {
		if offers, err := p.ListOffers(b.Context()); err != nil || len(offers) == 0 {
			b.Fatalf("%d offers, %v", len(offers), err)
		}
	}
	b.Run("regions-known", func(b *testing.B) {
		p := adapter()
		read(b, p)
		for b.Loop() {
			read(b, p)
		}
		b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(latency), "round-trips/op")
	})
	b.Run("first-read", func(b *testing.B) {
		for b.Loop() {
			read(b, adapter())
		}
		b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(latency), "round-trips/op")
	})
}
