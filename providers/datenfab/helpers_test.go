package datenfab

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/datenfab/dftest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
)

type logBuffer = wiretest.LogBuffer

type clock = wiretest.Clock

func newClock() *clock { return wiretest.NewClock(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)) }

// setup starts an emulator and an adapter pointed at it, logging at trace level into a buffer.
func setup(t *testing.T, opts dftest.Options) (*Provider, *dftest.Server, *logBuffer) {
	t.Helper()
	srv := dftest.NewServer(opts)
	t.Cleanup(srv.Close)
	logs := &logBuffer{}
	p := newAdapter(srv, srv.Credential(), logs)
	if opts.Now != nil {
		p.now = opts.Now
	}
	return p, srv, logs
}

func newAdapter(srv *dftest.Server, token string, logs *logBuffer) *Provider {
	log := zerolog.New(logs).Level(zerolog.TraceLevel)
	return New(Config{Token: token, Namespace: srv.Namespace(), BaseURL: srv.URL(), Logger: &log})
}

// mutations counts the requests that could change something at the vendor.
func mutations(srv *dftest.Server) int {
	n := 0
	for _, r := range srv.Requests() {
		if r.Method != "GET" {
			n++
		}
	}
	return n
}

// lastRequest returns the last recorded request with the method whose path ends in suffix.
func lastRequest(t *testing.T, srv *dftest.Server, method, suffix string) emulated.Recorded {
	t.Helper()
	reqs := srv.Requests()
	for i := len(reqs) - 1; i >= 0; i-- {
		if reqs[i].Method == method && strings.HasSuffix(reqs[i].Path, suffix) {
			return reqs[i]
		}
	}
	t.Fatalf("no %s request ending in %q among %d requests", method, suffix, len(reqs))
	return emulated.Recorded{}
}

// wantKind fails unless err is a *providers.Error of kind k from datenfab whose text contains
// every fragment.
func wantKind(t *testing.T, err error, k providers.ErrorKind, fragments ...string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want a *providers.Error of kind %s, got %T: %v", k, err, err)
	}
	if pe.Kind != k {
		t.Fatalf("want kind %s, got %s: %v", k, pe.Kind, err)
	}
	if pe.Provider != Name {
		t.Errorf("error names provider %q, want %q", pe.Provider, Name)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Errorf("error %q does not mention %q", err.Error(), f)
		}
	}
	return pe
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "datenfab", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const tfImage = "images.neolink-ai.com/matrixdc/tensorflow:2.15.0-python3.10-cuda12.1.0-cudnn8-devel-ubuntu22.04"

// launch launches an hourly RTX 4090 (SKU 66) and fails the test on error.
func launch(t *testing.T, p *Provider, name string) providers.LaunchResult {
	t.Helper()
	res, err := p.Launch(t.Context(), providers.LaunchSpec{OfferID: "host-cluster/66/1", ImageID: tfImage, Name: name})
	if err != nil {
		t.Fatalf("launch: %v", err)
	}
	return res
}

func get(t *testing.T, p *Provider, id string) providers.Instance {
	t.Helper()
	in, err := p.GetInstance(t.Context(), id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	return in
}

func ptr[T any](v T) *T { return &v }
