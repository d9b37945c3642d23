package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/storetest"
)

// open opens a store on dsn and closes it when the test ends.
func open(t *testing.T, dsn string, opts pgstore.Options) *pgstore.Store {
	t.Helper()
	s, err := pgstore.Open(t.Context(), dsn, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// fresh opens a store on a schema of its own.
func fresh(t *testing.T) *pgstore.Store {
	t.Helper()
	dsn, _ := pgtest.Schema(t)
	return open(t, dsn, pgstore.Options{})
}

// conformance runs the conformance suite on one schema of its own,
// emptied before each subtest, on connections opened with the DSN
// parameters params (name, value, name, value...). Emptying the tables
// rather than creating a schema per subtest keeps the suite fast: the
// subtests run one after another, and each starts with an empty store.
func conformance(t *testing.T, params ...string) {
	dsn, _ := pgtest.Schema(t)
	for i := 0; i+1 < len(params); i += 2 {
		dsn = pgtest.WithParam(t, dsn, params[i], params[i+1])
	}
	open(t, dsn, pgstore.Options{}) // migrates
	storetest.Run(t, func(t *testing.T) oauthd.Storage {
		pgtest.Exec(t, dsn, `DELETE FROM clients; DELETE FROM users; DELETE FROM auth_requests; DELETE FROM auth_codes;
			DELETE FROM tokens; DELETE FROM grant_revocations; DELETE FROM sessions; DELETE FROM consents; DELETE FROM signing_keys`)
		return open(t, dsn, pgstore.Options{})
	})
}

func TestConformance(t *testing.T) {
	t.Parallel()
	conformance(t)
}

// TestConformanceSerializable runs the suite with every transaction at
// SERIALIZABLE, as CockroachDB runs them: the race tests then meet
// serialization failures (SQLSTATE 40001), which the store must retry
// rather than report.
func TestConformanceSerializable(t *testing.T) {
	t.Parallel()
	conformance(t, "default_transaction_isolation", "serializable")
}

// TestConformanceCacheDescribe runs the suite without named prepared
// statements (default_query_exec_mode=cache_describe), the setting the
// README gives for PgBouncer in transaction mode.
func TestConformanceCacheDescribe(t *testing.T) {
	t.Parallel()
	conformance(t, "default_query_exec_mode", "cache_describe")
}

func TestChurn(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{})
	storetest.Churn(t, s, func() (map[string]int, error) {
		counts := map[string]int{}
		for _, table := range []string{"auth_requests", "auth_codes", "tokens", "sessions", "grant_revocations"} {
			var n int
			if err := s.Pool().QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
				return nil, err
			}
			counts[table] = n
		}
		return counts, nil
	})
}

// TestMigrateConcurrently starts four nodes on one fresh schema at once:
// the advisory lock lets one migrate, and the others find the schema
// current.
func TestMigrateConcurrently(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	const n = 4
	var (
		stores [n]*pgstore.Store
		errs   [n]error
		start  = make(chan struct{})
		wg     sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = pgstore.Open(t.Context(), dsn, pgstore.Options{})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open in goroutine %d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
		if v, err := stores[i].SchemaVersion(t.Context()); err != nil || v != pgstore.LatestVersion() {
			t.Errorf("SchemaVersion in goroutine %d = %d, %v; want %d", i, v, err, pgstore.LatestVersion())
		}
	}
	if got := pgtest.Count(t, dsn, `SELECT count(*) FROM schema_migrations`); got != pgstore.LatestVersion() {
		t.Errorf("schema_migrations has %d rows; want %d", got, pgstore.LatestVersion())
	}
	if got := pgtest.Count(t, dsn, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, schema); got != 10 {
		t.Errorf("schema %s has %d tables; want 10 (9 and schema_migrations)", schema, got)
	}
	// Every node works on the shared schema.
	if errs[0] == nil && errs[1] == nil {
		ctx := t.Context()
		if err := stores[0].CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
			t.Fatal(err)
		}
		if _, err := stores[1].Client(ctx, "c1"); err != nil {
			t.Errorf("Client on another node: %v", err)
		}
	}
}

func TestMigrateIdempotent(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{})
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	again := open(t, dsn, pgstore.Options{})
	if v, err := again.SchemaVersion(ctx); err != nil || v != pgstore.LatestVersion() {
		t.Errorf("SchemaVersion after reopening = %d, %v; want %d", v, err, pgstore.LatestVersion())
	}
	if _, err := again.Client(ctx, "c1"); err != nil {
		t.Errorf("Client after migrating again: %v", err)
	}
	if n := pgtest.Count(t, dsn, `SELECT count(*) FROM schema_migrations`); n != pgstore.LatestVersion() {
		t.Errorf("schema_migrations has %d rows; want %d", n, pgstore.LatestVersion())
	}
}

