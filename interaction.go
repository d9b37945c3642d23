package oauthd

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/oauthd/oauthd/internal/secret"
)

// The browser cookie is a random value that binds pending authorization
// requests to the browser that started them and keys the CSRF tokens of
// its forms: a form's token is HMAC(browser cookie, purpose, request id),
// so a form posted with another browser's hidden fields is refused, and any
// node can check a token without shared server state.

// browser returns the browser cookie's value, setting a new one if absent.
func (p *Provider) browser(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(p.browserCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	v := RandomToken()
	http.SetCookie(w, &http.Cookie{Name: p.browserCookie, Value: v, Path: "/", HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	r.AddCookie(&http.Cookie{Name: p.browserCookie, Value: v})
	return v
}

func csrfToken(browser, purpose, id string) string { return mac(browser, "csrf", purpose, id) }

// consentBinding is what a consent form's CSRF token is made for: the
// request and the session it was shown to. A form shown to one signed-in
// person is refused once another signs in on the browser, and a token a
// page of another person's session showed cannot approve for this one.
func consentBinding(id string, s *Session) string { return id + "\x00" + s.Hash }

// crossOrigin reports whether the browser says a form was posted from a
// page of another origin than this server's: Sec-Fetch-Site (Fetch
// Metadata, in every browser since 2023) other than same-origin, or
// without it an Origin that is neither the issuer's nor the request's
// host. A form token alone is not enough against a page on another port
// of the issuer's host (cookies are not isolated by port, RFC 6265 §8.5,
// so such a page can replace the browser cookie with one of its own and
// post the forms made for it); the origin includes the port. An absent
// Origin (a program, not a browser) or "null" (what browsers without
// Fetch Metadata send for a POST from a page with this server's
// Referrer-Policy: no-referrer) leaves the check to the form's token.
func (p *Provider) crossOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin", "none":
		return false
	case "":
	default:
		return true
	}
	o := r.Header.Get("Origin")
	if o == "" || o == "null" || strings.EqualFold(o, p.issuerOrigin) {
		return false
	}
	u, err := url.Parse(o)
	return err != nil || !strings.EqualFold(u.Host, r.Host)
}

// refuseCrossOrigin answers a form posted from another origin with a
// 403 page, before anything else is done with it (no browser cookie is
// set: a new one would replace the browser's, whose Lax cookie a
// cross-site POST does not carry), and reports whether it did.
func (p *Provider) refuseCrossOrigin(w http.ResponseWriter, r *http.Request, what string) bool {
	if r.Method != http.MethodPost || !p.crossOrigin(r) {
		return false
	}
	p.errorPage(w, r, &Error{Code: PageBadRequest, Status: http.StatusForbidden,
		Description: "the " + what + " form was sent from a page of another site or origin; go back to the application and start again"})
	return true
}

// loginFailedPurpose is the purpose of the MAC that vouches for a failed
// sign-in's error and username in the login page's query.
func loginFailedPurpose(errCode, username string) string {
	return "login-failed\x00" + errCode + "\x00" + username
}

// checkCSRF reports whether the form's csrf field was made for this browser,
// purpose and request.
func (p *Provider) checkCSRF(r *http.Request, got, purpose, id string) bool {
	return checkCSRFCookie(r, p.browserCookie, got, purpose, id)
}

// checkCSRFCookie is checkCSRF with the browser cookie's name.
func checkCSRFCookie(r *http.Request, cookie, got, purpose, id string) bool {
	c, err := r.Cookie(cookie)
	if err != nil || c.Value == "" || got == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(csrfToken(c.Value, purpose, id))) == 1
}

// currentSession returns the signed-in session and user, or nils.
func (p *Provider) currentSession(r *http.Request) (*Session, *User, error) {
	c, err := r.Cookie(p.sessionCookie)
	if err != nil || c.Value == "" {
		return nil, nil, nil
	}
	s, err := found(p.store.Session(r.Context(), HashToken(c.Value)))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil
	} else if err != nil {
		return nil, nil, err
	}
	if !p.now().Before(s.ExpiresAt) {
		return nil, nil, nil
	}
	u, err := found(p.store.User(r.Context(), s.UserID))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, nil // the user was deleted
	} else if err != nil {
		return nil, nil, err
	}
	if s.AuthTime.UnixMilli() < u.PasswordChangedAt.UnixMilli() {
		return nil, nil, nil // signed in with the password changed since
	}
	return s, u, nil
}

