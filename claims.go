package oauthd

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
)

// ScopeOpenID marks an OpenID Connect request (OIDC Core §3.1.2.1).
const ScopeOpenID = "openid"

// scopeClaims are the claims each OpenID Connect scope asks for (OIDC Core
// §5.4).
var scopeClaims = map[string][]string{
	"profile": {"name", "family_name", "given_name", "middle_name", "nickname", "preferred_username", "profile",
		"picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at"},
	"email":   {"email", "email_verified"},
	"address": {"address"},
	"phone":   {"phone_number", "phone_number_verified"},
}

// claimScope is the scope that asks for a standard claim.
var claimScope = func() map[string]string {
	m := map[string]string{}
	for s, cs := range scopeClaims {
		for _, c := range cs {
			m[c] = s
		}
	}
	return m
}()

// StandardClaims are the standard claims of OIDC Core §5.1 the Provider
// returns from a user's Claims, in the order of the specification.
func StandardClaims() []string {
	var out []string
	for _, s := range []string{"profile", "email", "address", "phone"} {
		out = append(out, scopeClaims[s]...)
	}
	return out
}

// ClaimsRequest is the claims request parameter (OIDC Core §5.5): the
// individual claims a client asks for, in the ID token and from the
// userinfo endpoint.
type ClaimsRequest struct {
	UserInfo map[string]*ClaimRequest `json:"userinfo,omitempty"`
	IDToken  map[string]*ClaimRequest `json:"id_token,omitempty"`
}

// ClaimRequest asks for one claim (OIDC Core §5.5.1). A nil *ClaimRequest
// (JSON null) asks for the claim in the default manner.
type ClaimRequest struct {
	Essential bool  `json:"essential,omitempty"`
	Value     any   `json:"value,omitempty"`
	Values    []any `json:"values,omitempty"`
}

// ParseClaimsRequest parses the claims request parameter (OIDC Core §5.5):
// a JSON object whose optional members userinfo and id_token are objects
// mapping claim names to null or to an object with the optional members
// essential (a boolean), value and values (an array). Other top-level
// members are ignored, as §5.5 allows extensions.
func ParseClaimsRequest(s string) (*ClaimsRequest, error) {
	var top map[string]json.RawMessage
	if err := strictUnmarshal(s, &top); err != nil || top == nil {
		return nil, errors.New("oauthd: claims is not a JSON object")
	}
	cr := &ClaimsRequest{}
	for _, member := range []struct {
		name string
		dst  *map[string]*ClaimRequest
	}{{"userinfo", &cr.UserInfo}, {"id_token", &cr.IDToken}} {
		raw, ok := top[member.name]
		if !ok || string(raw) == "null" {
			continue
		}
		var claims map[string]json.RawMessage
		if err := json.Unmarshal(raw, &claims); err != nil || claims == nil {
			return nil, errors.New("oauthd: claims." + member.name + " is not a JSON object")
		}
		out := make(map[string]*ClaimRequest, len(claims))
		for name, v := range claims {
			if name == "" || !validText(name) {
				return nil, errors.New("oauthd: claims." + member.name + " has an empty or invalid claim name")
			}
			if string(v) == "null" {
				out[name] = nil
				continue
			}
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(v, &fields); err != nil || fields == nil {
				return nil, errors.New("oauthd: claims." + member.name + "." + name + " is neither null nor an object")
			}
			var r ClaimRequest
			if e, ok := fields["essential"]; ok && string(e) != "null" {
				if err := json.Unmarshal(e, &r.Essential); err != nil {
					return nil, errors.New("oauthd: claims." + member.name + "." + name + ".essential is not a boolean")
				}
			}
			if v, ok := fields["value"]; ok {
				json.Unmarshal(v, &r.Value)
			}
			if vs, ok := fields["values"]; ok && string(vs) != "null" {
				if err := json.Unmarshal(vs, &r.Values); err != nil {
					return nil, errors.New("oauthd: claims." + member.name + "." + name + ".values is not an array")
				}
			}
			out[name] = &r
		}
		*member.dst = out
	}
	return cr, nil
}

// strictUnmarshal decodes one JSON value and refuses trailing data.
func strictUnmarshal(s string, v any) error {
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		return err
	}
	// Anything after the value but spaces is refused: a second value, and
	// a stray ] or } too (which Decoder.More does not report, and a second
	// Decode fails on with a syntax error rather than io.EOF).
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return errors.New("trailing data")
	}
	return nil
}

