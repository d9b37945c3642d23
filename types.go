package oauthd

import (
	"slices"
	"strings"
	"time"
)

// Grant types (RFC 6749 §4, RFC 8628).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	GrantPassword          = "password"
	GrantImplicit          = "implicit"
	// GrantDeviceCode names RFC 8628's grant, which the Provider does not
	// serve (yet): Client.Validate refuses it, and the token endpoint
	// answers unsupported_grant_type.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// Client authentication methods (RFC 7591 §2).
const (
	AuthMethodBasic = "client_secret_basic"
	AuthMethodPost  = "client_secret_post"
	AuthMethodNone  = "none"
)

// Client is a registered OAuth client (RFC 6749 §2, RFC 7591 §2).
// The zero values are the safe defaults: a confidential client with no
// redirect URIs, no grants and no scopes.
//
// The stores keep a Client as given: check it with Validate before
// CreateClient or UpdateClient (`oauthd client` does). The Provider
// refuses at request time what it cannot serve safely from a
// registration that skipped Validate (see there).
type Client struct {
	// ID is the client_id.
	ID string `json:"client_id"`
	// SecretHash is the slow-KDF hash of the client secret (make it with
	// HashSecret); empty for public clients.
	SecretHash string `json:"secret_hash,omitempty"`
	// Name is shown on the consent page; ID is shown when empty.
	Name string `json:"client_name,omitempty"`
	// RedirectURIs are compared as exact strings, except that the port of a
	// loopback redirect URI may vary (RFC 8252 §7.3).
	RedirectURIs []string `json:"redirect_uris,omitempty"`
	// PostLogoutRedirectURIs are the URIs RP-initiated logout may return to.
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	// GrantTypes the client may use, e.g. "authorization_code", "refresh_token".
	GrantTypes []string `json:"grant_types,omitempty"`
	// ResponseTypes the client may ask for at the authorization endpoint;
	// empty means "code" when the client has the authorization_code grant.
	ResponseTypes []string `json:"response_types,omitempty"`
	// Scopes the client may ask for; the default when a request names none.
	Scopes []string `json:"scopes,omitempty"`
	// Public is true for clients that cannot keep a secret (RFC 6749 §2.1);
	// they authenticate with client_id alone and must use PKCE.
	Public bool `json:"public,omitempty"`
	// TokenEndpointAuthMethod is client_secret_basic, client_secret_post or
	// none (public clients). Confidential clients may use either secret method.
	TokenEndpointAuthMethod string `json:"token_endpoint_auth_method,omitempty"`
	// RequirePKCE makes PKCE mandatory for a confidential client. It is always
	// mandatory for public clients.
	RequirePKCE bool `json:"require_pkce,omitempty"`
	// ResourceServer lets the client introspect tokens issued to any
	// client (RFC 7662 §2.1); other clients see only their own tokens.
	ResourceServer bool `json:"resource_server,omitempty"`
	// SkipConsent marks a first-party client the operator pre-approved: no
	// consent page is shown unless the request has prompt=consent.
	SkipConsent bool `json:"skip_consent,omitempty"`
	// ClaimsInIDToken puts the claims of the granted scopes (profile,
	// email, address, phone) in the ID tokens of the token endpoint as well
	// as at userinfo. By default they are at userinfo only, as OIDC Core
	// §5.4 says for a response with an access token; relying parties that
	// read the person's profile from the ID token alone (Auth.js's default,
	// passport-openidconnect without its userinfo call, go-oidc's example
	// reading email from the ID token) need it. ID tokens of the
	// authorization endpoint (hybrid flows), which travel through the
	// browser, keep them out; response_type=id_token, which has no
	// userinfo, always has them.
	ClaimsInIDToken bool `json:"claims_in_id_token,omitempty"`
	// AccessTokenTTL and RefreshTokenTTL override the server's lifetimes when
	// non-zero. A negative one is invalid: the Provider issues nothing to
	// the client (see Validate).
	AccessTokenTTL  time.Duration `json:"access_token_ttl,omitempty"`
	RefreshTokenTTL time.Duration `json:"refresh_token_ttl,omitempty"`
	// IDTokenSignedResponseAlg is RS256 (default), ES256 or EdDSA; any
	// other (such as "none") is invalid: the Provider issues nothing to
	// the client (see Validate).
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	// LogoURI (https only: the pages load images over https alone) and
	// ClientURI (http or https) are shown on the consent page.
	LogoURI   string `json:"logo_uri,omitempty"`
	ClientURI string `json:"client_uri,omitempty"`
	// CreatedAt is when the client was registered; tokens, codes and
	// consents older than that belong to an earlier client with the same
	// client_id (see Predates). Set it when registering: stores keep it as
	// given, and a zero CreatedAt predates nothing. UpdateClient stores
	// the record as given, CreatedAt included: update a Client read from
	// the store, which carries it, rather than a new value.
	CreatedAt time.Time `json:"created_at"`
}

