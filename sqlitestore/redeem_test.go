package sqlitestore

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// redeemCode is a code of the test client, issued now.
func redeemCode(hash string) *oauthd.AuthCode {
	now := time.Now()
	return &oauthd.AuthCode{Hash: hash, GrantID: "grant-" + hash, ClientID: "c", Subject: "u", RedirectURI: "https://c.example/cb",
		Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
}

// redeemTokens are an access and a refresh token of the code's grant.
func redeemTokens(c *oauthd.AuthCode) []*oauthd.Token {
	now := time.Now()
	return []*oauthd.Token{
		{Hash: c.Hash + "-at", Kind: oauthd.AccessToken, GrantID: c.GrantID, ClientID: c.ClientID, Subject: c.Subject,
			Scopes: c.Scopes, IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		{Hash: c.Hash + "-rt", Kind: oauthd.RefreshToken, GrantID: c.GrantID, ClientID: c.ClientID, Subject: c.Subject,
			Scopes: c.Scopes, IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
	}
}

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "oauthd.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRedeemIsOneWrite checks what RedeemAuthCode is for: a redemption is
// one write, in one transaction, where ConsumeAuthCode then CreateTokens
// are two.
func TestRedeemIsOneWrite(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	for _, h := range []string{"one", "two"} {
		if err := s.CreateAuthCode(ctx, redeemCode(h)); err != nil {
			t.Fatal(err)
		}
	}

	before := s.WriteStats()
	if _, err := s.RedeemAuthCode(ctx, "one", time.Now(), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		return redeemTokens(c), nil
	}); err != nil {
		t.Fatal(err)
	}
	after := s.WriteStats()
	if w, x := after.Writes-before.Writes, after.Transactions-before.Transactions; w != 1 || x != 1 {
		t.Errorf("RedeemAuthCode made %d writes in %d transactions; want 1 in 1", w, x)
	}

	before = after
	c, err := s.ConsumeAuthCode(ctx, "two", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTokens(ctx, redeemTokens(c)...); err != nil {
		t.Fatal(err)
	}
	after = s.WriteStats()
	if w := after.Writes - before.Writes; w != 2 {
		t.Errorf("ConsumeAuthCode and CreateTokens made %d writes; want 2", w)
	}
	for _, h := range []string{"one-at", "one-rt", "two-at", "two-rt"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("Token(%s): %v", h, err)
		}
	}
}

// TestRedeemInGroupCommit runs redemptions that end differently in one
// group commit, each in its savepoint: a refused one keeps its code used,
// one whose tokens cannot be stored is rolled back alone, one whose issue
// panics is rolled back and its panic raised in its caller, and the
// writer goes on.
func TestRedeemInGroupCommit(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	for _, h := range []string{"ok", "refused", "taken", "panics"} {
		if err := s.CreateAuthCode(ctx, redeemCode(h)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTokens(ctx, &oauthd.Token{Hash: "taken-rt", Kind: oauthd.RefreshToken, GrantID: "other",
		IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}

	// A first write holds the writer until released.
	release := holdWriter(t, s)
	before := s.WriteStats()

	refusal := errors.New("refused")
	type result struct {
		code     *oauthd.AuthCode
		err      error
		panicked any
	}
	issues := map[string]func(*oauthd.AuthCode) ([]*oauthd.Token, error){
		"ok":      func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { return redeemTokens(c), nil },
		"refused": func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { return redeemTokens(c), refusal },
		"taken":   func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { return redeemTokens(c), nil },
		"unknown": func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { panic("issue called for an unknown code") },
		"panics":  func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { panic("boom") },
	}
	results := make(map[string]chan result, len(issues))
	for h, issue := range issues {
		ch := make(chan result, 1)
		results[h] = ch
		go func() {
			var r result
			defer func() {
				r.panicked = recover()
				ch <- r
			}()
			r.code, r.err = s.RedeemAuthCode(ctx, h, time.Now(), issue)
		}()
	}
	for len(s.w.ops) < len(issues) { // wait until every redemption is queued
		runtime.Gosched()
	}
	release()
	got := make(map[string]result, len(issues))
	for h, ch := range results {
		got[h] = <-ch
	}
	after := s.WriteStats()
	if x := after.Transactions - before.Transactions; x != 1 {
		t.Errorf("the queued redemptions took %d transactions; want 1", x)
	}

	if r := got["ok"]; r.err != nil || r.code == nil || r.code.UsedAt.IsZero() {
		t.Errorf("ok: %+v", r)
	}
	if r := got["refused"]; r.err != refusal || r.code == nil || !r.code.UsedAt.IsZero() {
		t.Errorf("refused: %+v; want the code, unused, and issue's error", r)
	}
	if r := got["taken"]; !errors.Is(r.err, oauthd.ErrAlreadyExists) {
		t.Errorf("taken: %+v; want ErrAlreadyExists", r)
	}
	if r := got["unknown"]; !errors.Is(r.err, oauthd.ErrNotFound) || r.panicked != nil {
		t.Errorf("unknown: %+v; want ErrNotFound", r)
	}
	if r := got["panics"]; r.panicked == nil || !strings.Contains(fmt.Sprint(r.panicked), "boom") {
		t.Errorf("panics: %+v; want issue's panic raised in the caller", r)
	}

	for h, want := range map[string]bool{"ok-at": true, "ok-rt": true, "refused-at": false, "taken-at": false, "panics-at": false} {
		if _, err := s.Token(ctx, h); want != (err == nil) {
			t.Errorf("Token(%s): err = %v; want found %v", h, err, want)
		}
	}
	for h, used := range map[string]bool{"ok": true, "refused": false, "taken": false, "panics": false} {
		_, err := s.ConsumeAuthCode(ctx, h, time.Now())
		if used != errors.Is(err, oauthd.ErrAlreadyUsed) || (!used && err != nil) {
			t.Errorf("ConsumeAuthCode(%s) after the batch: err = %v; want used %v", h, err, used)
		}
	}
}

// TestRotateWithStaleToken: a rotation must not trust the read cache's
// copy of the token, which may be out of date (the token was rotated
// meanwhile, by this process or another): the second rotation is reuse,
// the rotated token comes back as stored, and nothing of the second call
// is stored.
func TestRotateWithStaleToken(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	old := &oauthd.Token{Hash: "r0", Kind: oauthd.RefreshToken, GrantID: "g", ClientID: "c", Subject: "u",
		Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateTokens(ctx, old); err != nil {
		t.Fatal(err)
	}
	stale, err := s.Token(ctx, "r0")
	if err != nil {
		t.Fatal(err)
	}
	next := func(h string) *oauthd.Token {
		return &oauthd.Token{Hash: h, Kind: oauthd.RefreshToken, GrantID: "g", ClientID: "c", Subject: "u",
			Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	first, err := s.RotateRefreshToken(ctx, "r0", now, []byte("first"), next("r1"))
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Successor) != "first" || first.RotatedAt.UnixMilli() != now.UnixMilli() || first.GrantID != "g" {
		t.Fatalf("RotateRefreshToken = %+v; want the token rotated at now with its successor", first)
	}

	// The token as it was before the rotation, back in the cache.
	s.cache.putToken(s.cache.generation(), stale)
	again, err := s.RotateRefreshToken(ctx, "r0", now.Add(time.Second), []byte("second"), next("r2"))
	if !errors.Is(err, oauthd.ErrAlreadyUsed) {
		t.Fatalf("second RotateRefreshToken with a stale cached token: err = %v; want ErrAlreadyUsed", err)
	}
	if again == nil || string(again.Successor) != "first" || again.RotatedAt.UnixMilli() != now.UnixMilli() {
		t.Errorf("second RotateRefreshToken = %+v; want the token as the first rotation stored it", again)
	}
	if _, err := s.Token(ctx, "r2"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token(r2) = %v; want ErrNotFound: the second rotation's token was stored", err)
	}
	stored, err := s.Token(ctx, "r0")
	if err != nil {
		t.Fatal(err)
	}
	if string(stored.Successor) != "first" {
		t.Errorf("stored successor = %q; want the first rotation's", stored.Successor)
	}
}

// TestRotateFuncInGroupCommit queues rotations with every outcome in one
// group commit: one that rotates, one that rotate refuses (which writes
// nothing and must not send the batch to the savepoint rerun), one whose
// tokens cannot be stored, one of a rotated token, one of an unknown hash
// and one whose rotate panics (raised in its caller). Each ends as if it
// had run alone, and the writer goes on.
func TestRotateFuncInGroupCommit(t *testing.T) {
	ctx := t.Context()
	now := time.Now()
	refreshToken := func(h string) *oauthd.Token {
		return &oauthd.Token{Hash: h, Kind: oauthd.RefreshToken, GrantID: "grant-" + h, ClientID: "c", Subject: "u",
			Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	next := func(old *oauthd.Token) []*oauthd.Token {
		return []*oauthd.Token{refreshToken(old.Hash + "-next")}
	}
	refusal := errors.New("refused")
	type result struct {
		hash     string
		old      *oauthd.Token
		err      error
		panicked any
	}
	run := func(t *testing.T, rotates map[string]func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*Store, map[string]result, int64) {
		s := openTemp(t)
		for _, h := range []string{"ok", "refused", "taken", "rotated", "panics"} {
			if err := s.CreateTokens(ctx, refreshToken(h)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.CreateTokens(ctx, refreshToken("taken-next")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RotateRefreshToken(ctx, "rotated", now, []byte("before")); err != nil {
			t.Fatal(err)
		}
		reruns := s.w.reruns.Load()
		results := make([]result, 0, len(rotates))
		var calls []func()
		for h, rotate := range rotates {
			results = append(results, result{hash: h})
			r := &results[len(results)-1]
			calls = append(calls, func() {
				defer func() { r.panicked = recover() }()
				r.old, r.err = s.RotateRefreshTokenFunc(ctx, h, now, rotate)
			})
		}
		queueWhileHeld(t, s, calls...)
		got := make(map[string]result, len(results))
		for _, r := range results {
			got[r.hash] = r
		}
		return s, got, s.w.reruns.Load() - reruns
	}
	notCalled := func(h string) func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return func(*oauthd.Token) ([]byte, []*oauthd.Token, error) { panic("rotate called for " + h) }
	}

	t.Run("clean outcomes stay optimistic", func(t *testing.T) {
		s, got, reruns := run(t, map[string]func(*oauthd.Token) ([]byte, []*oauthd.Token, error){
			"ok":      func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) { return []byte("sealed"), next(old), nil },
			"refused": func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) { return nil, next(old), refusal },
			"rotated": notCalled("rotated"),
			"unknown": notCalled("unknown"),
		})
		if reruns != 0 {
			t.Errorf("%d savepoint reruns; want none: a refused rotation writes nothing", reruns)
		}
		if r := got["ok"]; r.err != nil || r.old == nil || string(r.old.Successor) != "sealed" {
			t.Errorf("ok: %+v", r)
		}
		if r := got["refused"]; r.err != refusal || r.old == nil || !r.old.RotatedAt.IsZero() {
			t.Errorf("refused: %+v; want the unrotated token and rotate's error", r)
		}
		if r := got["rotated"]; !errors.Is(r.err, oauthd.ErrAlreadyUsed) || r.old == nil || string(r.old.Successor) != "before" {
			t.Errorf("rotated: %+v; want the token with ErrAlreadyUsed", r)
		}
		if r := got["unknown"]; !errors.Is(r.err, oauthd.ErrNotFound) || r.panicked != nil {
			t.Errorf("unknown: %+v; want ErrNotFound", r)
		}
		checkRotated(t, s, map[string]bool{"ok": true, "refused": false})
		checkFound(t, s, map[string]bool{"ok-next": true, "refused-next": false})
	})
	t.Run("failures are rolled back alone", func(t *testing.T) {
		s, got, reruns := run(t, map[string]func(*oauthd.Token) ([]byte, []*oauthd.Token, error){
			"ok":     func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) { return nil, next(old), nil },
			"taken":  func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) { return nil, next(old), nil },
			"panics": func(*oauthd.Token) ([]byte, []*oauthd.Token, error) { panic("boom") },
		})
		if reruns != 1 {
			t.Errorf("%d savepoint reruns; want 1", reruns)
		}
		if r := got["ok"]; r.err != nil {
			t.Errorf("ok: %+v", r)
		}
		if r := got["taken"]; !errors.Is(r.err, oauthd.ErrAlreadyExists) {
			t.Errorf("taken: %+v; want ErrAlreadyExists", r)
		}
		if r := got["panics"]; r.panicked == nil || !strings.Contains(fmt.Sprint(r.panicked), "boom") {
			t.Errorf("panics: %+v; want rotate's panic raised in the caller", r)
		}
		checkRotated(t, s, map[string]bool{"ok": true, "taken": false, "panics": false})
		checkFound(t, s, map[string]bool{"ok-next": true, "panics-next": false})
	})
}

func checkRotated(t *testing.T, s *Store, want map[string]bool) {
	t.Helper()
	for h, rotated := range want {
		tok, err := s.Token(t.Context(), h)
		if err != nil {
			t.Fatal(err)
		}
		if rotated == tok.RotatedAt.IsZero() {
			t.Errorf("Token(%s).RotatedAt = %v; want rotated %v", h, tok.RotatedAt, rotated)
		}
	}
}

func checkFound(t *testing.T, s *Store, want map[string]bool) {
	t.Helper()
	for h, found := range want {
		if _, err := s.Token(t.Context(), h); found != (err == nil) {
			t.Errorf("Token(%s): err = %v; want found %v", h, err, found)
		}
	}
}

// A redemption queued after RevokeTokensOf in the same batch: the batch
// consumes its codes at its start (before the revocation's delete of
// unused codes, which then spared the code) and inserts its tokens at its
// end, above the revocation's marker, where they were found. Neither
// order of the two writes allows that: the redemption first, its tokens
// are hidden; the revocation first, the code is gone.
func TestRedemptionAfterRevokeTokensOfInOneBatch(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	for _, h := range []string{"pair-code", "other-code"} {
		c := redeemCode(h)
		if h == "other-code" {
			c.Subject = "u2"
		}
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	var errRevoke, errPair, errOther error
	issue := func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { return redeemTokens(c), nil }
	queueInOrderWhileHeld(t, s,
		func() { errRevoke = s.RevokeTokensOf(ctx, "u", "c") },
		func() { _, errPair = s.RedeemAuthCode(ctx, "pair-code", time.Now(), issue) },
		func() { _, errOther = s.RedeemAuthCode(ctx, "other-code", time.Now(), issue) },
	)
	if errRevoke != nil || errOther != nil {
		t.Fatalf("revoke: %v, other: %v", errRevoke, errOther)
	}
	if errPair == nil {
		for _, h := range []string{"pair-code-at", "pair-code-rt"} {
			if _, err := s.Token(ctx, h); !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("Token(%s) after RevokeTokensOf(u, c): %v; want ErrNotFound", h, err)
			}
		}
	}
}
