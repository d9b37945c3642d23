package oauthd_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// A program with its own login page sets LoginURL and finishes requests
// with PendingRequest and Approve or Deny.
func TestCustomLogin(t *testing.T) {
	var p *oauthd.Provider
	e := newEnv(t, func(c *oauthd.Config) { c.LoginURL = "/my-login" })
	p = e.p
	mux := http.NewServeMux()
	mux.Handle("/", p)
	mux.HandleFunc("/my-login", func(w http.ResponseWriter, r *http.Request) {
		ar, err := p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			http.Error(w, "no such request", 400)
			return
		}
		if r.FormValue("deny") != "" {
			p.Deny(w, r, ar)
			return
		}
		if err := p.Approve(w, r, ar, e.user.ID, time.Now(), ar.Scopes); err != nil {
			http.Error(w, err.Error(), 400)
		}
	})
	e.srv.Config.Handler = mux
	b := e.browser()
	r := b.get(e.authorizeURL())
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/my-login?request=") {
		t.Fatalf("authorize: %d %q; want a redirect to LoginURL", r.status, r.location())
	}
	loginURL := r.location()
	r = b.follow(e, r)
	u, _ := url.Parse(r.location())
	if r.status != http.StatusSeeOther || u.Query().Get("code") == "" || u.Query().Get("state") != "somestate" {
		t.Fatalf("approve: %d %s", r.status, r.location())
	}
	tok := e.token(seedAuth, form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", redirectURI))
	if tok.status != 200 {
		t.Errorf("code from Approve: %d %s", tok.status, tok.body)
	}
	// answered once only; another browser cannot continue it
	if r := b.get(e.url(loginURL)); r.status != 400 {
		t.Errorf("second answer: %d", r.status)
	}
	b2 := e.browser()
	r = b2.get(e.authorizeURL())
	if r := e.browser().get(e.url(r.location())); r.status != 400 {
		t.Errorf("another browser continued the request: %d", r.status)
	}
	r = b2.get(e.url(r.location() + "&deny=1"))
	if u, _ := url.Parse(r.location()); u.Query().Get("error") != "access_denied" {
		t.Errorf("deny: %s", r.location())
	}
}
