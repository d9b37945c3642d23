package oauthd_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// idTokenHeader is the protected header of a JWS.
func idTokenHeader(t *testing.T, raw string) jose.Header {
	t.Helper()
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Header
}

// OIDC Core §3.1.3.7 item 6, §15.1: RS256 by default; ES256 and EdDSA per
// client; at_hash with the algorithm's hash.
func TestIDTokenAlgorithms(t *testing.T) {
	e := newOIDCEnv(t)
	for _, tc := range []struct {
		client, secret, redirect, alg string
	}{
		{oidcClientID, oidcClientSecret, oidcRedirectURI, "RS256"},
		{"oidc_client2", "oidc_secret2", "http://localhost:9001/callback", "ES256"},
		{"oidc_eddsa", "eddsa_secret", "http://localhost:9002/callback", "EdDSA"},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			u := e.authorizeExpectLogin(t, e.browser(), e.oidcURL("client_id", tc.client, "redirect_uri", tc.redirect), true)
			r := e.token(basic(tc.client, tc.secret), form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", tc.redirect))
			if r.status != http.StatusOK {
				t.Fatalf("token: %d %s", r.status, r.body)
			}
			h := idTokenHeader(t, r.str("id_token"))
			if h.Algorithm != tc.alg || h.ExtraHeaders["typ"] != "JWT" {
				t.Errorf("alg %s typ %v; want %s JWT", h.Algorithm, h.ExtraHeaders["typ"], tc.alg)
			}
			c := e.checkIDToken(t, r.str("id_token"), idTokenCheck{clientID: tc.client, nonce: oidcNonce, authTime: true})
			var sum []byte
			if tc.alg == "EdDSA" {
				s := sha512.Sum512([]byte(r.str("access_token")))
				sum = s[:32]
			} else {
				s := sha256.Sum256([]byte(r.str("access_token")))
				sum = s[:16]
			}
			if want := base64.RawURLEncoding.EncodeToString(sum); c["at_hash"] != want {
				t.Errorf("at_hash = %v; want %s", c["at_hash"], want)
			}
			if amr, _ := c["amr"].([]any); !slices.Contains(amr, any("pwd")) {
				t.Errorf("amr = %v; want pwd", c["amr"])
			}
		})
	}
}

