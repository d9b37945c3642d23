package oauthd_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// The seed walkthrough: approve gives code, state and scope; deny gives
// access_denied with state; both carry iss (RFC 9207).
func TestSeedApproveAndDeny(t *testing.T) {
	e := newEnv(t)
	u := e.authorize(e.browser(), e.authorizeURL(), "approve")
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != redirectURI {
		t.Errorf("redirected to %s; want %s", got, redirectURI)
	}
	if q.Get("code") == "" || q.Get("state") != "somestate" || q.Get("scope") != "email" || q.Get("iss") != e.issuer {
		t.Errorf("approve redirect query = %v; want code, state=somestate, scope=email, iss=%s", q, e.issuer)
	}
	for k, v := range q {
		if len(v) != 1 {
			t.Errorf("parameter %s appears %d times in %s (RFC 6749 §3.1: at most once)", k, len(v), u.RawQuery)
		}
	}
	if !strings.HasPrefix(u.RawQuery, "state=somestate&code=") {
		t.Errorf("query %q does not start like the seed's (state, then code)", u.RawQuery)
	}
	u = e.authorize(e.browser(), e.authorizeURL(), "deny")
	q = u.Query()
	if q.Get("error") != "access_denied" || q.Get("state") != "somestate" || q.Get("code") != "" || q.Get("iss") != e.issuer {
		t.Errorf("deny redirect query = %v; want error=access_denied, state=somestate, iss", q)
	}
}

// Errors about the client or the redirect URI are shown to the person and
// never redirected (RFC 6749 §4.1.2.1, §3.1.2.4; RFC 9700 §4.1).
func TestAuthorizeErrorPage(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name string
		kv   []string
		code string
	}{
		{"RFC6749_4.1.2.1/missing_client_id", []string{"client_id", ""}, oauthd.PageUnknownClient},
		{"RFC6749_4.1.2.1/unknown_client_id", []string{"client_id", "nobody"}, oauthd.PageUnknownClient},
		{"OIDC_3.1.2.1/missing_redirect_uri", []string{"redirect_uri", "", "scope", "openid email"}, oauthd.PageInvalidRedirectURI},
		{"RFC6749_3.1.2.4/unregistered_redirect_uri", []string{"redirect_uri", "https://evil.example.net/redirect"}, oauthd.PageInvalidRedirectURI},
		{"RFC9700_4.1.3/trailing_slash", []string{"redirect_uri", redirectURI + "/"}, oauthd.PageInvalidRedirectURI},
		{"RFC9700_4.1.3/extra_query", []string{"redirect_uri", redirectURI + "?x=1"}, oauthd.PageInvalidRedirectURI},
		{"RFC9700_4.1.3/case", []string{"redirect_uri", "https://WWW.example.com/redirect"}, oauthd.PageInvalidRedirectURI},
		{"RFC6749_3.1.2/fragment", []string{"redirect_uri", redirectURI + "#x"}, oauthd.PageInvalidRedirectURI},
		{"RFC9700_4.1.3/userinfo", []string{"redirect_uri", "https://www.example.com@evil.example/redirect"}, oauthd.PageInvalidRedirectURI},
		{"RFC9700_4.1.3/malformed", []string{"redirect_uri", "%%%"}, oauthd.PageInvalidRedirectURI},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.browser().get(e.authorizeURL(tc.kv...))
			if r.status != http.StatusBadRequest || r.location() != "" || r.pageKind() != "error" || r.str("Code") != tc.code {
				t.Errorf("got %d location=%q page=%s code=%s; want 400 error page %s, no redirect", r.status, r.location(), r.pageKind(), r.str("Code"), tc.code)
			}
		})
	}
	// The error page is in the language the request asked for.
	t.Run("OIDC_3.1.2.1/ui_locales", func(t *testing.T) {
		r := e.browser().get(e.authorizeURL("client_id", "nobody", "ui_locales", "fr-CA en"))
		if loc, _ := r.page["Locales"].([]any); r.pageKind() != "error" || len(loc) != 2 || loc[0] != "fr-CA" {
			t.Errorf("error page %s; want Locales from ui_locales", r.body)
		}
	})
	t.Run("RFC6749_3.1/repeated_client_id", func(t *testing.T) {
		r := e.browser().get(e.authorizeURL() + "&client_id=other")
		if r.status != http.StatusBadRequest || r.location() != "" {
			t.Errorf("got %d %q; want 400 without redirect", r.status, r.location())
		}
	})
	t.Run("RFC6749_3.1/repeated_redirect_uri", func(t *testing.T) {
		r := e.browser().get(e.authorizeURL() + "&redirect_uri=" + url.QueryEscape(redirectURI))
		if r.status != http.StatusBadRequest || r.location() != "" {
			t.Errorf("got %d %q; want 400 without redirect", r.status, r.location())
		}
	})
	t.Run("RFC6749_3.1/invalid_utf8_redirect_uri", func(t *testing.T) {
		r := e.browser().get(strings.Replace(e.authorizeURL(), "redirect_uri=", "redirect_uri=%ff", 1))
		if r.status != http.StatusBadRequest || r.location() != "" {
			t.Errorf("got %d %q; want 400 without redirect", r.status, r.location())
		}
	})
}

