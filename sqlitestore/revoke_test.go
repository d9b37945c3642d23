package sqlitestore

import (
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// revokeTestToken is a token of the grant (none for ""), expiring at exp.
func revokeTestToken(hash, kind, grant string, exp time.Time) *oauthd.Token {
	return &oauthd.Token{Hash: hash, Kind: kind, GrantID: grant, ClientID: "c", Subject: "u", Scopes: []string{"read"},
		IssuedAt: exp.Add(-2 * time.Hour), ExpiresAt: exp}
}

// grantRows counts the rows of the grant's tokens, and its revocation
// records, as stored.
func grantRows(t *testing.T, s *Store, grant string) (tokens, revocations int) {
	t.Helper()
	onWriteConn(t, s, func(c *sql.Conn) error {
		return c.QueryRowContext(t.Context(), `SELECT (SELECT count(*) FROM tokens WHERE grant_id = ?1),
			(SELECT count(*) FROM grant_revocations WHERE grant_id = ?1)`, grant).Scan(&tokens, &revocations)
	})
	return tokens, revocations
}

// RevokeGrant hides the grant's tokens from every read and write at once;
// DeleteExpired's sweep deletes them; the other tokens are untouched.
func TestRevokedGrantTokensHiddenThenSwept(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	later := now.Add(time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateTokens(ctx, revokeTestToken("g-at", oauthd.AccessToken, "g", later), revokeTestToken("g-rt", oauthd.RefreshToken, "g", later)))
	must(s.CreateTokens(ctx, revokeTestToken("h-at", oauthd.AccessToken, "h", later), revokeTestToken("h-rt", oauthd.RefreshToken, "h", later)))
	must(s.CreateTokens(ctx, revokeTestToken("cc", oauthd.AccessToken, "", later)))
	if _, err := s.Token(ctx, "g-at"); err != nil { // cached now
		t.Fatal(err)
	}
	must(s.RevokeGrant(ctx, "g", later))

	for _, h := range []string{"g-at", "g-rt"} {
		if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("Token(%s) of the revoked grant: %v; want ErrNotFound", h, err)
		}
	}
	s.cache.clear() // and from the database, not the cache
	for _, h := range []string{"g-at", "g-rt"} {
		if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("Token(%s) of the revoked grant, uncached: %v; want ErrNotFound", h, err)
		}
	}
	if _, err := s.RotateRefreshToken(ctx, "g-rt", now, nil, revokeTestToken("g-rt2", oauthd.RefreshToken, "g", later)); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("RotateRefreshToken of the revoked grant's token: %v; want ErrNotFound", err)
	}
	if err := s.RevokeToken(ctx, "g-at"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("RevokeToken of the revoked grant's token: %v; want ErrNotFound", err)
	}
	must(s.CreateTokens(ctx, revokeTestToken("g-new", oauthd.AccessToken, "g", later)))
	if _, err := s.Token(ctx, "g-new"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token of a token created for the revoked grant: %v; want ErrNotFound", err)
	}
	for _, h := range []string{"h-at", "h-rt", "cc"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("Token(%s) of another grant: %v", h, err)
		}
	}
	if tokens, revocations := grantRows(t, s, "g"); tokens != 2 || revocations != 1 {
		t.Fatalf("before the sweep: %d tokens and %d revocation records of the grant stored; want 2 and 1", tokens, revocations)
	}

	n, err := s.DeleteExpired(ctx, now, 100)
	must(err)
	if n != 2 {
		t.Errorf("DeleteExpired = %d; want 2 (the revoked grant's tokens)", n)
	}
	if tokens, revocations := grantRows(t, s, "g"); tokens != 0 || revocations != 1 {
		t.Errorf("after the sweep: %d tokens and %d revocation records of the grant stored; want 0 and 1 (until has not passed)", tokens, revocations)
	}
	if tokens, _ := grantRows(t, s, "h"); tokens != 2 {
		t.Errorf("after the sweep: %d tokens of another grant; want 2", tokens)
	}
	// After until, the record is forgotten, and the grant's tokens can be
	// stored again.
	n, err = s.DeleteExpired(ctx, later.Add(time.Minute), 100)
	must(err)
	if _, revocations := grantRows(t, s, "g"); revocations != 0 {
		t.Errorf("after until: %d revocation records of the grant (DeleteExpired = %d); want 0", revocations, n)
	}
}

