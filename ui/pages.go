package ui

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oauthd/oauthd"
)

// Login renders the sign-in form (login.html).
func (p *Pages) Login(w http.ResponseWriter, r *http.Request, lp *oauthd.LoginPage) {
	if lp == nil {
		lp = &oauthd.LoginPage{}
	}
	v := p.view(r, &lp.Page, lp)
	v.Title = v.T("login.title")
	v.setClient(lp.Client)
	v.setUser(lp.SignedIn)
	if lp.Error != "" {
		id := "login.error." + lp.Error
		if !has(id) {
			id = "login.error.generic"
		}
		v.Message = v.T(id)
		if lp.Error == "too_many_attempts" && lp.RetryAfter > 0 {
			v.Message = v.T("login.error.too_many_attempts_wait", v.wait(lp.RetryAfter))
		}
	}
	p.render(w, r, "login", statusOr(lp.Status, http.StatusOK), v)
}

// Consent renders the approve/deny form (consent.html).
func (p *Pages) Consent(w http.ResponseWriter, r *http.Request, cp *oauthd.ConsentPage) {
	if cp == nil {
		cp = &oauthd.ConsentPage{}
	}
	v := p.view(r, &cp.Page, cp)
	v.setClient(cp.Client)
	if v.ClientName == "" {
		v.ClientName = v.T("consent.unknown_client")
	}
	v.Title = v.T("consent.title", v.Iso(v.ClientName))
	v.setUser(cp.User)
	v.Scopes = make([]Scope, 0, len(cp.Scopes))
	seen := make(map[string]bool, len(cp.Scopes))
	for _, s := range cp.Scopes {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		v.Scopes = append(v.Scopes, Scope{Name: s, Description: p.describe(v, s)})
	}
	p.render(w, r, "consent", statusOr(cp.Status, http.StatusOK), v)
}

// describe returns the description of a scope in v's language: the
// operator's for that language ("calendar.read#fr"), else the operator's
// ("calendar.read"), else the built-in one, else "".
func (p *Pages) describe(v *View, scope string) string {
	if d, ok := p.scopes[scope+"#"+v.Lang]; ok {
		return d
	}
	if d, ok := p.scopes[scope]; ok {
		return d
	}
	if id := "scope." + scope; has(id) {
		return v.T(id)
	}
	return ""
}

// Error renders the error page (error.html). It shows a plain-words message
// for the code, the safe Description and the request ID, and never a link
// to anything the client supplied.
func (p *Pages) Error(w http.ResponseWriter, r *http.Request, ep *oauthd.ErrorPage) {
	if ep == nil {
		ep = &oauthd.ErrorPage{Code: oauthd.PageServerError}
	}
	v := p.view(r, &ep.Page, ep)
	v.Title = v.T("error.title")
	id := "error.code." + ep.Code
	if ep.Code == "" || !has(id) {
		id = "error.generic"
	}
	v.Message = v.T(id)
	p.render(w, r, "error", statusOr(ep.Status, errorStatus(ep.Code)), v)
}

// errorStatus is the status of an error page whose data has none.
func errorStatus(code string) int {
	switch code {
	case oauthd.PageNotFound:
		return http.StatusNotFound
	case oauthd.PageMethodNotAllowed:
		return http.StatusMethodNotAllowed
	case oauthd.PageTooManyRequests:
		return http.StatusTooManyRequests
	case oauthd.PageServerError:
		return http.StatusInternalServerError
	case oauthd.ErrorTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// FormPost renders the page that posts Params to Action (formpost.html).
// The form submits itself through /static/formpost.js; without JavaScript a
// Continue button appears.
func (p *Pages) FormPost(w http.ResponseWriter, r *http.Request, fp *oauthd.FormPostPage) {
	if fp == nil {
		fp = &oauthd.FormPostPage{}
	}
	if !formActionOK(fp.Action) {
		p.log.ErrorContext(contextOf(r), "ui: form_post action is not an absolute URI of a safe scheme", "request_id", fp.RequestID)
		p.Error(w, r, &oauthd.ErrorPage{Page: oauthd.Page{Status: http.StatusInternalServerError, Locales: fp.Locales, RequestID: fp.RequestID}, Code: oauthd.PageServerError})
		return
	}
	v := p.view(r, &fp.Page, fp)
	v.Title = v.T("formpost.title")
	if fp.Relay {
		v.Title = v.T("relay.title")
	}
	// The Provider has checked Action against the client's registered
	// redirect URIs before calling FormPost, and formActionOK has refused
	// script-bearing schemes. Marking it as a template.URL keeps
	// html/template from replacing a custom scheme (com.example.app:/cb)
	// with #ZgotmplZ; it is still attribute-escaped.
	v.FormAction = template.URL(fp.Action)
	p.render(w, r, "formpost", statusOr(fp.Status, http.StatusOK), v)
}

// formActionOK reports whether a form_post target is an absolute URI whose
// scheme cannot run script. It is a second line of defence: the Provider
// only passes redirect URIs it validated.
func formActionOK(action string) bool {
	u, err := url.Parse(action)
	if err != nil || u.Scheme == "" || strings.ContainsAny(action, " \t\r\n") {
		return false
	}
	switch u.Scheme {
	case "javascript", "vbscript", "data", "blob", "file", "about":
		return false
	}
	return true
}

// Home renders the landing page of a signed-in person (home.html).
func (p *Pages) Home(w http.ResponseWriter, r *http.Request, hp *oauthd.HomePage) {
	if hp == nil {
		hp = &oauthd.HomePage{}
	}
	v := p.view(r, &hp.Page, hp)
	v.setUser(hp.User)
	if v.Username != "" {
		v.Title = v.T("home.hello", v.Iso(v.Username))
	} else {
		v.Title = v.T("home.title")
	}
	p.render(w, r, "home", statusOr(hp.Status, http.StatusOK), v)
}

// Logout renders the sign-out confirmation, or the signed-out page when
// SignedOut is true (logout.html).
func (p *Pages) Logout(w http.ResponseWriter, r *http.Request, lp *oauthd.LogoutPage) {
	if lp == nil {
		lp = &oauthd.LogoutPage{}
	}
	v := p.view(r, &lp.Page, lp)
	v.setClient(lp.Client)
	v.setUser(lp.User)
	if lp.SignedOut {
		v.Title = v.T("logout.done")
	} else {
		v.Title = v.tname("logout.title", p.product, false)
	}
	p.render(w, r, "logout", statusOr(lp.Status, http.StatusOK), v)
}

// wait says how long d is in the page's language, rounded up to whole
// seconds under a minute and to whole minutes above.
func (v *View) wait(d time.Duration) string {
	if d < time.Minute {
		n := int((d + time.Second - 1) / time.Second)
		if n <= 1 {
			return v.T("wait.second")
		}
		return v.T("wait.seconds", n)
	}
	n := int((d + time.Minute - 1) / time.Minute)
	if n == 1 {
		return v.T("wait.minute")
	}
	return v.T("wait.minutes", n)
}