// Other errors go back to the validated redirect URI with error, state
// and iss (RFC 6749 §4.1.2.1, RFC 9207 §2).
func TestAuthorizeErrorRedirect(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name   string
		url    string
		client string
		want   string
	}{
		{"RFC6749_4.1.2.1/missing_response_type", e.authorizeURL("response_type", ""), "", "invalid_request"},
		{"RFC6749_4.1.2.1/unsupported_response_type", e.authorizeURL("response_type", "foo"), "", "unsupported_response_type"},
		{"RFC6749_4.2.1/implicit_disabled", e.authorizeURL("response_type", "token"), "", "unsupported_response_type"},
		{"RFC6749_3.3/scope_not_allowed", e.authorizeURL("scope", "email admin"), "", "invalid_scope"},
		{"RFC6749_3.3/scope_bad_characters", e.authorizeURL("scope", `em"ail`), "", "invalid_scope"},
		{"RFC6749_3.1/repeated_scope", e.authorizeURL() + "&scope=email", "", "invalid_request"},
		{"RFC6749_3.1/repeated_response_type", e.authorizeURL() + "&response_type=code", "", "invalid_request"},
		{"RFC7636_4.3/plain_not_allowed", e.authorizeURL("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "plain"), "", "invalid_request"},
		{"RFC7636_4.3/default_method_is_plain", e.authorizeURL("code_challenge", strings.Repeat("a", 43)), "", "invalid_request"},
		{"RFC7636_4.2/challenge_too_short", e.authorizeURL("code_challenge", strings.Repeat("a", 42), "code_challenge_method", "S256"), "", "invalid_request"},
		{"RFC7636_4.2/challenge_too_long", e.authorizeURL("code_challenge", strings.Repeat("a", 129), "code_challenge_method", "S256"), "", "invalid_request"},
		{"RFC7636_4.2/challenge_bad_chars", e.authorizeURL("code_challenge", strings.Repeat("a", 42)+"+", "code_challenge_method", "S256"), "", "invalid_request"},
		{"RFC7636_4.3/unknown_method", e.authorizeURL("code_challenge", strings.Repeat("a", 43), "code_challenge_method", "S512"), "", "invalid_request"},
		{"RFC7636_4.4.1/method_without_challenge", e.authorizeURL("code_challenge_method", "S256"), "", "invalid_request"},
		{"OAuth2.1_4.1.1/public_client_without_pkce", e.url(oauthd.AuthorizePath + "?client_id=public_app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&response_type=code&state=somestate"), "public", "invalid_request"},
		{"OIDC_Core_6/request_object", e.authorizeURL("request", "eyJhbGciOiJub25lIn0.e30."), "", "request_not_supported"},
		{"OIDC_Core_6/request_uri", e.authorizeURL("request_uri", "https://x.example/r"), "", "request_uri_not_supported"},
		{"OIDC_Core_3.1.2.1/bad_prompt", e.authorizeURL("prompt", "none login"), "", "invalid_request"},
		{"OIDC_Core_3.1.2.1/bad_max_age", e.authorizeURL("max_age", "-1"), "", "invalid_request"},
		{"OAuthMultipleResponseTypes/bad_response_mode", e.authorizeURL("response_mode", "smoke"), "", "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.browser().get(tc.url)
			if r.status != http.StatusSeeOther {
				t.Fatalf("got %d %s; want 303 redirect", r.status, r.body)
			}
			u, _ := url.Parse(r.location())
			q := u.Query()
			if u.Fragment != "" {
				q, _ = url.ParseQuery(u.Fragment)
			}
			base := redirectURI
			if tc.client == "public" {
				base = "http://127.0.0.1/cb"
			}
			if !strings.HasPrefix(r.location(), base+"?") && !strings.HasPrefix(r.location(), base+"#") {
				t.Errorf("redirected to %s; want %s", r.location(), base)
			}
			if q.Get("error") != tc.want || q.Get("iss") != e.issuer || q.Get("code") != "" {
				t.Errorf("query = %v; want error=%s with iss", q, tc.want)
			}
			if strings.Contains(tc.url, "state=somestate") && !strings.Contains(tc.url, "&state=") && q.Get("state") != "somestate" {
				t.Errorf("state not echoed: %v", q)
			}
		})
	}
}

