package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// registryEntry is the part of server.json, gpu-mcp's entry in the MCP registry, that has to
// agree with the rest of the repository.
type registryEntry struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Version     string `json:"version"`
	Packages    []struct {
		RegistryType string `json:"registryType"`
		Identifier   string `json:"identifier"`
		Transport    struct {
			Type string `json:"type"`
		} `json:"transport"`
		EnvironmentVariables []registryInput `json:"environmentVariables"`
	} `json:"packages"`
}

type registryInput struct {
	Name     string   `json:"name"`
	Format   string   `json:"format"`
	Default  string   `json:"default"`
	Choices  []string `json:"choices"`
	IsSecret bool     `json:"isSecret"`
}

// repoFile reads a file at the top of the repository.
func repoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadRegistryEntry(t *testing.T) registryEntry {
	t.Helper()
	var e registryEntry
	if err := json.Unmarshal([]byte(repoFile(t, "server.json")), &e); err != nil {
		t.Fatalf("server.json: %v", err)
	}
	return e
}

// TestServerJSONAgreesWithTheRepository keeps the registry entry true to the release it
// describes: the version CHANGELOG.md last released, the image the Dockerfile labels for the
// registry's ownership check, and settings the README documents.
func TestServerJSONAgreesWithTheRepository(t *testing.T) {
	e := loadRegistryEntry(t)
	// The registry's own rules for a name and a description.
	if !regexp.MustCompile(`^[a-zA-Z0-9.-]+/[a-zA-Z0-9._-]+$`).MatchString(e.Name) {
		t.Errorf("server.json name %q is not namespace/name", e.Name)
	}
	if n := len(e.Description); n == 0 || n > 100 {
		t.Errorf("server.json description has %d characters; the registry takes 1 to 100", n)
	}

	released := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+[^\]]*)\] - \d{4}-\d{2}-\d{2}$`).FindStringSubmatch(repoFile(t, "CHANGELOG.md"))
	if released == nil {
		t.Fatal("CHANGELOG.md names no released version (## [x.y.z] - yyyy-mm-dd)")
	}
	if e.Version != released[1] {
		t.Errorf("server.json version %q, but CHANGELOG.md's newest release is %q", e.Version, released[1])
	}

	label := regexp.MustCompile(`io\.modelcontextprotocol\.server\.name="([^"]+)"`).FindStringSubmatch(repoFile(t, "Dockerfile"))
	if label == nil || label[1] != e.Name {
		t.Errorf("the Dockerfile's io.modelcontextprotocol.server.name label %v must be server.json's name %q", label, e.Name)
	}

	if len(e.Packages) == 0 {
		t.Fatal("server.json lists no package")
	}
	var documented []string
	for _, line := range strings.Split(repoFile(t, "README.md"), "\n") {
		if strings.HasPrefix(line, "| ") {
			documented = append(documented, line)
		}
	}
	for _, p := range e.Packages {
		if p.RegistryType != "oci" || p.Identifier != "ghcr.io/gpu-mcp/gpu-mcp:"+e.Version || p.Transport.Type != "stdio" {
			t.Errorf("package %s %s over %s; want the oci image ghcr.io/gpu-mcp/gpu-mcp:%s over stdio",
				p.RegistryType, p.Identifier, p.Transport.Type, e.Version)
		}
		for _, v := range p.EnvironmentVariables {
			if !slices.ContainsFunc(documented, func(line string) bool { return strings.Contains(line, v.Name) }) {
				t.Errorf("server.json offers %s, which no table of the README documents", v.Name)
			}
			secret := strings.HasSuffix(v.Name, "_TOKEN") || strings.HasSuffix(v.Name, "_KEY") || strings.HasSuffix(v.Name, "_SECRET")
			if secret && !v.IsSecret {
				t.Errorf("server.json must mark %s as a secret (isSecret), so that clients hide and protect it", v.Name)
			}
		}
	}
}

// TestServerJSONSettingsAreReadByGpuMcp runs the binary with each setting of server.json that has
// a format, choices or a default (not the free-form tokens and names): its default must be accepted and a wrong value refused with an error that says which setting or
// what it accepts, so the entry can offer no setting gpu-mcp ignores.
func TestServerJSONSettingsAreReadByGpuMcp(t *testing.T) {
	e := loadRegistryEntry(t)
	for _, v := range e.Packages[0].EnvironmentVariables {
		if v.Format == "" && v.Choices == nil && v.Default == "" {
			continue
		}
		t.Run(v.Name, func(t *testing.T) {
			run := func(value string) (string, error) {
				cmd := exec.Command(binPath, "tools")
				cmd.Env = append(append(os.Environ(), clearedCredentials...), v.Name+"="+value)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			if v.Default != "" {
				if out, err := run(v.Default); err != nil {
					t.Errorf("%s=%s, the default server.json names, is refused: %v\n%s", v.Name, v.Default, err, out)
				}
			}
			out, err := run("not-a-valid-value")
			if err == nil {
				t.Fatalf("%s=not-a-valid-value was accepted: gpu-mcp does not read it\n%s", v.Name, out)
			}
			if v.Choices != nil {
				for _, c := range v.Choices {
					if !strings.Contains(out, c) {
						t.Errorf("refusing a wrong %s, gpu-mcp does not name the choice %q of server.json: %s", v.Name, c, out)
					}
				}
			} else if !strings.Contains(out, v.Name) {
				t.Errorf("the error for a wrong %s does not name it: %s", v.Name, out)
			}
		})
	}
}
