// Package pgtest gives tests a PostgreSQL schema of their own.
//
// The server is named by the environment variable OAUTHD_TEST_POSTGRES_DSN
// (for example postgres://postgres@127.0.0.1:5432/test?sslmode=disable).
// When it is unset, tests that need PostgreSQL skip with a message saying
// so, unless OAUTHD_REQUIRE_POSTGRES=1, which makes them fail: CI sets both.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvDSN and EnvRequire are the environment variables the package reads.
const (
	EnvDSN     = "OAUTHD_TEST_POSTGRES_DSN"
	EnvRequire = "OAUTHD_REQUIRE_POSTGRES"
)

// ServerDSN returns the DSN of the test server, or skips the test (fails
// it when PostgreSQL is required) when none is configured.
func ServerDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(EnvDSN)
	if dsn == "" {
		if os.Getenv(EnvRequire) == "1" {
			tb.Fatalf("%s is unset but %s=1: PostgreSQL tests must run", EnvDSN, EnvRequire)
		}
		tb.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable) to run them", EnvDSN)
	}
	return dsn
}

// Schema creates an empty schema with a random name on the test server,
// drops it (with everything in it) when the test ends, and returns its name
// and a DSN whose connections use it as their search_path.
func Schema(tb testing.TB) (dsn, schema string) {
	tb.Helper()
	server := ServerDSN(tb)
	var b [6]byte
	rand.Read(b[:])
	schema = "oauthd_test_" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, server, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		tb.Fatalf("pgtest: create schema %s: %v", schema, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, server, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			tb.Errorf("pgtest: drop schema %s: %v", schema, err)
		}
	})
	return WithParam(tb, server, "search_path", schema), schema
}

// WithParam returns dsn with the connection parameter name set to value.
// It handles both URL DSNs and key=value connection strings.
func WithParam(tb testing.TB, dsn, name, value string) string {
	tb.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			tb.Fatalf("pgtest: %s is not a valid URL", EnvDSN)
		}
		q := u.Query()
		q.Set(name, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + name + "='" + strings.ReplaceAll(value, "'", `\'`) + "'"
}

// Exec runs one statement on its own connection to dsn.
func Exec(tb testing.TB, dsn, sql string, args ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, dsn, sql, args...); err != nil {
		tb.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Count runs a query returning one number on its own connection to dsn.
func Count(tb testing.TB, dsn, query string, args ...any) int {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		tb.Fatalf("pgtest: %s: %v", query, err)
	}
	return n
}

func exec(ctx context.Context, dsn, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql, args...)
	return err
}
