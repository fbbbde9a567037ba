package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jitprov/jitprov/internal/store"
)

// The SQLite schema has its own numbering, independent of the Postgres
// migrations: the two databases never share a file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered SQL file.
type Migration = store.Migration

// Migrations lists the embedded migrations in order.
func Migrations() ([]Migration, error) {
	return store.ReadMigrations(migrationFiles, "migrations", "sqlite")
}

// migrate applies every embedded migration the database lacks, each in its
// own transaction. Write transactions are serialised across processes
// (BEGIN IMMEDIATE), and each migration checks the version again inside
// its transaction, so two processes opening one new file apply each
// migration once. A database newer than this binary is refused before
// anything is changed: an old binary must not run against a schema it does
// not know.
func (s *Store) migrate(ctx context.Context) error {
	all, err := Migrations()
	if err != nil {
		return err
	}
	err = s.write(ctx, func(t *sql.Tx, _ time.Time) error {
		_, err := t.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL) STRICT`)
		return mapErr(err)
	})
	if err != nil {
		return fmt.Errorf("sqlite: open %s: create schema_migrations: %w", s.path, err)
	}
	current, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if current > len(all) {
		return fmt.Errorf("sqlite: the database %s is at schema version %d but this binary knows only versions up to %d: "+
			"upgrade jitprov, or point it at another database file", s.path, current, len(all))
	}
	for _, m := range all[current:] {
		applied, err := s.apply(ctx, m)
		if err != nil {
			return fmt.Errorf("sqlite: %s: migration %s failed and was rolled back: %w", s.path, m.Name, err)
		}
		if applied {
			s.log.InfoContext(ctx, "applied migration", "path", s.path, "version", m.Version, "name", m.Name)
		}
	}
	return nil
}

// foreignKeysOff, as a migration's first line, runs it with foreign keys
// off: the way SQLite documents for rebuilding a table that others refer
// to. PRAGMA foreign_keys is a no-op inside a transaction, so it is turned
// off on the writer's connection before BEGIN, and PRAGMA foreign_key_check
// must find nothing before COMMIT.
const foreignKeysOff = "-- jitprov:foreign-keys-off"

// apply applies m unless another process did meanwhile.
func (s *Store) apply(ctx context.Context, m Migration) (applied bool, err error) {
	conn, err := s.w.Conn(ctx) // the writer's only connection
	if err != nil {
		return false, mapErr(err)
	}
	defer conn.Close()
	if strings.HasPrefix(m.SQL, foreignKeysOff) {
		if _, err := conn.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return false, mapErr(err)
		}
		defer func() {
			if _, ferr := conn.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
				// The connection must not go back to the pool without them.
				err = fmt.Errorf("turn foreign keys back on: %w", errors.Join(mapErr(ferr), conn.Raw(func(any) error { return driver.ErrBadConn })))
			}
		}()
	}
	t, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return false, mapErr(err)
	}
	defer func() { _ = t.Rollback() }()
	var v int
	if err := t.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return false, mapErr(err)
	}
	if v >= m.Version { // another process applied it meanwhile
		return false, nil
	}
	if _, err := t.ExecContext(ctx, m.SQL); err != nil {
		return false, mapErr(err)
	}
	if err := foreignKeyCheck(ctx, t); err != nil {
		return false, err
	}
	if _, err := t.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		m.Version, m.Name, formatTime(time.Now())); err != nil {
		return false, mapErr(err)
	}
	if err := t.Commit(); err != nil {
		return false, mapErr(err)
	}
	return true, nil
}

// foreignKeyCheck fails when a row refers to one that does not exist.
func foreignKeyCheck(ctx context.Context, t *sql.Tx) error {
	rows, err := t.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var table, parent string
		var rowid sql.NullInt64
		var fkid int
		if err := rows.Scan(&table, &rowid, &parent, &fkid); err != nil {
			return mapErr(err)
		}
		problems = append(problems, fmt.Sprintf("a row of %s (rowid %d) refers to a missing row of %s", table, rowid.Int64, parent))
	}
	if err := rows.Err(); err != nil {
		return mapErr(err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("foreign key check: %s", strings.Join(problems, "; "))
	}
	return nil
}

// SchemaVersion returns the newest applied migration (0: none).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.r.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("sqlite: read the schema version of %s: %w", s.path, mapErr(err))
	}
	return v, nil
}
