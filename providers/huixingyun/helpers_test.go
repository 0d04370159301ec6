package huixingyun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun"
	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

const (
	offer4090 = "geforce_rtx_4090_16u100m_106"
	offerA100 = "a100_80g_32u240m_105"
)

type syncBuffer = wiretest.LogBuffer

type env struct {
	srv  *hxytest.Server
	p    *huixingyun.Provider
	logs *syncBuffer
	ctx  context.Context
}

// setup starts an emulator and an adapter on it that logs everything to a buffer.
func setup(t *testing.T, opts hxytest.Options, cfg ...func(*huixingyun.Config)) *env {
	t.Helper()
	srv := hxytest.NewServer(opts)
	t.Cleanup(srv.Close)
	logs := &syncBuffer{}
	log := zerolog.New(logs).Level(zerolog.TraceLevel)
	c := huixingyun.Config{Token: srv.Credential(), BaseURL: srv.URL(), Logger: &log}
	for _, f := range cfg {
		f(&c)
	}
	return &env{srv: srv, p: huixingyun.New(c), logs: logs, ctx: context.Background()}
}

// newProvider is a second adapter on the same emulator (a fresh process, with no memory).
func (e *env) newProvider() *huixingyun.Provider {
	return huixingyun.New(huixingyun.Config{Token: e.srv.Credential(), BaseURL: e.srv.URL()})
}

// publicImage returns the local id of a public image usable with offer.
func (e *env) publicImage(t *testing.T, offer string) string {
	t.Helper()
	imgs, err := e.p.ListImages(e.ctx, providers.ImageQuery{OfferID: offer})
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range imgs {
		if im.Kind == providers.ImagePublic && strings.HasPrefix(im.Name, "ubuntu") {
			return im.ID
		}
	}
	t.Fatalf("no public ubuntu image for %s in %v", offer, imgs)
	return ""
}

// launch buys one instance and returns its gid.
func (e *env) launch(t *testing.T, offer string, gpus int, billing providers.BillingMode) string {
	t.Helper()
	res, err := e.p.Launch(e.ctx, providers.LaunchSpec{OfferID: offer, ImageID: e.publicImage(t, offer), GPUCount: gpus, Billing: billing})
	if err != nil {
		t.Fatal(err)
	}
	if res.InstanceID == "" {
		t.Fatalf("launch: no instance id in %+v", res)
	}
	return res.InstanceID
}

// status is the emulator's status of gid.
func (e *env) status(t *testing.T, gid string) string {
	t.Helper()
	in, ok := e.srv.Instance(gid)
	if !ok {
		t.Fatalf("emulator has no %s", gid)
	}
	return in.Status
}

// paths lists the paths of the requests received since index from.
func (e *env) paths(from int) []string {
	var out []string
	for _, r := range e.srv.Requests()[from:] {
		out = append(out, r.Path)
	}
	return out
}

// wantKind fails unless err is a *providers.Error of kind naming huixingyun and containing
// every one of parts in its text.
func wantKind(t *testing.T, err error, kind providers.ErrorKind, parts ...string) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("want a %s *providers.Error, got %T %v", kind, err, err)
	}
	if pe.Kind != kind {
		t.Fatalf("kind %s, want %s: %v", pe.Kind, kind, err)
	}
	if pe.Provider != huixingyun.Name {
		t.Errorf("provider %q", pe.Provider)
	}
	if pe.Remedy == "" {
		t.Errorf("no remedy in %v", err)
	}
	for _, s := range parts {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err.Error(), s)
		}
	}
	return pe
}

// fakeVendor is a scripted HuiXingYun: each path answers with a fixed status and body, and
// every request is counted.
type fakeVendor struct {
	mu      sync.Mutex
	answers map[string]fakeAnswer
	calls   []string
	headers []http.Header
	bodies  [][]byte
}

type fakeAnswer struct {
	status int
	body   string
}

func newFake(t *testing.T, answers map[string]fakeAnswer) (*fakeVendor, *huixingyun.Provider) {
	t.Helper()
	f := &fakeVendor{answers: answers}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body bytes.Buffer
		_, _ = body.ReadFrom(r.Body)
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.Path)
		f.headers = append(f.headers, r.Header.Clone())
		f.bodies = append(f.bodies, body.Bytes())
		a, ok := f.answers[r.URL.Path]
		f.mu.Unlock()
		if !ok {
			a = fakeAnswer{404, `{"message":"no such path"}`}
		}
		w.WriteHeader(a.status)
		_, _ = w.Write([]byte(a.body))
	}))
	t.Cleanup(ts.Close)
	return f, huixingyun.New(huixingyun.Config{Token: "fake-token-123", BaseURL: ts.URL})
}

func (f *fakeVendor) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if strings.HasSuffix(c, " "+path) {
			n++
		}
	}
	return n
}

func (f *fakeVendor) body(i int) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var m map[string]any
	_ = json.Unmarshal(f.bodies[i], &m)
	return m
}
