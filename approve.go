package oauthd

import (
	"errors"
	"net/http"
	"slices"
	"time"
)

// A program that brings its own login and consent sets Config.LoginURL and
// finishes each authorization request itself ("validate, then finalize"):
//
//	ar, err := p.PendingRequest(r, r.FormValue("request"))
//	... authenticate the person, ask for consent ...
//	p.Approve(w, r, ar, userID, authTime, ar.Scopes) // or p.Deny(w, r, ar)

// PendingRequest returns the validated authorization request the
// authorization endpoint stored under id, if it exists, has not expired,
// was not answered yet, and was started by this browser.
func (p *Provider) PendingRequest(r *http.Request, id string) (*AuthRequest, error) {
	ar, _, e := p.pending(r, id)
	if e != nil {
		return nil, e
	}
	return ar, nil
}

// Approve answers a pending request with success for the user, who
// authenticated at authTime (required) and granted scopes (a subset of ar.Scopes):
// it issues the code (or tokens) and redirects the browser to the client.
//
// It fails, writing nothing, when the scopes or the user are unknown, when
// the login does not meet what the request asked of it (ErrLoginRequired:
// prompt=login or select_account and a login before the request, a login
// older than max_age, or another user than the one id_token_hint or a
// claims request for sub names; OIDC Core §3.1.2.1, §3.1.2.2; authenticate
// the person again, or answer with Deny), and when the request was already
// answered. It writes the redirect otherwise (or an error page if the
// store fails while issuing).
func (p *Provider) Approve(w http.ResponseWriter, r *http.Request, ar *AuthRequest, userID string, authTime time.Time, scopes []string) error {
	if ar == nil {
		return errors.New("oauthd: Approve: no request (ar is nil; get it with PendingRequest)")
	}
	if authTime.IsZero() {
		// auth_time, max_age and RefreshTokenMaxLifetime count from it.
		return errors.New("oauthd: Approve: authTime is required (when the person authenticated)")
	}
	if !subset(scopes, ar.Scopes) {
		return errors.New("oauthd: Approve: scopes must be a subset of the requested scopes")
	}
	if p.needsLogin(ar, &Session{UserID: userID, AuthTime: authTime}) {
		return ErrLoginRequired
	}
	c, err := p.store.Client(r.Context(), ar.ClientID)
	if err != nil {
		return err
	}
	u, err := p.store.User(r.Context(), userID)
	if err != nil {
		return err
	}
	// The request is answered once: taken from the store before anything
	// is written, so a second Approve (or a Deny) fails instead.
	if err := p.store.DeleteAuthRequest(r.Context(), ar.ID); errors.Is(err, ErrNotFound) {
		return errors.New("oauthd: Approve: the request was already answered or has expired")
	} else if err != nil {
		return err
	}
	granted := *ar
	granted.ID = "" // deleted above
	granted.Scopes = slices.Clone(scopes)
	// A scope the program did not grant withholds the claims it covers,
	// asked for by the claims parameter too (OIDC Core §5.5).
	granted.Claims = withholdClaims(ar.Claims, ar.Scopes, scopes)
	// The answer (a redirect, or the form_post page with the code) is
	// written to the program's own request: it gets the headers every
	// answer of the Provider has.
	p.securityHeaders(w.Header(), true)
	p.issue(w, r, &granted, c, u, &Session{UserID: u.ID, AuthTime: authTime}, false)
	return nil
}

// ErrLoginRequired is Approve's error for a login that does not meet what
// the authorization request asked of it.
var ErrLoginRequired = errors.New("oauthd: Approve: the login does not meet the request (prompt, max_age, id_token_hint or the claims request's sub)")

// Deny answers a pending request with access_denied (RFC 6749 §4.1.2.1).
func (p *Provider) Deny(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
	p.securityHeaders(w.Header(), true)
	if ar == nil {
		p.errorPage(w, r, &Error{Code: PageBadRequest, Description: "no authorization request to answer"})
		return
	}
	p.answerError(w, r, ar, NewError(ErrorAccessDenied, "the person denied the request"))
}