// TestNoMigrate checks that a store opened on a schema that is behind
// fails every operation with ErrSchemaVersion until Migrate, also one run
// by another node.
func TestNoMigrate(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{NoMigrate: true})
	if v, err := s.SchemaVersion(ctx); err != nil || v != 0 {
		t.Fatalf("SchemaVersion of an empty schema = %d, %v; want 0", v, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping before migrating: %v", err)
	}
	for name, err := range map[string]error{
		"Client":        errOf(s.Client(ctx, "c1")),
		"CreateClient":  s.CreateClient(ctx, &oauthd.Client{ID: "c1"}),
		"CreateTokens":  s.CreateTokens(ctx),
		"DeleteExpired": errOf(s.DeleteExpired(ctx, time.Now(), 0)),
	} {
		if !errors.Is(err, pgstore.ErrSchemaVersion) {
			t.Errorf("%s before migrating: err = %v; want ErrSchemaVersion", name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "version 0") {
			t.Errorf("%s before migrating: %q does not name the version", name, err)
		}
	}
	// Another node migrates; this one notices.
	open(t, dsn, pgstore.Options{})
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Errorf("CreateClient after another node migrated: %v", err)
	}
}

func TestNewerSchema(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	open(t, dsn, pgstore.Options{})
	next := pgstore.LatestVersion() + 1
	pgtest.Exec(t, dsn, `INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future.sql', now())`, next)
	_, err := pgstore.Open(ctx, dsn, pgstore.Options{})
	if !errors.Is(err, pgstore.ErrSchemaVersion) || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open on a newer schema: err = %v; want ErrSchemaVersion saying newer", err)
	}
	_, err = pgstore.Open(ctx, dsn, pgstore.Options{NoMigrate: true})
	if !errors.Is(err, pgstore.ErrSchemaVersion) {
		t.Errorf("Open(NoMigrate) on a newer schema: err = %v; want ErrSchemaVersion", err)
	}
}

// TestSchemaOption checks Options.Schema: Migrate creates the schema, the
// tables live there, and another schema of the database sees none of it.
func TestSchemaOption(t *testing.T) {
	ctx := t.Context()
	dsn, outer := pgtest.Schema(t)
	inner := outer + "_inner"
	t.Cleanup(func() { pgtest.Exec(t, pgtest.ServerDSN(t), `DROP SCHEMA IF EXISTS `+inner+` CASCADE`) })
	s := open(t, dsn, pgstore.Options{Schema: inner})
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1"}); err != nil {
		t.Fatal(err)
	}
	if n := pgtest.Count(t, dsn, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, inner); n != 10 {
		t.Errorf("schema %s has %d tables; want 10", inner, n)
	}
	if n := pgtest.Count(t, dsn, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, outer); n != 0 {
		t.Errorf("schema %s (the DSN's search_path) has %d tables; want 0", outer, n)
	}
	if n := pgtest.Count(t, dsn, `SELECT count(*) FROM `+inner+`.clients`); n != 1 {
		t.Errorf("%s.clients has %d rows; want 1", inner, n)
	}
}

