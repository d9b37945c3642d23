package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var expiryTests = []test{
	{"RemovesOnlyExpired", testExpiredRemoved},
	{"BoundedBatches", testExpiredBatches},
	{"BoundPerKind", testExpiredPerKind},
	{"LimitBelowOne", testExpiredNoLimit},
}

// seedKind stores one record of each kind that expires at expires, named
// after name.
func seedKinds(t *testing.T, s oauthd.Storage, name string, expires time.Time) {
	t.Helper()
	ctx := t.Context()
	r := fullAuthRequest("req-" + name)
	r.ExpiresAt = expires
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r))
	c := fullCode("code-" + name)
	c.ExpiresAt = expires
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, c))
	k := fullToken("tok-"+name, oauthd.AccessToken, "grant-"+name)
	k.ExpiresAt = expires
	must(t, "CreateTokens", s.CreateTokens(ctx, k))
	se := fullSession("sess-" + name)
	se.ExpiresAt = expires
	must(t, "CreateSession", s.CreateSession(ctx, se))
	must(t, "RevokeGrant", s.RevokeGrant(ctx, "revoked-"+name, expires))
	// A signing key stays SigningKeyRetention past its ExpiresAt.
	key := fullKey("key-"+name, at(-90*24*time.Hour))
	key.ExpiresAt = expires
	if !expires.IsZero() {
		key.ExpiresAt = expires.Add(-oauthd.SigningKeyRetention)
	}
	must(t, "CreateSigningKey", s.CreateSigningKey(ctx, key))
}

// kindsExist checks which records seedKinds stored under name are still
// there. It consumes the code.
func kindsExist(t *testing.T, s oauthd.Storage, name string, want bool) {
	t.Helper()
	ctx := t.Context()
	check := func(kind string, err error) {
		t.Helper()
		switch {
		case want && err != nil:
			t.Errorf("%s %q: %v; want it kept", kind, name, err)
		case !want && !errors.Is(err, oauthd.ErrNotFound):
			t.Errorf("%s %q: err = %v; want it removed (ErrNotFound)", kind, name, err)
		}
	}
	_, err := s.AuthRequest(ctx, "req-"+name)
	check("auth request", err)
	_, err = s.ConsumeAuthCode(ctx, "code-"+name, at(0))
	if errors.Is(err, oauthd.ErrAlreadyUsed) {
		err = nil
	}
	check("auth code", err)
	_, err = s.Token(ctx, "tok-"+name)
	check("token", err)
	_, err = s.Session(ctx, "sess-"+name)
	check("session", err)

	// A kept revocation hides the grant's new tokens.
	probe := fullToken("probe-"+name, oauthd.AccessToken, "revoked-"+name)
	must(t, "CreateTokens(probe)", s.CreateTokens(ctx, probe))
	_, err = s.Token(ctx, probe.Hash)
	switch {
	case want && !errors.Is(err, oauthd.ErrNotFound):
		t.Errorf("grant revocation %q: Token of the grant: err = %v; want ErrNotFound (revocation kept)", name, err)
	case !want && err != nil:
		t.Errorf("grant revocation %q: Token of the grant: %v; want the token (revocation forgotten)", name, err)
	}
	must(t, "RevokeToken(probe)", ignoreNotFound(s.RevokeToken(ctx, probe.Hash)))

	keys, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	found := false
	for _, k := range keys {
		found = found || k.ID == "key-"+name
	}
	if found != want {
		t.Errorf("signing key %q kept = %v; want %v", name, found, want)
	}
}

func ignoreNotFound(err error) error {
	if errors.Is(err, oauthd.ErrNotFound) {
		return nil
	}
	return err
}

