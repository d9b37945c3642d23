package oauthd

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Validate checks a client's registration: what a store takes as given,
// and what the Provider needs to serve the client safely. Call it before
// CreateClient or UpdateClient; the stores do not (`oauthd client`
// does). It checks that:
//
//   - ID is set, and has no spaces or control characters;
//   - every grant type is one the Provider serves (authorization_code,
//     refresh_token, client_credentials, password, implicit);
//   - a client with the authorization_code or implicit grant has
//     redirect URIs, and every redirect URI and post-logout redirect
//     URI passes ValidateRedirectURI (absolute, no fragment, https, http
//     on loopback only, or a native app's private-use scheme; RFC 6749
//     §3.1.2, RFC 8252 §7, OAuth 2.1 §2.3.1), and has no query parameter
//     named as one the answers add to it (code, state, iss, error...; a
//     post-logout URI's: state), which the client would read twice;
//   - every response type is one the Provider serves, written in the
//     order it compares them ("code id_token", not "id_token code"), with
//     the grants it needs;
//   - every scope is one scope token (RFC 6749 §3.3);
//   - TokenEndpointAuthMethod is empty (client_secret_basic, or none for
//     a public client), client_secret_basic or client_secret_post for a
//     confidential client, none for a public one; a confidential client
//     has a SecretHash made by HashSecret (argon2id, or bcrypt), a public
//     client none, and no client_credentials grant;
//   - LogoURI is https and ClientURI http or https;
//   - IDTokenSignedResponseAlg passes ValidateIDTokenAlg (never "none");
//   - AccessTokenTTL and RefreshTokenTTL are zero (the server's lifetime)
//     or at least 1s;
//   - ID is at most 255 bytes, and Name at most 512 bytes of text
//     without control or invisible characters (bidirectional overrides,
//     zero-width characters), which the pages would not show as written.
//
// The Provider refuses at request time what would be unsafe to serve
// from a registration that skipped Validate: a redirect URI (or
// post-logout redirect URI) that ValidateRedirectURI refuses gets an
// error page instead of a redirect (RFC 6749 §4.1.2.1), and a client
// with an unsupported ID token algorithm or a negative lifetime gets
// unauthorized_client before anything is issued, with the reason in the
// log.
func (c *Client) Validate() error {
	if c.ID == "" {
		return errors.New("oauthd: client: ID is required")
	}
	if strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r == 0x7f }) || !validText(c.ID) {
		return fmt.Errorf("oauthd: client %q: the ID has spaces or control characters", c.ID)
	}
	if len(c.ID) > maxClientIDLen {
		return fmt.Errorf("oauthd: client %.40q...: the ID is %d bytes long; at most %d are allowed", c.ID, len(c.ID), maxClientIDLen)
	}
	if err := checkDisplayName(c.Name); err != nil {
		return fmt.Errorf("oauthd: client %s: Name: %w", c.ID, err)
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(servedGrants, g) {
			return fmt.Errorf("oauthd: client %s: grant type %q is not one the Provider serves: use %s", c.ID, g, strings.Join(servedGrants, ", "))
		}
	}
	if (c.AllowsGrant(GrantAuthorizationCode) || c.AllowsGrant(GrantImplicit)) && len(c.RedirectURIs) == 0 {
		return fmt.Errorf("oauthd: client %s: the authorization_code and implicit grants need a redirect URI", c.ID)
	}
	for _, u := range c.RedirectURIs {
		if err := validateRegisteredURI(u, responseParams); err != nil {
			return fmt.Errorf("oauthd: client %s: RedirectURIs: %w", c.ID, err)
		}
	}
	for _, u := range c.PostLogoutRedirectURIs {
		if err := validateRegisteredURI(u, logoutParams); err != nil {
			return fmt.Errorf("oauthd: client %s: PostLogoutRedirectURIs: %w", c.ID, err)
		}
	}
	for _, rt := range c.ResponseTypes {
		need, ok := responseTypeGrants[rt]
		if !ok {
			if norm := normalizeResponseType(rt); responseTypeGrants[norm] != nil {
				return fmt.Errorf("oauthd: client %s: response type %q: write it %q (the Provider compares response types as strings)", c.ID, rt, norm)
			}
			return fmt.Errorf("oauthd: client %s: response type %q is not one the Provider serves: use code, token, id_token, \"id_token token\", \"code id_token\", \"code token\" or \"code id_token token\"", c.ID, rt)
		}
		for _, g := range need {
			if !c.AllowsGrant(g) {
				return fmt.Errorf("oauthd: client %s: response type %q needs the %s grant", c.ID, rt, g)
			}
		}
	}
	for _, s := range c.Scopes {
		if got, ok := ParseScope(s); !ok || len(got) != 1 || got[0] != s {
			return fmt.Errorf("oauthd: client %s: scope %q is not one scope token (printable ASCII without spaces, quotes or backslashes; RFC 6749 §3.3)", c.ID, s)
		}
	}
	switch c.TokenEndpointAuthMethod {
	case "":
	case AuthMethodBasic, AuthMethodPost:
		if c.Public {
			return fmt.Errorf("oauthd: client %s: a public client authenticates with none, not %s", c.ID, c.TokenEndpointAuthMethod)
		}
	case AuthMethodNone:
		if !c.Public {
			return fmt.Errorf("oauthd: client %s: token_endpoint_auth_method none is for public clients: set Public", c.ID)
		}
	default:
		return fmt.Errorf("oauthd: client %s: token_endpoint_auth_method %q: use client_secret_basic, client_secret_post or none", c.ID, c.TokenEndpointAuthMethod)
	}
	switch {
	case c.Public && c.SecretHash != "":
		return fmt.Errorf("oauthd: client %s: a public client has no secret, but SecretHash is set", c.ID)
	case !c.Public && !secretHashShaped(c.SecretHash):
		// The secret itself, stored where its hash belongs, would never
		// match: and would be readable by anyone who reads the store.
		return fmt.Errorf("oauthd: client %s: a confidential client needs a SecretHash made by oauthd.HashSecret (argon2id or bcrypt)", c.ID)
	case c.Public && c.AllowsGrant(GrantClientCredentials):
		return fmt.Errorf("oauthd: client %s: a public client cannot use client_credentials", c.ID)
	}
	if c.LogoURI != "" && !strings.HasPrefix(c.LogoURI, "https://") {
		// The consent page's Content-Security-Policy loads images over
		// https only.
		return fmt.Errorf("oauthd: client %s: LogoURI %q: use an https URL", c.ID, c.LogoURI)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"AccessTokenTTL", c.AccessTokenTTL}, {"RefreshTokenTTL", c.RefreshTokenTTL}} {
		// Zero is the server's lifetime; a token that lives less than a
		// second is dead on arrival (expires_in counts whole seconds).
		if d.v > 0 && d.v < time.Second {
			return fmt.Errorf("oauthd: client %s: %s %s: use 0 (the server's lifetime) or at least 1s", c.ID, d.name, d.v)
		}
	}
	if c.ClientURI != "" {
		if u, err := url.Parse(c.ClientURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("oauthd: client %s: ClientURI %q: use an http or https URL", c.ID, c.ClientURI)
		}
	}
	return c.issuable()
}

