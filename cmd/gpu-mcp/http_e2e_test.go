package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/gpu-mcp/gpu-mcp/providers/emulated"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
	"github.com/gpu-mcp/gpu-mcp/vendors"
)

// These tests run the gpu-mcp binary as a network server on a free loopback port and talk to
// it with mcp-go's HTTP and SSE clients.

// netServer is a gpu-mcp process serving MCP over streamable HTTP or SSE.
type netServer struct {
	t         *testing.T
	transport string
	cmd       *exec.Cmd
	base      string
	stderr    *lockedBuffer
	exited    chan struct{}
	exitErr   error
}

// networkSettings are cleared like the vendor credentials, so the developer's own cannot leak in.
var networkSettings = []string{"GPU_MCP_TRANSPORT=", "GPU_MCP_ADDR=", "GPU_MCP_AUTH_TOKEN=", "GPU_MCP_ALLOWED_HOSTS=",
	"GPU_MCP_CONFIRM_SECRET=", "GPU_MCP_SHUTDOWN_TIMEOUT=", "GPU_MCP_MAX_SESSIONS=", "GPU_MCP_SESSION_IDLE=", "GPU_MCP_BODY_TIMEOUT="}

var listeningOn = regexp.MustCompile(`serving MCP over .* addr=(\S+)`)

// eventually polls cond until it holds; the bound only keeps a broken build from hanging.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
	}
}

func startNetServer(t *testing.T, transportName string, env []string, args ...string) *netServer {
	t.Helper()
	s := &netServer{t: t, transport: transportName, stderr: &lockedBuffer{}, exited: make(chan struct{})}
	s.cmd = exec.Command(binPath, append([]string{"--transport", transportName, "--addr", "127.0.0.1:0"}, args...)...)
	s.cmd.Env = slices.Concat(os.Environ(), clearedCredentials, networkSettings, []string{"GPU_MCP_LOG_LEVEL=debug"}, env)
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.exitErr = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
	eventually(t, "gpu-mcp listening", func() bool {
		select {
		case <-s.exited:
			t.Fatalf("gpu-mcp exited (%v):\n%s", s.exitErr, s.stderr.String())
		default:
		}
		m := listeningOn.FindStringSubmatch(s.stderr.String())
		if m != nil {
			s.base = "http://" + m[1]
		}
		return m != nil
	})
	return s
}

// connect opens an MCP session with the bearer token; ask, if set, answers elicitations.
func (s *netServer) connect(ask client.ElicitationHandler) *session {
	t := s.t
	t.Helper()
	headers := map[string]string{"Authorization": "Bearer " + testAuthToken}
	var tr transport.Interface
	var err error
	if s.transport == "sse" {
		tr, err = transport.NewSSE(s.base+"/sse", transport.WithHeaders(headers))
	} else {
		tr, err = transport.NewStreamableHTTP(s.base+"/mcp", transport.WithHTTPHeaders(headers))
	}
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.ClientOption
	if ask != nil {
		opts = append(opts, client.WithElicitationHandler(ask))
	}
	c := client.NewClient(tr, opts...)
	t.Cleanup(func() { c.Close() })
	// The SSE client's stream lives as long as the context given to Start.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start: %v\n%s", err, s.stderr.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gpu-mcp-net-e2e", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize over %s: %v\n%s", s.transport, err, s.stderr.String())
	}
	return &session{t: t, c: c, stderr: s.stderr}
}

// wait returns the exit status once the process ended.
func (s *netServer) wait() int {
	s.t.Helper()
	<-s.exited
	var ee *exec.ExitError
	if errors.As(s.exitErr, &ee) {
		return ee.ExitCode()
	}
	if s.exitErr != nil {
		s.t.Fatal(s.exitErr)
	}
	return 0
}

