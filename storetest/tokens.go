package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var tokenTests = []test{
	{"RoundTrip", testTokenRoundTrip},
	{"CreateIsAllOrNothing", testTokenCreateAtomic},
	{"Rotate", testTokenRotate},
	{"RotateWithoutSuccessor", testTokenRotateBare},
	{"RotateOnlyRefreshTokens", testTokenRotateNotFound},
	{"RotateIsAllOrNothing", testTokenRotateAtomic},
	{"ConcurrentRotateOneWins", testTokenRotateRace},
	{"RevokeToken", testTokenRevoke},
	{"RevokeGrant", testTokenRevokeGrant},
	{"RevokeGrantHoldsForLaterTokens", testTokenRevokeGrantLater},
	{"RevokeGrantUntil", testTokenRevokeGrantUntil},
	{"RevokeTokensOf", testTokenRevokeTokensOf},
	{"RevokeTokensOfRacingRotations", testTokenRevokeTokensOfRace},
	{"ConcurrentCreatesAreIndependent", testTokenConcurrentCreates},
}

// tokenExists fails the test unless Token(hash) is found (want true) or
// ErrNotFound (want false).
func tokenExists(t testing.TB, s oauthd.Storage, hash string, want bool) {
	t.Helper()
	_, err := s.Token(t.Context(), hash)
	switch {
	case want && err != nil:
		t.Errorf("Token(%q): %v; want the token", hash, err)
	case !want && !errors.Is(err, oauthd.ErrNotFound):
		t.Errorf("Token(%q): err = %v; want ErrNotFound", hash, err)
	}
}

func testTokenRoundTrip(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	access := fullToken("at-1", oauthd.AccessToken, "g1")
	refresh := fullToken("rt-1", oauthd.RefreshToken, "g1")
	refresh.ExpiresAt = at(24 * time.Hour)
	machine := &oauthd.Token{Hash: "at-cc", Kind: oauthd.AccessToken, ClientID: "svc", IssuedAt: at(0), ExpiresAt: at(time.Hour)}
	must(t, "CreateTokens", s.CreateTokens(ctx, access, refresh))
	must(t, "CreateTokens(one)", s.CreateTokens(ctx, machine))
	must(t, "CreateTokens(none)", s.CreateTokens(ctx))
	for _, in := range []*oauthd.Token{access, refresh, machine} {
		got, err := s.Token(ctx, in.Hash)
		must(t, "Token("+in.Hash+")", err)
		if g, w := normToken(got), normToken(in); !reflect.DeepEqual(g, w) {
			t.Errorf("Token(%q) = %+v; want %+v", in.Hash, g, w)
		}
	}
	// Expired tokens are returned; the caller checks Active.
	old := fullToken("at-old", oauthd.AccessToken, "g2")
	old.ExpiresAt = at(-time.Hour)
	must(t, "CreateTokens(expired)", s.CreateTokens(ctx, old))
	tokenExists(t, s, "at-old", true)

	got, err := s.Token(ctx, "at-1")
	must(t, "Token", err)
	got.Scopes[0] = "admin"
	again, err := s.Token(ctx, "at-1")
	must(t, "Token", err)
	if again.Scopes[0] != "openid" {
		t.Errorf("stored token changed through a caller's copy: Scopes = %q", again.Scopes)
	}
	_, err = s.Token(ctx, "unknown")
	wantErr(t, "Token(unknown)", err, oauthd.ErrNotFound)
}

