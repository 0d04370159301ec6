package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestHasID(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		id   int64
		want bool
	}{
		{`{"jsonrpc":"2.0","id":1000001,"result":{}}`, 1000001, true},
		{`{"result":{"content":[]},"jsonrpc":"2.0","id":1000001}`, 1000001, true}, // the TypeScript SDK puts the id last
		{`{"jsonrpc":"2.0","id": 1000001,"result":{}}`, 1000001, true},
		{`{"jsonrpc":"2.0","id":10000012,"result":{}}`, 1000001, false}, // a longer number
		{`{"jsonrpc":"2.0","id":1000001.5,"result":{}}`, 1000001, false},
		{`{"jsonrpc":"2.0","id":1000002,"result":{}}`, 1000001, false},
		{`{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"id 1000001"}}`, 1000001, false},
		{`{"jsonrpc":"2.0","id":"1000001","result":{}}`, 1000001, false}, // a string id is not ours
		{`{"a":{"id":7},"jsonrpc":"2.0","id":1000001}`, 1000001, true},   // an earlier "id" key is skipped
		{`{"text":"{\"id\":1000001}"}`, 1000001, false},                  // escaped inside a string
		{`"id":1000001`, 1000001, true},                                  // at the very end
	} {
		if got := hasID([]byte(tc.msg), tc.id); got != tc.want {
			t.Errorf("hasID(%s, %d) = %v, want %v", tc.msg, tc.id, got, tc.want)
		}
	}
}

func TestIsToolError(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want bool
	}{
		{`{"result":{"content":[{"type":"text","text":"no"}],"isError":true}}`, true},
		{`{"result":{"content":[{"type":"text","text":"fine"}]}}`, false},
		{`{"result":{"isError":false}}`, false},
		{`{"result":{"lastError":true,"isError":true}}`, true}, // a first `Error":true` that is not it
		{`{"result":{"lastError":true}}`, false},
		{`Error":true`, false},
	} {
		if got := isToolError([]byte(tc.msg)); got != tc.want {
			t.Errorf("isToolError(%s) = %v, want %v", tc.msg, got, tc.want)
		}
	}
}

