package hxytest_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"

	"github.com/gpu-mcp/gpu-mcp/providers/huixingyun/hxytest"
)

const gpuType = "geforce_rtx_4090_16u100m_106"

type client struct {
	t   *testing.T
	srv *hxytest.Server
}

func start(t *testing.T, opts hxytest.Options) *client {
	t.Helper()
	srv := hxytest.NewServer(opts)
	t.Cleanup(srv.Close)
	return &client{t: t, srv: srv}
}

// post sends body (a string or a value to encode) with the right token and decodes the answer.
func (c *client) post(path string, body any) (int, map[string]any) {
	c.t.Helper()
	return c.send(http.MethodPost, path, c.srv.Credential(), body)
}

func (c *client) send(method, path, token string, body any) (int, map[string]any) {
	c.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, c.srv.URL()+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		c.t.Fatalf("%s: answer is not a JSON object: %s", path, raw)
	}
	return resp.StatusCode, out
}

func (c *client) imageID(gpu string) string {
	c.t.Helper()
	_, out := c.post("/gpu/images/list", map[string]any{"gpu_type": gpu})
	return out["items"].([]any)[0].(map[string]any)["image_id"].(string)
}

// buy orders one instance and returns its gid.
func (c *client) buy(payUnit any, gpus any) string {
	c.t.Helper()
	st, out := c.post("/gpu/instances/buy", map[string]any{"image_id": c.imageID(gpuType), "num": "1", "gpu_type": gpuType,
		"gpu_count": gpus, "pay_unit": payUnit, "room_name": "106"})
	if st != 200 || out["success_instance"].(float64) != 1 {
		c.t.Fatalf("buy: %d %v", st, out)
	}
	order := out["success"].([]any)[0].(map[string]any)["order_uid"].(string)
	for _, in := range c.srv.Instances() {
		if in.OrderUID == order {
			return in.GID
		}
	}
	c.t.Fatalf("no instance with order %s", order)
	return ""
}

// batch returns the success gids and fails messages of an action answer.
func batch(t *testing.T, out map[string]any) (success []string, fails []string) {
	t.Helper()
	s, ok1 := out["success"].([]any)
	f, ok2 := out["fails"].([]any)
	if !ok1 || !ok2 {
		t.Fatalf("not a batch answer: %v", out)
	}
	for _, x := range s {
		success = append(success, x.(string))
	}
	for _, x := range f {
		m := x.(map[string]any)
		fails = append(fails, m["gid"].(string)+": "+m["message"].(string))
	}
	return success, fails
}

func TestAuthIsTheBareToken(t *testing.T) {
	c := start(t, hxytest.Options{})
	for _, tok := range []string{"", "wrong", "Bearer " + hxytest.DemoToken, `"` + hxytest.DemoToken + `"`} {
		st, out := c.send(http.MethodPost, "/gpu/product/list", tok, "{}")
		if st != http.StatusUnauthorized || out["message"] != "invalid token" {
			t.Errorf("token %q: %d %v", tok, st, out)
		}
	}
	if st, _ := c.post("/gpu/product/list", nil); st != 200 {
		t.Errorf("bare token, empty body: %d", st)
	}
	other := start(t, hxytest.Options{Token: "custom"})
	if other.srv.Credential() != "custom" {
		t.Errorf("token %q", other.srv.Credential())
	}
	if st, _ := other.send(http.MethodPost, "/gpu/product/list", hxytest.DemoToken, "{}"); st != http.StatusUnauthorized {
		t.Errorf("demo token accepted by a server with another token: %d", st)
	}
}

func TestMethodsPathsAndBodies(t *testing.T) {
	c := start(t, hxytest.Options{})
	if st, _ := c.send(http.MethodGet, "/gpu/product/list", c.srv.Credential(), nil); st != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", st)
	}
	if st, _ := c.post("/gpu/instances/snapshot", "{}"); st != http.StatusNotFound {
		t.Errorf("plural snapshot path: %d", st)
	}
	if st, out := c.post("/gpu/images/list", "{not json"); st != 400 || !strings.Contains(out["message"].(string), "JSON") {
		t.Errorf("bad JSON: %d %v", st, out)
	}
}

