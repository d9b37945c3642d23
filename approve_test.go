package oauthd_test

import (
	"net/http"
	"net/http/httptest"
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
	// The built-in login, consent and home pages are off: the program's
	// login is the only way in (a second factor of its own is not
	// skipped through them).
	id := strings.TrimPrefix(loginURL, "/my-login?request=")
	for _, path := range []string{oauthd.LoginPath + "?request=" + id, oauthd.ConsentPath + "?request=" + id, "/"} {
		if r := b.get(e.url(path)); r.status != http.StatusNotFound {
			t.Errorf("GET %s with LoginURL set: %d; want 404", path, r.status)
		}
	}
	if r := b.post(e.url(oauthd.LoginPath), url.Values{"request": {id}, "username": {"admin"}, "password": {"admin"}}); r.status != http.StatusNotFound {
		t.Errorf("POST %s with LoginURL set: %d; want 404", oauthd.LoginPath, r.status)
	}
	r = b.follow(e, r)
	u, _ := url.Parse(r.location())
	if r.status != http.StatusSeeOther || u.Query().Get("code") == "" || u.Query().Get("state") != "somestate" {
		t.Fatalf("approve: %d %s", r.status, r.location())
	}
	// Approve's answer, written to the program's request, has the
	// headers of every answer of the Provider.
	for k, v := range map[string]string{"Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"} {
		if got := r.header.Get(k); got != v {
			t.Errorf("Approve's answer: %s %q; want %q", k, got, v)
		}
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
	if got := r.header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Deny's answer: Cache-Control %q; want no-store", got)
	}
	// Misuse is an error, not a panic.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/my-login", nil)
	if err := p.Approve(rec, req, nil, e.user.ID, time.Now(), nil); err == nil {
		t.Error("Approve without a request: no error")
	}
	if err := p.Approve(rec, req, &oauthd.AuthRequest{}, e.user.ID, time.Time{}, nil); err == nil {
		t.Error("Approve without the time of the authentication: no error")
	}
	p.Deny(rec, req, nil)
	if rec.Code != http.StatusBadRequest {
		t.Errorf("Deny without a request: %d; want 400", rec.Code)
	}
}

