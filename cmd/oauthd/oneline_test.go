package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/internal/pgtest"
)

// Every error is printed on one line: a PostgreSQL host with several
// addresses fails with pgx's error for each, one a line.
func TestErrorOneLine(t *testing.T) {
	const dsn = "host=127.0.0.1,127.0.0.2 port=1 user=oauthd password=hunter2-secret dbname=oauthd sslmode=disable connect_timeout=2"
	for _, cmd := range [][]string{{"migrate"}, {"serve", "--addr", "127.0.0.1:0"}, {"client", "list"}} {
		r := runCmd(context.Background(), map[string]string{"OAUTHD_DB": dsn}, nil, cmd...)
		if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and one line", cmd, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "127.0.0.1:1: connect: connection refused; 127.0.0.2:1 (127.0.0.2): dial error") {
			t.Errorf("%v: stderr %q; want both addresses' errors joined by \"; \"", cmd, r.stderr)
		}
		if strings.Contains(r.stderr, "hunter2") {
			t.Errorf("%v: the password is in %q", cmd, r.stderr)
		}
	}
	err := fmt.Errorf("pgstore: connect: %w", errors.New("a: refused\n\nb: refused\r\n"))
	if got, want := errorMessage(err), "pgstore: connect: a: refused; b: refused"; got != want {
		t.Errorf("errorMessage = %q; want %q", got, want)
	}
}

// migrate on a search_path whose schema does not exist says so and how to
// create it, after PostgreSQL's "no schema has been selected to create in".
func TestMigrateMissingSchemaHint(t *testing.T) {
	dsn := pgtest.WithParam(t, pgtest.ServerDSN(t), "search_path", "oauthd_no_such_schema")
	for _, cmd := range [][]string{{"migrate"}, {"serve", "--addr", "127.0.0.1:0"}} {
		r := runCmd(context.Background(), map[string]string{"OAUTHD_DB": dsn}, nil, cmd...)
		want := `ERROR: no schema has been selected to create in (SQLSTATE 3F000): the schema oauthd_no_such_schema of search_path does not exist in database `
		if r.code != 1 || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "create it first (CREATE SCHEMA oauthd_no_such_schema AUTHORIZATION ") {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", cmd, r.code, r.stderr, want)
		}
	}
}