// TestPoolOptions checks that pool settings come from the DSN and that
// Options override them.
func TestPoolOptions(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	dsn = pgtest.WithParam(t, dsn, "pool_max_conns", "7")
	dsn = pgtest.WithParam(t, dsn, "pool_max_conn_idle_time", "42s")
	s := open(t, dsn, pgstore.Options{})
	cfg := s.Pool().Config()
	if cfg.MaxConns != 7 || cfg.MaxConnIdleTime != 42*time.Second {
		t.Errorf("from the DSN: MaxConns %d, MaxConnIdleTime %s; want 7, 42s", cfg.MaxConns, cfg.MaxConnIdleTime)
	}
	if cfg.ConnConfig.ConnectTimeout != pgstore.DefaultConnectTimeout {
		t.Errorf("ConnectTimeout = %s; want the default %s", cfg.ConnConfig.ConnectTimeout, pgstore.DefaultConnectTimeout)
	}
	s = open(t, dsn, pgstore.Options{MaxConns: 3, MinConns: 1, MaxConnLifetime: time.Minute, MaxConnIdleTime: 10 * time.Second})
	cfg = s.Pool().Config()
	if cfg.MaxConns != 3 || cfg.MinConns != 1 || cfg.MaxConnLifetime != time.Minute || cfg.MaxConnIdleTime != 10*time.Second {
		t.Errorf("from Options: %d %d %s %s; want 3 1 1m 10s", cfg.MaxConns, cfg.MinConns, cfg.MaxConnLifetime, cfg.MaxConnIdleTime)
	}
	s = open(t, pgtest.WithParam(t, dsn, "connect_timeout", "2"), pgstore.Options{})
	if got := s.Pool().Config().ConnConfig.ConnectTimeout; got != 2*time.Second {
		t.Errorf("ConnectTimeout with connect_timeout=2 = %s; want 2s", got)
	}
	var n int
	if err := s.Pool().QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = 'oauthd'`).Scan(&n); err != nil || n < 1 {
		t.Errorf("connections named oauthd in pg_stat_activity: %d, %v; want at least 1", n, err)
	}
	if _, err := pgstore.Open(t.Context(), dsn, pgstore.Options{MaxConns: 2, MinConns: 5}); err == nil {
		t.Errorf("Open with MinConns > MaxConns succeeded")
	}
}

// TestUnreachable checks that Open fails fast, naming the server but not
// the password, when nothing listens.
func TestUnreachable(t *testing.T) {
	const password = "s3cr3t-Pa55"
	for _, dsn := range []string{
		"postgres://oauthd:" + password + "@127.0.0.1:1/oauthd?sslmode=disable",
		"postgres://oauthd@127.0.0.1:1/oauthd?sslmode=disable&password=" + password,
		"host=127.0.0.1 port=1 user=oauthd password=" + password + " dbname=oauthd sslmode=disable",
	} {
		start := time.Now()
		_, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
		if err == nil {
			t.Fatalf("Open on a closed port succeeded")
		}
		if d := time.Since(start); d > pgstore.DefaultConnectTimeout+2*time.Second {
			t.Errorf("Open took %s to fail", d)
		}
		msg := err.Error()
		if strings.Contains(msg, password) || strings.Contains(fmt.Sprintf("%#v", err), password) {
			t.Errorf("the error shows the password: %s", msg)
		}
		for _, want := range []string{"pgstore:", "127.0.0.1:1", `"oauthd"`} {
			if !strings.Contains(msg, want) {
				t.Errorf("error %q does not name %s", msg, want)
			}
		}
	}
}

// TestBadDSN checks that a DSN pgx cannot parse is reported without its
// password.
func TestBadDSN(t *testing.T) {
	const password = "s3cr3t-Pa55"
	for _, dsn := range []string{
		"postgres://oauthd:" + password + "@127.0.0.1:notaport/oauthd",
		"postgres://oauthd:" + password + "@127.0.0.1/oauthd?sslmode=bogus",
		"host=127.0.0.1 password=" + password + " sslmode=bogus",
		"host=127.0.0.1 password='" + password + "' connect_timeout=x",
	} {
		_, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
		if err == nil {
			t.Fatalf("Open(%s) succeeded", pgstore.RedactDSN(dsn))
		}
		if strings.Contains(err.Error(), password) || strings.Contains(fmt.Sprintf("%#v", err), password) {
			t.Errorf("the error shows the password: %s", err)
		}
		if !strings.HasPrefix(err.Error(), "pgstore: invalid DSN") {
			t.Errorf("error %q; want it to start with pgstore: invalid DSN", err)
		}
	}
}

func TestRedactDSN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:secret@h:5432/db?sslmode=disable", "postgres://u:xxxxx@h:5432/db?sslmode=disable"},
		{"postgresql://u@h/db", "postgresql://u@h/db"},
		{"postgres://u@h/db?password=secret", "postgres://u@h/db?password=xxxxx"},
		{"host=h user=u password=secret dbname=db", "host=h user=u password=xxxxx dbname=db"},
		{"host=h password='se cret' dbname=db", "host=h password=xxxxx dbname=db"},
		{`host=h password=Sup3r\ Secret dbname=db`, "host=h password=xxxxx dbname=db"},
		{`host=h password='it\'s' dbname=db`, "host=h password=xxxxx dbname=db"},
		{"postgres://u:secret@h:port/db", "postgres://(a URL that does not parse)"},
	}
	for _, tc := range tests {
		if got := pgstore.RedactDSN(tc.in); got != tc.want {
			t.Errorf("RedactDSN(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestRevokeGrantRace races RevokeGrant against CreateTokens and
// RotateRefreshToken for one grant on separate connections: whatever the
// interleaving, no token of the grant is found afterwards, and no rotation
// succeeds after the revocation returned.
// rotations are the two ways a store rotates a refresh token: the Provider
// calls RotateRefreshTokenFunc when the store has it (pgstore has), and
// RotateRefreshToken otherwise. The race tests run with both.
var rotations = []struct {
	name   string
	rotate func(ctx context.Context, s *pgstore.Store, hash string, now time.Time, next ...*oauthd.Token) (*oauthd.Token, error)
}{
	{"RotateRefreshToken", func(ctx context.Context, s *pgstore.Store, hash string, now time.Time, next ...*oauthd.Token) (*oauthd.Token, error) {
		return s.RotateRefreshToken(ctx, hash, now, nil, next...)
	}},
	{"RotateRefreshTokenFunc", func(ctx context.Context, s *pgstore.Store, hash string, now time.Time, next ...*oauthd.Token) (*oauthd.Token, error) {
		return s.RotateRefreshTokenFunc(ctx, hash, now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) { return nil, next, nil })
	}},
}

func TestRevokeGrantRace(t *testing.T) {
	for _, r := range rotations {
		t.Run(r.name, func(t *testing.T) { testRevokeGrantRace(t, r.rotate) })
	}
}

func testRevokeGrantRace(t *testing.T, rotate func(context.Context, *pgstore.Store, string, time.Time, ...*oauthd.Token) (*oauthd.Token, error)) {
	ctx := t.Context()
	s := fresh(t)
	now := time.Now()
	tok := func(hash, kind, grant string) *oauthd.Token {
		return &oauthd.Token{Hash: hash, Kind: kind, GrantID: grant, ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	for round := range 20 {
		grant := fmt.Sprint("g", round)
		rt := fmt.Sprintf("rt-%d", round)
		if err := s.CreateTokens(ctx, tok(rt, oauthd.RefreshToken, grant)); err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		const writers = 8
		for i := range writers {
			wg.Go(func() {
				<-start
				if i%2 == 0 {
					err := s.CreateTokens(ctx, tok(fmt.Sprintf("at-%d-%d", round, i), oauthd.AccessToken, grant))
					if err != nil {
						t.Errorf("CreateTokens: %v", err)
					}
					return
				}
				_, err := rotate(ctx, s, rt, now, tok(fmt.Sprintf("rt-%d-%d", round, i), oauthd.RefreshToken, grant))
				if err != nil && !errors.Is(err, oauthd.ErrAlreadyUsed) && !errors.Is(err, oauthd.ErrNotFound) {
					t.Errorf("RotateRefreshToken: %v", err)
				}
			})
		}
		wg.Go(func() {
			<-start
			if err := s.RevokeGrant(ctx, grant, now.Add(time.Hour)); err != nil {
				t.Errorf("RevokeGrant: %v", err)
			}
		})
		close(start)
		wg.Wait()
		hashes := []string{rt}
		for i := range writers {
			hashes = append(hashes, fmt.Sprintf("at-%d-%d", round, i), fmt.Sprintf("rt-%d-%d", round, i))
		}
		for _, h := range hashes {
			if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("round %d: Token(%s) of the revoked grant: err = %v; want ErrNotFound", round, h, err)
			}
		}
		_, err := rotate(ctx, s, fmt.Sprintf("rt-%d-1", round), now)
		if !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("round %d: RotateRefreshToken of a successor after the revocation: err = %v; want ErrNotFound", round, err)
		}
	}
}

// TestRevokeTokensOfRace races RevokeTokensOf against rotations of the
// user's refresh token: afterwards no token of the user for the client is
// left, however the rotation and the revocation interleave.
func TestRevokeTokensOfRace(t *testing.T) {
	for _, r := range rotations {
		t.Run(r.name, func(t *testing.T) { testRevokeTokensOfRace(t, r.rotate) })
	}
}

func testRevokeTokensOfRace(t *testing.T, rotate func(context.Context, *pgstore.Store, string, time.Time, ...*oauthd.Token) (*oauthd.Token, error)) {
	ctx := t.Context()
	s := fresh(t)
	now := time.Now()
	tok := func(hash string) *oauthd.Token {
		return &oauthd.Token{Hash: hash, Kind: oauthd.RefreshToken, GrantID: hash, ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	for round := range 20 {
		rt := fmt.Sprintf("rt-%d", round)
		if err := s.CreateTokens(ctx, tok(rt)); err != nil {
			t.Fatal(err)
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
		)
		wg.Go(func() {
			<-start
			_, err := rotate(ctx, s, rt, now, tok(rt+"-next"))
			if err != nil && !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("RotateRefreshToken: %v", err)
			}
		})
		wg.Go(func() {
			<-start
			if err := s.RevokeTokensOf(ctx, "u", "c"); err != nil {
				t.Errorf("RevokeTokensOf: %v", err)
			}
		})
		close(start)
		wg.Wait()
		for _, h := range []string{rt, rt + "-next"} {
			if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("round %d: Token(%s) after RevokeTokensOf: err = %v; want ErrNotFound", round, h, err)
			}
		}
	}
}

// TestDeleteExpiredOnEveryNode runs DeleteExpired on four stores (nodes)
// at once: together they remove every expired record exactly once.
func TestDeleteExpiredOnEveryNode(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	var nodes []*pgstore.Store
	for range 4 {
		nodes = append(nodes, open(t, dsn, pgstore.Options{}))
	}
	now := time.Now()
	const expired = 1000
	toks := make([]*oauthd.Token, 0, expired)
	for i := range expired {
		toks = append(toks, &oauthd.Token{Hash: fmt.Sprint("t", i), Kind: oauthd.AccessToken, GrantID: "g", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	}
	if err := nodes[0].CreateTokens(ctx, toks...); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].CreateTokens(ctx, &oauthd.Token{Hash: "live", Kind: oauthd.AccessToken, GrantID: "g", ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for _, node := range nodes {
		wg.Go(func() {
			for {
				n, err := node.DeleteExpired(ctx, now, 50)
				if err != nil {
					t.Errorf("DeleteExpired: %v", err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if total != expired {
		t.Errorf("the nodes removed %d records together; want %d", total, expired)
	}
	if n := pgtest.Count(t, dsn, `SELECT count(*) FROM tokens`); n != 1 {
		t.Errorf("%d tokens left; want 1 (the live one)", n)
	}
}

func TestClosed(t *testing.T) {
	s := fresh(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close twice: %v", err)
	}
	if _, err := s.Client(t.Context(), "c1"); err == nil {
		t.Errorf("Client after Close succeeded")
	}
	if err := s.Ping(t.Context()); err == nil {
		t.Errorf("Ping after Close succeeded")
	}
}

// errOf returns the error of a call that also returns a value.
func errOf[T any](_ T, err error) error { return err }

// TestMigrateWithoutDDLRights checks that a node whose database user may
// not create tables starts on a current schema: Migrate then runs no DDL.
func TestMigrateWithoutDDLRights(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	open(t, dsn, pgstore.Options{})
	role := schema + "_app"
	pgtest.Exec(t, dsn, `CREATE ROLE `+role+` LOGIN`)
	t.Cleanup(func() {
		pgtest.Exec(t, dsn, `DROP OWNED BY `+role)
		pgtest.Exec(t, dsn, `DROP ROLE `+role)
	})
	pgtest.Exec(t, dsn, `GRANT USAGE ON SCHEMA `+schema+` TO `+role)
	pgtest.Exec(t, dsn, `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA `+schema+` TO `+role)
	s := open(t, pgtest.WithParam(t, dsn, "user", role), pgstore.Options{})
	var user string
	if err := s.Pool().QueryRow(t.Context(), `SELECT current_user`).Scan(&user); err != nil || user != role {
		t.Fatalf("connected as %q, %v; want %q", user, err, role)
	}
	if err := s.CreateClient(t.Context(), &oauthd.Client{ID: "c1"}); err != nil {
		t.Errorf("CreateClient as a user without DDL rights: %v", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Errorf("Migrate on a current schema as a user without DDL rights: %v", err)
	}
}

// TestHangingServer checks that Open gives up after the connect timeout
// when the server accepts connections but never answers.
func TestHangingServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	for _, tc := range []struct {
		query string
		limit time.Duration
	}{
		{"sslmode=disable&connect_timeout=1", 1 * time.Second},
		{"", pgstore.DefaultConnectTimeout},
	} {
		start := time.Now()
		_, err := pgstore.Open(context.Background(), "postgres://oauthd:pw@"+ln.Addr().String()+"/oauthd?"+tc.query, pgstore.Options{})
		d := time.Since(start)
		if err == nil {
			t.Fatalf("Open on a server that never answers succeeded")
		}
		if d < tc.limit-100*time.Millisecond || d > tc.limit+2*time.Second {
			t.Errorf("Open(%q) gave up after %s; want about %s", tc.query, d, tc.limit)
		}
		if !strings.Contains(err.Error(), ln.Addr().String()) {
			t.Errorf("error %q does not name the server", err)
		}
	}
}

// A panic in RotateRefreshTokenFunc's rotate ends the transaction without
// committing (the pool closes the connection it was on): the token stays
// unrotated, nothing is stored, and the store goes on working.
func TestRotateFuncPanics(t *testing.T) {
	ctx := t.Context()
	s := fresh(t)
	now := time.Now()
	rt := &oauthd.Token{Hash: "rt", Kind: oauthd.RefreshToken, GrantID: "g", ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateTokens(ctx, rt); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v; want the callback's panic", v)
			}
		}()
		s.RotateRefreshTokenFunc(ctx, "rt", now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
			panic("boom")
		})
	}()
	got, err := s.Token(ctx, "rt")
	if err != nil || !got.RotatedAt.IsZero() {
		t.Fatalf("Token(rt) after the panic = %+v, %v; want it unrotated", got, err)
	}
	next := &oauthd.Token{Hash: "rt-2", Kind: oauthd.RefreshToken, GrantID: "g", ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	old, err := s.RotateRefreshTokenFunc(ctx, "rt", now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return []byte("sealed"), []*oauthd.Token{next}, nil
	})
	if err != nil || old.RotatedAt.IsZero() || string(old.Successor) != "sealed" {
		t.Fatalf("RotateRefreshTokenFunc after the panic = %+v, %v; want the token rotated with its successor", old, err)
	}
	if _, err := s.Token(ctx, "rt-2"); err != nil {
		t.Errorf("Token(rt-2): %v", err)
	}
}

// A panic in RedeemAuthCode's issue ends the transaction without
// committing: the code stays unused, and the store goes on working.
func TestRedeemPanics(t *testing.T) {
	ctx := t.Context()
	s := fresh(t)
	now := time.Now()
	code := &oauthd.AuthCode{Hash: "code", GrantID: "g", ClientID: "c", Subject: "u", RedirectURI: "https://c.example/cb",
		Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if v := recover(); v != "boom" {
				t.Errorf("recovered %v; want the callback's panic", v)
			}
		}()
		s.RedeemAuthCode(ctx, "code", now, func(*oauthd.AuthCode) ([]*oauthd.Token, error) { panic("boom") })
	}()
	at := &oauthd.Token{Hash: "at", Kind: oauthd.AccessToken, GrantID: "g", ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := s.RedeemAuthCode(ctx, "code", now, func(*oauthd.AuthCode) ([]*oauthd.Token, error) {
		return []*oauthd.Token{at}, nil
	}); err != nil {
		t.Fatalf("RedeemAuthCode after the panic: %v; want the code still unused", err)
	}
	if _, err := s.Token(ctx, "at"); err != nil {
		t.Errorf("Token(at): %v", err)
	}
}

// A statement stuck behind another session's lock fails after the store's
// lock_timeout (5 s unless the DSN says otherwise) instead of holding its
// request for as long as the other session keeps the lock; Migrate, whose
// statements may take longer, is not bound by it.
func TestLockTimeout(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{})
	var lock, stmt string
	if err := s.Pool().QueryRow(t.Context(), `SELECT current_setting('lock_timeout'), current_setting('statement_timeout')`).Scan(&lock, &stmt); err != nil {
		t.Fatal(err)
	}
	if lock != "5s" || stmt != "10s" {
		t.Errorf("lock_timeout %s, statement_timeout %s; want the defaults 5s and 10s", lock, stmt)
	}
	s = open(t, pgtest.WithParam(t, dsn, "lock_timeout", "300"), pgstore.Options{})
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Another session holds the tokens table.
	other := open(t, dsn, pgstore.Options{})
	tx, err := other.Pool().Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), `LOCK TABLE `+schema+`.tokens IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	now := time.Now()
	err = s.CreateTokens(t.Context(), &oauthd.Token{Hash: "locked-out", Kind: oauthd.AccessToken, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Errorf("CreateTokens behind a lock: %v after %s; want an error after about 300ms", err, took)
	}
}

// A password with an "@" that was not percent-encoded: pgx takes the rest
// of it for the host, and neither Open's message nor pgx's cause may show
// it.
func TestUnencodedAtInPasswordNotShown(t *testing.T) {
	for _, dsn := range []string{
		"postgres://oauthd:p@ss-S3cr3tPW@127.0.0.1:1/oauthd?sslmode=disable&connect_timeout=2",
		"postgres://oauthd:S3cr3tPW@ab@127.0.0.1:1/oauthd?sslmode=disable&connect_timeout=2",
	} {
		_, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
		if err == nil {
			t.Fatal("Open succeeded")
		}
		if msg := err.Error(); strings.Contains(msg, "S3cr3tPW") || strings.Contains(msg, "ab@") || strings.Contains(fmt.Sprintf("%#v", err), "S3cr3tPW") {
			t.Errorf("the error shows part of the password: %s", msg)
		}
		if !strings.Contains(err.Error(), "%40") {
			t.Errorf("error %q; want it to say to percent-encode the @", err)
		}
		if err := pgstore.CheckDSN(dsn); err == nil || !strings.Contains(err.Error(), "%40") {
			t.Errorf("CheckDSN: %v; want the same advice", err)
		}
	}
}

// libpq's key=value connection strings are PostgreSQL DSNs, not SQLite
// file names (a file named after one would hold its password in its name).
func TestIsDSN(t *testing.T) {
	for in, want := range map[string]bool{
		"postgres://u@h/db":                      true,
		"postgresql://u@h/db":                    true,
		"host=127.0.0.1 dbname=oauthd user=x":    true,
		" dbname = oauthd":                       true,
		"user=x password=secret host=/run/pg":    true,
		"oauthd.db":                              false,
		"/var/lib/oauthd/oauthd.db":              false,
		"file:oauthd.db?_pragma=busy_timeout(1)": false,
		"data/host=1.db":                         false,
		"./a=b.db":                               false,
		"my db=x.db":                             false,
		// Wholly key=value pairs, whatever the first key: libpq's
		// and pgx's keys, and runtime parameters.
		"keepalives=1 host=127.0.0.1 dbname=x":   true,
		"search_path=auth pool_max_conns=8":      true,
		"channel_binding=disable password=a\\ b": true,
		"hostname=x":                             true,
	} {
		if got := pgstore.IsDSN(in); got != want {
			t.Errorf("IsDSN(%q) = %v; want %v", in, got, want)
		}
	}
}

// A database that stops answering on an open connection (a frozen host, a
// network partition behind a proxy) fails each call with ErrUnavailable
// after Options.OperationTimeout instead of holding it for ever: the
// server-side statement_timeout cannot help when the server does not
// answer.
func TestOperationTimeoutOnSilentDatabase(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skip("needs a URL DSN to route through a proxy")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var silent atomic.Bool
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if silent.Load() {
				<-release // swallowed: the database "stops answering"
				return
			}
			if n > 0 {
				dst.Write(buf[:n])
			}
			if err != nil {
				dst.Close()
				return
			}
		}
	}
	target := u.Host
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	u.Host = ln.Addr().String()
	s, err := pgstore.Open(t.Context(), u.String(), pgstore.Options{OperationTimeout: time.Second, MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { go s.Close() }) // its connections hang in the proxy
	if _, err := s.Client(t.Context(), "nobody"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Fatalf("Client before the silence: %v", err)
	}
	silent.Store(true)
	start := time.Now()
	_, err = s.Client(t.Context(), "nobody")
	if !errors.Is(err, oauthd.ErrUnavailable) {
		t.Errorf("Client with the database silent: %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Client with the database silent took %v; want about the 1s OperationTimeout", d)
	}
}