// filterClaimsRequest keeps the standard claims of the scopes the client
// may ask for, so a claims request reveals no more than the client could
// ask for by scope; it returns the request as JSON ("" when nothing is
// left) and the scopes that cover it, which the consent page shows.
func filterClaimsRequest(cr *ClaimsRequest, allowedScopes []string) (string, []string) {
	var covering []string
	keep := func(m map[string]*ClaimRequest) map[string]*ClaimRequest {
		out := map[string]*ClaimRequest{}
		for name, r := range m {
			s, ok := claimScope[claimBase(name)]
			if !ok || !slices.Contains(allowedScopes, s) {
				continue
			}
			out[name] = r
			if !slices.Contains(covering, s) {
				covering = append(covering, s)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	f := &ClaimsRequest{UserInfo: keep(cr.UserInfo), IDToken: keep(cr.IDToken)}
	if f.UserInfo == nil && f.IDToken == nil {
		return "", nil
	}
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(f)
	slices.Sort(covering)
	return strings.TrimSpace(b.String()), covering
}

// registeredClaims is a stored claims request without the claims of the
// scopes the client's registration no longer lists (see registeredScopes):
// a claims request was filtered by the client's scopes when it was made
// (filterClaimsRequest), and a scope removed since releases its claims no
// more, asked for by the claims parameter or not.
func registeredClaims(claims string, c *Client) string {
	if claims == "" {
		return ""
	}
	cr, err := ParseClaimsRequest(claims)
	if err != nil {
		return ""
	}
	out, _ := filterClaimsRequest(cr, c.Scopes)
	return out
}

// withholdClaims is a claims request without the claims of the scopes in
// from that are not in to: a scope refused (by a program's Approve) or left
// out (by a refresh asking for a narrower scope, RFC 6749 §6) withholds the
// claims it covers, asked for by the claims parameter too. Claims of
// scopes never in from (shown on the consent page as the claims request's
// own) stay.
func withholdClaims(claims string, from, to []string) string {
	if claims == "" || subset(from, to) {
		return claims
	}
	cr, err := ParseClaimsRequest(claims)
	if err != nil {
		return ""
	}
	var allowed []string
	for s := range scopeClaims {
		if !slices.Contains(from, s) || slices.Contains(to, s) {
			allowed = append(allowed, s)
		}
	}
	out, _ := filterClaimsRequest(cr, allowed)
	return out
}

// claimsRequirements checks what a claims request requires of the
// authentication itself (OIDC Core §5.5.1, §5.5.1.1) and returns the sub
// it asks for, if any:
//
//   - sub with a value, for the ID token: only that user may be signed in
//     for the request (the caller makes it a login requirement, as
//     id_token_hint's subject). A value that is not a string names no user
//     and is refused.
//   - acr as an essential claim with a value or values: oauthd has no
//     authentication context classes to offer (it advertises none), so the
//     requirement cannot be met, which §5.5.1.1 makes a failed
//     authentication: access_denied.
func claimsRequirements(cr *ClaimsRequest) (string, *Error) {
	if cr == nil {
		return "", nil
	}
	for _, m := range []map[string]*ClaimRequest{cr.IDToken, cr.UserInfo} {
		if r := m["acr"]; r != nil && r.Essential && (r.Value != nil || len(r.Values) > 0) {
			return "", errorf(ErrorAccessDenied, "the essential acr values asked for cannot be met: this server offers no authentication context classes")
		}
	}
	r := cr.IDToken["sub"]
	if r == nil || r.Value == nil {
		return "", nil
	}
	sub, ok := r.Value.(string)
	if !ok || sub == "" {
		return "", errorf(ErrorInvalidRequest, "claims: the value of sub must be a non-empty string")
	}
	return sub, nil
}

// claimsRequest parses a stored, already filtered claims request; nil when
// there is none.
func claimsRequest(s string) *ClaimsRequest {
	if s == "" {
		return nil
	}
	cr, err := ParseClaimsRequest(s)
	if err != nil {
		return nil
	}
	return cr
}

// consentScopes are the scopes the person is asked to approve: the
// requested scopes and those covering the claims request.
func consentScopes(ar *AuthRequest) []string {
	out := slices.Clone(ar.Scopes)
	if cr := claimsRequest(ar.Claims); cr != nil {
		_, covering := filterClaimsRequest(cr, StandardScopes())
		for _, s := range covering {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// StandardScopes are the OpenID Connect scopes (OIDC Core §5.4, §11).
func StandardScopes() []string {
	return []string{ScopeOpenID, "profile", "email", "address", "phone", "offline_access"}
}

// userClaims picks the named claims of the user (OIDC Core §5.1), with
// their language-tagged variants ("name#fr", OIDC Core §5.2).
// preferred_username defaults to the username and updated_at to the time
// the user record changed.
func userClaims(u *User, names []string) map[string]any {
	out := map[string]any{}
	for _, name := range names {
		base := claimBase(name)
		if _, std := claimScope[base]; !std {
			continue
		}
		if base != name {
			// A claim asked for in one language ("name#fr" in a claims
			// request, OIDC Core §5.5.2): that variant, if the user has it.
			if v, ok := u.Claims[name]; ok && v != nil {
				out[name] = v
			}
			continue
		}
		if v, ok := u.Claims[name]; ok && v != nil {
			out[name] = v
		}
		for k, v := range u.Claims {
			if base, tag, ok := strings.Cut(k, "#"); ok && base == name && tag != "" && v != nil {
				out[k] = v
			}
		}
		if _, ok := out[name]; !ok {
			switch name {
			case "preferred_username":
				out[name] = u.Username
			case "updated_at":
				if !u.UpdatedAt.IsZero() {
					out[name] = u.UpdatedAt.Unix()
				}
			}
		}
	}
	return out
}

// claimBase is a claim name without its language tag ("name#fr" is
// "name", OIDC Core §5.2).
func claimBase(name string) string {
	base, _, _ := strings.Cut(name, "#")
	return base
}

// claimsForScopes are the claim names the scopes ask for.
func claimsForScopes(scopes []string) []string {
	var out []string
	for _, s := range scopes {
		out = append(out, scopeClaims[s]...)
	}
	return out
}

// requestedClaims are the claim names of one member of a claims request.
func requestedClaims(m map[string]*ClaimRequest) []string {
	return slices.Sorted(maps.Keys(m))
}
