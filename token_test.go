package oauthd_test

import (
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var seedAuth = basic(clientID, clientSecret)

// The seed's curl calls: code for tokens with the seed's fields, then refresh.
func TestSeedTokenize(t *testing.T) {
	e := newEnv(t)
	code := e.code()
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	if r.status != http.StatusOK {
		t.Fatalf("tokenize: %d %s", r.status, r.body)
	}
	for _, k := range []string{"access_token", "refresh_token", "token_type", "expires_in", "refresh_token_expires_in", "scope"} {
		if _, ok := r.page[k]; !ok {
			t.Errorf("token response lacks %s: %s", k, r.body)
		}
	}
	if r.page["expires_in"] != 300.0 || r.page["refresh_token_expires_in"] != 900.0 || r.page["token_type"] != "Bearer" || r.page["scope"] != "email" {
		t.Errorf("token response = %s; want expires_in 300, refresh_token_expires_in 900, Bearer, email", r.body)
	}
	if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
		t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache (RFC 6749 §5.1)", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
	}
	rt := r.str("refresh_token")
	r2 := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	if r2.status != http.StatusOK || r2.str("access_token") == r.str("access_token") || r2.str("refresh_token") == rt || r2.str("refresh_token") == "" {
		t.Fatalf("refresh: %d %s", r2.status, r2.body)
	}
	if r2.page["expires_in"] != 300.0 || r2.page["refresh_token_expires_in"] != 900.0 || r2.page["scope"] != "email" {
		t.Errorf("refresh response = %s; want the same set of data as before", r2.body)
	}
	// RFC 9700 §4.14.2: the old refresh token no longer works.
	r3 := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	if r3.status != http.StatusBadRequest || r3.str("error") != "invalid_grant" {
		t.Errorf("old refresh token: %d %s; want 400 invalid_grant", r3.status, r3.body)
	}
	// ...and its reuse revoked the whole grant, including the new refresh token.
	r4 := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r2.str("refresh_token")))
	if r4.status != http.StatusBadRequest || r4.str("error") != "invalid_grant" {
		t.Errorf("successor after reuse: %d %s; want invalid_grant (grant revoked)", r4.status, r4.body)
	}
	// RFC 6749 §4.1.2: the code is single use.
	r5 := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	if r5.status != http.StatusBadRequest || r5.str("error") != "invalid_grant" {
		t.Errorf("code replay: %d %s; want 400 invalid_grant", r5.status, r5.body)
	}
}

// A replayed code revokes the tokens of its first redemption (RFC 6749 §4.1.2).
func TestCodeReplayRevokes(t *testing.T) {
	e := newEnv(t)
	code := e.code()
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	if r.status != http.StatusOK {
		t.Fatal(r.body)
	}
	e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	r2 := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	if r2.str("error") != "invalid_grant" {
		t.Errorf("refresh after code replay: %d %s; want invalid_grant", r2.status, r2.body)
	}
	if _, err := e.store.Token(t.Context(), oauthd.HashToken(r.str("access_token"))); err == nil {
		t.Error("the access token of the first redemption is still stored")
	}
}