// Clients, users and pending requests with <, > and & read back as
// written, and rows stored with json.Marshal's HTML escapes (\u003c) by
// earlier versions read as they did.
func TestRowsWithHTMLCharacters(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{})
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := &oauthd.AuthRequest{ID: "req", ClientID: "web", RedirectURI: "https://rp.example/cb?a=1&b=2",
		State: strings.Repeat("<&>", 1000), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	c := &oauthd.Client{ID: "web", Name: "<b>Bits & Bytes</b>", CreatedAt: now}
	u := &oauthd.User{ID: "u1", Username: "ann", Claims: map[string]any{"name": "Ann <ann@example.com> & co"}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AuthRequest(ctx, "req"); err != nil || got.State != r.State || got.RedirectURI != r.RedirectURI {
		t.Errorf("AuthRequest = %+v, %v; want the state and redirect URI as written", got, err)
	}
	if got, err := s.Client(ctx, "web"); err != nil || got.Name != c.Name {
		t.Errorf("Client = %+v, %v; want the name %q", got, err, c.Name)
	}
	if got, err := s.User(ctx, "u1"); err != nil || got.Claims["name"] != u.Claims["name"] {
		t.Errorf("User = %+v, %v; want the name claim %q", got, err, u.Claims["name"])
	}

	pgtest.Exec(t, dsn, `INSERT INTO auth_requests (id, data, expires_at) VALUES ('old', $1, now() + interval '1 minute')`,
		`{"id":"old","client_id":"web","state":"\u003c\u0026\u003e"}`)
	if got, err := s.AuthRequest(ctx, "old"); err != nil || got.State != "<&>" {
		t.Errorf("AuthRequest of an escaped row = %+v, %v; want the state <&>", got, err)
	}
}

// A database that takes no writes (here every transaction read-only, as
// on a standby) fails every write, and WriteRefused says why; the store's
// answers (already exists) are no refusal.
func TestWriteRefused(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{}) // migrates
	now := time.Now()
	c := &oauthd.Client{ID: "a", CreatedAt: now}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, c); !errors.Is(err, oauthd.ErrAlreadyExists) {
		t.Fatalf("CreateClient again: %v; want ErrAlreadyExists", err)
	} else if _, ok := pgstore.WriteRefused(err); ok {
		t.Errorf("WriteRefused(%v) = true", err)
	}
	ro := open(t, pgtest.WithParam(t, dsn, "default_transaction_read_only", "on"), pgstore.Options{NoMigrate: true})
	err := ro.CreateClient(ctx, &oauthd.Client{ID: "b", CreatedAt: now})
	if reason, ok := pgstore.WriteRefused(err); !ok || reason != "read-only" {
		t.Errorf("CreateClient on a read-only database: %v (WriteRefused %q, %v); want read-only", err, reason, ok)
	}
	if _, err := ro.DeleteExpired(ctx, now.Add(time.Hour), 10); err == nil {
		t.Error("DeleteExpired on a read-only database succeeded")
	} else if reason, ok := pgstore.WriteRefused(err); !ok || reason != "read-only" {
		t.Errorf("DeleteExpired on a read-only database: %v (WriteRefused %q, %v); want read-only", err, reason, ok)
	}
	if _, err := ro.Client(ctx, "a"); err != nil {
		t.Errorf("Client on a read-only database: %v; want reads to work", err)
	}
}