func testTokenCreateAtomic(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("t1", oauthd.AccessToken, "g1")))
	dup := fullToken("t1", oauthd.RefreshToken, "g2")
	err := s.CreateTokens(ctx,
		fullToken("t2", oauthd.AccessToken, "g2"),
		dup,
		fullToken("t3", oauthd.RefreshToken, "g2"))
	wantErr(t, "CreateTokens(with a taken hash)", err, oauthd.ErrAlreadyExists)
	tokenExists(t, s, "t2", false)
	tokenExists(t, s, "t3", false)
	got, err := s.Token(ctx, "t1")
	must(t, "Token(t1)", err)
	if got.Kind != oauthd.AccessToken || got.GrantID != "g1" {
		t.Errorf("Token(t1) = %+v after refused create; want the first token", got)
	}

	err = s.CreateTokens(ctx, fullToken("t4", oauthd.AccessToken, "g3"), fullToken("t4", oauthd.RefreshToken, "g3"))
	wantErr(t, "CreateTokens(one hash twice)", err, oauthd.ErrAlreadyExists)
	tokenExists(t, s, "t4", false)

	// An access and refresh token pair of one grant (what a code
	// redemption or a refresh stores), with either hash taken: neither is
	// stored.
	err = s.CreateTokens(ctx, fullToken("t1", oauthd.AccessToken, "g4"), fullToken("t5", oauthd.RefreshToken, "g4"))
	wantErr(t, "CreateTokens(pair, first hash taken)", err, oauthd.ErrAlreadyExists)
	tokenExists(t, s, "t5", false)
	err = s.CreateTokens(ctx, fullToken("t6", oauthd.AccessToken, "g4"), fullToken("t1", oauthd.RefreshToken, "g4"))
	wantErr(t, "CreateTokens(pair, second hash taken)", err, oauthd.ErrAlreadyExists)
	tokenExists(t, s, "t6", false)
	if got, err := s.Token(ctx, "t1"); err != nil || got.GrantID != "g1" {
		t.Errorf("Token(t1) = %+v, %v after refused pairs; want the first token", got, err)
	}
}

func testTokenRotate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	old := fullToken("rt-0", oauthd.RefreshToken, "g1")
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("at-0", oauthd.AccessToken, "g1"), old))

	now := at(30 * time.Second)
	successor := []byte("sealed successor \x00\x01\xff")
	next := []*oauthd.Token{
		fullToken("at-1", oauthd.AccessToken, "g1"),
		fullToken("rt-1", oauthd.RefreshToken, "g1"),
	}
	got, err := s.RotateRefreshToken(ctx, "rt-0", now, successor, next...)
	must(t, "RotateRefreshToken", err)
	want := normToken(old)
	want.RotatedAt = ms(now)
	want.Successor = successor
	if got == nil {
		t.Fatalf("RotateRefreshToken = nil, nil; want the rotated token")
	}
	if g := normToken(got); !reflect.DeepEqual(g, want) {
		t.Errorf("RotateRefreshToken = %+v; want %+v", g, want)
	}
	stored, err := s.Token(ctx, "rt-0")
	must(t, "Token(old)", err)
	if g := normToken(stored); !reflect.DeepEqual(g, want) {
		t.Errorf("Token(old) after rotation = %+v; want %+v", g, want)
	}
	if stored.Active(at(0)) {
		t.Errorf("rotated token is still Active")
	}
	for _, n := range next {
		got, err := s.Token(ctx, n.Hash)
		must(t, "Token(next)", err)
		if g, w := normToken(got), normToken(n); !reflect.DeepEqual(g, w) {
			t.Errorf("Token(%q) = %+v; want %+v", n.Hash, g, w)
		}
	}
	tokenExists(t, s, "at-0", true)

	// A second rotation is reuse: the old token comes back with
	// ErrAlreadyUsed, and nothing of the second call is stored.
	again, err := s.RotateRefreshToken(ctx, "rt-0", at(time.Minute), []byte("other"), fullToken("rt-2", oauthd.RefreshToken, "g1"))
	wantErr(t, "RotateRefreshToken(again)", err, oauthd.ErrAlreadyUsed)
	if again == nil {
		t.Fatalf("RotateRefreshToken(again) returned no token with ErrAlreadyUsed")
	}
	if g := normToken(again); !reflect.DeepEqual(g, want) {
		t.Errorf("RotateRefreshToken(again) = %+v; want %+v", g, want)
	}
	tokenExists(t, s, "rt-2", false)

	// The successor rotates in turn.
	_, err = s.RotateRefreshToken(ctx, "rt-1", at(2*time.Minute), nil, fullToken("rt-3", oauthd.RefreshToken, "g1"))
	must(t, "RotateRefreshToken(successor)", err)
	tokenExists(t, s, "rt-3", true)
}