func testExpiredRemoved(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	seedKinds(t, s, "expired", at(-time.Minute))
	seedKinds(t, s, "long-expired", at(-30*24*time.Hour))
	seedKinds(t, s, "live", at(time.Minute))
	seedKinds(t, s, "never", time.Time{})
	// Used codes and rotated tokens expire like any other.
	_, err := s.ConsumeAuthCode(ctx, "code-expired", at(-2*time.Minute))
	must(t, "ConsumeAuthCode", err)
	rt := fullToken("rt-expired", oauthd.RefreshToken, "g-rotated")
	rt.ExpiresAt = at(-time.Minute)
	must(t, "CreateTokens", s.CreateTokens(ctx, rt))
	_, err = s.RotateRefreshToken(ctx, rt.Hash, at(-2*time.Minute), []byte("s"))
	must(t, "RotateRefreshToken", err)

	n, err := s.DeleteExpired(ctx, at(0), 100)
	must(t, "DeleteExpired", err)
	if want := 2*6 + 1; n != want {
		t.Errorf("DeleteExpired = %d; want %d", n, want)
	}
	n, err = s.DeleteExpired(ctx, at(0), 100)
	must(t, "DeleteExpired(again)", err)
	if n != 0 {
		t.Errorf("DeleteExpired(again) = %d; want 0", n)
	}
	kindsExist(t, s, "expired", false)
	kindsExist(t, s, "long-expired", false)
	kindsExist(t, s, "live", true)
	kindsExist(t, s, "never", true)
	tokenExists(t, s, "rt-expired", false)

	// A signing key expired less than SigningKeyRetention ago is kept: a
	// server whose ID tokens now live longer still publishes it.
	recent := fullKey("key-recent", at(-90*24*time.Hour))
	recent.ExpiresAt = at(-time.Hour)
	must(t, "CreateSigningKey", s.CreateSigningKey(ctx, recent))
	_, err = s.DeleteExpired(ctx, at(0), 100)
	must(t, "DeleteExpired(recent key)", err)
	keys, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	found := false
	for _, k := range keys {
		found = found || k.ID == "key-recent"
	}
	if !found {
		t.Error("DeleteExpired removed a signing key that expired an hour ago; want it kept for SigningKeyRetention")
	}
}

func testExpiredBatches(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	for i := range 25 {
		k := fullToken(fmt.Sprintf("expired-%02d", i), oauthd.AccessToken, "g1")
		k.ExpiresAt = at(-time.Duration(i+1) * time.Minute)
		must(t, "CreateTokens", s.CreateTokens(ctx, k))
	}
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("live", oauthd.AccessToken, "g1")))
	for i, want := range []int{10, 10, 5, 0} {
		n, err := s.DeleteExpired(ctx, at(0), 10)
		must(t, "DeleteExpired", err)
		if n != want {
			t.Errorf("DeleteExpired call %d = %d; want %d", i+1, n, want)
		}
	}
	for i := range 25 {
		tokenExists(t, s, fmt.Sprintf("expired-%02d", i), false)
	}
	tokenExists(t, s, "live", true)
}

func testExpiredPerKind(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	for i := range 3 {
		seedKinds(t, s, fmt.Sprint("expired-", i), at(-time.Duration(i+1)*time.Minute))
	}
	seedKinds(t, s, "live", at(time.Minute))
	// A store may forget an expired grant revocation record later than
	// the other records (once the grant's tokens are gone, see
	// RevokeGrant): the calls remove at most 2 of each kind, until one
	// removes nothing, and all 18 in the end.
	total := 0
	for i := 0; ; i++ {
		n, err := s.DeleteExpired(ctx, at(0), 2)
		must(t, "DeleteExpired", err)
		if n > 2*6 {
			t.Errorf("DeleteExpired call %d with limit 2 = %d; want at most %d (2 of each of 6 kinds)", i+1, n, 2*6)
		}
		if n == 0 {
			break
		}
		total += n
		if i == 10 {
			t.Fatalf("DeleteExpired with limit 2 keeps finding records after %d calls", i+1)
		}
	}
	if total != 3*6 {
		t.Errorf("DeleteExpired with limit 2 removed %d records in all; want %d (3 of each of 6 kinds)", total, 3*6)
	}
	for i := range 3 {
		kindsExist(t, s, fmt.Sprint("expired-", i), false)
	}
	kindsExist(t, s, "live", true)
}

func testExpiredNoLimit(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	seedKinds(t, s, "expired", at(-time.Minute))
	for _, limit := range []int{0, -1} {
		n, err := s.DeleteExpired(ctx, at(0), limit)
		must(t, "DeleteExpired", err)
		if n != 0 {
			t.Errorf("DeleteExpired(limit %d) = %d; want 0", limit, n)
		}
	}
	kindsExist(t, s, "expired", true)
}