// A read on a pooled connection the server has closed (an administrator's
// pg_terminate_backend, a failover) is run again on another connection:
// the request gets its answer, not a 503. Writes are not run again.
func TestReadAfterTheConnectionWasKilled(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	name := fmt.Sprintf("oauthd-killed-%d", time.Now().UnixNano())
	s := open(t, pgtest.WithParam(t, dsn, "application_name", name), pgstore.Options{})
	ctx := t.Context()
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c1", Public: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &oauthd.User{ID: "u1", Username: "ada", PasswordHash: "$2a$10$x"}); err != nil {
		t.Fatal(err)
	}
	for round := range 3 {
		// Several connections in the pool, then all of them closed by
		// the server.
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() { s.Client(ctx, "c1") })
		}
		wg.Wait()
		pgtest.Exec(t, dsn, fmt.Sprintf(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '%s'`, name))
		time.Sleep(50 * time.Millisecond) // the backends exit
		if _, err := s.Client(ctx, "c1"); err != nil {
			t.Errorf("round %d: Client after the connections were killed: %v", round, err)
		}
		if _, err := s.User(ctx, "u1"); err != nil {
			t.Errorf("round %d: User after the connections were killed: %v", round, err)
		}
		if _, err := s.Token(ctx, "none"); !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("round %d: Token after the connections were killed: %v; want ErrNotFound", round, err)
		}
	}
}

// RevokeTokensOf's grant revocations are collected once they are past:
// a year after the pair's tokens expired, DeleteExpired forgets them.
func TestRevokeTokensOfRevocationsAreCollected(t *testing.T) {
	ctx := t.Context()
	s := fresh(t)
	now := time.Now()
	for _, g := range []string{"g1", "g2", "g3"} {
		if err := s.CreateTokens(ctx, &oauthd.Token{Hash: g + "-rt", Kind: oauthd.RefreshToken, GrantID: g, ClientID: "c1", Subject: "u1",
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeTokensOf(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		var n int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM grant_revocations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := count(); n != 3 {
		t.Fatalf("%d grant revocations after RevokeTokensOf; want 3", n)
	}
	for _, later := range []time.Duration{24 * time.Hour, 366 * 24 * time.Hour} {
		for range 3 {
			if _, err := s.DeleteExpired(ctx, now.Add(later), 1000); err != nil {
				t.Fatal(err)
			}
		}
		want := 3
		if later > 365*24*time.Hour+time.Hour {
			want = 0
		}
		if n := count(); n != want {
			t.Errorf("%d grant revocations %v after RevokeTokensOf; want %d", n, later, want)
		}
	}
}

// RevokeTokensOf is all or nothing for the pair's codes: when it fails
// (here a lock held on the code's row past the operation timeout), the
// code is not left redeemable under a revoked grant (the client had been
// answered 200 with tokens that were never stored).
func TestRevokeTokensOfFailedLeavesNoHalfState(t *testing.T) {
	ctx := t.Context()
	dsn, _ := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{OperationTimeout: 300 * time.Millisecond})
	now := time.Now()
	code := &oauthd.AuthCode{Hash: "code-1", GrantID: "g-code", ClientID: "c1", Subject: "u1", RedirectURI: "https://c.example/cb",
		Scopes: []string{"openid"}, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `SELECT 1 FROM auth_codes WHERE hash = 'code-1' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	revokeErr := s.RevokeTokensOf(ctx, "u1", "c1")
	time.Sleep(300 * time.Millisecond) // the cancelled statement is gone on the server
	tx.Rollback(ctx)
	if revokeErr == nil {
		t.Skip("RevokeTokensOf succeeded; the lock did not hold it")
	}
	issued := false
	_, err = s.RedeemAuthCode(ctx, "code-1", time.Now(), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		issued = true
		return []*oauthd.Token{{Hash: "code-1-at", Kind: oauthd.AccessToken, GrantID: c.GrantID, ClientID: c.ClientID, Subject: c.Subject,
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}}, nil
	})
	if issued && err == nil {
		if _, terr := s.Token(ctx, "code-1-at"); terr != nil {
			t.Errorf("after a failed RevokeTokensOf the code still redeemed, but its token is %v: the grant was revoked and the code kept", terr)
		}
	}
}

// A failed lookup by username does not name it: the sign-in form's
// username is often a password typed in the wrong box, and the error is
// logged.
func TestUserByUsernameErrorHoldsNoUsername(t *testing.T) {
	dsn, schema := pgtest.Schema(t)
	s := open(t, dsn, pgstore.Options{})
	pgtest.Exec(t, dsn, fmt.Sprintf(`ALTER TABLE %q.users RENAME TO users_gone`, schema))
	const typed = "MyPassw0rdInTheWrongBox"
	_, err := s.UserByUsername(t.Context(), typed)
	if err == nil || errors.Is(err, oauthd.ErrNotFound) {
		t.Fatalf("UserByUsername on a database without its users table = %v; want an error", err)
	}
	if strings.Contains(err.Error(), typed) {
		t.Errorf("error %q holds the username", err)
	}
}
