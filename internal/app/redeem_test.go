package app_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/sqlitestore"
)

// `oauthd serve` on SQLite redeems a code in one write through the store's
// writer (oauthd.CodeRedeemer, through the metrics wrapper), and a replay
// of the code still revokes what the redemption issued.
func TestServeRedeemsCodeInOneWrite(t *testing.T) {
	m := start(t)
	iss := "http://" + m.Addr()
	if _, ok := m.Provider.Store().(oauthd.CodeRedeemer); !ok {
		t.Fatalf("the Provider's store %T is not an oauthd.CodeRedeemer", m.Provider.Store())
	}
	s, ok := m.Store.(*sqlitestore.Store)
	if !ok {
		t.Fatalf("the store is %T; want *sqlitestore.Store", m.Store)
	}
	ctx := context.Background()
	code := demoCode(t, s)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.DemoRedirectURI}}

	before := s.WriteStats()
	st, tok := tokenize(t, iss, form)
	after := s.WriteStats()
	if st != 200 || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("tokenize: %d %v", st, tok)
	}
	if w := after.Writes - before.Writes; w != 1 {
		t.Errorf("the redemption made %d writes; want 1", w)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if _, err := s.Token(ctx, oauthd.HashToken(tok[k].(string))); err != nil {
			t.Errorf("the %s issued is not stored: %v", k, err)
		}
	}

	st, again := tokenize(t, iss, form)
	if st != 400 || again["error"] != "invalid_grant" {
		t.Errorf("replayed code: %d %v; want 400 invalid_grant", st, again)
	}
	if _, err := s.Token(ctx, oauthd.HashToken(tok["access_token"].(string))); err == nil {
		t.Error("the access token of a replayed code is still stored")
	}
}

// `oauthd serve` on SQLite rotates a refresh token in one write
// (oauthd.RefreshRotator, through the metrics wrapper), and a reuse of the
// rotated token still revokes its grant (RFC 9700 §4.14.2).
func TestServeRotatesRefreshTokenInOneWrite(t *testing.T) {
	m := start(t)
	iss := "http://" + m.Addr()
	if _, ok := m.Provider.Store().(oauthd.RefreshRotator); !ok {
		t.Fatalf("the Provider's store %T is not an oauthd.RefreshRotator", m.Provider.Store())
	}
	s := m.Store.(*sqlitestore.Store)
	ctx := context.Background()
	code := demoCode(t, s)
	st, first := tokenize(t, iss, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.DemoRedirectURI}})
	if st != 200 {
		t.Fatalf("code exchange: %d %v", st, first)
	}
	old := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first["refresh_token"].(string)}}

	before := s.WriteStats()
	st, next := tokenize(t, iss, old)
	after := s.WriteStats()
	if st != 200 || next["access_token"] == nil || next["refresh_token"] == nil {
		t.Fatalf("refresh: %d %v", st, next)
	}
	if w := after.Writes - before.Writes; w != 1 {
		t.Errorf("the refresh made %d writes; want 1", w)
	}
	for _, k := range []string{"access_token", "refresh_token"} {
		if _, err := s.Token(ctx, oauthd.HashToken(next[k].(string))); err != nil {
			t.Errorf("the %s issued is not stored: %v", k, err)
		}
	}

	st, again := tokenize(t, iss, old)
	if st != 400 || again["error"] != "invalid_grant" {
		t.Errorf("reused refresh token: %d %v; want 400 invalid_grant", st, again)
	}
	if _, err := s.Token(ctx, oauthd.HashToken(next["refresh_token"].(string))); err == nil {
		t.Error("the successor of a reused refresh token is still stored")
	}
}

// demoCode stores a code of the demo client for the demo user, as the
// authorization endpoint would, and returns it.
func demoCode(t *testing.T, s *sqlitestore.Store) string {
	t.Helper()
	now := time.Now()
	code := oauthd.NewCredential()
	admin, err := s.UserByUsername(context.Background(), "admin")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAuthCode(context.Background(), &oauthd.AuthCode{Hash: oauthd.HashToken(code), GrantID: oauthd.NewGrantID(),
		ClientID: app.DemoClientID, Subject: admin.ID, RedirectURI: app.DemoRedirectURI, Scopes: []string{"email"},
		AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	return code
}
