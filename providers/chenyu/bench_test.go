package chenyu_test

// Benchmarks only (they run with -bench, never in `go test`): the cost of decoding and
// normalizing Chenyu's offer (GPU model) and instance lists as they grow, through the
// adapter's real path (HTTP on loopback, paged as the API pages: 50 items a page; JSON
// decoding; normalization; ListInstances also reads /gpu/list for the prices). The payloads
// are the documents' examples in testdata/chenyu, replicated to 10, 100 and 1,000 items.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
)

const vendorDir = "chenyu"

func benchProvider(tb testing.TB, bodies map[string]func(*http.Request) []byte) *chenyu.Provider {
	return chenyu.New(chenyu.Config{APIKey: "bench-key", BaseURL: serveJSON(tb, bodies)})
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
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			gpus := replicate(b, "gpu_list.json", []string{"data", "gpu_list"}, "gpu_uuid", n)
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
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("items=%d", n), func(b *testing.B) {
			gpus := replicate(b, "gpu_list.json", []string{"data", "gpu_list"}, "gpu_uuid", 1)
			insts := replicate(b, "instance_list.json", []string{"data", "instance_list"}, "instance_uuid", n)
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

// replicate returns the testdata document name with the list found under keys (a path of
// object keys; none: the document is the list) grown to n items, by copying the document's
// items in turn; each copy gets a unique idKey (the original value plus "-<i>"), and a
// sibling "total"/"total_items"/"totalCount" field, when present, says n (in its own type).
func replicate(tb testing.TB, name string, keys []string, idKey string, n int) []byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", vendorDir, name))
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

// benchSizes are the list lengths of the decoding benchmarks.
var benchSizes = []int{10, 100, 1000}

// serveJSON starts a loopback server answering every path that ends with a key of bodies
// with that body; any other path gets 404. No auth check: only the decoding is measured.
func serveJSON(tb testing.TB, bodies map[string]func(r *http.Request) []byte) string {
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

func fixed(b []byte) func(*http.Request) []byte { return func(*http.Request) []byte { return b } }
