package state

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// sqliteTime is how SQLite columns hold times: fixed width, so that comparing the text
// compares the times.
const sqliteTime = "2006-01-02T15:04:05.000000Z"

// readers is the size of the SQLite reader pool; reads never wait for a write under WAL.
const readers = 4

var sqliteDialect = dialect{
	name: BackendSQLite,
	ts: func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t.UTC().Format(sqliteTime)
	},
	retryable: func(err error) bool {
		var se *sqlite.Error
		if !errors.As(err, &se) {
			return false
		}
		code := se.Code() & 0xff
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	},
	conflict: func(err error) bool {
		var se *sqlite.Error
		return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE)
	},
}

// openSQLite opens the SQLite file at path, or an in-memory database when file is false.
//
// Writes go through one connection whose transactions begin IMMEDIATE: a writer takes the
// database's write lock before it reads, so two writers (goroutines or processes) never both
// read and then both write. Writers of this process queue for that connection; a writer of
// another process is waited for by SQLite's busy timeout, and a transaction that still meets
// SQLITE_BUSY is tried again until the timeout has passed. Under WAL with synchronous=NORMAL
// a commit does not wait for the disk (a power cut can lose the last commits, never corrupt
// the file); reads use a pool of their own and never wait for writes.
func openSQLite(ctx context.Context, path string, file bool, opts Options) (Store, error) {
	common := "_pragma=busy_timeout(" + strconv.FormatInt(opts.BusyTimeout.Milliseconds(), 10) + ")&_pragma=foreign_keys(1)"
	name := ":memory:"
	if file {
		name = path
	}
	wdsn := name + "?" + common + "&_txlock=immediate"
	if file {
		wdsn += "&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(" + strconv.Itoa(backstopPages) + ")"
	}
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("state store (sqlite): %w", err)
	}
	// One writer connection, never closed while the store is open: it is the lock order of
	// this process, and an in-memory database lives exactly as long as its connection.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	r := w
	if file {
		if r, err = sql.Open("sqlite", name+"?"+common+"&_pragma=query_only(1)"); err != nil {
			w.Close()
			return nil, fmt.Errorf("state store (sqlite): %w", err)
		}
		r.SetMaxOpenConns(readers)
		r.SetMaxIdleConns(readers)
	}
	s := newSQLStore(sqliteDialect, w, r, opts)
	if err := s.setUpSQLite(ctx, path, file); err != nil {
		s.Close()
		return nil, err
	}
	if file {
		c := startCheckpointer(r)
		s.wrote, s.stop = c.wrote, c.stop
	}
	return s, nil
}

// Checkpoints copy the WAL into the database file and fsync it: 5 to 20 ms here. SQLite's
// automatic checkpoint makes the commit that crosses its threshold pay for it (one write in
// ~300 at the default 1000 pages), so a background checkpointer does it instead, soon after
// writes, and the automatic one stays only as a backstop for a WAL of backstopPages.
const (
	backstopPages   = 4000
	checkpointPause = 100 * time.Millisecond
)

type checkpointer struct {
	db   *sql.DB
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup
}

func startCheckpointer(db *sql.DB) *checkpointer {
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), done: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c
}

func (c *checkpointer) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.kick:
		}
		// PASSIVE never waits for readers or writers. A checkpoint that fails or finds another
		// under way is left to the next one, or to SQLite's own.
		c.db.Exec("PRAGMA wal_checkpoint(PASSIVE)")
		select {
		case <-c.done:
			return
		case <-time.After(checkpointPause):
		}
	}
}

// wrote asks for a checkpoint without waiting for it.
func (c *checkpointer) wrote() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) stop() {
	close(c.done)
	c.wg.Wait()
}

func (s *sqlStore) setUpSQLite(ctx context.Context, path string, file bool) error {
	where := "in memory"
	if file {
		where = path
	}
	if file {
		var mode string
		err := s.retry(ctx, func() error {
			return s.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
		})
		if err != nil {
			return fmt.Errorf("state store (sqlite) at %s: %w", where, err)
		}
		if mode != "wal" {
			return fmt.Errorf("state store (sqlite) at %s: the file system does not allow WAL mode (journal mode is %q): put the file on a local disk", where, mode)
		}
	}
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("state store (sqlite) at %s: %w", where, err)
	}
	return s.prepare(ctx, s.hotStatements()...)
}
