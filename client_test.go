package oauthd_test

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// validClient is a registration Client.Validate accepts; each case of
// TestClientValidate changes one thing.
func validClient() *oauthd.Client {
	return &oauthd.Client{ID: "app", SecretHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA",
		RedirectURIs: []string{"https://app.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb"}, PostLogoutRedirectURIs: []string{"https://app.example/bye"},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, ResponseTypes: []string{"code"},
		Scopes: []string{"openid", "email"}, TokenEndpointAuthMethod: oauthd.AuthMethodBasic,
		LogoURI: "https://app.example/logo.png", ClientURI: "https://app.example/", IDTokenSignedResponseAlg: oauthd.AlgES256,
		AccessTokenTTL: time.Minute}
}

func TestClientValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *oauthd.Client)
		want   string // "" for valid; else a part of the error
	}{
		{"valid_confidential", func(c *oauthd.Client) {}, ""},
		{"valid_default_auth_method", func(c *oauthd.Client) { c.TokenEndpointAuthMethod = "" }, ""},
		{"valid_public", func(c *oauthd.Client) {
			c.Public, c.SecretHash, c.TokenEndpointAuthMethod = true, "", oauthd.AuthMethodNone
		}, ""},
		{"valid_bcrypt_hash", func(c *oauthd.Client) { c.SecretHash = "$2a$10$" + strings.Repeat("a", 53) }, ""},
		{"valid_service_without_redirect", func(c *oauthd.Client) {
			c.GrantTypes, c.RedirectURIs, c.ResponseTypes = []string{oauthd.GrantClientCredentials}, nil, nil
		}, ""},
		{"valid_hybrid_response_type", func(c *oauthd.Client) {
			c.GrantTypes = append(c.GrantTypes, oauthd.GrantImplicit)
			c.ResponseTypes = []string{"code", "code id_token"}
		}, ""},
		{"ID_required", func(c *oauthd.Client) { c.ID = "" }, "ID is required"},
		{"ID_with_space", func(c *oauthd.Client) { c.ID = "my app" }, "spaces or control characters"},
		{"RFC6749_3.1.2.1/redirect_javascript_scheme", func(c *oauthd.Client) { c.RedirectURIs = []string{"javascript:alert(1)"} }, "redirect URI"},
		{"OAuth2.1_2.3.1/redirect_http_not_loopback", func(c *oauthd.Client) { c.RedirectURIs = []string{"http://evil.example/cb"} }, "not loopback"},
		{"RFC6749_3.1.2/redirect_fragment", func(c *oauthd.Client) { c.RedirectURIs = []string{"https://x.example/cb#frag"} }, "fragment"},
		{"RFC9207/redirect_query_iss", func(c *oauthd.Client) {
			c.RedirectURIs = []string{"https://x.example/cb?iss=https%3A%2F%2Fevil.example"}
		}, "query parameter iss"},
		{"RFC6749_4.1.2/redirect_query_code", func(c *oauthd.Client) { c.RedirectURIs = []string{"https://x.example/cb?a=1&code=zzz"} }, "query parameter code"},
		{"RFC6749_4.1.2/redirect_query_state_escaped", func(c *oauthd.Client) { c.RedirectURIs = []string{"https://x.example/cb?st%61te=x"} }, "query parameter state"},
		{"OIDC_RPLogout_3/post_logout_query_state", func(c *oauthd.Client) { c.PostLogoutRedirectURIs = []string{"https://x.example/bye?state=1"} }, "query parameter state"},
		{"OIDC_RPLogout_3/post_logout_query_of_its_own", func(c *oauthd.Client) {
			c.PostLogoutRedirectURIs = []string{"https://x.example/login?error=signed_out"}
		}, ""},
		{"RFC6749_3.1.2/redirect_query_of_its_own", func(c *oauthd.Client) { c.RedirectURIs = []string{"https://x.example/cb?tenant=a&codes=1"} }, ""},
		{"RFC6749_3.1.2/redirect_relative", func(c *oauthd.Client) { c.RedirectURIs = []string{"/cb"} }, "not absolute"},
		{"post_logout_redirect_javascript", func(c *oauthd.Client) { c.PostLogoutRedirectURIs = []string{"javascript:alert(1)"} }, "PostLogoutRedirectURIs"},
		{"code_grant_needs_redirect_uri", func(c *oauthd.Client) { c.RedirectURIs = nil }, "need a redirect URI"},
		{"unknown_grant", func(c *oauthd.Client) { c.GrantTypes = append(c.GrantTypes, "made_up") }, `grant type "made_up"`},
		{"device_code_grant_not_served", func(c *oauthd.Client) { c.GrantTypes = append(c.GrantTypes, oauthd.GrantDeviceCode) }, "grant type"},
		{"response_type_unknown", func(c *oauthd.Client) { c.ResponseTypes = []string{"code token_id"} }, "not one the Provider serves"},
		{"response_type_order", func(c *oauthd.Client) {
			c.GrantTypes = append(c.GrantTypes, oauthd.GrantImplicit)
			c.ResponseTypes = []string{"id_token code"}
		}, `write it "code id_token"`},
		{"response_type_without_its_grant", func(c *oauthd.Client) { c.ResponseTypes = []string{"code id_token"} }, "needs the implicit grant"},
		{"RFC6749_3.3/scope_with_space", func(c *oauthd.Client) { c.Scopes = []string{"a b"} }, "one scope token"},
		{"RFC6749_3.3/scope_with_quote", func(c *oauthd.Client) { c.Scopes = []string{`a"b`} }, "one scope token"},
		{"RFC6749_3.3/scope_empty", func(c *oauthd.Client) { c.Scopes = []string{""} }, "one scope token"},
		{"auth_method_unknown", func(c *oauthd.Client) { c.TokenEndpointAuthMethod = "client_secret_jwt" }, "token_endpoint_auth_method"},
		{"auth_method_none_confidential", func(c *oauthd.Client) { c.TokenEndpointAuthMethod = oauthd.AuthMethodNone }, "none is for public clients"},
		{"public_with_secret_method", func(c *oauthd.Client) { c.Public, c.SecretHash = true, "" }, "a public client authenticates with none"},
		{"public_with_secret_hash", func(c *oauthd.Client) { c.Public, c.TokenEndpointAuthMethod = true, oauthd.AuthMethodNone }, "SecretHash is set"},
		{"public_client_credentials", func(c *oauthd.Client) {
			c.Public, c.SecretHash, c.TokenEndpointAuthMethod = true, "", oauthd.AuthMethodNone
			c.GrantTypes = append(c.GrantTypes, oauthd.GrantClientCredentials)
		}, "cannot use client_credentials"},
		{"confidential_plaintext_secret", func(c *oauthd.Client) { c.SecretHash = "plaintext-secret" }, "made by oauthd.HashSecret"},
		{"confidential_without_secret", func(c *oauthd.Client) { c.SecretHash = "" }, "made by oauthd.HashSecret"},
		{"logo_uri_http", func(c *oauthd.Client) { c.LogoURI = "http://app.example/logo.png" }, "LogoURI"},
		{"logo_uri_javascript", func(c *oauthd.Client) { c.LogoURI = "javascript:alert(1)" }, "LogoURI"},
		{"client_uri_javascript", func(c *oauthd.Client) { c.ClientURI = "javascript:alert(1)" }, "ClientURI"},
		{"id_token_alg_none", func(c *oauthd.Client) { c.IDTokenSignedResponseAlg = "none" }, `id_token_signed_response_alg "none"`},
		{"id_token_alg_hs256", func(c *oauthd.Client) { c.IDTokenSignedResponseAlg = "HS256" }, "not supported"},
		{"access_token_ttl_under_a_second", func(c *oauthd.Client) { c.AccessTokenTTL = 500 * time.Millisecond }, "at least 1s"},
		{"valid_refresh_token_ttl_twenty_years", func(c *oauthd.Client) { c.RefreshTokenTTL = 175200 * time.Hour }, ""},
		{"valid_name_with_joiners", func(c *oauthd.Client) { c.Name = "کتاب\u200cخانه 👨\u200d👩\u200d👧" }, ""},
		{"OIDC_Core_3.1.2.4/name_with_soft_hyphen", func(c *oauthd.Client) { c.Name = "Pay\u00adPal" }, "invisible character"},
		{"OIDC_Core_3.1.2.4/name_with_hangul_filler", func(c *oauthd.Client) { c.Name = "Pay\u3164Pal" }, "invisible character"},
		{"OIDC_Core_3.1.2.4/name_with_tag_character", func(c *oauthd.Client) { c.Name = "Pay\U000E0041Pal" }, "invisible character"},
		{"OIDC_Core_3.1.2.4/name_with_khmer_invisible", func(c *oauthd.Client) { c.Name = "Pay\u17b4Pal" }, "invisible character"},
		{"OIDC_Core_3.1.2.4/name_with_bidi_isolate", func(c *oauthd.Client) { c.Name = "App \u2067x" }, "invisible character"},
		{"valid_access_token_ttl_1s", func(c *oauthd.Client) { c.AccessTokenTTL = time.Second }, ""},
		{"OIDC_Core_3.1.2.4/name_with_bidi_override", func(c *oauthd.Client) { c.Name = "Photo App \u202elgooG" }, "invisible character"},
		{"OIDC_Core_3.1.2.4/name_with_zero_width_space", func(c *oauthd.Client) { c.Name = "Goo\u200bgle" }, "invisible character"},
		{"name_with_new_line", func(c *oauthd.Client) { c.Name = "App\nSign in here" }, "control"},
		{"name_with_escape_sequence", func(c *oauthd.Client) { c.Name = "App\x1b[31m" }, "control"},
		{"name_too_long", func(c *oauthd.Client) { c.Name = strings.Repeat("a", 513) }, "at most 512"},
		{"valid_name_any_script", func(c *oauthd.Client) { c.Name = "Café 東京\u3000アプリ — שלום ✓" }, ""},
		{"ID_too_long", func(c *oauthd.Client) { c.ID = strings.Repeat("a", 256) }, "at most 255"},
		{"negative_access_token_ttl", func(c *oauthd.Client) { c.AccessTokenTTL = -time.Hour }, "negative token lifetime"},
		{"negative_refresh_token_ttl", func(c *oauthd.Client) { c.RefreshTokenTTL = -time.Second }, "negative token lifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validClient()
			tc.change(c)
			before := *c
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v; want an error about %q", err, tc.want)
			}
			if c.Public != before.Public || c.TokenEndpointAuthMethod != before.TokenEndpointAuthMethod {
				t.Errorf("Validate changed the client: %+v; was %+v", c, before)
			}
		})
	}
}

