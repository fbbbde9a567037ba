package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// querier is what a tx runs its statements on.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// lazyTx is a decision transaction that begins with its first statement
// rather than in a round trip of its own: a pipelined batch (a group's
// lookups) carries the BEGIN and the SET LOCALs in front of its
// statements; a single statement sends them first, as pgx.BeginTx would.
type lazyTx struct {
	conn  *pgxpool.Conn
	begin []string // the statements that begin the transaction
	begun bool
	done  bool
}

var _ querier = (*lazyTx)(nil)

func (l *lazyTx) start(ctx context.Context) error {
	if l.begun {
		return nil
	}
	l.begun = true
	// Without arguments, one simple-protocol query: one round trip.
	if _, err := l.conn.Exec(ctx, strings.Join(l.begin, "; ")); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	return nil
}

func (l *lazyTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if err := l.start(ctx); err != nil {
		return pgconn.CommandTag{}, err
	}
	return l.conn.Exec(ctx, sql, args...)
}

func (l *lazyTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := l.start(ctx); err != nil {
		return nil, err
	}
	return l.conn.Query(ctx, sql, args...)
}

func (l *lazyTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := l.start(ctx); err != nil {
		return errRow{err}
	}
	return l.conn.QueryRow(ctx, sql, args...)
}

func (l *lazyTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if !l.begun {
		l.begun = true
		withBegin := &pgx.Batch{}
		for _, q := range l.begin {
			withBegin.Queue(q)
		}
		withBegin.QueuedQueries = append(withBegin.QueuedQueries, b.QueuedQueries...)
		b = withBegin
	}
	return l.conn.SendBatch(ctx, b)
}

// commit commits what was begun (nothing when no statement ran).
func (l *lazyTx) commit(ctx context.Context) error {
	if !l.begun {
		return nil
	}
	tag, err := l.conn.Exec(ctx, "COMMIT")
	l.done = true
	if err != nil {
		return err
	}
	if tag.String() != "COMMIT" {
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// rollback ends what commit did not, and hands the connection back.
func (l *lazyTx) rollback(ctx context.Context) {
	if l.begun && !l.done {
		if _, err := l.conn.Exec(ctx, "ROLLBACK"); err != nil {
			// The pool would not take a connection in an unknown state
			// back anyway; close it now.
			_ = l.conn.Conn().Close(ctx)
		}
	}
	l.conn.Release()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
