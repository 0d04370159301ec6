package chenyu

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/flex"
	"github.com/gpu-mcp/gpu-mcp/providers/internal/httpx"
)

const (
	keyRemedy     = "check CHENYU_API_KEY: create a key in the Chenyu console (API管理; it is shown only once) and set it in the server's environment"
	unknownRemedy = "Chenyu may or may not have done it: check with list_instances or get_instance before trying again"
)

// call sends r and returns the envelope's data (nil for action answers without data). HTTP
// errors and non-zero codes become *providers.Error values carrying Chenyu's msg.
func (p *Provider) call(ctx context.Context, c *httpx.Client, r httpx.Request) (json.RawMessage, error) {
	start := time.Now()
	resp, err := c.Do(ctx, r)
	ev := p.log.Debug().Str("method", r.Method).Str("path", r.Path).Dur("took", time.Since(start))
	if resp != nil {
		ev = ev.Int("status", resp.Status)
	}
	ev.Msg("chenyu request")
	if err != nil {
		return nil, p.refineHTTP(err, resp, r)
	}
	var env envelope
	code, hasCode := "", false
	if json.Unmarshal(resp.Body, &env) == nil {
		code, hasCode = env.codeText()
	}
	if !hasCode {
		e := errf(providers.KindUnavailable, r.Op, "Chenyu answered something other than its {code,msg,data} envelope; try again later",
			"unreadable answer: %s", c.Excerpt(resp.Body))
		e.Status = resp.Status
		if r.Mutating {
			e.Kind, e.Remedy = providers.KindUnknown, unknownRemedy
		}
		return nil, e
	}
	if code != "0" {
		// A 2xx envelope is not redacted by httpx (data carries passwords): its msg is, here.
		return nil, codeError(r, resp, code, c.Redact(string(env.Msg)))
	}
	return env.Data, nil
}

// refineHTTP puts Chenyu's msg, when the error body is an envelope, into the shared client's
// status error, and reclassifies 4xx refusals by their code and msg.
func (p *Provider) refineHTTP(err error, resp *httpx.Response, r httpx.Request) error {
	pe, ok := err.(*providers.Error)
	if !ok || resp == nil {
		return err
	}
	var env envelope
	code, msg := "", ""
	if json.Unmarshal(resp.Body, &env) == nil {
		code, _ = env.codeText()
		msg = strings.TrimSpace(string(env.Msg))
	}
	if msg == "" {
		msg = p.http.Excerpt(resp.Body)
	}
	pe.Message = fmt.Sprintf("HTTP %d: %s", resp.Status, msg)
	switch {
	case pe.Kind == providers.KindAuth || code == "2":
		pe.Kind, pe.Remedy = providers.KindAuth, keyRemedy
	case pe.Kind == providers.KindRateLimited || code == "429":
		pe.Kind = providers.KindRateLimited
		pe.RetryAfter = httpx.RetryAfter(resp.Header)
		pe.Remedy = retryRemedy(pe.RetryAfter)
	case pe.Kind == providers.KindNotFound:
		pe.Remedy = "check the id with list_instances, list_gpu_offers or list_images"
	case resp.Status >= 400 && resp.Status < 500 && code != "" && code != "0":
		ce := codeError(r, resp, code, msg)
		pe.Kind, pe.Remedy = ce.Kind, ce.Remedy
	}
	return pe
}

func retryRemedy(after time.Duration) string {
	if after > 0 {
		return fmt.Sprintf("Chenyu limits request rates: wait %s, then try again", after.Round(time.Second))
	}
	return "Chenyu limits request rates: wait a few seconds, then try again"
}

// Chenyu gives no codes for business refusals beyond "non-zero, see msg", so the kind is read
// from msg. The emulator's and the documents' messages are Chinese, often with English.
var (
	notFoundMsg = regexp.MustCompile(`(?i)不存在|未找到|找不到|not found|does not exist|no such`)
	existsMsg   = regexp.MustCompile(`(?i)已存在|重名|already exists|duplicate`)
	businessMsg = regexp.MustCompile(`(?i)余额|欠费|不足|售罄|库存|balance|insufficient|sold out|out of stock|quota`)
	stateMsg    = regexp.MustCompile(`(?i)状态|运行中|已关机|关机中|开机中|重启中|正在|state|status|not running|not stopped|in progress`)
	invalidMsg  = regexp.MustCompile(`(?i)参数|格式|必填|invalid|parameter|required|must be`)
)

