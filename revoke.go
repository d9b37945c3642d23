package oauthd

import (
	"context"
	"errors"
	"net/http"
)

// handleRevoke is the token revocation endpoint (RFC 7009). It answers 200
// for known and unknown tokens alike (§2.2). Revoking a refresh token
// revokes its whole grant, access tokens included (§2.1); a client cannot
// revoke another client's token (the request then changes nothing). A
// storage failure is a 5xx, never a 200: the client must not believe a
// revocation that did not happen.
func (p *Provider) handleRevoke(w http.ResponseWriter, r *http.Request) {
	ps, e := parseForm(w, r, p.cfg.MaxBodyBytes)
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	caller, e := p.authenticateClient(r, ps)
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	tok, e := ps.get("token")
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	// token_type_hint is only a hint (RFC 7009 §2.1): the token is looked
	// up by its hash whatever its type, so any hint, known or not, is as
	// good as none. It may be given once.
	if _, e := ps.get("token_type_hint"); e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	if tok == "" {
		p.writeJSONError(w, r, errorf(ErrorInvalidRequest, "token is required"))
		return
	}
	ctx := r.Context()
	hash := HashToken(tok)
	t, err := found(p.store.Token(ctx, hash))
	switch {
	case errors.Is(err, ErrNotFound):
		w.WriteHeader(http.StatusOK)
		return
	case err != nil:
		p.writeJSONError(w, r, &Error{Code: ErrorTemporarilyUnavailable, Description: "the token could not be revoked; try again", Status: http.StatusServiceUnavailable, RetryAfter: unavailableRetry, Err: err})
		return
	}
	if t.ClientID != caller.ID {
		// RFC 7009 §2.1: the request is refused and the client told so.
		p.log.Warn("a client tried to revoke another client's token", "request_id", RequestID(ctx), "client_id", caller.ID)
		p.writeJSONError(w, r, errorf(ErrorUnauthorizedClient, "the token was not issued to this client"))
		return
	}
	// Also when the client has gone: a revocation asked for stands (a
	// store drops the write of a caller gone before its commit).
	wctx := context.WithoutCancel(ctx)
	if t.Kind == RefreshToken {
		err = p.store.RevokeGrant(wctx, t.GrantID, p.revocationHorizon(caller))
	} else {
		err = p.store.RevokeToken(wctx, hash)
		if errors.Is(err, ErrNotFound) {
			err = nil
		}
	}
	if err != nil {
		p.writeJSONError(w, r, &Error{Code: ErrorTemporarilyUnavailable, Description: "the token could not be revoked; try again", Status: http.StatusServiceUnavailable, RetryAfter: unavailableRetry, Err: err})
		return
	}
	w.WriteHeader(http.StatusOK)
}
