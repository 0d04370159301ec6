package cytest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers/internal/wiretest"
)

type clock = wiretest.Clock

func newClock() *clock { return wiretest.NewClock(time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)) }

type answer struct {
	HTTP int
	Code json.RawMessage `json:"code"`
	Msg  string          `json:"msg"`
	Data json.RawMessage `json:"data"`
	Head http.Header
}

func (a answer) code() string { return string(a.Code) }

func do(t *testing.T, s *Server, method, path, key string, body any) answer {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s: not an envelope: %s", method, path, raw)
	}
	a.HTTP, a.Head = resp.StatusCode, resp.Header
	return a
}

func get(t *testing.T, s *Server, path string) answer {
	return do(t, s, http.MethodGet, path, DemoAPIKey, nil)
}

func post(t *testing.T, s *Server, path string, body any) answer {
	return do(t, s, http.MethodPost, path, DemoAPIKey, body)
}

func TestAuth(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	for _, tc := range []struct {
		name, path, key string
		wantHTTP        int
		wantCode        string
	}{
		{"missing key", "/instance/list", "", 401, "2"},
		{"wrong key", "/gpu/list", "cy_wrong", 401, "2"},
		{"right key", "/balance/info", DemoAPIKey, 200, "0"},
		{"market list is public", "/image/market/list", "", 200, "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := do(t, s, http.MethodGet, tc.path, tc.key, nil)
			if a.HTTP != tc.wantHTTP || a.code() != tc.wantCode {
				t.Fatalf("got HTTP %d code %s (%s), want %d code %s", a.HTTP, a.code(), a.Msg, tc.wantHTTP, tc.wantCode)
			}
		})
	}
	// Bearer is required exactly: the bare key is refused.
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/balance/info", nil)
	req.Header.Set("Authorization", DemoAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bare key: HTTP %d, want 401", resp.StatusCode)
	}
}

func TestWrongMethodAndPath(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	if a := do(t, s, http.MethodPost, "/instance/list", DemoAPIKey, map[string]any{}); a.HTTP != http.StatusMethodNotAllowed {
		t.Fatalf("POST list: HTTP %d", a.HTTP)
	}
	if a := get(t, s, "/instance/nope"); a.HTTP != http.StatusNotFound {
		t.Fatalf("unknown path: HTTP %d", a.HTTP)
	}
}

func TestPaging(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	var d struct {
		List     []json.RawMessage `json:"image_list"`
		Total    int               `json:"total"`
		Page     int               `json:"page"`
		PageSize int               `json:"page_size"`
	}
	a := get(t, s, "/image/market/list?page=2&page_size=2")
	if err := json.Unmarshal(a.Data, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.List) != 2 || d.Total != 5 || d.Page != 2 || d.PageSize != 2 {
		t.Fatalf("page 2 of 2: %d items, total %d, page %d, size %d", len(d.List), d.Total, d.Page, d.PageSize)
	}
	a = get(t, s, "/image/market/list?page=9&page_size=2")
	_ = json.Unmarshal(a.Data, &d)
	if len(d.List) != 0 || d.Total != 5 {
		t.Fatalf("past the end: %d items, total %d", len(d.List), d.Total)
	}
	if a := get(t, s, "/instance/list?page=0"); a.code() == "0" {
		t.Fatal("page=0 accepted")
	}
	a = get(t, s, "/image/market/list?cuda_version=11.8.0")
	_ = json.Unmarshal(a.Data, &d)
	if d.Total != 2 {
		t.Fatalf("cuda_version=11.8.0 matched %d images, want 2", d.Total)
	}
}

func create(t *testing.T, s *Server) string {
	t.Helper()
	a := post(t, s, "/instance/create_by_image", map[string]any{
		"image_uuid": "img_87654321-4321-4321-4321-210987654321", "gpu_uuid": "gpu_12345678-1234-1234-1234-123456789012", "gpu_nums": 1})
	if a.code() != "0" {
		t.Fatalf("create: %s", a.Msg)
	}
	var in struct {
		UUID      string          `json:"instance_uuid"`
		Status    int             `json:"status"`
		ServerMap json.RawMessage `json:"server_map"`
	}
	if err := json.Unmarshal(a.Data, &in); err != nil {
		t.Fatal(err)
	}
	if in.Status != 1 || in.ServerMap != nil {
		t.Fatalf("create answer: status %d, server_map %s; want 1 and none", in.Status, in.ServerMap)
	}
	return in.UUID
}