func testTokenRotateBare(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("rt-0", oauthd.RefreshToken, "g1")))
	got, err := s.RotateRefreshToken(ctx, "rt-0", at(time.Second), nil)
	must(t, "RotateRefreshToken(no successor, no next)", err)
	if !ms(got.RotatedAt).Equal(ms(at(time.Second))) || len(got.Successor) != 0 {
		t.Errorf("RotateRefreshToken = RotatedAt %v, Successor %q; want %v, none", got.RotatedAt, got.Successor, ms(at(time.Second)))
	}
	_, err = s.RotateRefreshToken(ctx, "rt-0", at(2*time.Second), nil)
	wantErr(t, "RotateRefreshToken(again)", err, oauthd.ErrAlreadyUsed)
}

func testTokenRotateNotFound(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	access := fullToken("at-0", oauthd.AccessToken, "g1")
	must(t, "CreateTokens", s.CreateTokens(ctx, access))
	tests := []struct {
		name, hash string
	}{
		{"unknown hash", "unknown"},
		{"access token", "at-0"},
	}
	for _, tc := range tests {
		_, err := s.RotateRefreshToken(ctx, tc.hash, at(time.Second), []byte("s"), fullToken("next-"+tc.hash, oauthd.RefreshToken, "g1"))
		wantErr(t, "RotateRefreshToken("+tc.name+")", err, oauthd.ErrNotFound)
		tokenExists(t, s, "next-"+tc.hash, false)
	}
	got, err := s.Token(ctx, "at-0")
	must(t, "Token(access)", err)
	if g, w := normToken(got), normToken(access); !reflect.DeepEqual(g, w) {
		t.Errorf("access token changed by a refused rotation: %+v; want %+v", g, w)
	}
}

func testTokenRotateAtomic(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	old := fullToken("rt-0", oauthd.RefreshToken, "g1")
	must(t, "CreateTokens", s.CreateTokens(ctx, old, fullToken("taken", oauthd.AccessToken, "g9")))
	_, err := s.RotateRefreshToken(ctx, "rt-0", at(time.Second), []byte("s"),
		fullToken("at-1", oauthd.AccessToken, "g1"),
		fullToken("taken", oauthd.RefreshToken, "g1"))
	wantErr(t, "RotateRefreshToken(next has a taken hash)", err, oauthd.ErrAlreadyExists)
	got, err := s.Token(ctx, "rt-0")
	must(t, "Token(old)", err)
	if g, w := normToken(got), normToken(old); !reflect.DeepEqual(g, w) {
		t.Errorf("old token after refused rotation = %+v; want it unrotated: %+v", g, w)
	}
	tokenExists(t, s, "at-1", false)
	// The token can still be rotated.
	_, err = s.RotateRefreshToken(ctx, "rt-0", at(2*time.Second), []byte("s"), fullToken("rt-1", oauthd.RefreshToken, "g1"))
	must(t, "RotateRefreshToken(retry)", err)
}

// testTokenRotateRace checks refresh token rotation (RFC 9700 §4.14.2):
// of many concurrent refreshes exactly one gets a successor; the others get
// the old token, with the winner's successor, and ErrAlreadyUsed.
func testTokenRotateRace(t *testing.T, s oauthd.Storage) { tokenRotateRace(t, s) }