func TestFullCheck(t *testing.T) {
	n, err := fullCheck([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a"},{"name":"b"}]}}`))
	if err != nil || n != 2 {
		t.Errorf("tools/list answer: %d tools, %v; want 2, nil", n, err)
	}
	for msg, want := range map[string]string{
		`{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no such method"}}`:                 "JSON-RPC error -32601: no such method",
		`{"jsonrpc":"2.0","id":1,"result":{"isError":true,"content":[{"type":"text","text":"bad"}]}}`: "tool error: bad",
		`{"jsonrpc":"2.0","id":1}`: "answer has no result",
		`not json`:                 "answer is not JSON",
	} {
		if _, err := fullCheck([]byte(msg)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("fullCheck(%s) = %v, want an error with %q", msg, err, want)
		}
	}
}

func TestSSEMessage(t *testing.T) {
	json := `{"jsonrpc":"2.0","id":1000001,"result":{}}`
	for body, want := range map[string]string{
		json + "\n":                              json,
		"event: message\ndata: " + json + "\n\n": json,
		"event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\nevent: message\ndata: " + json + "\n\n": json,
	} {
		got, err := sseMessage([]byte(body), 1000001)
		if err != nil || string(got) != want {
			t.Errorf("sseMessage(%q) = %s, %v; want %s", body, got, err, want)
		}
	}
	if _, err := sseMessage([]byte("event: message\ndata: {\"id\":5}\n\n"), 1000001); err == nil {
		t.Error("sseMessage found an answer with another id")
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		xs   []float64
		want summary
	}{
		{[]float64{3, 1, 2}, summary{min: 1, median: 2, max: 3, n: 3}},
		{[]float64{4, 1, 3, 2}, summary{min: 1, median: 2.5, max: 4, n: 4}},
		{[]float64{7}, summary{min: 7, median: 7, max: 7, n: 1}},
		{nil, summary{}},
	} {
		if got := summarize(tc.xs); got != tc.want {
			t.Errorf("summarize(%v) = %+v, want %+v", tc.xs, got, tc.want)
		}
	}
	xs := []float64{3, 1, 2}
	summarize(xs)
	if xs[0] != 3 {
		t.Error("summarize sorted its argument in place")
	}
}

func TestParseStatus(t *testing.T) {
	status := "Name:\tgpu-mcp\nVmPeak:\t 1289484 kB\nVmHWM:\t   22116 kB\nVmRSS:\t   21004 kB\nThreads:\t9\n"
	m, err := parseStatus([]byte(status))
	if err != nil || m != (memory{rss: 21004, hwm: 22116}) {
		t.Errorf("parseStatus = %+v, %v; want rss 21004, hwm 22116", m, err)
	}
	for _, bad := range []string{"Name:\tx\nVmRSS:\t 1 kB\n", "VmHWM:\t 12 MB\nVmRSS:\t 1 kB\n", "VmHWM:\t x kB\nVmRSS:\t 1 kB\n"} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) accepted it", bad)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	// A command name with a space and a parenthesis; utime 150 and stime 50 ticks.
	stat := "4242 (node (x) y) S 1 4242 4242 0 -1 4194560 5000 0 0 0 150 50 0 0 20 0 11 0 100 1000000 5000"
	d, err := parseStatCPU([]byte(stat))
	if err != nil || d != 2*time.Second {
		t.Errorf("parseStatCPU = %s, %v; want 2s", d, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("parseStatCPU accepted a short line")
	}
}

func TestReadResponse(t *testing.T) {
	// Three answers on one kept-alive connection: JSON with a length, SSE chunked, then a 202.
	stream := "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nmcp-session-id: abc\r\nContent-Length: 13\r\n\r\n" +
		`{"result":{}}` +
		"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"7\r\nevent: \r\n10;ext=1\r\nmessage\ndata: {}\r\n2\r\n\n\n\r\n0\r\nX-Trailer: 1\r\n\r\n" +
		"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	br := bufio.NewReader(strings.NewReader(stream))
	var buf bytes.Buffer
	want := []response{
		{status: 200, session: "abc", body: []byte(`{"result":{}}`)},
		{status: 200, body: []byte("event: message\ndata: {}\n\n")},
		{status: 202, close: true, body: []byte{}},
	}
	for i, w := range want {
		r, err := readResponse(br, &buf)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		if r.status != w.status || r.session != w.session || r.close != w.close || !bytes.Equal(r.body, w.body) {
			t.Errorf("answer %d = {%d %q close=%v %q}, want {%d %q close=%v %q}", i+1, r.status, r.session, r.close, r.body, w.status, w.session, w.close, w.body)
		}
	}
	for _, bad := range []string{
		"SSH-2.0-OpenSSH\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	} {
		if _, err := readResponse(bufio.NewReader(strings.NewReader(bad)), &buf); err == nil {
			t.Errorf("readResponse(%q) accepted it", bad)
		}
	}
	// A connection that ends before an answer begins can take the request again; one that
	// ends within an answer cannot.
	if _, err := readResponse(bufio.NewReader(strings.NewReader("")), &buf); !errors.Is(err, io.EOF) {
		t.Errorf("no answer at all: %v, want io.EOF", err)
	}
	_, err := readResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nContent-")), &buf)
	if errors.Is(err, io.EOF) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("an answer cut short: %v, want io.ErrUnexpectedEOF and not io.EOF", err)
	}
}

func TestNum(t *testing.T) {
	for v, want := range map[float64]string{55636: "55,636", 999: "999", 1234567.891: "1,234,567.89", -1500: "-1,500"} {
		if got := num(v, strings.Count(want, ".")*2); got != want {
			t.Errorf("num(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestParseLoadavg(t *testing.T) {
	if v, err := parseLoadavg([]byte("6.41 5.13 3.27 2/156 20678\n")); err != nil || v != 6.41 {
		t.Errorf("parseLoadavg = %v, %v; want 6.41", v, err)
	}
	if _, err := parseLoadavg([]byte("")); err == nil {
		t.Error("parseLoadavg accepted an empty file")
	}
}
