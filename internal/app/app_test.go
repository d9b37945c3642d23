package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"

	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/htmlform"
)

// start runs the same code `oauthd serve --demo` runs, on a random port
// with a fresh SQLite file.
func start(t *testing.T) *app.Main {
	t.Helper()
	// The garbage collection's first run comes at a random time within
	// GCInterval; an hour keeps it out of the tests, which count the
	// store's writes (its own tests set their interval).
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "oauthd.db"), Demo: true, LogLevel: "warn", GCInterval: time.Hour}
	m, err := app.Open(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return m
}

type person struct {
	t *testing.T
	c *http.Client
}

func newPerson(t *testing.T) *person {
	jar, _ := cookiejar.New(nil)
	return &person{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// walk follows redirects and fills the login form (username, password)
// and clicks the consent button named choice until the browser is sent to
// the client's redirect URI, which it returns.
func (p *person) walk(start, redirect, username, password, choice string) (string, error) {
	u := start
	var body url.Values
	for range 10 {
		var res *http.Response
		var err error
		if body != nil {
			res, err = p.c.PostForm(u, body)
		} else {
			res, err = p.c.Get(u)
		}
		if err != nil {
			return "", err
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		body = nil
		if loc := res.Header.Get("Location"); res.StatusCode/100 == 3 && loc != "" {
			next, _ := url.Parse(u)
			abs := next.ResolveReference(mustParse(loc)).String()
			if strings.HasPrefix(abs, redirect) {
				return abs, nil
			}
			u = abs
			continue
		}
		if res.StatusCode != 200 {
			return "", &stop{res.StatusCode, string(b)}
		}
		forms, err := htmlform.Parse(strings.NewReader(string(b)))
		if err != nil || len(forms) == 0 {
			return "", &stop{res.StatusCode, "no form: " + string(b)}
		}
		f := forms[0]
		base, _ := url.Parse(u)
		action := base.ResolveReference(mustParse(f.Action)).String()
		if f.Input("password") != nil {
			if username == "" {
				return "", &stop{res.StatusCode, "login form again"}
			}
			body = f.Values(f.Button("sign in"), map[string]string{"username": username, "password": password})
			username = ""
		} else {
			btn := f.Button(choice)
			if btn == nil {
				return "", &stop{res.StatusCode, "no " + choice + " button"}
			}
			body = f.Values(btn, nil)
		}
		u = action
	}
	return "", &stop{0, "too many steps"}
}

type stop struct {
	status int
	what   string
}

func (s *stop) Error() string { return s.what }

func mustParse(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func tokenize(t *testing.T, issuer string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", issuer+"/oauth/tokenize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("test_client:password")))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// The seed walkthrough end to end over real HTTP against the real binary's
// code: authorize, log in as admin/admin, approve, exchange the code with
// Basic auth as the seed's curl does, refresh; and the deny path.
func TestSeedWalkthrough(t *testing.T) {
	m := start(t)
	iss := "http://" + m.Addr()
	authURL := app.DemoAuthorizeURL(iss)
	loc, err := newPerson(t).walk(authURL, app.DemoRedirectURI, "admin", "admin", "approve")
	if err != nil {
		t.Fatalf("approve walk: %v", err)
	}
	q := mustParse(loc).Query()
	if q.Get("code") == "" || q.Get("state") != "somestate" || q.Get("scope") != "email" {
		t.Fatalf("approve redirect %s; want code, state=somestate, scope=email", loc)
	}
	st, tok := tokenize(t, iss, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {app.DemoRedirectURI}})
	if st != 200 || tok["expires_in"] != 300.0 || tok["refresh_token_expires_in"] != 900.0 || tok["scope"] != "email" ||
		tok["token_type"] != "Bearer" || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("tokenize: %d %v", st, tok)
	}
	st, tok2 := tokenize(t, iss, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if st != 200 || tok2["access_token"] == tok["access_token"] || tok2["refresh_token"] == tok["refresh_token"] || tok2["expires_in"] != 300.0 {
		t.Fatalf("refresh: %d %v", st, tok2)
	}
	st, tok3 := tokenize(t, iss, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if st != 400 || tok3["error"] != "invalid_grant" {
		t.Errorf("old refresh token: %d %v; want 400 invalid_grant", st, tok3)
	}

	loc, err = newPerson(t).walk(authURL, app.DemoRedirectURI, "admin", "admin", "deny")
	if err != nil {
		t.Fatalf("deny walk: %v", err)
	}
	q = mustParse(loc).Query()
	if q.Get("error") != "access_denied" || q.Get("state") != "somestate" {
		t.Errorf("deny redirect %s; want error=access_denied&state=somestate", loc)
	}

	_, err = newPerson(t).walk(authURL, app.DemoRedirectURI, "admin", "wrong", "approve")
	if err == nil {
		t.Error("a wrong password reached the client")
	}
	_, err = newPerson(t).walk(strings.Replace(authURL, "www.example.com", "evil.example.net", 1), "https://evil.example.net", "admin", "admin", "approve")
	if s, ok := err.(*stop); !ok || s.status != 400 {
		t.Errorf("unregistered redirect_uri: %v; want a 400 error page", err)
	}
}

// The same flow with golang.org/x/oauth2 as the client, with PKCE and a
// refreshing TokenSource.
func TestXOAuth2Client(t *testing.T) {
	m := start(t)
	iss := "http://" + m.Addr()
	conf := &oauth2.Config{
		ClientID: app.DemoClientID, ClientSecret: app.DemoClientSecret, RedirectURL: app.DemoRedirectURI, Scopes: []string{"email"},
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth/authorize", TokenURL: iss + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	verifier := oauth2.GenerateVerifier()
	loc, err := newPerson(t).walk(conf.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)), app.DemoRedirectURI, "admin", "admin", "approve")
	if err != nil {
		t.Fatal(err)
	}
	q := mustParse(loc).Query()
	if q.Get("state") != "xyz" || q.Get("iss") != iss {
		t.Errorf("redirect %s; want state=xyz and iss=%s", loc, iss)
	}
	ctx := context.Background()
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.TokenType != "Bearer" || time.Until(tok.Expiry) > 301*time.Second || time.Until(tok.Expiry) < 290*time.Second {
		t.Errorf("token %+v", tok)
	}
	// An expired token makes the TokenSource refresh it.
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken || fresh.RefreshToken == "" {
		t.Errorf("refresh gave %+v", fresh)
	}
	// A wrong verifier fails (RFC 7636 §4.6).
	loc, _ = newPerson(t).walk(conf.AuthCodeURL("xyz", oauth2.S256ChallengeOption(verifier)), app.DemoRedirectURI, "admin", "admin", "approve")
	_, err = conf.Exchange(ctx, mustParse(loc).Query().Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier()))
	var re *oauth2.RetrieveError
	if !errorsAs(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Errorf("wrong verifier: %v; want invalid_grant", err)
	}
}

func errorsAs(err error, re **oauth2.RetrieveError) bool {
	r, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = r
	}
	return ok
}