func tokenRotateRace(t testing.TB, s oauthd.Storage) {
	ctx := t.Context()
	now := func(i int) time.Time { return at(time.Duration(i) * time.Second) }
	successor := func(i int) []byte { return fmt.Appendf(nil, "successor of goroutine %d", i) }
	for round := range raceRounds {
		hash := fmt.Sprintf("rt-race-%d", round)
		grant := fmt.Sprintf("g%d", round)
		nextHash := func(i int, kind string) string { return fmt.Sprintf("next-%d-%d-%s", round, i, kind) }
		old := fullToken(hash, oauthd.RefreshToken, grant)
		must(t, "CreateTokens", s.CreateTokens(ctx, old))
		toks := make([]*oauthd.Token, raceGoroutines)
		errs := make([]error, raceGoroutines)
		race(raceGoroutines, func(i int) {
			toks[i], errs[i] = s.RotateRefreshToken(ctx, hash, now(i), successor(i),
				fullToken(nextHash(i, "at"), oauthd.AccessToken, grant),
				fullToken(nextHash(i, "rt"), oauthd.RefreshToken, grant))
		})
		winner := oneWinner(t, fmt.Sprintf("round %d: RotateRefreshToken", round), errs)
		want := normToken(old)
		want.RotatedAt = ms(now(winner))
		want.Successor = successor(winner)
		for i, tok := range toks {
			if tok == nil {
				t.Errorf("round %d: goroutine %d got no token", round, i)
				continue
			}
			if g := normToken(tok); !reflect.DeepEqual(g, want) {
				t.Errorf("round %d: goroutine %d got %+v; want %+v", round, i, g, want)
			}
		}
		stored, err := s.Token(ctx, hash)
		must(t, "Token(old)", err)
		if g := normToken(stored); !reflect.DeepEqual(g, want) {
			t.Errorf("round %d: Token(old) = %+v; want %+v", round, g, want)
		}
		for i := range raceGoroutines {
			tokenExists(t, s, nextHash(i, "at"), i == winner)
			tokenExists(t, s, nextHash(i, "rt"), i == winner)
		}
		if t.Failed() {
			return
		}
	}
}

func testTokenRevoke(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx,
		fullToken("at-1", oauthd.AccessToken, "g1"),
		fullToken("rt-1", oauthd.RefreshToken, "g1")))
	must(t, "RevokeToken", s.RevokeToken(ctx, "rt-1"))
	tokenExists(t, s, "rt-1", false)
	tokenExists(t, s, "at-1", true)
	wantErr(t, "RevokeToken twice", s.RevokeToken(ctx, "rt-1"), oauthd.ErrNotFound)
	wantErr(t, "RevokeToken(unknown)", s.RevokeToken(ctx, "unknown"), oauthd.ErrNotFound)
	_, err := s.RotateRefreshToken(ctx, "rt-1", at(time.Second), nil)
	wantErr(t, "RotateRefreshToken(revoked)", err, oauthd.ErrNotFound)
}

