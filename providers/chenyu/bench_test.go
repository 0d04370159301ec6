package chenyu_test

// Benchmarks only (they run with -bench, never in `go test`): the cost of decoding and
// normalizing Chenyu's offer (GPU model) and instance lists as they grow, through the
// adapter's real path (HTTP on loopback, paged as the API pages: 50 items a page; JSON
// decoding; normalization; ListInstances also reads /gpu/list for the prices). The payloads
// are the documents' examples in testdata/chenyu, replicated to 10, 100 and 1,000 items. And
// the round trips of a list from the emulator when every request takes a while.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

const vendorDir = "chenyu"

func benchProvider(tb testing.TB, bodies map[string]func(*http.Request) []byte) *chenyu.Provider {
	return chenyu.New(chenyu.Config{APIKey: "bench-key", BaseURL: wiretest.ServeJSON(tb, bodies)})
}

// paged serves doc (a Chenyu envelope whose data.<listKey> holds the items) page by page, as
// the page and page_size query parameters ask.
func paged(tb testing.TB, doc []byte, listKey string) func(*http.Request) []byte {
	tb.Helper()
	var env struct {
		Code int                        `json:"code"`
		Msg  string                     `json:"msg"`
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(doc, &env); err != nil {
		tb.Fatal(err)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(env.Data[listKey], &items); err != nil {
		tb.Fatal(err)
	}
	pages := map[string][]byte{}
	size := 50
	for page := 1; (page-1)*size <= len(items); page++ {
		lo, hi := (page-1)*size, min(page*size, len(items))
		b, _ := json.Marshal(items[lo:hi])
		env.Data[listKey] = b
		out, err := json.Marshal(env)
		if err != nil {
			tb.Fatal(err)
		}
		pages[strconv.Itoa(page)+"/"+strconv.Itoa(size)] = out
	}
	return func(r *http.Request) []byte {
		q := r.URL.Query()
		if b, ok := pages[q.Get("page")+"/"+q.Get("page_size")]; ok {
			return b
		}
		tb.Errorf("unexpected page %q of size %q", q.Get("page"), q.Get("page_size"))
		return []byte(`{"code":0,"msg":"ok","data":{}}`)
	}
}

func BenchmarkListOffers(b *testing.B) {
	for _, n := range wiretest.BenchSizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			gpus := wiretest.Replicate(b, vendorDir, "gpu_list.json", []string{"data", "gpu_list"}, "gpu_uuid", n)
			p := benchProvider(b, map[string]func(*http.Request) []byte{"/gpu/list": paged(b, gpus, "gpu_list")})
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
			gpus := wiretest.Replicate(b, vendorDir, "gpu_list.json", []string{"data", "gpu_list"}, "gpu_uuid", 1)
			insts := wiretest.Replicate(b, vendorDir, "instance_list.json", []string{"data", "instance_list"}, "instance_uuid", n)
			p := benchProvider(b, map[string]func(*http.Request) []byte{
				"/gpu/list":      paged(b, gpus, "gpu_list"),
				"/instance/list": paged(b, insts, "instance_list"),
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

// BenchmarkColdOffersWithLatency lists the GPU models of the emulator, with every request
// delayed by 20 ms as a vendor far away answers, at 7 models (one page) and 500 (ten pages
// of 50: the first, then the other nine four at a time, four round trips instead of ten).
func BenchmarkColdOffersWithLatency(b *testing.B) {
	const latency = 20 * time.Millisecond
	for _, extra := range []int{0, 493} {
		srv := cytest.NewServer(cytest.Options{ExtraGPUModels: extra})
		b.Cleanup(srv.Close)
		srv.SetFaults(emulated.Faults{Latency: latency})
		p := chenyu.New(chenyu.Config{APIKey: srv.Credential(), BaseURL: srv.URL()})
		b.Run(fmt.Sprintf("models=%d", 7+extra), func(b *testing.B) {
			for b.Loop() {
				if offers, err := p.ListOffers(b.Context()); err != nil || len(offers) != 7+extra {
					b.Fatalf("%d offers, %v", len(offers), err)
				}
			}
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(latency), "round-trips/op")
		})
	}
}
