package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
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
		applied := false
		err := s.write(ctx, func(t *sql.Tx, now time.Time) error {
			var v int
			if err := t.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
				return mapErr(err)
			}
			if v >= m.Version { // another process applied it meanwhile
				return nil
			}
			if _, err := t.ExecContext(ctx, m.SQL); err != nil {
				return mapErr(err)
			}
			if _, err := t.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
				m.Version, m.Name, formatTime(now)); err != nil {
				return mapErr(err)
			}
			applied = true
			return nil
		})
		if err != nil {
			return fmt.Errorf("sqlite: %s: migration %s failed and was rolled back: %w", s.path, m.Name, err)
		}
		if applied {
			s.log.InfoContext(ctx, "applied migration", "path", s.path, "version", m.Version, "name", m.Name)
		}
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
