package huixingyun

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// The document's examples live in testdata/huixingyun; see its README for the fixes made to
// the ones that were not valid JSON.
func readExample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "huixingyun", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeExample(t *testing.T, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(readExample(t, name), v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func TestDocumentProductListDecodesToOffers(t *testing.T) {
	var l productList
	decodeExample(t, "product_list.json", &l)
	if len(l.Items) != 3 || l.TotalItems != 3 {
		t.Fatalf("items %d total_items %d", len(l.Items), l.TotalItems)
	}
	free := offerOf(l.Items[0])
	if free.ID != "geforce_rtx_4090_free_102" || free.GPUModel != "NVIDIA 4090 免费版" || free.Region != "102" {
		t.Errorf("free offer: %+v", free)
	}
	if len(free.GPUCounts) != 1 || free.GPUCounts[0] != 1 || !free.Available || *free.AvailableGPUs != 1 {
		t.Errorf("free offer availability: counts %v available %v", free.GPUCounts, free.Available)
	}
	o := offerOf(l.Items[1])
	if o.VRAMGB != 24 || o.VCPUs != 16 || o.RAMGB != 100 || o.SystemDiskGB != 60 || o.DataDiskGB != 100 {
		t.Errorf("sizes: %+v", o)
	}
	if len(o.GPUCounts) != 8 || o.GPUCounts[7] != 8 {
		t.Errorf("GPUCounts = %v, want 1..8", o.GPUCounts)
	}
	if o.PricePerGPUHour != nil || len(o.Prices) != 0 {
		t.Errorf("HuiXingYun publishes no price, got %v %v", o.PricePerGPUHour, o.Prices)
	}
	if len(o.Billing) != 3 || o.Billing[0] != providers.BillingHourly || o.Billing[1] != providers.BillingDaily || o.Billing[2] != providers.BillingMonthly {
		t.Errorf("billing %v", o.Billing)
	}
}

func TestOfferGPUCountsCappedAtEightAndEmptyWhenSoldOut(t *testing.T) {
	big := offerOf(product{GPUType: "x", GPURemain: 20})
	if len(big.GPUCounts) != 8 || *big.AvailableGPUs != 20 {
		t.Errorf("counts %v available %d", big.GPUCounts, *big.AvailableGPUs)
	}
	none := offerOf(product{GPUType: "x", GPURemain: 0})
	if none.Available || none.GPUCounts == nil || len(none.GPUCounts) != 0 {
		t.Errorf("sold out: available %v counts %#v", none.Available, none.GPUCounts)
	}
}

func TestDocumentApplicationListDecodesToAppImages(t *testing.T) {
	var l appList
	decodeExample(t, "application_list.json", &l)
	if len(l.Items) != 6 || l.TotalItems != 6 {
		t.Fatalf("items %d", len(l.Items))
	}
	img := appImageOf(l.Items[0])
	if img.ID != "app:sd-webui" || img.Kind != providers.ImageApp || img.Name != "Stable Diffusion WebUI" {
		t.Errorf("app image %+v", img)
	}
	if !strings.Contains(img.Description, "16 vCPUs, 100 GB RAM") {
		t.Errorf("description %q", img.Description)
	}
}

func TestDocumentImageListsDecode(t *testing.T) {
	var pub imageList
	decodeExample(t, "images_list.json", &pub)
	if len(pub.Items) != 1 || pub.TotalItems != 5 {
		t.Fatalf("public: %d items, total %d", len(pub.Items), pub.TotalItems)
	}
	im := imageOf(pub.Items[0], providers.ImagePublic)
	if im.ID != "0917a7f0-1c03-11ef-9f0d-4faf337438da" || im.Region != "105" || im.CreatedAt != nil {
		t.Errorf("public image %+v", im)
	}
	var mine imageList
	decodeExample(t, "images_mine.json", &mine)
	own := imageOf(mine.Items[0], providers.ImagePrivate)
	want := time.Date(2024, 6, 20, 17, 46, 58, 0, cst)
	if own.Kind != providers.ImagePrivate || own.CreatedAt == nil || !own.CreatedAt.Equal(want) {
		t.Errorf("own image %+v", own)
	}
}

func TestDocumentInstanceListDecodes(t *testing.T) {
	var l instanceList
	decodeExample(t, "instances_list.json", &l)
	if len(l.Items) != 1 || l.Total != 1 {
		t.Fatalf("items %d total %d", len(l.Items), l.Total)
	}
	p := New(Config{Token: "t"})
	in := p.instanceOf(l.Items[0])
	if in.ID != "gpu-105b63811xxxxxa4cb082" || in.Provider != Name {
		t.Errorf("id %q", in.ID)
	}
	if in.State != providers.StateStopped || in.RawState != "Stopped" || in.Billing != providers.BillingMonthly {
		t.Errorf("state %s/%s billing %s", in.State, in.RawState, in.Billing)
	}
	if in.GPUModel != "NVIDIA 4090" || in.GPUCount != 1 || in.VCPUs != 16 || in.RAMGB != 100 || in.Region != "105" {
		t.Errorf("size %+v", in)
	}
	if in.Image != "0705测试" || in.OrderID != "20240705173xxxx20674" {
		t.Errorf("image %q order %q", in.Image, in.OrderID)
	}
	if in.CreatedAt == nil || in.CreatedAt.Format(time.RFC3339) != "2024-07-05T15:21:21+08:00" ||
		in.ExpiresAt == nil || in.ExpiresAt.Format(time.RFC3339) != "2024-08-04T15:23:27+08:00" {
		t.Errorf("times %v %v", in.CreatedAt, in.ExpiresAt)
	}
	// The example's port is a placeholder: it is left out instead of failing the list.
	c := in.Connection
	if c == nil || c.SSHHost != "xxxxx" || c.SSHPort != 0 || c.SSHUser != "root" || c.SSHPassword != "xxxx" || c.SSHCommand != "ssh root@xxxxx" {
		t.Errorf("connection %+v", c)
	}
}

func TestDocumentBuyAnswersGiveTheOrder(t *testing.T) {
	for _, f := range []string{"instances_buy_response.json", "application_buy_response.json"} {
		var a batchAnswer
		decodeExample(t, f, &a)
		order, err := buyOrder("launch", a)
		if err != nil || !strings.HasPrefix(order, "202407") {
			t.Errorf("%s: order %q err %v", f, order, err)
		}
	}
}

func TestDocumentBuyRequestsMatchOurEncoding(t *testing.T) {
	var doc, ours map[string]any
	decodeExample(t, "instances_buy_request.json", &doc)
	b, _ := json.Marshal(buyRequest{ImageID: "e9f1f1de-xxxx-xxxx-xxxx-f7011c487486", Num: reqInt{n: 1}, GPUType: "geforce_rtx_4090_16u100m_106",
		GPUCount: reqInt{n: 1}, PayUnit: reqInt{n: 4}, RoomName: "106"})
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	delete(doc, "extra_disk_cap") // optional; not sent
	for k, v := range doc {
		if ours[k] != v {
			t.Errorf("%s: ours %#v, document %#v", k, ours[k], v)
		}
	}
	doc = nil
	decodeExample(t, "application_buy_request.json", &doc)
	b, _ = json.Marshal(appBuyRequest{Num: reqInt{n: 1}, PayUnit: reqInt{n: 4}, AppType: "sd-webui"})
	ours = nil
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	for k, v := range doc {
		if ours[k] != v {
			t.Errorf("app %s: ours %#v, document %#v", k, ours[k], v)
		}
	}
	doc = nil
	decodeExample(t, "stop_request.json", &doc)
	b, _ = json.Marshal(stopRequest{GID: "gpu-105e085xxxxxf4940e799"})
	ours = nil
	_ = json.Unmarshal(b, &ours)
	if ours["card_less"] != doc["card_less"] || ours["gid"] != doc["gid"] {
		t.Errorf("stop: ours %v document %v", ours, doc)
	}
}

func TestDocumentActionAnswersConfirmTheirGids(t *testing.T) {
	cases := []struct {
		file, gid string
	}{
		{"stop_response.json", "gpu-101f5cxxxxxc554715bf"},
		{"restart_response.json", "gpu-101f5c582xxxx54715bf"},
		{"start_response.json", "gpu-101bc320xxxxxf58442686"},
		{"cardless_start_response.json", "gpu-101f5c58xxxxx554715bf"},
		{"rebuild_response.json", "gpu-101bc320xxxxf58442686"},
		{"destroy_response.json", "gpu-101f5c58214xxxx4715bf"},
		{"lengthen_response.json", "gpu-101bc3209c2xxxx442686"},
		{"renew_response.json", "gpu-101bc3209c2xxxx442686"},
		{"snapshot_response.json", "any-gid"},
	}
	for _, c := range cases {
		var a batchAnswer
		decodeExample(t, c.file, &a)
		if err := confirmed("op", c.gid, a, ""); err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
		if c.file != "snapshot_response.json" {
			if err := confirmed("op", "gpu-other", a, ""); providers.KindOf(err) != providers.KindRejected {
				t.Errorf("%s: a gid absent from success must fail, got %v", c.file, err)
			}
		}
	}
}

// Quirk 5.1.4: the fixed copies decode, while the document's snippets as printed do not.
func TestQuirk_5_1_4_InvalidJSONExamplesAreFixedCopies(t *testing.T) {
	asPrinted := map[string]string{
		"snapshot":     `{ success: true }`,
		"port":         `{"port": xxxx}`,
		"comma":        `{"password": "xxxx" "order_uid": "1"}`,
		"comment":      `{"items": [{"name": "a"}, // 更多镜像信息...` + "\n" + `], "total_items": 5}`,
		"missingBrace": `{"items": [], "total_items": 3`,
	}
	for name, s := range asPrinted {
		if json.Valid([]byte(s)) {
			t.Errorf("%s: expected the document's form to be invalid", name)
		}
	}
	for _, f := range []string{"snapshot_response.json", "instances_list.json", "images_list.json", "product_list.json"} {
		if !json.Valid(readExample(t, f)) {
			t.Errorf("%s is not valid JSON", f)
		}
	}
}

// Quirk 5.1.1: integers go out as "1" by default (the examples' form) or as 1.
func TestQuirk_5_1_1_RequestIntEncodingSwitch(t *testing.T) {
	s, _ := json.Marshal(renewRequest{GID: "g", PayPeriod: reqInt{n: 3}})
	n, _ := json.Marshal(renewRequest{GID: "g", PayPeriod: reqInt{n: 3, asNumber: true}})
	if string(s) != `{"gid":"g","pay_period":"3"}` || string(n) != `{"gid":"g","pay_period":3}` {
		t.Errorf("strings %s numbers %s", s, n)
	}
	if New(Config{}).reqInt(2).asNumber || !New(Config{IntsAsNumbers: true}).reqInt(2).asNumber {
		t.Error("Config.IntsAsNumbers does not pick the encoding")
	}
}

// Quirk 5.1.2 and 5.1.3: numbers come as strings or ints; totals under two keys.
func TestQuirk_5_1_2_and_5_1_3_LooseNumbersAndTotals(t *testing.T) {
	var l instanceList
	body := `{"items":[{"gid":"g","size":{"gpu":"2","disk_free":160,"cpu":"16","memory":"100","gpu_ram":"24"},"port":2222}],"total":"1"}`
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatal(err)
	}
	if l.Total != 1 || l.Items[0].Size.GPU != 2 || l.Items[0].Size.DiskFree != 160 || l.Items[0].Size.CPU != 16 || l.Items[0].Port != "2222" {
		t.Errorf("decoded %+v", l)
	}
	var p productList
	if err := json.Unmarshal([]byte(`{"items":[{"gpu_type":"t","gpu_remain":"3","room_name":105}],"total_items":"1"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.TotalItems != 1 || p.Items[0].GPURemain != 3 || p.Items[0].RoomName != "105" {
		t.Errorf("decoded %+v", p)
	}
	if err := json.Unmarshal([]byte(`{"items":[],"total_items":7}`), &l); err != nil || l.TotalItems != 7 {
		t.Errorf("instance list with total_items: %v %d", err, l.TotalItems)
	}
}

// Quirk 5.1.9: status and pay_method vocabularies beyond the documented "Stopped"/"Month".
func TestQuirk_5_1_9_StatusAndPayMethodMapping(t *testing.T) {
	states := map[string]providers.State{
		"Creating": providers.StatePending, "pending": providers.StatePending, "Starting": providers.StateStarting,
		"Running": providers.StateRunning, "RUNNING": providers.StateRunning, "Stopping": providers.StateStopping,
		"Stopped": providers.StateStopped, " stopped ": providers.StateStopped, "Restarting": providers.StateRestarting,
		"Destroying": providers.StateDeleting, "Deleting": providers.StateDeleting, "Error": providers.StateError,
		"Failed": providers.StateError, "Hibernating": providers.StateUnknown, "": providers.StateUnknown,
	}
	for raw, want := range states {
		if got := stateOf(raw); got != want {
			t.Errorf("stateOf(%q) = %s, want %s", raw, got, want)
		}
	}
	bills := map[string]providers.BillingMode{
		"Hour": providers.BillingHourly, "hourly": providers.BillingHourly, "Day": providers.BillingDaily,
		"DAILY": providers.BillingDaily, "Month": providers.BillingMonthly, "monthly": providers.BillingMonthly,
		"Week": "", "": "",
	}
	for raw, want := range bills {
		if got := billingOf(raw); got != want {
			t.Errorf("billingOf(%q) = %q, want %q", raw, got, want)
		}
	}
	in := New(Config{Token: "t"}).instanceOf(instance{GID: "g", Status: "Hibernating", PayMethod: "Year"})
	if in.State != providers.StateUnknown || in.RawState != "Hibernating" || in.Billing != "" {
		t.Errorf("unknown values: %+v", in)
	}
}

// Quirk 5.1.10: the fails element shape is unknown: strings, objects with any gid and
// message keys, objects without a gid, or a gid merely absent from success.
func TestQuirk_5_1_10_FailsElementShapes(t *testing.T) {
	cases := []struct {
		name, body, wantIn string
	}{
		{"gid strings", `{"success":[],"fails":["gpu-1"]}`, "listed gpu-1 as failed"},
		{"objects with gid and message", `{"success":[],"fails":[{"gid":"gpu-1","message":"余额不足"}]}`, "余额不足"},
		{"objects with id and msg", `{"success":[],"fails":[{"id":"gpu-1","msg":"busy"}]}`, "busy"},
		{"objects with instance_id and reason", `{"success":[],"fails":[{"instance_id":"gpu-1","reason":"locked"}]}`, "locked"},
		{"object without gid", `{"success":[],"fails":[{"error":"system maintenance"}]}`, "system maintenance"},
		{"other gid's failure is not ours", `{"success":[],"fails":[{"gid":"gpu-2","message":"not mine"}]}`, "did not confirm gpu-1"},
		{"bare number", `{"success":[],"fails":[42]}`, "42"},
		{"absent everywhere", `{"success":[],"fails":[]}`, "did not confirm gpu-1"},
		{"null lists", `{"success":null,"fails":null}`, "did not confirm gpu-1"},
		{"top-level message", `{"message":"token expired soon"}`, "token expired soon"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var a batchAnswer
			if err := json.Unmarshal([]byte(c.body), &a); err != nil {
				t.Fatal(err)
			}
			err := confirmed("stop gpu-1", "gpu-1", a, "remedy")
			var pe *providers.Error
			if !asError(err, &pe) || pe.Kind != providers.KindRejected || pe.Provider != Name || pe.Remedy != "remedy" {
				t.Fatalf("got %#v", err)
			}
			if !strings.Contains(pe.Message, c.wantIn) {
				t.Errorf("message %q lacks %q", pe.Message, c.wantIn)
			}
			if c.name == "other gid's failure is not ours" && strings.Contains(pe.Message, "not mine") {
				t.Errorf("another gid's message leaked: %q", pe.Message)
			}
		})
	}
	var ok batchAnswer
	_ = json.Unmarshal([]byte(`{"success":[{"gid":"gpu-1"}],"fails":[]}`), &ok)
	if err := confirmed("op", "gpu-1", ok, ""); err != nil {
		t.Errorf("object success element: %v", err)
	}
}

// Quirk 5.1.13: the example's answer names another gid than the request; only the gid asked
// for counts.
func TestQuirk_5_1_13_AnswerNamingAnotherGidIsNotSuccess(t *testing.T) {
	var a batchAnswer
	decodeExample(t, "stop_response.json", &a)
	var req map[string]any
	decodeExample(t, "stop_request.json", &req)
	err := confirmed("stop", req["gid"].(string), a, "")
	if providers.KindOf(err) != providers.KindRejected || !strings.Contains(err.Error(), "confirmed gpu-101f5cxxxxxc554715bf instead") {
		t.Errorf("got %v", err)
	}
}

// Quirk 5.1.8: order_uid nested in success[] (example) or top level (field table).
func TestQuirk_5_1_8_OrderUIDNestedOrTopLevel(t *testing.T) {
	cases := map[string]string{
		`{"success_instance":1,"fail_instance":0,"success":[{"order_uid":"A1"}],"fails":[]}`: "A1",
		`{"success_instance":1,"fail_instance":0,"order_uid":"B2","success":[],"fails":[]}`:  "B2",
		`{"success_instance":"1","order_uid":20240705173}`:                                   "20240705173",
	}
	for body, want := range cases {
		var a batchAnswer
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatal(err)
		}
		got, err := buyOrder("launch", a)
		if err != nil || got != want {
			t.Errorf("%s: got %q, %v", body, got, err)
		}
	}
	refusals := map[string]providers.ErrorKind{
		`{"success_instance":0,"fail_instance":1,"success":[],"fails":[{"message":"库存不足"}]}`: providers.KindRejected,
		`{"success_instance":0,"fail_instance":1,"success":[],"fails":[]}`:                   providers.KindRejected,
		`{"message":"余额不足"}`: providers.KindRejected,
		`{}`:                 providers.KindUnknown,
	}
	for body, want := range refusals {
		var a batchAnswer
		_ = json.Unmarshal([]byte(body), &a)
		if _, err := buyOrder("launch", a); providers.KindOf(err) != want {
			t.Errorf("%s: got %v, want %s", body, err, want)
		}
	}
}

func TestParseTime(t *testing.T) {
	cases := map[string]bool{
		"2024-07-05T15:21:21+08:00":     true,
		"2024-07-05T15:21:21.227+08:00": true,
		"2024-07-05 15:21:21":           true,
		"":                              false,
		"0001-01-01T00:00:00Z":          false,
		"not a time":                    false,
	}
	for s, want := range cases {
		if got := parseTime(s); (got != nil) != want {
			t.Errorf("parseTime(%q) = %v", s, got)
		}
	}
}

func TestErrorBodyMessages(t *testing.T) {
	cases := map[string]string{
		`{"message":"invalid token"}`: "invalid token",
		`{"msg":"参数错误"}`:              "参数错误",
		`{"code":1,"error":"boom"}`:   "boom",
		`<html>bad gateway</html>`:    "",
		``:                            "",
	}
	for body, want := range cases {
		if got := errorBody([]byte(body)); got != want {
			t.Errorf("errorBody(%q) = %q, want %q", body, got, want)
		}
	}
}

func asError(err error, target **providers.Error) bool {
	e, ok := err.(*providers.Error)
	if ok {
		*target = e
	}
	return ok
}