// Approve holds a program's own login to what the request asked of it
// (OIDC Core §3.1.2.1, §3.1.2.2): prompt=login wants a login after the
// request, max_age a recent one, id_token_hint and a claims request for sub
// a given user. A login that does not fit is ErrLoginRequired, with nothing
// written, and the request stays pending; a request is answered once.
func TestApproveChecksLoginRequirements(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.LoginURL = "/my-login" })
	var (
		userID   string
		authTime time.Time
		got      error
		last     *oauthd.AuthRequest
	)
	mux := http.NewServeMux()
	mux.Handle("/", e.p)
	mux.HandleFunc("/my-login", func(w http.ResponseWriter, r *http.Request) {
		ar := last
		if r.FormValue("again") == "" {
			var err error
			if ar, err = e.p.PendingRequest(r, r.FormValue("request")); err != nil {
				http.Error(w, "no such request", 400)
				return
			}
			last = ar
		}
		if got = e.p.Approve(w, r, ar, userID, authTime, ar.Scopes); got != nil {
			w.WriteHeader(299) // the app's own answer: Approve wrote nothing
		}
	})
	e.srv.Config.Handler = mux
	now := e.clock.Now()
	for _, tc := range []struct {
		name     string
		kv       []string
		user     string
		authTime time.Time
		want     error
	}{
		{"prompt_login_before_request", []string{"prompt", "login"}, e.user.ID, now.Add(-time.Minute), oauthd.ErrLoginRequired},
		{"prompt_login_after_request", []string{"prompt", "login"}, e.user.ID, now.Add(time.Second), nil},
		{"max_age_exceeded", []string{"max_age", "60"}, e.user.ID, now.Add(-2 * time.Minute), oauthd.ErrLoginRequired},
		{"max_age_met", []string{"max_age", "60"}, e.user.ID, now.Add(-30 * time.Second), nil},
		{"claims_sub_other_user", []string{"claims", `{"id_token":{"sub":{"value":"someone-else"}}}`}, e.user.ID, now, oauthd.ErrLoginRequired},
		{"claims_sub_same_user", []string{"claims", `{"id_token":{"sub":{"value":"` + e.user.ID + `"}}}`}, e.user.ID, now, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			userID, authTime, got = tc.user, tc.authTime, nil
			b := e.browser()
			r := b.follow(e, b.get(e.oidcURL(tc.kv...)))
			if got != tc.want {
				t.Fatalf("Approve: %v; want %v", got, tc.want)
			}
			if tc.want != nil {
				if r.status != 299 {
					t.Errorf("Approve wrote an answer (%d) while failing", r.status)
				}
				return
			}
			u, _ := url.Parse(r.location())
			if r.status != http.StatusSeeOther || u.Query().Get("code") == "" {
				t.Fatalf("approve: %d %s; want the redirect with a code", r.status, r.location())
			}
			if tc.authTime.After(now) {
				return // a login "after the request" on a clock that stands still
			}
			tok := e.token(basic(oidcClientID, oidcClientSecret), form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", oidcRedirectURI))
			if tok.status != http.StatusOK {
				t.Fatalf("token: %d %s", tok.status, tok.body)
			}
			// How the program authenticated the person, oauthd does not
			// know: no amr (RFC 8176), where its own login says pwd.
			if c := e.checkIDToken(t, tok.str("id_token"), idTokenCheck{clientID: oidcClientID, nonce: oidcNonce}); c["amr"] != nil {
				t.Errorf("amr = %v after a program's own login; want none", c["amr"])
			}
		})
	}
	// A second Approve of the same request fails without writing.
	userID, authTime = e.user.ID, now
	b := e.browser()
	login := b.get(e.oidcURL())
	b.follow(e, login)
	if got != nil {
		t.Fatalf("first Approve: %v", got)
	}
	if r := b.get(e.url(login.location() + "&again=1")); r.status != 299 || got == nil {
		t.Errorf("second Approve: %v (status %d); want an error and nothing written", got, r.status)
	}
}

// A scope the program's Approve leaves out withholds the claims it
// covers, asked for by the claims parameter too (OIDC Core §5.5).
func TestApproveFewerScopesWithholdsClaims(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.LoginURL = "/my-login" })
	mux := http.NewServeMux()
	mux.Handle("/", e.p)
	mux.HandleFunc("/my-login", func(w http.ResponseWriter, r *http.Request) {
		ar, err := e.p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			http.Error(w, "no such request", 400)
			return
		}
		if err := e.p.Approve(w, r, ar, e.user.ID, e.clock.Now(), []string{oauthd.ScopeOpenID}); err != nil {
			http.Error(w, err.Error(), 400)
		}
	})
	e.srv.Config.Handler = mux
	b := e.browser()
	r := b.follow(e, b.get(e.oidcURL("scope", "openid email", "claims", `{"id_token":{"email":null},"userinfo":{"email":null}}`)))
	u, _ := url.Parse(r.location())
	if u.Query().Get("code") == "" {
		t.Fatalf("approve: %d %s", r.status, r.location())
	}
	tok := e.token(oidcAuth, form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", oidcRedirectURI))
	if tok.status != 200 || tok.str("scope") != "openid" {
		t.Fatalf("token: %d %s", tok.status, tok.body)
	}
	if c := e.checkIDToken(t, tok.str("id_token"), idTokenCheck{clientID: oidcClientID, nonce: oidcNonce}); c["email"] != nil {
		t.Errorf("ID token with email withheld by Approve: email %v", c["email"])
	}
	if ui := e.userinfo(t, tok.str("access_token")); ui.page["email"] != nil {
		t.Errorf("userinfo with email withheld by Approve: %s", ui.body)
	}
}