func TestCatalogFollowsTheDocument(t *testing.T) {
	c := start(t, hxytest.Options{})
	_, out := c.post("/gpu/product/list", nil)
	items := out["items"].([]any)
	if out["total_items"].(float64) != float64(len(items)) || len(items) < 6 {
		t.Fatalf("products %v", out)
	}
	first := items[0].(map[string]any)
	if first["gpu_type"] != "geforce_rtx_4090_free_102" || first["name"] != "NVIDIA 4090 免费版" || first["gpu_remain"].(float64) != 1 {
		t.Errorf("first product %v", first)
	}
	rooms := map[string]bool{}
	for _, it := range items {
		rooms[it.(map[string]any)["room_name"].(string)] = true
	}
	if !rooms["102"] || !rooms["105"] || !rooms["106"] {
		t.Errorf("rooms %v", rooms)
	}
	_, out = c.post("/gpu/application/list", nil)
	if out["total_items"].(float64) != 6 || out["items"].([]any)[0].(map[string]any)["app_type"] != "sd-webui" {
		t.Errorf("apps %v", out)
	}
	_, out = c.post("/gpu/images/list", map[string]any{"gpu_type": "geforce_rtx_4090_16u100m_105"})
	found := false
	for _, it := range out["items"].([]any) {
		found = found || it.(map[string]any)["image_id"] == "0917a7f0-1c03-11ef-9f0d-4faf337438da"
	}
	if !found || out["total_items"].(float64) != 5 {
		t.Errorf("zone 105 public images lack the document's example: %v", out)
	}
	if st, out := c.post("/gpu/images/list", nil); st != 400 || out["message"] != "gpu_type is required" {
		t.Errorf("images without gpu_type: %d %v", st, out)
	}
	_, out = c.post("/gpu/images/mine", map[string]any{"room_name": "105"})
	if out["total_items"].(float64) != 2 {
		t.Errorf("own images %v", out)
	}
	_, out = c.post("/gpu/instances/list", nil)
	if out["total"] != "0" || len(out["items"].([]any)) != 0 {
		t.Errorf("the demo must start with no instance: %v", out)
	}
}

func TestBuyValidation(t *testing.T) {
	c := start(t, hxytest.Options{})
	img := c.imageID(gpuType)
	valid := func() map[string]any {
		return map[string]any{"image_id": img, "num": "1", "gpu_type": gpuType, "gpu_count": "1", "pay_unit": "4", "room_name": "106"}
	}
	cases := []struct {
		name   string
		change func(m map[string]any)
		want   string
	}{
		{"no image", func(m map[string]any) { delete(m, "image_id") }, "image_id is required"},
		{"no num", func(m map[string]any) { delete(m, "num") }, "num is required"},
		{"no gpu_type", func(m map[string]any) { delete(m, "gpu_type") }, "gpu_type is required"},
		{"no gpu_count", func(m map[string]any) { delete(m, "gpu_count") }, "gpu_count is required"},
		{"no pay_unit", func(m map[string]any) { delete(m, "pay_unit") }, "pay_unit is required"},
		{"no room", func(m map[string]any) { delete(m, "room_name") }, "room_name is required"},
		{"pay_unit 3", func(m map[string]any) { m["pay_unit"] = "3" }, "pay_unit must be"},
		{"num not a number", func(m map[string]any) { m["num"] = "one" }, "num must be an integer"},
		{"wrong room", func(m map[string]any) { m["room_name"] = "105" }, "is in room 106"},
		{"unknown gpu_type", func(m map[string]any) { m["gpu_type"] = "nope" }, "unknown gpu_type"},
		{"unknown image", func(m map[string]any) { m["image_id"] = "nope" }, "image nope not found"},
		{"extra disk not by 100", func(m map[string]any) { m["extra_disk_cap"] = "150" }, "multiple of 100"},
		{"zero gpus", func(m map[string]any) { m["gpu_count"] = 0 }, "gpu_count must be"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := valid()
			tc.change(m)
			st, out := c.post("/gpu/instances/buy", m)
			if st != 400 || !strings.Contains(out["message"].(string), tc.want) {
				t.Errorf("%d %v, want 400 %q", st, out, tc.want)
			}
		})
	}
	if n := len(c.srv.Instances()); n != 0 {
		t.Errorf("invalid buys created %d instances", n)
	}
}

