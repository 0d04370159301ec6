package tools

// What the agent reads from the list tools (issue 18), on the demo's emulators, through an
// MCP client.

import (
	"context"
	"encoding/json"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/rs/zerolog"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/providers/fakecloud"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// demoDeps is what --demo wires: every vendor's emulator (the test-only vendor left out) and
// the adapters on them.
func demoDeps(t *testing.T) *Deps {
	t.Helper()
	var ps []providers.Provider
	for _, v := range vendors.All() {
		if v.Name == fakecloud.Vendor.Name {
			continue
		}
		emu, err := vendors.Emulate(v, emulated.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(emu.Close)
		ps = append(ps, emu.Config.Provider(providers.HTTPOptions{}, nil))
	}
	return depsOn(t, ps...)
}

func depsOn(t *testing.T, ps ...providers.Provider) *Deps {
	t.Helper()
	reg, err := providers.NewRegistry(ps...)
	if err != nil {
		t.Fatal(err)
	}
	return &Deps{Providers: reg, Demo: true, Confirmer: testConfirmer(t, "test-secret"), Log: zerolog.New(io.Discard), VendorTimeout: 10 * time.Second}
}

// clientOf is an initialized MCP client of a server on d.
func clientOf(t *testing.T, d *Deps) *harness {
	t.Helper()
	return &harness{t: t, deps: d, c: inProcessClient(t, d, "lists-test", nil)}
}

// ok calls a tool that must not fail and returns its text and structured content.
func (h *harness) ok(name string, args map[string]any) (string, map[string]any) {
	h.t.Helper()
	res, m := h.call(name, args)
	if res.IsError {
		h.t.Fatalf("%s %v: %s", name, args, text(res))
	}
	return text(res), m
}

func items(m map[string]any, key string) []map[string]any {
	var out []map[string]any
	for _, it := range m[key].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

func TestOffersAreCheapestFirstAcrossBillingModes(t *testing.T) {
	h := clientOf(t, demoDeps(t))
	txt, m := h.ok("list_gpu_offers", map[string]any{"limit": 500})
	offers := items(m, "offers")
	last, priced := 0.0, 0
	for _, o := range offers {
		eq, ok := o["hourly_equivalent"].(float64)
		if !ok {
			continue // unpriced offers, last
		}
		if priced != slices.IndexFunc(offers, func(x map[string]any) bool { return x["id"] == o["id"] }) {
			t.Fatalf("a priced offer after an unpriced one: %v", o["id"])
		}
		priced++
		if eq < last {
			t.Fatalf("%v at %.4f/GPU-hour comes after one at %.4f", o["id"], eq, last)
		}
		last = eq
	}
	// The demo's monthly RTX 4090 (1180 CNY a month, 1.64 an hour) comes before hourly offers
	// dearer than that, and the text says how prepaid prices are compared.
	monthly := slices.IndexFunc(offers, func(o map[string]any) bool { return o["id"] == "datenfab:host-cluster/67/2" })
	hourly := slices.IndexFunc(offers, func(o map[string]any) bool { return o["id"] == "datenfab:host-cluster/66/1" })
	if monthly < 0 || hourly < 0 || monthly > hourly || offers[monthly]["hourly_equivalent"] != 1.6389 {
		t.Fatalf("monthly at %d (%v), 2.20/h at %d", monthly, offers[monthly]["hourly_equivalent"], hourly)
	}
	if !strings.Contains(txt, "cheapest first by CNY per GPU-hour (prepaid prices spread over their period: day 24 h, week 168 h, month 720 h)") ||
		!strings.Contains(txt, "1180.00/month (1.64/h)") {
		t.Fatalf("the text does not say how offers are sorted:\n%s", txt)
	}
	// A price limit compares the same figure: 1.64 per hour is under 2.
	_, m = h.ok("list_gpu_offers", map[string]any{"max_price_per_hour": 2, "limit": 500})
	if !slices.ContainsFunc(items(m, "offers"), func(o map[string]any) bool { return o["id"] == "datenfab:host-cluster/67/2" }) {
		t.Fatalf("the monthly offer at 1.64/h is left out by max_price_per_hour 2: %v", m["offers"])
	}
}

func TestRegionFiltersMatchNamesAndIdsAndNameWhatExists(t *testing.T) {
	h := clientOf(t, demoDeps(t))
	regionsOf := func(m map[string]any, key string) map[string]bool {
		out := map[string]bool{}
		for _, it := range items(m, key) {
			out[orDash(it["region"].(string))+"|"+orDash(it["region_name"].(string))] = true
		}
		return out
	}
	for _, tc := range []struct {
		region string
		want   []string
	}{
		{"beijing", []string{"北京一区|Beijing Zone 1"}},
		{"BEIJING zone", []string{"北京一区|Beijing Zone 1"}},
		{"北京", []string{"北京一区|Beijing Zone 1"}},
		{"105", []string{"105|zone 105"}},
		{"Zone 10", []string{"102|zone 102", "105|zone 105", "106|zone 106"}},
	} {
		t.Run(tc.region, func(t *testing.T) {
			_, m := h.ok("list_gpu_offers", map[string]any{"region": tc.region, "limit": 500})
			got := regionsOf(m, "offers")
			want := map[string]bool{}
			for _, w := range tc.want {
				want[w] = true
			}
			if len(got) != len(want) || !mapsEqual(got, want) {
				t.Fatalf("regions %v, want %v", got, want)
			}
		})
	}
	// Human names in the table; HuiXingYun's zones, which its documents name by number only,
	// as zones.
	txt, _ := h.ok("list_gpu_offers", map[string]any{"limit": 500})
	if !strings.Contains(txt, "| Beijing Zone 1 ") || !strings.Contains(txt, "| zone 105 ") {
		t.Fatalf("region names missing from the table:\n%s", txt)
	}

	// No match: an empty list, no error, and a hint that names the regions there are.
	for _, tool := range []string{"list_gpu_offers", "list_images"} {
		txt, m := h.ok(tool, map[string]any{"region": "mars"})
		hint, _ := m["hint"].(string)
		key := map[string]string{"list_gpu_offers": "offers", "list_images": "images"}[tool]
		if len(items(m, key)) != 0 || !strings.Contains(hint, `"mars"`) || !strings.Contains(hint, "Beijing Zone 1 (北京一区)") ||
			!strings.Contains(hint, "zone 105") || !strings.Contains(txt, "Beijing Zone 1 (北京一区)") {
			t.Fatalf("%s: hint %q, text %s", tool, hint, txt)
		}
	}
	// An unknown GPU likewise names the models.
	_, m := h.ok("list_gpu_offers", map[string]any{"gpu": "b200"})
	if hint, _ := m["hint"].(string); !strings.Contains(hint, `"b200"`) || !strings.Contains(hint, "NVIDIA H800") {
		t.Fatalf("gpu hint %q", hint)
	}

	// list_images narrows by the same names: only zone 105's images where a region is said.
	_, m = h.ok("list_images", map[string]any{"region": "zone 105", "limit": 500})
	hxy := 0
	for _, im := range items(m, "images") {
		if r := im["region"]; r != nil && r != "105" {
			t.Fatalf("image of region %v for zone 105: %v", r, im["id"])
		}
		if im["provider"] == "huixingyun" && im["region"] == "105" {
			hxy++
		}
		if im["provider"] == "datenfab" {
			t.Fatalf("datenfab has no zone 105, yet its image %v is listed", im["id"])
		}
	}
	if hxy == 0 {
		t.Fatalf("no HuiXingYun image of zone 105: %v", m["images"])
	}
}

func mapsEqual(a, b map[string]bool) bool {
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return len(a) == len(b)
}

// tableRE finds the lines of a text table.
var tableRE = regexp.MustCompile(`(?m)^[^\n]* \| [^\n]*$`)

func TestListTablesAreAligned(t *testing.T) {
	h := clientOf(t, demoDeps(t))
	for _, call := range []struct {
		tool string
		args map[string]any
	}{
		{"list_gpu_offers", map[string]any{"limit": 500}},
		{"list_images", map[string]any{"limit": 500}},
		{"list_instances", map[string]any{}},
	} {
		txt, _ := h.ok(call.tool, call.args)
		lines := tableRE.FindAllString(txt, -1)
		if len(lines) < 2 {
			t.Fatalf("%s: no table:\n%s", call.tool, txt)
		}
		// Every separator sits at the same column on every line, Chinese counted double.
		cols := func(line string) []int {
			var at []int
			w := 0
			for i, r := range line {
				if strings.HasPrefix(line[i:], " | ") {
					at = append(at, w)
				}
				w += displayWidth(string(r))
			}
			return at
		}
		want := cols(lines[0])
		for _, l := range lines[1:] {
			if got := cols(l); !slices.Equal(got, want) {
				t.Fatalf("%s: separators at %v, header's at %v:\n%s\n%s", call.tool, got, want, lines[0], l)
			}
		}
	}
}

func TestTimesAreUTC(t *testing.T) {
	d := demoDeps(t)
	// The confirmer's clock in Beijing time, as on a server in that zone.
	d.Confirmer.now = func() time.Time { return time.Now().In(time.FixedZone("CST", 8*3600)) }
	h := clientOf(t, d)
	// HuiXingYun's own images carry their creation time in Beijing time, unlabelled.
	txt, m := h.ok("list_images", map[string]any{"provider": "huixingyun", "kind": "private"})
	ims := items(m, "images")
	if len(ims) == 0 || ims[0]["created_at"] != "2024-06-20T09:46:58Z" || ims[0]["description"] != nil {
		t.Fatalf("own image %v", ims)
	}
	if !strings.Contains(txt, "created 2024-06-20 09:46Z") || strings.Contains(txt, "17:46") {
		t.Fatalf("text time not in UTC:\n%s", txt)
	}
	// A plan's expiry, whatever the server's zone.
	_, m = h.ok("stop_instance", map[string]any{"instance_id": "chenyu:" + cytest.SampleInstanceUUID})
	if exp, _ := m["expires_at"].(string); !strings.HasSuffix(exp, "Z") {
		t.Fatalf("expires_at %q is not UTC", exp)
	}
}

func TestListsDefaultToAShortPageWithATotalAndHowToGetMore(t *testing.T) {
	h := clientOf(t, demoDeps(t))
	for _, tc := range []struct {
		tool, key string
		page      int
	}{
		{"list_gpu_offers", "offers", defaultOfferPage},
		{"list_images", "images", defaultImagePage},
	} {
		txt, m := h.ok(tc.tool, map[string]any{})
		total := int(m["matched"].(float64))
		if len(items(m, tc.key)) != tc.page || total <= tc.page || m["next_offset"] != float64(tc.page) {
			t.Fatalf("%s: %d shown of %v, next_offset %v", tc.tool, len(items(m, tc.key)), total, m["next_offset"])
		}
		if !strings.Contains(txt, "(showing 1-"+strconv.Itoa(tc.page)+")") || !strings.Contains(txt, "call again with offset="+strconv.Itoa(tc.page)) {
			t.Fatalf("%s: the text does not say how to get more:\n%s", tc.tool, txt)
		}
		// Page by page, every item once, in the order of one long page.
		_, all := h.ok(tc.tool, map[string]any{"limit": 500})
		var ids []any
		for off := 0; off < total; {
			_, m := h.ok(tc.tool, map[string]any{"offset": off})
			for _, it := range items(m, tc.key) {
				ids = append(ids, it["id"])
			}
			next, more := m["next_offset"].(float64)
			if !more {
				break
			}
			off = int(next)
		}
		var want []any
		for _, it := range items(all, tc.key) {
			want = append(want, it["id"])
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("%s: pages give %v, one page %v", tc.tool, ids, want)
		}
	}
}

func TestListProvidersIsShortWithDetailsOnRequest(t *testing.T) {
	h := clientOf(t, demoDeps(t))
	txt, m := h.ok("list_providers", map[string]any{})
	for _, p := range items(m, "providers") {
		if p["notes"] != nil {
			t.Fatalf("notes in the short answer: %v", p)
		}
	}
	if hint, _ := m["hint"].(string); !strings.Contains(hint, "details=true") || !strings.Contains(txt, "details=true") {
		t.Fatalf("the short answer does not say how to get the notes: %v\n%s", m["hint"], txt)
	}
	txt, m = h.ok("list_providers", map[string]any{"details": true})
	for _, p := range items(m, "providers") {
		if notes, _ := p["notes"].([]any); len(notes) == 0 || !strings.Contains(txt, "note: ") {
			t.Fatalf("%v: no notes with details=true", p["name"])
		}
	}
}

// TestDefaultListAnswersFitAnAgentsBudget measures what the server sends for each list tool
// called without arguments on the demo: the JSON-RPC answer, text and structured content.
func TestDefaultListAnswersFitAnAgentsBudget(t *testing.T) {
	srv := NewServer(demoDeps(t), "test")
	ctx := context.Background()
	send := func(msg string) []byte {
		t.Helper()
		b, err := json.Marshal(srv.HandleMessage(ctx, []byte(msg)))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	send(`{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`)
	for _, tool := range []string{"list_gpu_offers", "list_images", "list_providers"} {
		b := send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}}}`)
		var r struct {
			Result mcp.CallToolResult `json:"result"`
		}
		if err := json.Unmarshal(b, &r); err != nil || r.Result.IsError || r.Result.StructuredContent == nil {
			t.Fatalf("%s: %s", tool, b)
		}
		if len(b) >= 4096 {
			t.Errorf("%s: %d bytes, want under 4 KB:\n%s", tool, len(b), b)
		}
	}
}

func TestACutChenyuListIsReported(t *testing.T) {
	emu := cytest.NewServer(cytest.Options{ExtraGPUModels: 5200})
	t.Cleanup(emu.Close)
	h := clientOf(t, depsOn(t, chenyu.New(chenyu.Config{APIKey: emu.Credential(), BaseURL: emu.URL()})))
	txt, m := h.ok("list_gpu_offers", map[string]any{})
	errs, _ := m["errors"].([]any)
	if m["matched"] != 5000.0 || len(errs) != 1 {
		t.Fatalf("matched %v, errors %v", m["matched"], errs)
	}
	e := errs[0].(map[string]any)
	if e["provider"] != "chenyu" || e["incomplete"] != true || !strings.Contains(e["error"].(string), "only 5000 of 5207 read") ||
		!strings.Contains(txt, "! incomplete: chenyu: list GPU models: only 5000 of 5207 read") {
		t.Fatalf("the cut list is not reported: %v\n%s", e, txt)
	}
}