// AllowsGrant reports whether the client may use the grant type.
func (c *Client) AllowsGrant(grant string) bool { return slices.Contains(c.GrantTypes, grant) }

// registrationSkew is how much earlier than a client's CreatedAt a
// record of it may be made and still count as this client's: the clocks
// of the process that registered it and of the nodes may differ a little.
const registrationSkew = 2 * time.Second

// Predates reports whether a record of the client (a token, a code, a
// remembered consent) made at t is older than the client's registration,
// less 2 s allowed for clocks of the nodes and of the registering process
// that differ: it belongs to an earlier client with the same client_id,
// deleted since, and counts for nothing. A client deleted and registered
// again under its old client_id so gets none of the tokens, codes and
// consents people gave the earlier one, provided it is registered more
// than 2 s after the last of them was made (plus twice
// Config.ClientCacheTTL, during which nodes may still issue to the deleted
// client; `oauthd client delete` waits that long before returning). A zero CreatedAt predates
// nothing.
func (c *Client) Predates(t time.Time) bool {
	return !c.CreatedAt.IsZero() && t.Before(c.CreatedAt.Add(-registrationSkew))
}

// ConsentRememberable reports whether a person's approval of the client may
// be remembered, and a remembered one stand for their approval of a
// request answered at redirectURI. Not for a public client answered at a
// loopback or private-use-scheme URI: any program on the device can
// listen there and send the client's ID, so the client's identity cannot
// be assured and each request is asked as if none had been approved
// (RFC 8252 §8.6, RFC 9700 §4.15). A public client answered at an https
// URI is identified by it (a web application's origin, a native
// application's claimed https URI, RFC 8252 §7.2). The built-in consent
// page follows it; a program with its own consent page (Config.LoginURL)
// should too.
func (c *Client) ConsentRememberable(redirectURI string) bool {
	return !c.Public || strings.HasPrefix(redirectURI, "https://")
}

