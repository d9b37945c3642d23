package oauthd_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
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
		if err := p.Approve(w, r, ar, e.user.ID, e.clock.Now(), ar.Scopes); err != nil {
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
	if err := p.Approve(rec, req, nil, e.user.ID, e.clock.Now(), nil); err == nil {
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

// ownLogin is an OpenID Connect test env whose Config.LoginURL is
// /my-login, served by whatever handler the test sets: a program that
// brings its own login.
type ownLogin struct {
	*testEnv
	mu sync.Mutex
	h  http.HandlerFunc
}

func newOwnLogin(t *testing.T, wrap func(oauthd.Storage) oauthd.Storage) *ownLogin {
	t.Helper()
	e := newEnvWrapped(t, wrap, func(c *oauthd.Config) { c.LoginURL = "/my-login"; c.EnableImplicitGrant = true })
	o := &ownLogin{testEnv: e}
	addOIDCClients(t, e)
	mux := http.NewServeMux()
	mux.Handle("/", e.p)
	mux.HandleFunc("/my-login", func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		h := o.h
		o.mu.Unlock()
		h(w, r)
	})
	e.srv.Config.Handler = mux
	return o
}

// handle sets the handler of /my-login.
func (o *ownLogin) handle(h http.HandlerFunc) {
	o.mu.Lock()
	o.h = h
	o.mu.Unlock()
}

// start begins an OpenID Connect request (with PKCE) in a new browser and
// returns the browser and the URL of the program's login it is sent to.
func (o *ownLogin) start(t *testing.T, kv ...string) (*browser, string) {
	t.Helper()
	b := o.browser()
	r := b.get(o.oidcURL(append([]string{"code_challenge", pkceChallenge, "code_challenge_method", "S256"}, kv...)...))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), "/my-login?request=") {
		t.Fatalf("authorize: %d %q; want a redirect to LoginURL", r.status, r.location())
	}
	return b, o.url(r.location())
}

// keep is a /my-login handler that reads the pending request into *ar
// and answers 204.
func (o *ownLogin) keep(t *testing.T, ar **oauthd.AuthRequest) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, err := o.p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			t.Errorf("PendingRequest: %v", err)
		}
		*ar = got
		w.WriteHeader(http.StatusNoContent)
	}
}

// approve is a /my-login handler that calls Approve with ar and the test
// user, keeps its error in *got and, when it fails, answers 299: the
// program's own answer (Approve must have written nothing).
func (o *ownLogin) approve(ar **oauthd.AuthRequest, authTime time.Time, scopes func(*oauthd.AuthRequest) []string, got *error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if *got = o.p.Approve(w, r, *ar, o.user.ID, authTime, scopes(*ar)); *got != nil {
			w.WriteHeader(299)
		}
	}
}

func allScopes(ar *oauthd.AuthRequest) []string {
	if ar == nil {
		return nil
	}
	return ar.Scopes
}