// No ID token is ever signed with alg=none, nor for a client whose
// registered algorithm is not supported: such a client (registered in the
// store without Client.Validate) is refused unauthorized_client at the
// authorization endpoint, before anyone signs in, and at the token
// endpoint before its code is used up, with the reason in the log.
func TestIDTokenAlgNone(t *testing.T) {
	if err := oauthd.ValidateIDTokenAlg("none"); err == nil {
		t.Error("ValidateIDTokenAlg(none) = nil; want an error")
	}
	for _, alg := range []string{"", "RS256", "ES256", "EdDSA"} {
		if err := oauthd.ValidateIDTokenAlg(alg); err != nil {
			t.Errorf("ValidateIDTokenAlg(%q) = %v", alg, err)
		}
	}
	var logs lockedBuffer
	e := newOIDCEnv(t, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.ClientCacheTTL = -1 // the token endpoint sees each change at once
	})
	setAlg := func(alg string) {
		t.Helper()
		c, err := e.store.Client(t.Context(), oidcClientID)
		if err != nil {
			t.Fatal(err)
		}
		c.IDTokenSignedResponseAlg = alg
		if err := e.store.UpdateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	// A code issued while the registration was valid.
	u := e.authorizeExpectLogin(t, e.browser(), e.oidcURL(), true)
	code := u.Query().Get("code")
	setAlg("none")

	r := e.browser().get(e.oidcURL())
	if loc, _ := url.Parse(r.location()); r.status != http.StatusSeeOther || loc.Query().Get("error") != oauthd.ErrorUnauthorizedClient || loc.Query().Get("state") != "st-1" {
		t.Errorf("authorize for a client with alg none: %d %s; want a redirect with error=unauthorized_client and the state", r.status, r.location())
	}
	r = e.token(oidcAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", oidcRedirectURI))
	if r.status != http.StatusBadRequest || r.str("error") != oauthd.ErrorUnauthorizedClient || strings.Contains(r.body, "id_token\"") {
		t.Errorf("token for a client with alg none: %d %s; want 400 unauthorized_client and no ID token", r.status, r.body)
	}
	if !strings.Contains(logs.String(), `id_token_signed_response_alg \"none\"`) || !strings.Contains(logs.String(), "client_id="+oidcClientID) {
		t.Errorf("log says nothing of the registration's algorithm:\n%s", logs.String())
	}
	// The code was not used up: with the registration fixed, it redeems.
	setAlg("")
	r = e.token(oidcAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", oidcRedirectURI))
	if r.status != http.StatusOK || r.str("id_token") == "" {
		t.Errorf("token with the registration fixed: %d %s; want 200 with an ID token (the refused request left the code unused)", r.status, r.body)
	}
}

// A user whose ID is also a client_id gets no ID token (a sub never equals
// a client_id).
func TestSubjectNeverAClientID(t *testing.T) {
	e := newOIDCEnv(t)
	if err := e.store.CreateClient(t.Context(), &oauthd.Client{ID: e.user.ID}); err != nil {
		t.Fatal(err)
	}
	u := e.authorizeExpectLogin(t, e.browser(), e.oidcURL(), true)
	r := e.token(oidcAuth, form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", oidcRedirectURI))
	if r.status != http.StatusInternalServerError || r.str("id_token") != "" {
		t.Errorf("token: %d %s; want a server error", r.status, r.body)
	}
}

// No ID token without the openid scope (OIDC Core §3.1.2.1).
func TestNoIDTokenWithoutOpenID(t *testing.T) {
	e := newOIDCEnv(t)
	u := e.authorizeExpectLogin(t, e.browser(), e.oidcURL("scope", "email"), true)
	r := e.redeem(u.Query().Get("code"))
	if r.str("id_token") != "" {
		t.Errorf("ID token issued without openid: %s", r.body)
	}
	if ui := e.userinfo(t, r.str("access_token")); ui.status != http.StatusForbidden ||
		!strings.Contains(ui.header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
		t.Errorf("userinfo without openid: %d %q; want 403 insufficient_scope (RFC 6750 §3.1)", ui.status, ui.header.Get("WWW-Authenticate"))
	}
}

// The userinfo endpoint's errors follow RFC 6750 §3.
func TestUserinfoErrors(t *testing.T) {
	e := newOIDCEnv(t)
	tok, _ := e.codeFlow(t, e.browser(), true)
	at := tok.str("access_token")
	get := func(header string) *response {
		req, _ := http.NewRequest("GET", e.url(oauthd.UserinfoPath), nil)
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		return do(t, http.DefaultClient, req)
	}
	check := func(name string, r *response, status int, code string) {
		t.Helper()
		wa := r.header.Get("WWW-Authenticate")
		if r.status != status || !strings.HasPrefix(wa, "Bearer ") {
			t.Errorf("%s: %d %q; want %d with a Bearer challenge", name, r.status, wa, status)
		}
		if code == "" && strings.Contains(wa, "error=") {
			t.Errorf("%s: challenge %q has an error code; want none (RFC 6750 §3.1)", name, wa)
		}
		if code != "" && (!strings.Contains(wa, `error="`+code+`"`) || r.str("error") != code) {
			t.Errorf("%s: challenge %q body %s; want error %s", name, wa, r.body, code)
		}
		if strings.Contains(wa, at) || strings.Contains(r.body, at) {
			t.Errorf("%s: the token is echoed", name)
		}
	}
	check("RFC6750_3.1/no_token", get(""), 401, "")
	check("RFC6750_3.1/basic_scheme", get(basic("a", "b")), 401, "")
	check("RFC6750_3.1/unknown_token", get("Bearer "+oauthd.RandomToken()), 401, "invalid_token")
	check("RFC6750_3.1/refresh_token_as_access_token", get("Bearer "+tok.str("refresh_token")), 401, "invalid_token")
	req, _ := http.NewRequest("POST", e.url(oauthd.UserinfoPath), strings.NewReader(url.Values{"access_token": {at}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+at)
	check("RFC6750_2/two_methods", do(t, http.DefaultClient, req), 400, "invalid_request")
	if r := get("bearer " + at); r.status != http.StatusOK {
		t.Errorf("lower-case bearer scheme: %d %s", r.status, r.body)
	}
	e.tick(2 * time.Hour)
	check("RFC6750_3.1/expired", get("Bearer "+at), 401, "invalid_token")

	// A token outlives neither its client nor its user: as introspection
	// says of it (RFC 7662 §2.2), userinfo does not answer it.
	tok, _ = e.codeFlow(t, e.browser(), true)
	at = tok.str("access_token")
	if r := get("Bearer " + at); r.status != http.StatusOK {
		t.Fatalf("before the client is deleted: %d %s", r.status, r.body)
	}
	if err := e.store.DeleteClient(t.Context(), oidcClientID); err != nil {
		t.Fatal(err)
	}
	check("RFC6750_3.1/token_of_deleted_client", get("Bearer "+at), 401, "invalid_token")
}

// A client_credentials token names no person: userinfo refuses it
// (insufficient_scope, RFC 6750 §3.1) saying so, also when the client was
// granted openid.
func TestUserinfoClientCredentialsToken(t *testing.T) {
	e := newOIDCEnv(t)
	if err := e.store.CreateClient(t.Context(), &oauthd.Client{ID: "svc-oidc", SecretHash: hash(t, "svc-oidc-secret"),
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"openid", "read"}}); err != nil {
		t.Fatal(err)
	}
	tok := e.token(basic("svc-oidc", "svc-oidc-secret"), form("grant_type", "client_credentials", "scope", "openid read"))
	if tok.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", tok.status, tok.body)
	}
	ui := e.userinfo(t, tok.str("access_token"))
	if h := ui.header.Get("WWW-Authenticate"); ui.status != http.StatusForbidden || !strings.Contains(h, `error="insufficient_scope"`) ||
		!strings.Contains(h, "client_credentials") || strings.Contains(h, "not granted the openid scope") {
		t.Errorf("userinfo with a client_credentials token: %d %q; want 403 insufficient_scope saying it names no user", ui.status, h)
	}
}

// OIDC Core §3.2 and §3.3: the implicit and hybrid response types, with
// the fragment as default response mode, nonce, at_hash and c_hash.
func TestImplicitAndHybrid(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser()
	e.authorizeExpectLogin(t, b, e.oidcURL("scope", "openid email"), true) // sign in and remember consent
	for _, rt := range []string{"id_token", "id_token token", "code id_token", "code token", "code id_token token"} {
		t.Run(strings.ReplaceAll(rt, " ", "_"), func(t *testing.T) {
			r := b.get(e.oidcURL("response_type", rt, "scope", "openid email"))
			for strings.HasPrefix(r.location(), "/") {
				r = b.follow(e, r)
			}
			u, _ := url.Parse(r.location())
			if r.status != http.StatusSeeOther || u.Fragment == "" || u.RawQuery != "" {
				t.Fatalf("got %d %s; want a redirect with a fragment", r.status, r.location())
			}
			q := responseParams(u)
			if q.Get("state") != "st-1" || q.Get("iss") != e.issuer {
				t.Errorf("response %v; want state and iss", q)
			}
			has := func(s string) bool { return slices.Contains(strings.Fields(rt), s) }
			if (q.Get("code") != "") != has("code") || (q.Get("access_token") != "") != has("token") || (q.Get("id_token") != "") != has("id_token") {
				t.Fatalf("response %v does not match response_type %s", q, rt)
			}
			if has("token") && (q.Get("token_type") != "Bearer" || q.Get("expires_in") == "") {
				t.Errorf("token_type %q expires_in %q", q.Get("token_type"), q.Get("expires_in"))
			}
			if has("id_token") {
				c := e.checkIDToken(t, q.Get("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
				half := func(v string) string {
					s := sha256.Sum256([]byte(v))
					return base64.RawURLEncoding.EncodeToString(s[:16])
				}
				if has("token") && c["at_hash"] != half(q.Get("access_token")) {
					t.Errorf("at_hash = %v; want the access token's", c["at_hash"])
				}
				if has("code") && c["c_hash"] != half(q.Get("code")) {
					t.Errorf("c_hash = %v; want the code's", c["c_hash"])
				}
				// OIDC Core §5.4: without an access token the scope's claims
				// are in the ID token.
				if (c["email"] != nil) != (rt == "id_token") {
					t.Errorf("ID token email = %v for %s", c["email"], rt)
				}
			}
			if has("code") {
				tok := e.redeem(q.Get("code"))
				e.checkIDToken(t, tok.str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
			}
			if has("token") {
				if ui := e.userinfo(t, q.Get("access_token")); ui.status != http.StatusOK || ui.page["email"] != "admin@example.com" {
					t.Errorf("userinfo: %d %s", ui.status, ui.body)
				}
			}
		})
	}
	// OIDC Core §11: offline_access is ignored without a code in the
	// response; the scope returned is what was granted (RFC 6749 §4.2.2).
	t.Run("OIDC_Core_11/offline_access_ignored_without_code", func(t *testing.T) {
		r := b.get(e.oidcURL("response_type", "id_token token", "scope", "openid email offline_access"))
		for strings.HasPrefix(r.location(), "/") {
			r = b.follow(e, r)
		}
		u, _ := url.Parse(r.location())
		q := responseParams(u)
		if q.Get("access_token") == "" || q.Get("refresh_token") != "" || q.Get("scope") != "openid email" {
			t.Errorf("response %v; want an access token, no refresh token, scope \"openid email\"", q)
		}
		if in := e.introspect(oidcAuth, "token", q.Get("access_token")); in.page["scope"] != "openid email" {
			t.Errorf("introspection scope %v; want \"openid email\"", in.page["scope"])
		}
	})
	errCase := func(name, code string, kv ...string) {
		t.Run(name, func(t *testing.T) {
			r := b.get(e.oidcURL(kv...))
			u, _ := url.Parse(r.location())
			if q := responseParams(u); r.status != http.StatusSeeOther || q.Get("error") != code || q.Get("state") != "st-1" {
				t.Errorf("got %d %s; want error %s", r.status, r.location(), code)
			}
		})
	}
	errCase("OIDC_Core_3.2.2.1/nonce_required", "invalid_request", "response_type", "id_token token", "nonce", "")
	errCase("OIDC_Core_3.3.2.11/nonce_required_hybrid", "invalid_request", "response_type", "code id_token", "nonce", "")
	errCase("OIDC_Core_3.2.2.1/openid_required", "invalid_request", "response_type", "id_token", "scope", "email")
	errCase("OAuthMultipleResponseTypes_5/no_query_mode", "invalid_request", "response_type", "id_token", "response_mode", "query")
	errCase("OIDC_Registration_2/type_not_registered", "unauthorized_client", "client_id", "oidc_client2", "redirect_uri", "http://localhost:9001/callback", "response_type", "code id_token")
}

// A client without the refresh_token grant gets no refresh token, so the
// scope granted leaves offline_access out (OIDC Core §11, RFC 6749 §5.1):
// the token response and introspection do not claim offline access.
func TestOfflineAccessWithoutRefreshGrant(t *testing.T) {
	e := newOIDCEnv(t)
	c, err := e.store.Client(t.Context(), oidcClientID)
	if err != nil {
		t.Fatal(err)
	}
	c.GrantTypes = []string{oauthd.GrantAuthorizationCode}
	c.ResponseTypes = nil
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid email offline_access")
	if tok.str("refresh_token") != "" || tok.str("scope") != "openid email" {
		t.Errorf("token response %s; want no refresh token and scope \"openid email\"", tok.body)
	}
	if in := e.introspect(oidcAuth, "token", tok.str("access_token")); in.page["scope"] != "openid email" {
		t.Errorf("introspection scope %v; want \"openid email\"", in.page["scope"])
	}
}

// The grants that issue no refresh token leave offline_access out of the
// scope granted: client_credentials always (RFC 6749 §4.4.3), the password
// grant for a client without the refresh_token grant.
func TestOfflineAccessWithoutRefreshToken(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.EnablePasswordGrant = true })
	for _, c := range []*oauthd.Client{
		{ID: "svc", SecretHash: hash(t, "svc-secret"), GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read", "offline_access"}},
		{ID: "pw", SecretHash: hash(t, "pw-secret"), GrantTypes: []string{oauthd.GrantPassword}, Scopes: []string{"email", "offline_access"}},
	} {
		if err := e.store.CreateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name, auth string
		form       url.Values
		want       string
	}{
		{"RFC6749_4.4.3/client_credentials", basic("svc", "svc-secret"), form("grant_type", "client_credentials", "scope", "read offline_access"), "read"},
		{"RFC6749_4.4.3/client_credentials_default_scope", basic("svc", "svc-secret"), form("grant_type", "client_credentials"), "read"},
		{"RFC6749_5.1/password_without_refresh_grant", basic("pw", "pw-secret"), form("grant_type", "password", "username", "admin", "password", "admin", "scope", "email offline_access"), "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.token(tc.auth, tc.form)
			if r.status != http.StatusOK || r.str("scope") != tc.want || r.str("refresh_token") != "" {
				t.Errorf("%d %s; want scope %q and no refresh token", r.status, r.body, tc.want)
			}
		})
	}
}

// The implicit and hybrid types are off unless Config enables them.
func TestHybridOffByDefault(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.EnableImplicitGrant = false })
	r := e.browser().get(e.oidcURL("response_type", "code id_token"))
	u, _ := url.Parse(r.location())
	if q := responseParams(u); q.Get("error") != "unsupported_response_type" {
		t.Errorf("code id_token with the flows off: %s; want unsupported_response_type", r.location())
	}
	m := e.metadata(t)
	if rts, _ := m["response_types_supported"].([]any); len(rts) != 1 || rts[0] != "code" {
		t.Errorf("response_types_supported = %v; want [code]", m["response_types_supported"])
	}
}

// OIDC Core §3.1.2.6: prompt=none errors.
func TestPromptNoneErrors(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser()
	// Signed in, but consent not remembered.
	r := b.login(e, b.follow(e, b.get(e.oidcURL())), "admin", "admin")
	if r.status != http.StatusSeeOther {
		t.Fatal(r.body)
	}
	e.authError(t, b.get(e.oidcURL("prompt", "none")), "consent_required")
	e.authorizeExpectLogin(t, b, e.oidcURL(), false)
	e.authError(t, b.get(e.oidcURL("prompt", "none", "login_hint", "someone-else")), "interaction_required")
	// login_hint may name the signed-in user by email address.
	r = b.get(e.oidcURL("prompt", "none", "login_hint", "admin@example.com"))
	if u, _ := url.Parse(r.location()); u.Query().Get("code") == "" {
		t.Errorf("prompt=none with the signed-in user's email as login_hint: %s; want a code", r.location())
	}
}

// id_token_hint: a token of another client, or not a token of this
// server, is invalid_request; the hinted user must be the one signed in.
func TestIDTokenHint(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser()
	tok, _ := e.codeFlow(t, b, true)
	hint := tok.str("id_token")
	e.authError(t, b.get(e.oidcURL("id_token_hint", hint[:len(hint)-4]+"AAAA")), "invalid_request")
	e.authError(t, b.get(e.oidcURL("id_token_hint", "not.a.jwt")), "invalid_request")
	r := b.get(e.oidcURL("client_id", "oidc_client2", "redirect_uri", "http://localhost:9001/callback", "id_token_hint", hint))
	if u, _ := url.Parse(r.location()); u.Query().Get("error") != "invalid_request" {
		t.Errorf("hint of another client: %s; want invalid_request", r.location())
	}
	// Another user signed in: the hinted user must log in again.
	other := &oauthd.User{ID: "3f2c7e1a-0000-4000-8000-000000000002", Username: "bob", PasswordHash: hash(t, "bob")}
	if err := e.store.CreateUser(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	b2 := e.browser()
	b2.login(e, b2.follow(e, b2.get(e.oidcURL())), "bob", "bob")
	e.authError(t, b2.get(e.oidcURL("prompt", "none", "id_token_hint", hint)), "login_required")
	r = b2.follow(e, b2.get(e.oidcURL("id_token_hint", hint)))
	if r.pageKind() != "login" || r.str("Username") != "" {
		t.Errorf("hint for admin while bob is signed in: %s %s; want the login page, admin's name not filled in", r.pageKind(), r.body)
	}
	// Signing in as bob again, for a request that names admin, ends the
	// request with login_required (OIDC Core §3.1.2.1), not the login page
	// over and over.
	e.authError(t, b2.follow(e, b2.login(e, r, "bob", "bob")), "login_required")
	// The hint does not tell a browser without a session whose token it
	// is (OIDC Core §5.4: the username is a profile claim).
	b3 := e.browser()
	if r = b3.follow(e, b3.get(e.oidcURL("id_token_hint", hint))); r.pageKind() != "login" || r.str("Username") != "" {
		t.Errorf("hint in a browser without a session: %s %s; want an empty login page", r.pageKind(), r.body)
	}
	// The browser signed in as the hinted user, asked to sign in again,
	// has its name filled in.
	if r = b.follow(e, b.get(e.oidcURL("id_token_hint", hint, "prompt", "login"))); r.pageKind() != "login" || r.str("Username") != "admin" {
		t.Errorf("hint with prompt=login in admin's browser: %s %s; want the login page for admin", r.pageKind(), r.body)
	}
	// An expired hint still identifies the user (it grants nothing).
	e.tick(3 * time.Hour)
	r = b.get(e.oidcURL("prompt", "none", "id_token_hint", hint))
	if u, _ := url.Parse(r.location()); u.Query().Get("code") == "" {
		t.Errorf("expired hint: %s; want a code", r.location())
	}
}

// OIDC Core §3.1.2.2, §5.5.1: a claims request for sub with a value is
// answered positively only for that user, signed in or signing in; an
// essential acr with values that cannot be met is a failed authentication
// (§5.5.1.1).
func TestClaimsParameterAuthenticationRequirements(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser()
	tok, _ := e.codeFlow(t, b, true) // admin signed in, consent remembered
	hint := tok.str("id_token")
	sub := func(v string) string { return `{"id_token":{"sub":{"value":` + v + `}}}` }
	// Another user's sub: not this session's user.
	e.authError(t, b.get(e.oidcURL("prompt", "none", "claims", sub(`"someone-else"`))), "login_required")
	r := b.follow(e, b.get(e.oidcURL("claims", sub(`"someone-else"`))))
	if r.pageKind() != "login" {
		t.Errorf("sub of another user, interactive: %s; want the login page", r.pageKind())
	}
	// The signed-in user's own sub: a code.
	r = b.get(e.oidcURL("prompt", "none", "claims", sub(`"`+e.user.ID+`"`)))
	if u, _ := url.Parse(r.location()); u.Query().Get("code") == "" {
		t.Errorf("the signed-in user's sub: %s; want a code", r.location())
	}
	e.authError(t, b.get(e.oidcURL("claims", sub(`42`))), "invalid_request")
	e.authError(t, b.get(e.oidcURL("claims", sub(`"someone-else"`), "id_token_hint", hint)), "invalid_request")
	// acr: essential with values cannot be met; voluntary, or without
	// values, is no requirement.
	e.authError(t, b.get(e.oidcURL("prompt", "none", "claims", `{"id_token":{"acr":{"essential":true,"values":["urn:mace:incommon:iap:silver"]}}}`)), "access_denied")
	for _, c := range []string{`{"id_token":{"acr":{"values":["urn:mace:incommon:iap:silver"]}}}`, `{"id_token":{"acr":{"essential":true}}}`} {
		r = b.get(e.oidcURL("prompt", "none", "claims", c))
		if u, _ := url.Parse(r.location()); u.Query().Get("code") == "" {
			t.Errorf("claims %s: %s; want a code", c, r.location())
		}
	}
}

// OIDC Core §3.1.2.1: scope values that are not understood are ignored in
// an OpenID Connect request (the token response names the scope granted);
// an unknown scope in a plain OAuth request is still invalid_scope (RFC
// 6749 §3.3).
func TestOIDCUnknownScopeIgnored(t *testing.T) {
	e := newOIDCEnv(t)
	tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid email not_a_scope")
	if got := tok.str("scope"); got != "openid email" {
		t.Errorf("granted scope %q; want %q", got, "openid email")
	}
	r := e.browser().get(e.authorizeURL("scope", "email not_a_scope"))
	if u, _ := url.Parse(r.location()); u.Query().Get("error") != "invalid_scope" {
		t.Errorf("unknown scope without openid: %s; want invalid_scope", r.location())
	}
}

// The claims request parameter (OIDC Core §5.5): essential claims in the
// ID token and from userinfo; claims outside the client's scopes are
// dropped; a malformed parameter is invalid_request.
func TestClaimsParameter(t *testing.T) {
	e := newOIDCEnv(t)
	tok, c := e.codeFlow(t, e.browser(), true, "claims", `{"id_token":{"email":{"essential":true},"email_verified":null,"iss":null},"userinfo":{"phone_number":null}}`)
	if c["email"] != "admin@example.com" || c["email_verified"] != true || c["iss"] != e.issuer {
		t.Errorf("ID token %v; want email, email_verified and the real iss", c)
	}
	ui := e.userinfo(t, tok.str("access_token"))
	if ui.page["phone_number"] == nil || ui.page["email"] != nil {
		t.Errorf("userinfo %s; want phone_number only", ui.body)
	}
	e.authError(t, e.browser().get(e.oidcURL("claims", `{"userinfo":[]}`)), "invalid_request")
	e.authError(t, e.browser().get(e.oidcURL("claims", `not json`)), "invalid_request")
	// OIDC Core §5.5.2: a claim asked for in one language is that variant
	// alone.
	tok, c = e.codeFlow(t, e.browser(), true, "claims", `{"id_token":{"name#fr":null},"userinfo":{"name#fr":null,"family_name#de":null}}`)
	ui = e.userinfo(t, tok.str("access_token"))
	if c["name#fr"] != "Utilisateur Admin" || c["name"] != nil || ui.page["name#fr"] != "Utilisateur Admin" || ui.page["name"] != nil || ui.page["family_name#de"] != nil {
		t.Errorf("ID token %v, userinfo %s; want name#fr alone", c, ui.body)
	}
	// The seed client may only ask for email: name is dropped.
	e2 := newOIDCEnv(t)
	c2, _ := e2.store.Client(t.Context(), oidcClientID)
	c2.Scopes = []string{"openid", "email"}
	e2.store.UpdateClient(t.Context(), c2)
	_, idt := e2.codeFlow(t, e2.browser(), true, "claims", `{"id_token":{"name":{"essential":true}}}`)
	if idt["name"] != nil {
		t.Errorf("ID token has name though the client may not ask for profile")
	}
}

// The discovery documents (OIDC Discovery §3, RFC 8414 §2): one document
// at both paths, issuer exactly Config.Issuer whatever the Host, and what
// Config enables.
func TestDiscovery(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.AllowPlainPKCE = true; c.UILocales = []string{"en", "fr"} })
	get := func(path string) *response {
		req, _ := http.NewRequest("GET", e.url(path), nil)
		req.Host = "evil.example"
		req.Header.Set("X-Forwarded-Host", "evil.example")
		req.Header.Set("X-Forwarded-Proto", "https")
		return do(t, http.DefaultClient, req)
	}
	oidc, oauth := get(oauthd.OIDCDiscoveryPath), get(oauthd.OAuthMetadataPath)
	if oidc.status != 200 || oauth.status != 200 || oidc.body != oauth.body {
		t.Fatalf("the two documents differ:\n%s\n%s", oidc.body, oauth.body)
	}
	if strings.Contains(oidc.body, "evil.example") || oidc.page["issuer"] != e.issuer {
		t.Errorf("issuer derived from the request: %s", oidc.body)
	}
	if cc := oidc.header.Get("Cache-Control"); !strings.HasPrefix(cc, "public, max-age=") {
		t.Errorf("Cache-Control %q; want public with max-age", cc)
	}
	want := map[string]any{
		"code_challenge_methods_supported":               []any{"S256", "plain"},
		"token_endpoint_auth_methods_supported":          []any{"client_secret_basic", "client_secret_post", "none"},
		"response_modes_supported":                       []any{"query", "fragment", "form_post"},
		"subject_types_supported":                        []any{"public"},
		"id_token_signing_alg_values_supported":          []any{"RS256", "ES256", "EdDSA"},
		"ui_locales_supported":                           []any{"en", "fr"},
		"introspection_endpoint":                         e.issuer + oauthd.IntrospectPath,
		"revocation_endpoint":                            e.issuer + oauthd.RevokePath,
		"authorization_response_iss_parameter_supported": true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
		"claims_parameter_supported":                     true,
		"grant_types_supported":                          []any{"authorization_code", "refresh_token", "client_credentials", "implicit"},
		"response_types_supported":                       []any{"code", "token", "id_token", "id_token token", "code id_token", "code token", "code id_token token"},
		"prompt_values_supported":                        []any{"none", "login", "consent", "select_account"},
	}
	for k, v := range want {
		g, _ := json.Marshal(oidc.page[k])
		w, _ := json.Marshal(v)
		if !bytes.Equal(g, w) {
			t.Errorf("%s = %s; want %s", k, g, w)
		}
	}
	plain := newOIDCEnv(t, func(c *oauthd.Config) { c.EnableImplicitGrant = false })
	m := plain.metadata(t)
	if g, _ := json.Marshal(m["code_challenge_methods_supported"]); string(g) != `["S256"]` {
		t.Errorf("code_challenge_methods_supported = %s; want only S256 by default", g)
	}
	if _, ok := m["ui_locales_supported"]; ok {
		t.Errorf("ui_locales_supported without Config.UILocales")
	}
	// OIDC Discovery §3: c_hash comes only with hybrid responses.
	if claims, _ := json.Marshal(m["claims_supported"]); strings.Contains(string(claims), `"c_hash"`) {
		t.Errorf("claims_supported = %s; c_hash without a hybrid response type", claims)
	}
	if claims, _ := json.Marshal(oidc.page["claims_supported"]); !strings.Contains(string(claims), `"c_hash"`) {
		t.Errorf("claims_supported = %s; want c_hash with the hybrid response types", claims)
	}
	// Every prompt value advertised is accepted (an authorization request
	// with it reaches the login page), and create, which is not, is
	// refused.
	for _, v := range m["prompt_values_supported"].([]any) {
		r := plain.browser().get(plain.authorizeURL("client_id", oidcClientID, "redirect_uri", oidcRedirectURI, "scope", "openid", "nonce", "n", "prompt", v.(string)))
		if v == "none" {
			if loc := r.header.Get("Location"); !strings.Contains(loc, "error=login_required") {
				t.Errorf("prompt=none: %d %s; want login_required", r.status, loc)
			}
			continue
		}
		if loc := r.header.Get("Location"); r.status != http.StatusSeeOther || !strings.HasPrefix(loc, oauthd.LoginPath) {
			t.Errorf("prompt=%s: %d %s; want a redirect to the login page", v, r.status, loc)
		}
	}
	if r := plain.browser().get(plain.authorizeURL("client_id", oidcClientID, "redirect_uri", oidcRedirectURI, "scope", "openid", "nonce", "n", "prompt", "create")); !strings.Contains(r.header.Get("Location"), "error=invalid_request") {
		t.Errorf("prompt=create: %d %s; want invalid_request", r.status, r.header.Get("Location"))
	}
}

// The JWKS never holds a private member (RFC 7517 §9.2), and every key is
// usable for signature checks.
func TestJWKSHasNoPrivateMembers(t *testing.T) {
	e := newOIDCEnv(t)
	if _, err := e.p.Keys().Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	r := e.browser().get(e.url(oauthd.JWKSPath))
	if !strings.HasPrefix(r.header.Get("Cache-Control"), "public") {
		t.Errorf("JWKS Cache-Control %q", r.header.Get("Cache-Control"))
	}
	var raw struct{ Keys []map[string]any }
	if err := json.Unmarshal([]byte(r.body), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 6 {
		t.Errorf("JWKS has %d keys; want 6 (3 signing, 3 next)", len(raw.Keys))
	}
	kty := map[string]bool{}
	for _, k := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"} {
			if _, ok := k[private]; ok {
				t.Errorf("JWKS key %v has the private member %q", k["kid"], private)
			}
		}
		if k["use"] != "sig" || k["kid"] == "" || k["alg"] == "" {
			t.Errorf("JWKS key %v lacks use, kid or alg", k)
		}
		kty[k["kty"].(string)] = true
	}
	if !kty["RSA"] || !kty["EC"] || !kty["OKP"] {
		t.Errorf("key types %v; want RSA, EC and OKP", kty)
	}
}