func TestTokenErrors(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		auth   string
		form   func() []string
		status int
		err    string
	}{
		{"RFC6749_5.2/wrong_secret", basic(clientID, "wrong"), func() []string {
			return []string{"grant_type", "authorization_code", "code", "x", "redirect_uri", redirectURI}
		}, 401, "invalid_client"},
		{"RFC6749_5.2/unknown_client", basic("nobody", "x"), func() []string { return []string{"grant_type", "authorization_code", "code", "x"} }, 401, "invalid_client"},
		{"RFC6749_5.2/no_client_auth", "", func() []string { return []string{"grant_type", "authorization_code", "code", "x"} }, 401, "invalid_client"},
		{"RFC6749_2.3.1/malformed_basic", "Basic !!!", func() []string { return []string{"grant_type", "authorization_code"} }, 401, "invalid_client"},
		{"RFC6749_2.3/two_methods", seedAuth, func() []string { return []string{"grant_type", "authorization_code", "client_secret", clientSecret} }, 400, "invalid_request"},
		{"RFC6749_5.2/missing_grant_type", seedAuth, func() []string { return []string{"code", "x"} }, 400, "invalid_request"},
		{"RFC6749_5.2/unsupported_grant_type", seedAuth, func() []string { return []string{"grant_type", "magic"} }, 400, "unsupported_grant_type"},
		{"RFC6749_4.3/password_disabled", seedAuth, func() []string { return []string{"grant_type", "password", "username", "admin", "password", "admin"} }, 400, "unsupported_grant_type"},
		{"RFC6749_5.2/client_credentials_not_allowed", seedAuth, func() []string { return []string{"grant_type", "client_credentials"} }, 400, "unauthorized_client"},
		{"RFC6749_4.1.3/missing_code", seedAuth, func() []string { return []string{"grant_type", "authorization_code", "redirect_uri", redirectURI} }, 400, "invalid_request"},
		{"RFC6749_4.1.3/unknown_code", seedAuth, func() []string {
			return []string{"grant_type", "authorization_code", "code", "nope", "redirect_uri", redirectURI}
		}, 400, "invalid_grant"},
		{"RFC6749_4.1.3/redirect_uri_mismatch", seedAuth, func() []string {
			return []string{"grant_type", "authorization_code", "code", e.code(), "redirect_uri", "https://www.example.com/other"}
		}, 400, "invalid_grant"},
		{"RFC6749_4.1.3/redirect_uri_missing", seedAuth, func() []string { return []string{"grant_type", "authorization_code", "code", e.code()} }, 400, "invalid_grant"},
		{"RFC6749_4.1.3/code_of_another_client", basic("other", "other-secret"), func() []string {
			return []string{"grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI}
		}, 400, "invalid_grant"},
		{"RFC9700_2.1.1/verifier_without_challenge", seedAuth, func() []string {
			return []string{"grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI, "code_verifier", strings.Repeat("v", 43)}
		}, 400, "invalid_request"},
		{"RFC7636_4.6/wrong_verifier", seedAuth, func() []string {
			c := e.code("code_challenge", oauthd.S256Challenge(strings.Repeat("a", 43)), "code_challenge_method", "S256")
			return []string{"grant_type", "authorization_code", "code", c, "redirect_uri", redirectURI, "code_verifier", strings.Repeat("b", 43)}
		}, 400, "invalid_grant"},
		{"RFC7636_4.5/missing_verifier", seedAuth, func() []string {
			c := e.code("code_challenge", oauthd.S256Challenge(strings.Repeat("a", 43)), "code_challenge_method", "S256")
			return []string{"grant_type", "authorization_code", "code", c, "redirect_uri", redirectURI}
		}, 400, "invalid_grant"},
		{"RFC6749_3.2/repeated_parameter", seedAuth, func() []string {
			return []string{"grant_type", "authorization_code", "code", "a", "code", "b", "redirect_uri", redirectURI}
		}, 400, "invalid_request"},
		{"RFC6749_6/missing_refresh_token", seedAuth, func() []string { return []string{"grant_type", "refresh_token"} }, 400, "invalid_request"},
		{"RFC6749_6/unknown_refresh_token", seedAuth, func() []string { return []string{"grant_type", "refresh_token", "refresh_token", "nope"} }, 400, "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.token(tc.auth, form(tc.form()...))
			if r.status != tc.status || r.str("error") != tc.err {
				t.Errorf("got %d %s; want %d %s", r.status, r.body, tc.status, tc.err)
			}
			if tc.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("401 without WWW-Authenticate: Basic (RFC 6749 §5.2)")
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("error response Cache-Control = %q", r.header.Get("Cache-Control"))
			}
		})
	}
}

