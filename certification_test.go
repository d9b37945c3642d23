package oauthd_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// kvGet is the value of name in an oidcURL override list, or def.
func kvGet(kv []string, name, def string) string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == name {
			return kv[i+1]
		}
	}
	return def
}

// codeFlow runs an OpenID Connect code flow in the browser, redeems the
// code with client_secret_basic and checks the authorization response
// (state, iss) and the ID token. It returns the token response and the ID
// token's claims.
func (e *testEnv) codeFlow(t *testing.T, b *browser, wantLogin bool, kv ...string) (*response, map[string]any) {
	t.Helper()
	u := e.authorizeExpectLogin(t, b, e.oidcURL(kv...), wantLogin)
	q := u.Query()
	if q.Get("error") != "" || q.Get("code") == "" {
		t.Fatalf("authorization response %s; want a code", u)
	}
	if got, want := q.Get("state"), kvGet(kv, "state", "st-1"); got != want {
		t.Errorf("state = %q; want %q", got, want)
	}
	if q.Get("iss") != e.issuer {
		t.Errorf("iss = %q; want %s (RFC 9207)", q.Get("iss"), e.issuer)
	}
	tok := e.redeem(q.Get("code"))
	claims := e.checkIDToken(t, tok.str("id_token"), idTokenCheck{nonce: kvGet(kv, "nonce", oidcNonce), authTime: true})
	return tok, claims
}

// wantClaims checks that a claims object has the claims with the values.
func wantClaims(t *testing.T, where string, got map[string]any, want ...string) {
	t.Helper()
	for _, k := range want {
		w, _ := json.Marshal(adminClaims[k])
		g, _ := json.Marshal(got[k])
		if string(g) != string(w) {
			t.Errorf("%s %s = %s; want %s", where, k, g, w)
		}
	}
}

// authError checks an error sent to the client's redirect URI.
func (e *testEnv) authError(t *testing.T, r *response, code string) {
	t.Helper()
	if r.status != http.StatusSeeOther {
		t.Fatalf("got %d %s; want a redirect with error %s", r.status, r.body, code)
	}
	u, _ := url.Parse(r.location())
	q := responseParams(u)
	if !strings.HasPrefix(r.location(), oidcRedirectURI) || q.Get("error") != code || q.Get("state") != "st-1" || q.Get("iss") != e.issuer {
		t.Errorf("redirect %s; want %s with error=%s, state=st-1, iss", r.location(), oidcRedirectURI, code)
	}
}

