package sqlitestore

import (
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// userToken is a token of grant g that user granted client.
func userToken(hash, kind, grant, user, client string, exp time.Time) *oauthd.Token {
	t := revokeTestToken(hash, kind, grant, exp)
	t.Subject, t.ClientID = user, client
	return t
}

// storedHashes returns the hashes of the rows in tokens, markers included,
// in rowid order.
func storedHashes(t *testing.T, s *Store) []string {
	t.Helper()
	return queryStrings(t, s, `SELECT hash FROM tokens ORDER BY rowid`)
}

// markers counts RevokeTokensOf's marker rows.
func markers(t *testing.T, s *Store) int {
	t.Helper()
	var n int
	if err := s.rdb.QueryRowContext(t.Context(), `SELECT count(*) FROM tokens WHERE kind = 'revoked'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// RevokeTokensOf hides the tokens the user granted the client from every
// read and write at once (RFC 7009's revocation of them, and the
// rotation of their refresh tokens, find nothing); the sweep of
// DeleteExpired deletes them; the user's tokens for other clients, other
// users' tokens and the client's own (client_credentials) are untouched;
// tokens the user grants the client afterwards are not hidden.
func TestTokensOfHiddenThenSwept(t *testing.T) {
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
	must(s.CreateTokens(ctx, userToken("u1-c1-at", oauthd.AccessToken, "g1", "u1", "c1", later),
		userToken("u1-c1-rt", oauthd.RefreshToken, "g1", "u1", "c1", later)))
	must(s.CreateTokens(ctx, userToken("u1-c1-rt-2", oauthd.RefreshToken, "g2", "u1", "c1", later)))
	must(s.CreateTokens(ctx, userToken("u1-c2-at", oauthd.AccessToken, "g3", "u1", "c2", later)))
	must(s.CreateTokens(ctx, userToken("u2-c1-at", oauthd.AccessToken, "g4", "u2", "c1", later)))
	must(s.CreateTokens(ctx, userToken("cc-c1-at", oauthd.AccessToken, "", "", "c1", later)))
	if _, err := s.Token(ctx, "u1-c1-at"); err != nil { // cached now
		t.Fatal(err)
	}
	must(s.RevokeTokensOf(ctx, "u1", "c1"))

	hidden := []string{"u1-c1-at", "u1-c1-rt", "u1-c1-rt-2"}
	kept := []string{"u1-c2-at", "u2-c1-at", "cc-c1-at"}
	check := func(when string) {
		t.Helper()
		for _, h := range hidden {
			if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("%s: Token(%s): %v; want ErrNotFound", when, h, err)
			}
		}
		for _, h := range kept {
			if _, err := s.Token(ctx, h); err != nil {
				t.Errorf("%s: Token(%s): %v; want it found", when, h, err)
			}
		}
	}
	check("cached")
	s.cache.clear()
	check("uncached")
	if _, err := s.RotateRefreshToken(ctx, "u1-c1-rt", now, nil, userToken("u1-c1-rt-next", oauthd.RefreshToken, "g1", "u1", "c1", later)); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("RotateRefreshToken of a hidden token: %v; want ErrNotFound", err)
	}
	if err := s.RevokeToken(ctx, "u1-c1-at"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("RevokeToken of a hidden token: %v; want ErrNotFound", err)
	}

	// The user grants the client again: the new tokens are not hidden.
	must(s.CreateTokens(ctx, userToken("u1-c1-new", oauthd.AccessToken, "g5", "u1", "c1", later)))
	if _, err := s.Token(ctx, "u1-c1-new"); err != nil {
		t.Errorf("Token of a token stored after the revocation: %v", err)
	}

	n, err := s.DeleteExpired(ctx, now, 100)
	must(err)
	if n != len(hidden) {
		t.Errorf("DeleteExpired = %d; want %d (the hidden tokens)", n, len(hidden))
	}
	got := storedHashes(t, s)
	for _, h := range hidden {
		for _, g := range got {
			if g == h {
				t.Errorf("after the sweep, %s is still stored", h)
			}
		}
	}
	if len(got) != len(kept)+2 || markers(t, s) != 1 {
		t.Errorf("after the sweep, tokens stored: %q; want %q, the new token and one marker", got, kept)
	}
	for _, h := range append(kept, "u1-c1-new") {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("after the sweep: Token(%s): %v", h, err)
		}
	}

	// Revoked again: the new token is hidden, the first marker replaced.
	must(s.RevokeTokensOf(ctx, "u1", "c1"))
	if _, err := s.Token(ctx, "u1-c1-new"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token after the second revocation: %v; want ErrNotFound", err)
	}
	if m := markers(t, s); m != 1 {
		t.Errorf("%d markers after revoking the same user and client twice; want 1", m)
	}
	// Of nobody, or no user: nothing to hide, no error.
	must(s.RevokeTokensOf(ctx, "nobody", "nothing"))
	must(s.RevokeTokensOf(ctx, "", "c1"))
	if _, err := s.Token(ctx, "cc-c1-at"); err != nil {
		t.Errorf("RevokeTokensOf of no user hid the client's own token: %v", err)
	}
}

// The marker keeps the rowids of later tokens above it: when the sweep
// has deleted the hidden tokens, the highest of which had the highest
// rowid of the table, the tokens stored next are not taken for older ones.
// Without the marker row in the table, SQLite would hand the freed rowids
// out again (one above the highest left).
func TestTokensOfLaterTokensStayVisible(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	later := now.Add(time.Hour)
	for _, h := range []string{"a", "b", "c"} {
		if err := s.CreateTokens(ctx, userToken(h, oauthd.AccessToken, "g-"+h, "u1", "c1", later)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeTokensOf(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx, now, 100); err != nil || n != 3 {
		t.Fatalf("DeleteExpired = %d, %v; want 3", n, err)
	}
	for _, h := range []string{"d", "e", "f"} {
		if err := s.CreateTokens(ctx, userToken(h, oauthd.AccessToken, "g-"+h, "u1", "c1", later)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("Token(%s), stored after the revocation and the sweep: %v", h, err)
		}
	}
}

// A marker is not a token: its hash finds nothing, RFC 7009's revocation
// of it removes nothing (its tokens stay hidden), and no caller can store
// a token of its kind.
func TestTokensOfMarkerIsNoToken(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	later := time.Now().Add(time.Hour)
	if err := s.CreateTokens(ctx, userToken("u1-c1-at", oauthd.AccessToken, "g1", "u1", "c1", later)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTokensOf(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	var hash string
	if err := s.rdb.QueryRowContext(ctx, `SELECT hash FROM tokens WHERE kind = 'revoked'`).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	if hash == "" || hash[0] != '!' {
		t.Fatalf("marker hash %q; want one that starts with '!', which no HashToken does", hash)
	}
	if _, err := s.Token(ctx, hash); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token(marker): %v; want ErrNotFound", err)
	}
	if err := s.RevokeToken(ctx, hash); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("RevokeToken(marker): %v; want ErrNotFound", err)
	}
	if _, err := s.Token(ctx, "u1-c1-at"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token of a hidden token after RevokeToken(marker): %v; want ErrNotFound", err)
	}
	bad := userToken("x", revokedKind, "", "u2", "c1", later)
	if err := s.CreateTokens(ctx, bad); err == nil {
		t.Error("CreateTokens of a token of the marker's kind succeeded")
	}
	if m := markers(t, s); m != 1 {
		t.Errorf("%d markers; want 1", m)
	}
}

// A database from before migration 0006 keeps its tokens through it, and
// RevokeTokensOf hides them afterwards; the index by user and client is
// gone.
func TestMigration6(t *testing.T) {
	ctx := t.Context()
	path := databaseAt(t, 5, `INSERT INTO tokens (`+tokenColumns+`) VALUES
		('u1-c1-at', 'access_token', 'g1', 'c1', 'u1', 'read', '', 0, 1, 0, 0, NULL),
		('u2-c1-at', 'access_token', 'g2', 'c1', 'u2', 'read', '', 0, 1, 0, 0, NULL)`)
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.SchemaVersion(ctx); err != nil || v != latestVersion || latestVersion < 6 {
		t.Fatalf("SchemaVersion = %d, %v; want %d (at least 6)", v, err, latestVersion)
	}
	if got := queryStrings(t, s, `SELECT name FROM sqlite_schema WHERE name = 'tokens_subject_client_id'`); len(got) != 0 {
		t.Errorf("index tokens_subject_client_id still there after migration 6")
	}
	for _, h := range []string{"u1-c1-at", "u2-c1-at"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("Token(%s) after migration 6: %v", h, err)
		}
	}
	if err := s.RevokeTokensOf(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, "u1-c1-at"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token(u1-c1-at) after RevokeTokensOf: %v; want ErrNotFound", err)
	}
	if _, err := s.Token(ctx, "u2-c1-at"); err != nil {
		t.Errorf("Token(u2-c1-at) after RevokeTokensOf(u1): %v", err)
	}
}

// VACUUM (which an operator may run with the sqlite3 shell) keeps the
// order of the rows' rowids, which is all a marker depends on: after it,
// the tokens stored before a marker are still hidden, the ones stored
// after it still found, and the tokens stored next are not hidden.
func TestTokensOfSurvivesVacuum(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	later := now.Add(time.Hour)
	for i, h := range []string{"a", "b", "c", "d"} {
		// Expired ones in between, swept below: gaps in the rowids.
		exp := later
		if i%2 == 1 {
			exp = now.Add(-time.Minute)
		}
		if err := s.CreateTokens(ctx, userToken(h, oauthd.AccessToken, "g-"+h, "u9", "c9", exp)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RevokeTokensOf(ctx, "u1", "c1"); err != nil { // a marker below the next one
		t.Fatal(err)
	}
	if err := s.CreateTokens(ctx, userToken("old", oauthd.AccessToken, "g-old", "u1", "c1", later)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeTokensOf(ctx, "u1", "c1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTokens(ctx, userToken("new", oauthd.AccessToken, "g-new", "u1", "c1", later)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteExpired(ctx, now, 2); err != nil { // the two expired ones
		t.Fatal(err)
	}
	onWriteConn(t, s, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `VACUUM`)
		return err
	})
	s.cache.clear()
	if err := s.CreateTokens(ctx, userToken("newer", oauthd.AccessToken, "g-newer", "u1", "c1", later)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, "old"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token(old) after VACUUM: %v; want ErrNotFound", err)
	}
	for _, h := range []string{"a", "c", "new", "newer"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("Token(%s) after VACUUM: %v", h, err)
		}
	}
}
