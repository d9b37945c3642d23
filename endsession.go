package oauthd

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// logoutRequest is a validated RP-initiated logout request.
type logoutRequest struct {
	client      *Client
	redirectURI string
	state       string
	locales     []string
}

// binding is what the confirmation form's CSRF token is bound to, so its
// hidden fields cannot be changed: "" for a plain sign-out.
func (l *logoutRequest) binding() string {
	if l.client == nil && l.redirectURI == "" && l.state == "" {
		return ""
	}
	id := ""
	if l.client != nil {
		id = l.client.ID
	}
	return id + "\x00" + l.redirectURI + "\x00" + l.state
}

// hidden are the confirmation form's fields that carry the request.
func (l *logoutRequest) hidden() []Param {
	var ps []Param
	if l.client != nil {
		ps = append(ps, Param{"client_id", l.client.ID})
	}
	if l.redirectURI != "" {
		ps = append(ps, Param{"post_logout_redirect_uri", l.redirectURI})
	}
	if l.state != "" {
		ps = append(ps, Param{"state", l.state})
	}
	if len(l.locales) > 0 {
		// The signed-out page is in the language the RP asked for too.
		// Not in binding: changing it changes only the page's language.
		ps = append(ps, Param{"ui_locales", strings.Join(l.locales, " ")})
	}
	return ps
}

// parseLogoutRequest validates the parameters of RP-initiated logout
// (OpenID Connect RP-Initiated Logout 1.0 §2, §3): id_token_hint (an ID
// token this server issued, possibly expired), client_id (which must be an
// audience of the hint), post_logout_redirect_uri (which must exactly match
// one the client registered, and needs the client to be identified), state
// and ui_locales. Every failure is for an error page: nothing is
// redirected to an unvalidated URI.
func (p *Provider) parseLogoutRequest(r *http.Request, ps params) (*logoutRequest, *Error) {
	var perr *Error
	get := func(name string) string {
		v, e := ps.get(name)
		if e != nil && perr == nil {
			perr = e
		}
		return v
	}
	hint, clientID, uri, state, locales := get("id_token_hint"), get("client_id"), get("post_logout_redirect_uri"), get("state"), get("ui_locales")
	if perr != nil {
		perr.Code = PageBadRequest
		return nil, perr
	}
	lr := &logoutRequest{redirectURI: uri, state: state, locales: strings.Fields(locales)}
	if hint != "" {
		h, err := p.ParseIDTokenHint(r.Context(), hint)
		if errors.Is(err, errBadHint) {
			return nil, &Error{Code: PageBadRequest, Description: "id_token_hint is not an ID token issued by this server"}
		} else if err != nil {
			return nil, serverError(err)
		}
		switch {
		case clientID == "" && len(h.Audience) == 1:
			clientID = h.Audience[0]
		case clientID != "" && !slices.Contains(h.Audience, clientID):
			return nil, &Error{Code: PageBadRequest, Description: "client_id is not the audience of id_token_hint"}
		}
	}
	if clientID != "" {
		c, err := found(p.store.Client(r.Context(), clientID))
		if errors.Is(err, ErrNotFound) {
			return nil, &Error{Code: PageUnknownClient, Description: "no application is registered with this client_id"}
		} else if err != nil {
			return nil, serverError(err)
		}
		lr.client = c
	}
	if uri != "" {
		if lr.client == nil {
			return nil, &Error{Code: PageBadRequest, Description: "post_logout_redirect_uri needs id_token_hint or client_id to name the application"}
		}
		// Exact string comparison, no loopback exception.
		if !slices.Contains(lr.client.PostLogoutRedirectURIs, uri) {
			return nil, &Error{Code: PageInvalidRedirectURI, Description: "post_logout_redirect_uri is not registered for this application"}
		}
		if e := p.redirectUsable(r, lr.client, uri); e != nil {
			return nil, e
		}
	}
	return lr, nil
}

