// Package wiretest helps the adapters' fuzz tests: an in-memory HTTP transport that answers
// each endpoint with a given status and body, the vendors' example payloads as seeds, and the
// checks every decoded result must pass whatever the vendor sent.
package wiretest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// Answer is what an endpoint answers.
type Answer struct {
	Status int // 0: 200
	Body   []byte
}

// Route matches requests: Method ("" any) and a path suffix.
type Route struct {
	Method string
	Suffix string
	Answer Answer
}

// Transport answers each request with the first route that matches it, else 404. It never
// touches the network.
type Transport []Route

// RoundTrip implements http.RoundTripper.
func (tr Transport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	a := Answer{Status: http.StatusNotFound, Body: []byte(`{"message":"no such route in the fuzz transport"}`)}
	for _, rt := range tr {
		if (rt.Method == "" || rt.Method == r.Method) && strings.HasSuffix(r.URL.Path, rt.Suffix) {
			a = rt.Answer
			break
		}
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	return &http.Response{
		StatusCode: a.Status, Status: http.StatusText(a.Status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(a.Body)),
		ContentLength: int64(len(a.Body)), Request: r,
	}, nil
}

// Client is an *http.Client on tr.
func (tr Transport) Client() *http.Client { return &http.Client{Transport: tr} }

// Statuses are the HTTP statuses a fuzz target picks from with one byte; 0 picks 200.
var Statuses = []int{200, 200, 200, 201, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503}

// Status is the status a fuzz byte picks.
func Status(b uint8) int { return Statuses[int(b)%len(Statuses)] }

// Testdata reads every *.json of testdata/<vendor>, from a package two levels below the
// repository root, by file name.
func Testdata(tb testing.TB, vendor string) map[string][]byte {
	tb.Helper()
	dir := filepath.Join("..", "..", "testdata", vendor)
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		tb.Fatalf("no example payloads in %s: %v", dir, err)
	}
	out := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			tb.Fatal(err)
		}
		out[filepath.Base(n)] = b
	}
	return out
}

// Sorted returns the payloads' names in order, so that seeds are added deterministically.
func Sorted(m map[string][]byte) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// CheckError fails unless err is nil, a *providers.Error of vendor with a kind and a message,
// or a *providers.Incomplete of vendor that says what was cut short and why.
func CheckError(t *testing.T, vendor string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if inc := providers.AsIncomplete(err); inc != nil {
		if inc.Provider != vendor || inc.Op == "" || inc.Reason == "" || !strings.HasPrefix(err.Error(), vendor+":") {
			t.Fatalf("incomplete list without its vendor, listing or reason: %#v", inc)
		}
		return
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("not a providers.Error: %#v", err)
	}
	if pe.Provider != vendor || pe.Kind == "" || pe.Message == "" || !strings.HasPrefix(err.Error(), vendor+":") {
		t.Fatalf("error without its vendor, kind or message: %#v", pe)
	}
}

// CheckJSON fails when v cannot be encoded, as a tool's structured result must be.
func CheckJSON(t *testing.T, v any) {
	t.Helper()
	if _, err := json.Marshal(v); err != nil {
		t.Fatalf("result cannot be encoded: %v", err)
	}
}

// checkID checks a vendor-local id: one the registry can qualify and take apart again.
func checkID(t *testing.T, vendor, what, id string) {
	t.Helper()
	_, local, err := providers.SplitID(providers.QualifyID(vendor, id))
	if strings.TrimSpace(id) == "" || strings.HasPrefix(id, vendor+":") || err != nil || local != id {
		t.Fatalf("%s id %q is not a vendor-local id (%v)", what, id, err)
	}
}

func checkPrice(t *testing.T, what string, v float64) {
	t.Helper()
	if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		t.Fatalf("%s price %v: not a price", what, v)
	}
}

// CheckOffers checks what the tools and the output schema rely on.
func CheckOffers(t *testing.T, vendor string, offers []providers.Offer) {
	t.Helper()
	for _, o := range offers {
		checkID(t, vendor, "offer", o.ID)
		if o.Provider != vendor || len(o.GPUCounts) == 0 || len(o.Billing) == 0 {
			t.Fatalf("offer %+v: no provider, GPU counts or billing modes", o)
		}
		if o.PricePerGPUHour != nil {
			checkPrice(t, o.ID, *o.PricePerGPUHour)
		}
		for _, p := range o.Prices {
			checkPrice(t, o.ID, p.CNY)
			if !p.Billing.Valid() {
				t.Fatalf("offer %s: price for %q", o.ID, p.Billing)
			}
		}
		for _, b := range o.Billing {
			if !b.Valid() {
				t.Fatalf("offer %s: billing %q", o.ID, b)
			}
		}
	}
	CheckJSON(t, offers)
}