const (
	pkceVerifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	pkceChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

// Approve and Deny answer from the request stored under ar.ID, never from
// the caller's struct: an ar changed in a field that decides what is
// issued or where it goes is refused, nothing is written, and the request
// stays pending. Answered with the unchanged ar, the code goes to the
// registered redirect URI, bound to the request's PKCE challenge (RFC
// 6749 §4.1.2, RFC 7636 §4.4, RFC 9700 §4.1).
func TestApproveIssuesFromStoredRequest(t *testing.T) {
	o := newOwnLogin(t, nil)
	maxAge := int64(3600)
	for _, tc := range []struct {
		field  string
		change func(ar *oauthd.AuthRequest)
	}{
		{"RedirectURI", func(ar *oauthd.AuthRequest) { ar.RedirectURI = "https://attacker.example/cb" }},
		{"Scopes", func(ar *oauthd.AuthRequest) { ar.Scopes = append(ar.Scopes, "offline_access") }},
		{"ResponseType", func(ar *oauthd.AuthRequest) { ar.ResponseType = "code id_token token" }},
		{"ResponseMode", func(ar *oauthd.AuthRequest) { ar.ResponseMode = oauthd.ResponseModeQuery + "x" }},
		{"CodeChallenge", func(ar *oauthd.AuthRequest) { ar.CodeChallenge, ar.CodeChallengeMethod = "", "" }},
		{"CodeChallengeMethod", func(ar *oauthd.AuthRequest) { ar.CodeChallengeMethod = oauthd.PKCEPlain }},
		{"Nonce", func(ar *oauthd.AuthRequest) { ar.Nonce = "another" }},
		{"ClientID", func(ar *oauthd.AuthRequest) { ar.ClientID = "oidc_client2" }},
		{"State", func(ar *oauthd.AuthRequest) { ar.State = "forged" }},
		{"Claims", func(ar *oauthd.AuthRequest) { ar.Claims = `{"id_token":{"email":null}}` }},
		{"Prompt", func(ar *oauthd.AuthRequest) { ar.Prompt = nil }},
		{"MaxAge", func(ar *oauthd.AuthRequest) { ar.MaxAge = &maxAge }},
		{"IDTokenHintSubject", func(ar *oauthd.AuthRequest) { ar.IDTokenHintSubject = "someone" }},
		{"BrowserHash", func(ar *oauthd.AuthRequest) { ar.BrowserHash = "" }},
		{"RedirectURIOmitted", func(ar *oauthd.AuthRequest) { ar.RedirectURIOmitted = true }},
		{"CreatedAt", func(ar *oauthd.AuthRequest) { ar.CreatedAt = ar.CreatedAt.Add(time.Hour) }},
		{"ExpiresAt", func(ar *oauthd.AuthRequest) { ar.ExpiresAt = ar.ExpiresAt.Add(time.Hour) }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			b, login := o.start(t, "prompt", "login")
			var ar *oauthd.AuthRequest
			o.handle(o.keep(t, &ar))
			b.get(login)
			changed := *ar
			changed.Scopes = slices.Clone(ar.Scopes)
			changed.Prompt = slices.Clone(ar.Prompt)
			tc.change(&changed)
			cp := &changed
			var got error
			o.handle(o.approve(&cp, o.clock.Now(), allScopes, &got))
			r := b.get(login)
			if got == nil || !strings.Contains(got.Error(), "ar."+tc.field+" differs") {
				t.Errorf("Approve with ar.%s changed: %v; want an error naming the field", tc.field, got)
			}
			if r.status != 299 {
				t.Errorf("Approve with ar.%s changed wrote %d %s", tc.field, r.status, r.location())
			}
			// Deny too: an error page, no redirect.
			o.handle(func(w http.ResponseWriter, r *http.Request) { o.p.Deny(w, r, cp) })
			if r := b.get(login); r.location() != "" || r.status != http.StatusInternalServerError {
				t.Errorf("Deny with ar.%s changed: %d Location %q; want the error page", tc.field, r.status, r.location())
			}
			// The request is still pending, and answered from the store.
			o.handle(o.approve(&ar, o.clock.Now(), allScopes, &got))
			r = b.get(login)
			u, _ := url.Parse(r.location())
			if got != nil || r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oidcRedirectURI+"?") || u.Query().Get("state") != "st-1" {
				t.Fatalf("Approve with the request unchanged: %v, %d %s; want the code at %s", got, r.status, r.location(), oidcRedirectURI)
			}
			tok := o.token(oidcAuth, form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", oidcRedirectURI))
			if tok.status != http.StatusBadRequest || tok.str("error") != oauthd.ErrorInvalidGrant {
				t.Errorf("code redeemed without its PKCE verifier: %d %s; want invalid_grant", tok.status, tok.body)
			}
		})
	}
	// Fields that only shape the pages may differ.
	b, login := o.start(t)
	var ar *oauthd.AuthRequest
	o.handle(o.keep(t, &ar))
	b.get(login)
	ar.LoginHint, ar.UILocales, ar.Display = "someone", []string{"fr"}, "popup"
	var got error
	o.handle(o.approve(&ar, o.clock.Now(), allScopes, &got))
	if r := b.get(login); got != nil || r.status != http.StatusSeeOther {
		t.Errorf("Approve with LoginHint, UILocales and Display changed: %v, %d", got, r.status)
	}
}

// Approve checks the request as PendingRequest does, with the same
// errors, however long the program kept ar: it has not expired, it is
// this browser's, and the client's registration still allows it (RFC
// 6749 §3.1.2.2, RFC 9700 §4.1). Nothing is written when it fails.
func TestApproveChecksLikePendingRequest(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser // nil: the browser that started
		code   string
	}{
		{"expired", func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser {
			o.tick(31 * time.Minute)
			return nil
		}, oauthd.PageRequestExpired},
		{"another_browser", func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser { return o.browser() }, oauthd.PageRequestExpired},
		{"RFC6749_3.1.2.2/redirect_uri_removed", func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser {
			o.updateClient(t, func(c *oauthd.Client) { c.RedirectURIs = []string{"http://localhost:9000/other"} })
			return nil
		}, oauthd.PageInvalidRedirectURI},
		{"scope_removed", func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser {
			o.updateClient(t, func(c *oauthd.Client) { c.Scopes = []string{"profile"} })
			return nil
		}, oauthd.PageBadRequest},
		{"client_registered_again", func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser {
			o.updateClient(t, func(c *oauthd.Client) { c.CreatedAt = o.clock.Now().Add(time.Minute) })
			return nil
		}, oauthd.PageUnknownClient},
		{"client_removed", func(t *testing.T, o *ownLogin, ar *oauthd.AuthRequest) *browser {
			if err := o.store.DeleteClient(t.Context(), oidcClientID); err != nil {
				t.Fatal(err)
			}
			return nil
		}, oauthd.PageUnknownClient},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := newOwnLogin(t, nil)
			b, login := o.start(t)
			var ar *oauthd.AuthRequest
			o.handle(o.keep(t, &ar))
			b.get(login)
			if other := tc.change(t, o, ar); other != nil {
				b = other
			}
			var got error
			o.handle(o.approve(&ar, o.clock.Now(), allScopes, &got))
			r := b.get(login)
			var oe *oauthd.Error
			if !errors.As(got, &oe) || oe.Code != tc.code {
				t.Errorf("Approve: %v; want an *oauthd.Error with code %s", got, tc.code)
			}
			if r.status != 299 {
				t.Errorf("Approve wrote %d %s while failing", r.status, r.location())
			}
			// PendingRequest says the same.
			o.handle(func(w http.ResponseWriter, r *http.Request) {
				_, err := o.p.PendingRequest(r, ar.ID)
				if !errors.As(err, &oe) || oe.Code != tc.code {
					t.Errorf("PendingRequest: %v; want code %s", err, tc.code)
				}
			})
			b.get(login)
		})
	}
}

