package state

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// postgresConns caps one store's connections, far below PostgreSQL's default 100, so that
// several replicas fit.
const postgresConns = 16

var postgresDialect = dialect{
	name:             BackendPostgres,
	lockRow:          " FOR UPDATE",
	skipLocked:       " FOR UPDATE SKIP LOCKED",
	serializeReserve: "LOCK TABLE reservations IN EXCLUSIVE MODE",
	ts: func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Truncate(time.Microsecond)
	},
	retryable: func(err error) bool {
		var pe *pgconn.PgError
		// serialization_failure, deadlock_detected: PostgreSQL rolled the transaction back and
		// says to try it again.
		return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
	},
	conflict: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505" // unique_violation
	},
}

// openPostgres opens the PostgreSQL database dsn names. Tables live in the connection's
// current schema (the first of search_path), so several gpu-mcp deployments, or tests, can
// share a database with a search_path each (postgres://...?search_path=NAME).
func openPostgres(ctx context.Context, dsn string, opts Options) (Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's message leaves the password out.
		return nil, fmt.Errorf("state store (postgres): %s: %w", EnvURL, err)
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(postgresConns)
	db.SetMaxIdleConns(postgresConns)
	s := newSQLStore(postgresDialect, db, db, opts)
	where := fmt.Sprintf("database %q on %s:%d", cfg.Database, cfg.Host, cfg.Port)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("state store (postgres): cannot reach %s: %w", where, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("state store (postgres) %s: %w", where, err)
	}
	if err := s.prepare(ctx, s.hotStatements()...); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