// A POSTed authorization request works like a GET (OIDC Core §3.1.2.1).
// One that carries none of the server's cookies (a form on the client's
// site: SameSite=Lax cookies stay behind) is answered with a page of the
// server that posts it again, carrying them, so a signed-in person is
// recognised; its parameters stay in a body, never in a URL.
func TestAuthorizePost(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	f := form("client_id", clientID, "redirect_uri", redirectURI, "response_type", "code", "state", "s t&", "scope", "email")
	r := b.post(e.url(oauthd.AuthorizePath), f)
	fields := relayFields(t, r)
	if r.str("Action") != e.url(oauthd.AuthorizePath) || r.header.Get("Set-Cookie") != "" || r.location() != "" {
		t.Errorf("relay page: action %q, Set-Cookie %q, Location %q; want the authorization endpoint, no cookie, no redirect",
			r.str("Action"), r.header.Get("Set-Cookie"), r.location())
	}
	fields.Del("oauthd_relay")
	if fields.Encode() != f.Encode() {
		t.Errorf("the relay page posts %v; want the request's %v", fields, f)
	}
	r = b.follow(e, b.relay(r))
	if r.pageKind() != "login" {
		t.Fatalf("the relayed request (no cookies at all): %d %s; want the login page", r.status, r.body)
	}
	// Signed in, the browser's own POST (same site, cookies sent) is
	// answered at once.
	b.follow(e, b.login(e, r, "admin", "admin"))
	r = b.post(e.url(oauthd.AuthorizePath), f)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Errorf("POST with the session cookie: %d %q; want 303 to the consent page", r.status, r.location())
	}
	// The client's site POSTs: no cookies; the relay page's POST carries
	// them and finds the session.
	req, _ := http.NewRequest("POST", e.url(oauthd.AuthorizePath), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r = do(t, noRedirects, req)
	if r.header.Get("Set-Cookie") != "" {
		t.Errorf("cross-site POST: Set-Cookie %q; want no new cookie", r.header.Get("Set-Cookie"))
	}
	if r = b.relay(r); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Errorf("the relayed POST in the signed-in browser: %d %q; want the consent page, the session recognised", r.status, r.location())
	}
}

// The loopback redirect URI of a native app may use any port (RFC 8252 §7.3).
func TestLoopbackAnyPort(t *testing.T) {
	reg := []string{"http://127.0.0.1/cb", "http://[::1]/cb", "https://app.example/cb"}
	cases := []struct {
		uri  string
		want bool
	}{
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:51004/cb", true},
		{"http://[::1]:8080/cb", true},
		{"http://127.0.0.1:51004/cb?x=1", false},
		{"http://127.0.0.1:51004/cb/", false},
		{"http://127.0.0.1:51004/other", false},
		{"http://localhost:51004/cb", false},
		{"https://127.0.0.1:51004/cb", false},
		{"http://127.0.0.1:51004/cb#f", false},
		{"http://127.0.0.1.evil.example/cb", false},
		{"http://127.0.0.1:80@evil.example/cb", false},
		{"https://app.example:443/cb", false},
		{"https://app.example/cb", true},
	}
	for _, tc := range cases {
		if got := oauthd.MatchRedirectURI(reg, tc.uri); got != tc.want {
			t.Errorf("MatchRedirectURI(%q) = %v; want %v", tc.uri, got, tc.want)
		}
	}
}

