// Package postgres is the production Store, on PostgreSQL through pgx/v5.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	neturl "net/url"
	"strings"
	"time"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/jitprov/jitprov/internal/store"
)

// Store is a store.Store on a pgx connection pool.
type Store struct {
	pool  *pgxpool.Pool
	log   *slog.Logger
	begin []string // the statements that begin a decision transaction
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Tx    = (*tx)(nil)
)

// Options tune the pool.
type Options struct {
	// MaxConns bounds the pool (0: pgx's default, max(4, CPUs)) unless
	// the URL sets pool_max_conns.
	MaxConns int32
	// Timeouts of every decision transaction (InTx), set with SET LOCAL
	// as the transaction begins — in the same round trip, and behind
	// PgBouncer in transaction mode too; 0 leaves the session's own
	// setting (the server's, the role's or the URL's). They bound what one
	// stuck or partitioned client costs the others: LockTimeout
	// (lock_timeout) bounds a wait for a row lock, such as an
	// organisation's seat row; StatementTimeout (statement_timeout) one
	// statement; IdleInTxTimeout (idle_in_transaction_session_timeout) ends
	// the session of a client that stopped mid-transaction (frozen,
	// partitioned), which releases its locks.
	LockTimeout      time.Duration
	StatementTimeout time.Duration
	IdleInTxTimeout  time.Duration
	// Lazy skips Open's check that the database answers: the pool
	// connects on first use. For a service that waits for its database
	// at start (Ping, retried) rather than failing.
	Lazy   bool
	Logger *slog.Logger
	// Tracer, when set, records each statement, batch and connection
	// acquisition as a client span (otelpgx) — only inside a recorded
	// span, such as a login's: background polling starts no trace. The
	// statement's text is recorded, never its arguments.
	Tracer trace.TracerProvider
}

// beginStatements begin a decision transaction: READ COMMITTED, and the
// timeouts Options sets (SET LOCAL: behind PgBouncer in transaction mode
// too).
func (o Options) beginStatements() []string {
	q := []string{"BEGIN ISOLATION LEVEL READ COMMITTED"}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"lock_timeout", o.LockTimeout}, {"statement_timeout", o.StatementTimeout}, {"idle_in_transaction_session_timeout", o.IdleInTxTimeout}} {
		if t.d > 0 {
			q = append(q, fmt.Sprintf("SET LOCAL %s = %d", t.name, max(t.d.Milliseconds(), 1))) // ms
		}
	}
	return q
}

// Open connects to the database at url (a postgres:// URL or key=value DSN)
// and checks that it answers. It does not migrate; see Migrate.
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in this message.
		return nil, fmt.Errorf("postgres: the database URL is not valid (want postgres://user@host:port/db?sslmode=...): %w", err)
	}
	// pool_max_conns in the URL is the operator's word and wins.
	if opts.MaxConns > 0 && !setsPoolMaxConns(url) {
		cfg.MaxConns = opts.MaxConns
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "jitprov"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	if opts.Tracer != nil {
		cfg.ConnConfig.Tracer = otelpgx.NewTracer(otelpgx.WithTracerProvider(opts.Tracer),
			otelpgx.WithMeterProvider(noopmetric.NewMeterProvider()), otelpgx.WithTrimSQLInSpanName())
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", mapErr(err))
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{pool: pool, log: log, begin: opts.beginStatements()}
	if opts.Lazy {
		return s, nil
	}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Pool exposes the pool, for tests and benchmarks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		h := s.pool.Config().ConnConfig
		return fmt.Errorf("postgres: cannot reach the database at %s:%d (db %q, user %q): %w",
			h.Host, h.Port, h.Database, h.User, mapErr(err))
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// InTx runs fn in a READ COMMITTED transaction, with Options' timeouts.
// Races that matter are settled by row locks (TakeSeat) and unique
// indexes (ErrConflict).
//
// The transaction begins with fn's first statements (lazyTx): a group's
// pipelined lookups carry the BEGIN in their own round trip.
func (s *Store) InTx(ctx context.Context, fn func(context.Context, store.Tx) error) error {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", mapErr(err))
	}
	t := &lazyTx{conn: conn, begin: s.begin}
	defer t.rollback(context.WithoutCancel(ctx))
	if err := fn(ctx, &tx{t: t}); err != nil {
		return err
	}
	if err := t.commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", mapErr(err))
	}
	return nil
}

// mapErr wraps pgx errors with the store's sentinels so callers can decide
// with errors.Is: ErrNotFound, ErrConflict (unique violation, serialization
// failure, deadlock) and ErrUnavailable (connection trouble, shutdown,
// timeouts).
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "55P03":
			// lock_timeout: another session holds the row (a stuck client,
			// or a burst on one organisation); worth another try later.
			return fmt.Errorf("%w: %w: a lock was not granted within lock_timeout (%s)", store.ErrUnavailable, store.ErrContended, pgErr.Message)
		case pgErr.Code == "25P03":
			return fmt.Errorf("%w: the server ended the session, idle in a transaction for longer than idle_in_transaction_session_timeout: %w", store.ErrUnavailable, err)
		case pgErr.Code[:2] == "22":
			// Data exception (22021: a NUL or invalid byte in text, …).
			return fmt.Errorf("%w: %s (%s)", store.ErrInvalidData, pgErr.Message, pgErr.Code)
		case pgErr.Code == "23505":
			return fmt.Errorf("%w: %s (%s)", store.ErrConflict, pgErr.ConstraintName, pgErr.Message)
		case pgErr.Code == "40001" || pgErr.Code == "40P01":
			return fmt.Errorf("%w: %w: %s", store.ErrConflict, store.ErrSerialization, pgErr.Message)
		case pgErr.Code[:2] == "08" || pgErr.Code[:2] == "53" || pgErr.Code[:2] == "57":
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	// io.EOF and io.ErrUnexpectedEOF: the server or the network closed a
	// pooled connection (a restart, a failover, a cut link).
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// setsPoolMaxConns reports whether a connection string (URL or key=value
// form) sets pool_max_conns.
func setsPoolMaxConns(conn string) bool {
	if u, err := neturl.Parse(conn); err == nil && u.Scheme != "" {
		return u.Query().Has("pool_max_conns")
	}
	for _, f := range strings.Fields(conn) {
		if strings.HasPrefix(f, "pool_max_conns=") {
			return true
		}
	}
	return false
}