// updateClient changes the OpenID Connect client in the store.
func (o *ownLogin) updateClient(t *testing.T, change func(*oauthd.Client)) {
	t.Helper()
	c, err := o.store.Client(t.Context(), oidcClientID)
	if err != nil {
		t.Fatal(err)
	}
	change(c)
	if err := o.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
}

// Approve refuses arguments that would issue something else than the
// program meant, writing nothing: scopes nil (a likely mistake; ar.Scopes
// grants all), openid left out of an OpenID Connect request's scopes (the
// client expects an ID token: answer with Deny), an authTime in the
// future (it would meet prompt=login and max_age for ever), a user that
// is not in the store (the ID token and userinfo are made from it), or
// none.
func TestApproveRefusesArguments(t *testing.T) {
	o := newOwnLogin(t, nil)
	now := o.clock.Now()
	for _, tc := range []struct {
		name     string
		user     string
		authTime time.Time
		scopes   func(*oauthd.AuthRequest) []string
		want     string
		notFound bool
	}{
		{"scopes_nil", o.user.ID, now, func(*oauthd.AuthRequest) []string { return nil }, "scopes is nil", false},
		{"OIDCCore_3.1.2.1/openid_left_out", o.user.ID, now, func(*oauthd.AuthRequest) []string { return []string{"email"} }, "leaves openid out", false},
		{"OIDCCore_3.1.2.1/no_scope_granted", o.user.ID, now, func(*oauthd.AuthRequest) []string { return []string{} }, "leaves openid out", false},
		{"scope_not_requested", o.user.ID, now, func(*oauthd.AuthRequest) []string { return []string{"openid", "phone"} }, "subset", false},
		{"OIDCCore_2/auth_time_in_the_future", o.user.ID, now.Add(2 * time.Minute), allScopes, "after the Provider's clock", false},
		{"auth_time_ten_years_ahead", o.user.ID, now.AddDate(10, 0, 0), allScopes, "after the Provider's clock", false},
		{"user_not_in_store", "user-from-my-ldap", now, allScopes, `user "user-from-my-ldap" is not in the store`, true},
		{"user_empty", "", now, allScopes, "userID is required", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, login := o.start(t, "scope", "openid email")
			var ar *oauthd.AuthRequest
			o.handle(o.keep(t, &ar))
			b.get(login)
			var got error
			o.handle(func(w http.ResponseWriter, r *http.Request) {
				if got = o.p.Approve(w, r, ar, tc.user, tc.authTime, tc.scopes(ar)); got != nil {
					w.WriteHeader(299)
				}
			})
			r := b.get(login)
			if got == nil || !strings.Contains(got.Error(), tc.want) {
				t.Errorf("Approve: %v; want an error about %q", got, tc.want)
			}
			if tc.notFound && !errors.Is(got, oauthd.ErrNotFound) {
				t.Errorf("Approve: %v; want it to wrap ErrNotFound", got)
			}
			if r.status != 299 {
				t.Errorf("Approve wrote %d %s while failing", r.status, r.location())
			}
		})
	}
	// An authTime a little ahead of the Provider's clock (another node's)
	// is taken, and a plain OAuth request may be granted no scope.
	for _, tc := range []struct {
		name   string
		kv     []string
		at     time.Time
		scopes []string
	}{
		{"auth_time_within_skew", nil, now.Add(30 * time.Second), []string{"openid"}},
		{"RFC6749_3.3/oauth_request_no_scope_granted", []string{"scope", "email", "nonce", ""}, now, []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, login := o.start(t, tc.kv...)
			var ar *oauthd.AuthRequest
			o.handle(o.keep(t, &ar))
			b.get(login)
			var got error
			o.handle(o.approve(&ar, tc.at, func(*oauthd.AuthRequest) []string { return tc.scopes }, &got))
			if r := b.get(login); got != nil || r.status != http.StatusSeeOther {
				t.Errorf("Approve: %v, %d %s; want the redirect", got, r.status, r.body)
			}
		})
	}
}

