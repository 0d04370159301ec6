package main

import (
	"fmt"
	"net"
	"regexp"
)

// server is one of the programs measured: how to start it on each transport, and the tool
// calls measured on it.
type server struct {
	name  string // column heading
	stdio launch
	http  func() (launch, error)
	auth  string // bearer token sent over HTTP, if it wants one
	calls []toolCall
}

// toolCall is one tools/call measured. A server's first is the one compared with the other
// servers' first.
type toolCall struct {
	label      string
	tool, args string
}

const (
	gpuName  = "gpu-mcp"
	bareName = "bare mcp-go"
	refName  = "reference"
)

// demoEnv is gpu-mcp's environment in every measurement: the demo emulators' state changes
// take 10 ms instead of 2 s (only launches and stops wait for them; no measured call does).
var demoEnv = []string{"GPU_MCP_DEMO_STEP_DELAY=10ms"}

// listeningRE finds the address in gpu-mcp's and baremcp's "serving MCP over streamable HTTP"
// log line.
var listeningRE = regexp.MustCompile(`serving MCP over streamable HTTP.*\baddr=(\S+)`)

func listeningAddr(line string) string {
	if m := listeningRE.FindStringSubmatch(line); m != nil {
		return m[1]
	}
	return ""
}

var echo = toolCall{label: "echo", tool: "echo", args: `{"message":"hello"}`}

func gpuMCP(o options, token string) server {
	return server{
		name:  gpuName,
		stdio: launch{path: o.bin, args: []string{"--demo"}, env: demoEnv},
		http: func() (launch, error) {
			return launch{
				path:   o.bin,
				args:   []string{"--demo", "--transport", "http", "--addr", "127.0.0.1:0"},
				env:    append([]string{"GPU_MCP_AUTH_TOKEN=" + token}, demoEnv...),
				addrOf: listeningAddr,
			}, nil
		},
		auth: token,
		calls: []toolCall{
			{label: `list_gpu_offers {"limit":20} warm`, tool: "list_gpu_offers", args: `{"limit":20}`},
			{label: "list_providers", tool: "list_providers", args: `{}`},
		},
	}
}

func bareMCP(o options) server {
	return server{
		name:  bareName,
		stdio: launch{path: o.bare},
		http: func() (launch, error) {
			return launch{path: o.bare, args: []string{"--transport", "http", "--addr", "127.0.0.1:0"}, addrOf: listeningAddr}, nil
		},
		calls: []toolCall{echo},
	}
}

var refListeningRE = regexp.MustCompile(`listening on port (\d+)`)

// reference is @modelcontextprotocol/server-everything run by node. It takes its port from
// PORT, so the harness picks a free one.
func reference(o options) server {
	return server{
		name:  refName,
		stdio: launch{path: o.node, args: []string{o.ref, "stdio"}},
		http: func() (launch, error) {
			port, err := freePort()
			if err != nil {
				return launch{}, err
			}
			return launch{
				path: o.node, args: []string{o.ref, "streamableHttp"}, env: []string{"PORT=" + port},
				addrOf: func(line string) string {
					if m := refListeningRE.FindStringSubmatch(line); m != nil {
						return "127.0.0.1:" + m[1]
					}
					return ""
				},
			}, nil
		},
		calls: []toolCall{echo},
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}
