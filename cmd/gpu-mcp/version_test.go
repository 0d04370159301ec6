package main

import (
	"debug/buildinfo"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

func TestModuleVersion(t *testing.T) {
	vcs := func(kv ...string) []debug.BuildSetting {
		var s []debug.BuildSetting
		for i := 0; i < len(kv); i += 2 {
			s = append(s, debug.BuildSetting{Key: kv[i], Value: kv[i+1]})
		}
		return s
	}
	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"go install of a tag", &debug.BuildInfo{Main: debug.Module{Version: "v0.1.0"}}, true, "v0.1.0"},
		{"pseudo-version from the VCS", &debug.BuildInfo{Main: debug.Module{Version: "v0.1.1-0.20261201120000-0123456789ab+dirty"}}, true, "v0.1.1-0.20261201120000-0123456789ab+dirty"},
		{"a tagged version wins over the revision", &debug.BuildInfo{Main: debug.Module{Version: "v0.2.0"},
			Settings: vcs("vcs.revision", "0123456789abcdef0123456789abcdef01234567")}, true, "v0.2.0"},
		{"devel with a clean revision", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs", "git", "vcs.revision", "0123456789abcdef0123456789abcdef01234567", "vcs.modified", "false")}, true, "(devel) 0123456789ab"},
		{"devel with local changes", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"},
			Settings: vcs("vcs.revision", "0123456789abcdef0123456789abcdef01234567", "vcs.modified", "true")}, true, "(devel) 0123456789ab-dirty"},
		{"a short revision is kept whole", &debug.BuildInfo{Settings: vcs("vcs.revision", "abc123")}, true, "(devel) abc123"},
		{"devel without VCS stamps (-buildvcs=false)", &debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true, "(devel)"},
		{"no build info", nil, false, "(devel)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := moduleVersion(tc.info, tc.ok); got != tc.want {
				t.Errorf("moduleVersion = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestVersionCommandWithoutLdflags runs the binary TestMain built with plain `go build`: without
// -X main.version it must report what its own build info says, never an empty version.
func TestVersionCommandWithoutLdflags(t *testing.T) {
	out, err := exec.Command(binPath, "version").Output()
	if err != nil {
		t.Fatalf("gpu-mcp version: %v", err)
	}
	info, err := buildinfo.ReadFile(binPath)
	if err != nil {
		t.Fatal(err)
	}
	want := "gpu-mcp " + moduleVersion(info, true)
	if got := strings.TrimSpace(string(out)); got != want {
		t.Fatalf("gpu-mcp version printed %q, want %q (build info main version %q)", got, want, info.Main.Version)
	}
}