// notFoundRemedy names the list that holds the ids of what path is about.
func notFoundRemedy(path string) string {
	switch {
	case strings.Contains(path, "/instance"):
		return "check the instance id with list_instances; a destroyed instance is gone for good"
	case strings.Contains(path, "/image") || strings.Contains(path, "/pod"):
		return "check the image id with list_images"
	case strings.Contains(path, "/gpu") || strings.Contains(path, "/card"):
		return "check the offer id with list_gpu_offers"
	}
	return "check the id with list_instances, list_gpu_offers or list_images"
}

// codeError maps a non-zero envelope code to an error.
func codeError(r httpx.Request, resp *httpx.Response, code, msg string) *providers.Error {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		msg = "(no message)"
	}
	// Chenyu's msg says what went wrong; the code is kept for the vendor's support.
	e := &providers.Error{Provider: Name, Op: r.Op, Status: resp.Status,
		Message: fmt.Sprintf("%s (Chenyu code %s)", msg, code)}
	switch {
	case code == "2":
		e.Kind, e.Remedy = providers.KindAuth, keyRemedy
	case code == "429":
		e.Kind, e.RetryAfter = providers.KindRateLimited, httpx.RetryAfter(resp.Header)
		e.Remedy = retryRemedy(e.RetryAfter)
	case code == "-2":
		e.Kind, e.Remedy = providers.KindUnavailable, "Chenyu reports a system error; try again later"
		if r.Mutating {
			e.Remedy = "Chenyu reports a system error; " + unknownRemedy
		}
	case notFoundMsg.MatchString(msg):
		e.Kind, e.Remedy = providers.KindNotFound, notFoundRemedy(r.Path)
	case existsMsg.MatchString(msg):
		e.Kind, e.Remedy = providers.KindConflict, "choose another name"
	case businessMsg.MatchString(msg):
		e.Kind, e.Remedy = providers.KindRejected, "Chenyu refused for a business reason (balance or capacity): top up the account, or choose another GPU model or count"
	case stateMsg.MatchString(msg):
		e.Kind, e.Remedy = providers.KindConflict, "the instance is not in a state that allows this: check it with get_instance, wait for it to settle or change its state first"
	case invalidMsg.MatchString(msg):
		e.Kind, e.Remedy = providers.KindInvalid, "Chenyu refused the request as invalid; nothing was changed"
	default:
		e.Kind, e.Remedy = providers.KindRejected, "Chenyu refused the request; see its message"
	}
	return e
}

// get sends an authenticated query and decodes its data into v.
func (p *Provider) get(ctx context.Context, path string, q url.Values, op string, v any) error {
	return p.getWith(ctx, p.http, path, q, op, v)
}

func (p *Provider) getWith(ctx context.Context, c *httpx.Client, path string, q url.Values, op string, v any) error {
	r := httpx.Request{Method: http.MethodGet, Path: path, Query: q, Op: op}
	data, err := p.call(ctx, c, r)
	if err != nil {
		return err
	}
	if len(data) == 0 || string(data) == "null" {
		return errf(providers.KindUnavailable, op, "try again later", "chenyu answered without data")
	}
	if err := json.Unmarshal(data, v); err != nil {
		return errf(providers.KindUnavailable, op, "try again later", "unreadable data (%v): %s", err, c.Excerpt(data))
	}
	return nil
}

// post sends an action. Its answer has no data, which is success (quirk 5.3.12); data, when
// present, is returned.
func (p *Provider) post(ctx context.Context, path string, body any, op string) (json.RawMessage, error) {
	return p.call(ctx, p.http, httpx.Request{Method: http.MethodPost, Path: path, Body: body, Mutating: true, Op: op})
}

const (
	pageSize = 50
	// maxPages bounds a paged listing, so that a server that keeps answering never traps us;
	// a list cut short by it says so (providers.Incomplete).
	maxPages = 100
	// pagesAtOnce bounds the pages asked for together, once the first page has told the total.
	pagesAtOnce = 4
)

// listPage is one page of a paged list.
type listPage[T any] struct {
	items    []T
	total    int
	hasTotal bool
}

