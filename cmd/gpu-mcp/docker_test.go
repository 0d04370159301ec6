package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// dockerEngine returns the docker command when a Docker engine answers, and skips the test
// otherwise: most machines that run the tests (this project's CI among them) have none, and
// the image is then checked where one is.
func dockerEngine(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("docker image test skipped in -short mode")
	}
	docker, err := exec.LookPath("docker")
	if err != nil {
		t.Skip("docker engine not available: no docker command on PATH")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, docker, "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("docker engine not available: docker info: %v: %s", err, strings.TrimSpace(string(out)))
	}
	return docker
}

// TestDockerImage builds the image from the repository's Dockerfile and runs it the way the
// README's Claude Desktop configuration does (docker run -i --rm ...): it must answer initialize
// and tools/list over stdio with the same tools as the binary built from the same source, and
// run as a non-root user from a small image.
func TestDockerImage(t *testing.T) {
	docker := dockerEngine(t)
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	suffix := make([]byte, 6)
	rand.Read(suffix)
	image := "gpu-mcp-test:" + hex.EncodeToString(suffix)
	const imageVersion = "0.0.0-docker-test"
	if out, err := exec.Command(docker, "build", "--build-arg", "VERSION="+imageVersion, "-t", image, root).CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(docker, "image", "rm", "-f", image).Run() })

	out, err := exec.Command(docker, "image", "inspect", "--format",
		`{{json .Config.User}} {{json .Config.Entrypoint}} {{.Size}} {{json .Config.Labels}}`, image).Output()
	if err != nil {
		t.Fatalf("docker image inspect: %v", err)
	}
	fields := strings.SplitN(strings.TrimSpace(string(out)), " ", 4)
	if len(fields) != 4 {
		t.Fatalf("docker image inspect printed %q", out)
	}
	if user := strings.Trim(fields[0], `"`); user == "" || user == "root" || strings.HasPrefix(user, "0") {
		t.Errorf("the image runs as user %q; want a non-root user", user)
	}
	if fields[1] != `["/gpu-mcp"]` {
		t.Errorf("entrypoint %s, want [\"/gpu-mcp\"]", fields[1])
	}
	// A static binary on distroless is some 20 MB; a single-stage image with the Go toolchain
	// would be near a gigabyte.
	size, _ := strconv.ParseInt(fields[2], 10, 64)
	if size <= 0 || size > 100<<20 {
		t.Errorf("image size %d bytes; want a small image (a static binary on a minimal base, under 100 MiB)", size)
	}
	var labels map[string]string
	if err := json.Unmarshal([]byte(fields[3]), &labels); err != nil {
		t.Fatalf("image labels %s: %v", fields[3], err)
	}
	if name := loadRegistryEntry(t).Name; labels["io.modelcontextprotocol.server.name"] != name {
		t.Errorf("label io.modelcontextprotocol.server.name = %q, want server.json's name %q", labels["io.modelcontextprotocol.server.name"], name)
	}
	t.Logf("image %s: user %s, %d bytes", image, fields[0], size)

	stderr := &lockedBuffer{}
	c, err := client.NewStdioMCPClientWithOptions(docker, nil,
		[]string{"run", "-i", "--rm", "-e", "GPU_MCP_DEMO=true", image}, transport.WithCommandStderrWriter(stderr))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A first run may have to start the container runtime; the deadline only keeps a broken
	// engine from hanging the test.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "gpu-mcp-docker-test", Version: "1"}
	res, err := c.Initialize(ctx, init)
	if err != nil {
		t.Fatalf("initialize over docker run -i: %v\nstderr:\n%s", err, stderr.String())
	}
	if res.ServerInfo.Name != "gpu-mcp" || res.ServerInfo.Version != imageVersion {
		t.Errorf("serverInfo %s %s, want gpu-mcp %s (the VERSION build argument)", res.ServerInfo.Name, res.ServerInfo.Version, imageVersion)
	}
	inImage, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list over docker run -i: %v\nstderr:\n%s", err, stderr.String())
	}

	local := startSession(t, []string{"GPU_MCP_DEMO=true"})
	want, err := local.c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, wantNames := toolNames(inImage.Tools), toolNames(want.Tools); !slices.Equal(got, wantNames) {
		t.Errorf("the image serves tools %v; the binary built from this source serves %v", got, wantNames)
	}
}

func toolNames(ts []mcp.Tool) []string {
	var names []string
	for _, t := range ts {
		names = append(names, t.Name)
	}
	slices.Sort(names)
	return names
}