func TestBuyAcceptsIntsAsStringsOrNumbersAndTracksGPURemain(t *testing.T) {
	c := start(t, hxytest.Options{})
	a := c.buy("4", "3")
	b := c.buy(1, 2)
	if n, _ := c.srv.GPURemain(gpuType); n != 3 {
		t.Errorf("gpu_remain %d, want 3", n)
	}
	ra, _ := c.srv.Instance(a)
	rb, _ := c.srv.Instance(b)
	if ra.PayMethod != hxytest.PayHour || !ra.ExpireAt.IsZero() || ra.GPUCount != 3 {
		t.Errorf("hourly %+v", ra)
	}
	if rb.PayMethod != hxytest.PayDay || !rb.ExpireAt.Equal(rb.CreatedAt.AddDate(0, 0, 1)) {
		t.Errorf("daily %+v", rb)
	}
	// gpu_count above gpu_remain is a fails entry, not an HTTP error.
	st, out := c.post("/gpu/instances/buy", map[string]any{"image_id": c.imageID(gpuType), "num": "1", "gpu_type": gpuType,
		"gpu_count": "4", "pay_unit": "4", "room_name": "106"})
	fails := out["fails"].([]any)
	if st != 200 || out["success_instance"].(float64) != 0 || out["fail_instance"].(float64) != 1 || len(fails) != 1 ||
		!strings.Contains(fails[0].(map[string]any)["message"].(string), "insufficient GPUs") {
		t.Errorf("oversized buy: %d %v", st, out)
	}
	// Destroying restores gpu_remain.
	c.post("/gpu/instances/stop", map[string]any{"gid": a, "card_less": false})
	if s, f := batch(t, mustPost(c, "/gpu/instances/destroy", map[string]any{"gid": a})); len(s) != 1 || len(f) != 0 {
		t.Fatalf("destroy: %v %v", s, f)
	}
	if n, _ := c.srv.GPURemain(gpuType); n != 6 {
		t.Errorf("gpu_remain after destroy %d, want 6", n)
	}
}

func mustPost(c *client, path string, body any) map[string]any {
	c.t.Helper()
	st, out := c.post(path, body)
	if st != 200 {
		c.t.Fatalf("%s: %d %v", path, st, out)
	}
	return out
}

func TestInstanceListShape(t *testing.T) {
	c := start(t, hxytest.Options{})
	gid := c.buy("2", "1")
	_, out := c.post("/gpu/instances/list", nil)
	if out["total"] != "1" {
		t.Errorf("total %#v, want the string \"1\"", out["total"])
	}
	it := out["items"].([]any)[0].(map[string]any)
	size := it["size"].(map[string]any)
	if it["gid"] != gid || !strings.HasPrefix(gid, "gpu-106") || it["pay_method"] != "Month" || it["status"] != "Running" {
		t.Errorf("item %v", it)
	}
	if size["gpu"] != "1" || size["disk_free"] != "160" || size["gpu_model"] != "NVIDIA 4090 * 1" || size["gpu_ram"].(float64) != 24 {
		t.Errorf("size %v", size)
	}
	if _, err := time.Parse(time.RFC3339, it["create_at"].(string)); err != nil || !strings.HasSuffix(it["create_at"].(string), "+08:00") {
		t.Errorf("create_at %v", it["create_at"])
	}
	if it["ip"] != "127.0.0.1" || it["port"].(float64) <= 0 || it["password"] == "" {
		t.Errorf("connection %v %v", it["ip"], it["port"])
	}
	if _, ok := it["custom_ports"].([]any); !ok {
		t.Errorf("custom_ports %v", it["custom_ports"])
	}
}

