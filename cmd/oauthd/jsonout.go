package main

import (
	"encoding/json"
	"flag"
	"time"

	"github.com/oauthd/oauthd"
)

// The --json output of the list and show commands: one JSON document on
// standard output (an array for the lists, [] when empty), for scripts.
// The field names follow the registration and JWKS vocabulary (RFC 7591,
// RFC 7517) where there is one; times are RFC 3339 in UTC, durations
// whole seconds. Secret and password hashes are never printed.

// jsonFlag adds --json to a list or show command.
func jsonFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("json", false, "print JSON (one document on standard output) instead of a table")
}

// writeJSON prints v as indented JSON and a newline.
func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonTime is t in RFC 3339, UTC, or "" for the zero time.
func jsonTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// orEmpty keeps an absent list an empty JSON array rather than null.
func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type clientJSON struct {
	ClientID                 string   `json:"client_id"`
	ClientName               string   `json:"client_name,omitempty"`
	Public                   bool     `json:"public"`
	TokenEndpointAuthMethod  string   `json:"token_endpoint_auth_method"`
	RedirectURIs             []string `json:"redirect_uris"`
	GrantTypes               []string `json:"grant_types"`
	ResponseTypes            []string `json:"response_types,omitempty"`
	Scopes                   []string `json:"scopes"`
	RequirePKCE              bool     `json:"require_pkce"`
	SkipConsent              bool     `json:"skip_consent"`
	ClaimsInIDToken          bool     `json:"claims_in_id_token"`
	ResourceServer           bool     `json:"resource_server"`
	PostLogoutRedirectURIs   []string `json:"post_logout_redirect_uris,omitempty"`
	IDTokenSignedResponseAlg string   `json:"id_token_signed_response_alg,omitempty"`
	LogoURI                  string   `json:"logo_uri,omitempty"`
	ClientURI                string   `json:"client_uri,omitempty"`
	AccessTokenTTL           int64    `json:"access_token_ttl,omitempty"`  // seconds
	RefreshTokenTTL          int64    `json:"refresh_token_ttl,omitempty"` // seconds
	CreatedAt                string   `json:"created_at,omitempty"`
}

func clientOut(c *oauthd.Client) clientJSON {
	method := c.TokenEndpointAuthMethod
	if method == "" {
		method = oauthd.AuthMethodBasic
		if c.Public {
			method = oauthd.AuthMethodNone
		}
	}
	return clientJSON{
		ClientID:                 c.ID,
		ClientName:               c.Name,
		Public:                   c.Public,
		TokenEndpointAuthMethod:  method,
		RedirectURIs:             orEmpty(c.RedirectURIs),
		GrantTypes:               orEmpty(c.GrantTypes),
		ResponseTypes:            c.ResponseTypes,
		Scopes:                   orEmpty(c.Scopes),
		RequirePKCE:              c.RequirePKCE || c.Public,
		SkipConsent:              c.SkipConsent,
		ClaimsInIDToken:          c.ClaimsInIDToken,
		ResourceServer:           c.ResourceServer,
		PostLogoutRedirectURIs:   c.PostLogoutRedirectURIs,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg,
		LogoURI:                  c.LogoURI,
		ClientURI:                c.ClientURI,
		AccessTokenTTL:           int64(c.AccessTokenTTL / time.Second),
		RefreshTokenTTL:          int64(c.RefreshTokenTTL / time.Second),
		CreatedAt:                jsonTime(c.CreatedAt),
	}
}

type userJSON struct {
	Username  string `json:"username"`
	Sub       string `json:"sub"`
	CreatedAt string `json:"created_at,omitempty"`
}

type consentJSON struct {
	ClientID  string   `json:"client_id"`
	Scopes    []string `json:"scopes"`
	UpdatedAt string   `json:"updated_at,omitempty"`
}

type keyJSON struct {
	KID            string `json:"kid"`
	Alg            string `json:"alg"`
	State          string `json:"state"`
	SignsFrom      string `json:"signs_from"`
	SignsUntil     string `json:"signs_until"`
	PublishedUntil string `json:"published_until"`
	Encrypted      bool   `json:"encrypted"`
}
