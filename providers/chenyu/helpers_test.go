package chenyu

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

// Catalog entries of the emulator used across tests.
const (
	gpu4090    = "gpu_12345678-1234-1234-1234-123456789012"
	gpu3080    = "gpu_23456789-2345-2345-2345-234567890123" // status 0: not available
	gpuA100    = "gpu_4b1d6f32-8c5e-4f90-ab2c-3d4e5f6a7b8c"
	marketImg  = "img_87654321-4321-4321-4321-210987654321"
	podPyTorch = "pod_12345678-1234-1234-1234-123456789012"
	podComfy   = "pod_7e4a9c65-bf81-4c23-9e5f-6a7b8c9d0e1f"
	sample     = cytest.SampleInstanceUUID
)

type clock = wiretest.Clock

func newClock() *clock { return wiretest.NewClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) }

type syncBuffer = wiretest.LogBuffer

type env struct {
	p   *Provider
	srv *cytest.Server
	log *syncBuffer
	clk *clock
}

// setup starts an emulator and an adapter wired to it, logging at debug level into a buffer.
// opts.Now is replaced by a shared fake clock.
func setup(t *testing.T, opts cytest.Options) env {
	t.Helper()
	clk := newClock()
	opts.Now = clk.Now
	srv := cytest.NewServer(opts)
	t.Cleanup(srv.Close)
	buf := &syncBuffer{}
	log := zerolog.New(buf).Level(zerolog.DebugLevel)
	p := New(Config{APIKey: srv.Credential(), BaseURL: srv.URL(), Logger: &log})
	p.now = clk.Now
	return env{p: p, srv: srv, log: buf, clk: clk}
}

// posts lists the POST requests received: Chenyu's mutations.
func posts(srv *cytest.Server) []emulated.Recorded {
	var out []emulated.Recorded
	for _, r := range srv.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

func paths(rs []emulated.Recorded) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Path)
	}
	return strings.Join(s, " ")
}

// wantKind fails unless err is a *providers.Error of kind, naming chenyu and containing every
// fragment in its text.
func wantKind(t *testing.T, err error, kind providers.ErrorKind, fragments ...string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	if pe.Kind != kind {
		t.Fatalf("kind %q, want %q: %v", pe.Kind, kind, err)
	}
	if pe.Provider != Name {
		t.Fatalf("provider %q, want %q", pe.Provider, Name)
	}
	if pe.Remedy == "" {
		t.Fatalf("no remedy in %v", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("error %q lacks %q", err.Error(), f)
		}
	}
	return pe
}

func mustInstance(t *testing.T, e env, id string) providers.Instance {
	t.Helper()
	in, err := e.p.GetInstance(t.Context(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return in
}

func loggerTo(buf *syncBuffer) *zerolog.Logger {
	l := zerolog.New(buf).Level(zerolog.DebugLevel)
	return &l
}
