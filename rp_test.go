package oauthd_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/pkg/client/rp"
	zhttp "github.com/zitadel/oidc/v3/pkg/http"
	zoidc "github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/htmlform"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/ui"
)

// rpEnv is a real server on a random port with the real pages, the real
// clock and the OpenID Connect demo client, for relying-party libraries.
type rpEnv struct {
	issuer string
	srv    *httptest.Server
	store  *memstore.Store
	user   *oauthd.User
}

func newRPEnv(t *testing.T) *rpEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	pages, err := ui.New(ui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := memstore.New()
	p, err := oauthd.New(oauthd.Config{Issuer: issuer, Pages: pages, UILocales: ui.Locales()}, store)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p
	srv.Start()
	t.Cleanup(srv.Close)
	ctx := t.Context()
	err = store.CreateClient(ctx, &oauthd.Client{ID: oidcClientID, SecretHash: hash(t, oidcClientSecret),
		RedirectURIs: []string{oidcRedirectURI}, TokenEndpointAuthMethod: oauthd.AuthMethodBasic, RequirePKCE: true,
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken},
		Scopes:     []string{"openid", "profile", "email", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	u := &oauthd.User{ID: "3f2c7e1a-0000-4000-8000-000000000001", Username: "admin", PasswordHash: hash(t, "admin"),
		Claims: map[string]any{"name": "Admin User", "email": "admin@example.com", "email_verified": true}}
	if err := store.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	return &rpEnv{issuer: issuer, srv: srv, store: store, user: u}
}

// signIn plays the person's browser from the authorization URL to the
// redirect to the client: it fills the login form and approves the
// consent form of the real HTML pages, and returns the callback URL.
func (e *rpEnv) signIn(t *testing.T, authURL string) *url.URL {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", authURL, nil)
	for range 10 {
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if loc := res.Header.Get("Location"); loc != "" {
			res.Body.Close()
			u, err := res.Request.URL.Parse(loc)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(u.String(), oidcRedirectURI) {
				return u
			}
			req, _ = http.NewRequest("GET", u.String(), nil)
			continue
		}
		forms, err := htmlform.Parse(res.Body)
		res.Body.Close()
		if err != nil || len(forms) == 0 {
			t.Fatalf("%s: %d, no form", req.URL, res.StatusCode)
		}
		f := forms[0]
		var vals url.Values
		switch {
		case f.Input("password") != nil:
			vals = f.Values(nil, map[string]string{"username": "admin", "password": "admin"})
		case f.Button("approve") != nil:
			vals = f.Values(f.Button("approve"), nil)
		default:
			t.Fatalf("%s: unexpected form %+v", req.URL, f)
		}
		action, _ := res.Request.URL.Parse(f.Action)
		req, _ = http.NewRequest("POST", action.String(), strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	t.Fatal("too many steps before the redirect to the client")
	return nil
}

// github.com/coreos/go-oidc/v3: discovery, code flow with PKCE through
// golang.org/x/oauth2, ID token verification against the JWKS, userinfo.
func TestGoOIDCRelyingParty(t *testing.T) {
	e := newRPEnv(t)
	ctx := t.Context()
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	conf := oauth2.Config{ClientID: oidcClientID, ClientSecret: oidcClientSecret, Endpoint: provider.Endpoint(),
		RedirectURL: oidcRedirectURI, Scopes: []string{oidc.ScopeOpenID, "profile", "email", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("go-oidc-state", oidc.Nonce("go-oidc-nonce"), oauth2.S256ChallengeOption(verifier))
	cb := e.signIn(t, authURL)
	if cb.Query().Get("state") != "go-oidc-state" {
		t.Fatalf("callback %s", cb)
	}
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: oidcClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token verification: %v", err)
	}
	if idt.Nonce != "go-oidc-nonce" || idt.Subject != e.user.ID || idt.Issuer != e.issuer {
		t.Errorf("ID token nonce %q sub %q iss %q", idt.Nonce, idt.Subject, idt.Issuer)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var claims struct {
		Name string `json:"name"`
	}
	if err := info.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if info.Subject != e.user.ID || info.Email != "admin@example.com" || !info.EmailVerified || claims.Name != "Admin User" {
		t.Errorf("userinfo sub %q email %q verified %v name %q", info.Subject, info.Email, info.EmailVerified, claims.Name)
	}
	// A refreshed token set carries a new ID token that verifies too.
	next, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	raw2, _ := next.Extra("id_token").(string)
	idt2, err := provider.Verifier(&oidc.Config{ClientID: oidcClientID}).Verify(ctx, raw2)
	if err != nil || idt2.Subject != idt.Subject {
		t.Errorf("refreshed ID token: %v", err)
	}
}

// github.com/zitadel/oidc/v3's relying party: discovery, authorization
// URL and code exchange with PKCE (verifier kept in its cookie), ID token
// verification, userinfo and refresh.
func TestZitadelRelyingParty(t *testing.T) {
	e := newRPEnv(t)
	ctx := t.Context()
	key := []byte("0123456789abcdef0123456789abcdef")
	cookies := zhttp.NewCookieHandler(key, key, zhttp.WithUnsecure())
	party, err := rp.NewRelyingPartyOIDC(ctx, e.issuer, oidcClientID, oidcClientSecret, oidcRedirectURI,
		[]string{"openid", "profile", "email", "offline_access"}, rp.WithPKCE(cookies),
		rp.WithVerifierOpts(rp.WithIssuedAtOffset(5*time.Second)))
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	// The RP's login handler sets its state and PKCE cookies and redirects.
	rec := httptest.NewRecorder()
	rp.AuthURLHandler(func() string { return "zitadel-state" }, party)(rec, httptest.NewRequest("GET", "/login", nil))
	authURL := rec.Header().Get("Location")
	if !strings.HasPrefix(authURL, e.issuer+oauthd.AuthorizePath) || !strings.Contains(authURL, "code_challenge=") {
		t.Fatalf("RP authorization URL %q", authURL)
	}
	cb := e.signIn(t, authURL)
	// The callback, with the RP's cookies, exchanges the code.
	req := httptest.NewRequest("GET", cb.String(), nil)
	for _, c := range rec.Result().Cookies() {
		req.AddCookie(c)
	}
	var tokens *zoidc.Tokens[*zoidc.IDTokenClaims]
	var cbErr string
	onError := func(w http.ResponseWriter, r *http.Request, errorType, desc, state string) {
		cbErr = errorType + ": " + desc
	}
	party2, _ := rp.NewRelyingPartyOIDC(ctx, e.issuer, oidcClientID, oidcClientSecret, oidcRedirectURI,
		[]string{"openid", "profile", "email", "offline_access"}, rp.WithPKCE(cookies), rp.WithErrorHandler(onError),
		rp.WithVerifierOpts(rp.WithIssuedAtOffset(5*time.Second)))
	rec = httptest.NewRecorder()
	rp.CodeExchangeHandler(func(w http.ResponseWriter, r *http.Request, tk *zoidc.Tokens[*zoidc.IDTokenClaims], state string, _ rp.RelyingParty) {
		tokens = tk
	}, party2)(rec, req)
	if tokens == nil {
		t.Fatalf("code exchange failed: %s %d %s", cbErr, rec.Code, rec.Body)
	}
	if tokens.IDTokenClaims.Subject != e.user.ID || tokens.IDTokenClaims.Issuer != e.issuer || tokens.IDTokenClaims.AuthTime == 0 {
		t.Errorf("ID token claims %+v", tokens.IDTokenClaims)
	}
	info, err := rp.Userinfo[*zoidc.UserInfo](ctx, tokens.AccessToken, "Bearer", tokens.IDTokenClaims.Subject, party)
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Email != "admin@example.com" || !bool(info.EmailVerified) || info.Name != "Admin User" {
		t.Errorf("userinfo %+v", info)
	}
	refreshed, err := rp.RefreshTokens[*zoidc.IDTokenClaims](ctx, party, tokens.RefreshToken, "", "")
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if refreshed.AccessToken == "" || refreshed.IDTokenClaims == nil || refreshed.IDTokenClaims.Subject != e.user.ID ||
		refreshed.IDTokenClaims.AuthTime != tokens.IDTokenClaims.AuthTime {
		t.Errorf("refreshed tokens %+v", refreshed)
	}
	// Verified against the JWKS by a fresh verifier, as a second RP would.
	if _, err := rp.VerifyIDToken[*zoidc.IDTokenClaims](context.Background(), refreshed.IDToken, party.IDTokenVerifier()); err != nil {
		t.Errorf("refreshed ID token: %v", err)
	}
}
