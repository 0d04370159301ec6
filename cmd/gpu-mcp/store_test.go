package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
)

// A store URL gpu-mcp cannot use stops it before anything starts, with an error that names the
// variable and what it accepts, and never the database's password.
func TestBadStateURLIsRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		env  map[string]string
	}{
		{[]string{"tools"}, map[string]string{"GPU_MCP_STATE_URL": "mysql://admin:hunter2-db-password@db/gpu"}},
		{[]string{"--state", "sqlite://relative/state.db", "tools"}, nil},
		{[]string{"--demo", "--state", "postgres:///no-host", "call", "list_providers"}, nil},
	} {
		var stdout, stderr bytes.Buffer
		code := run(c.args, c.env, strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "GPU_MCP_STATE_URL") || !strings.Contains(stderr.String(), "sqlite:///ABSOLUTE/PATH") {
			t.Errorf("%v %v: exit %d, stderr %q; want 2 and an error naming GPU_MCP_STATE_URL and what it accepts", c.args, c.env, code, stderr.String())
		}
		if strings.Contains(stderr.String(), "hunter2") || stdout.Len() != 0 {
			t.Errorf("%v: stdout %q, stderr %q", c.args, stdout.String(), stderr.String())
		}
	}
}

// --demo keeps its state in memory unless a store is named; without --demo the default file is
// used; a named store is used by both.
func TestWhichStoreIsOpened(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	def, err := state.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	named := filepath.Join(t.TempDir(), "named.db")
	spend := func(cfg Config) bool {
		t.Helper()
		s, err := openStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		fresh, err := s.SpendToken(context.Background(), "the-same-digest", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return fresh
	}
	// Memory: every demo process starts empty, and nothing reaches the default file.
	if !spend(Config{Demo: true}) || !spend(Config{Demo: true}) {
		t.Error("a demo store remembered another's token")
	}
	if _, err := os.Stat(def); !os.IsNotExist(err) {
		t.Errorf("the demo touched the default store %s (%v)", def, err)
	}
	if !spend(Config{}) || spend(Config{}) {
		t.Error("the default store did not keep a token across opens")
	}
	if _, err := os.Stat(def); err != nil {
		t.Errorf("no default store at %s: %v", def, err)
	}
	if !spend(Config{Demo: true, StateURL: "sqlite://" + filepath.ToSlash(named)}) || spend(Config{StateURL: "sqlite://" + filepath.ToSlash(named)}) {
		t.Error("a named store is not shared by a demo and a real process")
	}
}

// The database password in GPU_MCP_STATE_URL is one of the secrets kept out of the logs.
func TestStatePasswordIsASecret(t *testing.T) {
	cfg, _, err := loadConfig(nil, map[string]string{"GPU_MCP_STATE_URL": "postgres://gpumcp:pw-0123456789abcdef@db.internal/gpumcp"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(cfg.secrets(), "pw-0123456789abcdef") {
		t.Errorf("secrets %v lack the database password", cfg.secrets())
	}
}
