package oauthd

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// A program that brings its own login and consent sets Config.LoginURL and
// finishes each authorization request itself ("validate, then finalize"):
//
//	ar, err := p.PendingRequest(r, r.FormValue("request"))
//	... authenticate the person, ask for consent (a consent the program
//	    remembered stands only where the client's
//	    ConsentRememberable(ar.RedirectURI) says so) ...
//	p.Approve(w, r, ar, userID, authTime, ar.Scopes) // or p.Deny(w, r, ar)
//
// The request itself stays in the store: Approve and Deny read it again by
// ar.ID, check it again as PendingRequest does, and answer from the
// stored record alone.

// PendingRequest returns the validated authorization request the
// authorization endpoint stored under id, if it exists, has not expired,
// was not answered yet, was started by this browser, and can still be
// answered as its client is registered now. The request is a copy, for
// reading: Approve and Deny answer from the stored one.
//
// Every error is an *Error (use errors.As), whose Description can be
// shown to the person:
//
//   - Code PageRequestExpired: the request is unknown, expired, answered
//     already, or was started in another browser (which one is not said:
//     a request id alone must not tell anyone whether it is pending).
//     The person starts again from the application.
//   - Code PageUnknownClient, PageInvalidRedirectURI or PageBadRequest:
//     the client's registration changed since the request began (the
//     client was removed or registered again, the redirect URI or a scope
//     removed), or is invalid (see Client.Validate; the reason is
//     logged). The request cannot be answered; the person starts again.
//   - Code ErrorServerError or ErrorTemporarilyUnavailable (HTTPStatus
//     500 or 503): the store failed; Err holds its error. Nothing is known
//     about the request: say so, do not call it expired.
func (p *Provider) PendingRequest(r *http.Request, id string) (*AuthRequest, error) {
	if p.unmade() {
		return nil, notNew("PendingRequest")
	}
	ar, _, e := p.pending(r, id)
	if e != nil {
		return nil, e
	}
	return ar, nil
}

// authTimeSkew is how far after the Provider's clock an authTime passed
// to Approve may be: the clocks of the program's nodes may differ a little.
const authTimeSkew = time.Minute

// Approve answers a pending request with success for the user, who
// authenticated at authTime (required) and granted scopes: it issues the
// code (or tokens) and redirects the browser to the client.
//
// ar is the request PendingRequest returned, unchanged: Approve reads the
// request stored under ar.ID, checks it again as PendingRequest does (not
// expired, not answered, this browser's, its client's registration still
// allows it), and issues from the stored request alone. An ar that
// differs from the stored request in a field that decides what is issued
// or where it goes (ClientID, RedirectURI, ResponseType, ResponseMode,
// Scopes, State, CodeChallenge, Nonce, Prompt, MaxAge, Claims...) is
// refused: build no AuthRequest, and keep none past the request that
// read it (call PendingRequest again in each step of a login that takes
// several).
//
// userID names a user in the store (see UserStore): the ID token and
// userinfo carry its ID and claims, so a program whose users live
// elsewhere stores each one (CreateUser, with the claims to release)
// before approving for it.
//
// scopes are the scopes the person granted, a subset of ar.Scopes
// (ar.Scopes for all of them); nil is refused, as a likely mistake. An
// OpenID Connect request (ar.Scopes has openid) keeps openid: the client
// expects an ID token, and a request the person refuses is answered with
// Deny instead. A scope left out withholds the claims it covers (OIDC
// Core §5.4, §5.5).
//
// authTime is when the person authenticated; it may not be more than a
// minute after the Provider's clock (Config.Now).
//
// Approve fails, writing nothing, when an argument is wrong (as above),
// when the user is not in the store, when the login does not meet what
// the request asked of it (ErrLoginRequired: prompt=login or
// select_account and a login before the request, a login older than
// max_age, or another user than the one id_token_hint or a claims request
// for sub names; OIDC Core §3.1.2.1, §3.1.2.2; authenticate the person
// again, or answer with Deny), and with the *Error PendingRequest would
// return when the request can no longer be answered (PageRequestExpired
// when it was answered already, by this Approve or another). It writes
// the redirect otherwise (or an error page if the store fails while
// issuing).
func (p *Provider) Approve(w http.ResponseWriter, r *http.Request, ar *AuthRequest, userID string, authTime time.Time, scopes []string) error {
	if p.unmade() {
		return notNew("Approve")
	}
	switch {
	case ar == nil:
		return errors.New("oauthd: Approve: no request (ar is nil; get it with PendingRequest)")
	case userID == "":
		return errors.New("oauthd: Approve: userID is required (the ID of a user in the store)")
	case authTime.IsZero():
		// auth_time, max_age and RefreshTokenMaxLifetime count from it.
		return errors.New("oauthd: Approve: authTime is required (when the person authenticated)")
	case authTime.After(p.now().Add(authTimeSkew)):
		// It would meet prompt=login and max_age forever, and put an
		// auth_time in the future in the ID token.
		return fmt.Errorf("oauthd: Approve: authTime %s is after the Provider's clock (%s)", authTime.Format(time.RFC3339), p.now().Format(time.RFC3339))
	case scopes == nil:
		return errors.New("oauthd: Approve: scopes is nil; pass the scopes the person granted (ar.Scopes for all of them)")
	}
	stored, c, e := p.pending(r, ar.ID)
	if e != nil {
		return e
	}
	if f := changedField(ar, stored); f != "" {
		return fmt.Errorf("oauthd: Approve: ar.%s differs from the pending request stored under ar.ID; pass the request PendingRequest returned, unchanged", f)
	}
	if !subset(scopes, stored.Scopes) {
		return errors.New("oauthd: Approve: scopes must be a subset of the requested scopes")
	}
	if slices.Contains(stored.Scopes, ScopeOpenID) && !slices.Contains(scopes, ScopeOpenID) {
		return errors.New("oauthd: Approve: the request is an OpenID Connect request (scope openid), and scopes leaves openid out: the client would get no ID token; grant openid, or answer with Deny")
	}
	if p.needsLogin(stored, &Session{UserID: userID, AuthTime: authTime}) {
		return ErrLoginRequired
	}
	u, err := found(p.store.User(r.Context(), userID))
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("oauthd: Approve: user %q is not in the store (the ID token and userinfo are made from the stored user: store it with CreateUser first): %w", userID, err)
	} else if err != nil {
		return serverError(err)
	}
	// The request is answered once: taken from the store before anything
	// is written, so a second Approve (or a Deny) fails instead.
	if err := p.store.DeleteAuthRequest(r.Context(), stored.ID); errors.Is(err, ErrNotFound) {
		return &Error{Code: PageRequestExpired, Description: "the sign-in request was already answered"}
	} else if err != nil {
		return serverError(err)
	}
	p.pendingAnswered(r, stored)
	granted := *stored
	granted.ID = "" // deleted above
	granted.Scopes = slices.Clone(scopes)
	// A scope the program did not grant withholds the claims it covers,
	// asked for by the claims parameter too (OIDC Core §5.5).
	granted.Claims = withholdClaims(stored.Claims, stored.Scopes, scopes)
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