// validateRegisteredURI is ValidateRedirectURI, and refuses a query
// parameter of the names the server's answers add (see
// answerParamInQuery).
func validateRegisteredURI(s string, answer []string) error {
	if err := ValidateRedirectURI(s); err != nil {
		return err
	}
	if u, err := url.Parse(s); err == nil {
		if name, ok := answerParamInQuery(u.RawQuery, answer); ok {
			return fmt.Errorf("oauthd: redirect URI %q has a query parameter %s, which the server's answers add: the client would read two (RFC 6749 §3.1.2, RFC 9207)", s, name)
		}
	}
	return nil
}

// maxClientIDLen and maxClientNameLen bound what a registration may
// hold: a client_id travels in every request, a name is shown on pages.
const (
	maxClientIDLen   = 255
	maxClientNameLen = 512
)

// checkDisplayName refuses a name the pages would show other than as
// written: control characters (a new line, an escape sequence on a
// terminal listing clients), line and paragraph separators, the
// bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
// U+061C) that would reverse the words of the page's sentence around the
// name, and the other invisible format characters (Unicode's Cf: U+200B,
// U+2060–U+206F, U+FEFF, U+180E, the soft hyphen, tag characters...),
// and invisible letters and marks (U+034F, the Hangul fillers, U+17B4,
// U+17B5).
// Letters of every script, marks, symbols, spaces, and the joiners
// writing needs (U+200C and U+200D: Persian, Indic scripts, emoji
// sequences) are fine.
func checkDisplayName(name string) error {
	if len(name) > maxClientNameLen {
		return fmt.Errorf("%d bytes long; at most %d are allowed", len(name), maxClientNameLen)
	}
	if !utf8.ValidString(name) {
		return errors.New("not valid UTF-8 text")
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp, unicode.Bidi_Control) ||
			(unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d') ||
			r == '\u034f' || r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0' || r == '\u17b4' || r == '\u17b5' {
			return fmt.Errorf("%q has a control or invisible character (%U)", name, r)
		}
	}
	return nil
}

