// Package httpx is the HTTP plumbing every vendor adapter shares: one request shape, a timeout
// per request, retries of reads (never of changes), Retry-After, a circuit breaker per vendor,
// bounded response bodies, and the mapping of transport failures and HTTP statuses to
// providers.Error, with secrets removed from whatever the vendor said.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
	"github.com/gpu-mcp/gpu-mcp/providers/redact"
)

// DefaultMaxBody bounds a vendor response; no documented payload comes near it.
const DefaultMaxBody = 8 << 20

// Defaults of the zero providers.HTTPOptions.
const (
	DefaultTimeout       = 30 * time.Second
	DefaultRetryBackoff  = 250 * time.Millisecond
	DefaultMaxRetryAfter = 10 * time.Second
	// maxBackoff caps the doubling of the retry backoff.
	maxBackoff = 5 * time.Second
)

// Client sends requests to one vendor.
type Client struct {
	Provider  string
	BaseURL   string              // without a trailing slash
	HTTP      *http.Client        // nil: http.DefaultTransport; Timeout bounds each request anyway
	Auth      func(h http.Header) // sets the vendor's auth headers
	MaxBody   int64               // 0: DefaultMaxBody
	UserAgent string

	// Timeout bounds one attempt, the answer's body included (0: DefaultTimeout).
	Timeout time.Duration
	// Retries is how many more attempts a read gets (0: none). Mutating requests get none.
	Retries int
	// RetryBackoff is the wait before the first retry, doubled after each (0: DefaultRetryBackoff).
	RetryBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After waited out (0: DefaultMaxRetryAfter).
	MaxRetryAfter time.Duration
	// Breaker, when set, skips the vendor while it keeps failing. Clients of one vendor share it.
	Breaker *Breaker
	// Redactor removes secrets from the vendor's words before they become an error; nil
	// removes only what is shaped like a credential. Configure sets it.
	Redactor *redact.Redactor

	// wait sleeps between attempts; tests replace it.
	wait func(ctx context.Context, d time.Duration) error
}

// Request is one call.
type Request struct {
	Method string
	Path   string     // appended to BaseURL; starts with "/"
	Query  url.Values // optional
	Body   any        // JSON-encoded when non-nil
	// Mutating marks a call that changes something at the vendor (buy, stop, delete...). It is
	// never sent twice, and a failure that leaves its outcome unknown says so.
	Mutating bool
	Op       string // what is being done, for error messages
}

// Response is a vendor's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// New returns a client for provider at baseURL, with the zero providers.HTTPOptions' timeouts,
// no retries and no breaker; Configure sets them.
func New(provider, baseURL string, auth func(http.Header)) *Client {
	return &Client{Provider: provider, BaseURL: strings.TrimRight(baseURL, "/"), Auth: auth}
}

// Configure applies o and the vendor's breaker (nil: none) to c, and returns c. The
// credentials c.Auth sends are added to o's Redactor (or to a new one), since a vendor, a proxy
// or a firewall that quotes the request in an error body quotes them too.
func (c *Client) Configure(o providers.HTTPOptions, b *Breaker) *Client {
	c.Timeout, c.Retries, c.RetryBackoff, c.MaxRetryAfter, c.Breaker = o.Timeout, max(o.Retries, 0), o.RetryBackoff, o.MaxRetryAfter, b
	c.Redactor = o.Redactor
	if c.Redactor == nil {
		c.Redactor = redact.New()
	}
	if c.Auth != nil {
		h := http.Header{}
		c.Auth(h)
		for _, vs := range h {
			for _, v := range vs {
				c.Redactor.Add(v)
				if _, credential, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
					c.Redactor.Add(credential) // "Bearer <key>": the key alone, as echoes quote it
				}
			}
		}
	}
	return c
}

// Redact returns s, words of the vendor's, without secrets: for adapters that put what the
// vendor said in a 2xx answer into an error (error bodies come redacted already).
func (c *Client) Redact(s string) string { return c.Redactor.String(s) }

// RedactError removes secrets from the message of err, a *providers.Error that quotes what
// the vendor said in a 2xx answer, and returns err.
func (c *Client) RedactError(err error) error {
	var e *providers.Error
	if errors.As(err, &e) {
		e.Message = c.Redact(e.Message)
	}
	return err
}

// Excerpt is excerpt(b) without secrets; they are removed first, so that cutting the body
// short cannot leave half a secret that is no longer recognised.
func (c *Client) Excerpt(b []byte) string {
	return excerpt([]byte(c.Redact(string(b[:min(len(b), maxRedacted)]))))
}

