package oauthd

import (
	"net/http"
	"slices"
	"time"
)

// discoveryMaxAge is how long clients and caches may keep the metadata.
const discoveryMaxAge = time.Hour

// Metadata is the authorization server metadata (RFC 8414 §2) and OpenID
// Provider metadata (OIDC Discovery §3) in one document: the Provider
// serves the same document at OIDCDiscoveryPath and OAuthMetadataPath, so
// the two never disagree.
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	ClaimTypesSupported                        []string `json:"claim_types_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	RequireRequestURIRegistration              bool     `json:"require_request_uri_registration"`
	DisplayValuesSupported                     []string `json:"display_values_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	UILocalesSupported                         []string `json:"ui_locales_supported,omitempty"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
}

// Metadata describes the Provider as configured: every endpoint, and the
// response types, grant types and PKCE methods that Config enables.
func (p *Provider) Metadata() *Metadata {
	iss := p.cfg.Issuer
	responseTypes := []string{"code"}
	grants := []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
	if p.cfg.EnableImplicitGrant {
		responseTypes = append(responseTypes, "token", "id_token", "id_token token", "code id_token", "code token", "code id_token token")
		grants = append(grants, GrantImplicit)
	}
	if p.cfg.EnablePasswordGrant {
		grants = append(grants, GrantPassword)
	}
	pkce := []string{PKCES256}
	if p.cfg.AllowPlainPKCE {
		pkce = append(pkce, PKCEPlain)
	}
	claims := []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "at_hash"}
	if p.cfg.EnableImplicitGrant {
		claims = append(claims, "c_hash") // only hybrid responses carry it
	}
	claims = append(claims, StandardClaims()...)
	return &Metadata{
		Issuer:                                    iss,
		AuthorizationEndpoint:                     iss + AuthorizePath,
		TokenEndpoint:                             iss + TokenPath,
		UserinfoEndpoint:                          iss + UserinfoPath,
		JWKSURI:                                   iss + JWKSPath,
		EndSessionEndpoint:                        iss + LogoutPath,
		IntrospectionEndpoint:                     iss + IntrospectPath,
		RevocationEndpoint:                        iss + RevokePath,
		ScopesSupported:                           StandardScopes(),
		ResponseTypesSupported:                    responseTypes,
		ResponseModesSupported:                    []string{ResponseModeQuery, ResponseModeFragment, ResponseModeFormPost},
		GrantTypesSupported:                       grants,
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          SigningAlgorithms(),
		TokenEndpointAuthMethodsSupported:         []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone},
		IntrospectionEndpointAuthMethodsSupported: []string{AuthMethodBasic, AuthMethodPost},
		RevocationEndpointAuthMethodsSupported:    []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone},
		CodeChallengeMethodsSupported:             pkce,
		ClaimsSupported:                           claims,
		ClaimTypesSupported:                       []string{"normal"},
		ClaimsParameterSupported:                  true,
		RequestParameterSupported:                 false,
		RequestURIParameterSupported:              false,
		RequireRequestURIRegistration:             false,
		DisplayValuesSupported:                    []string{"page", "popup", "touch", "wap"},
		// The prompt values an authorization request may carry (OpenID
		// Connect Prompt Create 1.0 §4.1 defines the metadata; create is
		// not among them: oauthd has no sign-up page).
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		UILocalesSupported:                         slices.Clone(p.cfg.UILocales),
		AuthorizationResponseIssParameterSupported: true,
	}
}

// handleDiscovery serves the metadata document (OIDC Discovery §4, RFC 8414
// §3). Its issuer is exactly Config.Issuer, never derived from the
// request's Host or X-Forwarded-* headers.
func (p *Provider) handleDiscovery(w http.ResponseWriter, r *http.Request) {
	publicCache(w, discoveryMaxAge)
	writeJSON(w, http.StatusOK, p.Metadata())
}