// getPage reads page number page of a paged list.
func getPage[T any](ctx context.Context, p *Provider, c *httpx.Client, path, listKey, op string, extra url.Values, page int) (listPage[T], error) {
	q := url.Values{}
	for k, v := range extra {
		q[k] = v
	}
	q.Set("page", strconv.Itoa(page))
	q.Set("page_size", strconv.Itoa(pageSize))
	var data map[string]json.RawMessage
	if err := p.getWith(ctx, c, path, q, op, &data); err != nil {
		return listPage[T]{}, err
	}
	var out listPage[T]
	if raw, ok := data[listKey]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &out.items); err != nil {
			return listPage[T]{}, errf(providers.KindUnavailable, op, "try again later", "unreadable %s (%v): %s", listKey, err, c.Excerpt(raw))
		}
	}
	if raw, ok := data["total"]; ok && string(raw) != "null" {
		var t flex.Int
		if json.Unmarshal(raw, &t) == nil {
			out.total, out.hasTotal = int(t), true
		}
	}
	return out, nil
}

// fetchAll collects every page of a paged list (page from 1, page_size pageSize). When the
// first page tells the total, the other pages are asked for pagesAtOnce at a time; without a
// total, one after another until a short page. It stops at an empty page, at maxPages, or at
// a page that brings nothing new (a server that ignores page would otherwise repeat itself).
// A list that stopped short of what the vendor has is returned with a *providers.Incomplete.
func fetchAll[T any](ctx context.Context, p *Provider, c *httpx.Client, path, listKey, op string, extra url.Values, key func(T) string) ([]T, error) {
	var out []T
	seen := map[string]bool{}
	add := func(items []T) (fresh int) {
		for _, it := range items {
			if k := key(it); !seen[k] {
				seen[k] = true
				out = append(out, it)
				fresh++
			}
		}
		return fresh
	}
	first, err := getPage[T](ctx, p, c, path, listKey, op, extra, 1)
	if err != nil {
		return nil, err
	}
	add(first.items)
	if len(first.items) == 0 {
		return out, nil
	}
	if !first.hasTotal {
		last := first
		for page := 2; len(last.items) >= pageSize; page++ {
			if page > maxPages {
				return out, p.incomplete(op, len(out), 0, fmt.Sprintf("stopped after %d pages", maxPages))
			}
			if last, err = getPage[T](ctx, p, c, path, listKey, op, extra, page); err != nil {
				return nil, err
			}
			if len(last.items) == 0 || add(last.items) == 0 {
				break
			}
		}
		return out, nil
	}
	// The server's page size, which may be below the one asked for, tells how many pages
	// the total takes.
	per := len(first.items)
	pages := (first.total + per - 1) / per
	capped := pages > maxPages
	pages = min(pages, maxPages)
	for next := 2; next <= pages && len(out) < first.total; next += pagesAtOnce {
		wave := make([]listPage[T], min(pagesAtOnce, pages-next+1))
		errs := make([]error, len(wave))
		var wg sync.WaitGroup
		for i := range wave {
			wg.Go(func() {
				wave[i], errs[i] = getPage[T](ctx, p, c, path, listKey, op, extra, next+i)
			})
		}
		wg.Wait()
		for i := range wave {
			if errs[i] != nil {
				return nil, errs[i]
			}
		}
		for _, pg := range wave {
			if len(pg.items) == 0 {
				// The list ended before its total: it shrank while it was read.
				return out, nil
			}
			if add(pg.items) == 0 {
				return out, p.incomplete(op, len(out), first.total, "its pages repeat themselves")
			}
		}
	}
	if capped && len(out) < first.total {
		return out, p.incomplete(op, len(out), first.total, fmt.Sprintf("stopped after %d pages of %d", maxPages, per))
	}
	return out, nil
}

// incomplete logs and returns the error of a list cut short.
func (p *Provider) incomplete(op string, listed, total int, reason string) error {
	p.log.Warn().Str("op", op).Int("items", listed).Int("total", total).Str("reason", reason).
		Msg("chenyu list cut short; the answer says it is incomplete")
	return &providers.Incomplete{Provider: Name, Op: op, Listed: listed, Total: total, Reason: reason}
}
