package oauthd

import (
	"errors"
	"mime"
	"net/http"
	"slices"
	"strings"
)

// handleUserinfo is the userinfo endpoint (OIDC Core §5.3). It takes the
// access token as a bearer token in the Authorization header (GET or POST,
// RFC 6750 §2.1) or in a form-encoded POST body (RFC 6750 §2.2), and
// answers the claims of the token's user that the granted scopes (OIDC
// Core §5.4) and the claims request parameter's userinfo member (§5.5) ask
// for. Errors follow RFC 6750 §3.
func (p *Provider) handleUserinfo(w http.ResponseWriter, r *http.Request) {
	// CORS headers: see anyOrigin.
	if r.Method == http.MethodOptions {
		// A CORS preflight for browser applications (the token is a bearer
		// token, never a cookie, so any origin may call).
		answerPreflight(w, "GET, POST")
		return
	}
	tok, e := p.bearerToken(w, r)
	if e != nil {
		p.bearerError(w, r, e)
		return
	}
	ctx := r.Context()
	t, err := found(p.store.Token(ctx, HashToken(tok)))
	if errors.Is(err, ErrNotFound) {
		p.bearerError(w, r, errorf(ErrorInvalidToken, "the access token is invalid, expired or revoked"))
		return
	} else if err != nil {
		p.bearerError(w, r, serverError(err))
		return
	}
	if t.Kind != AccessToken || !t.Active(p.now()) {
		p.bearerError(w, r, errorf(ErrorInvalidToken, "the access token is invalid, expired or revoked"))
		return
	}
	// A token outlives neither its client nor its user (as introspection
	// has it): a token of either gone is invalid (RFC 6750 §3.1), whatever
	// its scope, which only a live token's answer may speak of.
	c, err := found(p.store.Client(ctx, t.ClientID))
	if errors.Is(err, ErrNotFound) || (err == nil && c.Predates(t.IssuedAt)) {
		p.bearerError(w, r, errorf(ErrorInvalidToken, "the client of the access token no longer exists"))
		return
	} else if err != nil {
		p.bearerError(w, r, serverError(err))
		return
	}
	if t.Subject == "" {
		// client_credentials: the client's own token, of no person, whatever
		// its scope says.
		p.bearerError(w, r, errorf(ErrorInsufficientScope, "the access token was issued to the client for itself (client_credentials): it names no user"))
		return
	}
	u, err := found(p.store.User(ctx, t.Subject))
	if errors.Is(err, ErrNotFound) {
		p.bearerError(w, r, errorf(ErrorInvalidToken, "the user of the access token no longer exists"))
		return
	} else if err != nil {
		p.bearerError(w, r, serverError(err))
		return
	}
	if !slices.Contains(t.Scopes, ScopeOpenID) {
		p.bearerError(w, r, errorf(ErrorInsufficientScope, "the access token was not granted the openid scope"))
		return
	}
	// Only the scopes the client's registration still lists: one removed
	// from the client since the token was issued no longer releases its
	// claims (as a refresh no longer issues it).
	scopes := registeredScopes(c, t.Scopes)
	if !slices.Contains(scopes, ScopeOpenID) {
		p.bearerError(w, r, errorf(ErrorInsufficientScope, "the application may no longer ask for the openid scope"))
		return
	}
	names := claimsForScopes(scopes)
	if cr := claimsRequest(registeredClaims(withholdClaims(t.Claims, t.Scopes, scopes), c)); cr != nil {
		names = append(names, requestedClaims(cr.UserInfo)...)
	}
	body := map[string]any{}
	for k, v := range userClaims(u, names) {
		body[k] = v
	}
	// OIDC Core §5.3.2: sub is always returned.
	body["sub"] = u.ID
	writeJSON(w, http.StatusOK, body)
}

// bearerToken reads the access token of a protected resource request: the
// Authorization header's Bearer credentials or, for a form-encoded POST,
// the access_token body parameter. More than one method is
// invalid_request (RFC 6750 §2); no token is a nil token and a nil error
// code, answered with a bare challenge (§3.1).
func (p *Provider) bearerToken(w http.ResponseWriter, r *http.Request) (string, *Error) {
	var tok string
	found := 0
	if len(r.Header["Authorization"]) > 1 {
		return "", errorf(ErrorInvalidRequest, "the request has more than one Authorization header")
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, cred, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") {
			// Another scheme is no bearer authentication at all (§3.1).
			return "", &Error{Status: http.StatusUnauthorized}
		}
		tok = strings.TrimSpace(cred)
		if tok == "" {
			return "", errorf(ErrorInvalidRequest, "the Bearer credentials are empty")
		}
		found++
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPost && mt == "application/x-www-form-urlencoded" {
		ps, e := parseForm(w, r, p.cfg.MaxBodyBytes)
		if e != nil {
			return "", e
		}
		v, e := ps.get("access_token")
		if e != nil {
			return "", e
		}
		if v != "" { // an empty one counts as omitted (RFC 6749 §3.1)
			tok = v
			found++
		}
	}
	switch {
	case found > 1:
		return "", errorf(ErrorInvalidRequest, "send the access token by one method only")
	case found == 0 || tok == "":
		return "", &Error{Status: http.StatusUnauthorized}
	}
	return tok, nil
}

// bearerError answers a failed protected resource request with the
// WWW-Authenticate challenge of RFC 6750 §3 and a JSON body.
func (p *Provider) bearerError(w http.ResponseWriter, r *http.Request, e *Error) {
	p.logErr(r, e)
	challenge := `Bearer realm="oauthd"`
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfter(e.RetryAfter))
	}
	if e.Code != "" && e.Code != ErrorServerError && e.Code != ErrorTemporarilyUnavailable {
		challenge += `, error="` + e.Code + `"`
		if e.Description != "" {
			challenge += `, error_description="` + wireDescription(e.Description) + `"`
		}
		if e.Code == ErrorInsufficientScope {
			challenge += `, scope="openid"`
		}
	}
	w.Header().Set("WWW-Authenticate", challenge)
	if e.Code == "" {
		// RFC 6750 §3.1: a request without authentication gets no error code.
		w.WriteHeader(e.HTTPStatus())
		return
	}
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = wireDescription(e.Description)
	}
	writeJSON(w, e.HTTPStatus(), body)
}
