package pgstore

import (
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	mig "github.com/oauthd/oauthd/internal/migrate"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations are the embedded migrations in version order, and
// latestVersion the version they bring a database to.
var migrations, latestVersion = mig.MustLoad(migrationFS, "migrations/*.sql", "pgstore")

// LatestVersion is the schema version this package needs.
func LatestVersion() int { return latestVersion }

// migrationLock is the key of the advisory lock Migrate holds: the bytes
// "oauthdMG". It is per database, so nodes migrating different schemas of
// one database wait for each other, briefly.
const migrationLock int64 = 0x6f61757468644d47

// Migrate brings the database schema to the version this package needs by
// running the embedded migrations it lacks, each in its own transaction
// together with its row in schema_migrations. It is idempotent, and safe
// when several nodes start at once: it holds a session advisory lock
// (pg_advisory_lock) on a dedicated connection while it checks and
// migrates, so one node migrates and the others then find the schema
// current. It fails if the database is newer than this package.
func (s *Store) Migrate(ctx context.Context) error { return s.noSchemaHint(s.migrate(ctx)) }

// noSchemaHint adds to PostgreSQL's "no schema has been selected to create
// in" (SQLSTATE 3F000) what it means: the search_path names no schema that
// exists, and which one to create.
func (s *Store) noSchemaHint(err error) error {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "3F000" {
		return err
	}
	cc := s.pool.Config().ConnConfig
	sp := strings.TrimSpace(cc.RuntimeParams["search_path"])
	first, _, _ := strings.Cut(sp, ",")
	first = strings.TrimSpace(first)
	if first == "" || first == `"$user"` || first == "$user" {
		return fmt.Errorf("%w: no schema of the search_path (%s) exists in database %q: create one first, e.g. CREATE SCHEMA oauthd AUTHORIZATION %s, and name it in search_path",
			err, cmp.Or(sp, `by default "$user", public`), cc.Database, pgx.Identifier{cc.User}.Sanitize())
	}
	return fmt.Errorf("%w: the schema %s of search_path does not exist in database %q: create it first (CREATE SCHEMA %s AUTHORIZATION %s), or name an existing schema in search_path",
		err, first, cc.Database, first, pgx.Identifier{cc.User}.Sanitize())
}

func (s *Store) migrate(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return s.fail("migrate", err)
	}
	// A current schema needs neither the lock nor any DDL, so a database
	// user without the right to create tables can run Migrate too.
	if v, err := s.checkSchemaOn(ctx, conn.Conn()); err == nil || !errors.Is(err, ErrSchemaVersion) || v > latestVersion {
		conn.Release()
		return err
	}
	// A migration may take longer than the timeouts of the store's
	// statements, and so may waiting for another node's: none here.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0; SET lock_timeout = 0`); err != nil {
		conn.Release()
		return s.fail("migrate", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		unlock(ctx, conn)
		return s.fail("migrate: take the mig.Migration lock", err)
	}
	defer unlock(ctx, conn)

	if s.schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.schema}.Sanitize()); err != nil {
			return s.fail(fmt.Sprintf("migrate: create schema %q", s.schema), err)
		}
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    bigint PRIMARY KEY,
		name       text NOT NULL,
		applied_at timestamptz NOT NULL
	)`); err != nil {
		return s.fail("migrate", err)
	}
	for _, m := range migrations {
		if err := s.apply(ctx, conn.Conn(), m); err != nil {
			return err
		}
	}
	_, err = s.checkSchemaOn(ctx, conn.Conn())
	return err
}

// unlock releases the mig.Migration lock (if held) and the connection,
// with the store's timeouts back. A connection whose lock cannot be
// released, or whose settings cannot be reset, is closed, which releases
// the lock, rather than returned to the pool.
func unlock(ctx context.Context, conn *pgxpool.Conn) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock_all(); RESET statement_timeout; RESET lock_timeout`); err != nil {
		conn.Conn().Close(ctx)
	}
	conn.Release()
}

// apply applies m unless it was applied before.
func (s *Store) apply(ctx context.Context, conn *pgx.Conn, m mig.Migration) error {
	return pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var current int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return s.fail("migrate", err)
		}
		if current > latestVersion {
			return fmt.Errorf("%w: the database is at version %d, newer than this program's %d", ErrSchemaVersion, current, latestVersion)
		}
		var applied bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, m.Version).Scan(&applied); err != nil {
			return s.fail("migrate", err)
		}
		if applied {
			return nil
		}
		// No arguments: pgx sends the file with the simple protocol,
		// which runs several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return s.fail("migration "+m.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)`,
			m.Version, m.Name, time.Now().UTC()); err != nil {
			return s.fail("migration "+m.Name, err)
		}
		return nil
	})
}

// SchemaVersion returns the version of the database schema: the highest
// mig.Migration applied, or 0 for a database never migrated.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	if err := s.usable(ctx); err != nil {
		return 0, err
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.fail("schema version", err)
	}
	defer conn.Release()
	return s.schemaVersion(ctx, conn.Conn())
}

func (s *Store) schemaVersion(ctx context.Context, conn *pgx.Conn) (int, error) {
	// Two queries: one naming a table that does not exist would not parse.
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, s.fail("schema version", err)
	}
	if !exists {
		return 0, nil
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, s.fail("schema version", err)
	}
	return v, nil
}

// checkSchema checks that the schema is the version this package needs,
// and remembers it when it is.
func (s *Store) checkSchema(ctx context.Context) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, s.fail("schema version", err)
	}
	defer conn.Release()
	return s.checkSchemaOn(ctx, conn.Conn())
}

func (s *Store) checkSchemaOn(ctx context.Context, conn *pgx.Conn) (int, error) {
	v, err := s.schemaVersion(ctx, conn)
	if err != nil {
		return 0, err
	}
	switch {
	case v < latestVersion:
		return v, fmt.Errorf("%w: the database is at version %d, this program needs %d: it must be migrated first (oauthd migrate, or the store's Migrate)", ErrSchemaVersion, v, latestVersion)
	case v > latestVersion:
		return v, fmt.Errorf("%w: the database is at version %d, newer than this program's %d", ErrSchemaVersion, v, latestVersion)
	}
	s.current.Store(true)
	return v, nil
}
