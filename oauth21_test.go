package oauthd_test

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// tokens redeems a fresh code of the seed client.
func (e *testEnv) tokens() *response {
	e.t.Helper()
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
	if r.status != 200 {
		e.t.Fatalf("tokens: %d %s", r.status, r.body)
	}
	return r
}

func (e *testEnv) introspect(auth string, kv ...string) *response {
	e.t.Helper()
	return e.postForm(oauthd.IntrospectPath, auth, form(kv...))
}

func (e *testEnv) revoke(auth string, kv ...string) *response {
	e.t.Helper()
	return e.postForm(oauthd.RevokePath, auth, form(kv...))
}

func TestIntrospection(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.store.CreateClient(ctx, &oauthd.Client{ID: "api", SecretHash: hash(t, "api-secret"), ResourceServer: true})
	tok := e.tokens()
	at, rt := tok.str("access_token"), tok.str("refresh_token")

	t.Run("RFC7662_2.2/active_access_token", func(t *testing.T) {
		r := e.introspect(seedAuth, "token", at)
		if r.status != 200 || r.page["active"] != true || r.str("scope") != "email" || r.str("client_id") != clientID ||
			r.str("sub") != e.user.ID || r.str("token_type") != "Bearer" || r.str("iss") != e.issuer || r.page["exp"] == nil || r.page["iat"] == nil {
			t.Errorf("got %d %s", r.status, r.body)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", r.header.Get("Cache-Control"))
		}
	})
	t.Run("RFC7662_2.1/refresh_token_without_hint", func(t *testing.T) {
		r := e.introspect(seedAuth, "token", rt)
		if _, hasType := r.page["token_type"]; r.page["active"] != true || hasType {
			t.Errorf("got %s; want active, without token_type (RFC 7662 §2.2: an access token type; a refresh token has none)", r.body)
		}
	})
	t.Run("RFC7662_2.1/wrong_hint_still_found", func(t *testing.T) {
		r := e.introspect(seedAuth, "token", rt, "token_type_hint", "access_token")
		if r.page["active"] != true {
			t.Errorf("got %s", r.body)
		}
	})
	t.Run("RFC7662_2.2/resource_server_sees_other_clients_tokens", func(t *testing.T) {
		r := e.introspect(basic("api", "api-secret"), "token", at)
		if r.page["active"] != true {
			t.Errorf("got %s", r.body)
		}
	})
	inactive := []struct {
		name string
		auth string
		tok  string
	}{
		{"RFC7662_2.2/unknown_token", seedAuth, "nope"},
		{"RFC7662_2.2/other_clients_token", basic("other", "other-secret"), at},
	}
	for _, tc := range inactive {
		t.Run(tc.name, func(t *testing.T) {
			r := e.introspect(tc.auth, "token", tc.tok)
			if r.status != 200 || strings.TrimSpace(r.body) != `{"active":false}` {
				t.Errorf("got %d %s; want exactly {\"active\":false}", r.status, r.body)
			}
		})
	}
	t.Run("RFC7662_2.1/caller_must_authenticate", func(t *testing.T) {
		r := e.introspect("", "token", at)
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("RFC7662_2.1/public_client_refused", func(t *testing.T) {
		r := e.introspect("", "token", at, "client_id", "public_app")
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("RFC7662_2.1/missing_token", func(t *testing.T) {
		r := e.introspect(seedAuth)
		if r.status != 400 || r.str("error") != "invalid_request" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("RFC7662_2.2/token_of_deleted_user", func(t *testing.T) {
		u := &oauthd.User{ID: "gone", Username: "gone"}
		e.store.CreateUser(ctx, u)
		e.store.CreateTokens(ctx, &oauthd.Token{Hash: oauthd.HashToken("tok-of-gone"), Kind: oauthd.AccessToken, GrantID: "g1", ClientID: clientID,
			Subject: "gone", IssuedAt: e.clock.Now(), ExpiresAt: e.clock.Now().Add(time.Hour)})
		if r := e.introspect(seedAuth, "token", "tok-of-gone"); r.page["active"] != true {
			t.Fatalf("before deletion: %s", r.body)
		}
		e.store.DeleteUser(ctx, "gone")
		if r := e.introspect(seedAuth, "token", "tok-of-gone"); strings.TrimSpace(r.body) != `{"active":false}` {
			t.Errorf("after deleting the user: %s", r.body)
		}
	})
	t.Run("RFC7662_2.2/expired_token", func(t *testing.T) {
		e.clock.Add(301 * 1e9)
		r := e.introspect(seedAuth, "token", at)
		if strings.TrimSpace(r.body) != `{"active":false}` {
			t.Errorf("expired access token: %s", r.body)
		}
	})
	t.Run("RFC7662_2.1/GET_is_405", func(t *testing.T) {
		res, _ := http.Get(e.url(oauthd.IntrospectPath))
		res.Body.Close()
		if res.StatusCode != 405 || res.Header.Get("Allow") != "POST" {
			t.Errorf("got %d %q", res.StatusCode, res.Header.Get("Allow"))
		}
	})
}

func TestRevocation(t *testing.T) {
	e := newEnv(t)
	active := func(tok string) bool {
		return e.introspect(seedAuth, "token", tok).page["active"] == true
	}
	t.Run("RFC7009_2.2/unknown_token_is_200", func(t *testing.T) {
		if r := e.revoke(seedAuth, "token", "nope"); r.status != 200 {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	t.Run("RFC7009_2.1/access_token", func(t *testing.T) {
		tok := e.tokens()
		if r := e.revoke(seedAuth, "token", tok.str("access_token"), "token_type_hint", "access_token"); r.status != 200 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		if active(tok.str("access_token")) || !active(tok.str("refresh_token")) {
			t.Error("revoking the access token should leave the refresh token")
		}
	})
	t.Run("RFC7009_2.1/refresh_token_revokes_grant", func(t *testing.T) {
		tok := e.tokens()
		if r := e.revoke(seedAuth, "token", tok.str("refresh_token")); r.status != 200 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		if active(tok.str("access_token")) || active(tok.str("refresh_token")) {
			t.Error("revoking the refresh token must revoke its grant's access tokens")
		}
		r := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", tok.str("refresh_token")))
		if r.str("error") != "invalid_grant" {
			t.Errorf("refresh with a revoked token: %s", r.body)
		}
	})
	t.Run("RFC7009_2.1/other_client_cannot_revoke", func(t *testing.T) {
		tok := e.tokens()
		if r := e.revoke(basic("other", "other-secret"), "token", tok.str("access_token")); r.status != 400 || r.str("error") != "unauthorized_client" {
			t.Fatalf("got %d %s; want 400 unauthorized_client", r.status, r.body)
		}
		if !active(tok.str("access_token")) {
			t.Error("another client revoked the token")
		}
	})
	t.Run("RFC7009_2.1/public_client_with_client_id", func(t *testing.T) {
		r := e.revoke("", "token", "nope", "client_id", "public_app")
		if r.status != 200 {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
	// The hint is a hint: an unknown one is ignored and the token
	// revoked all the same.
	t.Run("RFC7009_2.1/unknown_hint_ignored", func(t *testing.T) {
		at := e.tokens().str("access_token")
		if r := e.revoke(seedAuth, "token", at, "token_type_hint", "id_token"); r.status != 200 {
			t.Errorf("got %d %s", r.status, r.body)
		}
		if active(at) {
			t.Error("the token is still active")
		}
	})
	t.Run("RFC7009_2.1/unauthenticated", func(t *testing.T) {
		r := e.revoke(basic(clientID, "wrong"), "token", "x")
		if r.status != 401 || r.str("error") != "invalid_client" {
			t.Errorf("got %d %s", r.status, r.body)
		}
	})
}

// Consent is remembered only when the person ticks the box; prompt=consent
// always shows the page.
func TestConsentMemory(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.follow(e, b.get(e.authorizeURL()))
	r = b.follow(e, b.login(e, r, "admin", "admin"))
	if r := b.decide(e, r, "approve"); r.status != 303 {
		t.Fatal(r.body)
	}
	// without the box: the page again
	r = b.follow(e, b.get(e.authorizeURL()))
	if r.pageKind() != "consent" {
		t.Fatalf("second visit without remember: %s; want the consent page", r.pageKind())
	}
	b.decide(e, r, "approve", "remember", "1")
	// with the box: straight to the client
	r = b.follow(e, b.get(e.authorizeURL()))
	if r.status != 303 || !strings.HasPrefix(r.location(), redirectURI+"?") || !strings.Contains(r.location(), "code=") {
		t.Fatalf("after remember: %d %q; want a redirect with a code", r.status, r.location())
	}
	// prompt=consent shows it anyway
	r = b.follow(e, b.get(e.authorizeURL("prompt", "consent")))
	if r.pageKind() != "consent" {
		t.Errorf("prompt=consent: %s; want the consent page", r.pageKind())
	}
	// a wider request asks again
	e.store.UpdateClient(t.Context(), &oauthd.Client{ID: clientID, SecretHash: hash(t, clientSecret), RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email", "profile"}})
	r = b.follow(e, b.get(e.authorizeURL("scope", "email profile")))
	if r.pageKind() != "consent" {
		t.Errorf("wider scope after remember: %s; want the consent page", r.pageKind())
	}
}

// RFC 8252 §8.6, RFC 9700 §4.15: a public client answered at a loopback
// or private-use-scheme redirect URI cannot be told from another program
// sending its client_id, so an approval of it is neither remembered nor
// honoured if remembered: the person is asked each time, the page offers
// no "remember" box, and prompt=none is answered consent_required. A
// public client answered at an https URI is identified by it.
func TestConsentNotRememberedForUnprovablePublicClients(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if err := e.store.CreateClient(ctx, &oauthd.Client{ID: "spa", Public: true, TokenEndpointAuthMethod: oauthd.AuthMethodNone,
		RedirectURIs: []string{"https://spa.example/cb"}, GrantTypes: []string{oauthd.GrantAuthorizationCode}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, tc := range []struct {
		name, client, uri string
		rememberable      bool
	}{
		{"RFC8252_8.6/loopback", "public_app", "http://127.0.0.1:5555/cb", false},
		{"RFC8252_8.6/loopback_other_port", "public_app", "http://127.0.0.1:31337/cb", false},
		{"RFC8252_8.6/private_use_scheme", "public_app", "com.example.app:/cb", false},
		{"RFC8252_7.2/https", "spa", "https://spa.example/cb", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := e.store.DeleteConsent(ctx, e.user.ID, tc.client); err != nil && !errors.Is(err, oauthd.ErrNotFound) {
				t.Fatal(err)
			}
			authz := func(extra ...string) string {
				return e.authorizeURL(append([]string{"client_id", tc.client, "redirect_uri", tc.uri,
					"code_challenge", challenge, "code_challenge_method", "S256"}, extra...)...)
			}
			b := e.browser()
			r := b.follow(e, b.get(authz()))
			r = b.follow(e, b.login(e, r, "admin", "admin"))
			if r.pageKind() != "consent" {
				t.Fatalf("first request: %s %d; want the consent page", r.pageKind(), r.status)
			}
			if got, _ := r.page["Remember"].(bool); got != tc.rememberable {
				t.Errorf("consent page offers remember = %v; want %v", got, tc.rememberable)
			}
			// A "remember" sent all the same (a hand-made form).
			if r := b.decide(e, r, "approve", "remember", "1"); r.status != http.StatusSeeOther || !strings.Contains(r.location(), "code=") {
				t.Fatalf("approve: %d %q; want a redirect with a code", r.status, r.location())
			}
			_, err := e.store.Consent(ctx, e.user.ID, tc.client)
			if tc.rememberable != (err == nil) {
				t.Errorf("consent stored: err = %v; want stored %v", err, tc.rememberable)
			}
			if !tc.rememberable {
				// One remembered before this rule (or through the library)
				// counts for nothing either.
				now := time.Now()
				if err := e.store.SaveConsent(ctx, &oauthd.Consent{UserID: e.user.ID, ClientID: tc.client, Scopes: []string{"email"}, CreatedAt: now, UpdatedAt: now}); err != nil {
					t.Fatal(err)
				}
			}
			r = b.follow(e, b.get(authz()))
			if tc.rememberable {
				if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), tc.uri+"?") || !strings.Contains(r.location(), "code=") {
					t.Errorf("after remember: %d %q; want a redirect with a code", r.status, r.location())
				}
			} else if r.pageKind() != "consent" {
				t.Errorf("with a remembered consent: %s %d %q; want the consent page again", r.pageKind(), r.status, r.location())
			}
			r = b.get(authz("prompt", "none"))
			loc, _ := url.Parse(r.location())
			switch q := loc.Query(); {
			case r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), tc.uri+"?"):
				t.Errorf("prompt=none: %d %q; want a redirect to the client", r.status, r.location())
			case tc.rememberable && q.Get("code") == "":
				t.Errorf("prompt=none after remember: %q; want a code", r.location())
			case !tc.rememberable && q.Get("error") != oauthd.ErrorConsentRequired:
				t.Errorf("prompt=none: %q; want error=consent_required", r.location())
			}
		})
	}
}

// A first-party client marked SkipConsent never shows the consent page.
func TestSkipConsent(t *testing.T) {
	e := newEnv(t)
	e.store.UpdateClient(t.Context(), &oauthd.Client{ID: clientID, SecretHash: hash(t, clientSecret), RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode}, Scopes: []string{"email"}, SkipConsent: true})
	b := e.browser()
	r := b.follow(e, b.get(e.authorizeURL()))
	r = b.login(e, r, "admin", "admin")
	r = b.follow(e, r)
	if r.status != 303 || !strings.Contains(r.location(), "code=") {
		t.Errorf("first-party client: %d %s", r.status, r.location())
	}
}

// OAuth 2.0 Form Post Response Mode and fragment encoding.
func TestResponseModes(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	u := e.authorize(b, e.authorizeURL("response_mode", "fragment"), "approve")
	if f, _ := url.ParseQuery(u.Fragment); f.Get("code") == "" || f.Get("state") != "somestate" || u.RawQuery != "" {
		t.Errorf("fragment mode: %s", u)
	}
	r := b.get(e.authorizeURL("response_mode", "form_post"))
	r = b.follow(e, r)
	r = b.decide(e, r, "approve")
	if r.pageKind() != "form_post" || r.str("Action") != redirectURI {
		t.Fatalf("form_post: %d %s", r.status, r.body)
	}
	ps := map[string]string{}
	for _, p := range r.page["Params"].([]any) {
		m := p.(map[string]any)
		ps[m["Name"].(string)] = m["Value"].(string)
	}
	if ps["code"] == "" || ps["state"] != "somestate" || ps["iss"] != e.issuer {
		t.Errorf("form_post params %v", ps)
	}
}

// The implicit grant is off by default; when the server and the client
// enable it, it issues an access token in the fragment and never a
// refresh token (RFC 6749 §4.2.2).
func TestImplicitGrant(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.EnableImplicitGrant = true })
	e.store.UpdateClient(t.Context(), &oauthd.Client{ID: clientID, SecretHash: hash(t, clientSecret), RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantImplicit}, Scopes: []string{"email"}})
	u := e.authorize(e.browser(), e.authorizeURL("response_type", "token"), "approve")
	f, _ := url.ParseQuery(u.Fragment)
	if f.Get("access_token") == "" || f.Get("token_type") != "Bearer" || f.Get("refresh_token") != "" || f.Get("state") != "somestate" || u.RawQuery != "" {
		t.Errorf("implicit: %s", u)
	}
	if r := e.browser().get(e.authorizeURL("response_type", "token", "response_mode", "query")); !strings.Contains(r.location(), "error=invalid_request") {
		t.Errorf("tokens in a query must be refused: %s", r.location())
	}
	// a client without the implicit grant is unauthorized_client
	r := e.browser().get(e.url(oauthd.AuthorizePath + "?client_id=other&redirect_uri=https%3A%2F%2Fother.example%2Fcb&response_type=token&state=s"))
	if !strings.Contains(r.location(), "error=unauthorized_client") {
		t.Errorf("implicit for a client without it: %s", r.location())
	}
}

// The password grant is off by default; when enabled for server and
// client it works, and a wrong password is invalid_grant (RFC 6749 §4.3).
func TestPasswordGrant(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.EnablePasswordGrant = true })
	e.store.UpdateClient(t.Context(), &oauthd.Client{ID: clientID, SecretHash: hash(t, clientSecret), RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantPassword, oauthd.GrantRefreshToken}, Scopes: []string{"openid", "email"}})
	r := e.token(seedAuth, form("grant_type", "password", "username", "admin", "password", "admin", "scope", "email"))
	if r.status != 200 || r.str("access_token") == "" || r.str("refresh_token") == "" {
		t.Errorf("password grant: %d %s", r.status, r.body)
	}
	r = e.token(seedAuth, form("grant_type", "password", "username", "admin", "password", "nope"))
	if r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("wrong password: %d %s", r.status, r.body)
	}
	r = e.token(basic("other", "other-secret"), form("grant_type", "password", "username", "admin", "password", "admin"))
	if r.str("error") != "unauthorized_client" {
		t.Errorf("client without the grant: %s", r.body)
	}
	// With openid, an ID token, as the grant's refresh gives (OIDC Core
	// §12.2): the same grant answers the same way on both requests.
	r = e.token(seedAuth, form("grant_type", "password", "username", "admin", "password", "admin", "scope", "openid email"))
	if r.status != 200 || r.str("id_token") == "" {
		t.Fatalf("password grant with openid: %d %s; want an ID token", r.status, r.body)
	}
	r = e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	if r.status != 200 || r.str("id_token") == "" {
		t.Errorf("refresh of the password grant with openid: %d %s; want an ID token", r.status, r.body)
	}
	// Without openid, none.
	r = e.token(seedAuth, form("grant_type", "password", "username", "admin", "password", "admin", "scope", "email"))
	if r.status != 200 || r.str("id_token") != "" {
		t.Errorf("password grant without openid: %d %s; want no ID token", r.status, r.body)
	}
}

// RFC 7662 §2.2: exp is in whole seconds and the expiry is not; a token
// is not answered active once the exp its answer gives has passed.
func TestIntrospectionNotActivePastItsExp(t *testing.T) {
	e := newEnv(t)
	svc := basic("service", "service-secret")
	e.clock.Add(300 * time.Millisecond) // issued 0.3 s into a second
	tok := e.token(svc, form("grant_type", "client_credentials"))
	ttl := time.Duration(tok.page["expires_in"].(float64)) * time.Second
	in := e.introspect(svc, "token", tok.str("access_token"))
	exp, _ := in.page["exp"].(float64)
	if in.page["active"] != true || ttl == 0 {
		t.Fatalf("introspection of a new token: %s", in.body)
	}
	e.clock.Add(ttl - 400*time.Millisecond) // 0.1 s before exp
	if in := e.introspect(svc, "token", tok.str("access_token")); in.page["active"] != true {
		t.Errorf("0.1 s before exp %v: %s; want active", int64(exp), in.body)
	}
	e.clock.Add(200 * time.Millisecond) // 0.1 s past exp, 0.2 s before the exact expiry
	if in := e.introspect(svc, "token", tok.str("access_token")); in.page["active"] != false {
		t.Errorf("0.1 s past exp %v: %s; want active false", int64(exp), in.body)
	}
}