func status(t *testing.T, s *Server, id string) int {
	t.Helper()
	in, ok := s.Instance(id)
	if !ok {
		t.Fatalf("instance %s gone", id)
	}
	return in.Status
}

func TestLifecycleWithStepDelay(t *testing.T) {
	c := newClock()
	s := NewServer(Options{StepDelay: time.Minute, Now: c.Now})
	defer s.Close()
	id := create(t, s)
	steps := []struct {
		path      string
		now, then int
	}{
		{"", 1, 2},
		{"/instance/shutdown", 21, 22},
		{"/instance/startup", 24, 2},
		{"/instance/restart", 27, 2},
	}
	for _, st := range steps {
		if st.path != "" {
			if a := post(t, s, st.path, map[string]any{"instance_uuid": id}); a.code() != "0" || a.Data != nil {
				t.Fatalf("%s: code %s msg %s data %s", st.path, a.code(), a.Msg, a.Data)
			}
		}
		if got := status(t, s, id); got != st.now {
			t.Fatalf("after %q: status %d, want %d", st.path, got, st.now)
		}
		c.Add(time.Minute)
		if got := status(t, s, id); got != st.then {
			t.Fatalf("a step after %q: status %d, want %d", st.path, got, st.then)
		}
	}
}

func TestWrongStateIsHTTP200WithCode(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	id := create(t, s)
	a := post(t, s, "/instance/startup", map[string]any{"instance_uuid": id})
	if a.HTTP != 200 || a.code() == "0" || !strings.Contains(a.Msg, "状态") || !strings.Contains(a.Msg, "state") {
		t.Fatalf("startup of a running instance: HTTP %d code %s msg %q", a.HTTP, a.code(), a.Msg)
	}
	a = post(t, s, "/instance/shutdown", map[string]any{"instance_uuid": "inst_nope"})
	if a.HTTP != 200 || a.code() == "0" || !strings.Contains(a.Msg, "not found") {
		t.Fatalf("unknown instance: HTTP %d code %s msg %q", a.HTTP, a.code(), a.Msg)
	}
}

func TestCreateValidation(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	gpu4090 := "gpu_12345678-1234-1234-1234-123456789012"
	for _, tc := range []struct {
		name string
		path string
		body map[string]any
		want string
	}{
		{"gpu_nums 3", "/instance/create_by_image", map[string]any{"image_uuid": "img_87654321-4321-4321-4321-210987654321", "gpu_uuid": gpu4090, "gpu_nums": 3}, "1, 2, 4 or 8"},
		{"gpu_nums as string", "/instance/create_by_image", map[string]any{"image_uuid": "img_87654321-4321-4321-4321-210987654321", "gpu_uuid": gpu4090, "gpu_nums": "1"}, "malformed"},
		{"no image", "/instance/create_by_image", map[string]any{"gpu_uuid": gpu4090, "gpu_nums": 1}, "image_uuid is required"},
		{"unknown image", "/instance/create_by_image", map[string]any{"image_uuid": "img_x", "gpu_uuid": gpu4090, "gpu_nums": 1}, "not found"},
		{"sold out", "/instance/create_by_image", map[string]any{"image_uuid": "img_87654321-4321-4321-4321-210987654321", "gpu_uuid": "gpu_23456789-2345-2345-2345-234567890123", "gpu_nums": 1}, "not enough free"},
		{"unknown pod tag", "/instance/create_by_pod", map[string]any{"pod_uuid": "pod_12345678-1234-1234-1234-123456789012", "pod_tag": "v9", "gpu_uuid": gpu4090, "gpu_nums": 1}, "no version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, s, tc.path, tc.body)
			if a.code() == "0" || !strings.Contains(a.Msg, tc.want) {
				t.Fatalf("code %s msg %q, want a refusal mentioning %q", a.code(), a.Msg, tc.want)
			}
		})
	}
	if n := len(s.InstanceIDs()); n != 1 {
		t.Fatalf("%d instances after refused creates, want only the sample", n)
	}
}

