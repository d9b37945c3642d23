package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var storeTests = []test{
	{"Ping", testPing},
	{"CancelledContext", testCancelled},
}

func testPing(t *testing.T, s oauthd.Storage) {
	must(t, "Ping", s.Ping(t.Context()))
}

// testCancelled checks that every method gives up on a cancelled context
// with an error that says so, and that a write it refused had no effect.
func testCancelled(t *testing.T, s oauthd.Storage) {
	bg := t.Context()
	must(t, "CreateClient", s.CreateClient(bg, fullClient("c1")))
	must(t, "CreateUser", s.CreateUser(bg, fullUser("u1", "ada")))
	must(t, "CreateAuthRequest", s.CreateAuthRequest(bg, fullAuthRequest("r1")))
	must(t, "CreateAuthCode", s.CreateAuthCode(bg, fullCode("code-1")))
	must(t, "CreateTokens", s.CreateTokens(bg, fullToken("rt-1", oauthd.RefreshToken, "g1")))
	must(t, "CreateSession", s.CreateSession(bg, fullSession("s1")))
	must(t, "SaveConsent", s.SaveConsent(bg, fullConsent("u1", "c1")))
	must(t, "CreateSigningKey", s.CreateSigningKey(bg, fullKey("k1", at(0))))
	expired := fullToken("at-expired", oauthd.AccessToken, "g2")
	expired.ExpiresAt = at(-time.Hour)
	must(t, "CreateTokens", s.CreateTokens(bg, expired))

	ctx, cancel := context.WithCancel(bg)
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Client", func() error { _, err := s.Client(ctx, "c1"); return err }},
		{"CreateClient", func() error { return s.CreateClient(ctx, fullClient("c2")) }},
		{"UpdateClient", func() error { return s.UpdateClient(ctx, fullClient("c1")) }},
		{"DeleteClient", func() error { return s.DeleteClient(ctx, "c1") }},
		{"Clients", func() error { _, err := s.Clients(ctx); return err }},
		{"User", func() error { _, err := s.User(ctx, "u1"); return err }},
		{"UserByUsername", func() error { _, err := s.UserByUsername(ctx, "ada"); return err }},
		{"CreateUser", func() error { return s.CreateUser(ctx, fullUser("u2", "bob")) }},
		{"UpdateUser", func() error { return s.UpdateUser(ctx, fullUser("u1", "ada")) }},
		{"DeleteUser", func() error { return s.DeleteUser(ctx, "u1") }},
		{"Users", func() error { _, err := s.Users(ctx); return err }},
		{"CreateAuthRequest", func() error { return s.CreateAuthRequest(ctx, fullAuthRequest("r2")) }},
		{"AuthRequest", func() error { _, err := s.AuthRequest(ctx, "r1"); return err }},
		{"DeleteAuthRequest", func() error { return s.DeleteAuthRequest(ctx, "r1") }},
		{"CreateAuthCode", func() error { return s.CreateAuthCode(ctx, fullCode("code-2")) }},
		{"ConsumeAuthCode", func() error { _, err := s.ConsumeAuthCode(ctx, "code-1", at(0)); return err }},
		{"CreateTokens", func() error { return s.CreateTokens(ctx, fullToken("at-2", oauthd.AccessToken, "g1")) }},
		{"Token", func() error { _, err := s.Token(ctx, "rt-1"); return err }},
		{"RotateRefreshToken", func() error {
			_, err := s.RotateRefreshToken(ctx, "rt-1", at(0), nil, fullToken("rt-2", oauthd.RefreshToken, "g1"))
			return err
		}},
		{"RevokeToken", func() error { return s.RevokeToken(ctx, "rt-1") }},
		{"RevokeGrant", func() error { return s.RevokeGrant(ctx, "g1", at(time.Hour)) }},
		{"RevokeTokensOf", func() error { return s.RevokeTokensOf(ctx, "user-1", "test_client") }},
		{"CreateSession", func() error { return s.CreateSession(ctx, fullSession("s2")) }},
		{"Session", func() error { _, err := s.Session(ctx, "s1"); return err }},
		{"DeleteSession", func() error { return s.DeleteSession(ctx, "s1") }},
		{"SaveConsent", func() error { return s.SaveConsent(ctx, fullConsent("u1", "c2")) }},
		{"Consent", func() error { _, err := s.Consent(ctx, "u1", "c1"); return err }},
		{"Consents", func() error { _, err := s.Consents(ctx, "u1"); return err }},
		{"DeleteConsent", func() error { return s.DeleteConsent(ctx, "u1", "c1") }},
		{"CreateSigningKey", func() error { return s.CreateSigningKey(ctx, fullKey("k2", at(0))) }},
		{"SigningKeys", func() error { _, err := s.SigningKeys(ctx); return err }},
		{"DeleteSigningKey", func() error { return s.DeleteSigningKey(ctx, "k1") }},
		{"DeleteExpired", func() error { _, err := s.DeleteExpired(ctx, at(0), 100); return err }},
		{"Ping", func() error { return s.Ping(ctx) }},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v; want context.Canceled", c.name, err)
		}
	}

	// Nothing the refused calls asked for happened.
	got, err := s.ConsumeAuthCode(bg, "code-1", at(time.Second))
	must(t, "ConsumeAuthCode after a cancelled one", err)
	if got.GrantID != "grant-code-1" {
		t.Errorf("ConsumeAuthCode.GrantID = %q; want %q", got.GrantID, "grant-code-1")
	}
	_, err = s.RotateRefreshToken(bg, "rt-1", at(time.Second), nil)
	must(t, "RotateRefreshToken after a cancelled one", err)
	tokenExists(t, s, "rt-2", false)
	tokenExists(t, s, "at-2", false)
	tokenExists(t, s, "at-expired", true)
	for what, err := range map[string]error{
		"Client(c1)":        errOf(s.Client(bg, "c1")),
		"User(u1)":          errOf(s.User(bg, "u1")),
		"AuthRequest(r1)":   errOf(s.AuthRequest(bg, "r1")),
		"Session(s1)":       errOf(s.Session(bg, "s1")),
		"Consent(u1, c1)":   errOf(s.Consent(bg, "u1", "c1")),
		"Client(c2)":        notFound(s.Client(bg, "c2")),
		"User(u2)":          notFound(s.User(bg, "u2")),
		"AuthRequest(r2)":   notFound(s.AuthRequest(bg, "r2")),
		"Session(s2)":       notFound(s.Session(bg, "s2")),
		"Consent(u1, c2)":   notFound(s.Consent(bg, "u1", "c2")),
		"ConsumeAuthCode 2": notFound(s.ConsumeAuthCode(bg, "code-2", at(0))),
	} {
		if err != nil {
			t.Errorf("%s after cancelled calls: %v", what, err)
		}
	}
	keys, err := s.SigningKeys(bg)
	must(t, "SigningKeys", err)
	if len(keys) != 1 || keys[0].ID != "k1" {
		t.Errorf("SigningKeys after cancelled calls = %d keys; want only k1", len(keys))
	}
	must(t, "Ping", s.Ping(bg))
}

// errOf returns the error of a lookup that should succeed.
func errOf[T any](_ T, err error) error { return err }

// notFound returns nil if a lookup found nothing, and an error otherwise.
func notFound[T any](_ T, err error) error {
	switch {
	case errors.Is(err, oauthd.ErrNotFound):
		return nil
	case err == nil:
		return errors.New("found; want ErrNotFound")
	}
	return err
}
