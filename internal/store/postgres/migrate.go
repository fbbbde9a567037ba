package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"

	"github.com/jitprov/jitprov/internal/store"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one numbered SQL file.
type Migration = store.Migration

// Migrations lists the embedded migrations in order.
func Migrations() ([]Migration, error) {
	return store.ReadMigrations(migrationFiles, "migrations", "postgres")
}

// migrationLock keys the advisory lock that serialises concurrent migrators
// (several replicas starting at once).
const migrationLock = 0x6a6974_70726f76 // "jitprov"

// Migrate applies every embedded migration the database lacks, each in its
// own transaction, and returns the versions it applied. It is safe to run
// from several processes at once. A database newer than this binary is an
// error: an old binary must not run against a schema it does not know.
func (s *Store) Migrate(ctx context.Context) ([]int, error) {
	return s.MigrateTo(ctx, 0)
}

// MigrateTo applies migrations up to version target (0: all).
func (s *Store) MigrateTo(ctx context.Context, target int) ([]int, error) {
	all, err := Migrations()
	if err != nil {
		return nil, err
	}
	if target == 0 {
		target = len(all)
	}
	if target < 0 || target > len(all) {
		return nil, fmt.Errorf("postgres: migrate: there is no schema version %d (this binary knows 1 to %d)", target, len(all))
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", mapErr(err))
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return nil, fmt.Errorf("postgres: migrate: take the migration lock: %w", mapErr(err))
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	}()

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("postgres: migrate: create schema_migrations: %w", mapErr(err))
	}
	var current int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return nil, fmt.Errorf("postgres: migrate: read the schema version: %w", mapErr(err))
	}
	if current > len(all) {
		return nil, fmt.Errorf("postgres: the database schema is at version %d but this binary knows only %d: upgrade jitprov", current, len(all))
	}
	var applied []int
	if target <= current {
		return nil, nil
	}
	for _, m := range all[current:target] {
		err := pgx.BeginFunc(ctx, conn, func(t pgx.Tx) error {
			if _, err := t.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := t.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name)
			return err
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migration %s failed and was rolled back: %w", m.Name, mapErr(err))
		}
		applied = append(applied, m.Version)
		s.log.InfoContext(ctx, "applied migration", "version", m.Version, "name", m.Name)
	}
	return applied, nil
}

// SchemaVersion returns the newest applied migration (0: none).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // no schema_migrations: never migrated
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: read the schema version (has `provisioner migrate` run?): %w", mapErr(err))
	}
	return v, nil
}