var states = map[providers.State]bool{}

func init() {
	for _, s := range []providers.State{providers.StatePending, providers.StateStarting, providers.StateRunning,
		providers.StateRestarting, providers.StateStopping, providers.StateStopped, providers.StateSaving,
		providers.StateDeleting, providers.StateError, providers.StateUnknown} {
		states[s] = true
	}
}

// CheckInstances checks what the tools and the output schema rely on.
func CheckInstances(t *testing.T, vendor string, ins []providers.Instance) {
	t.Helper()
	for _, in := range ins {
		checkID(t, vendor, "instance", in.ID)
		if in.Provider != vendor || !states[in.State] {
			t.Fatalf("instance %s: provider %q, state %q", in.ID, in.Provider, in.State)
		}
		if in.Billing != "" && !in.Billing.Valid() {
			t.Fatalf("instance %s: billing %q", in.ID, in.Billing)
		}
		if in.PricePerHour != nil {
			checkPrice(t, in.ID, *in.PricePerHour)
		}
	}
	CheckJSON(t, ins)
}

// CheckImages checks what the tools and the output schema rely on.
func CheckImages(t *testing.T, vendor string, ims []providers.Image) {
	t.Helper()
	for _, im := range ims {
		checkID(t, vendor, "image", im.ID)
		switch im.Kind {
		case providers.ImagePublic, providers.ImagePrivate, providers.ImageApp:
		default:
			t.Fatalf("image %s: kind %q", im.ID, im.Kind)
		}
	}
	CheckJSON(t, ims)
}

// Replicate returns the testdata document name with the list found under keys (a path of
// object keys; none: the document is the list) grown to n items, by copying the document's
// items in turn; each copy gets a unique idKey (the original value plus "-<i>"), and a
// sibling "total"/"total_items"/"totalCount" field, when present, says n (in its own type).
func Replicate(tb testing.TB, vendor, name string, keys []string, idKey string, n int) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", vendor, name))
	if err != nil {
		tb.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers stay as printed, strings stay strings: the vendor's quirks survive
	var doc any
	if err := dec.Decode(&doc); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	grow := func(list []any) []any {
		if len(list) == 0 {
			tb.Fatalf("%s: the list under %v is empty", name, keys)
		}
		out := make([]any, n)
		for i := range out {
			var item map[string]any
			b, _ := json.Marshal(list[i%len(list)])
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			if err := d.Decode(&item); err != nil {
				tb.Fatal(err)
			}
			item[idKey] = fmt.Sprintf("%v-%d", item[idKey], i)
			out[i] = item
		}
		return out
	}
	if len(keys) == 0 {
		list, _ := doc.([]any)
		doc = grow(list)
	} else {
		obj, _ := doc.(map[string]any)
		for _, k := range keys[:len(keys)-1] {
			obj, _ = obj[k].(map[string]any)
		}
		if obj == nil {
			tb.Fatalf("%s: no object at %v", name, keys)
		}
		list, _ := obj[keys[len(keys)-1]].([]any)
		obj[keys[len(keys)-1]] = grow(list)
		for _, t := range []string{"total", "total_items", "totalCount"} {
			switch obj[t].(type) {
			case string:
				obj[t] = strconv.Itoa(n)
			case json.Number:
				obj[t] = n
			}
		}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchSizes are the list lengths of the decoding benchmarks.
var BenchSizes = []int{10, 100, 1000}

// ServeJSON starts a loopback server answering every path that ends with a key of bodies
// with that body; any other path gets 404. No auth check: only the decoding is measured.
func ServeJSON(tb testing.TB, bodies map[string]func(r *http.Request) []byte) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for suffix, body := range bodies {
			if strings.HasSuffix(r.URL.Path, suffix) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write(body(r))
				return
			}
		}
		http.NotFound(w, r)
	}))
	tb.Cleanup(srv.Close)
	return srv.URL
}

// Fixed answers every request with b.
func Fixed(b []byte) func(*http.Request) []byte { return func(*http.Request) []byte { return b } }

// Clock is a settable time source shared by an emulator and an adapter under test.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until it is moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// LogBuffer is a log sink safe for concurrent writes (adapters log from several goroutines).
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
