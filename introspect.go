package oauthd

import (
	"errors"
	"net/http"
	"time"
)

// introspection is an active token's description (RFC 7662 §2.2).
type introspection struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	Exp       int64  `json:"exp,omitempty"`
	Iat       int64  `json:"iat,omitempty"`
	Sub       string `json:"sub,omitempty"`
	Aud       string `json:"aud,omitempty"`
	Iss       string `json:"iss,omitempty"`
}

// appendInactive appends the answer for every token that is not active:
// exactly {"active":false} (RFC 7662 §2.2).
func appendInactive(b []byte) []byte { return append(b, `{"active":false}`...) }

// handleIntrospect is the token introspection endpoint (RFC 7662). The
// caller authenticates as a confidential client; it sees its own tokens, and a client
// marked ResourceServer sees every client's. Anything unknown, expired,
// revoked, rotated or not visible is exactly {"active":false}.
func (p *Provider) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	ps, e := parseForm(w, r, p.cfg.MaxBodyBytes)
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	caller, e := p.authenticateClient(r, ps)
	if e == nil && caller.Public {
		// RFC 7662 §2.1: the caller must be authorized; a client_id alone
		// proves nothing.
		e = &Error{Code: ErrorInvalidClient, Description: "introspection requires a confidential client", Status: http.StatusUnauthorized}
	}
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	tok, e := ps.get("token")
	if e == nil {
		_, e = ps.get("token_type_hint") // RFC 7662 §2.1: a hint only; every type is searched
	}
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	if tok == "" {
		p.writeJSONError(w, r, errorf(ErrorInvalidRequest, "token is required"))
		return
	}
	t, err := found(p.store.Token(r.Context(), HashToken(tok)))
	if errors.Is(err, ErrNotFound) {
		writeJSONBody(w, http.StatusOK, appendInactive)
		return
	} else if err != nil {
		p.writeJSONError(w, r, serverError(err))
		return
	}
	now := p.now()
	if !t.Active(now) || (t.ClientID != caller.ID && !caller.ResourceServer) || p.pastIntrospectionEnd(t, now) {
		writeJSONBody(w, http.StatusOK, appendInactive)
		return
	}
	out := introspection{Active: true, Scope: JoinScope(t.Scopes), ClientID: t.ClientID, Sub: t.Subject,
		Exp: t.ExpiresAt.Unix(), Iat: t.IssuedAt.Unix(), Iss: p.cfg.Issuer, TokenType: "Bearer"}
	if t.Kind == RefreshToken {
		// token_type is an access token type (RFC 7662 §2.2, RFC 6749
		// §5.1), such as Bearer; a refresh token has none, and
		// "refresh_token" is not a registered type.
		out.TokenType = ""
	}
	// A token outlives neither its client nor its user: deleting either
	// makes the token inactive even before its rows are collected, and a
	// client registered again under the same client_id does not bring it
	// back (Client.Predates).
	owner := caller
	if t.ClientID != caller.ID {
		c, err := found(p.store.Client(r.Context(), t.ClientID))
		if errors.Is(err, ErrNotFound) {
			writeJSONBody(w, http.StatusOK, appendInactive)
			return
		} else if err != nil {
			p.writeJSONError(w, r, serverError(err))
			return
		}
		owner = c
	}
	if owner.Predates(t.IssuedAt) {
		writeJSONBody(w, http.StatusOK, appendInactive)
		return
	}
	// The scopes the client's registration still lists (as userinfo and
	// a refresh have it): a token of scopes all removed since is over.
	if scopes := registeredScopes(owner, t.Scopes); len(scopes) < len(t.Scopes) {
		if len(scopes) == 0 {
			writeJSONBody(w, http.StatusOK, appendInactive)
			return
		}
		out.Scope = JoinScope(scopes)
	}
	if t.Subject != "" {
		u, err := found(p.store.User(r.Context(), t.Subject))
		if errors.Is(err, ErrNotFound) {
			writeJSONBody(w, http.StatusOK, appendInactive)
			return
		} else if err != nil {
			p.writeJSONError(w, r, serverError(err))
			return
		}
		out.Username = u.Username
	}
	writeJSONBody(w, http.StatusOK, out.appendJSON)
}

// pastIntrospectionEnd reports whether a token Active still holds is over
// as introspection tells it (RFC 7662 §2.2: active means usable now): from
// the whole second its exp names (exp is in seconds, the expiry is not:
// an answer active after the exp it gives would contradict itself), and,
// for a refresh token, once its grant is past RefreshTokenMaxLifetime
// (one made before the limit was lowered: the token endpoint refuses it).
func (p *Provider) pastIntrospectionEnd(t *Token, now time.Time) bool {
	if !t.ExpiresAt.IsZero() && !now.Before(time.Unix(t.ExpiresAt.Unix(), 0)) {
		return true
	}
	max := p.cfg.RefreshTokenMaxLifetime
	return t.Kind == RefreshToken && max > 0 && !t.AuthTime.IsZero() && !now.Before(t.AuthTime.Add(max))
}