func testTokenRevokeGrant(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx,
		fullToken("g1-at-1", oauthd.AccessToken, "g1"),
		fullToken("g1-rt-1", oauthd.RefreshToken, "g1"),
		fullToken("g2-at-1", oauthd.AccessToken, "g2"),
		fullToken("g2-rt-1", oauthd.RefreshToken, "g2"),
		// A client_credentials token: no grant, no subject.
		&oauthd.Token{Hash: "cc-at-1", Kind: oauthd.AccessToken, ClientID: "test_client", IssuedAt: at(0), ExpiresAt: at(time.Hour)}))
	_, err := s.RotateRefreshToken(ctx, "g1-rt-1", at(time.Second), []byte("s"),
		fullToken("g1-at-2", oauthd.AccessToken, "g1"),
		fullToken("g1-rt-2", oauthd.RefreshToken, "g1"))
	must(t, "RotateRefreshToken", err)

	must(t, "RevokeGrant", s.RevokeGrant(ctx, "g1", at(48*time.Hour)))
	for _, h := range []string{"g1-at-1", "g1-rt-1", "g1-at-2", "g1-rt-2"} {
		tokenExists(t, s, h, false)
	}
	tokenExists(t, s, "g2-at-1", true)
	tokenExists(t, s, "g2-rt-1", true)
	_, err = s.RotateRefreshToken(ctx, "g1-rt-2", at(2*time.Second), nil)
	wantErr(t, "RotateRefreshToken(revoked grant)", err, oauthd.ErrNotFound)

	must(t, "RevokeGrant(again)", s.RevokeGrant(ctx, "g1", at(48*time.Hour)))
	must(t, "RevokeGrant(no tokens)", s.RevokeGrant(ctx, "g-unknown", at(48*time.Hour)))
	tokenExists(t, s, "g2-at-1", true)

	// A token of no grant belongs to none: revoking a grant leaves it, and
	// the empty grant ID, which would name every such token, is refused.
	tokenExists(t, s, "cc-at-1", true)
	if err := s.RevokeGrant(ctx, "", at(48*time.Hour)); err == nil {
		t.Error("RevokeGrant(\"\") succeeded; want an error")
	}
	tokenExists(t, s, "cc-at-1", true)
	must(t, "CreateTokens(grantless, after)", s.CreateTokens(ctx,
		&oauthd.Token{Hash: "cc-at-2", Kind: oauthd.AccessToken, ClientID: "test_client", IssuedAt: at(0), ExpiresAt: at(time.Hour)}))
	tokenExists(t, s, "cc-at-2", true)
}

// testTokenRevokeGrantLater checks that a revoked grant stays revoked for
// tokens created after the revocation: a replayed code may be revoked while
// its first redemption is still issuing tokens.
func testTokenRevokeGrantLater(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "RevokeGrant", s.RevokeGrant(ctx, "g1", at(48*time.Hour)))
	late := []*oauthd.Token{
		fullToken("g1-at", oauthd.AccessToken, "g1"),
		fullToken("g1-rt", oauthd.RefreshToken, "g1"),
	}
	must(t, "CreateTokens(revoked grant)", s.CreateTokens(ctx, append(late, fullToken("g2-rt", oauthd.RefreshToken, "g2"))...))
	tokenExists(t, s, "g1-at", false)
	tokenExists(t, s, "g1-rt", false)
	tokenExists(t, s, "g2-rt", true)
	// The pair alone, as a code redemption or a refresh stores it.
	must(t, "CreateTokens(pair of a revoked grant)", s.CreateTokens(ctx, late...))
	tokenExists(t, s, "g1-at", false)
	tokenExists(t, s, "g1-rt", false)
	_, err := s.RotateRefreshToken(ctx, "g1-rt", at(time.Second), []byte("s"), fullToken("g1-rt-2", oauthd.RefreshToken, "g1"))
	wantErr(t, "RotateRefreshToken(token of a revoked grant)", err, oauthd.ErrNotFound)
	tokenExists(t, s, "g1-rt-2", false)

	// Rotating a live token into the revoked grant stores nothing visible.
	_, err = s.RotateRefreshToken(ctx, "g2-rt", at(time.Second), nil, fullToken("g1-rt-3", oauthd.RefreshToken, "g1"))
	must(t, "RotateRefreshToken(next in a revoked grant)", err)
	tokenExists(t, s, "g1-rt-3", false)
}