// TestOIDCCBasicCertification replicates the modules of the OpenID
// Foundation's oidcc-basic-certification-test-plan (and the discovery
// check of oidcc-config) that apply to a server with statically
// registered clients, one case per module, named after it.
func TestOIDCCBasicCertification(t *testing.T) {
	cases := []struct {
		module string
		run    func(t *testing.T, e *testEnv)
	}{
		{"oidcc-server", func(t *testing.T, e *testEnv) {
			tok, claims := e.codeFlow(t, e.browser(), true)
			if tok.str("token_type") != "Bearer" || tok.str("access_token") == "" {
				t.Errorf("token response %s", tok.body)
			}
			ui := e.userinfo(t, tok.str("access_token"))
			if ui.status != http.StatusOK || ui.page["sub"] != claims["sub"] {
				t.Errorf("userinfo: %d %s; want sub %v", ui.status, ui.body, claims["sub"])
			}
		}},
		{"oidcc-server-client-secret-post", func(t *testing.T, e *testEnv) {
			u := e.authorizeExpectLogin(t, e.browser(), e.oidcURL(), true)
			r := e.token("", form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", oidcRedirectURI,
				"client_id", oidcClientID, "client_secret", oidcClientSecret))
			if r.status != http.StatusOK {
				t.Fatalf("token with client_secret_post: %d %s", r.status, r.body)
			}
			e.checkIDToken(t, r.str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
		}},
		{"oidcc-response-type-missing", func(t *testing.T, e *testEnv) {
			e.authError(t, e.browser().get(e.oidcURL("response_type", "")), "invalid_request")
		}},
		{"oidcc-userinfo-get", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true)
			r := e.userinfo(t, tok.str("access_token"))
			if r.status != http.StatusOK || r.page["sub"] != e.user.ID || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
				t.Errorf("userinfo GET: %d %s", r.status, r.body)
			}
		}},
		{"oidcc-userinfo-post-header", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true)
			req, _ := http.NewRequest("POST", e.url(oauthd.UserinfoPath), nil)
			req.Header.Set("Authorization", "Bearer "+tok.str("access_token"))
			r := do(t, http.DefaultClient, req)
			if r.status != http.StatusOK || r.page["sub"] != e.user.ID {
				t.Errorf("userinfo POST with header: %d %s", r.status, r.body)
			}
		}},
		{"oidcc-userinfo-post-body", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true)
			r := e.postForm(oauthd.UserinfoPath, "", form("access_token", tok.str("access_token")))
			if r.status != http.StatusOK || r.page["sub"] != e.user.ID {
				t.Errorf("userinfo POST with body: %d %s", r.status, r.body)
			}
		}},
		{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(t *testing.T, e *testEnv) {
			e.codeFlow(t, e.browser(), true, "nonce", "")
		}},
		{"oidcc-scope-profile", func(t *testing.T, e *testEnv) {
			tok, claims := e.codeFlow(t, e.browser(), true, "scope", "openid profile")
			ui := e.userinfo(t, tok.str("access_token"))
			wantClaims(t, "userinfo", ui.page, "name", "given_name", "family_name", "name#fr")
			if ui.page["preferred_username"] != "admin" || ui.page["updated_at"] == nil {
				t.Errorf("userinfo %s; want preferred_username admin and updated_at", ui.body)
			}
			if ui.page["email"] != nil {
				t.Errorf("userinfo has email without the email scope: %s", ui.body)
			}
			if claims["name"] != nil {
				t.Errorf("the ID token of the code flow has name; profile claims belong to userinfo (OIDC Core §5.4)")
			}
		}},
		{"oidcc-scope-email", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid email")
			ui := e.userinfo(t, tok.str("access_token"))
			wantClaims(t, "userinfo", ui.page, "email", "email_verified")
			if ui.page["name"] != nil {
				t.Errorf("userinfo has name without the profile scope: %s", ui.body)
			}
		}},
		{"oidcc-scope-address", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid address")
			wantClaims(t, "userinfo", e.userinfo(t, tok.str("access_token")).page, "address")
		}},
		{"oidcc-scope-phone", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid phone")
			wantClaims(t, "userinfo", e.userinfo(t, tok.str("access_token")).page, "phone_number", "phone_number_verified")
		}},
		{"oidcc-scope-all", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true, "scope", "openid profile email address phone")
			wantClaims(t, "userinfo", e.userinfo(t, tok.str("access_token")).page,
				"name", "given_name", "family_name", "email", "email_verified", "address", "phone_number", "phone_number_verified")
		}},
		{"oidcc-alternate-happy-flow", func(t *testing.T, e *testEnv) {
			// Reversed scope order and reordered parameters (RFC 6749 §3.3).
			raw := "nonce=" + oidcNonce + "&state=st-1&scope=email+openid&response_type=code&redirect_uri=" +
				url.QueryEscape(oidcRedirectURI) + "&client_id=" + oidcClientID
			u := e.authorizeExpectLogin(t, e.browser(), e.url(oauthd.AuthorizePath+"?"+raw), true)
			tok := e.redeem(u.Query().Get("code"))
			e.checkIDToken(t, tok.str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
			wantClaims(t, "userinfo", e.userinfo(t, tok.str("access_token")).page, "email")
		}},
		{"oidcc-display-page", func(t *testing.T, e *testEnv) {
			e.codeFlow(t, e.browser(), true, "display", "page")
		}},
		{"oidcc-display-popup", func(t *testing.T, e *testEnv) {
			e.codeFlow(t, e.browser(), true, "display", "popup")
		}},
		{"oidcc-prompt-login", func(t *testing.T, e *testEnv) {
			b := e.browser()
			_, first := e.codeFlow(t, b, true)
			e.tick(2 * time.Second)
			_, second := e.codeFlow(t, b, true, "prompt", "login")
			if second["auth_time"].(float64) <= first["auth_time"].(float64) {
				t.Errorf("auth_time after prompt=login = %v; want later than %v", second["auth_time"], first["auth_time"])
			}
		}},
		// prompt=select_account shows the login page, where the person
		// picks an account, even when signed in.
		{"oidcc-prompt-select-account", func(t *testing.T, e *testEnv) {
			b := e.browser()
			e.codeFlow(t, b, true)
			e.tick(2 * time.Second)
			e.codeFlow(t, b, true, "prompt", "select_account")
		}},
		// max_age=0 is prompt=login (OIDC Core §3.1.2.1, errata 2).
		{"oidcc-max-age-0", func(t *testing.T, e *testEnv) {
			b := e.browser()
			e.codeFlow(t, b, true)
			e.tick(100 * time.Millisecond)
			e.codeFlow(t, b, true, "max_age", "0")
		}},
		{"oidcc-prompt-none-not-logged-in", func(t *testing.T, e *testEnv) {
			e.authError(t, e.browser().get(e.oidcURL("prompt", "none")), "login_required")
		}},
		{"oidcc-prompt-none-logged-in", func(t *testing.T, e *testEnv) {
			b := e.browser()
			_, first := e.codeFlow(t, b, true)
			e.tick(2 * time.Second)
			r := b.get(e.oidcURL("prompt", "none"))
			u, _ := url.Parse(r.location())
			if r.status != http.StatusSeeOther || u.Query().Get("code") == "" {
				t.Fatalf("prompt=none while signed in: %d %s %s", r.status, r.location(), r.body)
			}
			second := e.checkIDToken(t, e.redeem(u.Query().Get("code")).str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
			if second["sub"] != first["sub"] || second["auth_time"] != first["auth_time"] {
				t.Errorf("second ID token sub %v auth_time %v; want %v %v", second["sub"], second["auth_time"], first["sub"], first["auth_time"])
			}
		}},
		{"oidcc-max-age-1", func(t *testing.T, e *testEnv) {
			b := e.browser()
			_, first := e.codeFlow(t, b, true)
			e.tick(2 * time.Second)
			_, second := e.codeFlow(t, b, true, "max_age", "1")
			if second["auth_time"].(float64) <= first["auth_time"].(float64) {
				t.Errorf("auth_time after max_age=1 = %v; want later than %v", second["auth_time"], first["auth_time"])
			}
		}},
		{"oidcc-max-age-10000", func(t *testing.T, e *testEnv) {
			b := e.browser()
			_, first := e.codeFlow(t, b, true)
			e.tick(2 * time.Second)
			_, second := e.codeFlow(t, b, false, "max_age", "10000")
			if second["auth_time"] != first["auth_time"] {
				t.Errorf("auth_time = %v; want the first login's %v", second["auth_time"], first["auth_time"])
			}
		}},
		{"oidcc-ensure-request-with-unknown-parameter-succeeds", func(t *testing.T, e *testEnv) {
			e.codeFlow(t, e.browser(), true, "extra", "foobar")
		}},
		{"oidcc-id-token-hint", func(t *testing.T, e *testEnv) {
			b := e.browser()
			tok, first := e.codeFlow(t, b, true)
			e.tick(2 * time.Second)
			r := b.get(e.oidcURL("prompt", "none", "id_token_hint", tok.str("id_token")))
			u, _ := url.Parse(r.location())
			if r.status != http.StatusSeeOther || u.Query().Get("code") == "" {
				t.Fatalf("prompt=none with id_token_hint: %d %s", r.status, r.location())
			}
			second := e.checkIDToken(t, e.redeem(u.Query().Get("code")).str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
			if second["sub"] != first["sub"] {
				t.Errorf("sub = %v; want the hint's %v", second["sub"], first["sub"])
			}
		}},
		{"oidcc-login-hint", func(t *testing.T, e *testEnv) {
			b := e.browser()
			r := b.follow(e, b.get(e.oidcURL("login_hint", "admin")))
			if r.pageKind() != "login" || r.str("Username") != "admin" {
				t.Errorf("login page %s; want the username pre-filled with admin", r.body)
			}
			e.codeFlow(t, e.browser(), true, "login_hint", "admin")
		}},
		{"oidcc-ui-locales", func(t *testing.T, e *testEnv) {
			b := e.browser()
			r := b.follow(e, b.get(e.oidcURL("ui_locales", "fr-CA fr en")))
			if loc, _ := r.page["Locales"].([]any); r.pageKind() != "login" || len(loc) == 0 || loc[0] != "fr-CA" {
				t.Errorf("login page %s; want Locales from ui_locales", r.body)
			}
			e.codeFlow(t, e.browser(), true, "ui_locales", "fr")
		}},
		{"oidcc-claims-locales", func(t *testing.T, e *testEnv) {
			tok, _ := e.codeFlow(t, e.browser(), true, "claims_locales", "fr en", "scope", "openid profile")
			wantClaims(t, "userinfo", e.userinfo(t, tok.str("access_token")).page, "name", "name#fr")
		}},
		{"oidcc-ensure-request-with-acr-values-succeeds", func(t *testing.T, e *testEnv) {
			e.codeFlow(t, e.browser(), true, "acr_values", "1 2")
		}},
		{"oidcc-ensure-registered-redirect-uri", func(t *testing.T, e *testEnv) {
			r := e.browser().get(e.oidcURL("redirect_uri", "https://attacker.example/callback"))
			if r.status != http.StatusBadRequest || r.location() != "" || r.pageKind() != "error" {
				t.Errorf("unregistered redirect_uri: %d location=%q; want an error page and no redirect", r.status, r.location())
			}
		}},
		{"oidcc-ensure-post-request-succeeds", func(t *testing.T, e *testEnv) {
			b := e.browser()
			u, _ := url.Parse(e.oidcURL())
			r := b.post(e.url(oauthd.AuthorizePath), u.Query())
			if r.pageKind() == "form_post" {
				// Without the server's cookies: posted again by the
				// server's own page.
				r = b.relay(r)
			}
			if r.status != http.StatusSeeOther {
				t.Fatalf("POST authorize: %d %s", r.status, r.body)
			}
			r = b.login(e, b.follow(e, r), "admin", "admin")
			r = b.decide(e, b.follow(e, r), "approve")
			cu, _ := url.Parse(r.location())
			tok := e.redeem(cu.Query().Get("code"))
			e.checkIDToken(t, tok.str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
		}},
		{"oidcc-request-uri-unsigned", func(t *testing.T, e *testEnv) {
			// Not supported, and rejected as OIDC Core §6.3 says.
			if e.metadata(t)["request_uri_parameter_supported"] != false {
				t.Errorf("request_uri_parameter_supported is not false")
			}
			e.authError(t, e.browser().get(e.oidcURL("request_uri", "https://rp.example/request.jwt")), "request_uri_not_supported")
		}},
		{"oidcc-unsigned-request-object", func(t *testing.T, e *testEnv) {
			if e.metadata(t)["request_parameter_supported"] != false {
				t.Errorf("request_parameter_supported is not false")
			}
			obj := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." +
				base64.RawURLEncoding.EncodeToString([]byte(`{"client_id":"oidc_client","scope":"openid"}`)) + "."
			e.authError(t, e.browser().get(e.oidcURL("request", obj)), "request_not_supported")
		}},
		{"oidcc-claims-essential", func(t *testing.T, e *testEnv) {
			b := e.browser()
			claims := `{"userinfo":{"name":{"essential":true}}}`
			r := b.follow(e, b.get(e.oidcURL("claims", claims)))
			r = b.follow(e, b.login(e, r, "admin", "admin"))
			if sc, _ := r.page["Scopes"].([]any); r.pageKind() != "consent" || !slices.Contains(sc, any("profile")) {
				t.Errorf("consent page %s; want the profile scope that covers the name claim shown", r.body)
			}
			tok, idt := e.codeFlow(t, e.browser(), true, "claims", claims)
			wantClaims(t, "userinfo", e.userinfo(t, tok.str("access_token")).page, "name")
			if idt["name"] != nil {
				t.Errorf("the ID token has name, asked for the userinfo only")
			}
		}},
		{"oidcc-refresh-token", func(t *testing.T, e *testEnv) {
			tok, first := e.codeFlow(t, e.browser(), true, "scope", "openid offline_access", "prompt", "consent")
			rt := tok.str("refresh_token")
			if rt == "" {
				t.Fatalf("no refresh token: %s", tok.body)
			}
			// Another client cannot use the refresh token.
			if r := e.token(basic("oidc_client2", "oidc_secret2"), form("grant_type", "refresh_token", "refresh_token", rt)); r.str("error") != "invalid_grant" {
				t.Errorf("refresh by another client: %d %s; want invalid_grant", r.status, r.body)
			}
			e.tick(time.Minute)
			r := e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", rt))
			if r.status != http.StatusOK || r.str("access_token") == "" {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			// OIDC Core §12.2: same iss, sub, aud and auth_time; no nonce.
			second := e.checkIDToken(t, r.str("id_token"), idTokenCheck{authTime: true})
			if second["auth_time"] != first["auth_time"] || second["iat"].(float64) <= first["iat"].(float64) {
				t.Errorf("refreshed ID token auth_time %v iat %v; want auth_time %v and a later iat", second["auth_time"], second["iat"], first["auth_time"])
			}
			if ui := e.userinfo(t, r.str("access_token")); ui.status != http.StatusOK {
				t.Errorf("userinfo with the refreshed access token: %d %s", ui.status, ui.body)
			}
		}},
		{"oidcc-ensure-request-with-valid-pkce-succeeds", func(t *testing.T, e *testEnv) {
			verifier := strings.Repeat("v", 50)
			u := e.authorizeExpectLogin(t, e.browser(), e.oidcURL("code_challenge", oauthd.S256Challenge(verifier), "code_challenge_method", "S256"), true)
			tok := e.redeem(u.Query().Get("code"), "code_verifier", verifier)
			e.checkIDToken(t, tok.str("id_token"), idTokenCheck{nonce: oidcNonce, authTime: true})
		}},
		{"oidcc-config", testDiscoveryEndpointVerification},
	}
	for _, tc := range cases {
		t.Run(tc.module, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newOIDCEnv(t))
		})
	}
}

// metadata fetches the OpenID Provider metadata.
func (e *testEnv) metadata(t *testing.T) map[string]any {
	t.Helper()
	r := e.browser().get(e.url(oauthd.OIDCDiscoveryPath))
	if r.status != http.StatusOK {
		t.Fatalf("discovery: %d %s", r.status, r.body)
	}
	return r.page
}

// testDiscoveryEndpointVerification is oidcc-config's
// oidcc-discovery-endpoint-verification: the required fields of OIDC
// Discovery §3, their consistency, and a JWKS that can be fetched and has
// no private key.
func testDiscoveryEndpointVerification(t *testing.T, e *testEnv) {
	m := e.metadata(t)
	str := func(k string) string { s, _ := m[k].(string); return s }
	list := func(k string) []any { l, _ := m[k].([]any); return l }
	if str("issuer") != e.issuer {
		t.Errorf("issuer = %q; want %s (OIDC Discovery §4.3)", str("issuer"), e.issuer)
	}
	for k, path := range map[string]string{"authorization_endpoint": oauthd.AuthorizePath, "token_endpoint": oauthd.TokenPath,
		"userinfo_endpoint": oauthd.UserinfoPath, "jwks_uri": oauthd.JWKSPath, "end_session_endpoint": oauthd.LogoutPath} {
		if str(k) != e.issuer+path {
			t.Errorf("%s = %q; want %s", k, str(k), e.issuer+path)
		}
	}
	for k, v := range map[string]string{"response_types_supported": "code", "subject_types_supported": "public",
		"id_token_signing_alg_values_supported": "RS256", "scopes_supported": "openid", "grant_types_supported": "authorization_code",
		"token_endpoint_auth_methods_supported": "client_secret_basic", "claims_supported": "sub", "response_modes_supported": "query"} {
		if !slices.Contains(list(k), any(v)) {
			t.Errorf("%s = %v; want it to contain %s", k, list(k), v)
		}
	}
	if slices.Contains(list("id_token_signing_alg_values_supported"), any("none")) {
		t.Errorf("id_token_signing_alg_values_supported has none")
	}
	if m["claims_parameter_supported"] != true {
		t.Errorf("claims_parameter_supported = %v; want true", m["claims_parameter_supported"])
	}
	jwks := e.jwks(t)
	if len(jwks.Keys) == 0 {
		t.Fatal("the JWKS is empty")
	}
	for _, k := range jwks.Keys {
		if !k.IsPublic() || !k.Valid() || k.KeyID == "" || k.Use != "sig" {
			t.Errorf("JWKS key %q: public=%v valid=%v use=%q; want a valid public signing key with a kid", k.KeyID, k.IsPublic(), k.Valid(), k.Use)
		}
	}
}