// Deny after Approve, in the same call of the program, writes nothing:
// the redirect with the code is the whole answer (before, the "already
// answered" page was written into it). A Deny of a request that is still
// pending sends access_denied to the registered redirect URI with state
// (RFC 6749 §4.1.2.1).
func TestDenyAfterApproveWritesNothing(t *testing.T) {
	o := newOwnLogin(t, nil)
	b, login := o.start(t)
	var approveErr error
	o.handle(func(w http.ResponseWriter, r *http.Request) {
		ar, err := o.p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			t.Errorf("PendingRequest: %v", err)
			return
		}
		approveErr = o.p.Approve(w, r, ar, o.user.ID, o.clock.Now(), ar.Scopes)
		o.p.Deny(w, r, ar)
	})
	r := b.get(login)
	u, _ := url.Parse(r.location())
	if approveErr != nil || r.status != http.StatusSeeOther || u.Query().Get("code") == "" {
		t.Fatalf("Approve: %v, %d %s", approveErr, r.status, r.location())
	}
	if r.body != "" || r.pageKind() != "" {
		t.Errorf("Deny after Approve wrote into the redirect: page %q, body %q", r.pageKind(), r.body)
	}

	b, login = o.start(t)
	o.handle(func(w http.ResponseWriter, r *http.Request) {
		ar, err := o.p.PendingRequest(r, r.FormValue("request"))
		if err != nil {
			t.Errorf("PendingRequest: %v", err)
			return
		}
		o.p.Deny(w, r, ar)
	})
	r = b.get(login)
	if u, _ := url.Parse(r.location()); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oidcRedirectURI+"?") ||
		u.Query().Get("error") != oauthd.ErrorAccessDenied || u.Query().Get("state") != "st-1" {
		t.Errorf("Deny: %d %s; want access_denied with the state at the registered redirect URI", r.status, r.location())
	}
}

// PendingRequest's errors are *oauthd.Error values that tell an expired
// request from a store that failed: a program must not answer a
// database outage with "this request expired".
func TestPendingRequestErrors(t *testing.T) {
	var ds *downStore
	o := newOwnLogin(t, func(s oauthd.Storage) oauthd.Storage {
		ds = &downStore{Storage: s, err: oauthd.ErrUnavailable}
		return ds
	})
	b, login := o.start(t)
	check := func(name, id, code string, status int) {
		t.Helper()
		o.handle(func(w http.ResponseWriter, r *http.Request) {
			ar, err := o.p.PendingRequest(r, id)
			var oe *oauthd.Error
			if ar != nil || !errors.As(err, &oe) || oe.Code != code || oe.HTTPStatus() != status {
				t.Errorf("%s: PendingRequest: %v (%T); want an *oauthd.Error %s with status %d", name, err, err, code, status)
			}
		})
		b.get(login)
	}
	check("unknown", "no-such-request", oauthd.PageRequestExpired, http.StatusBadRequest)
	check("empty", "", oauthd.PageRequestExpired, http.StatusBadRequest)
	ds.down.Store(true)
	u, _ := url.Parse(login)
	check("store unavailable", u.Query().Get("request"), oauthd.ErrorTemporarilyUnavailable, http.StatusServiceUnavailable)
}

// The methods of a Provider not made by New fail with an error, not a
// panic.
func TestZeroProviderMethods(t *testing.T) {
	for _, p := range []*oauthd.Provider{nil, new(oauthd.Provider)} {
		req := httptest.NewRequest("GET", "/my-login?request=x", nil)
		if _, err := p.PendingRequest(req, "x"); err == nil || !strings.Contains(err.Error(), "oauthd.New") {
			t.Errorf("PendingRequest: %v; want an error naming oauthd.New", err)
		}
		rec := httptest.NewRecorder()
		if err := p.Approve(rec, req, &oauthd.AuthRequest{ID: "x"}, "u", time.Now(), []string{}); err == nil || !strings.Contains(err.Error(), "oauthd.New") {
			t.Errorf("Approve: %v; want an error naming oauthd.New", err)
		}
		rec = httptest.NewRecorder()
		p.Deny(rec, req, &oauthd.AuthRequest{ID: "x"})
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "oauthd.New") {
			t.Errorf("Deny: %d %q; want 500 naming oauthd.New", rec.Code, rec.Body.String())
		}
	}
}
