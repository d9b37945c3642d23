package main

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// serve says when it migrated the database at start-up, from which
// version to which (a long migration was silent), and says nothing of the
// kind on a current database.
func TestServeLogsItsMigration(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "o.db")
	if r := runCmd(ctx, nil, nil, "migrate", "--db", db); r.code != 0 {
		t.Fatalf("migrate: %d %s", r.code, r.stderr)
	}
	// Back to schema version 5: migration 6 undone.
	conn, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`DROP INDEX tokens_revoked`,
		`CREATE INDEX tokens_subject_client_id ON tokens (subject, client_id) WHERE subject <> ''`,
		`DELETE FROM schema_migrations WHERE version = 6`,
	} {
		if _, err := conn.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	conn.Close()

	serve := func() string { return serveUntilReady(t, db) }
	if out := serve(); !strings.Contains(out, `msg="migrated the database schema" from_version=5 to_version=6`) {
		t.Errorf("serve on a version 5 database logged:\n%s\nwant the migration from 5 to 6", out)
	}
	if out := serve(); strings.Contains(out, "migrated") {
		t.Errorf("serve on a current database logged:\n%s\nwant no migration", out)
	}
}

// serveUntilReady runs serve on the database db, on a free port, with the
// extra arguments, stops it once it listens, and returns its standard
// error (the log).
func serveUntilReady(t *testing.T, db string, args ...string) string {
	t.Helper()
	sctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan result, 1)
	ready := make(chan string, 1)
	go func() {
		done <- runCmd(sctx, map[string]string{"OAUTHD_DB": db}, func(a string) { ready <- a }, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	}()
	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("serve: %d %s", r.code, r.stderr)
	}
	cancel()
	r := <-done
	if r.code != 0 {
		t.Fatalf("serve: %d %s", r.code, r.stderr)
	}
	return r.stderr
}