// Key rotation: a token signed before a rotation still verifies against
// the JWKS after it; the next key is published before it signs; a retired
// key leaves the JWKS only after its tokens expired.
func TestKeyRotation(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.KeyRotationPeriod = 24 * time.Hour })
	tok, _ := e.codeFlow(t, e.browser(), true)
	before := tok.str("id_token")
	oldKid := idTokenHeader(t, before).KeyID

	// Manual rotation: the new key is published but does not sign yet.
	rotated, err := e.p.Keys().Rotate(t.Context(), oauthd.AlgRS256)
	if err != nil || len(rotated) != 1 || rotated[0].State != oauthd.KeyNext {
		t.Fatalf("Rotate = %+v, %v; want one next key", rotated, err)
	}
	newKid := rotated[0].ID
	if len(e.jwks(t).Key(newKid)) != 1 {
		t.Fatalf("the next key is not published")
	}
	// It signs only after the longest key refresh interval any node may
	// have (5 minutes) and the JWKS's max-age (5 minutes): the rotation
	// may come from the CLI, which does not know the servers' interval.
	if lead := rotated[0].NotBefore.Sub(e.clock.Now()); lead < 10*time.Minute {
		t.Errorf("the rotated key signs %s after the rotation; want at least 10m", lead)
	}
	tok, _ = e.codeFlow(t, e.browser(), true)
	if kid := idTokenHeader(t, tok.str("id_token")).KeyID; kid != oldKid {
		t.Errorf("signed with %s before the next key's NotBefore; want %s", kid, oldKid)
	}
	e.tick(10*time.Minute + time.Second)
	tok, _ = e.codeFlow(t, e.browser(), true)
	if kid := idTokenHeader(t, tok.str("id_token")).KeyID; kid != newKid {
		t.Errorf("signed with %s after the rotation; want the new key %s", kid, newKid)
	}
	// The token signed before the rotation still verifies.
	e.checkIDToken(t, before, idTokenCheck{nonce: oidcNonce, authTime: true})

	// Scheduled rotation: a quarter period before the new key retires its
	// successor appears, published before it signs.
	e.tick(18*time.Hour + 10*time.Minute)
	infos, err := e.p.Keys().List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var next []oauthd.KeyInfo
	for _, k := range infos {
		if k.Algorithm == oauthd.AlgRS256 && k.State == oauthd.KeyNext {
			next = append(next, k)
		}
	}
	if len(next) != 1 {
		t.Fatalf("RS256 keys %+v; want one scheduled next key", infos)
	}
	e.tick(6 * time.Hour)
	tok, _ = e.codeFlow(t, e.browser(), true)
	if kid := idTokenHeader(t, tok.str("id_token")).KeyID; kid != next[0].ID {
		t.Errorf("signed with %s; want the scheduled key %s", kid, next[0].ID)
	}
	// The first key kept its schedule (published until its own retirement
	// plus the ID token lifetime), then leaves the JWKS.
	if len(e.jwks(t).Key(oldKid)) != 1 {
		t.Errorf("the first key left the JWKS before its schedule ended")
	}
	e.tick(time.Hour)
	if len(e.jwks(t).Key(oldKid)) != 0 {
		t.Errorf("the first key is still published long after its tokens expired")
	}
}

