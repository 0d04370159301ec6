package state_test

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

// Each benchmark reports the median and the 99th percentile of one call (p50-ns, p99-ns)
// besides the mean; PostgreSQL needs GPU_MCP_TEST_POSTGRES_URL (make postgres).

func benchBackends(b *testing.B, fn func(b *testing.B, s state.Store)) {
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			fn(b, statetest.Open(b, be.fresh(b), state.Options{}))
		})
	}
}

// timed runs op b.N times and reports its latency percentiles.
func timed(b *testing.B, op func(i int) error) {
	durs := make([]time.Duration, b.N)
	b.ResetTimer()
	for i := range b.N {
		t0 := time.Now()
		err := op(i)
		durs[i] = time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(durs)
	pct := func(p float64) float64 { return float64(durs[int(p*float64(len(durs)-1))].Nanoseconds()) }
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
}

// BenchmarkSpendToken is the token check of every confirmed call: a digest spent for the
// first time (the common case: each token is spent once).
func BenchmarkSpendToken(b *testing.B) {
	benchBackends(b, func(b *testing.B, s state.Store) {
		exp := time.Now().Add(time.Hour)
		timed(b, func(i int) error {
			d := sha256.Sum256([]byte(strconv.Itoa(i)))
			fresh, err := s.SpendToken(ctx, hex.EncodeToString(d[:]), exp)
			if err == nil && !fresh {
				b.Fatal("a new digest was not fresh")
			}
			return err
		})
	})
}

// BenchmarkLaunchLedger is the ledger's write around one vendor call: the intent, then the
// step the vendor's answer brings (CreateLaunch + UpdateLaunch).
func BenchmarkLaunchLedger(b *testing.B) {
	benchBackends(b, func(b *testing.B, s state.Store) {
		timed(b, func(i int) error {
			key := "bench-" + strconv.Itoa(i)
			if _, err := s.CreateLaunch(ctx, state.Launch{Key: key, ArgsHash: "h", Provider: "chenyu", OfferID: "chenyu:o",
				ImageID: "chenyu:i", VendorName: "gpu-mcp-" + key, Owner: "bench"}); err != nil {
				return err
			}
			_, err := s.UpdateLaunch(ctx, key, func(l *state.Launch) error {
				l.Status, l.InstanceID = state.LaunchCreated, "chenyu:inst_"+strconv.Itoa(i)
				return nil
			})
			return err
		})
	})
}
