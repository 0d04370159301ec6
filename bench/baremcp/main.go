// Command baremcp is the floor that `make bench` holds gpu-mcp against: a bare mcp-go server,
// of the mcp-go version in go.mod, with one tool (echo), served over stdio or streamable HTTP
// at /mcp with the same flags as gpu-mcp (--transport, --addr) and nothing else: no auth, no
// middleware, no options beyond mcp-go's defaults. What gpu-mcp costs above it is gpu-mcp's own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("baremcp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	transport := fs.String("transport", "stdio", "stdio, or http (streamable HTTP at /mcp)")
	addr := fs.String("addr", "127.0.0.1:8080", "listen address for --transport http (port 0: any free port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	s := newServer()
	var err error
	switch *transport {
	case "stdio":
		err = server.NewStdioServer(s).Listen(ctx, stdin, stdout)
		if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
			err = nil
		}
	case "http":
		err = serveHTTP(ctx, s, *addr, stderr)
	default:
		fmt.Fprintf(stderr, "baremcp: --transport %q is not accepted; use stdio or http\n", *transport)
		return 2
	}
	if err != nil {
		fmt.Fprintln(stderr, "baremcp:", err)
		return 1
	}
	return 0
}

// newServer is an mcp-go server with the echo tool of the reference server
// (@modelcontextprotocol/server-everything): one required string, answered as "Echo: <message>".
func newServer() *server.MCPServer {
	s := server.NewMCPServer("baremcp", "1.0.0", server.WithToolCapabilities(false))
	s.AddTool(mcp.NewTool("echo",
		mcp.WithDescription("Echoes back the input string"),
		mcp.WithString("message", mcp.Required(), mcp.Description("Message to echo")),
	), func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		msg, err := req.RequireString("message")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		return mcp.NewToolResultText("Echo: " + msg), nil
	})
	return s
}

// serveHTTP serves streamable HTTP at /mcp until ctx ends. The log line that gives the address
// has gpu-mcp's wording, so the harness finds both servers' addresses the same way.
func serveHTTP(ctx context.Context, s *server.MCPServer, addr string, stderr io.Writer) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s, server.WithEndpointPath("/mcp")))
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Fprintf(stderr, "serving MCP over streamable HTTP addr=%s\n", ln.Addr())
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
		return srv.Close()
	}
}
