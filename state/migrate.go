package state

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
)

// The schema of each backend is a sequence of SQL files, migrations/BACKEND/NNNN_name.sql,
// numbered from 0001 without gaps and the same names on both backends. A file once released
// is never edited: a change is a new file. Each file runs in the transaction that records it
// in schema_migrations.
//
//go:embed migrations
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func migrations(backend string) ([]migration, error) {
	dir := "migrations/" + backend
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || !strings.HasSuffix(e.Name(), ".sql") || v != len(ms)+1 {
			return nil, fmt.Errorf("migration %s/%s: want %04d_NAME.sql", dir, e.Name(), len(ms)+1)
		}
		b, err := migrationFiles.ReadFile(dir + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	return ms, nil
}

// migrate brings the schema up to date in one transaction that excludes every other
// migrating process (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock per schema), so
// two processes starting at once apply each migration once. A schema newer than this
// binary knows is refused rather than used: its meaning may have changed.
func (s *sqlStore) migrate(ctx context.Context) error {
	ms, err := migrations(s.d.name)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		if s.d.name == BackendPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext('gpu-mcp state migrations'), hashtext(current_schema()))"); err != nil {
				return err
			}
		}
		tsType := "TEXT"
		if s.d.name == BackendPostgres {
			tsType = "TIMESTAMPTZ"
		}
		if _, err := tx.ExecContext(ctx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at "+tsType+" NOT NULL)"); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("the database has schema version %d and this gpu-mcp knows versions up to %d: run a gpu-mcp at least as new as the one that migrated it, or point %s elsewhere: %w",
				current, len(ms), EnvURL, ErrSchemaTooNew)
		}
		for _, m := range ms[current:] {
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %04d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
				m.version, m.name, s.d.ts(s.stamp())); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrating the schema: %w", err)
	}
	return nil
}