// User is a resource owner who signs in with a username and password.
type User struct {
	// ID is the stable, never reassigned subject identifier ("sub").
	ID string `json:"id"`
	// Username is what the person types on the login page; unique.
	Username string `json:"username"`
	// PasswordHash is the slow-KDF hash of the password.
	PasswordHash string `json:"password_hash,omitempty"`
	// Claims are the OpenID Connect standard claims (OIDC Core §5.1:
	// name, email, address...), released by the scopes profile, email,
	// address and phone or asked for by the claims parameter. Other keys
	// are kept but never released: the Provider has no hook for claims of
	// a program's own (roles, tenant) yet.
	Claims    map[string]any `json:"claims,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	UpdatedAt time.Time      `json:"updated_at"`
	// PasswordChangedAt is when the password was last changed (zero if
	// never): browser sessions signed in before it are over, and the
	// person signs in again with the new password. Whoever changes
	// PasswordHash sets it (`oauthd user passwd` does). Tokens already
	// issued to clients stay valid; `oauthd grants revoke` ends them.
	PasswordChangedAt time.Time `json:"password_changed_at,omitzero"`
}

// AuthRequest is a validated authorization request waiting for the person
// to log in and decide (RFC 6749 §4.1.1, OIDC Core §3.1.2.1). It is stored
// so any node can continue it.
type AuthRequest struct {
	ID string `json:"id"`
	// BrowserHash binds the request to the browser that started it: the
	// hash of its CSRF cookie.
	BrowserHash string `json:"browser_hash"`
	ClientID    string `json:"client_id"`
	RedirectURI string `json:"redirect_uri"`
	// RedirectURIOmitted is set when the request had no redirect_uri and
	// RedirectURI is the client's one registered URI (RFC 6749 §3.1.2.3):
	// the token request then need not send one (§4.1.3).
	RedirectURIOmitted  bool      `json:"redirect_uri_omitted,omitempty"`
	ResponseType        string    `json:"response_type"`
	ResponseMode        string    `json:"response_mode,omitempty"`
	Scopes              []string  `json:"scopes,omitempty"`
	State               string    `json:"state,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              *int64    `json:"max_age,omitempty"`
	LoginHint           string    `json:"login_hint,omitempty"`
	IDTokenHintSubject  string    `json:"id_token_hint_sub,omitempty"`
	UILocales           []string  `json:"ui_locales,omitempty"`
	Display             string    `json:"display,omitempty"`
	ACRValues           []string  `json:"acr_values,omitempty"`
	Claims              string    `json:"claims,omitempty"`
	CreatedAt           time.Time `json:"created_at"`
	ExpiresAt           time.Time `json:"expires_at"`
}

// AuthCode is an issued authorization code (RFC 6749 §4.1.2). Only the hash
// of the code is stored.
type AuthCode struct {
	Hash string
	// GrantID names the family of tokens the code's redemption issues, so a
	// replayed code can revoke them.
	GrantID             string
	ClientID            string
	Subject             string
	RedirectURI         string
	Scopes              []string
	CodeChallenge       string
	CodeChallengeMethod string
	Nonce               string
	// Claims is the OIDC claims request parameter (JSON), if any.
	Claims    string
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	// UsedAt is set by ConsumeAuthCode.
	UsedAt time.Time
}

// Token kinds.
const (
	AccessToken  = "access_token"
	RefreshToken = "refresh_token"
)

// Token is an issued access or refresh token. Only its hash is stored.
type Token struct {
	Hash string
	// Kind is AccessToken or RefreshToken.
	Kind string
	// GrantID is the family the token belongs to: every token descended from
	// one authorization shares it, so the family can be revoked at once.
	// It is empty for a token of no family: a client_credentials access
	// token, which has no refresh token and descends from no code.
	// RevokeGrant refuses an empty grant ID.
	GrantID  string
	ClientID string
	// Subject is the user's ID; empty for client_credentials tokens.
	Subject   string
	Scopes    []string
	Claims    string
	AuthTime  time.Time
	IssuedAt  time.Time
	ExpiresAt time.Time
	// RotatedAt is set when a refresh token was exchanged for a successor.
	RotatedAt time.Time
	// Successor holds the successor tokens sealed with a key only the
	// presenter of this refresh token can derive (for the grace window).
	Successor []byte
}

// Active reports whether the token can be used at now.
func (t *Token) Active(now time.Time) bool {
	return now.Before(t.ExpiresAt) && t.RotatedAt.IsZero()
}

// Session is a signed-in browser. Only the hash of the cookie is stored.
type Session struct {
	Hash      string
	UserID    string
	AuthTime  time.Time
	ExpiresAt time.Time
}

// Consent is a person's remembered decision to let a client use scopes.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SigningKey is a JSON Web Key the server signs ID tokens with.
type SigningKey struct {
	ID        string
	Algorithm string
	// Private is the private key as JWK JSON, possibly encrypted at rest.
	Private []byte
	// NotBefore is when the key starts signing; it is published earlier.
	NotBefore time.Time
	// RetireAt is when the key stops signing.
	RetireAt time.Time
	// ExpiresAt is when the key leaves the JWKS (after every token it
	// signed has expired).
	ExpiresAt time.Time
	CreatedAt time.Time
}