func TestTokenEndpointTransport(t *testing.T) {
	e := newEnv(t)
	t.Run("RFC6749_3.2/GET_is_405", func(t *testing.T) {
		res, err := http.Get(e.url(oauthd.TokenPath))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
			t.Errorf("GET token: %d Allow=%q; want 405 Allow: POST", res.StatusCode, res.Header.Get("Allow"))
		}
	})
	t.Run("RFC6749_3.2/JSON_body_refused", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url(oauthd.TokenPath), strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", seedAuth)
		r := do(t, http.DefaultClient, req)
		if r.status != 400 || r.str("error") != "invalid_request" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("oversized_body_is_413", func(t *testing.T) {
		r := e.token(seedAuth, form("grant_type", "client_credentials", "pad", strings.Repeat("a", 1<<20)))
		if r.status != http.StatusRequestEntityTooLarge {
			t.Errorf("got %d; want 413", r.status)
		}
	})
	t.Run("invalid_utf8_is_invalid_request", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.url(oauthd.TokenPath), strings.NewReader("grant_type=%ff"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", seedAuth)
		r := do(t, http.DefaultClient, req)
		if r.status != 400 || r.str("error") != "invalid_request" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("RFC6749_2.3.1/client_secret_post", func(t *testing.T) {
		r := e.token("", form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI, "client_id", clientID, "client_secret", clientSecret))
		if r.status != 200 {
			t.Errorf("client_secret_post: %d %s", r.status, r.body)
		}
	})
	t.Run("RFC6749_2.3.1/basic_is_form_urlencoded", func(t *testing.T) {
		// "a:b c" in a client id is sent as a%3Ab+c inside Basic.
		ctx := t.Context()
		e.store.CreateClient(ctx, &oauthd.Client{ID: "a:b c", SecretHash: hash(t, "s%e:cret"), GrantTypes: []string{oauthd.GrantClientCredentials}})
		r := e.token(basic("a:b c", "s%e:cret"), form("grant_type", "client_credentials"))
		if r.status != 200 {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("unknown_parameters_ignored", func(t *testing.T) {
		r := e.token(basic("service", "service-secret"), form("grant_type", "client_credentials", "foo", "1", "foo", "2"))
		if r.status != 200 {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
}

// An expired code is invalid_grant (RFC 6749 §4.1.2: codes are short-lived).
func TestCodeExpires(t *testing.T) {
	e := newEnv(t)
	code := e.code()
	e.clock.Add(5*time.Minute + time.Second)
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	if r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("expired code: %d %s; want invalid_grant", r.status, r.body)
	}
}

// RFC 6749 §6: a narrower scope may be asked on refresh, a wider one is invalid_scope.
func TestRefreshScope(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) {})
	e.store.UpdateClient(t.Context(), &oauthd.Client{ID: clientID, SecretHash: hash(t, clientSecret), RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email", "profile"}})
	code := e.code("scope", "email profile")
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	rt := r.str("refresh_token")
	wide := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt, "scope", "email profile admin"))
	if wide.status != 400 || wide.str("error") != "invalid_scope" {
		t.Errorf("wider scope: %d %s; want invalid_scope", wide.status, wide.body)
	}
	narrow := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt, "scope", "email"))
	if narrow.status != 200 || narrow.str("scope") != "email" {
		t.Fatalf("narrower scope: %d %s", narrow.status, narrow.body)
	}
	again := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", narrow.str("refresh_token")))
	if again.str("scope") != "email profile" {
		t.Errorf("refresh after a narrowed refresh has scope %q; want the original email profile", again.str("scope"))
	}
}

// A refresh token of one client is useless to another (RFC 6749 §6).
func TestRefreshTokenBoundToClient(t *testing.T) {
	e := newEnv(t)
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
	o := e.token(basic("other", "other-secret"), form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	if o.status != 400 || o.str("error") != "invalid_grant" {
		t.Errorf("another client's refresh token: %d %s", o.status, o.body)
	}
}

// Within the grace period a retried refresh gets the same successor.
func TestRefreshGracePeriod(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.RefreshGracePeriod = 10 * time.Second })
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
	rt := r.str("refresh_token")
	a := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	b := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	if a.status != 200 || b.status != 200 || a.str("refresh_token") != b.str("refresh_token") || a.str("access_token") != b.str("access_token") {
		t.Fatalf("retry within grace: %d %s / %d %s; want the same successor", a.status, a.body, b.status, b.body)
	}
	e.clock.Add(11 * time.Second)
	c := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	if c.str("error") != "invalid_grant" {
		t.Errorf("reuse after the grace period: %d %s; want invalid_grant", c.status, c.body)
	}
	d := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", a.str("refresh_token")))
	if d.str("error") != "invalid_grant" {
		t.Errorf("successor after the late reuse: %d %s; want invalid_grant (grant revoked)", d.status, d.body)
	}
}

// A retry within the grace period is answered as things stand at the
// retry (RFC 6749 §5.1): the access token's time left, and no access
// token revoked since (RFC 7009) handed out as new; the grant stays.
func TestRefreshGracePeriodRetryIsCurrent(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.RefreshGracePeriod = 10 * time.Second })
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
	rt := r.str("refresh_token")
	a := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	e.clock.Add(4 * time.Second)
	b := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	ttl, _ := a.page["expires_in"].(float64)
	if got, _ := b.page["expires_in"].(float64); b.status != 200 || got != ttl-4 {
		t.Errorf("retry 4 s later: %d expires_in %v; want 200 and %v (the access token's time left)", b.status, got, ttl-4)
	}
	if r := e.revoke(seedAuth, "token", a.str("access_token"), "token_type_hint", "access_token"); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if c := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt)); c.status != 400 || c.str("error") != "invalid_grant" || c.str("access_token") != "" {
		t.Errorf("retry after its access token was revoked: %d %s; want invalid_grant, no revoked token handed out", c.status, c.body)
	}
	if d := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", a.str("refresh_token"))); d.status != 200 {
		t.Errorf("the successor after that retry: %d %s; want 200 (the grant stays)", d.status, d.body)
	}
}