// startSession signs the user in with a new session id (so an id planted
// before login is worthless) and ends the previous session of the browser.
func (p *Provider) startSession(w http.ResponseWriter, r *http.Request, u *User) error {
	if c, err := r.Cookie(p.sessionCookie); err == nil && c.Value != "" {
		if err := p.store.DeleteSession(r.Context(), HashToken(c.Value)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	v := RandomToken()
	now := p.now()
	s := &Session{Hash: HashToken(v), UserID: u.ID, AuthTime: now, ExpiresAt: now.Add(p.cfg.SessionTTL)}
	if err := p.store.CreateSession(r.Context(), s); err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: p.sessionCookie, Value: v, Path: "/", HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(p.cfg.SessionTTL / time.Second)})
	return nil
}

func (p *Provider) endSession(w http.ResponseWriter, r *http.Request) error {
	if c, err := r.Cookie(p.sessionCookie); err == nil && c.Value != "" {
		// Also when the browser has gone: a sign-out asked for stands (a
		// store drops the write of a caller gone before its commit).
		if err := p.store.DeleteSession(context.WithoutCancel(r.Context()), HashToken(c.Value)); err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
	}
	http.SetCookie(w, &http.Cookie{Name: p.sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	return nil
}

// relayParam marks a request relay posted again (see relay).
const relayParam = "oauthd_relay"

// hasOwnCookies reports whether the request carries the browser or the
// session cookie.
func (p *Provider) hasOwnCookies(r *http.Request) bool {
	for _, name := range []string{p.browserCookie, p.sessionCookie} {
		if _, err := r.Cookie(name); err == nil {
			return true
		}
	}
	return false
}

// relay answers a POST to path that came without this site's cookies
// with a page of this site that posts the same parameters to path again,
// and reports whether it did. An authorization or logout request POSTed
// from the client's site (OIDC Core §3.1.2.1, RP-Initiated Logout 1.0 §2:
// GET and POST) carries none of the SameSite=Lax cookies, so the
// signed-in person would look signed out: prompt=none would fail, a logout
// would answer "signed out" with the session alive, and a new browser
// cookie would break the requests pending in other tabs. Posted from
// this site's page, the request carries them. A relayed request, or one
// from a browser that has no cookies of this site at all, is not relayed
// again. The parameters stay in a body: not in a URL, where proxies' logs
// and browser history would keep them.
func (p *Provider) relay(w http.ResponseWriter, r *http.Request, path string, ps params) bool {
	if ps.has(relayParam) && !p.crossOrigin(r) {
		// Posted by the relay page (a page of this origin). A page of
		// another site that adds the marker is relayed like any other.
		return false
	}
	if !ps.allText() && !relayable(ps) {
		// A page's form cannot carry bytes that are not text: a parameter
		// the endpoint reads that is not text is refused by the request as
		// it came (no need for the session to tell so).
		return false
	}
	var fields []Param
	add := func(name, value string) {
		// An unknown parameter that is not text is left out: ignored
		// anyway (RFC 6749 §3.1), and a form cannot carry it.
		if validText(name) && validText(value) {
			fields = append(fields, Param{name, value})
		}
	}
	if ps.many != nil {
		for _, k := range slices.Sorted(maps.Keys(ps.many)) {
			for _, v := range ps.many[k] {
				add(k, v)
			}
		}
	} else {
		for _, kv := range ps.list {
			add(kv.name, kv.value)
		}
	}
	add(relayParam, "1")
	pg := p.page(r, http.StatusOK, nil)
	pg.Locales = strings.Fields(ps.first("ui_locales"))
	p.cfg.Pages.FormPost(w, r, &FormPostPage{Page: pg, Action: p.cfg.Issuer + path, Params: fields, Relay: true})
	return true
}

// readParams are the parameters the authorization and logout endpoints
// read (relayed requests go to one of them).
var readParams = []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state",
	"code_challenge", "code_challenge_method", "nonce", "prompt", "max_age", "login_hint", "id_token_hint",
	"ui_locales", "claims_locales", "display", "acr_values", "claims", "request", "request_uri",
	"post_logout_redirect_uri", "csrf", relayParam}

// relayable reports whether every parameter that is not text is one no
// endpoint reads (an unknown one, which the relay leaves out).
func relayable(ps params) bool {
	bad := func(name string) bool { return slices.Contains(readParams, name) }
	for k, vs := range ps.many {
		for _, v := range vs {
			if (!validText(k) || !validText(v)) && bad(k) {
				return false
			}
		}
	}
	for _, kv := range ps.list {
		if (!validText(kv.name) || !validText(kv.value)) && bad(kv.name) {
			return false
		}
	}
	return true
}

// handleAuthorize is the authorization endpoint (RFC 6749 §3.1).
func (p *Provider) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	var (
		ar     *AuthRequest
		client *Client
		err    error
	)
	if r.Method == http.MethodPost && !p.hasOwnCookies(r) {
		ps, perr := parseForm(w, r, p.cfg.MaxBodyBytes)
		if perr == nil && p.relay(w, r, AuthorizePath, ps) {
			return
		}
		ar, client, err = p.parseAuthorizeParams(r, ps, perr)
	} else {
		ar, client, err = p.ParseAuthorizeRequest(w, r)
	}
	if err != nil {
		p.AuthorizeError(w, r, ar, err)
		return
	}
	ar.BrowserHash = HashToken(p.browser(w, r))
	sess, user, err := p.currentSession(r)
	if err != nil {
		p.errorPage(w, r, serverError(err))
		return
	}
	if p.cfg.LoginURL != "" {
		// The program's login is the only way in: a session of the
		// built-in login (from before LoginURL was set) counts for
		// nothing.
		sess, user = nil, nil
	}
	if slices.Contains(ar.Prompt, "none") {
		// OIDC Core §3.1.2.1: no page may be shown.
		if sess == nil || p.needsLogin(ar, sess) {
			p.AuthorizeError(w, r, ar, errorf(ErrorLoginRequired, "the person is not signed in, or not recently enough, or not as the hinted user"))
			return
		}
		if ar.LoginHint != "" && !loginHintMatches(user, ar.LoginHint) {
			// Another account than the signed-in one is asked for: only the
			// person can switch (OIDC Core §3.1.2.6).
			p.AuthorizeError(w, r, ar, errorf(ErrorInteractionRequired, "login_hint names another account than the signed-in one"))
			return
		}
		need, err := p.needsConsent(r, ar, client, user)
		if err != nil {
			p.errorPage(w, r, serverError(err))
			return
		}
		if need {
			p.AuthorizeError(w, r, ar, errorf(ErrorConsentRequired, "the person has not approved this application"))
			return
		}
		p.issue(w, r, ar, client, user, sess, false)
		return
	}
	// A prompt=none request is answered at once and never stored (issue
	// consumes only stored requests, those with an ID).
	ar.ID = RandomToken()
	if ok, network := p.pendingBudget.admitWhy(networkKey(ClientIP(r.Context())), pendingSize(ar), p.now()); !ok {
		p.pendingRefused(r, network)
		p.AuthorizeError(w, r, ar, errorf(ErrorTemporarilyUnavailable, "too many sign-ins are pending on this server; try again later"))
		return
	}
	if err := p.store.CreateAuthRequest(r.Context(), ar); err != nil {
		p.errorPage(w, r, serverError(err))
		return
	}
	if p.cfg.LoginURL != "" { // the embedding program logs the person in (see Approve)
		p.seeOther(w, r, p.cfg.LoginURL, ar.ID)
		return
	}
	if sess == nil || slices.Contains(ar.Prompt, "login") || p.needsLogin(ar, sess) {
		p.seeOther(w, r, LoginPath, ar.ID)
		return
	}
	p.seeOther(w, r, ConsentPath, ar.ID)
}