// Deny answers a pending request with access_denied (RFC 6749 §4.1.2.1),
// sent to the redirect URI of the request stored under ar.ID, which it
// checks again as PendingRequest does; ar is the request PendingRequest
// returned, unchanged, as for Approve.
//
// When the request is no longer in the store (answered already, by an
// Approve or Deny of this very call or of another, or deleted after it
// expired), Deny writes nothing: an answer may have been written already,
// and a second one would corrupt it. Call PendingRequest first to show a
// page of your own for a request that is not pending. For any other
// failure (the request expired, is another browser's, its client's
// registration changed, or ar was changed) Deny writes an error page, as
// the authorization endpoint would.
func (p *Provider) Deny(w http.ResponseWriter, r *http.Request, ar *AuthRequest) {
	if p.unmade() {
		http.Error(w, "oauthd: this Provider was not created with oauthd.New", http.StatusInternalServerError)
		return
	}
	if ar == nil {
		p.securityHeaders(w.Header(), true)
		p.errorPage(w, r, &Error{Code: PageBadRequest, Description: "no authorization request to answer"})
		return
	}
	stored, _, e, gone := p.pendingGone(r, ar.ID)
	if gone {
		p.log.Warn("Deny: the authorization request was answered already or has expired; nothing written", "request_id", RequestID(r.Context()))
		return
	}
	p.securityHeaders(w.Header(), true)
	if e != nil {
		p.errorPage(w, r, e)
		return
	}
	if f := changedField(ar, stored); f != "" {
		p.errorPageFor(w, r, serverError(fmt.Errorf("oauthd: Deny: ar.%s differs from the pending request stored under ar.ID; pass the request PendingRequest returned, unchanged", f)), stored)
		return
	}
	p.answerError(w, r, stored, NewError(ErrorAccessDenied, "the person denied the request"))
}

// changedField names the first field of ar, passed to Approve or Deny,
// that differs from the stored request, or returns "". The fields
// compared are those that decide what is issued, to whom and where, and
// whether the login fits; LoginHint, UILocales, Display and ACRValues
// only shape the pages. Times are compared to the millisecond, as stores
// keep them, and a nil slice equals an empty one.
func changedField(ar, stored *AuthRequest) string {
	switch {
	case ar.ClientID != stored.ClientID:
		return "ClientID"
	case ar.BrowserHash != stored.BrowserHash:
		return "BrowserHash"
	case ar.RedirectURI != stored.RedirectURI:
		return "RedirectURI"
	case ar.RedirectURIOmitted != stored.RedirectURIOmitted:
		return "RedirectURIOmitted"
	case ar.ResponseType != stored.ResponseType:
		return "ResponseType"
	case ar.ResponseMode != stored.ResponseMode:
		return "ResponseMode"
	case !slices.Equal(ar.Scopes, stored.Scopes):
		return "Scopes"
	case ar.State != stored.State:
		return "State"
	case ar.CodeChallenge != stored.CodeChallenge:
		return "CodeChallenge"
	case ar.CodeChallengeMethod != stored.CodeChallengeMethod:
		return "CodeChallengeMethod"
	case ar.Nonce != stored.Nonce:
		return "Nonce"
	case !slices.Equal(ar.Prompt, stored.Prompt):
		return "Prompt"
	case (ar.MaxAge == nil) != (stored.MaxAge == nil) || ar.MaxAge != nil && *ar.MaxAge != *stored.MaxAge:
		return "MaxAge"
	case ar.IDTokenHintSubject != stored.IDTokenHintSubject:
		return "IDTokenHintSubject"
	case ar.Claims != stored.Claims:
		return "Claims"
	case ar.CreatedAt.UnixMilli() != stored.CreatedAt.UnixMilli():
		return "CreatedAt"
	case ar.ExpiresAt.UnixMilli() != stored.ExpiresAt.UnixMilli():
		return "ExpiresAt"
	}
	return ""
}

// unmade reports whether p was not made by New (nil, or a zero Provider).
func (p *Provider) unmade() bool { return p == nil || p.store == nil }

// notNew is the error of a method of a Provider not made by New.
func notNew(method string) *Error {
	return &Error{Code: ErrorServerError, Status: http.StatusInternalServerError, Description: "this Provider was not created with oauthd.New",
		Err: errors.New("oauthd: Provider." + method + " called on a Provider not created with oauthd.New")}
}