// maxRedacted is how much of a body Excerpt looks at: its 200 characters come from the start.
const maxRedacted = 16 << 10

// Do sends r, retrying a read that failed in a way a retry may cure. It returns an error for
// transport failures, oversized bodies and non-2xx statuses (mapped to a providers.Error
// kind); the Response is returned whenever one arrived, so that an adapter can refine the
// message from the vendor's error body.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	var body []byte
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, c.fail(providers.KindInvalid, r, 0, "cannot encode the request: %v", err)
		}
		body = b
	}
	for attempt := 0; ; attempt++ {
		resp, again, err := c.attempt(ctx, r, body)
		if err == nil {
			return resp, nil
		}
		if r.Mutating || attempt >= c.Retries || !again.retry {
			return resp, err
		}
		wait := again.after
		if wait <= 0 {
			wait = c.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= wait {
			return resp, err
		}
		if c.sleep(ctx, wait) != nil {
			return resp, err
		}
	}
}

// retry says whether a failed attempt of a read may be repeated, and after how long (0: the
// backoff).
type retry struct {
	retry bool
	after time.Duration
}

// attempt sends r once, through the breaker, within the per-attempt timeout.
func (c *Client) attempt(ctx context.Context, r Request, body []byte) (*Response, retry, error) {
	trial, refused := c.Breaker.allow()
	if refused != nil {
		return nil, retry{}, c.skipped(r, refused)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := c.newRequest(actx, r, body)
	if err != nil {
		c.Breaker.record(trial, neutral, "")
		return nil, retry{}, err
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, retry{retry: ctx.Err() == nil}, c.transportFailure(ctx, r, err, timeout, trial)
	}
	defer resp.Body.Close()
	limit := c.MaxBody
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, retry{retry: ctx.Err() == nil}, c.transportFailure(ctx, r, err, timeout, trial)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		// An error body is read for its message only, and may quote the request: the adapters
		// get it without secrets. A 2xx body is data (instance lists carry SSH passwords).
		out.Body = []byte(c.Redact(string(b)))
	}
	if resp.StatusCode >= 500 {
		c.Breaker.record(trial, failure, fmt.Sprintf("HTTP %d", resp.StatusCode))
	} else {
		c.Breaker.record(trial, success, "")
	}
	if int64(len(b)) > limit {
		return nil, retry{}, c.fail(providers.KindUnavailable, r, resp.StatusCode, "response larger than %d bytes", limit)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, retry{}, nil
	}
	e := c.statusError(r, out)
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		max := c.MaxRetryAfter
		if max <= 0 {
			max = DefaultMaxRetryAfter
		}
		return out, retry{retry: e.RetryAfter <= max, after: e.RetryAfter}, e
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return out, retry{retry: true}, e
	}
	return out, retry{}, e
}

func (c *Client) newRequest(ctx context.Context, r Request, body []byte) (*http.Request, error) {
	u := c.BaseURL + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, rd)
	if err != nil {
		return nil, c.fail(providers.KindInvalid, r, 0, "cannot build the request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Auth != nil {
		c.Auth(req.Header)
	}
	return req, nil
}

