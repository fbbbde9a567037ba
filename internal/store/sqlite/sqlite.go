// Package sqlite is the embedded Store: the whole database in one SQLite
// file, through the pure-Go driver modernc.org/sqlite (no cgo). It is for a
// single node and for development (`jitprov dev`), where running Postgres
// is more than the job needs, and it passes the same conformance suite
// (storetest) as the Postgres store.
//
// Its limits: one process owns the file, and every write transaction waits
// its turn, since SQLite has one writer at a time. Another process opening
// the same file on a local disk stays correct (SQLite's file locks and
// BEGIN IMMEDIATE serialise the writers, the relay's lease keeps relays
// apart), but the processes then queue on SQLite's busy timeout rather than
// in order. For several replicas, or more than a node's load, use the
// Postgres store. Never put the file on a network filesystem: SQLite's
// locks are not reliable there.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	msqlite "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/jitprov/jitprov/internal/store"
)

// Store is a store.Store on one SQLite file, with two pools: one
// connection for every write transaction, and a few read-only connections
// for reads outside transactions.
type Store struct {
	path string
	w    *sql.DB // exactly one connection: the writer
	r    *sql.DB // read-only connections
	log  *slog.Logger
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Tx    = (*tx)(nil)
)

// Option tunes Open.
type Option func(*options)

type options struct {
	log         *slog.Logger
	busyTimeout time.Duration
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l != nil {
			o.log = l
		}
	}
}

// WithBusyTimeout sets how long a statement waits for a lock another
// process holds on the file before failing with store.ErrUnavailable
// (default 10 s).
func WithBusyTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.busyTimeout = d
		}
	}
}

// Open opens the database file at path, creating it (and its directory,
// mode 0700) when missing, and applies the schema migrations it lacks. A
// database whose schema is newer than this binary is refused. Failures to
// reach the file match store.ErrUnavailable.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := options{log: slog.New(slog.DiscardHandler), busyTimeout: 10 * time.Second}
	for _, opt := range opts {
		opt(&o)
	}
	// An in-memory database lives and dies with one connection, and this
	// store has several; tests use a file in t.TempDir().
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a database file, such as /var/lib/jitprov/jitprov.db", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := prepareFile(abs); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}

	w, err := sql.Open("sqlite", dsn(abs, o.busyTimeout, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	// One writer connection. SQLite lets one transaction write at a time
	// anyway; with one connection, write transactions queue in
	// database/sql's pool, where a waiter's context is honoured, instead of
	// polling in SQLite's busy handler, where a thousand waiters sleep and
	// retry and the unlucky ones time out. It also means a transaction
	// never upgrades from reading to writing under another writer, which in
	// WAL mode fails at once with SQLITE_BUSY whatever the busy timeout.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)

	r, err := sql.Open("sqlite", dsn(abs, o.busyTimeout, false))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	// Readers never block the writer nor each other in WAL mode.
	readers := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)

	s := &Store{path: abs, w: w, r: r, log: o.log}
	// The writer's first connection sets WAL mode, which the readers rely
	// on, so it is opened first.
	if err := w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, mapErr(err))
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// prepareFile creates the directory of path (0700) and the file itself
// (0600) when missing: SQLite gives the -wal and -shm files the mode of the
// database file, and they all hold personal data.
func prepareFile(path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return errors.New("it is a directory; want the path of a database file in it, such as " +
			filepath.Join(path, "jitprov.db"))
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("%w: create its directory: %w", store.ErrUnavailable, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
		return nil
	case err != nil:
		return fmt.Errorf("%w: create the file: %w", store.ErrUnavailable, err)
	}
	return f.Close()
}

// dsn is the driver's name for the database at path (absolute). Every
// connection waits up to busy for another process's lock and enforces
// foreign keys. The writer puts the file in WAL mode, so that readers and
// the writer do not block each other, with synchronous=FULL: every commit
// is synced to disk before it returns, so no committed transaction (a seat
// taken, an event in the outbox) is lost on power loss; WAL's usual NORMAL
// would lose the last ones. It begins every transaction with BEGIN
// IMMEDIATE, taking the write lock up front. Readers are query-only.
func dsn(path string, busy time.Duration, writer bool) string {
	q := []string{
		"_pragma=busy_timeout(" + strconv.FormatInt(busy.Milliseconds(), 10) + ")",
		"_pragma=foreign_keys(1)",
	}
	if writer {
		q = append(q, "_pragma=journal_mode(WAL)", "_pragma=synchronous(FULL)", "_txlock=immediate")
	} else {
		q = append(q, "_pragma=query_only(1)")
	}
	// The path is escaped as a URI path: SQLite decodes %XX, and a ? or #
	// in a directory name must not start the query.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + strings.Join(q, "&")
}

// Ping checks that the database file answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: cannot read the database %s: %w", s.path, mapErr(err))
	}
	return nil
}

// Close closes both pools. SQLite checkpoints the WAL into the database
// file when the last connection closes.
func (s *Store) Close() {
	if err := s.r.Close(); err != nil {
		s.log.Warn("closing the SQLite readers", "path", s.path, "err", err)
	}
	if err := s.w.Close(); err != nil {
		s.log.Warn("closing the SQLite writer", "path", s.path, "err", err)
	}
}

// InTx runs fn in a write transaction. Transactions run one at a time
// (BEGIN IMMEDIATE on the one writer connection), which makes them
// serializable: the races that Postgres settles with row locks and unique
// indexes cannot happen here, and unique indexes still report ErrConflict.
// fn must not call the Store itself: the writer is busy with fn's
// transaction until it ends.
func (s *Store) InTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: begin: %w", mapErr(err))
	}
	defer func() { _ = t.Rollback() }()
	// The write lock is held from here, so timestamps follow commit order.
	x := &tx{t: t, now: time.Now()}
	if err := fn(ctx, x); err != nil {
		return err
	}
	if x.aborted != nil {
		// As Postgres does with a transaction whose statement failed.
		return fmt.Errorf("sqlite: commit: %w (by: %s); it was rolled back", errAborted, x.aborted.Error())
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", mapErr(err))
	}
	return nil
}

// write runs fn in a write transaction of the store's own, as InTx does.
func (s *Store) write(ctx context.Context, fn func(t *sql.Tx, now time.Time) error) error {
	t, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", mapErr(err))
	}
	defer func() { _ = t.Rollback() }()
	if err := fn(t, time.Now()); err != nil {
		return err
	}
	if err := t.Commit(); err != nil {
		return fmt.Errorf("commit: %w", mapErr(err))
	}
	return nil
}

// errAborted is what a transaction answers once one of its statements
// failed: Postgres refuses further work in such a transaction and rolls it
// back on commit, and so does this store, so that code that works on one
// works on the other.
var errAborted = errors.New("the transaction was aborted by an earlier error")

// mapErr wraps driver errors with the store's sentinels so callers can
// decide with errors.Is: ErrNotFound (no row), ErrConflict (a unique or
// primary key violation) and ErrUnavailable (the file is locked beyond the
// busy timeout, cannot be opened, read or written, or the disk is full).
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var se *msqlite.Error
	if errors.As(err, &se) {
		code := se.Code()
		switch {
		case code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %w", store.ErrConflict, err)
		case unavailable(code & 0xff):
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// unavailable reports whether a primary SQLite result code says the file
// could not be used rather than that the statement was wrong.
func unavailable(code int) bool {
	switch code {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_PERM, sqlite3.SQLITE_READONLY,
		sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL:
		return true
	}
	return false
}
