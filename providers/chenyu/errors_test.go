package chenyu

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/chenyu/cytest"
)

// stub answers every request with one canned response.
func stub(t *testing.T, status int, header map[string]string, body string) *Provider {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return New(Config{APIKey: "cy_test", BaseURL: srv.URL})
}

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		name     string
		status   int
		header   map[string]string
		body     string
		mutating bool
		kind     providers.ErrorKind
		frag     string
		retry    time.Duration
	}{
		{"HTTP 401 with code 2", 401, nil, `{"code":2,"msg":"未登录"}`, false, providers.KindAuth, "未登录", 0},
		{"HTTP 403 plain text", 403, nil, `forbidden`, false, providers.KindAuth, "forbidden", 0},
		{"HTTP 200 code 2", 200, nil, `{"code":2,"msg":"未登录"}`, false, providers.KindAuth, "CHENYU_API_KEY", 0},
		{"HTTP 200 code \"2\"", 200, nil, `{"code":"2","msg":"未登录"}`, true, providers.KindAuth, "未登录", 0},
		{"code -2 system error", 200, nil, `{"code":-2,"msg":"系统异常"}`, false, providers.KindUnavailable, "系统异常", 0},
		{"HTTP 429 with Retry-After", 429, map[string]string{"Retry-After": "2"}, `{"code":429,"msg":"请求过于频繁"}`, false, providers.KindRateLimited, "wait 2s", 2 * time.Second},
		{"code 429 in a 200 body", 200, map[string]string{"Retry-After": "5"}, `{"code":429,"msg":"too many requests"}`, true, providers.KindRateLimited, "retry after 5s", 5 * time.Second},
		{"balance refusal", 200, nil, `{"code":1,"msg":"余额不足"}`, true, providers.KindRejected, "余额不足", 0},
		{"state refusal", 200, nil, `{"code":1001,"msg":"实例状态不允许关机"}`, true, providers.KindConflict, "code 1001", 0},
		{"not found", 200, nil, `{"code":1,"msg":"实例不存在"}`, false, providers.KindNotFound, "实例不存在", 0},
		{"bad parameter", 200, nil, `{"code":1,"msg":"参数错误"}`, true, providers.KindInvalid, "参数错误", 0},
		{"other business code", 200, nil, `{"code":7,"msg":"操作失败"}`, true, providers.KindRejected, "操作失败", 0},
		{"HTTP 400 with envelope", 400, nil, `{"code":1,"msg":"实例正在变更状态"}`, true, providers.KindConflict, "HTTP 400", 0},
		{"HTTP 404", 404, nil, `not found`, false, providers.KindNotFound, "HTTP 404", 0},
		{"HTTP 500 on a read", 500, nil, `{"code":-2,"msg":"系统异常"}`, false, providers.KindUnavailable, "系统异常", 0},
		{"HTTP 500 on a mutation", 500, nil, `{"code":-2,"msg":"系统异常"}`, true, providers.KindUnknown, "may or may not", 0},
		{"garbage on a read", 200, nil, `<html>oops</html>`, false, providers.KindUnavailable, "unreadable", 0},
		{"garbage on a mutation", 200, nil, `<html>oops</html>`, true, providers.KindUnknown, "may or may not", 0},
		{"code that only starts with 0", 200, nil, `{"code":"0x","msg":"??"}`, true, providers.KindRejected, "code 0x", 0},
		{"no code", 200, nil, `{"msg":"ok"}`, false, providers.KindUnavailable, "unreadable", 0},
		{"read without data", 200, nil, `{"code":0,"msg":"success"}`, false, providers.KindUnavailable, "without data", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := stub(t, tc.status, tc.header, tc.body)
			var err error
			if tc.mutating {
				err = p.Stop(t.Context(), "inst_1")
			} else {
				_, err = p.GetInstance(t.Context(), "inst_1")
			}
			pe := wantKind(t, err, tc.kind, tc.frag)
			if pe.RetryAfter != tc.retry {
				t.Fatalf("RetryAfter %s, want %s", pe.RetryAfter, tc.retry)
			}
		})
	}
}

func TestAuthFailureAgainstEmulator(t *testing.T) {
	e := setup(t, cytest.Options{})
	p := New(Config{APIKey: "cy_wrong", BaseURL: e.srv.URL()})
	_, err := p.ListOffers(t.Context())
	pe := wantKind(t, err, providers.KindAuth, "not logged in", "CHENYU_API_KEY")
	if pe.Status != http.StatusUnauthorized {
		t.Fatalf("status %d", pe.Status)
	}
	// The market list needs no key: a wrong key still lists market images, then fails on the
	// private list.
	_, err = p.ListImages(t.Context(), providers.ImageQuery{})
	wantKind(t, err, providers.KindAuth)
	if got := e.srv.Requests(); len(got) != 3 || got[1].Header.Get("Authorization") != "" || got[2].Header.Get("Authorization") != "Bearer cy_wrong" {
		t.Fatalf("requests %+v", got)
	}
}

func TestRateLimitedByEmulator(t *testing.T) {
	opts := cytest.Options{}
	opts.RateLimitEvery = 1
	e := setup(t, opts)
	err := e.p.Stop(t.Context(), sample)
	pe := wantKind(t, err, providers.KindRateLimited, "wait 2s")
	if pe.RetryAfter != 2*time.Second {
		t.Fatalf("RetryAfter %s", pe.RetryAfter)
	}
	if n := len(e.srv.Requests()); n != 1 {
		t.Fatalf("%d requests: a rate-limited mutation must not be retried", n)
	}
}

// A missing instance, which Chenyu answers with code 1 and a message, is not_found: the error
// says what Chenyu said, once, and points at the list of instances.
func TestMissingInstanceAgainstEmulator(t *testing.T) {
	e := setup(t, cytest.Options{})
	_, err := e.p.GetInstance(t.Context(), "inst_nope")
	pe := wantKind(t, err, providers.KindNotFound, "instance not found (Chenyu code 1)")
	if strings.Contains(pe.Error(), "refused") || strings.Count(pe.Error(), "chenyu") != 1 || !strings.Contains(pe.Remedy, "list_instances") {
		t.Fatalf("%q (remedy %q)", pe.Error(), pe.Remedy)
	}
}