// A retry within the grace period names only the scope the client's
// registration still lists (RFC 6749 §5.1), as introspection of its access
// token does.
func TestRefreshGracePeriodRetryNarrowedScope(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.RefreshGracePeriod, c.ClientCacheTTL = 10*time.Second, time.Millisecond })
	tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid profile email offline_access")
	rt := tok.str("refresh_token")
	a := e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	if a.status != 200 || a.str("scope") != "openid profile email offline_access" {
		t.Fatalf("refresh: %d %s", a.status, a.body)
	}
	c, err := e.store.Client(t.Context(), oidcClientID)
	if err != nil {
		t.Fatal(err)
	}
	c.Scopes = []string{"openid", "email", "offline_access"}
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond) // past the client cache
	e.clock.Add(5 * time.Second)
	b := e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", rt))
	if b.status != 200 || b.str("access_token") != a.str("access_token") || b.str("scope") != "openid email offline_access" {
		t.Errorf("retry after profile was removed from the client: %d %s; want the same tokens with scope \"openid email offline_access\"", b.status, b.body)
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	r := e.token(basic("service", "service-secret"), form("grant_type", "client_credentials", "scope", "read"))
	if r.status != 200 || r.str("scope") != "read" || r.str("refresh_token") != "" || r.str("access_token") == "" {
		t.Errorf("client_credentials: %d %s; want an access token with scope read and no refresh token (RFC 6749 §4.4.3)", r.status, r.body)
	}
	r = e.token(basic("service", "service-secret"), form("grant_type", "client_credentials", "scope", "admin"))
	if r.str("error") != "invalid_scope" {
		t.Errorf("scope not allowed: %s", r.body)
	}
}

