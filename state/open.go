package state

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// EnvURL is the environment variable that chooses the store.
const EnvURL = "GPU_MCP_STATE_URL"

// MemoryURL opens a store that lives in the process's memory and is gone when it is closed:
// for --demo and for tests. Every Open of it is a new, empty store.
const MemoryURL = "memory:"

// Options tune a store; the zero value is right for production.
type Options struct {
	// Now is the clock that stamps CreatedAt, UpdatedAt and the like (default time.Now).
	Now func() time.Time
	// BusyTimeout is how long a SQLite write waits for another process's write to finish
	// before it fails, and how long any write is retried after contention (default 10s).
	BusyTimeout time.Duration
}

// DefaultBusyTimeout is Options.BusyTimeout's default.
const DefaultBusyTimeout = 10 * time.Second

// Open opens (creating and migrating when needed) the store rawURL names:
//
//	""                       the default SQLite file, DefaultPath()
//	sqlite:///ABSOLUTE/PATH  a SQLite file there (sqlite:///C:/dir/state.db on Windows)
//	memory:                  an in-memory SQLite store of this process only (MemoryURL)
//	postgres://... or postgresql://...   a PostgreSQL database (pgx's URL form, e.g.
//	                         postgres://user:password@host:5432/db?sslmode=disable)
//
// The default file's directory is made (or corrected to) mode 0700; the SQLite file is made
// (or corrected to) mode 0600, and SQLite gives its -wal and -shm files the same mode.
// Migrations are applied before Open returns; a database migrated by a newer gpu-mcp is
// refused (ErrSchemaTooNew).
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.BusyTimeout <= 0 {
		opts.BusyTimeout = DefaultBusyTimeout
	}
	t, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch t.backend {
	case BackendPostgres:
		return openPostgres(ctx, t.dsn, opts)
	default:
		if t.path == "" {
			return openSQLite(ctx, "", false, opts)
		}
		if t.defaultDir {
			if err := privateDir(filepath.Dir(t.path)); err != nil {
				return nil, err
			}
		} else if err := os.MkdirAll(filepath.Dir(t.path), 0o700); err != nil {
			return nil, fmt.Errorf("state store: cannot make the directory of %s (set %s to a writable place): %w", t.path, EnvURL, err)
		}
		if err := privateFile(t.path); err != nil {
			return nil, err
		}
		for _, side := range []string{t.path + "-wal", t.path + "-shm"} {
			if _, err := os.Stat(side); err == nil {
				if err := fixMode(side, 0o600); err != nil {
					return nil, err
				}
			}
		}
		return openSQLite(ctx, t.path, true, opts)
	}
}

// target is what a URL names.
type target struct {
	backend    string
	path       string // SQLite file; empty: memory
	defaultDir bool   // path is in gpu-mcp's own directory, whose mode Open may correct
	dsn        string // PostgreSQL
}

func urlError(what string) error {
	return invalid("%s=%s is not a state store: accepted are an empty value (the default file, %s), sqlite:///ABSOLUTE/PATH, %s, or postgres://USER:PASSWORD@HOST:PORT/DATABASE",
		EnvURL, what, defaultPathHint(), MemoryURL)
}

func defaultPathHint() string {
	if p, err := DefaultPath(); err == nil {
		return p
	}
	return "the user's state directory"
}

func parseURL(raw string) (target, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		p, err := DefaultPath()
		if err != nil {
			return target{}, err
		}
		return target{backend: BackendSQLite, path: p, defaultDir: true}, nil
	}
	if raw == MemoryURL {
		return target{backend: BackendSQLite}, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The value may hold a password: name the problem, not the value.
		return target{}, urlError("(a value that is not a URL)")
	}
	switch strings.ToLower(u.Scheme) {
	case "postgres", "postgresql":
		if u.Host == "" && u.Query().Get("host") == "" {
			return target{}, urlError(u.Redacted() + " (no host)")
		}
		return target{backend: BackendPostgres, dsn: raw}, nil
	case "sqlite":
		p := u.Path
		if runtime.GOOS == "windows" && len(p) > 2 && p[0] == '/' && p[2] == ':' {
			p = p[1:] // sqlite:///C:/dir/state.db
		}
		p = filepath.FromSlash(p)
		switch {
		case u.Host != "" || u.Opaque != "":
			return target{}, urlError(u.Redacted() + " (three slashes before an absolute path)")
		case u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(p, "?#"):
			return target{}, urlError(u.Redacted() + " (no query or fragment)")
		case !filepath.IsAbs(p) || strings.HasSuffix(u.Path, "/"):
			return target{}, urlError(u.Redacted() + " (not an absolute file path)")
		}
		return target{backend: BackendSQLite, path: filepath.Clean(p)}, nil
	}
	return target{}, urlError(u.Redacted())
}

// DefaultPath is the SQLite file used when GPU_MCP_STATE_URL is empty: state.db in
// $XDG_STATE_HOME/gpu-mcp, else ~/.local/state/gpu-mcp (Linux and other Unix systems),
// ~/Library/Application Support/gpu-mcp (macOS), %LOCALAPPDATA%\gpu-mcp (Windows).
func DefaultPath() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		home = ""
	}
	return defaultPath(runtime.GOOS, os.Getenv, home)
}

func defaultPath(goos string, getenv func(string) string, home string) (string, error) {
	var dir string
	switch goos {
	case "windows":
		dir = getenv("LOCALAPPDATA")
	case "darwin", "ios":
		if home != "" {
			dir = filepath.Join(home, "Library", "Application Support")
		}
	default:
		if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
			dir = x // the XDG spec says to ignore a relative value
		} else if home != "" {
			dir = filepath.Join(home, ".local", "state")
		}
	}
	if dir == "" {
		return "", fmt.Errorf("state store: no home directory to keep state in: set %s=sqlite:///ABSOLUTE/PATH", EnvURL)
	}
	return filepath.Join(dir, "gpu-mcp", "state.db"), nil
}

// privateDir makes dir (and its parents) and gives dir mode 0700: the store holds the
// confirmation secret.
func privateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state store: cannot make %s (set %s to a writable place): %w", dir, EnvURL, err)
	}
	return fixMode(dir, 0o700)
}

// privateFile creates path with mode 0600 when it is missing and corrects a looser mode.
func privateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("state store: cannot open %s (set %s to a writable place): %w", path, EnvURL, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	return fixMode(path, 0o600)
}

func fixMode(path string, want os.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("state store: %w", err)
	}
	if runtime.GOOS == "windows" || fi.Mode().Perm() == want {
		return nil
	}
	if err := os.Chmod(path, want); err != nil {
		return fmt.Errorf("state store: %s has mode %v, and it could not be made %v: %w", path, fi.Mode().Perm(), want, err)
	}
	return nil
}