// backoff is the jittered wait before retry number attempt+1: half the doubled base, plus a
// random part of the other half, so that clients that failed together do not retry together.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.RetryBackoff
	if d <= 0 {
		d = DefaultRetryBackoff
	}
	for range attempt {
		if d >= maxBackoff {
			break
		}
		d *= 2
	}
	d = min(d, maxBackoff)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if c.wait != nil {
		return c.wait(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DecodeJSON decodes a 2xx body into v, mapping garbage to an unavailable error.
func (c *Client) DecodeJSON(r Request, resp *Response, v any) error {
	if err := json.Unmarshal(resp.Body, v); err != nil {
		// The body is not quoted: list answers carry SSH passwords.
		return c.fail(providers.KindUnavailable, r, resp.Status, "unreadable answer of %d bytes (%v)", len(resp.Body), err)
	}
	return nil
}

// unknownRemedy is what to do after a change whose outcome is unknown.
const unknownRemedy = "the vendor may or may not have done it: check with list_instances or get_instance before trying again"

// transportFailure maps a failure to get an answer, and tells the breaker: a cancellation by
// the caller says nothing about the vendor, a timeout or a broken connection does.
func (c *Client) transportFailure(ctx context.Context, r Request, err error, timeout time.Duration, trial bool) error {
	kind, remedy := providers.KindUnavailable, "check the network and "+c.Provider+"'s status, then try again"
	if r.Mutating {
		kind, remedy = providers.KindUnknown, unknownRemedy
	}
	e := &providers.Error{Kind: kind, Provider: c.Provider, Op: r.Op, Remedy: remedy, Err: err}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Message = "request cancelled"
		c.Breaker.record(trial, neutral, "")
		return e
	case ctx.Err() != nil:
		e.Message = "no answer before the deadline of this call"
		c.Breaker.record(trial, neutral, "")
		return e
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		e.Message = fmt.Sprintf("no answer within %s", timeout)
	default:
		e.Message = "no answer from the vendor: " + c.Redact(scrub(err.Error()))
	}
	c.Breaker.record(trial, failure, e.Message)
	return e
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// skipped is the error of a request an open breaker did not send.
func (c *Client) skipped(r Request, o *openError) error {
	var when string
	if o.trialOut {
		when = "a trial request is under way to see whether it is back"
	} else {
		when = fmt.Sprintf("gpu-mcp will try it again at %s (in %s)", o.until.UTC().Format("15:04:05 UTC"), o.until.Sub(o.now).Round(time.Second))
	}
	e := &providers.Error{Kind: providers.KindUnavailable, Provider: c.Provider, Op: r.Op, Err: ErrVendorSkipped,
		Message: fmt.Sprintf("not sent: %s failed %d times in a row (last: %s), so it is skipped for a while; %s", c.Provider, o.failures, o.lastErr, when),
		Remedy:  "nothing was sent to " + c.Provider + "; try again after that time, or check the vendor's status page"}
	if !o.trialOut {
		e.RetryAfter = o.until.Sub(o.now)
	}
	return e
}

func (c *Client) statusError(r Request, resp *Response) *providers.Error {
	e := &providers.Error{Provider: c.Provider, Op: r.Op, Status: resp.Status,
		Message: fmt.Sprintf("HTTP %d: %s", resp.Status, excerpt(resp.Body))}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		e.Kind, e.Remedy = providers.KindAuth, "check the "+c.Provider+" credentials in the server's environment"
	case resp.Status == http.StatusNotFound:
		e.Kind, e.Remedy = providers.KindNotFound, "check the id with the list tools"
	case resp.Status == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = providers.KindRateLimited, RetryAfter(resp.Header)
		e.Remedy = "wait before calling " + c.Provider + " again"
		if e.RetryAfter > 0 {
			e.Remedy = fmt.Sprintf("wait %s before calling %s again", e.RetryAfter.Round(time.Second), c.Provider)
		}
	case resp.Status >= 500:
		e.Kind, e.Remedy = providers.KindUnavailable, c.Provider+" is failing; try again later"
		if r.Mutating {
			e.Kind, e.Remedy = providers.KindUnknown, unknownRemedy
		}
	default:
		e.Kind, e.Remedy = providers.KindInvalid, c.Provider+" refused the request"
	}
	return e
}

func (c *Client) fail(kind providers.ErrorKind, r Request, status int, format string, args ...any) error {
	return &providers.Error{Kind: kind, Provider: c.Provider, Op: r.Op, Status: status, Message: fmt.Sprintf(format, args...)}
}

// RetryAfter parses a Retry-After header (seconds or an HTTP date); 0 when absent.
func RetryAfter(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(min(s, 86400)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

var htmlTitle = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// excerpt returns the start of a body, on one line, for error messages. An HTML page (a
// gateway's or a load balancer's error page) is reduced to its title.
func excerpt(b []byte) string {
	head := strings.ToLower(strings.TrimSpace(string(b[:min(len(b), 512)])))
	if strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html") {
		title := ""
		if m := htmlTitle.FindSubmatch(b); m != nil {
			title = strings.Join(strings.Fields(string(m[1])), " ")
		}
		if len(title) > 120 {
			title = title[:120] + "..."
		}
		if title == "" {
			return "an HTML page instead of JSON"
		}
		return "an HTML page instead of JSON: " + title
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if s == "" {
		return "(empty body)"
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// scrub removes the query string from URLs in transport errors: some vendors take ids there.
func scrub(s string) string {
	if i := strings.Index(s, "?"); i >= 0 {
		if j := strings.IndexAny(s[i:], "\": "); j > 0 {
			return s[:i] + s[i+j:]
		}
		return s[:i]
	}
	return s
}
