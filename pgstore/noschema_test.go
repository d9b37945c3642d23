package pgstore_test

import (
	"strings"
	"testing"

	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/pgstore"
)

// Migrating on a search_path whose schema does not exist fails with
// PostgreSQL's error and what it means: the schema to create first.
func TestMigrateMissingSchemaHint(t *testing.T) {
	dsn := pgtest.WithParam(t, pgtest.ServerDSN(t), "search_path", "oauthd_no_such_schema")
	s, err := pgstore.Open(t.Context(), dsn, pgstore.Options{})
	if err == nil {
		s.Close()
		t.Fatal("Open migrated into a schema that does not exist")
	}
	for _, want := range []string{"(SQLSTATE 3F000)", "the schema oauthd_no_such_schema of search_path does not exist in database ",
		"create it first (CREATE SCHEMA oauthd_no_such_schema AUTHORIZATION "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want %q", err, want)
		}
	}
	// A schema that exists: no such error.
	dsn2, _ := pgtest.Schema(t)
	if s, err := pgstore.Open(t.Context(), dsn2, pgstore.Options{}); err != nil {
		t.Error(err)
	} else {
		s.Close()
	}
}
