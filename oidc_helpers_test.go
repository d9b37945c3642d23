package oauthd_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd"
)

// The OpenID Connect test client: the demo's oidc_client, plus the
// implicit and hybrid response types for the tests that need them.
const (
	oidcClientID     = "oidc_client"
	oidcClientSecret = "oidc_secret"
	oidcRedirectURI  = "http://localhost:9000/callback"
	oidcLogoutURI    = "http://localhost:9000/logged-out"
	oidcNonce        = "n-0S6_WzA2Mj"
)

var oidcAuth = basic(oidcClientID, oidcClientSecret)

// adminClaims are the test user's standard claims (OIDC Core §5.1).
var adminClaims = map[string]any{
	"name": "Admin User", "name#fr": "Utilisateur Admin", "given_name": "Admin", "family_name": "User",
	"email": "admin@example.com", "email_verified": true,
	"address":      map[string]any{"street_address": "1 Main St", "locality": "Paris", "country": "FR"},
	"phone_number": "+33 1 23 45 67 89", "phone_number_verified": false,
}

// newOIDCEnv is newEnv with the implicit and hybrid flows enabled, the
// OpenID Connect client (and a second one for the refresh token
// checks), and the claims of the admin user.
func newOIDCEnv(t *testing.T, opts ...func(*oauthd.Config)) *testEnv {
	t.Helper()
	e := newEnv(t, append([]func(*oauthd.Config){func(c *oauthd.Config) { c.EnableImplicitGrant = true }}, opts...)...)
	addOIDCClients(t, e)
	return e
}

// addOIDCClients registers newOIDCEnv's clients in e's store and gives
// the admin user its claims.
func addOIDCClients(t *testing.T, e *testEnv) {
	t.Helper()
	ctx := t.Context()
	scopes := []string{"openid", "profile", "email", "address", "phone", "offline_access"}
	all := []string{"code", "id_token", "id_token token", "code id_token", "code token", "code id_token token"}
	for _, c := range []*oauthd.Client{
		{ID: oidcClientID, SecretHash: hash(t, oidcClientSecret), RedirectURIs: []string{oidcRedirectURI},
			PostLogoutRedirectURIs: []string{oidcLogoutURI}, TokenEndpointAuthMethod: oauthd.AuthMethodBasic,
			GrantTypes:    []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantImplicit},
			ResponseTypes: all, Scopes: scopes},
		{ID: "oidc_client2", SecretHash: hash(t, "oidc_secret2"), RedirectURIs: []string{"http://localhost:9001/callback"},
			GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: scopes,
			IDTokenSignedResponseAlg: oauthd.AlgES256},
		{ID: "oidc_eddsa", SecretHash: hash(t, "eddsa_secret"), RedirectURIs: []string{"http://localhost:9002/callback"},
			GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: scopes,
			IDTokenSignedResponseAlg: oauthd.AlgEdDSA},
	} {
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	e.user.Claims = adminClaims
	e.user.UpdatedAt = e.clock.Now()
	if err := e.store.UpdateUser(ctx, e.user); err != nil {
		t.Fatal(err)
	}
}