// Two nodes sharing one store see the same keys: a token signed by one
// verifies against the other's JWKS, and the scheduled successor is
// created once.
func TestKeysSharedByNodes(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.KeyRotationPeriod = 4 * time.Hour })
	node2, err := oauthd.New(oauthd.Config{Issuer: e.issuer, Pages: fakePages{}, Now: e.clock.Now, KeyRotationPeriod: 4 * time.Hour}, e.store)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := e.codeFlow(t, e.browser(), true)
	h, err := node2.ParseIDTokenHint(t.Context(), tok.str("id_token"))
	if err != nil || h.Subject != e.user.ID {
		t.Fatalf("node 2 cannot verify node 1's ID token: %v", err)
	}
	e.tick(3*time.Hour + time.Minute)
	if err := e.p.Keys().Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := node2.Keys().Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	keys, _ := e.store.SigningKeys(t.Context())
	if len(keys) != 6 {
		t.Errorf("%d stored keys after both nodes scheduled the successors; want 6", len(keys))
	}
}

// Private keys are encrypted at rest with Config.KeyEncryptionKey; a node
// without the key, or with another, refuses to start.
func TestKeyEncryptionAtRest(t *testing.T) {
	kek := bytes.Repeat([]byte{7}, 32)
	store := memstore.New()
	cfg := oauthd.Config{Issuer: "http://localhost:8000", Pages: fakePages{}, KeyEncryptionKey: kek}
	p, err := oauthd.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Keys().Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := store.SigningKeys(ctx)
	for _, k := range keys {
		if bytes.Contains(k.Private, []byte(`"d"`)) || bytes.HasPrefix(k.Private, []byte("{")) {
			t.Errorf("key %s is stored in clear", k.ID)
		}
	}
	infos, _ := p.Keys().List(ctx)
	for _, k := range infos {
		if !k.Encrypted {
			t.Errorf("KeyInfo %s: Encrypted = false", k.ID)
		}
	}
	for name, key := range map[string][]byte{"no key": nil, "wrong key": bytes.Repeat([]byte{8}, 32)} {
		cfg.KeyEncryptionKey = key
		p2, err := oauthd.New(cfg, store)
		if err != nil {
			t.Fatal(err)
		}
		if err := p2.Keys().Ensure(ctx); err == nil {
			t.Errorf("%s: Ensure = nil; want an error", name)
		}
	}
	cfg.KeyEncryptionKey = []byte("short")
	if _, err := oauthd.New(cfg, store); err == nil {
		t.Error("a 5-byte KeyEncryptionKey was accepted")
	}
}

// RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2, §3).
func TestRPInitiatedLogout(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser()
	tok, _ := e.codeFlow(t, b, true)
	hint := tok.str("id_token")
	logoutURL := func(kv ...string) string {
		q := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			q.Set(kv[i], kv[i+1])
		}
		return e.url(oauthd.LogoutPath + "?" + q.Encode())
	}
	for _, tc := range []struct {
		name string
		kv   []string
		code string // the page's error code, when checked
	}{
		{"unregistered_uri", []string{"id_token_hint", hint, "post_logout_redirect_uri", "https://evil.example/"}, oauthd.PageInvalidRedirectURI},
		// RP-Initiated Logout 1.0 §2: with post_logout_redirect_uri,
		// client_id or id_token_hint MUST be given: the request is
		// invalid, not the URI unregistered.
		{"RPLogout_2/uri_without_client", []string{"post_logout_redirect_uri", oidcLogoutURI}, oauthd.PageBadRequest},
		{"bad_hint", []string{"id_token_hint", hint + "x", "post_logout_redirect_uri", oidcLogoutURI}, ""},
		{"client_not_audience", []string{"id_token_hint", hint, "client_id", "oidc_client2"}, ""},
		{"redirect_uri_not_logout_uri", []string{"client_id", oidcClientID, "post_logout_redirect_uri", oidcRedirectURI}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.get(logoutURL(tc.kv...))
			if r.status != http.StatusBadRequest || r.location() != "" || r.pageKind() != "error" {
				t.Errorf("got %d %q %s; want an error page and no redirect", r.status, r.location(), r.pageKind())
			}
			if tc.code != "" && r.str("Code") != tc.code {
				t.Errorf("error page code %q; want %s", r.str("Code"), tc.code)
			}
		})
	}
	// The RP's logout form POSTed from its own site carries none of this
	// site's SameSite=Lax cookies: a page of this site posts it again,
	// carrying them, and the signed-in person is asked, not sent back
	// "signed out" with the session alive (RP-Initiated Logout §2: GET
	// and POST).
	req, _ := http.NewRequest("POST", e.url(oauthd.LogoutPath), strings.NewReader(url.Values{"client_id": {oidcClientID},
		"post_logout_redirect_uri": {oidcLogoutURI}, "state": {"cross"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r := do(t, noRedirects, req)
	if r.location() != "" || r.header.Get("Set-Cookie") != "" || r.str("Action") != e.url(oauthd.LogoutPath) {
		t.Fatalf("cross-site logout POST: %d %q Set-Cookie %q %s; want the relay page to the logout endpoint, no cookie", r.status, r.location(), r.header.Get("Set-Cookie"), r.body)
	}
	if r = b.relay(r); r.pageKind() != "logout" || r.page["SignedOut"] != false {
		t.Fatalf("the relayed POST in the signed-in browser: %d %s; want the confirmation page", r.status, r.body)
	}
	// An unknown parameter that is not text does not stop the relay (it is
	// ignored, RFC 6749 §3.1, and left out of the relay page's form).
	req, _ = http.NewRequest("POST", e.url(oauthd.LogoutPath), strings.NewReader(url.Values{"client_id": {oidcClientID},
		"post_logout_redirect_uri": {oidcLogoutURI}, "state": {"cross"}}.Encode()+"&utm=%ff"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = do(t, noRedirects, req)
	if r.location() != "" || r.header.Get("Set-Cookie") != "" || r.str("Action") != e.url(oauthd.LogoutPath) || strings.Contains(r.body, "utm") {
		t.Fatalf("cross-site logout POST with an unknown parameter that is not text: %d %q Set-Cookie %q %s; want the relay page without it", r.status, r.location(), r.header.Get("Set-Cookie"), r.body)
	}
	if r = b.relay(r); r.pageKind() != "logout" || r.page["SignedOut"] != false {
		t.Fatalf("the relayed POST in the signed-in browser: %d %s; want the confirmation page", r.status, r.body)
	}
	r = b.get(logoutURL("id_token_hint", hint, "post_logout_redirect_uri", oidcLogoutURI, "state", "bye"))
	if r.pageKind() != "logout" || r.page["SignedOut"] != false {
		t.Fatalf("want the confirmation page, got %d %s", r.status, r.body)
	}
	if c, _ := r.page["Client"].(map[string]any); c["client_id"] != oidcClientID {
		t.Errorf("confirmation page client %v; want %s", r.page["Client"], oidcClientID)
	}
	f := url.Values{"csrf": {r.str("CSRF")}, "action": {"logout"}}
	for _, h := range r.page["Hidden"].([]any) {
		m := h.(map[string]any)
		f.Set(m["Name"].(string), m["Value"].(string))
	}
	tampered := url.Values{}
	for k, v := range f {
		tampered[k] = v
	}
	tampered.Set("state", "other")
	if r2 := b.post(e.url(oauthd.LogoutPath), tampered); r2.status != http.StatusForbidden {
		t.Errorf("tampered confirmation: %d; want 403", r2.status)
	}
	// "Stay signed in" keeps the session and goes back to the
	// application's home page (client_uri), or to this site's when it
	// registered none.
	stay := url.Values{}
	for k, v := range f {
		stay[k] = v
	}
	stay.Set("action", "cancel")
	if r2 := b.post(e.url(oauthd.LogoutPath), stay); r2.status != http.StatusSeeOther || r2.location() != "/" {
		t.Errorf("stay signed in, no client_uri: %d %q; want 303 to /", r2.status, r2.location())
	}
	c, err := e.store.Client(t.Context(), oidcClientID)
	if err != nil {
		t.Fatal(err)
	}
	c.ClientURI = "https://rp.example/home"
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if r2 := b.post(e.url(oauthd.LogoutPath), stay); r2.status != http.StatusSeeOther || r2.location() != "https://rp.example/home" {
		t.Errorf("stay signed in: %d %q; want 303 to the client_uri", r2.status, r2.location())
	}
	// A client_uri a program stored without checking it is not followed.
	for _, bad := range []string{"//evil.example/", "https://rp.example@evil.example/", "javascript:alert(1)", "/relative"} {
		c.ClientURI = bad
		if err := e.store.UpdateClient(t.Context(), c); err != nil {
			t.Fatal(err)
		}
		if r2 := b.post(e.url(oauthd.LogoutPath), stay); r2.status != http.StatusSeeOther || r2.location() != "/" {
			t.Errorf("stay signed in, client_uri %q: %d %q; want 303 to /", bad, r2.status, r2.location())
		}
	}
	e.codeFlow(t, b, false) // still signed in
	r = b.post(e.url(oauthd.LogoutPath), f)
	if r.status != http.StatusSeeOther || r.location() != oidcLogoutURI+"?state=bye" {
		t.Fatalf("confirmation: %d %q; want a redirect to %s?state=bye", r.status, r.location(), oidcLogoutURI)
	}
	// The session ended.
	e.authError(t, b.get(e.oidcURL("prompt", "none")), "login_required")
	// Signed out already: straight back to the client.
	r = b.get(logoutURL("client_id", oidcClientID, "post_logout_redirect_uri", oidcLogoutURI))
	if r.status != http.StatusSeeOther || r.location() != oidcLogoutURI {
		t.Errorf("logout while signed out: %d %q; want a redirect to %s", r.status, r.location(), oidcLogoutURI)
	}
	// The plain sign-out page still works.
	e.authorizeExpectLogin(t, b, e.oidcURL(), true)
	r = b.get(e.url(oauthd.LogoutPath))
	r = b.post(e.url(oauthd.LogoutPath), url.Values{"csrf": {r.str("CSRF")}, "action": {"logout"}})
	// Post/redirect/get: Back or a reload of the signed-out page sends
	// no form again.
	if r.status != http.StatusSeeOther || r.location() != oauthd.LogoutPath {
		t.Fatalf("plain sign-out: %d %q; want 303 to %s", r.status, r.location(), oauthd.LogoutPath)
	}
	if r = b.follow(e, r); r.pageKind() != "logout" || r.page["SignedOut"] != true {
		t.Errorf("plain sign-out: %d %s", r.status, r.body)
	}
}

// A request without scope gets the client's default scope (RFC 6749 §3.3);
// when that has openid, it is an OpenID Connect request, which must send
// redirect_uri (OIDC Core §3.1.2.1) even though the client has only one.
func TestDefaultOpenIDScopeNeedsRedirectURI(t *testing.T) {
	e := newOIDCEnv(t)
	for _, rt := range []string{"code", "code id_token", "id_token"} {
		r := e.browser().get(e.oidcURL("redirect_uri", "", "scope", "", "response_type", rt))
		if r.status != http.StatusBadRequest || r.location() != "" || r.str("Code") != oauthd.PageInvalidRedirectURI {
			t.Errorf("%s without scope and redirect_uri: %d location=%q code=%s; want the error page", rt, r.status, r.location(), r.str("Code"))
		}
	}
}

// A refresh asking for a narrower scope (RFC 6749 §6) narrows what the
// claims request releases too: the claims of the scopes left out are
// neither in the new ID token nor at userinfo with the new access token.
func TestRefreshNarrowingWithholdsClaims(t *testing.T) {
	e := newOIDCEnv(t)
	b := e.browser()
	tok, idc := e.codeFlow(t, b, true, "scope", "openid email profile", "claims", `{"id_token":{"email":null},"userinfo":{"email":null}}`)
	if idc["email"] == nil {
		t.Fatalf("ID token %v; want the email the claims request asks for", idc)
	}
	rt := tok.str("refresh_token")
	if rt == "" {
		t.Fatalf("no refresh token: %s", tok.body)
	}
	r := e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", rt, "scope", "openid profile"))
	if r.status != 200 {
		t.Fatalf("narrowing refresh: %d %s", r.status, r.body)
	}
	if c := e.checkIDToken(t, r.str("id_token"), idTokenCheck{authTime: true}); c["email"] != nil {
		t.Errorf("ID token after narrowing to openid profile: email %v; want none", c["email"])
	}
	if u := e.userinfo(t, r.str("access_token")); u.page["email"] != nil || u.page["name"] == nil {
		t.Errorf("userinfo after narrowing to openid profile: %s; want name, no email", u.body)
	}
	// The refresh token keeps the grant: a later refresh with the whole
	// scope releases the email again.
	r = e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	if u := e.userinfo(t, r.str("access_token")); u.page["email"] == nil {
		t.Errorf("userinfo after a refresh with the grant's scope: %s; want the email", u.body)
	}
}

// RFC 6750 §3.1: a token of a user or client that is gone is
// invalid_token (401), whatever its scope: insufficient_scope (403) is for
// a live token that lacks it, and would tell the caller the token is good.
func TestUserinfoTokenOfDeletedUserOrClientIsInvalid(t *testing.T) {
	e := newEnv(t)
	get := func(at string) *response {
		req, _ := http.NewRequest("GET", e.url(oauthd.UserinfoPath), nil)
		req.Header.Set("Authorization", "Bearer "+at)
		return do(t, http.DefaultClient, req)
	}
	want := func(name string, r *response, status int, code string) {
		t.Helper()
		if wa := r.header.Get("WWW-Authenticate"); r.status != status || !strings.Contains(wa, `error="`+code+`"`) {
			t.Errorf("%s: %d %q; want %d %s", name, r.status, wa, status, code)
		}
	}
	// A user's token without openid (the seed's scope, email).
	tok := e.token(basic(clientID, clientSecret), form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
	if tok.status != http.StatusOK {
		t.Fatalf("code exchange: %d %s", tok.status, tok.body)
	}
	at := tok.str("access_token")
	want("RFC6750_3.1/live_token_without_openid", get(at), 403, "insufficient_scope")
	if err := e.store.DeleteUser(t.Context(), e.user.ID); err != nil {
		t.Fatal(err)
	}
	want("RFC6750_3.1/token_without_openid_of_deleted_user", get(at), 401, "invalid_token")

	// A client's own token (client_credentials).
	tok = e.token(basic("service", "service-secret"), form("grant_type", "client_credentials"))
	if tok.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", tok.status, tok.body)
	}
	at = tok.str("access_token")
	want("RFC6750_3.1/live_client_credentials_token", get(at), 403, "insufficient_scope")
	if err := e.store.DeleteClient(t.Context(), "service"); err != nil {
		t.Fatal(err)
	}
	want("RFC6750_3.1/client_credentials_token_of_deleted_client", get(at), 401, "invalid_token")
}

// Client.ClaimsInIDToken: the granted scopes' claims in the token
// endpoint's ID tokens too, for relying parties that read the profile from
// the ID token alone; a scope left out by a refresh withholds its claims
// there as at userinfo, and the authorization endpoint's ID tokens of the
// hybrid flows, which travel through the browser, keep them out.
func TestClaimsInIDToken(t *testing.T) {
	e := newOIDCEnv(t)
	c, err := e.store.Client(t.Context(), oidcClientID)
	if err != nil {
		t.Fatal(err)
	}
	c.ClaimsInIDToken = true
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	tok, idc := e.codeFlow(t, b, true, "scope", "openid email profile")
	wantClaims(t, "code flow ID token", idc, "email", "email_verified", "name", "given_name", "family_name", "name#fr")
	if idc["address"] != nil || idc["phone_number"] != nil {
		t.Errorf("ID token %v has claims of scopes not granted", idc)
	}
	r := e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", tok.str("refresh_token"), "scope", "openid profile"))
	if r.status != 200 {
		t.Fatalf("narrowing refresh: %d %s", r.status, r.body)
	}
	c2 := e.checkIDToken(t, r.str("id_token"), idTokenCheck{authTime: true})
	if c2["email"] != nil || c2["name"] == nil {
		t.Errorf("ID token after narrowing to openid profile: %v; want name, no email", c2)
	}
	t.Run("hybrid_front_channel", func(t *testing.T) {
		r := b.get(e.oidcURL("response_type", "code id_token", "scope", "openid email"))
		for strings.HasPrefix(r.location(), "/") {
			r = b.follow(e, r)
		}
		u, _ := url.Parse(r.location())
		q := responseParams(u)
		if q.Get("id_token") == "" {
			t.Fatalf("response %s; want an ID token", r.location())
		}
		if fc := e.checkIDToken(t, q.Get("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true}); fc["email"] != nil {
			t.Errorf("front-channel ID token has email %v; want it only from the token endpoint", fc["email"])
		}
		tok := e.redeem(q.Get("code"))
		if bc := e.checkIDToken(t, tok.str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true}); bc["email"] == nil {
			t.Errorf("token endpoint ID token %v; want email", bc)
		}
	})
}