// Replicas that share GPU_MCP_CONFIRM_SECRET and a store accept each other's confirmation
// tokens, once: an agent behind a load balancer may get its plan from one and confirm on
// another.
func TestHTTPReplicasShareConfirmations(t *testing.T) {
	v := vendors.All()[0]
	emu, vendor := emulate(t, v, emulated.Options{})
	vendor = append(vendor, "GPU_MCP_AUTH_TOKEN="+testAuthToken)
	shared := []string{"GPU_MCP_CONFIRM_SECRET=replicas-share-this-secret-0123456789", "GPU_MCP_STATE_URL=" + statetest.SQLiteURL(t)}
	a := startNetServer(t, "http", slices.Concat(vendor, shared)).connect(nil)
	b := startNetServer(t, "http", slices.Concat(vendor, shared)).connect(nil)
	stranger := startNetServer(t, "http", append(slices.Clone(vendor), "GPU_MCP_CONFIRM_SECRET=some-other-secret-0123456789abcdef")).connect(nil)

	offer, image := hourlyOffer(t, a, v.Name)
	args := map[string]any{"offer_id": offer, "image_id": image, "name": "replica"}
	instances := len(instanceIDs(a.ok("list_instances", map[string]any{"provider": v.Name})))
	plan := a.ok("launch_instance", args)
	if plan["status"] != "confirmation_required" || emu.Changes() != 0 {
		t.Fatalf("plan from replica a: %v; %d changes at the vendor", plan, emu.Changes())
	}
	withToken := map[string]any{"confirm_token": plan["confirmation_token"]}
	for k, v := range args {
		withToken[k] = v
	}

	stranger.fails("launch_instance", withToken, "not valid")
	if n := emu.Changes(); n != 0 {
		t.Fatalf("a server with another secret sent %d changes to the vendor", n)
	}
	done := b.ok("launch_instance", withToken)
	id, _ := done["instance_id"].(string)
	if done["status"] != "done" || !strings.HasPrefix(id, v.Name+":") {
		t.Fatalf("confirm on replica b: %v", done)
	}
	if _, ok := emu.SSHAddr(local(id)); !ok {
		t.Fatalf("the vendor has no instance %s", id)
	}
	// Single use holds on every replica of the store.
	b.fails("launch_instance", withToken, "already been used")
	a.fails("launch_instance", withToken, "already been used")
	listed := instanceIDs(a.ok("list_instances", map[string]any{"provider": v.Name}))
	if !slices.Contains(listed, id) {
		t.Fatal("replica a does not list the instance launched through b")
	}
	if n := len(listed) - instances; n != 1 {
		t.Fatalf("%d new instances at the vendor, want 1", n)
	}
	a.noSecretsIn(testAuthToken, emu.Credential(), "replicas-share-this-secret-0123456789")
}

