// Package faults makes an emulated vendor misbehave, for tests: slow answers, rate limits,
// server errors, garbage, gateway error pages, dropped connections, bodies that stall and
// error bodies that quote the request's credentials. The emulators' skeleton (package emu)
// wraps their handlers with an Injector and exposes it as SetFaults.
package faults

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Faults is one rule: which requests it applies to, and what goes wrong. When several faults
// are set, they apply in the order of the fields (Latency first, then the first answer fault).
type Faults struct {
	// Method limits the rule to requests with this method ("": any).
	Method string
	// Path limits the rule to requests whose URL path ends with Path ("": any).
	Path string
	// Times limits the rule to the first Times matching requests (0: all of them).
	Times int

	// Latency delays the request by this long before the vendor handles it. A client that
	// gives up meanwhile does not stop the request: the vendor still handles it, as a real
	// one would once the request has arrived.
	Latency time.Duration
	// Status429 answers 429 with a rate-limit body, and the Retry-After header when set.
	Status429  bool
	RetryAfter string
	// Status500 answers 500 with an internal-error body; the request is not handled.
	Status500 bool
	// HTMLErrorPage answers 502 with a gateway's HTML page; the request is not handled.
	HTMLErrorPage bool
	// MalformedJSON handles the request, then sends the first half of its answer only.
	MalformedJSON bool
	// DropConnection handles the request, then closes the connection without an answer: the
	// worst case for a purchase, which happened although the client cannot know it.
	DropConnection bool
	// SlowBody handles the request, sends the headers and the first half of the answer, waits
	// this long, then sends the rest.
	SlowBody time.Duration
	// EchoStatus answers with this status and an error body that quotes the request: its
	// Authorization header, its URL with the query string, and every header, as a proxy or a
	// firewall that reports what it refused does. The request is not handled. With a 2xx
	// status the body is a refusal in the vendors' envelope (code 1, success false).
	EchoStatus int
}

func (f Faults) matches(r *http.Request) bool {
	return (f.Method == "" || strings.EqualFold(f.Method, r.Method)) && (f.Path == "" || strings.HasSuffix(r.URL.Path, f.Path))
}

// maxBody bounds the request bodies the injector reads; the emulators read no more either.
const maxBody = 1 << 20

type rule struct {
	Faults
	left int // for Times > 0: how many more requests it applies to
}

// Injector applies faults to the requests of one handler. It is safe for concurrent use.
type Injector struct {
	mu      sync.Mutex
	rules   []*rule
	applied int
	stop    chan struct{}
	once    sync.Once
}

// NewInjector returns an injector without faults.
func NewInjector() *Injector { return &Injector{stop: make(chan struct{})} }

// Set replaces the rules; each request gets the first one that matches it. No rule: no fault.
func (in *Injector) Set(rules ...Faults) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = in.rules[:0]
	for _, f := range rules {
		in.rules = append(in.rules, &rule{Faults: f, left: f.Times})
	}
}

// Applied counts the requests a fault was applied to.
func (in *Injector) Applied() int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.applied
}

// Stop ends every wait at once, so that the server can close without waiting them out.
func (in *Injector) Stop() { in.once.Do(func() { close(in.stop) }) }

func (in *Injector) match(r *http.Request) (Faults, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, ru := range in.rules {
		if !ru.matches(r) {
			continue
		}
		if ru.Times > 0 {
			if ru.left == 0 {
				continue
			}
			ru.left--
		}
		in.applied++
		return ru.Faults, true
	}
	return Faults{}, false
}

// sleep waits d, or less when the injector stops or done is closed (the client went away).
func (in *Injector) sleep(d time.Duration, done <-chan struct{}) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-done:
	case <-in.stop:
	}
}

// Wrap returns h with the faults applied.
func (in *Injector) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := in.match(r)
		if !ok {
			h.ServeHTTP(w, r)
			return
		}
		// The request's context ends when the client hangs up only once its body has been
		// read: read it first, so that a wait ends early for a client that gave up.
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
		if err != nil {
			panic(http.ErrAbortHandler)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if f.Latency > 0 {
			in.sleep(f.Latency, r.Context().Done())
		}
		switch {
		case f.Status429:
			if f.RetryAfter != "" {
				w.Header().Set("Retry-After", f.RetryAfter)
			}
			writeJSON(w, http.StatusTooManyRequests, `{"code":429,"msg":"请求过于频繁 / too many requests (injected fault)","message":"too many requests (injected fault)"}`)
			return
		case f.Status500:
			writeJSON(w, http.StatusInternalServerError, `{"code":-2,"msg":"系统异常 / internal error (injected fault)","message":"internal error (injected fault)"}`)
			return
		case f.EchoStatus != 0:
			writeJSON(w, f.EchoStatus, echo(r, f.EchoStatus))
			return
		case f.HTMLErrorPage:
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			_, _ = w.Write([]byte(gatewayPage))
			return
		case !f.MalformedJSON && !f.DropConnection && f.SlowBody <= 0:
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		body = rec.Body.Bytes()
		if f.DropConnection {
			// The standard way to end a connection without an answer; net/http does not log it.
			panic(http.ErrAbortHandler)
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		half := len(body) / 2
		if f.MalformedJSON {
			w.Header().Set("Content-Length", strconv.Itoa(half))
			w.WriteHeader(rec.Code)
			_, _ = w.Write(body[:half])
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body[:half])
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
		in.sleep(f.SlowBody, r.Context().Done())
		_, _ = w.Write(body[half:])
	})
}

// echo is an error body quoting r, under every key an adapter reads a message from.
func echo(r *http.Request, status int) string {
	code := status
	if status < 300 {
		code = 1
	}
	said := fmt.Sprintf("invalid token: %s for %s %s (request headers: %v)", r.Header.Get("Authorization"), r.Method, r.URL.RequestURI(), r.Header)
	b, _ := json.Marshal(map[string]any{"code": code, "success": false, "msg": said, "message": said, "error": said,
		"fails": []map[string]string{{"message": said}}})
	return string(b)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

const gatewayPage = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
`