// A client_credentials token belongs to no grant: it is stored with an
// empty GrantID, and revoking it (RFC 7009) ends it alone.
func TestClientCredentialsTokenHasNoGrant(t *testing.T) {
	e := newEnv(t)
	svc := basic("service", "service-secret")
	var toks []string
	for range 2 {
		r := e.token(svc, form("grant_type", "client_credentials", "scope", "read"))
		if r.status != 200 {
			t.Fatalf("client_credentials: %d %s", r.status, r.body)
		}
		toks = append(toks, r.str("access_token"))
	}
	for _, tok := range toks {
		rec, err := e.store.Token(t.Context(), oauthd.HashToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		if rec.GrantID != "" || rec.Subject != "" || rec.ClientID != "service" {
			t.Errorf("stored token: grant %q, subject %q, client %q; want no grant, no subject, client service", rec.GrantID, rec.Subject, rec.ClientID)
		}
	}
	if r := e.revoke(svc, "token", toks[0]); r.status != 200 {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	if _, err := e.store.Token(t.Context(), oauthd.HashToken(toks[0])); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("revoked token: %v; want ErrNotFound", err)
	}
	if _, err := e.store.Token(t.Context(), oauthd.HashToken(toks[1])); err != nil {
		t.Errorf("the other token after the revocation: %v; want it kept", err)
	}
}

// Public clients must use PKCE and authenticate with client_id alone.
func TestPublicClientPKCE(t *testing.T) {
	e := newEnv(t)
	verifier := strings.Repeat("V", 50)
	u := e.authorize(e.browser(), e.url(oauthd.AuthorizePath+"?client_id=public_app&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&response_type=code&state=s&code_challenge="+
		oauthd.S256Challenge(verifier)+"&code_challenge_method=S256"), "approve")
	code := u.Query().Get("code")
	if code == "" || u.Host != "127.0.0.1:5555" {
		t.Fatalf("redirect %s", u)
	}
	withSecret := e.token(basic("public_app", "guess"), form("grant_type", "authorization_code", "code", code, "redirect_uri", "http://127.0.0.1:5555/cb", "code_verifier", verifier))
	if withSecret.status != 401 {
		t.Errorf("public client with a secret: %d %s; want 401", withSecret.status, withSecret.body)
	}
	u = e.authorize(e.browser(), e.url(oauthd.AuthorizePath+"?client_id=public_app&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcb&response_type=code&state=s&code_challenge="+
		oauthd.S256Challenge(verifier)+"&code_challenge_method=S256"), "approve")
	r := e.token("", form("grant_type", "authorization_code", "client_id", "public_app", "code", u.Query().Get("code"), "redirect_uri", "http://127.0.0.1:5555/cb", "code_verifier", verifier))
	if r.status != 200 {
		t.Errorf("public client with PKCE: %d %s", r.status, r.body)
	}
}

// 50 parallel redemptions of one code: exactly one 200, no 5xx, and after
// the replays the issued tokens are revoked.
func TestParallelCodeRedemption(t *testing.T) {
	e := newEnv(t)
	code := e.code()
	var mu sync.Mutex
	counts := map[int]int{}
	var winner string
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
			mu.Lock()
			counts[r.status]++
			if r.status == 200 {
				winner = r.str("access_token")
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[200] != 1 || counts[400] != 49 {
		t.Fatalf("statuses %v; want exactly one 200 and 49 400s", counts)
	}
	if _, err := e.store.Token(t.Context(), oauthd.HashToken(winner)); err == nil {
		t.Error("the winner's access token survived the replays")
	}
}

// 20 parallel refreshes of one token: at most one 200, no 5xx.
func TestParallelRefresh(t *testing.T) {
	e := newEnv(t)
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
	rt := r.str("refresh_token")
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", rt))
			mu.Lock()
			counts[r.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if counts[200] > 1 || counts[200]+counts[400] != 20 {
		t.Errorf("statuses %v; want at most one 200 and the rest 400", counts)
	}
}

// Refresh token lifetimes. A confidential client's refresh gives a
// successor that lives RefreshTokenTTL again; a public client's does not
// outlive its predecessor (OAuth 2.0 for Browser-Based Apps: rotation does
// not extend a public client's grant); RefreshTokenMaxLifetime ends every
// grant that long after the person authenticated, however often it is
// refreshed.
func TestRefreshTokenLifetimes(t *testing.T) {
	refresh := func(e *testEnv, auth string, rt string, kv ...string) *response {
		t.Helper()
		r := e.token(auth, form(append([]string{"grant_type", "refresh_token", "refresh_token", rt}, kv...)...))
		if r.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", r.status, r.body)
		}
		return r
	}
	expiresIn := func(r *response) int64 { n, _ := r.page["refresh_token_expires_in"].(float64); return int64(n) }

	t.Run("confidential_client_slides", func(t *testing.T) {
		e := newEnv(t)
		tok := e.tokens() // the seed client: refresh tokens of 900 s
		e.clock.Add(10 * time.Minute)
		if r := refresh(e, seedAuth, tok.str("refresh_token")); expiresIn(r) != 900 {
			t.Errorf("refresh_token_expires_in %d after 10 minutes; want 900", expiresIn(r))
		}
	})
	t.Run("BrowserBasedApps/public_client_does_not_extend", func(t *testing.T) {
		e := newEnv(t, func(c *oauthd.Config) { c.RefreshTokenTTL = time.Hour })
		n := &negEnv{testEnv: e}
		tok := e.token("", form("grant_type", "authorization_code", "client_id", "public_app", "code", n.publicCode(),
			"redirect_uri", loopbackCB, "code_verifier", verifier))
		if tok.status != http.StatusOK || expiresIn(tok) != 3600 {
			t.Fatalf("public client's tokens: %d %s", tok.status, tok.body)
		}
		e.clock.Add(20 * time.Minute)
		r := refresh(e, "", tok.str("refresh_token"), "client_id", "public_app")
		if expiresIn(r) != 2400 {
			t.Errorf("refresh_token_expires_in %d 20 minutes in; want 2400 (the first token's end)", expiresIn(r))
		}
		e.clock.Add(30 * time.Minute)
		r = refresh(e, "", r.str("refresh_token"), "client_id", "public_app")
		e.clock.Add(11 * time.Minute)
		if r := e.token("", form("grant_type", "refresh_token", "client_id", "public_app", "refresh_token", r.str("refresh_token"))); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Errorf("refresh 61 minutes after the first token: %d %s; want invalid_grant (the grant ended)", r.status, r.body)
		}
	})
	t.Run("max_lifetime_from_authentication", func(t *testing.T) {
		// The seed client's refresh tokens live 900 s; its grants 20 min.
		e := newEnv(t, func(c *oauthd.Config) { c.RefreshTokenMaxLifetime = 20 * time.Minute })
		tok := e.tokens()
		e.clock.Add(10 * time.Minute)
		r := refresh(e, seedAuth, tok.str("refresh_token"))
		if expiresIn(r) != 600 {
			t.Errorf("refresh_token_expires_in %d 10 minutes after sign-in; want 600 (RefreshTokenMaxLifetime)", expiresIn(r))
		}
		if in := e.introspect(seedAuth, "token", r.str("refresh_token")); int64(in.page["exp"].(float64)) != e.clock.Now().Add(10*time.Minute).Unix() {
			t.Errorf("introspected exp %v; want the grant's end", in.page["exp"])
		}
		e.clock.Add(11 * time.Minute)
		if r := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token"))); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Errorf("refresh past the grant's maximum lifetime: %d %s; want invalid_grant", r.status, r.body)
		}
	})
	t.Run("max_lifetime_passed_at_sign_in", func(t *testing.T) {
		// Signed in 2 minutes ago, grants end 1 minute after sign-in: the
		// new grant gets its access token and no refresh token (one that
		// is dead on arrival is not handed out).
		e := newEnv(t, func(c *oauthd.Config) { c.RefreshTokenMaxLifetime = time.Minute })
		b := e.browser()
		e.authorizeExpectLogin(t, b, e.authorizeURL(), true)
		e.clock.Add(2 * time.Minute)
		u := e.authorizeExpectLogin(t, b, e.authorizeURL(), false)
		r := e.token(seedAuth, form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", redirectURI))
		if r.status != http.StatusOK || r.str("access_token") == "" || r.str("refresh_token") != "" || r.page["refresh_token_expires_in"] != nil {
			t.Errorf("tokens of a sign-in older than the maximum lifetime: %d %s; want an access token only", r.status, r.body)
		}
	})
	t.Run("max_lifetime_lowered_after_issue", func(t *testing.T) {
		e := newEnv(t)
		tok := e.tokens()
		e.clock.Add(2 * time.Minute)
		// The server restarts with a limit of 1 minute.
		p, err := oauthd.New(oauthd.Config{Issuer: e.issuer, Pages: fakePages{}, Now: e.clock.Now, RefreshTokenMaxLifetime: time.Minute}, e.store)
		if err != nil {
			t.Fatal(err)
		}
		e.srv.Config.Handler = p
		// RFC 7662 §2.2: introspection says what the token endpoint does.
		if in := e.introspect(seedAuth, "token", tok.str("refresh_token")); in.page["active"] != false {
			t.Errorf("introspection of a refresh token past a maximum lifetime set since: %s; want active false", in.body)
		}
		if r := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", tok.str("refresh_token"))); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Errorf("refresh of a grant older than a maximum lifetime set since: %d %s; want invalid_grant", r.status, r.body)
		}
	})
	t.Run("max_lifetime_less_than_a_second_left", func(t *testing.T) {
		// RFC 6749 §5.1: a refresh token with under a second to live says
		// 1, not nothing.
		e := newEnv(t, func(c *oauthd.Config) { c.RefreshTokenMaxLifetime = 20 * time.Minute })
		tok := e.tokens()
		e.clock.Add(10 * time.Minute)
		r := refresh(e, seedAuth, tok.str("refresh_token"))
		e.clock.Add(10*time.Minute - 300*time.Millisecond)
		r = refresh(e, seedAuth, r.str("refresh_token"))
		if r.str("refresh_token") == "" || expiresIn(r) != 1 {
			t.Errorf("refresh_token_expires_in %d with 0.3 s left; want 1", expiresIn(r))
		}
	})
}