// A SIGTERM lets the call in flight finish and answer; new calls are refused meanwhile, and
// /healthz says so.
func TestNetworkShutdownFinishesCallsInFlight(t *testing.T) {
	for _, tr := range []string{"http", "sse"} {
		t.Run(tr, func(t *testing.T) {
			v := vendors.All()[0]
			arrived, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			hold := func(h http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.HasSuffix(r.URL.Path, v.Endpoints.Offers) {
						held := false
						once.Do(func() { held = true; close(arrived) })
						if held {
							<-release
						}
					}
					h.ServeHTTP(w, r)
				})
			}
			var releaseOnce sync.Once
			defer releaseOnce.Do(func() { close(release) })
			_, vendor := emulate(t, v, emulated.Options{Wrap: hold})

			srv := startNetServer(t, tr, append(vendor, "GPU_MCP_AUTH_TOKEN="+testAuthToken))
			s := srv.connect(nil)
			type answer struct {
				res *mcp.CallToolResult
				err error
			}
			answered := make(chan answer, 1)
			go func() {
				req := mcp.CallToolRequest{}
				req.Params.Name = "list_gpu_offers"
				req.Params.Arguments = map[string]any{"provider": v.Name}
				res, err := s.c.CallTool(context.Background(), req)
				answered <- answer{res, err}
			}()
			select {
			case <-arrived:
			case <-time.After(30 * time.Second):
				t.Fatalf("the call never reached the vendor:\n%s", srv.stderr.String())
			}

			if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			eventually(t, "the server to start draining", func() bool { return strings.Contains(srv.stderr.String(), "shutting down") })
			health, err := http.Get(srv.base + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			health.Body.Close()
			if health.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("healthz while draining: %d", health.StatusCode)
			}
			newCall := srv.base + "/mcp"
			if tr == "sse" {
				newCall = srv.base + "/message?sessionId=any"
			}
			res, _ := post(t, newCall, `{"jsonrpc":"2.0","id":99,"method":"tools/list"}`, map[string]string{"Authorization": "Bearer " + testAuthToken})
			if res.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("a new call while draining: %d", res.StatusCode)
			}

			releaseOnce.Do(func() { close(release) })
			a := <-answered
			if a.err != nil || a.res.IsError || !strings.Contains(resultText(a.res), v.Name+":") {
				t.Fatalf("the call in flight: %v %+v\n%s", a.err, a.res, srv.stderr.String())
			}
			if code := srv.wait(); code != 0 {
				t.Fatalf("exit status %d:\n%s", code, srv.stderr.String())
			}
			if !strings.Contains(srv.stderr.String(), "stopped") {
				t.Fatalf("no clean stop in the logs:\n%s", srv.stderr.String())
			}
		})
	}
}

// A client that can ask its user gets the question over both network transports: the
// question travels in the tool result (multi-round-trip), not as a server-initiated request.
func TestNetworkElicitation(t *testing.T) {
	for _, tr := range []string{"http", "sse"} {
		t.Run(tr, func(t *testing.T) {
			v := vendors.All()[0]
			emu, vendor := emulate(t, v, emulated.Options{})
			srv := startNetServer(t, tr, append(vendor, "GPU_MCP_AUTH_TOKEN="+testAuthToken))
			var mu sync.Mutex
			var asked []string
			s := srv.connect(approveAll(func(msg string) { mu.Lock(); asked = append(asked, msg); mu.Unlock() }))
			offer, image := hourlyOffer(t, s, v.Name)
			m := s.ok("launch_instance", map[string]any{"offer_id": offer, "image_id": image})
			mu.Lock()
			defer mu.Unlock()
			if _, ok := emu.SSHAddr(local(m["instance_id"])); m["status"] != "done" || len(asked) != 1 || !ok {
				t.Fatalf("over %s: %v, asked %q, the instance at the vendor: %v", tr, m, asked, ok)
			}
		})
	}
}

// approveAll is a user who approves every plan, and reports each question.
type approveAll func(message string)

func (a approveAll) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	a(req.Params.Message)
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"approve": true}}}, nil
}

func TestNetworkRefusesToStartExposed(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		addr string
		want string
	}{
		{addr: "0.0.0.0:0", want: "GPU_MCP_AUTH_TOKEN is not set"},
		{addr: "0.0.0.0:0", env: []string{"GPU_MCP_AUTH_TOKEN=" + testAuthToken}, want: "GPU_MCP_ALLOWED_HOSTS"},
		{addr: "127.0.0.1:0", env: []string{"GPU_MCP_AUTH_TOKEN=short"}, want: "too short"},
		{addr: "127.0.0.1", want: "host:port"},
	} {
		cmd := exec.Command(binPath, "--demo", "--transport", "http", "--addr", tc.addr)
		cmd.Env = slices.Concat(os.Environ(), clearedCredentials, networkSettings, tc.env)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("--addr %s %v: %v\n%s", tc.addr, tc.env, err, out)
		}
		if strings.Contains(string(out), "emulators started") || strings.Contains(string(out), testAuthToken) {
			t.Errorf("--addr %s: started something, or logged the token:\n%s", tc.addr, out)
		}
	}
}