// servedGrants are the grant types a client may list.
var servedGrants = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantPassword, GrantImplicit}

// responseTypeGrants are the response types the Provider serves, as
// checkResponseType compares them, and the grants a client needs for
// each: code needs authorization_code; token and the OpenID Connect
// implicit types need implicit; the hybrid types need both.
var responseTypeGrants = map[string][]string{
	"code":                {GrantAuthorizationCode},
	"token":               {GrantImplicit},
	"id_token":            {GrantImplicit},
	"id_token token":      {GrantImplicit},
	"code id_token":       {GrantAuthorizationCode, GrantImplicit},
	"code token":          {GrantAuthorizationCode, GrantImplicit},
	"code id_token token": {GrantAuthorizationCode, GrantImplicit},
}

// secretHashShaped reports whether h has the form of a hash the Provider
// verifies: argon2id (HashSecret) or bcrypt. It does not run the KDF.
func secretHashShaped(h string) bool {
	for _, p := range []string{"$argon2id$", "$2a$", "$2b$", "$2y$"} {
		if strings.HasPrefix(h, p) {
			return true
		}
	}
	return false
}

// issuable is why the Provider cannot issue to the client as registered,
// or nil: the parts of Validate whose mistake would otherwise surface late
// (an ID token's algorithm, after the code it is for was used up) or
// silently (a negative lifetime, replaced by the server's).
func (c *Client) issuable() error {
	if _, err := idTokenAlg(c); err != nil {
		return err
	}
	if c.AccessTokenTTL < 0 || c.RefreshTokenTTL < 0 {
		return fmt.Errorf("oauthd: client %s has a negative token lifetime (AccessTokenTTL %s, RefreshTokenTTL %s)", c.ID, c.AccessTokenTTL, c.RefreshTokenTTL)
	}
	return nil
}

// invalidRegistration logs why a client's registration cannot be served
// and returns the error the request is answered with: code, and a
// description that sends whoever reads it to the log.
func (p *Provider) invalidRegistration(r *http.Request, c *Client, code string, err error) *Error {
	// Anyone can send requests for the client: at most one line a minute.
	now := p.now().UnixNano()
	if last := p.invalidLogged.Load(); now-last >= int64(time.Minute) && p.invalidLogged.CompareAndSwap(last, now) {
		p.log.Error("invalid client registration (see oauthd.Client.Validate; logged at most once a minute)", "request_id", RequestID(r.Context()), "client_id", c.ID, "error", err.Error())
	}
	return &Error{Code: code, Description: "this application's registration is invalid; the server's log says why"}
}

// redirectUsable is why a registered redirect URI of c may not be
// redirected to, or nil (see invalidRegistration).
func (p *Provider) redirectUsable(r *http.Request, c *Client, uri string) *Error {
	if err := ValidateRedirectURI(uri); err != nil {
		// RFC 6749 §4.1.2.1: an invalid redirection URI is not
		// redirected to; the person is told.
		return p.invalidRegistration(r, c, PageInvalidRedirectURI, err)
	}
	return nil
}