func (p *Provider) seeOther(w http.ResponseWriter, r *http.Request, path, reqID string, extra ...string) {
	q := url.Values{}
	if reqID != "" {
		q.Set("request", reqID)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	if len(q) > 0 {
		sep := "?"
		if strings.Contains(path, "?") { // a LoginURL with a query of its own
			sep = "&"
		}
		path += sep + q.Encode()
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// needsLogin reports whether the session does not fit the request
// (OIDC Core §3.1.2.1): prompt=login asks for a login after the request was
// made, max_age for one at most that many seconds ago (a login made for
// this very request always fits, however long it took), and id_token_hint
// for a login as the hinted user.
func (p *Provider) needsLogin(ar *AuthRequest, s *Session) bool {
	// A login since the request was made, to the millisecond (stores keep
	// times to the millisecond): a login earlier in the same second is
	// not one prompt=login or max_age asked for.
	freshLogin := s.AuthTime.UnixMilli() >= ar.CreatedAt.UnixMilli()
	if slices.Contains(ar.Prompt, "login") && !freshLogin {
		return true
	}
	// prompt=select_account: the login page is where the person picks
	// the account, the signed-in one or another (OIDC Core §3.1.2.1).
	if slices.Contains(ar.Prompt, "select_account") && !freshLogin {
		return true
	}
	// max_age=0 is prompt=login (OIDC Core §3.1.2.1, errata 2).
	if ar.MaxAge != nil && !freshLogin && p.now().Sub(s.AuthTime).Seconds() > float64(*ar.MaxAge) {
		return true
	}
	if ar.IDTokenHintSubject != "" && s.UserID != ar.IDTokenHintSubject {
		return true
	}
	return false
}

// signedInAsAnother reports whether the session's login was made for the
// request (after it was made) as another user than the one id_token_hint
// or the claims request's sub names.
func (p *Provider) signedInAsAnother(ar *AuthRequest, s *Session) bool {
	return ar.IDTokenHintSubject != "" && s.UserID != ar.IDTokenHintSubject && s.AuthTime.UnixMilli() >= ar.CreatedAt.UnixMilli()
}

// loginHintMatches reports whether login_hint names the user: by username
// or by email address.
func loginHintMatches(u *User, hint string) bool {
	if hint == u.Username {
		return true
	}
	email, _ := u.Claims["email"].(string)
	return email != "" && strings.EqualFold(hint, email)
}

// needsConsent reports whether the person must see the consent page.
func (p *Provider) needsConsent(r *http.Request, ar *AuthRequest, c *Client, u *User) (bool, error) {
	if slices.Contains(ar.Prompt, "consent") {
		return true, nil
	}
	if c.SkipConsent {
		return false, nil
	}
	if !c.ConsentRememberable(ar.RedirectURI) {
		return true, nil
	}
	cs, err := found(p.store.Consent(r.Context(), u.ID, c.ID))
	if errors.Is(err, ErrNotFound) {
		return true, nil
	} else if err != nil {
		return false, err
	}
	// A consent given to an earlier client with this client_id, deleted
	// since, is not this client's.
	return c.Predates(cs.UpdatedAt) || !subset(consentScopes(ar), cs.Scopes), nil
}

// cookiesRequired turns the expired-request page of a browser that came
// without the browser cookie (hadCookie false: cookies blocked, or a link
// opened in another browser) into one that says so; a request that began
// in this browser always has it. Whether the request exists is not told
// either way.
func cookiesRequired(e *Error, hadCookie bool) *Error {
	if e != nil && e.Code == PageRequestExpired && !hadCookie {
		return &Error{Code: PageCookiesRequired, Description: "the browser did not send back the cookie set when the sign-in began", Status: http.StatusBadRequest}
	}
	return e
}

// hasBrowserCookie reports whether the request came with the browser
// cookie (before browser sets one).
func (p *Provider) hasBrowserCookie(r *http.Request) bool {
	c, err := r.Cookie(p.browserCookie)
	return err == nil && c.Value != ""
}

// pending loads the pending request named by the "request" parameter and
// checks it belongs to this browser, has not expired, and can still be
// answered as its client is registered now.
func (p *Provider) pending(r *http.Request, id string) (*AuthRequest, *Client, *Error) {
	ar, c, e, _ := p.pendingGone(r, id)
	return ar, c, e
}

// pendingGone is pending, also reporting whether a request with the id
// is gone from the store: answered already, or deleted after it expired.
func (p *Provider) pendingGone(r *http.Request, id string) (*AuthRequest, *Client, *Error, bool) {
	expired := &Error{Code: PageRequestExpired, Description: "the sign-in request is unknown, expired or already used"}
	if id == "" {
		return nil, nil, expired, false
	}
	ar, err := found(p.store.AuthRequest(r.Context(), id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, expired, true
	} else if err != nil {
		return nil, nil, serverError(err), false
	}
	c, cerr := r.Cookie(p.browserCookie)
	if cerr != nil || subtle.ConstantTimeCompare([]byte(HashToken(c.Value)), []byte(ar.BrowserHash)) != 1 || !p.now().Before(ar.ExpiresAt) {
		return nil, nil, expired, false
	}
	client, err := found(p.store.Client(r.Context(), ar.ClientID))
	if errors.Is(err, ErrNotFound) {
		return nil, nil, &Error{Code: PageUnknownClient, Description: "the application was removed"}, false
	} else if err != nil {
		return nil, nil, serverError(err), false
	}
	// The request was checked against the client as it was registered
	// when it began; its registration may have changed while the person
	// signed in (RFC 6749 §3.1.2.2, RFC 9700 §4.1): a client deleted and
	// registered again, a redirect URI or a scope removed. Such a request
	// is not answered: a code must not go to a URI no longer registered.
	switch {
	case client.Predates(ar.CreatedAt):
		return nil, nil, &Error{Code: PageUnknownClient, Description: "the application was registered again since this sign-in began; start again from the application"}, false
	case !redirectAllowed(client, ar.RedirectURI):
		return nil, nil, &Error{Code: PageInvalidRedirectURI, Description: "redirect_uri is no longer registered for this application; start again from the application"}, false
	case !subset(ar.Scopes, client.Scopes):
		return nil, nil, &Error{Code: PageBadRequest, Description: "the application may no longer ask for this scope; start again from the application"}, false
	}
	if err := client.issuable(); err != nil {
		// Changed in the store, without Client.Validate, since the
		// request began.
		return nil, nil, p.invalidRegistration(r, client, PageBadRequest, err), false
	}
	return ar, client, nil, false
}

// handleLogin shows and checks the login form.
func (p *Provider) handleLogin(w http.ResponseWriter, r *http.Request) {
	if p.cfg.LoginURL != "" {
		// The embedding program's login is the only way in (see
		// Config.LoginURL): its checks (a second factor, lockouts) must
		// not be skipped through this page.
		p.errorPage(w, r, &Error{Code: PageNotFound, Status: http.StatusNotFound})
		return
	}
	if p.refuseCrossOrigin(w, r, "sign-in") {
		return
	}
	hadCookie := p.hasBrowserCookie(r)
	browser := p.browser(w, r)
	if r.Method != http.MethodPost {
		q, _ := parseQuery(r.URL.RawQuery)
		id := first(q, "request")
		var ar *AuthRequest
		var client *Client
		if id != "" {
			var e *Error
			if ar, client, e = p.pending(r, id); e != nil {
				p.errorPage(w, r, cookiesRequired(e, hadCookie))
				return
			}
		}
		lp := &LoginPage{Page: p.page(r, http.StatusOK, ar), Action: LoginPath, AuthReqID: id, CSRF: csrfToken(browser, "login", id), Client: client}
		// Someone signed in already (a "Not you?" on a shared computer):
		// the page says so, with the way to sign them out.
		_, signedIn, serr := p.currentSession(r)
		if serr == nil && signedIn != nil {
			lp.SignedIn, lp.SignOutURL = signedIn, LogoutPath
		}
		if ar != nil {
			lp.Username = ar.LoginHint
			if lp.Username == "" && ar.IDTokenHintSubject != "" {
				// id_token_hint names the user to sign in again (OIDC Core
				// §3.1.2.1): their name is filled in only for the browser
				// signed in as them (prompt=login, max_age). Anyone can hold
				// an ID token, and its sub is no licence to learn the
				// user's username (a profile claim, OIDC Core §5.4).
				if signedIn != nil && signedIn.ID == ar.IDTokenHintSubject {
					lp.Username = signedIn.Username
				}
			}
		}
		// A failed sign-in comes back here with the error in the URL, the
		// name typed in a short-lived cookie (not in the URL, where the
		// browser's history and proxies' logs would keep it), and a MAC of
		// both made with this browser's cookie: a link made elsewhere
		// cannot put a message or a name on the page.
		if e, u := first(q, "error"), p.loginName(r); e == "invalid_credentials" &&
			p.checkCSRF(r, first(q, "sig"), loginFailedPurpose(e, u), id) {
			lp.Error, lp.Username = e, u
		}
		p.cfg.Pages.Login(w, r, lp)
		return
	}
	form, perr := parseForm(w, r, p.cfg.MaxBodyBytes)
	if perr == nil {
		perr = sentOnce(form, "request", "username", "password", "csrf")
	}
	if perr != nil {
		perr.Code = PageBadRequest
		p.errorPage(w, r, perr)
		return
	}
	id, username, password, csrf := first(form, "request"), first(form, "username"), first(form, "password"), first(form, "csrf")
	var ar *AuthRequest
	if id != "" {
		var e *Error
		if ar, _, e = p.pending(r, id); e != nil {
			p.errorPage(w, r, cookiesRequired(e, hadCookie))
			return
		}
	}
	if !p.checkCSRF(r, csrf, "login", id) {
		p.errorPageFor(w, r, &Error{Code: PageBadRequest, Description: "the form was not sent from this browser's sign-in page; go back and try again", Status: http.StatusForbidden}, ar)
		return
	}
	user, wait, err := p.checkPasswordLimited(r, username, password, true)
	if err != nil {
		p.errorPageFor(w, r, p.kdfError(err), ar)
		return
	}
	if wait > 0 {
		p.loginThrottled(w, r, ar, browser, id, username, wait)
		return
	}
	if user == nil {
		p.log.Info("login failed", "request_id", RequestID(r.Context()))
		kept := p.setLoginName(w, username)
		p.seeOther(w, r, LoginPath, id, "error", "invalid_credentials",
			"sig", csrfToken(browser, loginFailedPurpose("invalid_credentials", kept), id))
		return
	}
	if err := p.startSession(w, r, user); err != nil {
		p.errorPageFor(w, r, serverError(err), ar)
		return
	}
	p.setDeviceCookie(w, r, user)
	if _, err := r.Cookie(p.loginNameCookie); err == nil {
		// The name of an earlier failed attempt has served its purpose.
		http.SetCookie(w, &http.Cookie{Name: p.loginNameCookie, Value: "", Path: LoginPath, MaxAge: -1, HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	}
	if ar == nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	p.seeOther(w, r, ConsentPath, id)
}

// loginNameTTL is how long the name typed in a failed sign-in is kept for
// the login page that follows.
const loginNameTTL = time.Minute

// setLoginName keeps the name typed in a failed sign-in for the login page
// the browser is sent to (see handleLogin).
//
// A name longer than maxKeptLoginName is not kept: the cookie would carry
// it whole (a 60,000-character name made an 80 KB Set-Cookie header, which
// browsers drop and proxies answer 502 for), and nobody types one.
//
// It returns the name kept, which the redirect's signature vouches for:
// "" when none was.
func (p *Provider) setLoginName(w http.ResponseWriter, username string) string {
	if len(username) > maxKeptLoginName {
		// And none kept from an earlier try, which the signature of
		// "" would not vouch for.
		http.SetCookie(w, &http.Cookie{Name: p.loginNameCookie, Value: "", Path: LoginPath, MaxAge: -1,
			HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
		return ""
	}
	http.SetCookie(w, &http.Cookie{Name: p.loginNameCookie, Value: base64.RawURLEncoding.EncodeToString([]byte(username)), Path: LoginPath,
		MaxAge: int(loginNameTTL / time.Second), HttpOnly: true, Secure: p.secure, SameSite: http.SameSiteLaxMode})
	return username
}

// maxKeptLoginName is the longest name setLoginName keeps, in bytes: its
// cookie stays under the 4 KB browsers keep.
const maxKeptLoginName = 1024

// loginName is the name setLoginName kept, or "".
func (p *Provider) loginName(r *http.Request) string {
	c, err := r.Cookie(p.loginNameCookie)
	if err != nil {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || !validText(string(b)) {
		return ""
	}
	return string(b)
}

// checkPassword returns u, the user the store found for the username typed
// (nil for none), if password is theirs, or nil. An unknown user costs the
// same work as a wrong password. The error is that of a check that did not
// run (see kdfError).
func (p *Provider) checkPassword(r *http.Request, u *User, password string) (*User, error) {
	if u == nil {
		return nil, secret.VerifyDummyContext(r.Context(), kdfKey(r), password)
	}
	if ok, err := secret.VerifyContext(r.Context(), kdfKey(r), u.PasswordHash, password); err != nil || !ok {
		return nil, err
	}
	return u, nil
}

// handleConsent shows the consent page and takes the person's decision.
func (p *Provider) handleConsent(w http.ResponseWriter, r *http.Request) {
	if p.cfg.LoginURL != "" { // the program's pages answer (see handleLogin)
		p.errorPage(w, r, &Error{Code: PageNotFound, Status: http.StatusNotFound})
		return
	}
	if p.refuseCrossOrigin(w, r, "consent") {
		return
	}
	hadCookie := p.hasBrowserCookie(r)
	browser := p.browser(w, r)
	var ps params
	var perr *Error
	if r.Method == http.MethodPost {
		ps, perr = parseForm(w, r, p.cfg.MaxBodyBytes)
	} else {
		ps, perr = parseQuery(r.URL.RawQuery)
	}
	if perr == nil {
		perr = sentOnce(ps, "request", "csrf", "action", "remember")
	}
	if perr != nil {
		perr.Code = PageBadRequest
		p.errorPage(w, r, perr)
		return
	}
	id := first(ps, "request")
	ar, client, e := p.pending(r, id)
	if e != nil {
		p.errorPage(w, r, cookiesRequired(e, hadCookie))
		return
	}
	sess, user, err := p.currentSession(r)
	if err != nil {
		p.errorPageFor(w, r, serverError(err), ar)
		return
	}
	if sess != nil && p.signedInAsAnother(ar, sess) {
		// Signed in for this very request, as another user than the one
		// id_token_hint (or the claims request's sub) names: the login
		// page again would only loop. OIDC Core §3.1.2.1: login_required.
		p.answerError(w, r, ar, errorf(ErrorLoginRequired, "the person signed in as another user than the one the request names"))
		return
	}
	if sess == nil || p.needsLogin(ar, sess) {
		p.seeOther(w, r, LoginPath, id)
		return
	}
	if r.Method != http.MethodPost {
		need, err := p.needsConsent(r, ar, client, user)
		if err != nil {
			p.errorPageFor(w, r, serverError(err), ar)
			return
		}
		if !need {
			p.issue(w, r, ar, client, user, sess, false)
			return
		}
		p.cfg.Pages.Consent(w, r, &ConsentPage{Page: p.page(r, http.StatusOK, ar), Action: ConsentPath, AuthReqID: id,
			CSRF: csrfToken(browser, "consent", consentBinding(id, sess)), Client: client, User: user, Scopes: consentScopes(ar),
			Remember: client.ConsentRememberable(ar.RedirectURI), SwitchUserURL: LoginPath + "?" + url.Values{"request": {id}}.Encode()})
		return
	}
	if !p.checkCSRF(r, first(ps, "csrf"), "consent", consentBinding(id, sess)) {
		// A token that does not fit is mostly a page of an earlier
		// session (another tab signed in since): the person is told to
		// load it again. No token at all is no form of ours.
		code := PageOutdated
		if first(ps, "csrf") == "" {
			code = PageBadRequest
		}
		p.errorPageFor(w, r, &Error{Code: code, Description: "this consent page was shown before another sign-in on this browser, or the form did not come from it: go back, reload the page and decide again", Status: http.StatusForbidden}, ar)
		return
	}
	switch first(ps, "action") {
	case "approve":
		p.issue(w, r, ar, client, user, sess, first(ps, "remember") != "")
	case "deny":
		p.answerError(w, r, ar, NewError(ErrorAccessDenied, "the person denied the request"))
	default:
		p.errorPageFor(w, r, &Error{Code: PageBadRequest, Description: "choose Approve or Deny"}, ar)
	}
}

// answerError ends a pending request with an error sent to the client
// (RFC 6749 §4.1.2.1): it consumes the request, so that it is answered
// once, and says so on a page if it was answered already.
func (p *Provider) answerError(w http.ResponseWriter, r *http.Request, ar *AuthRequest, e *Error) {
	if err := p.store.DeleteAuthRequest(r.Context(), ar.ID); errors.Is(err, ErrNotFound) {
		p.errorPageFor(w, r, &Error{Code: PageRequestExpired, Description: "this request was already answered"}, ar)
		return
	} else if err != nil {
		p.errorPageFor(w, r, serverError(err), ar)
		return
	}
	p.pendingAnswered(r, ar)
	p.AuthorizeError(w, r, ar, e)
}

// issue ends a pending request with success: it consumes the request (so
// a double submit cannot issue twice), remembers consent if asked, and
// sends the code (and, for implicit and hybrid flows, tokens) to the client.
func (p *Provider) issue(w http.ResponseWriter, r *http.Request, ar *AuthRequest, c *Client, u *User, s *Session, remember bool) {
	ctx := r.Context()
	if ar.ID != "" {
		if err := p.store.DeleteAuthRequest(ctx, ar.ID); errors.Is(err, ErrNotFound) {
			p.errorPageFor(w, r, &Error{Code: PageRequestExpired, Description: "this request was already answered"}, ar)
			return
		} else if err != nil {
			p.errorPageFor(w, r, serverError(err), ar)
			return
		}
		p.pendingAnswered(r, ar)
	}
	now := p.now()
	if remember && c.ConsentRememberable(ar.RedirectURI) {
		cs := &Consent{UserID: u.ID, ClientID: c.ID, Scopes: consentScopes(ar), CreatedAt: now, UpdatedAt: now}
		// A consent given to an earlier client registered under this
		// client_id counts for nothing: not merged into this one's.
		if old, err := found(p.store.Consent(ctx, u.ID, c.ID)); err == nil && !c.Predates(old.UpdatedAt) {
			cs.CreatedAt = old.CreatedAt
			for _, sc := range old.Scopes {
				if !slices.Contains(cs.Scopes, sc) {
					cs.Scopes = append(slices.Clone(cs.Scopes), sc)
				}
			}
		}
		if err := p.store.SaveConsent(ctx, cs); err != nil {
			p.errorPageFor(w, r, serverError(err), ar)
			return
		}
	}
	ps, e := p.authorizationResponse(r, ar, c, u, s)
	if e != nil {
		p.AuthorizeError(w, r, ar, e)
		return
	}
	if slices.Contains(strings.Fields(ar.ResponseType), "token") {
		p.tokenIssued(GrantImplicit)
	}
	p.send(w, r, ar, ps)
}

// first is the first value of a parameter of a page form (pages tolerate
// repeats; the protocol endpoints do not).
func first(ps params, name string) string { return ps.first(name) }

// sentOnce refuses a form or query that repeats one of the fields, as the
// OAuth endpoints refuse a repeated parameter (RFC 6749 §3.1): which of
// two values a page meant is not guessed.
func sentOnce(ps params, names ...string) *Error {
	for _, n := range names {
		if _, e := ps.get(n); e != nil {
			return e
		}
	}
	return nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