func TestStateWalkWithStepDelay(t *testing.T) {
	clk := wiretest.NewClock(time.Date(2024, 7, 5, 7, 0, 0, 0, time.UTC))
	c := start(t, hxytest.Options{StepDelay: 10 * time.Second, Now: clk.Now})
	gid := c.buy("4", "1")
	step := func(action, path string, body map[string]any, during, after string) {
		t.Helper()
		if body != nil {
			if s, f := batch(t, mustPost(c, path, body)); len(s) != 1 {
				t.Fatalf("%s refused: %v", action, f)
			}
		}
		if in, _ := c.srv.Instance(gid); in.Status != during {
			t.Fatalf("%s: status %s, want %s", action, in.Status, during)
		}
		clk.Add(9 * time.Second)
		if in, _ := c.srv.Instance(gid); in.Status != during {
			t.Fatalf("%s: status %s before the delay, want %s", action, in.Status, during)
		}
		clk.Add(time.Second)
		if in, _ := c.srv.Instance(gid); in.Status != after {
			t.Fatalf("%s: status %s after the delay, want %s", action, in.Status, after)
		}
	}
	step("create", "", nil, hxytest.StatusCreating, hxytest.StatusRunning)
	step("stop", "/gpu/instances/stop", map[string]any{"gid": gid, "card_less": false}, hxytest.StatusStopping, hxytest.StatusStopped)
	step("start", "/gpu/instances/start", map[string]any{"gid": gid}, hxytest.StatusStarting, hxytest.StatusRunning)
	step("restart", "/gpu/instances/restart", map[string]any{"gid": gid}, hxytest.StatusRestarting, hxytest.StatusRunning)
	// A transitional instance refuses actions.
	mustPost(c, "/gpu/instances/stop", map[string]any{"gid": gid, "card_less": true})
	if _, f := batch(t, mustPost(c, "/gpu/instances/restart", map[string]any{"gid": gid})); len(f) != 1 || !strings.Contains(f[0], "Stopping") {
		t.Errorf("restart while stopping: %v", f)
	}
	clk.Add(10 * time.Second)
	if s, _ := batch(t, mustPost(c, "/gpu/instances/destroy", map[string]any{"gid": gid})); len(s) != 1 {
		t.Fatal("destroy refused")
	}
	if in, ok := c.srv.Instance(gid); !ok || in.Status != hxytest.StatusDestroying {
		t.Fatalf("destroying: %+v %v", in, ok)
	}
	clk.Add(10 * time.Second)
	if _, ok := c.srv.Instance(gid); ok {
		t.Error("destroyed instance still listed")
	}
}

func TestStartEndpointsMatchTheStopMode(t *testing.T) {
	c := start(t, hxytest.Options{})
	normal, cardless := c.buy("4", "1"), c.buy("4", "1")
	mustPost(c, "/gpu/instances/stop", map[string]any{"gid": normal + "," + cardless, "card_less": false})
	// Re-stop the second card-less: start it again first.
	mustPost(c, "/gpu/instances/start", map[string]any{"gid": cardless})
	mustPost(c, "/gpu/instances/stop", map[string]any{"gid": cardless, "card_less": true})
	if in, _ := c.srv.Instance(cardless); in.StopMode != hxytest.StopCardless {
		t.Fatalf("stop mode %q", in.StopMode)
	}
	s, f := batch(t, mustPost(c, "/gpu/instances/start", map[string]any{"gid": normal + "," + cardless}))
	if len(s) != 1 || s[0] != normal || len(f) != 1 || !strings.Contains(f[0], "cardless/start") {
		t.Errorf("normal start: %v %v", s, f)
	}
	mustPost(c, "/gpu/instances/stop", map[string]any{"gid": normal, "card_less": false})
	s, f = batch(t, mustPost(c, "/gpu/instances/cardless/start", map[string]any{"gid": normal + "," + cardless}))
	if len(s) != 1 || s[0] != cardless || len(f) != 1 || !strings.Contains(f[0], "/gpu/instances/start") {
		t.Errorf("card-less start: %v %v", s, f)
	}
	if st, out := c.post("/gpu/instances/stop", map[string]any{"gid": normal, "card_less": "yes"}); st != 400 || !strings.Contains(out["message"].(string), "card_less") {
		t.Errorf("non-bool card_less: %d %v", st, out)
	}
	if st, _ := c.post("/gpu/instances/stop", map[string]any{"gid": normal}); st != 400 {
		t.Errorf("missing card_less: %d", st)
	}
	_, f = batch(t, mustPost(c, "/gpu/instances/restart", map[string]any{"gid": "gpu-nope"}))
	if len(f) != 1 || !strings.Contains(f[0], "gpu-nope: instance gpu-nope not found") {
		t.Errorf("unknown gid: %v", f)
	}
}

