package state

import (
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestDefaultPath(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, c := range []struct {
		name, goos string
		getenv     func(string) string
		home, want string
	}{
		{"XDG_STATE_HOME", "linux", env("XDG_STATE_HOME", "/xdg/state"), "/home/u", "/xdg/state/gpu-mcp/state.db"},
		{"relative XDG_STATE_HOME is ignored", "linux", env("XDG_STATE_HOME", "rel"), "/home/u", "/home/u/.local/state/gpu-mcp/state.db"},
		{"no XDG_STATE_HOME", "freebsd", env(), "/home/u", "/home/u/.local/state/gpu-mcp/state.db"},
		{"macOS", "darwin", env("XDG_STATE_HOME", "/xdg"), "/Users/u", "/Users/u/Library/Application Support/gpu-mcp/state.db"},
		{"Windows", "windows", env("LOCALAPPDATA", "/c/Users/u/AppData/Local"), "/c/Users/u", "/c/Users/u/AppData/Local/gpu-mcp/state.db"},
	} {
		got, err := defaultPath(c.goos, c.getenv, c.home)
		if err != nil || got != filepath.FromSlash(c.want) {
			t.Errorf("%s: defaultPath = %q, %v; want %q", c.name, got, err, c.want)
		}
	}
	if _, err := defaultPath("linux", env(), ""); err == nil || !strings.Contains(err.Error(), EnvURL) {
		t.Errorf("no home: err = %v, want one that names %s", err, EnvURL)
	}
	if _, err := defaultPath("windows", env(), "/c/Users/u"); err == nil {
		t.Error("Windows without LOCALAPPDATA: no error")
	}
}

func TestParseURL(t *testing.T) {
	abs := "/var/lib/gpu-mcp/state.db"
	if runtime.GOOS == "windows" {
		t.Skip("the cases use Unix paths")
	}
	for raw, want := range map[string]target{
		"memory:":                        {backend: BackendSQLite},
		"sqlite://" + abs:                {backend: BackendSQLite, path: abs},
		"  sqlite:///tmp/a/../b.db ":     {backend: BackendSQLite, path: "/tmp/b.db"},
		"postgres://u:p@db:5432/gpu":     {backend: BackendPostgres, dsn: "postgres://u:p@db:5432/gpu"},
		"postgresql://db/gpu?sslmode=on": {backend: BackendPostgres, dsn: "postgresql://db/gpu?sslmode=on"},
		"postgres:///gpu?host=/run/pg":   {backend: BackendPostgres, dsn: "postgres:///gpu?host=/run/pg"},
	} {
		got, err := parseURL(raw)
		if err != nil || got != want {
			t.Errorf("parseURL(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	got, err := parseURL("")
	if err != nil || !got.defaultDir || !strings.HasSuffix(got.path, filepath.Join("gpu-mcp", "state.db")) {
		t.Errorf("parseURL(\"\") = %+v, %v; want the default file", got, err)
	}
	for raw, why := range map[string]string{
		"sqlite://relative.db":               "three slashes",
		"sqlite:relative.db":                 "three slashes",
		"sqlite:///dir/":                     "absolute file path",
		"sqlite:///a.db?mode=ro":             "no query",
		"mysql://root:hunter2@db/gpu":        "",
		"postgres://u:hunter2@/gpu":          "no host",
		"/var/lib/state.db":                  "",
		"sqlite::memory:":                    "",
		"postgres://u:hunter2@db:bad/%zz":    "not a URL",
		"redis://:hunter2@localhost:6379/0x": "",
	} {
		_, err := parseURL(raw)
		if err == nil {
			t.Errorf("parseURL(%q) accepted it", raw)
			continue
		}
		msg := err.Error()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(msg, EnvURL) || !strings.Contains(msg, "sqlite:///ABSOLUTE/PATH") ||
			!strings.Contains(msg, "postgres://") || !strings.Contains(msg, MemoryURL) {
			t.Errorf("parseURL(%q): %q does not name %s and what is accepted", raw, msg, EnvURL)
		}
		if !strings.Contains(msg, why) {
			t.Errorf("parseURL(%q): %q does not say %q", raw, msg, why)
		}
		if strings.Contains(msg, "hunter2") {
			t.Errorf("parseURL(%q): the error shows the password: %q", raw, msg)
		}
	}
}
