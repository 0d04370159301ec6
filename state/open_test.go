package state_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gpu-mcp/gpu-mcp/state"
	"github.com/gpu-mcp/gpu-mcp/state/statetest"
)

var ctx = context.Background()

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestDefaultFileIsPrivate(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_STATE_HOME", xdg)
	path, err := state.DefaultPath()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(xdg, "gpu-mcp", "state.db"); path != want && runtime.GOOS != "darwin" {
		t.Fatalf("DefaultPath = %q, want %q", path, want)
	}
	s := statetest.Open(t, "", state.Options{})
	if _, err := s.SpendToken(ctx, "d", time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Dir(path)); m != 0o700 {
		t.Errorf("state directory mode %v, want 0700", m)
	}
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		if m := mode(t, f); m != 0o600 {
			t.Errorf("%s mode %v, want 0600", filepath.Base(f), m)
		}
	}
	raw := rawSQLite(t, path)
	var jm string
	if err := raw.QueryRow("PRAGMA journal_mode").Scan(&jm); err != nil || jm != "wal" {
		t.Errorf("journal mode %q (%v), want wal", jm, err)
	}
}

func TestLooseModesAreCorrected(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	xdg := t.TempDir()
	t.Setenv("XDG_STATE_HOME", xdg)
	dir := filepath.Join(xdg, "gpu-mcp")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "state.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	os.Chmod(path, 0o666)
	statetest.Open(t, "", state.Options{})
	if m := mode(t, dir); m != 0o700 {
		t.Errorf("a 0755 state directory is left %v, want 0700", m)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("a 0666 state file is left %v, want 0600", m)
	}

	// A file the user named elsewhere is made private, but its directory is not ours to change.
	shared := t.TempDir()
	os.Chmod(shared, 0o755)
	other := filepath.Join(shared, "sub", "x.db")
	statetest.Open(t, "sqlite://"+other, state.Options{})
	if m := mode(t, shared); m != 0o755 {
		t.Errorf("the user's directory became %v", m)
	}
	if m := mode(t, filepath.Dir(other)); m != 0o700 {
		t.Errorf("a directory made for the file has mode %v, want 0700", m)
	}
	if m := mode(t, other); m != 0o600 {
		t.Errorf("the named file has mode %v, want 0600", m)
	}
}

func TestBadURL(t *testing.T) {
	_, err := state.Open(ctx, "mysql://root:hunter2@db/x", state.Options{})
	if !errors.Is(err, state.ErrInvalid) || !strings.Contains(err.Error(), state.EnvURL) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open(mysql://...) = %v", err)
	}
}

func TestMemoryStoresAreSeparate(t *testing.T) {
	a := statetest.Open(t, state.MemoryURL, state.Options{})
	b := statetest.Open(t, state.MemoryURL, state.Options{})
	exp := time.Now().Add(time.Minute)
	for _, s := range []state.Store{a, b} {
		if fresh, err := s.SpendToken(ctx, "d", exp); err != nil || !fresh {
			t.Fatalf("each memory store spends a digest once: fresh %v, %v", fresh, err)
		}
	}
	if a.Backend() != state.BackendSQLite {
		t.Fatalf("memory store backend %q", a.Backend())
	}
}

func TestPostgresUnreachable(t *testing.T) {
	// Port 1 on loopback: nothing listens, the connection is refused at once.
	_, err := state.Open(ctx, "postgres://gpumcp:hunter2@127.0.0.1:1/gpu?connect_timeout=5", state.Options{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("Open of an unreachable server: %v", err)
	}
}

// backend is a way to make fresh stores and to look at their tables directly.
type backend struct {
	name  string
	fresh func(testing.TB) string
	raw   func(t *testing.T, url string) *sql.DB
}

var backends = []backend{
	{"sqlite", statetest.SQLiteURL, func(t *testing.T, url string) *sql.DB { return rawSQLite(t, strings.TrimPrefix(url, "sqlite://")) }},
	{"postgres", statetest.PostgresURL, rawPostgres},
}

func rawSQLite(t *testing.T, path string) *sql.DB {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func rawPostgres(t *testing.T, url string) *sql.DB {
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestMigrations(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			url := b.fresh(t)
			// Several processes starting at once on an empty database.
			const n = 4
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := state.Open(ctx, url, state.Options{})
					if err == nil {
						err = s.Close()
					}
					errs[i] = err
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatalf("concurrent first opens: %v", err)
				}
			}
			raw := b.raw(t, url)
			versions := func() (n, max int) {
				t.Helper()
				if err := raw.QueryRow("SELECT COUNT(*), MAX(version) FROM schema_migrations").Scan(&n, &max); err != nil {
					t.Fatal(err)
				}
				return n, max
			}
			count, latest := versions()
			if count != latest || latest < 1 {
				t.Fatalf("schema_migrations has %d rows up to version %d after concurrent opens: each migration must be applied once", count, latest)
			}
			s := statetest.Open(t, url, state.Options{})
			if _, err := s.SpendToken(ctx, "kept", time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			s.Close()
			statetest.Open(t, url, state.Options{}) // re-open: nothing to apply, nothing lost
			if c, l := versions(); c != count || l != latest {
				t.Fatalf("re-opening changed schema_migrations: %d rows up to %d, was %d up to %d", c, l, count, latest)
			}
			var kept int
			if err := raw.QueryRow("SELECT COUNT(*) FROM spent_tokens WHERE digest = 'kept'").Scan(&kept); err != nil || kept != 1 {
				t.Fatalf("re-opening lost data: %d rows, %v", kept, err)
			}

			if _, err := raw.Exec("INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from_the_future', $1)",
				time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")); err != nil {
				t.Fatal(err)
			}
			_, err := state.Open(ctx, url, state.Options{})
			if !errors.Is(err, state.ErrSchemaTooNew) || !strings.Contains(err.Error(), "999") {
				t.Fatalf("a newer schema: err = %v, want ErrSchemaTooNew naming version 999", err)
			}
		})
	}
}
