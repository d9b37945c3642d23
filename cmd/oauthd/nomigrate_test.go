package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve --no-migrate on a SQLite file that is not there fails and creates
// nothing (it used to leave an empty file, after which the next run no
// longer said it created a new database).
func TestServeNoMigrateCreatesNoFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, r := range []result{
		runCmd(context.Background(), nil, nil, "serve", "--no-migrate", "--db", "nm.db", "--addr", "127.0.0.1:0"),
		runCmd(context.Background(), map[string]string{"OAUTHD_NO_MIGRATE": "1", "OAUTHD_DB": "nm.db"}, nil, "serve", "--addr", "127.0.0.1:0"),
	} {
		want := "oauthd: opening the store nm.db (db): no database at nm.db, and none is created without migrating (automatic migration is off: run `oauthd migrate` first to create it, or start without --no-migrate)\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("files created: %v", entries)
		}
	}
	r := runCmd(context.Background(), nil, nil, "migrate", "--db", "nm.db")
	if r.code != 0 || !strings.Contains(r.stderr, "created a new database at nm.db") {
		t.Errorf("migrate after: exit %d, stderr %q; want it to create the database", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "nm.db")); err != nil {
		t.Error(err)
	}
}
