package state

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"
)

// dialect is what differs between the backends once SQL is written with $N placeholders and
// the upsert syntax both share.
type dialect struct {
	name string
	// lockRow is appended to a SELECT whose row the transaction will update (SQLite's BEGIN
	// IMMEDIATE has locked the whole database already).
	lockRow string
	// skipLocked is appended to the SELECT of a claim, so that concurrent claimers pass over
	// each other's rows instead of waiting for them.
	skipLocked string
	// serializeReserve runs first in Reserve's transaction.
	serializeReserve string
	// ts encodes a time for a query; zero times are NULL.
	ts func(time.Time) any
	// retryable reports an error after which the whole transaction may be tried again.
	retryable func(error) bool
	// conflict reports a unique-key violation.
	conflict func(error) bool
}

// sqlStore implements Store on database/sql for both backends.
type sqlStore struct {
	d   dialect
	w   *sql.DB // writes; SQLite: one connection whose transactions BEGIN IMMEDIATE
	r   *sql.DB // reads; the same as w unless SQLite has a file
	now func() time.Time
	// busy bounds the retries of a transaction that met contention.
	busy time.Duration

	stmts map[string]*sql.Stmt // prepared on w at open, read-only after

	// wrote is told of every committed write, and stop ends what the backend runs in the
	// background (SQLite: the checkpointer); both may be nil.
	wrote func()
	stop  func()

	closeOnce sync.Once
	closeErr  error
}

func newSQLStore(d dialect, w, r *sql.DB, opts Options) *sqlStore {
	return &sqlStore{d: d, w: w, r: r, now: opts.Now, busy: opts.BusyTimeout, stmts: map[string]*sql.Stmt{}}
}

func (s *sqlStore) Backend() string { return s.d.name }

func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Close closes the store; closing it again does nothing.
func (s *sqlStore) Close() error {
	s.closeOnce.Do(func() {
		if s.stop != nil {
			s.stop()
		}
		for _, st := range s.stmts {
			st.Close()
		}
		s.closeErr = s.w.Close()
		if s.r != s.w {
			s.closeErr = errors.Join(s.closeErr, s.r.Close())
		}
	})
	return s.closeErr
}

// fail wraps a database error with what was being done and where.
func (s *sqlStore) fail(what string, err error) error {
	return fmt.Errorf("state store (%s): %s: %w", s.d.name, what, err)
}

// norm is t as the store keeps it.
func norm(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// stamp is the store's clock in the precision it keeps.
func (s *sqlStore) stamp() time.Time { return norm(s.now()) }

// prepare prepares the hot statements on the writer, once, at open: a statement prepared
// later could wait forever for SQLite's one writer connection held by the transaction that
// wants it.
func (s *sqlStore) prepare(ctx context.Context, qs ...string) error {
	for _, q := range qs {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return s.fail("preparing a statement", err)
		}
		s.stmts[q] = st
	}
	return nil
}

// hotStatements are the token check and the launch ledger's writes.
func (s *sqlStore) hotStatements() []string {
	return []string{spendToken, insertLaunch, selectLaunch + s.d.lockRow, updateLaunch}
}

// exec runs one writing statement on its own (autocommit), retried on contention.
func (s *sqlStore) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	var res sql.Result
	err := s.retry(ctx, func() error {
		var err error
		if st, ok := s.stmts[q]; ok {
			res, err = st.ExecContext(ctx, args...)
		} else {
			res, err = s.w.ExecContext(ctx, q, args...)
		}
		return err
	})
	if err == nil && s.wrote != nil {
		s.wrote()
	}
	return res, err
}

// txExec and txQueryRow run q in tx, prepared when it is a hot statement.
func (s *sqlStore) txExec(ctx context.Context, tx *sql.Tx, q string, args ...any) (sql.Result, error) {
	if st, ok := s.stmts[q]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

func (s *sqlStore) txQueryRow(ctx context.Context, tx *sql.Tx, q string, args ...any) *sql.Row {
	if st, ok := s.stmts[q]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, q, args...)
}

// inTx runs fn in a write transaction, and runs it again (a new transaction) after
// contention, until the busy timeout has passed.
func (s *sqlStore) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	err := s.retry(ctx, func() error {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if err := fn(tx); err != nil {
			tx.Rollback()
			return err
		}
		return tx.Commit()
	})
	if err == nil && s.wrote != nil {
		s.wrote()
	}
	return err
}