func TestSaveImageThenShutdown(t *testing.T) {
	c := newClock()
	s := NewServer(Options{StepDelay: time.Minute, Now: c.Now})
	defer s.Close()
	id := SampleInstanceUUID
	if a := post(t, s, "/instance/save_image", map[string]any{"instance_uuid": id, "image_name": "snap-1", "remark": "r"}); a.code() != "0" {
		t.Fatalf("save: %s", a.Msg)
	}
	in, _ := s.Instance(id)
	imgs := s.PrivateImages()
	if in.Status != 2 || in.SaveImageStatus != 1 || len(imgs) != 1 || imgs[0].SaveImageStatus != 1 || imgs[0].Title != "snap-1" {
		t.Fatalf("while saving: %+v, images %+v", in, imgs)
	}
	if a := post(t, s, "/instance/save_image", map[string]any{"instance_uuid": id, "image_name": "snap-2"}); a.code() == "0" {
		t.Fatal("a second save while saving was accepted")
	}
	c.Add(time.Minute)
	in, _ = s.Instance(id)
	if in.Status != 21 || in.SaveImageStatus != 2 || s.PrivateImages()[0].SaveImageStatus != 2 {
		t.Fatalf("saved: %+v", in)
	}
	c.Add(time.Minute)
	if got := status(t, s, id); got != 22 {
		t.Fatalf("after the save the instance is %d, want 22", got)
	}
	if a := post(t, s, "/instance/save_image", map[string]any{"instance_uuid": id, "image_name": "snap-3"}); a.code() == "0" {
		t.Fatal("save of a stopped instance accepted")
	}
}

func TestShutdownTimer(t *testing.T) {
	c := newClock()
	s := NewServer(Options{Now: c.Now})
	defer s.Close()
	id := SampleInstanceUUID
	at := c.Now().Add(10 * time.Minute).Unix()
	if a := post(t, s, "/instance/shutdown_timer", map[string]any{"instance_uuid": id, "shutdown_time": at}); a.code() == "0" {
		t.Fatal("timer without enable accepted")
	}
	if a := post(t, s, "/instance/shutdown_timer", map[string]any{"instance_uuid": id, "enable": true, "shutdown_time": 60}); a.code() == "0" {
		t.Fatal("shutdown_time 60 (minutes) accepted as a timestamp")
	}
	if a := post(t, s, "/instance/shutdown_timer", map[string]any{"instance_uuid": id, "enable": true, "shutdown_time": at}); a.code() != "0" {
		t.Fatalf("timer: %s", a.Msg)
	}
	if in, _ := s.Instance(id); !in.ShutdownEnabled || in.ShutdownTime != at {
		t.Fatalf("timer not recorded: %+v", in)
	}
	c.Add(10 * time.Minute)
	if got := status(t, s, id); got != 22 {
		t.Fatalf("at the timer the instance is %d, want 22", got)
	}
}

func TestDestroy(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	id := create(t, s)
	if a := post(t, s, "/instance/destroy", map[string]any{"instance_uuid": id}); a.code() != "0" {
		t.Fatalf("destroy: %s", a.Msg)
	}
	if _, ok := s.Instance(id); ok {
		t.Fatal("destroyed instance still there")
	}
	if a := get(t, s, "/instance/info?instance_uuid="+id); a.code() == "0" {
		t.Fatal("info of a destroyed instance succeeded")
	}
}

func TestRateLimitEvery(t *testing.T) {
	s := NewServer(Options{RateLimitEvery: 3})
	defer s.Close()
	var limited []int
	for i := 1; i <= 6; i++ {
		a := get(t, s, "/balance/info")
		if a.HTTP == http.StatusTooManyRequests {
			if a.code() != "429" || a.Head.Get("Retry-After") != "2" {
				t.Fatalf("429 answer: code %s, Retry-After %q", a.code(), a.Head.Get("Retry-After"))
			}
			limited = append(limited, i)
		}
	}
	if fmt.Sprint(limited) != "[3 6]" {
		t.Fatalf("limited requests %v, want [3 6]", limited)
	}
	if n := len(s.Requests()); n != 6 {
		t.Fatalf("%d requests recorded, want 6", n)
	}
}

func TestConcurrentUse(t *testing.T) {
	s := NewServer(Options{})
	defer s.Close()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, s.URL()+"/instance/list", nil)
			req.Header.Set("Authorization", "Bearer "+DemoAPIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			s.Instance(SampleInstanceUUID)
			s.Requests()
		}()
	}
	wg.Wait()
	if n := len(s.Requests()); n != 8 {
		t.Fatalf("%d requests recorded, want 8", n)
	}
}