// Login CSRF: the login form refuses another browser's hidden fields, and a
// pending request cannot be continued from another browser.
func TestLoginCSRF(t *testing.T) {
	e := newEnv(t)
	attacker := e.browser()
	ra := attacker.follow(e, attacker.get(e.authorizeURL()))
	victim := e.browser()
	victim.follow(e, victim.get(e.authorizeURL()))
	r := victim.post(e.url(oauthd.LoginPath), form("request", ra.str("AuthReqID"), "csrf", ra.str("CSRF"), "username", "admin", "password", "admin"))
	if r.status < 400 || r.header.Get("Set-Cookie") != "" && strings.Contains(r.header.Get("Set-Cookie"), "oauthd_session=") {
		t.Errorf("another browser's login form was accepted: %d %s", r.status, r.location())
	}
	// the victim's own request with the attacker's CSRF token
	rv := victim.follow(e, victim.get(e.authorizeURL()))
	r = victim.post(e.url(oauthd.LoginPath), form("request", rv.str("AuthReqID"), "csrf", ra.str("CSRF"), "username", "admin", "password", "admin"))
	if r.status != http.StatusForbidden {
		t.Errorf("a foreign CSRF token was accepted: %d %s", r.status, r.location())
	}
}

// Wrong password and unknown user get the same answer.
func TestLoginFailureIsGeneric(t *testing.T) {
	e := newEnv(t)
	try := func(user, pass string) string {
		b := e.browser()
		r := b.follow(e, b.get(e.authorizeURL()))
		r = b.login(e, r, user, pass)
		if r.status != http.StatusSeeOther {
			t.Fatalf("login failure: %d", r.status)
		}
		if strings.Contains(r.location(), user) {
			t.Errorf("the name typed is in the redirect %q (browser history, proxy logs)", r.location())
		}
		r = b.follow(e, r)
		if r.pageKind() != "login" {
			t.Fatalf("after a failed login: %s", r.pageKind())
		}
		if r.str("Username") != user {
			t.Errorf("the login page after the failure has the name %q; want %q filled in again", r.str("Username"), user)
		}
		return r.str("Error")
	}
	a, b := try("admin", "wrong"), try("nobody", "admin")
	if a != "invalid_credentials" || a != b {
		t.Errorf("wrong password → %q, unknown user → %q; want the same invalid_credentials", a, b)
	}
}

// RFC 6749 §3.1.2.3, §4.1.1, §4.1.3: a client with one registered
// redirect URI may leave redirect_uri out of the authorization request; the
// answer goes to that URI, and the token request may leave it out too (or
// send that URI). A client with several registered, and every OpenID
// Connect request, must send it (TestAuthorizeErrorPage, the negative
// battery).
func TestRedirectURIOmittedWithOneRegistered(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name   string
		token  []string
		status int
	}{
		{"RFC6749_4.1.3/token_request_without_redirect_uri", nil, 200},
		{"RFC6749_4.1.3/token_request_with_the_registered_uri", []string{"redirect_uri", redirectURI}, 200},
		{"RFC6749_4.1.3/token_request_with_another_uri", []string{"redirect_uri", "https://www.example.com/other"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := e.authorize(e.browser(), e.authorizeURL("redirect_uri", ""), "approve")
			if got := u.Scheme + "://" + u.Host + u.Path; got != redirectURI || u.Query().Get("code") == "" || u.Query().Get("state") != "somestate" {
				t.Fatalf("redirected to %s; want %s with a code", u, redirectURI)
			}
			r := e.token(seedAuth, form(append([]string{"grant_type", "authorization_code", "code", u.Query().Get("code")}, tc.token...)...))
			if r.status != tc.status || (tc.status == 200) != (r.str("access_token") != "") {
				t.Errorf("token: %d %s; want %d", r.status, r.body, tc.status)
			}
		})
	}
	// A code whose request named redirect_uri needs it at the token
	// endpoint, as before.
	code := e.code()
	if r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code)); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("token request without the redirect_uri the authorization request had: %d %s; want 400 invalid_grant", r.status, r.body)
	}
}