// handleLogout is the end_session_endpoint (OpenID Connect RP-Initiated
// Logout 1.0 §2) and the sign-out page. A GET, or a POST from a relying
// party, shows a confirmation page; the confirmation (a POST with the
// page's CSRF token) ends the person's session and returns to the
// validated post_logout_redirect_uri with state (§3), or shows the
// signed-out page.
func (p *Provider) handleLogout(w http.ResponseWriter, r *http.Request) {
	var ps params
	var perr *Error
	if r.Method == http.MethodPost {
		ps, perr = parseForm(w, r, p.cfg.MaxBodyBytes)
	} else {
		ps, perr = parseQuery(r.URL.RawQuery)
	}
	if perr != nil {
		perr.Code = PageBadRequest
		p.errorPage(w, r, perr)
		return
	}
	if r.Method == http.MethodPost && !ps.has("csrf") && !p.hasOwnCookies(r) && p.relay(w, r, LogoutPath, ps) {
		// A relying party's logout request by POST comes from its own
		// site, without this site's cookies: see relay.
		return
	}
	if ps.has("csrf") && p.refuseCrossOrigin(w, r, "sign-out") {
		// A confirmation comes from the sign-out page, of this origin.
		return
	}
	browser := p.browser(w, r)
	lr, e := p.parseLogoutRequest(r, ps)
	if e != nil {
		p.errorPage(w, r, e)
		return
	}
	if e := sentOnce(ps, "csrf", "action"); e != nil {
		e.Code = PageBadRequest
		p.errorPage(w, r, e)
		return
	}
	page := Page{Status: http.StatusOK, RequestID: RequestID(r.Context()), Locales: lr.locales}
	confirm := r.Method == http.MethodPost && ps.has("csrf")
	if confirm {
		if !p.checkCSRF(r, first(ps, "csrf"), "logout", lr.binding()) {
			p.errorPage(w, r, &Error{Code: PageBadRequest, Description: "the form was not sent from this browser's sign-out page", Status: http.StatusForbidden})
			return
		}
		if first(ps, "action") == "cancel" {
			// Staying signed in: back to the application that asked,
			// when it registered a home page, else to this site's.
			to := "/"
			if lr.client != nil {
				// Only an absolute http(s) URL with a host and no
				// userinfo, as the pages show it: a program's own
				// registration may store anything there.
				if u, err := url.Parse(lr.client.ClientURI); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.User == nil {
					to = u.String()
				}
			}
			w.Header().Set("Location", to)
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		if err := p.endSession(w, r); err != nil {
			p.errorPage(w, r, serverError(err))
			return
		}
		if lr.redirectURI == "" {
			// The signed-out page is shown by a GET (its client and
			// language in the query), not as the answer to this POST:
			// Back or a reload would ask to send the form again.
			q := url.Values{}
			if lr.client != nil {
				q.Set("client_id", lr.client.ID)
			}
			if len(lr.locales) > 0 {
				q.Set("ui_locales", strings.Join(lr.locales, " "))
			}
			to := LogoutPath
			if len(q) > 0 {
				to += "?" + q.Encode()
			}
			w.Header().Set("Location", to)
			w.WriteHeader(http.StatusSeeOther)
			return
		}
		p.loggedOut(w, r, lr, page)
		return
	}
	_, user, err := p.currentSession(r)
	if err != nil {
		p.errorPage(w, r, serverError(err))
		return
	}
	if user == nil {
		// Nobody is signed in: nothing to confirm.
		p.loggedOut(w, r, lr, page)
		return
	}
	p.cfg.Pages.Logout(w, r, &LogoutPage{Page: page, Action: LogoutPath, CSRF: csrfToken(browser, "logout", lr.binding()),
		Client: lr.client, Hidden: lr.hidden(), User: user})
}

// loggedOut returns to the relying party's post-logout redirect URI with
// state, or shows the signed-out page.
func (p *Provider) loggedOut(w http.ResponseWriter, r *http.Request, lr *logoutRequest, page Page) {
	if lr.redirectURI == "" {
		p.cfg.Pages.Logout(w, r, &LogoutPage{Page: page, Client: lr.client, SignedOut: true})
		return
	}
	loc := lr.redirectURI
	if lr.state != "" {
		sep := "?"
		if strings.Contains(loc, "?") {
			sep = "&"
		}
		loc += sep + url.Values{"state": {lr.state}}.Encode()
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}
