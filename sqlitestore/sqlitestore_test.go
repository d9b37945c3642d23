package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
	"github.com/oauthd/oauthd/storetest"
)

// open opens a store on path and closes it when the test ends.
func open(t *testing.T, path string, opts sqlitestore.Options) *sqlitestore.Store {
	t.Helper()
	s, err := sqlitestore.Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) oauthd.Storage {
		return open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{})
	})
}

// latest is the schema version of the embedded migrations.
func latest(t *testing.T) int {
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), "latest.db"), sqlitestore.Options{})
	v, err := s.SchemaVersion(t.Context())
	if err != nil {
		t.Fatalf("SchemaVersion: %v", err)
	}
	if v < 1 {
		t.Fatalf("SchemaVersion after Open = %d; want at least 1", v)
	}
	return v
}

func TestMigrateIdempotent(t *testing.T) {
	ctx := t.Context()
	want := latest(t)
	path := filepath.Join(t.TempDir(), "oauthd.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, sqlitestore.Options{})
	if v, err := s.SchemaVersion(ctx); err != nil || v != want {
		t.Errorf("SchemaVersion after reopening = %d, %v; want %d", v, err, want)
	}
	if _, err := s.Client(ctx, "c1"); err != nil {
		t.Errorf("Client after migrating again: %v", err)
	}
	if n := count(t, path, `SELECT count(*) FROM schema_migrations`); n != want {
		t.Errorf("schema_migrations has %d rows; want %d", n, want)
	}
}

// count runs a count query on path through a connection of its own.
func count(t *testing.T, path, query string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func TestNoMigrate(t *testing.T) {
	ctx := t.Context()
	want := latest(t)
	s := open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{NoMigrate: true})
	if v, err := s.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion of a new file = %d, %v; want 0", v, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping before migrating: %v", err)
	}
	_, err := s.Client(ctx, "c1")
	if !errors.Is(err, sqlitestore.ErrSchemaVersion) {
		t.Errorf("Client before migrating: err = %v; want ErrSchemaVersion", err)
	}
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1"}); !errors.Is(err, sqlitestore.ErrSchemaVersion) {
		t.Errorf("CreateClient before migrating: err = %v; want ErrSchemaVersion", err)
	}
	if err := s.CreateTokens(ctx); !errors.Is(err, sqlitestore.ErrSchemaVersion) {
		t.Errorf("CreateTokens() before migrating: err = %v; want ErrSchemaVersion", err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != want {
		t.Errorf("SchemaVersion after Migrate = %d, %v; want %d", v, err, want)
	}
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Errorf("CreateClient after Migrate: %v", err)
	}
}

// TestMigratedElsewhere checks that a store opened with NoMigrate starts
// working once another process has migrated the file.
func TestMigratedElsewhere(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oauthd.db")
	s := open(t, path, sqlitestore.Options{NoMigrate: true})
	if _, err := s.Clients(ctx); !errors.Is(err, sqlitestore.ErrSchemaVersion) {
		t.Fatalf("Clients before migrating: err = %v; want ErrSchemaVersion", err)
	}
	other := open(t, path, sqlitestore.Options{})
	if err := other.CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client(ctx, "c1"); err != nil {
		t.Errorf("Client after another store migrated: %v", err)
	}
}

func TestNewerSchema(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oauthd.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{}); err == nil {
		s.Close()
		t.Fatalf("Open of a database newer than the program succeeded")
	}
	s = open(t, path, sqlitestore.Options{NoMigrate: true})
	if _, err := s.Clients(ctx); err == nil {
		t.Errorf("Clients on a database newer than the program succeeded")
	}
}