// prompt=login asks for a login after the request (OIDC Core §3.1.2.1):
// one earlier in the same second does not do, even when the browser goes
// to the consent page without the login page it was sent to.
func TestPromptLoginNeedsALaterLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.authorize(b, e.authorizeURL(), "approve")
	e.tick(100 * time.Millisecond)
	l := b.follow(e, b.get(e.authorizeURL("prompt", "login")))
	if l.pageKind() != "login" {
		t.Fatalf("prompt=login: %d %s; want the login page", l.status, l.body)
	}
	r := b.get(e.url(oauthd.ConsentPath + "?request=" + url.QueryEscape(l.str("AuthReqID"))))
	if r.status == http.StatusSeeOther {
		r = b.follow(e, r)
	}
	if r.pageKind() != "login" {
		t.Errorf("consent page without the login prompt=login asked for: %d %s; want the login page", r.status, r.body)
	}
}

// The session id changes at login (session fixation, RFC 9700 §4.x).
func TestSessionIDChangesAtLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.authorize(b, e.authorizeURL(), "approve")
	u, _ := url.Parse(e.srv.URL)
	first := cookie(b, u, "oauthd_session")
	r := b.follow(e, b.get(e.authorizeURL("prompt", "login")))
	r = b.follow(e, b.login(e, r, "admin", "admin"))
	second := cookie(b, u, "oauthd_session")
	if first == "" || second == "" || first == second {
		t.Errorf("session cookie before %q after %q; want two different values", first, second)
	}
}

func cookie(b *browser, u *url.URL, name string) string {
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// Security headers on pages (RFC 9700 §4.16 clickjacking, §4.2.4 referrer).
func TestPageSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.follow(e, b.get(e.authorizeURL()))
	for k, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	if csp := r.header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("Content-Security-Policy = %q", csp)
	}
}

// A consent form can only be answered once (double submit).
func TestConsentSingleUse(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.follow(e, b.get(e.authorizeURL()))
	r = b.follow(e, b.login(e, r, "admin", "admin"))
	first := b.decide(e, r, "approve")
	second := b.decide(e, r, "approve")
	if first.status != http.StatusSeeOther || second.status != http.StatusBadRequest || second.location() != "" {
		t.Errorf("first %d, second %d %q; want 303 then a 400 page", first.status, second.status, second.location())
	}
}

// RFC 8252 §7.3 lets a native app (a public client) take any port on a
// loopback redirect URI; a confidential client's redirect URIs match
// exactly (OIDC Core §3.1.2.1, RFC 9700 §4.1.3): a request for another
// port gets the error page, never a redirect.
func TestLoopbackAnyPortForPublicClientsOnly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.store.CreateClient(ctx, &oauthd.Client{ID: "local_web", SecretHash: hash(t, "local-secret"), RedirectURIs: []string{"http://127.0.0.1:5000/cb"},
		GrantTypes: []string{oauthd.GrantAuthorizationCode}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, client, uri string
		redirect          bool
	}{
		{"RFC8252_7.3/public_client_other_port", "public_app", "http://127.0.0.1:5001/cb", true},
		{"OIDC_3.1.2.1/confidential_client_registered_port", "local_web", "http://127.0.0.1:5000/cb", true},
		{"OIDC_3.1.2.1/confidential_client_other_port", "local_web", "http://127.0.0.1:5001/cb", false},
		{"OIDC_3.1.2.1/confidential_client_no_port", "local_web", "http://127.0.0.1/cb", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := []string{"client_id", tc.client, "redirect_uri", tc.uri, "prompt", "none"}
			if tc.client == "public_app" {
				v = append(v, "code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method", "S256")
			}
			r := e.browser().get(e.authorizeURL(v...))
			got := r.status == http.StatusSeeOther && strings.HasPrefix(r.location(), tc.uri)
			if got != tc.redirect {
				t.Errorf("%s: %d %q (page %s); want redirect %v", tc.uri, r.status, r.location(), r.pageKind(), tc.redirect)
			}
		})
	}
}
