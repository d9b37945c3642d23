package app_test

import (
	"context"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/memstore"
)

// The README's "OpenID Connect in 5 minutes" against `oauthd serve
// --demo`: discovery, authorize with PKCE as oidc_client, token, ID token
// verification and userinfo with the demo claims.
func TestOIDCDemoWalkthrough(t *testing.T) {
	m := start(t)
	iss := m.Config.Issuer
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, iss)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: app.DemoOIDCClientID, ClientSecret: app.DemoOIDCClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: app.DemoOIDCRedirectURI, Scopes: []string{"openid", "profile", "email", "offline_access"}}
	// PKCE is required for oidc_client.
	if loc, err := newPerson(t).walk(conf.AuthCodeURL("s"), app.DemoOIDCRedirectURI, "admin", "admin", "approve"); err != nil ||
		mustParse(loc).Query().Get("error") != "invalid_request" {
		t.Errorf("authorize without PKCE: %s %v; want invalid_request", loc, err)
	}
	verifier := oauth2.GenerateVerifier()
	loc, err := newPerson(t).walk(conf.AuthCodeURL("s", oidc.Nonce("n1"), oauth2.S256ChallengeOption(verifier)), app.DemoOIDCRedirectURI, "admin", "admin", "approve")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := conf.Exchange(ctx, mustParse(loc).Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("token: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: app.DemoOIDCClientID}).Verify(ctx, raw)
	if err != nil || idt.Nonce != "n1" {
		t.Fatalf("ID token: %v", err)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var c struct {
		Name string `json:"name"`
	}
	info.Claims(&c)
	if info.Subject != idt.Subject || info.Email != "admin@example.com" || !info.EmailVerified || c.Name != "Admin User" {
		t.Errorf("userinfo sub %q email %q verified %v name %q", info.Subject, info.Email, info.EmailVerified, c.Name)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token for offline_access")
	}
}

// SeedDemo is idempotent, and gives claims to an admin made without them,
// never overwriting claims someone set.
func TestSeedDemoOIDC(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	if err := s.CreateUser(ctx, &oauthd.User{ID: "u1", Username: "admin"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := app.SeedDemo(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	c, err := s.Client(ctx, app.DemoOIDCClientID)
	if err != nil || !c.RequirePKCE || c.TokenEndpointAuthMethod != oauthd.AuthMethodBasic || len(c.RedirectURIs) != 1 ||
		c.RedirectURIs[0] != "http://localhost:9000/callback" || oauthd.JoinScope(c.Scopes) != "openid profile email offline_access" ||
		len(c.GrantTypes) != 2 {
		t.Errorf("oidc_client = %+v, %v", c, err)
	}
	u, _ := s.UserByUsername(ctx, "admin")
	if u.Claims["name"] != "Admin User" || u.Claims["email"] != "admin@example.com" || u.Claims["email_verified"] != true {
		t.Errorf("admin claims = %v", u.Claims)
	}
	u.Claims = map[string]any{"name": "Someone Else"}
	s.UpdateUser(ctx, u)
	app.SeedDemo(ctx, s)
	if u, _ := s.UserByUsername(ctx, "admin"); u.Claims["name"] != "Someone Else" || u.Claims["email"] != nil {
		t.Errorf("SeedDemo changed claims someone set: %v", u.Claims)
	}
}

// DemoImpostors names the records of the demo's names that SeedDemo left
// alone and whose credentials are not the walkthrough's, so that serve
// --demo can warn that its banner's credentials fail for them.
func TestDemoImpostors(t *testing.T) {
	ctx := context.Background()
	s := memstore.New()
	if err := app.SeedDemo(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := app.DemoImpostors(ctx, s); len(got) != 0 {
		t.Errorf("after SeedDemo: %v; want none", got)
	}
	other := memstore.New()
	h, err := oauthd.HashSecret("someone-elses-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := other.CreateUser(ctx, &oauthd.User{ID: "u1", Username: app.DemoUsername, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
	if err := other.CreateClient(ctx, &oauthd.Client{ID: app.DemoClientID, SecretHash: h}); err != nil {
		t.Fatal(err)
	}
	if err := app.SeedDemo(ctx, other); err != nil {
		t.Fatal(err)
	}
	if got := app.DemoImpostors(ctx, other); len(got) != 2 || got[0] != "client test_client" || got[1] != "user admin" {
		t.Errorf("impostors %v; want client test_client and user admin", got)
	}
}
