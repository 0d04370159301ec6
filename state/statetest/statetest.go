// Package statetest holds what tests need around package state: fresh stores of each backend
// and the conformance suite every backend passes (Run).
//
// PostgreSQL tests need GPU_MCP_TEST_POSTGRES_URL, the URL of a database the tests may create
// schemas in (`make postgres` starts a throwaway cluster and prints the line to export).
// Without it they are skipped, except under CI (CI set), where they fail: CI must run them.
package statetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for making schemas

	"github.com/gpu-mcp/gpu-mcp/state"
)

// EnvPostgresURL names the database the PostgreSQL tests use.
const EnvPostgresURL = "GPU_MCP_TEST_POSTGRES_URL"

// SQLiteURL returns the URL of a new SQLite file in a temporary directory of t.
func SQLiteURL(t testing.TB) string {
	return "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "state.db"))
}

// PostgresURL returns the URL of a new, empty schema in the database GPU_MCP_TEST_POSTGRES_URL
// names (its search_path is set to the schema), dropped when t ends. It skips t when the
// variable is unset, and fails it instead when CI is set.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := RequirePostgres(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s is not a URL: %v", EnvPostgresURL, err)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("%s: %v", EnvPostgresURL, err)
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "test_" + hex.EncodeToString(b)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		db.Close()
		t.Fatalf("creating a schema in the database of %s: %v", EnvPostgresURL, err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping the test schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// RequirePostgres returns GPU_MCP_TEST_POSTGRES_URL; when it is unset it skips t, or fails
// it under CI.
func RequirePostgres(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresURL)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is unset under CI: .ci/run starts PostgreSQL and sets it, and CI must run the PostgreSQL tests", EnvPostgresURL)
		}
		t.Skipf("PostgreSQL tests skipped: run `make postgres` and export the %s line it prints", EnvPostgresURL)
	}
	return base
}

// Open opens the store at rawURL for t and closes it when t ends.
func Open(t testing.TB, rawURL string, opts state.Options) state.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := state.Open(ctx, rawURL, opts)
	if err != nil {
		t.Fatalf("opening the state store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the state store: %v", err)
		}
	})
	return s
}

// Clock is a settable clock for Options.Now.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