// oidcURL is an authorization request of the OpenID Connect client: code
// flow, scope openid, a state and a nonce, with kv overriding (an empty
// value removes a parameter).
func (e *testEnv) oidcURL(kv ...string) string {
	q := url.Values{"client_id": {oidcClientID}, "redirect_uri": {oidcRedirectURI}, "response_type": {"code"},
		"scope": {"openid"}, "state": {"st-1"}, "nonce": {oidcNonce}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return e.url(oauthd.AuthorizePath + "?" + q.Encode())
}

// redeem exchanges a code of the OpenID Connect client at the token
// endpoint with client_secret_basic.
func (e *testEnv) redeem(code string, kv ...string) *response {
	e.t.Helper()
	f := form(append([]string{"grant_type", "authorization_code", "code", code, "redirect_uri", oidcRedirectURI}, kv...)...)
	r := e.token(oidcAuth, f)
	if r.status != http.StatusOK {
		e.t.Fatalf("token: %d %s", r.status, r.body)
	}
	return r
}

// responseParams are the parameters of an authorization response, from
// the fragment when there is one, else from the query.
func responseParams(u *url.URL) url.Values {
	if u.Fragment != "" {
		v, _ := url.ParseQuery(u.Fragment)
		return v
	}
	return u.Query()
}

// idTokenCheck is what checkIDToken expects beyond the checks every ID
// token gets.
type idTokenCheck struct {
	clientID string
	nonce    string // "" means no nonce claim
	authTime bool   // auth_time is required
}

// checkIDToken verifies an ID token the way the OpenID Foundation suite
// does (OIDC Core §3.1.3.7): a JWS with an allowed algorithm and a kid,
// the signature against the published JWKS, iss, aud, exp in the future,
// iat not in the future, nonce, sub, and auth_time when required. It
// returns the claims.
func (e *testEnv) checkIDToken(t *testing.T, raw string, want idTokenCheck) map[string]any {
	t.Helper()
	if raw == "" {
		t.Fatal("no id_token")
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("id_token is not a JWS with RS256, ES256 or EdDSA: %v", err)
	}
	h := jws.Signatures[0].Header
	if h.KeyID == "" {
		t.Errorf("id_token has no kid")
	}
	jwks := e.jwks(t)
	keys := jwks.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q is published %d times in the JWKS; want once", h.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("id_token signature does not verify against the JWKS: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	clientID := want.clientID
	if clientID == "" {
		clientID = oidcClientID
	}
	now := e.clock.Now().Unix()
	num := func(k string) int64 { f, _ := c[k].(float64); return int64(f) }
	if c["iss"] != e.issuer {
		t.Errorf("iss = %v; want %s", c["iss"], e.issuer)
	}
	switch aud := c["aud"].(type) {
	case string:
		if aud != clientID {
			t.Errorf("aud = %q; want %s", aud, clientID)
		}
	case []any:
		if !slices.Contains(aud, any(clientID)) || (len(aud) > 1 && c["azp"] != clientID) {
			t.Errorf("aud = %v, azp = %v; want %s", aud, c["azp"], clientID)
		}
	default:
		t.Errorf("aud = %v; want %s", c["aud"], clientID)
	}
	if exp := num("exp"); exp <= now {
		t.Errorf("exp = %d; want after now (%d)", exp, now)
	}
	if iat := num("iat"); iat == 0 || iat > now {
		t.Errorf("iat = %d; want set and not after now (%d)", iat, now)
	}
	if c["sub"] != e.user.ID {
		t.Errorf("sub = %v; want %s", c["sub"], e.user.ID)
	}
	if got, _ := c["nonce"].(string); got != want.nonce {
		t.Errorf("nonce = %q; want %q", got, want.nonce)
	}
	if _, ok := c["auth_time"]; want.authTime && !ok {
		t.Errorf("auth_time is missing")
	}
	if at := num("auth_time"); at > now {
		t.Errorf("auth_time %d is in the future", at)
	}
	return c
}

// jwks fetches the published JWK Set.
func (e *testEnv) jwks(t *testing.T) *jose.JSONWebKeySet {
	t.Helper()
	r := e.browser().get(e.url(oauthd.JWKSPath))
	if r.status != http.StatusOK {
		t.Fatalf("jwks: %d %s", r.status, r.body)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(r.body), &set); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	return &set
}

// userinfo calls the userinfo endpoint with a bearer token in the header.
func (e *testEnv) userinfo(t *testing.T, token string) *response {
	t.Helper()
	req, _ := http.NewRequest("GET", e.url(oauthd.UserinfoPath), nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return do(t, http.DefaultClient, req)
}

// authorizeExpectLogin runs an authorization request in the browser,
// signing in when the login page shows and approving (remembered) when
// the consent page shows, checks whether the login page was shown, and
// returns the redirect to the client.
func (e *testEnv) authorizeExpectLogin(t *testing.T, b *browser, authURL string, wantLogin bool) *url.URL {
	t.Helper()
	r := b.get(authURL)
	if r.status != http.StatusSeeOther {
		t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	sawLogin := false
	for range 4 {
		loc := r.location()
		if !strings.HasPrefix(loc, "/") {
			break
		}
		r = b.follow(e, r)
		switch r.pageKind() {
		case "login":
			sawLogin = true
			r = b.login(e, r, "admin", "admin")
		case "consent":
			r = b.decide(e, r, "approve", "remember", "on")
		}
	}
	if sawLogin != wantLogin {
		t.Errorf("login page shown = %v; want %v", sawLogin, wantLogin)
	}
	u, err := url.Parse(r.location())
	if err != nil || r.status != http.StatusSeeOther {
		t.Fatalf("want a redirect to the client, got %d %s", r.status, r.body)
	}
	return u
}

// tick moves the fake clock.
func (e *testEnv) tick(d time.Duration) { e.clock.Add(d) }
