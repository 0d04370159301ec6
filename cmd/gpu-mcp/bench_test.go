package main

// Benchmarks only (they run with -bench, never in `go test`): gpu-mcp's HTTP front and MCP
// server in-process, on a loopback httptest server with the demo's emulators, as a client of
// the streamable HTTP transport sees them. Profile with -cpuprofile.

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// benchFront serves the demo over streamable HTTP with the defaults a deployment has (the
// offer cache on, logs at info), behind a bearer token.
func benchFront(b *testing.B) *httptest.Server {
	b.Helper()
	cfg := Config{Transport: "http", Addr: "127.0.0.1:0", Demo: true, AuthToken: testAuthToken, LogLevel: "info",
		ConfirmTTL: 5 * time.Minute, VendorTimeout: 30 * time.Second, OfferCacheTTL: 30 * time.Second}
	nc, err := loadNetConfig(cfg, nil)
	if err != nil {
		b.Fatal(err)
	}
	app, err := newApp(cfg, newLogger(cfg.LogLevel, io.Discard))
	if err != nil {
		b.Fatal(err)
	}
	f := newFront(app, cfg, nc, io.Discard)
	ts := httptest.NewServer(f)
	b.Cleanup(func() { ts.Close(); f.stopStreams(); app.Close() })
	return ts
}

// BenchmarkHTTPCall is one tools/call after another, over one session and one kept-alive
// connection per goroutine (b.RunParallel): list_gpu_offers warm from the offer cache with
// the page of the published harness (limit 20) and the default page, and tools/list.
func BenchmarkHTTPCall(b *testing.B) {
	for _, c := range []struct{ name, body string }{
		{"list_gpu_offers-limit20", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_gpu_offers","arguments":{"limit":20}}}`},
		{"list_gpu_offers-default", `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_gpu_offers","arguments":{}}}`},
		{"tools-list", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`},
	} {
		b.Run(c.name, func(b *testing.B) {
			ts := benchFront(b)
			auth := "Bearer " + testAuthToken
			b.RunParallel(func(pb *testing.PB) {
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				send := func(session, body string) (string, []byte) {
					req, _ := http.NewRequest(http.MethodPost, ts.URL+"/mcp", strings.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					req.Header.Set("Accept", "application/json, text/event-stream")
					req.Header.Set("Authorization", auth)
					req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
					if session != "" {
						req.Header.Set("Mcp-Session-Id", session)
					}
					res, err := client.Do(req)
					if err != nil {
						panic(err)
					}
					defer res.Body.Close()
					out, _ := io.ReadAll(res.Body)
					if res.StatusCode/100 != 2 {
						panic(fmt.Sprintf("HTTP %d: %s", res.StatusCode, out))
					}
					return res.Header.Get("Mcp-Session-Id"), out
				}
				session, _ := send("", initializeBody)
				send(session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
				for pb.Next() {
					if _, out := send(session, c.body); bytes.Contains(out, []byte(`"isError":true`)) {
						panic(string(out))
					}
				}
			})
		})
	}
}
