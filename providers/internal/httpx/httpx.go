// Package httpx is the HTTP plumbing every vendor adapter shares: one request shape, bounded
// response bodies, and the mapping of transport failures and HTTP statuses to providers.Error.
package httpx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gpu-mcp/gpu-mcp/providers"
)

// DefaultMaxBody bounds a vendor response; no documented payload comes near it.
const DefaultMaxBody = 8 << 20

// DefaultTimeout bounds one request.
const DefaultTimeout = 30 * time.Second

// Client sends requests to one vendor.
type Client struct {
	Provider  string
	BaseURL   string              // without a trailing slash
	HTTP      *http.Client        // nil: a client with DefaultTimeout
	Auth      func(h http.Header) // sets the vendor's auth headers
	MaxBody   int64               // 0: DefaultMaxBody
	UserAgent string
}

// Request is one call.
type Request struct {
	Method string
	Path   string     // appended to BaseURL; starts with "/"
	Query  url.Values // optional
	Body   any        // JSON-encoded when non-nil
	// Mutating marks a call that changes something at the vendor (buy, stop, delete...). A
	// transport failure on such a call leaves its outcome unknown, and the error says so.
	Mutating bool
	Op       string // what is being done, for error messages
}

// Response is a vendor's answer.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// New returns a client for provider at baseURL.
func New(provider, baseURL string, auth func(http.Header)) *Client {
	return &Client{Provider: provider, BaseURL: strings.TrimRight(baseURL, "/"), Auth: auth}
}

// Do sends r. It returns an error for transport failures, oversized bodies and non-2xx
// statuses (mapped to a providers.Error kind); the Response is returned whenever one arrived,
// so that an adapter can refine the message from the vendor's error body.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	u := c.BaseURL + r.Path
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	var body io.Reader
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			return nil, c.fail(providers.KindInvalid, r, 0, "cannot encode the request: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, u, body)
	if err != nil {
		return nil, c.fail(providers.KindInvalid, r, 0, "cannot build the request: %v", err)
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Auth != nil {
		c.Auth(req.Header)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: DefaultTimeout}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, c.transportError(r, err)
	}
	defer resp.Body.Close()
	max := c.MaxBody
	if max <= 0 {
		max = DefaultMaxBody
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, c.transportError(r, err)
	}
	if int64(len(b)) > max {
		return nil, c.fail(providers.KindUnavailable, r, resp.StatusCode, "response larger than %d bytes", max)
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return out, nil
	}
	return out, c.statusError(r, out)
}

// DecodeJSON decodes a 2xx body into v, mapping garbage to an unavailable error.
func (c *Client) DecodeJSON(r Request, resp *Response, v any) error {
	if err := json.Unmarshal(resp.Body, v); err != nil {
		// The body is not quoted: list answers carry SSH passwords.
		return c.fail(providers.KindUnavailable, r, resp.Status, "unreadable answer of %d bytes (%v)", len(resp.Body), err)
	}
	return nil
}

func (c *Client) transportError(r Request, err error) error {
	kind, remedy := providers.KindUnavailable, "check the network and the vendor's status, then try again"
	if r.Mutating {
		kind = providers.KindUnknown
		remedy = "the vendor may or may not have done it: check with list_instances or get_instance before trying again"
	}
	if errors.Is(err, context.Canceled) {
		return &providers.Error{Kind: kind, Provider: c.Provider, Op: r.Op, Message: "request cancelled", Remedy: remedy, Err: err}
	}
	return &providers.Error{Kind: kind, Provider: c.Provider, Op: r.Op, Message: "no answer from the vendor: " + scrub(err.Error()), Remedy: remedy, Err: err}
}

func (c *Client) statusError(r Request, resp *Response) error {
	e := &providers.Error{Provider: c.Provider, Op: r.Op, Status: resp.Status,
		Message: fmt.Sprintf("HTTP %d: %s", resp.Status, Excerpt(resp.Body))}
	switch {
	case resp.Status == http.StatusUnauthorized || resp.Status == http.StatusForbidden:
		e.Kind, e.Remedy = providers.KindAuth, "check the "+c.Provider+" credentials in the server's environment"
	case resp.Status == http.StatusNotFound:
		e.Kind, e.Remedy = providers.KindNotFound, "check the id with the list tools"
	case resp.Status == http.StatusTooManyRequests:
		e.Kind, e.RetryAfter = providers.KindRateLimited, RetryAfter(resp.Header)
		e.Remedy = "wait before calling " + c.Provider + " again"
	case resp.Status >= 500:
		e.Kind, e.Remedy = providers.KindUnavailable, c.Provider+" is failing; try again later"
		if r.Mutating {
			e.Kind = providers.KindUnknown
			e.Remedy = "the vendor may or may not have done it: check with list_instances or get_instance before trying again"
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
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := time.Until(t); d > 0 {
			return d
		}
	}
	return 0
}

// Excerpt returns the start of a body, on one line, for error messages.
func Excerpt(b []byte) string {
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