func TestConcurrentOpen(t *testing.T) {
	ctx := t.Context()
	want := latest(t)
	path := filepath.Join(t.TempDir(), "oauthd.db")
	const n = 4
	var (
		stores [n]*sqlitestore.Store
		errs   [n]error
		start  = make(chan struct{})
		wg     sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = sqlitestore.Open(ctx, path, sqlitestore.Options{})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		defer stores[i].Close()
		if v, err := stores[i].SchemaVersion(ctx); err != nil || v != want {
			t.Errorf("store %d: SchemaVersion = %d, %v; want %d", i, v, err, want)
		}
	}
	if t.Failed() {
		return
	}
	if err := stores[0].CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := stores[n-1].Client(ctx, "c1"); err != nil {
		t.Errorf("Client through another store: %v", err)
	}
	if got := count(t, path, `SELECT count(*) FROM schema_migrations`); got != want {
		t.Errorf("schema_migrations has %d rows; want %d", got, want)
	}
}

func TestWAL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthd.db")
	open(t, path, sqlitestore.Options{})
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(t.Context(), `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q; want %q", mode, "wal")
	}
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sub dir", "oauth?d#%.db")
	if err := mkdirAll(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{Synchronous: "full"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &oauthd.User{ID: "u1", Username: "admin", Claims: map[string]any{"email_verified": true}}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTokens(ctx, &oauthd.Token{Hash: "h", Kind: oauthd.RefreshToken, GrantID: "g", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateRefreshToken(ctx, "h", now, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Errorf("Ping after Close = nil; want an error")
	}
	if _, err := s.User(ctx, "u1"); err == nil || errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("User after Close: err = %v; want a closed-store error", err)
	}

	s = open(t, path, sqlitestore.Options{})
	u, err := s.UserByUsername(ctx, "admin")
	if err != nil {
		t.Fatalf("UserByUsername after reopening: %v", err)
	}
	if u.ID != "u1" || u.Claims["email_verified"] != true {
		t.Errorf("user after reopening = %+v", u)
	}
	tok, err := s.Token(ctx, "h")
	if err != nil {
		t.Fatalf("Token after reopening: %v", err)
	}
	if !tok.RotatedAt.Equal(now) || string(tok.Successor) != "sealed" {
		t.Errorf("token after reopening: RotatedAt %v, Successor %q; want %v, %q", tok.RotatedAt, tok.Successor, now, "sealed")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		opts sqlitestore.Options
	}{
		{"empty path", "", sqlitestore.Options{}},
		{"memory", ":memory:", sqlitestore.Options{}},
		{"URI", "file:x.db?mode=memory", sqlitestore.Options{}},
		{"bad synchronous", filepath.Join(dir, "a.db"), sqlitestore.Options{Synchronous: "OFF"}},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "a.db"), sqlitestore.Options{}},
	}
	for _, tc := range tests {
		s, err := sqlitestore.Open(t.Context(), tc.path, tc.opts)
		if err == nil {
			s.Close()
			t.Errorf("%s: Open(%q, %+v) succeeded; want an error", tc.name, tc.path, tc.opts)
		}
	}
}

// TestCancelWhileQueued checks that a write whose context ends while it
// waits is either done or not done, and says which.
func TestCancelWhileQueued(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{})
	const n = 200
	var (
		errs [n]error
		wg   sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			cctx, cancel := context.WithCancel(ctx)
			if i%2 == 0 {
				cancel()
			} else {
				defer cancel()
			}
			errs[i] = s.CreateSession(cctx, &oauthd.Session{Hash: string(rune('a'+i%26)) + string(rune(i)), UserID: "u"})
		})
	}
	wg.Wait()
	for i, err := range errs {
		_, lookup := s.Session(ctx, string(rune('a'+i%26))+string(rune(i)))
		switch {
		case err == nil && lookup != nil:
			t.Errorf("write %d succeeded but the session is missing: %v", i, lookup)
		case errors.Is(err, context.Canceled) && !errors.Is(lookup, oauthd.ErrNotFound):
			t.Errorf("write %d was cancelled but the session exists (lookup: %v)", i, lookup)
		case err != nil && !errors.Is(err, context.Canceled):
			t.Errorf("write %d: %v", i, err)
		}
	}
}