func TestDestroyRenewAndLengthenRules(t *testing.T) {
	c := start(t, hxytest.Options{})
	hourly, daily, monthly := c.buy("4", "1"), c.buy("1", "1"), c.buy("2", "1")
	all := hourly + "," + daily + "," + monthly

	s, f := batch(t, mustPost(c, "/gpu/instances/destroy", map[string]any{"gid": hourly}))
	if len(s) != 0 || len(f) != 1 || !strings.Contains(f[0], "stop it before destroying") {
		t.Errorf("destroying a running hourly instance: %v %v", s, f)
	}
	mustPost(c, "/gpu/instances/stop", map[string]any{"gid": all, "card_less": false})
	s, f = batch(t, mustPost(c, "/gpu/instances/destroy", map[string]any{"gid": daily + "," + monthly}))
	if len(s) != 0 || len(f) != 2 || !strings.Contains(f[0], "only hourly-billed") {
		t.Errorf("destroying prepaid instances: %v %v", s, f)
	}

	renew := []struct {
		gid    string
		period any
		ok     bool
	}{
		{hourly, "1", false}, {daily, "1", true}, {daily, 3, true}, {daily, "7", true}, {daily, "12", false},
		{monthly, "1", true}, {monthly, 3, true}, {monthly, "12", true}, {monthly, "7", false},
	}
	for _, r := range renew {
		before, _ := c.srv.Instance(r.gid)
		s, f := batch(t, mustPost(c, "/gpu/instances/renew", map[string]any{"gid": r.gid, "pay_period": r.period}))
		after, _ := c.srv.Instance(r.gid)
		if (len(s) == 1) != r.ok {
			t.Errorf("renew %s by %v: %v %v", before.PayMethod, r.period, s, f)
		}
		if r.ok == after.ExpireAt.Equal(before.ExpireAt) {
			t.Errorf("renew %s by %v: expiry %v -> %v", before.PayMethod, r.period, before.ExpireAt, after.ExpireAt)
		}
	}
	if d, _ := c.srv.Instance(daily); !d.ExpireAt.Equal(d.CreatedAt.AddDate(0, 0, 12)) {
		t.Errorf("daily expiry %v, want created + 1 + 1 + 3 + 7 days", d.ExpireAt)
	}
	if st, _ := c.post("/gpu/instances/renew", map[string]any{"gid": daily}); st != 400 {
		t.Errorf("renew without pay_period: %d", st)
	}

	if st, _ := c.post("/gpu/instances/lengthen", map[string]any{"gid": hourly, "pay_unit": "4"}); st != 400 {
		t.Errorf("lengthen to hourly: %d", st)
	}
	s, f = batch(t, mustPost(c, "/gpu/instances/lengthen", map[string]any{"gid": all, "pay_unit": "2"}))
	if len(s) != 2 || len(f) != 1 || !strings.Contains(f[0], monthly) {
		t.Errorf("lengthen to monthly: %v %v", s, f)
	}
	if h, _ := c.srv.Instance(hourly); h.PayMethod != hxytest.PayMonth || h.ExpireAt.IsZero() {
		t.Errorf("hourly after lengthen %+v", h)
	}
}