// testTokenRevokeGrantUntil checks that a revocation lasts until the latest
// until it was given, and that DeleteExpired forgets it afterwards.
func testTokenRevokeGrantUntil(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "RevokeGrant(g1, +1h)", s.RevokeGrant(ctx, "g1", at(time.Hour)))
	must(t, "RevokeGrant(g1, +3h)", s.RevokeGrant(ctx, "g1", at(3*time.Hour)))
	must(t, "RevokeGrant(g2, +3h)", s.RevokeGrant(ctx, "g2", at(3*time.Hour)))
	must(t, "RevokeGrant(g2, +1h)", s.RevokeGrant(ctx, "g2", at(time.Hour)))

	n, err := s.DeleteExpired(ctx, at(2*time.Hour), 100)
	must(t, "DeleteExpired(+2h)", err)
	if n != 0 {
		t.Errorf("DeleteExpired(+2h) = %d; want 0 (both revocations last until +3h)", n)
	}
	// Still revoked: later tokens are not found. They expire after the
	// revocation, so that DeleteExpired counts only the revocations below.
	for _, g := range []string{"g1", "g2"} {
		tok := fullToken(g+"-during", oauthd.AccessToken, g)
		tok.ExpiresAt = at(10 * time.Hour)
		must(t, "CreateTokens", s.CreateTokens(ctx, tok))
		tokenExists(t, s, tok.Hash, false)
	}

	n, err = s.DeleteExpired(ctx, at(4*time.Hour), 100)
	must(t, "DeleteExpired(+4h)", err)
	if n != 2 {
		t.Errorf("DeleteExpired(+4h) = %d; want 2 (the two revocations)", n)
	}
	// Forgotten: the grant's new tokens are found again.
	for _, g := range []string{"g1", "g2"} {
		must(t, "CreateTokens", s.CreateTokens(ctx, fullToken(g+"-after", oauthd.AccessToken, g)))
		tokenExists(t, s, g+"-after", true)
	}
}

func testTokenRevokeTokensOf(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	tok := func(hash, kind, grant, user, client string) *oauthd.Token {
		k := fullToken(hash, kind, grant)
		k.Subject, k.ClientID = user, client
		return k
	}
	must(t, "CreateTokens", s.CreateTokens(ctx,
		tok("u1-c1-at", oauthd.AccessToken, "g1", "u1", "c1"),
		tok("u1-c1-rt", oauthd.RefreshToken, "g1", "u1", "c1"),
		tok("u1-c1-rt-2", oauthd.RefreshToken, "g2", "u1", "c1"),
		tok("u1-c2-at", oauthd.AccessToken, "g3", "u1", "c2"),
		tok("u2-c1-at", oauthd.AccessToken, "g4", "u2", "c1"),
		tok("cc-c1-at", oauthd.AccessToken, "g5", "", "c1")))
	// The codes of the pair not used yet go too (RFC 6749 §10.5), those
	// of other pairs stay; a used one stays used.
	code := func(hash, user, client string) *oauthd.AuthCode {
		c := fullCode(hash)
		c.Subject, c.ClientID, c.IssuedAt, c.ExpiresAt = user, client, time.Now(), time.Now().Add(time.Minute)
		must(t, "CreateAuthCode", s.CreateAuthCode(ctx, c))
		return c
	}
	code("u1-c1-code", "u1", "c1")
	code("u1-c1-used", "u1", "c1")
	code("u1-c2-code", "u1", "c2")
	code("u2-c1-code", "u2", "c1")
	if _, err := s.ConsumeAuthCode(ctx, "u1-c1-used", time.Now()); err != nil {
		t.Fatalf("ConsumeAuthCode: %v", err)
	}
	must(t, "RevokeTokensOf(u1, c1)", s.RevokeTokensOf(ctx, "u1", "c1"))
	for h, want := range map[string]bool{
		"u1-c1-at": false, "u1-c1-rt": false, "u1-c1-rt-2": false,
		"u1-c2-at": true, "u2-c1-at": true, "cc-c1-at": true,
	} {
		tokenExists(t, s, h, want)
	}
	for h, want := range map[string]error{
		"u1-c1-code": oauthd.ErrNotFound, "u1-c1-used": oauthd.ErrAlreadyUsed, "u1-c2-code": nil, "u2-c1-code": nil,
	} {
		if _, err := s.ConsumeAuthCode(ctx, h, time.Now()); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("ConsumeAuthCode(%s) after RevokeTokensOf(u1, c1): %v; want %v", h, err, want)
		}
	}
	must(t, "RevokeTokensOf(nothing)", s.RevokeTokensOf(ctx, "u1", "c1"))
	must(t, "RevokeTokensOf(unknown)", s.RevokeTokensOf(ctx, "nobody", "nothing"))
}

