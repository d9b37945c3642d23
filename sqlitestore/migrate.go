package sqlitestore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"time"

	mig "github.com/oauthd/oauthd/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations are the embedded migrations in version order, and
// latestVersion the version they bring a database to.
var migrations, latestVersion = mig.MustLoad(migrationFS, "migrations/*.sql", "sqlitestore")

// LatestVersion is the schema version this package needs.
func LatestVersion() int { return latestVersion }

// Migrate brings the database schema to the version this package needs by
// running the embedded migrations it lacks, each in its own IMMEDIATE
// transaction. It is idempotent, and safe when several processes migrate one
// file at once: the first to take the write lock applies a mig.Migration, the
// others find it applied. It fails if the database is newer than this
// package.
func (s *Store) Migrate(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if err := s.w.withConn(func(c *sql.Conn) error { return migrate(ctx, c) }); err != nil {
		return err
	}
	s.cache.clear()
	_, err := s.prepareLocked(ctx)
	return err
}

// migrate applies the missing migrations through db, the write
// connection, whose transactions begin IMMEDIATE.
func migrate(ctx context.Context, db *sql.Conn) error {
	for _, m := range migrations {
		if err := apply(ctx, db, m); err != nil {
			return err
		}
	}
	return nil
}

// apply applies m unless it was applied before, in one transaction that
// holds the write lock from its start.
func apply(ctx context.Context, db *sql.Conn, m mig.Migration) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	if current > latestVersion {
		return fmt.Errorf("%w: the database is at version %d, newer than this program's %d", ErrSchemaVersion, current, latestVersion)
	}
	var applied int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE version = ?`, m.Version).Scan(&applied); err != nil {
		return fmt.Errorf("sqlitestore: migrate: %w", err)
	}
	if applied > 0 {
		return tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
		return fmt.Errorf("sqlitestore: mig.Migration %s: %w", m.Name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, m.Version, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("sqlitestore: mig.Migration %s: %w", m.Name, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: mig.Migration %s: %w", m.Name, err)
	}
	return nil
}

// SchemaVersion returns the version of the database schema: the highest
// mig.Migration applied, or 0 for a database never migrated.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	if s.closed.Load() {
		return 0, errClosed
	}
	return schemaVersion(ctx, s.rdb)
}

func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var tables int
	err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables)
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: schema version: %w", err)
	}
	if tables == 0 {
		return 0, nil
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlitestore: schema version: %w", err)
	}
	return v, nil
}