// golang.org/x/oauth2/clientcredentials against the real server, and a
// public client doing the code flow with PKCE and no secret.
func TestXOAuth2ClientCredentialsAndPublicClient(t *testing.T) {
	m := start(t)
	iss := "http://" + m.Addr()
	ctx := context.Background()
	h, _ := secret.Hash("svc-secret")
	if err := m.Store.CreateClient(ctx, &oauthd.Client{ID: "svc", SecretHash: h, GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read", "write"}}); err != nil {
		t.Fatal(err)
	}
	cc := &clientcredentials.Config{ClientID: "svc", ClientSecret: "svc-secret", TokenURL: iss + "/oauth/token", Scopes: []string{"read"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken == "" || tok.RefreshToken != "" || tok.Extra("scope") != "read" {
		t.Errorf("client_credentials token %+v scope %v", tok, tok.Extra("scope"))
	}
	cc.ClientSecret = "wrong"
	if _, err := cc.Token(ctx); err == nil {
		t.Error("a wrong secret got a token")
	}

	if err := m.Store.CreateClient(ctx, &oauthd.Client{ID: "spa", Public: true, TokenEndpointAuthMethod: oauthd.AuthMethodNone,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "spa", RedirectURL: "http://127.0.0.1:41234/cb", Scopes: []string{"email"},
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth/authorize", TokenURL: iss + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	loc, err := newPerson(t).walk(conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), "http://127.0.0.1:41234/cb", "admin", "admin", "approve")
	if err != nil {
		t.Fatal(err)
	}
	tok, err = conf.Exchange(ctx, mustParse(loc).Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("public client exchange: %v %+v", err, tok)
	}
	// without PKCE the public client is refused at the authorization endpoint
	loc, err = newPerson(t).walk(conf.AuthCodeURL("s"), "http://127.0.0.1:41234/cb", "admin", "admin", "approve")
	if err != nil || mustParse(loc).Query().Get("error") != "invalid_request" {
		t.Errorf("public client without PKCE: %s %v; want error=invalid_request", loc, err)
	}
}
