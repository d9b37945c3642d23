package oauthd_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
)

// updateClient changes the test client's registration in the store.
func updateClient(e *testEnv, change func(*oauthd.Client)) {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.store.Client(ctx, clientID)
	if err != nil {
		e.t.Fatal(err)
	}
	change(c)
	if err := e.store.UpdateClient(ctx, c); err != nil {
		e.t.Fatal(err)
	}
}

// A code issued before the client's registration changed is redeemed only
// if the registration still allows it (RFC 9700 §4.1, as Approve checks
// before issuing one): a redirect URI removed since (an administrator
// removing a compromised one) or a scope the client may no longer ask for.
func TestCodeAfterTheRegistrationChanged(t *testing.T) {
	const second = "https://client.example.net/other"
	for _, tc := range []struct {
		name   string
		change func(*oauthd.Client)
		status int
	}{
		{"RFC9700_4.1/redirect_uri_removed", func(c *oauthd.Client) { c.RedirectURIs = []string{second} }, http.StatusBadRequest},
		{"RFC6749_3.3/scope_removed", func(c *oauthd.Client) { c.Scopes = []string{"profile"} }, http.StatusBadRequest},
		{"unrelated_change", func(c *oauthd.Client) { c.Name = "Renamed" }, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
			updateClient(e, func(c *oauthd.Client) { c.RedirectURIs = []string{redirectURI, second} })
			code := e.code("scope", "email")
			updateClient(e, tc.change)
			r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
			if r.status != tc.status {
				t.Fatalf("redemption: %d %s; want %d", r.status, r.body, tc.status)
			}
			if tc.status != http.StatusOK && r.str("error") != "invalid_grant" {
				t.Errorf("error %q; want invalid_grant", r.str("error"))
			}
		})
	}
}

// OIDC Core §5.3: userinfo releases the claims of the scopes the client's
// registration still lists; with openid removed from it, the token no
// longer reads userinfo (insufficient_scope).
func TestUserinfoAfterAScopeWasRemoved(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"openid", "email", "profile"} })
	e.user.Claims = map[string]any{"email": "admin@example.com", "name": "Ada Admin"}
	if err := e.store.UpdateUser(context.Background(), e.user); err != nil {
		t.Fatal(err)
	}
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code("scope", "openid email profile", "nonce", "n"), "redirect_uri", redirectURI))
	at := r.str("access_token")
	if u := e.userinfo(t, at); u.status != 200 || u.str("email") != "admin@example.com" || u.str("name") != "Ada Admin" {
		t.Fatalf("userinfo: %d %s", u.status, u.body)
	}
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"openid", "profile"} })
	u := e.userinfo(t, at)
	if u.status != 200 || u.str("email") != "" || u.str("name") != "Ada Admin" || u.str("sub") != e.user.ID {
		t.Errorf("userinfo after email was removed from the client: %d %s; want sub and name, no email", u.status, u.body)
	}
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"profile"} })
	if u := e.userinfo(t, at); u.status != http.StatusForbidden || u.header.Get("WWW-Authenticate") == "" {
		t.Errorf("userinfo after openid was removed from the client: %d %s; want 403 insufficient_scope", u.status, u.body)
	}
}

// A claims request (OIDC Core §5.5) asked, with scope openid alone, for a
// claim of a scope the client may ask for; once that scope is removed from
// the client, neither userinfo nor a refresh's ID token releases it.
func TestClaimsRequestAfterItsScopeWasRemoved(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	allowOpenID(e)
	e.user.Claims = map[string]any{"email": "admin@example.com"}
	if err := e.store.UpdateUser(context.Background(), e.user); err != nil {
		t.Fatal(err)
	}
	claims := `{"userinfo":{"email":null},"id_token":{"email":null}}`
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code("scope", "openid", "nonce", "n", "claims", claims), "redirect_uri", redirectURI))
	if r.status != 200 {
		t.Fatalf("code exchange: %d %s", r.status, r.body)
	}
	if u := e.userinfo(t, r.str("access_token")); u.str("email") != "admin@example.com" {
		t.Fatalf("userinfo before the change: %s; want the email asked for by the claims request", u.body)
	}
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"openid"} })
	if u := e.userinfo(t, r.str("access_token")); u.status != 200 || u.str("email") != "" {
		t.Errorf("userinfo after email was removed from the client: %d %s; want no email", u.status, u.body)
	}
	next := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	if next.status != 200 {
		t.Fatalf("refresh: %d %s", next.status, next.body)
	}
	if got := idTokenClaims(t, next.str("id_token")); got["email"] != nil {
		t.Errorf("the refresh's ID token has email %v; want none", got["email"])
	}
	if u := e.userinfo(t, next.str("access_token")); u.str("email") != "" {
		t.Errorf("userinfo with the refreshed token: %s; want no email", u.body)
	}
}

// RFC 7662 §2.2: introspection reports the scopes the client's registration
// still lists; a token whose scopes were all removed is inactive, and a
// refresh of its grant is invalid_grant.
func TestIntrospectionAndRefreshAfterScopesWereRemoved(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"email", "profile"} })
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code("scope", "email profile"), "redirect_uri", redirectURI))
	at := r.str("access_token")
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"profile"} })
	if i := e.introspect(seedAuth, "token", at); i.str("scope") != "profile" {
		t.Errorf("introspection after email was removed: %s; want scope profile", i.body)
	}
	updateClient(e, func(c *oauthd.Client) { c.Scopes = []string{"other"} })
	if i := e.introspect(seedAuth, "token", at); strings.TrimSpace(i.body) != `{"active":false}` {
		t.Errorf("introspection after every scope was removed: %s; want inactive", i.body)
	}
	if f := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token"))); f.str("error") != "invalid_grant" {
		t.Errorf("refresh after every scope was removed: %d %s; want invalid_grant", f.status, f.body)
	}
}

// idTokenClaims decodes the payload of a JWS, unverified.
func idTokenClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// A code whose request left redirect_uri out went to the client's one
// registered URI (RFC 6749 §3.1.2.3); once the client has none or several,
// the code is not redeemed.
func TestCodeWithoutRedirectURIAfterTheURIsChanged(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	b := e.browser()
	u := e.authorize(b, e.url(oauthd.AuthorizePath+"?client_id="+clientID+"&response_type=code&state=s&scope=email"), "approve")
	code := u.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in %s", u)
	}
	updateClient(e, func(c *oauthd.Client) { c.RedirectURIs = append(c.RedirectURIs, "https://client.example.net/second") })
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code))
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Errorf("redemption after a second URI was registered: %d %s; want invalid_grant", r.status, r.body)
	}
}