// A revocation record is never forgotten while its grant has a token
// stored, even when its until has passed and the sweep is half-way through
// the table when the grant is revoked: the tokens the sweep looked at
// before the revocation are deleted by its next pass, and only then is the
// record forgotten. Otherwise they would be found again.
func TestRevocationOutlivesItsTokens(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	far := now.Add(24 * time.Hour)
	if err := s.CreateTokens(ctx, revokeTestToken("g-at", oauthd.AccessToken, "g", far), revokeTestToken("g-rt", oauthd.RefreshToken, "g", far)); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := s.CreateTokens(ctx, revokeTestToken(fmt.Sprintf("old-%02d", i), oauthd.AccessToken, fmt.Sprintf("o%d", i), now.Add(-time.Minute))); err != nil {
			t.Fatal(err)
		}
	}
	// The sweep starts a pass and stops after the first expired token,
	// past the grant's tokens, which were not revoked yet.
	if n, err := s.DeleteExpired(ctx, now, 1); err != nil || n != 1 {
		t.Fatalf("DeleteExpired = %d, %v; want 1", n, err)
	}
	if err := s.RevokeGrant(ctx, "g", now.Add(-time.Second)); err != nil { // until already passed
		t.Fatal(err)
	}
	forgotten := false
	for call := range 40 {
		if _, err := s.DeleteExpired(ctx, now, 1); err != nil {
			t.Fatal(err)
		}
		tokens, revocations := grantRows(t, s, "g")
		if revocations == 0 && tokens != 0 {
			t.Fatalf("call %d: the revocation record was forgotten with %d of its grant's tokens stored", call, tokens)
		}
		s.cache.clear()
		for _, h := range []string{"g-at", "g-rt"} {
			if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
				t.Fatalf("call %d: Token(%s) of the revoked grant: %v; want ErrNotFound", call, h, err)
			}
		}
		if revocations == 0 {
			forgotten = true
			break
		}
	}
	if !forgotten {
		t.Error("the expired revocation record was never forgotten")
	}
}

// Every read of a token looks it up by its hash and its grant's revocation
// by the grant ID: no scan.
func TestTokenReadsUseTheKeys(t *testing.T) {
	s := openTemp(t)
	for _, q := range []struct {
		name, query string
		args        []any
	}{
		{"token", sqlToken, []any{"x"}},
		{"refresh token", sqlRefreshToken, []any{"x"}},
		{"refresh tokens", sqlRefreshTokens, []any{`["a","b"]`}},
		{"rotate", sqlRotateToken, []any{1, nil, "x"}},
		{"revoke token", sqlDeleteToken, []any{"x"}},
	} {
		plan := strings.Join(queryPlan(t, s, q.query, q.args...), "; ")
		if !strings.Contains(plan, "tokens USING INDEX sqlite_autoindex_tokens_1 (hash=?)") ||
			!strings.Contains(plan, "sqlite_autoindex_grant_revocations_1 (grant_id=?)") ||
			!strings.Contains(plan, "m USING COVERING INDEX tokens_revoked (subject=? AND client_id=? AND rowid>?)") ||
			strings.Contains(plan, "SCAN tokens") || strings.Contains(plan, "SCAN r") || strings.Contains(plan, "SCAN m") {
			t.Errorf("%s: plan %q; want lookups by the keys", q.name, plan)
		}
	}
}

// databaseAt creates a database file with the migrations up to version,
// then runs query with args on it, and returns its path.
func databaseAt(t *testing.T, version int, query string, args ...any) string {
	t.Helper()
	ctx := t.Context()
	path := fmt.Sprintf("%s/v%d.db", t.TempDir(), version)
	db, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range migrations {
		if m.Version <= version {
			if err := apply(ctx, c, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.ExecContext(ctx, query, args...); err != nil {
		t.Fatal(err)
	}
	return path
}

// A database revoked grants in before migration 0005 (whose revocations
// deleted the grants' tokens then) keeps its revocation records, which go
// on hiding their grants' tokens and stopping new ones.
func TestMigration5KeepsRevocations(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	path := databaseAt(t, 4, `INSERT INTO grant_revocations (grant_id, expires_at) VALUES ('g', ?), ('g2', 0)`, unixMS(now.Add(time.Hour)))
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion || latestVersion < 5 {
		t.Fatalf("SchemaVersion = %d, %v; want %d (at least 5)", v, err, latestVersion)
	}
	if err := s.CreateTokens(ctx, revokeTestToken("g-at", oauthd.AccessToken, "g", now.Add(time.Hour)), revokeTestToken("h-at", oauthd.AccessToken, "h", now.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, "g-at"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token of a grant revoked before the migration: %v; want ErrNotFound", err)
	}
	if _, err := s.Token(ctx, "h-at"); err != nil {
		t.Errorf("Token of another grant: %v", err)
	}
	var seqs []int64
	onWriteConn(t, s, func(c *sql.Conn) error {
		rows, err := c.QueryContext(ctx, `SELECT seq FROM grant_revocations ORDER BY grant_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var v int64
			if err := rows.Scan(&v); err != nil {
				return err
			}
			seqs = append(seqs, v)
		}
		return rows.Err()
	})
	if len(seqs) != 2 || seqs[0] < 1 || seqs[1] <= seqs[0] {
		t.Errorf("revocation seqs after the migration: %v; want two, ascending from 1", seqs)
	}
}