func TestSnapshotAddsAnOwnImageAfterTheDelay(t *testing.T) {
	clk := wiretest.NewClock(time.Date(2024, 7, 5, 9, 46, 58, 0, time.UTC))
	c := start(t, hxytest.Options{StepDelay: time.Minute, Now: clk.Now})
	gid := c.buy("4", "1")
	clk.Add(time.Minute)
	if st, out := c.post("/gpu/instance/snapshot", map[string]any{"gid": gid + "," + gid, "name": "x"}); st != 400 {
		t.Errorf("two gids: %d %v", st, out)
	}
	if st, _ := c.post("/gpu/instance/snapshot", map[string]any{"gid": gid}); st != 400 {
		t.Errorf("no name: %d", st)
	}
	if _, out := c.post("/gpu/instance/snapshot", map[string]any{"gid": "gpu-nope", "name": "x"}); out["success"] != false || out["message"] == nil {
		t.Errorf("unknown gid: %v", out)
	}
	_, out := c.post("/gpu/instance/snapshot", map[string]any{"gid": gid, "name": "mine"})
	if out["success"] != true {
		t.Fatalf("snapshot: %v", out)
	}
	mine := func() []any {
		_, out := c.post("/gpu/images/mine", map[string]any{"room_name": "106"})
		return out["items"].([]any)
	}
	if n := len(mine()); n != 0 {
		t.Errorf("image listed before it is saved (%d)", n)
	}
	imgs := c.srv.Images()
	last := imgs[len(imgs)-1]
	if last.Ready || last.SourceGID != gid || last.Name != "mine" {
		t.Errorf("saving image %+v", last)
	}
	clk.Add(time.Minute)
	items := mine()
	if len(items) != 1 {
		t.Fatalf("own images %v", items)
	}
	im := items[0].(map[string]any)
	if im["name"] != "mine" || im["description"] != "创建时间: 2024-07-05 17:47:58" || im["room_name"] != "106" || im["scene"] != "Gpu" {
		t.Errorf("own image %v", im)
	}
	// The saved image can rebuild the instance.
	if s, f := batch(t, mustPost(c, "/gpu/instances/rebuild", map[string]any{"gid": gid, "image_id": im["image_id"]})); len(s) != 1 {
		t.Errorf("rebuild: %v", f)
	}
	if in, _ := c.srv.Instance(gid); in.ImageID != im["image_id"] || in.ImageName != "mine" {
		t.Errorf("rebuilt %+v", in)
	}
}

func TestAppBuy(t *testing.T) {
	c := start(t, hxytest.Options{})
	if st, _ := c.post("/gpu/application/buy", map[string]any{"num": "1", "pay_unit": "4", "app_type": "nope"}); st != 400 {
		t.Errorf("unknown app: %d", st)
	}
	if st, _ := c.post("/gpu/application/buy", map[string]any{"num": "1", "app_type": "comfyui"}); st != 400 {
		t.Errorf("no pay_unit: %d", st)
	}
	_, out := c.post("/gpu/application/buy", map[string]any{"num": 2, "pay_unit": 4, "app_type": "comfyui"})
	if out["success_instance"].(float64) != 2 {
		t.Fatalf("app buy %v", out)
	}
	ins := c.srv.Instances()
	if len(ins) != 2 || ins[0].AppType != "comfyui" || ins[0].GPUType != hxytest.AppGPUType || ins[0].OrderUID != ins[1].OrderUID {
		t.Errorf("app instances %+v", ins)
	}
}

func TestRequestsAreRecordedAndConcurrentUseIsSafe(t *testing.T) {
	c := start(t, hxytest.Options{StepDelay: time.Millisecond})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.post("/gpu/instances/list", nil)
			c.srv.Instances()
			c.srv.Images()
		}()
	}
	wg.Wait()
	c.post("/gpu/images/mine", map[string]any{"room_name": "105"})
	reqs := c.srv.Requests()
	if len(reqs) != 9 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	last := reqs[8]
	if last.Method != http.MethodPost || last.Path != "/gpu/images/mine" || string(last.Body) != `{"room_name":"105"}` {
		t.Errorf("last request %+v", last)
	}
	reqs[8].Body[0] = 'X'
	if c.srv.Requests()[8].Body[0] != '{' {
		t.Error("Requests shares its buffers")
	}
}

func TestHandlerServesTheSameAPI(t *testing.T) {
	srv := hxytest.NewServer(hxytest.Options{})
	defer srv.Close()
	req, _ := http.NewRequest(http.MethodPost, "/gpu/product/list", strings.NewReader("{}"))
	req.Header.Set("Authorization", srv.Credential())
	rec := &recorder{header: http.Header{}}
	srv.Handler().ServeHTTP(rec, req)
	if rec.status != 200 || !strings.Contains(rec.body.String(), "geforce_rtx_4090_free_102") {
		t.Errorf("%d %s", rec.status, rec.body.String())
	}
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(s int)           { r.status = s }
