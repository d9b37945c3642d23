package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

// The CLI on PostgreSQL: the same client, user and grants commands as on
// SQLite, with --db (OAUTHD_DB) a postgres:// URL.
func TestClientCommandsPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	testClientCommands(t, dsn)
}

func TestUserCommandsPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	testUserCommands(t, dsn)
}

func TestKeysCommandsPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	testKeysCommands(t, dsn)
}

func TestUserClaimsCommandPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	testUserClaimsCommand(t, dsn)
}

// A command that reads or changes records does not give a PostgreSQL
// database without oauthd's tables a schema (a mistyped database name or
// search_path), as it does not create a SQLite file: it says where it
// looked; the commands that start a database still do.
func TestReadCommandsNeedTablesPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	for _, args := range [][]string{{"user", "list"}, {"client", "list"}, {"client", "show", "x"}, {"grants", "list", "bob"}} {
		code, _, errs := oauthdCmd(t, dsn, "", args...)
		if code != 1 || !strings.Contains(errs, "no oauthd tables in the database") {
			t.Errorf("%v: exit %d %q; want exit 1 and no oauthd tables", args, code, errs)
		}
	}
	if v, err := appSchemaVersion(t, dsn); err != nil || v != 0 {
		t.Fatalf("schema version %d, %v; want 0: the read commands made tables", v, err)
	}
	if code, _, errs := oauthdCmd(t, dsn, "", "client", "create", "--id", "c", "--grant", "client_credentials", "--scope", "read"); code != 0 {
		t.Fatalf("client create: %d %s", code, errs)
	}
	if code, out, errs := oauthdCmd(t, dsn, "", "client", "list"); code != 0 || !strings.Contains(out, "c") {
		t.Errorf("client list after create: %d %s %s", code, out, errs)
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	dsn = pgtest.WithParam(t, dsn, "password", "hunter2-secret")
	for _, db := range []struct {
		path    string
		version int
	}{{filepath.Join(t.TempDir(), "o.db"), sqlitestore.LatestVersion()}, {dsn, pgstore.LatestVersion()}} {
		for i := range 2 {
			code, out, errs := oauthdCmd(t, db.path, "", "migrate")
			want := fmt.Sprintf("up to date (schema version %d)", db.version)
			if i == 0 {
				want = fmt.Sprintf("now at schema version %d (it was at 0)", db.version)
			}
			if code != 0 || !strings.Contains(out, want) {
				t.Errorf("migrate %s: %d %q %q; want %q", db.path, code, out, errs, want)
			}
			if strings.Contains(out+errs, "hunter2") {
				t.Errorf("migrate shows the password: %q", out)
			}
		}
	}
	if n := pgtest.Count(t, dsn, `SELECT count(*) FROM schema_migrations`); n != pgstore.LatestVersion() {
		t.Errorf("schema_migrations has %d rows; want %d", n, pgstore.LatestVersion())
	}
}

// TestServeNoMigrate checks that serve --no-migrate (or
// OAUTHD_NO_MIGRATE=1) on a database that is behind fails at once, saying
// why.
func TestServeNoMigrate(t *testing.T) {
	testServeNoMigrate(t, filepath.Join(t.TempDir(), "o.db"))
}

func TestServeNoMigratePostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	testServeNoMigrate(t, dsn)
}

