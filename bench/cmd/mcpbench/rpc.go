package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// protocolVersion is the MCP revision the harness speaks: the newest that all three servers
// serve with sessions (mcp-go's 2026-07-28 has none, and the reference does not know it).
const protocolVersion = "2025-11-25"

var initializeParams = []byte(`{"protocolVersion":"` + protocolVersion + `","capabilities":{},"clientInfo":{"name":"mcpbench","version":"1"}}`)

var initializedNotification = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)

// firstID is the first JSON-RPC id the harness uses. Ids this large do not occur as other
// numbers in the servers' answers, so finding `"id":N` in an answer is enough to match it.
const firstID = 1_000_001

// request is the text of one JSON-RPC request.
func request(id int64, method string, params []byte) []byte {
	b := make([]byte, 0, 64+len(method)+len(params))
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":"`...)
	b = append(b, method...)
	b = append(b, '"')
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// toolCallParams are the params of a tools/call of tool with args (a JSON object).
func toolCallParams(tool, args string) []byte {
	return []byte(`{"name":"` + tool + `","arguments":` + args + `}`)
}

var idKey = []byte(`"id":`)

// hasID reports whether a JSON-RPC message carries the id n: a `"id":` key followed by n and a
// byte that cannot continue a number. It reads no further than that (see firstID).
func hasID(msg []byte, n int64) bool {
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], n, 10)
	for rest := msg; ; {
		i := bytes.Index(rest, idKey)
		if i < 0 {
			return false
		}
		rest = bytes.TrimLeft(rest[i+len(idKey):], " ")
		if after, ok := bytes.CutPrefix(rest, digits); ok && (len(after) == 0 || !strings.ContainsRune("0123456789.eE+-", rune(after[0]))) {
			return true
		}
	}
}

var (
	resultKey    = []byte(`"result":`)
	errorTrue    = []byte(`Error":true`)
	sseDataField = []byte("data:")
)

// isToolError reports whether an answer holds `"isError":true`. It looks for `Error":true`
// and then for `"is` before it: answers are full of '"', which makes bytes.Index fall back to
// its slow search, and 'E' is rare.
func isToolError(msg []byte) bool {
	for rest := msg; ; {
		i := bytes.Index(rest, errorTrue)
		if i < 0 {
			return false
		}
		if i >= 3 && string(rest[i-3:i]) == `"is` {
			return true
		}
		rest = rest[i+1:]
	}
}

// quickCheck is the check every stdio answer gets: a result (a JSON-RPC error has none) that
// is not a tool error. Two byte searches, no decoding.
func quickCheck(msg []byte) error {
	if !bytes.Contains(msg, resultKey) {
		return fmt.Errorf("not a result: %s", clip(msg))
	}
	if isToolError(msg) {
		return fmt.Errorf("tool error: %s", clip(msg))
	}
	return nil
}

// answer is the part of an answer fullCheck decodes.
type answer struct {
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Result *struct {
		ProtocolVersion string `json:"protocolVersion"`
		IsError         bool   `json:"isError"`
		Content         []struct {
			Text string `json:"text"`
		} `json:"content"`
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	} `json:"result"`
}

// fullCheck decodes an answer (once per scenario, not per call): it must be a result, not a
// JSON-RPC error nor a tool error. It returns the number of tools in a tools/list answer.
func fullCheck(msg []byte) (tools int, err error) {
	var a answer
	if err := json.Unmarshal(msg, &a); err != nil {
		return 0, fmt.Errorf("answer is not JSON (%v): %s", err, clip(msg))
	}
	switch {
	case a.Error != nil:
		return 0, fmt.Errorf("JSON-RPC error %d: %s", a.Error.Code, a.Error.Message)
	case a.Result == nil:
		return 0, fmt.Errorf("answer has no result: %s", clip(msg))
	case a.Result.IsError:
		var texts []string
		for _, c := range a.Result.Content {
			texts = append(texts, c.Text)
		}
		return 0, fmt.Errorf("tool error: %s", strings.Join(texts, " "))
	}
	return len(a.Result.Tools), nil
}

// sseMessage is the JSON-RPC message in an HTTP answer body: the body itself when it is JSON,
// the first data field's value when it is an SSE stream (whose events may carry notifications
// before the answer, hence the id).
func sseMessage(body []byte, id int64) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return trimmed, nil
	}
	for line := range bytes.Lines(body) {
		if data, ok := bytes.CutPrefix(line, sseDataField); ok {
			data = bytes.TrimSpace(data)
			if hasID(data, id) {
				return data, nil
			}
		}
	}
	return nil, fmt.Errorf("no JSON-RPC answer with id %d in the body: %s", id, clip(body))
}

// clip is the start of a message, for error text.
func clip(b []byte) string {
	const max = 300
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}