// The clients the test environment registers are valid.
func TestClientValidateTestClients(t *testing.T) {
	e := newOIDCEnv(t)
	cs, err := e.store.Clients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if err := c.Validate(); err != nil {
			t.Errorf("client %s: %v", c.ID, err)
		}
	}
}

// A client registered in the store without Client.Validate is served
// safely: a redirect URI ValidateRedirectURI refuses gets an error page,
// never a redirect (RFC 6749 §4.1.2.1: the authorization server MUST NOT
// redirect to an invalid redirection URI), at the authorization endpoint,
// at the end of a sign-in (the consent page, PendingRequest) and at
// RP-initiated logout; the reason is logged.
func TestInvalidRedirectURIRegisteredInStore(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, func(c *oauthd.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	bad := []string{"javascript:alert(1)", "http://evil.example/cb", "https://x.example/cb#frag", "data:text/html,hi", "http://127.0.0.1/cb#frag"}
	if err := e.store.CreateClient(t.Context(), &oauthd.Client{ID: "bad", Public: true, RedirectURIs: bad, PostLogoutRedirectURIs: bad,
		GrantTypes: []string{oauthd.GrantAuthorizationCode}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	for _, uri := range bad {
		t.Run("RFC6749_4.1.2.1/authorize/"+uri, func(t *testing.T) {
			q := url.Values{"client_id": {"bad"}, "redirect_uri": {uri}, "response_type": {"code"}, "scope": {"email"}, "state": {"s"},
				"code_challenge": {challenge}, "code_challenge_method": {"S256"}}
			r := e.browser().get(e.url(oauthd.AuthorizePath + "?" + q.Encode()))
			if r.status != http.StatusBadRequest || r.location() != "" || r.str("Code") != oauthd.PageInvalidRedirectURI {
				t.Errorf("authorize: %d Location %q %s; want 400, the invalid_redirect_uri page and no redirect", r.status, r.location(), r.body)
			}
		})
		t.Run("OIDC_RPInitiated_3/logout/"+uri, func(t *testing.T) {
			q := url.Values{"client_id": {"bad"}, "post_logout_redirect_uri": {uri}}
			r := e.browser().get(e.url(oauthd.LogoutPath + "?" + q.Encode()))
			if r.status != http.StatusBadRequest || r.location() != "" || r.str("Code") != oauthd.PageInvalidRedirectURI {
				t.Errorf("logout: %d Location %q %s; want 400, the invalid_redirect_uri page and no redirect", r.status, r.location(), r.body)
			}
		})
	}
	if !strings.Contains(logs.String(), "invalid client registration") || !strings.Contains(logs.String(), "client_id=bad") {
		t.Errorf("the reason is not logged:\n%s", logs.String())
	}

	// A request that began while the registration was valid is not
	// answered once it was made invalid in the store.
	c, _ := e.store.Client(t.Context(), clientID)
	b := e.browser()
	r := b.follow(e, b.get(e.authorizeURL()))
	r = b.follow(e, b.login(e, r, "admin", "admin"))
	if r.pageKind() != "consent" {
		t.Fatalf("want the consent page, got %d %s", r.status, r.body)
	}
	c.IDTokenSignedResponseAlg = "none"
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r = b.decide(e, r, "approve")
	if r.status != http.StatusBadRequest || r.location() != "" || r.str("Code") != oauthd.PageBadRequest {
		t.Errorf("consent with the registration made invalid: %d Location %q %s; want the error page, no redirect", r.status, r.location(), r.body)
	}
}

// A negative per-client lifetime is not replaced by the server's in
// silence: the client gets unauthorized_client, at the authorization
// endpoint (a redirect: its redirect URI is valid) and at the token
// endpoint, before anything is issued.
func TestNegativeClientTTLRefused(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	code := e.code()
	c, _ := e.store.Client(t.Context(), clientID)
	c.AccessTokenTTL = -time.Hour
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	r := e.browser().get(e.authorizeURL())
	if u, _ := url.Parse(r.location()); r.status != http.StatusSeeOther || u.Query().Get("error") != oauthd.ErrorUnauthorizedClient {
		t.Errorf("authorize: %d %s; want a redirect with error=unauthorized_client", r.status, r.location())
	}
	tok := e.token(basic(clientID, clientSecret), form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	if tok.status != http.StatusBadRequest || tok.str("error") != oauthd.ErrorUnauthorizedClient || tok.str("access_token") != "" {
		t.Errorf("token: %d %s; want 400 unauthorized_client", tok.status, tok.body)
	}
}

// RFC 8252 §8.6: a consent may be remembered for a client whose identity
// the redirect URI assures; the built-in consent page and programs with
// their own both ask ConsentRememberable.
func TestClientConsentRememberable(t *testing.T) {
	confidential := &oauthd.Client{ID: "web"}
	public := &oauthd.Client{ID: "app", Public: true}
	for _, tc := range []struct {
		name   string
		c      *oauthd.Client
		uri    string
		wanted bool
	}{
		{"RFC6749_2.1/confidential_https", confidential, "https://web.example/cb", true},
		{"RFC6749_2.1/confidential_loopback", confidential, "http://127.0.0.1:5000/cb", true},
		{"RFC8252_8.6/public_loopback", public, "http://127.0.0.1:5000/cb", false},
		{"RFC8252_8.6/public_loopback_ipv6", public, "http://[::1]/cb", false},
		{"RFC8252_8.6/public_private_use_scheme", public, "com.example.app:/cb", false},
		{"RFC8252_7.2/public_claimed_https", public, "https://app.example/cb", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.c.ConsentRememberable(tc.uri); got != tc.wanted {
				t.Errorf("ConsentRememberable(%q) = %v; want %v", tc.uri, got, tc.wanted)
			}
		})
	}
}