func testServeNoMigrate(t *testing.T, db string) {
	// A database that is behind says its version; a SQLite file that is
	// not there is not created (see TestServeNoMigrateCreatesNoFile).
	behind := "version 0"
	if !pgstore.IsDSN(db) {
		behind = "no database at " + db
	}
	code, _, errs := oauthdCmd(t, db, "", "serve", "--addr", "127.0.0.1:0", "--no-migrate")
	if code != 1 || !strings.Contains(errs, behind) || !strings.Contains(errs, "oauthd migrate") {
		t.Errorf("serve --no-migrate: %d %q; want exit 1 saying %q and naming oauthd migrate", code, errs, behind)
	}
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string {
		return map[string]string{"OAUTHD_DB": db, "OAUTHD_NO_MIGRATE": "1", "OAUTHD_ADDR": "127.0.0.1:0"}[k]
	}}
	if code := run(context.Background(), []string{"serve"}, e); code != 1 || !strings.Contains(errb.String(), behind) {
		t.Errorf("serve with OAUTHD_NO_MIGRATE=1: %d %q; want exit 1 naming the version", code, errb.String())
	}
	e.getenv = func(k string) string {
		return map[string]string{"OAUTHD_DB": db, "OAUTHD_NO_MIGRATE": "maybe"}[k]
	}
	if code := run(context.Background(), []string{"serve"}, e); code != 1 || !strings.Contains(errb.String(), "OAUTHD_NO_MIGRATE") {
		t.Errorf("serve with OAUTHD_NO_MIGRATE=maybe: %d %q; want exit 1 naming the variable", code, errb.String())
	}
	// Once migrated, --no-migrate starts; the server stops with the
	// context.
	if code, _, errs := oauthdCmd(t, db, "", "migrate"); code != 0 {
		t.Fatalf("migrate: %s", errs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errb.Reset()
	e.getenv = func(k string) string { return map[string]string{"OAUTHD_DB": db}[k] }
	// Stop once the server answers: cmdServe shuts down on the context.
	e.ready = func(addr string) {
		go func() {
			defer cancel()
			for range 100 {
				if res, err := http.Get("http://" + addr + "/"); err == nil {
					res.Body.Close()
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	if code := run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--no-migrate"}, e); code != 0 {
		t.Errorf("serve --no-migrate on a migrated database: exit %d %q", code, errb.String())
	}
}

// TestServeUnreachable checks that serve fails fast when PostgreSQL is
// unreachable, naming the server and never the password.
func TestServeUnreachable(t *testing.T) {
	db := "postgres://oauthd:hunter2-secret@127.0.0.1:1/oauthd?sslmode=disable"
	code, _, errs := oauthdCmd(t, db, "", "serve", "--addr", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errs, "127.0.0.1:1") || !strings.Contains(errs, `"oauthd"`) {
		t.Errorf("serve on an unreachable database: %d %q; want exit 1 naming 127.0.0.1:1 and the database", code, errs)
	}
	if strings.Contains(errs, "hunter2") {
		t.Errorf("serve shows the password: %q", errs)
	}
}

func appSchemaVersion(t *testing.T, dsn string) (int, error) {
	return app.SchemaVersion(t.Context(), dsn)
}

// serve --no-migrate on a SQLite database newer than the program says so,
// and does not send the operator to `oauthd migrate`, which cannot help.
func TestServeNoMigrateNewerSchema(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "migrate"); code != 0 {
		t.Fatalf("migrate: %s", errs)
	}
	sdb, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sdb.Exec(`INSERT INTO schema_migrations SELECT max(version) + 1, 0 FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	sdb.Close()
	code, _, errs := oauthdCmd(t, db, "", "serve", "--addr", "127.0.0.1:0", "--no-migrate")
	if code != 1 || !strings.Contains(errs, "newer than this program") || strings.Contains(errs, "run `oauthd migrate` first") {
		t.Errorf("serve --no-migrate on a newer schema: %d %q; want exit 1 saying it is newer, without sending to oauthd migrate", code, errs)
	}
}

// serve on PostgreSQL with a password in the DSN (trust authentication
// ignores it) logs no line holding the password, and does not say it
// created a new database: a DSN is no file.
func TestServeLogsNoDSNPasswordPostgres(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const password = "Hunter2-dsn-secret"
	u.User = url.UserPassword(u.User.Username(), password)
	for _, format := range []string{"text", "json"} {
		ctx, cancel := context.WithCancel(context.Background())
		r := runCmd(ctx, nil, func(string) { cancel() }, "serve", "--demo", "--log-level", "debug", "--log-format", format,
			"--addr", "127.0.0.1:0", "--db", u.String())
		cancel()
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", format, r.code, r.stderr)
		}
		if strings.Contains(r.stderr, password) || strings.Contains(r.stdout, password) {
			t.Errorf("%s: the DSN's password is in the output:\n%s%s", format, r.stdout, r.stderr)
		}
		if strings.Contains(r.stderr, "created a new database") {
			t.Errorf("%s: serve on PostgreSQL says it created a new database:\n%s", format, r.stderr)
		}
	}
}