// testTokenConcurrentCreates checks that concurrent writes do not fail one
// another: a store that batches writes must keep each one's outcome.
func testTokenConcurrentCreates(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("taken", oauthd.AccessToken, "g0")))
	const n = 40
	var (
		errs  [n]error
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	hash := func(i int) string { return fmt.Sprintf("tok-%d", i) }
	for i := range n {
		wg.Go(func() {
			<-start
			toks := []*oauthd.Token{fullToken(hash(i), oauthd.AccessToken, "g1")}
			if i%2 == 1 {
				toks = append(toks, fullToken("taken", oauthd.RefreshToken, "g1"))
			}
			errs[i] = s.CreateTokens(ctx, toks...)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		var want error
		if i%2 == 1 {
			want = oauthd.ErrAlreadyExists
		}
		if !errors.Is(err, want) {
			t.Errorf("CreateTokens in goroutine %d: err = %v; want %v", i, err, want)
		}
		tokenExists(t, s, hash(i), i%2 == 0)
	}
	got, err := s.Token(ctx, "taken")
	must(t, "Token(taken)", err)
	if got.GrantID != "g0" || !bytes.Equal(got.Successor, nil) {
		t.Errorf("Token(taken) = %+v; want the first token", got)
	}
}

// testTokenRevokeTokensOfRace revokes what a user granted a client while
// the grant's refresh token is rotated again and again, as a client
// refreshing in a loop does: once RevokeTokensOf has returned, no token of
// the grant is found, however many rotations committed while it ran. (On
// PostgreSQL, deleting the pair's tokens twice missed the token of a
// rotation that committed while the second delete waited for its
// predecessor's row lock; on SQLite, a rotation batched with the
// revocation inserted its successor after the revocation's marker: the
// grant lived on, refreshed forever.)
func testTokenRevokeTokensOfRace(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	for round := range raceRounds {
		grant := fmt.Sprintf("race-grant-%d", round)
		hash := func(i int) string { return fmt.Sprintf("%s-rt-%d", grant, i) }
		first := fullToken(hash(0), oauthd.RefreshToken, grant)
		must(t, "CreateTokens", s.CreateTokens(ctx, first))
		var (
			mu      sync.Mutex
			created = []string{hash(0)}
			stop    atomic.Bool
			rotated = make(chan struct{}, 1)
			done    = make(chan struct{})
		)
		go func() {
			defer close(done)
			for i := 1; !stop.Load(); i++ {
				next := fullToken(hash(i), oauthd.RefreshToken, grant)
				next.IssuedAt = at(time.Duration(i) * time.Millisecond)
				// Recorded before the call: a rotation the revocation
				// cut may still have stored it.
				mu.Lock()
				created = append(created, next.Hash)
				mu.Unlock()
				if _, err := s.RotateRefreshToken(ctx, hash(i-1), time.Now(), nil, next); err != nil {
					return // revoked: the chain ends
				}
				select {
				case rotated <- struct{}{}:
				default:
				}
			}
		}()
		<-rotated // the loop is under way
		must(t, "RevokeTokensOf", s.RevokeTokensOf(ctx, "user-1", "test_client"))
		// Rotations may go on for a moment (one that read its token
		// before the revocation): none of their tokens may be found.
		time.Sleep(20 * time.Millisecond)
		stop.Store(true)
		<-done
		mu.Lock()
		for _, h := range created {
			if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("round %d: Token(%s) after RevokeTokensOf: %v; want ErrNotFound (%d rotations)", round, h, err, len(created)-1)
			}
		}
		mu.Unlock()
	}
}