func (s *sqlStore) retry(ctx context.Context, op func() error) error {
	deadline := time.Now().Add(s.busy)
	pause := time.Millisecond
	for {
		err := op()
		if err == nil || !s.d.retryable(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(pause/2 + mrand.N(pause))
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// modify is the read-modify-write of every UpdateX: the row under id is read with a lock,
// fn changes it, and save writes it back, in one transaction.
func modify[T any](ctx context.Context, s *sqlStore, what, sel, id string, scan func(scanner) (T, error),
	fn func(*T) error, save func(*sql.Tx, T, *T) error) (T, error) {
	var out T
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := scan(s.txQueryRow(ctx, tx, sel+s.d.lockRow, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
		} else if err != nil {
			return err
		}
		v := old
		if err := fn(&v); err != nil {
			return callbackError{err}
		}
		if err := save(tx, old, &v); err != nil {
			return err
		}
		out = v
		return nil
	})
	var cb callbackError
	if errors.As(err, &cb) {
		return out, cb.err
	}
	if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalid) {
		return out, s.fail("update "+what+" "+strconv.Quote(id), err)
	}
	return out, err
}

// callbackError carries a callback's error through a transaction untouched.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

type scanner interface{ Scan(dest ...any) error }

// timeDest scans a time column of either backend: time.Time from PostgreSQL, fixed-width
// text from SQLite, NULL as the zero time.
type timeDest struct{ p *time.Time }

func tm(p *time.Time) timeDest { return timeDest{p} }

func (d timeDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = time.Time{}
	case time.Time:
		*d.p = v.UTC()
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("a time column holds %T", src)
	}
	return nil
}

func (d timeDest) parse(v string) error {
	t, err := time.Parse(sqliteTime, v)
	if err != nil {
		return fmt.Errorf("a time column holds %q: %w", v, err)
	}
	*d.p = t
	return nil
}

// jsonDest scans a JSON column; NULL is an empty RawMessage.
type jsonDest struct{ p *json.RawMessage }

func js(p *json.RawMessage) jsonDest { return jsonDest{p} }

func (d jsonDest) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*d.p = nil
	case string:
		*d.p = json.RawMessage(v)
	case []byte:
		*d.p = append(json.RawMessage(nil), v...)
	default:
		return fmt.Errorf("a JSON column holds %T", src)
	}
	return nil
}

// jsonArg is a JSON field as a query argument: NULL when empty, refused when not JSON.
func jsonArg(field string, v json.RawMessage) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	if !json.Valid(v) {
		return nil, invalid("%s is not valid JSON", field)
	}
	return string(v), nil
}

// newID returns prefix-<16 random hex digits>.
func newID(prefix string) string {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic("no randomness for an id: " + err.Error())
	}
	return prefix + "-" + hex.EncodeToString(b)
}

// invalid is an error that is ErrInvalid without saying so in its text.
func invalid(format string, args ...any) error {
	return refusal{fmt.Sprintf(format, args...)}
}

type refusal struct{ msg string }

func (e refusal) Error() string        { return e.msg }
func (e refusal) Is(target error) bool { return target == ErrInvalid }

// where builds the WHERE clause of a list query with numbered placeholders.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	for range args {
		cond = strings.Replace(cond, "?", "$"+strconv.Itoa(len(w.args)+1), 1)
		w.args = append(w.args, args[0])
		args = args[1:]
	}
	w.conds = append(w.conds, cond)
}

// in adds "col IN (...)" for a non-empty list.
func (w *where) in(col string, vals []string) {
	if len(vals) == 0 {
		return
	}
	marks := make([]string, len(vals))
	args := make([]any, len(vals))
	for i, v := range vals {
		marks[i], args[i] = "?", v
	}
	w.add(col+" IN ("+strings.Join(marks, ", ")+")", args...)
}

func (w *where) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// limit is a LIMIT clause for n > 0.
func limit(n int) string {
	if n <= 0 {
		return ""
	}
	return " LIMIT " + strconv.Itoa(n)
}

// list runs a read query and scans every row.
func list[T any](ctx context.Context, s *sqlStore, what, q string, args []any, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, s.fail("list "+what, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.fail("list "+what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list "+what, err)
	}
	return out, nil
}

// get reads one row by id.
func get[T any](ctx context.Context, s *sqlStore, what, q, id string, scan func(scanner) (T, error)) (T, error) {
	v, err := scan(s.r.QueryRowContext(ctx, q, id))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
	}
	if err != nil {
		return v, s.fail("get "+what+" "+strconv.Quote(id), err)
	}
	return v, nil
}

func strs[T ~string](v []T) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i] = string(x)
	}
	return out
}
