package ui_test

import (
	"bytes"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/ui"
)

// newPages returns Pages built from opts or fails the test.
func newPages(t testing.TB, opts ui.Options) *ui.Pages {
	t.Helper()
	p, err := ui.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

// page is a rendered response.
type page struct {
	status int
	header http.Header
	body   string
}

// render calls a page method with a GET request carrying the headers
// (name, value pairs) and returns what it wrote.
func render(t testing.TB, call func(http.ResponseWriter, *http.Request), headers ...string) page {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	call(w, r)
	return page{w.Code, w.Header(), w.Body.String()}
}

// get asks h for the path and returns the response.
func get(t testing.TB, h http.Handler, method, path string, headers ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://auth.example"+path, nil)
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Set(headers[i], headers[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// unisolated is a page's body without the isolation marks around names
// (View.Iso), which the pages' tests leave out of what they look for.
func unisolated(body string) string {
	return strings.NewReplacer("\u2068", "", "\u2069", "").Replace(body)
}

func mustContain(t testing.TB, body string, wants ...string) {
	t.Helper()
	body = unisolated(body)
	for _, want := range wants {
		if !strings.Contains(body, want) {
			t.Errorf("page does not contain %q\n%s", want, body)
		}
	}
}

func mustNotContain(t testing.TB, body string, unwanted ...string) {
	t.Helper()
	body = unisolated(body)
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("page contains %q\n%s", u, body)
		}
	}
}

var (
	testClient = &oauthd.Client{ID: "test_client", Name: "Test Client"}
	testUser   = &oauthd.User{ID: "u1", Username: "admin"}
)

func loginPage() *oauthd.LoginPage {
	return &oauthd.LoginPage{Page: oauthd.Page{RequestID: "req-1"}, Action: "/login", AuthReqID: "ar-1", CSRF: "csrf-1", Client: testClient}
}

func consentPage() *oauthd.ConsentPage {
	return &oauthd.ConsentPage{
		Page: oauthd.Page{RequestID: "req-2"}, Action: "/consent", AuthReqID: "ar-2", CSRF: "csrf-2",
		Client: &oauthd.Client{ID: "test_client"}, User: testUser,
		Scopes: []string{"openid", "email", "offline_access", "calendar.read"}, Remember: true, SwitchUserURL: "/switch-user",
	}
}

// TestPagesRender checks that every page answers with its status, the HTML
// content type, the language and the layout's stylesheet.
func TestPagesRender(t *testing.T) {
	p := newPages(t, ui.Options{})
	tests := []struct {
		name       string
		call       func(http.ResponseWriter, *http.Request)
		wantStatus int
		want       string
	}{
		{"login", func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) }, 200, "<h1>Sign in</h1>"},
		{"login 401", func(w http.ResponseWriter, r *http.Request) {
			lp := loginPage()
			lp.Status, lp.Error = http.StatusUnauthorized, "invalid_credentials"
			p.Login(w, r, lp)
		}, 401, "Incorrect username or password."},
		{"consent", func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, consentPage()) }, 200, "<h1>test_client would like permissions</h1>"},
		{"error", func(w http.ResponseWriter, r *http.Request) {
			p.Error(w, r, &oauthd.ErrorPage{Page: oauthd.Page{Status: 400}, Code: oauthd.PageUnknownClient})
		}, 400, "This application is not known."},
		{"error without status", func(w http.ResponseWriter, r *http.Request) {
			p.Error(w, r, &oauthd.ErrorPage{Code: oauthd.PageNotFound})
		}, 404, "This page does not exist."},
		{"form_post", func(w http.ResponseWriter, r *http.Request) {
			p.FormPost(w, r, &oauthd.FormPostPage{Action: "https://client.example/cb", Params: []oauthd.Param{{Name: "code", Value: "c"}}})
		}, 200, `<form method="post" action="https://client.example/cb">`},
		{"home", func(w http.ResponseWriter, r *http.Request) {
			p.Home(w, r, &oauthd.HomePage{User: testUser, LogoutAction: "/logout", CSRF: "csrf-h"})
		}, 200, "<h1>Hello, admin</h1>"},
		{"logout", func(w http.ResponseWriter, r *http.Request) {
			p.Logout(w, r, &oauthd.LogoutPage{Action: "/logout", CSRF: "csrf-l", User: testUser})
		}, 200, "<h1>Sign out of oauthd?</h1>"},
		{"signed out", func(w http.ResponseWriter, r *http.Request) {
			p.Logout(w, r, &oauthd.LogoutPage{SignedOut: true})
		}, 200, "<h1>You are signed out</h1>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, tt.call)
			if got.status != tt.wantStatus {
				t.Errorf("status = %d; want %d", got.status, tt.wantStatus)
			}
			if ct := got.header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
				t.Errorf("Content-Type = %q; want text/html; charset=utf-8", ct)
			}
			if cl := got.header.Get("Content-Language"); cl != "en" {
				t.Errorf("Content-Language = %q; want en", cl)
			}
			mustContain(t, got.body, "<!doctype html>", `<html lang="en">`, `<link rel="stylesheet" href="/static/oauthd.css">`, tt.want)
			checkCSPSafe(t, got.body)
		})
	}
}

var (
	inlineHandler = regexp.MustCompile(`(?i)<[^>]*\son[a-z]+\s*=`)
	styleAttr     = regexp.MustCompile(`(?i)<[^>]*\sstyle\s*=`)
	scriptTag     = regexp.MustCompile(`(?i)<script[^>]*>`)
	resourceURL   = regexp.MustCompile(`(?i)<(?:link|script)[^>]*(?:href|src)="([^"]*)"`)
	attrValue     = regexp.MustCompile(`"[^"]*"`)
)

// checkCSPSafe fails if the page has something the Provider's CSP blocks:
// inline script, event handler attributes, style attributes, or a script
// or stylesheet from anywhere but /static/.
func checkCSPSafe(t testing.TB, body string) {
	t.Helper()
	// Quoted attribute values are data, not markup; html/template quotes
	// every value it writes.
	markup := attrValue.ReplaceAllString(body, `""`)
	if m := inlineHandler.FindString(markup); m != "" {
		t.Errorf("inline event handler: %s", m)
	}
	if m := styleAttr.FindString(markup); m != "" {
		t.Errorf("style attribute: %s", m)
	}
	if strings.Contains(strings.ToLower(markup), "<style") {
		t.Errorf("inline <style> element")
	}
	for _, m := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(m, ` src="/static/`) {
			t.Errorf("inline or foreign script: %s", m)
		}
	}
	for _, m := range resourceURL.FindAllStringSubmatch(body, -1) {
		if !strings.HasPrefix(m[1], "/static/") {
			t.Errorf("resource outside /static/: %s", m[0])
		}
	}
}

func TestLoginForm(t *testing.T) {
	p := newPages(t, ui.Options{})
	lp := loginPage()
	lp.Username = "alice"
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
	mustContain(t, got.body,
		"<title>Sign in – oauthd</title>",
		"<h1>Sign in</h1>",
		"to continue to Test Client",
		`<form method="post" action="/login">`,
		`<input type="hidden" name="request" value="ar-1">`,
		`<input type="hidden" name="csrf" value="csrf-1">`,
		`<label for="username">Username</label>`,
		`<input type="text" id="username" name="username" value="alice" autocomplete="username"`,
		`<label for="password">Password</label>`,
		`<input type="password" id="password" name="password" autocomplete="current-password" required`,
		`<button type="submit">Sign in</button>`,
	)
	if n := strings.Count(got.body, "<button"); n != 1 {
		t.Errorf("login form has %d buttons; want 1", n)
	}
	// A known username (login_hint, a failed attempt) leaves only the
	// password to type, so that field gets the focus; else the username.
	autofocus := regexp.MustCompile(`id="(\w+)"[^>]*\sautofocus`)
	if m := autofocus.FindAllStringSubmatch(got.body, -1); len(m) != 1 || m[0][1] != "password" {
		t.Errorf("autofocus with a username: %v; want the password field only", m)
	}
	empty := loginPage()
	got2 := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, empty) })
	if m := autofocus.FindAllStringSubmatch(got2.body, -1); len(m) != 1 || m[0][1] != "username" {
		t.Errorf("autofocus without a username: %v; want the username field only", m)
	}
	mustNotContain(t, got.body, `role="alert"`)

	lp.Client = &oauthd.Client{ID: "only_an_id"}
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
	mustContain(t, got.body, "to continue to only_an_id")

	lp.Client = nil
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
	mustNotContain(t, got.body, "to continue to")
}

// A login page shown to a browser with someone signed in (a "Not you?",
// prompt=login) says who, that signing in replaces them, and links the
// sign-out page for someone who leaves instead (a shared computer).
func TestLoginSignedIn(t *testing.T) {
	p := newPages(t, ui.Options{})
	lp := loginPage()
	lp.SignedIn, lp.SignOutURL = &oauthd.User{ID: "1", Username: "admin"}, "/oauth/logout"
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
	mustContain(t, got.body, "Signed in as admin.", "Signing in here replaces that session.", `<a href="/oauth/logout">Sign out instead</a>`)
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) })
	mustNotContain(t, got.body, "Signed in as", "Sign out instead")
}

func TestLoginErrors(t *testing.T) {
	p := newPages(t, ui.Options{})
	tests := []struct{ key, want string }{
		{"invalid_credentials", "Incorrect username or password."},
		{"too_many_attempts", "Too many attempts. Wait a moment and try again."},
		{"something_new", "Sign-in failed. Try again."},
	}
	for _, tt := range tests {
		lp := loginPage()
		lp.Error = tt.key
		got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
		// The message is tied to the fields (WCAG 3.3.1): screen readers
		// announce it with them.
		mustContain(t, got.body, `<p class="alert" role="alert" id="login-error">`+tt.want+`</p>`,
			`aria-describedby="login-error"`)
		// A lockout checked no password: the field is not marked wrong.
		if tt.key == "too_many_attempts" {
			mustNotContain(t, got.body, `aria-invalid`)
		} else {
			mustContain(t, got.body, `aria-invalid="true"`)
		}
	}
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) })
	mustNotContain(t, got.body, "aria-invalid", "aria-describedby")

	// A lockout says how long it lasts (the answer's Retry-After).
	for _, tt := range []struct {
		wait time.Duration
		lang string
		want string
	}{
		{time.Second, "en", "Too many attempts. Try again in 1 second."},
		{45 * time.Second, "en", "Too many attempts. Try again in 45 seconds."},
		{60 * time.Second, "en", "Too many attempts. Try again in 1 minute."},
		{61 * time.Second, "en", "Too many attempts. Try again in 2 minutes."},
		{time.Hour, "en", "Too many attempts. Try again in 60 minutes."},
		{45 * time.Second, "fr", "Trop de tentatives. Réessayez dans 45 secondes."},
		{2 * time.Minute, "fr", "Trop de tentatives. Réessayez dans 2 minutes."},
	} {
		lp := loginPage()
		lp.Error, lp.RetryAfter = "too_many_attempts", tt.wait
		got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) }, "Accept-Language", tt.lang)
		mustContain(t, got.body, `id="login-error">`+tt.want+`</p>`)
	}
}

// TestConsent checks the consent page against the seed's approve form
// ("test_client would like permissions", the scopes, Approve and Deny).
func TestConsent(t *testing.T) {
	p := newPages(t, ui.Options{})
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, consentPage()) })
	body := got.body
	mustContain(t, body,
		"<h1>test_client would like permissions</h1>",
		`Signed in as admin. <a href="/switch-user">Not you?</a>`,
		"This will allow test_client to:",
		"<li>Confirm your identity (your account ID) <code>openid</code></li>",
		"<li>See your email address <code>email</code></li>",
		"<li>Stay connected when you are not using the app <code>offline_access</code></li>",
		`<li><code class="unknown">calendar.read</code></li>`,
		`<form method="post" action="/consent">`,
		`<input type="hidden" name="request" value="ar-2">`,
		`<input type="hidden" name="csrf" value="csrf-2">`,
		`<input type="checkbox" id="remember" name="remember" value="1">`,
		`<label for="remember">Remember my approval</label>`,
		`<button type="submit" name="action" value="approve">Approve</button>`,
		`<button type="submit" name="action" value="deny" class="secondary">Deny</button>`,
	)
	if regexp.MustCompile(`<input[^>]*name="remember"[^>]*\schecked`).MatchString(body) {
		t.Errorf("remember box is ticked by default")
	}
	buttons := regexp.MustCompile(`<button[^>]*>([^<]*)</button>`).FindAllStringSubmatch(body, -1)
	if len(buttons) != 2 || !strings.Contains(buttons[0][0], `value="approve"`) {
		t.Fatalf("buttons = %q; want Approve first, then Deny", buttons)
	}
	if deny := strings.ToLower(buttons[1][1]); regexp.MustCompile(`approve|allow|accept|yes|grant|consent|confirm|authori`).MatchString(deny) {
		t.Errorf("deny button text %q reads like approval", deny)
	}
	// No logo or link without http(s) URIs.
	mustNotContain(t, body, "<img", "_blank")
}

// A consent page for a client whose approval cannot be remembered (a
// public client at a loopback or private-use-scheme URI, RFC 8252 §8.6)
// has no "remember" box: ticking it would do nothing.
func TestConsentWithoutRemember(t *testing.T) {
	p := newPages(t, ui.Options{})
	cp := consentPage()
	cp.Remember = false
	body := render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) }).body
	mustNotContain(t, body, `name="remember"`, "Remember my approval")
	mustContain(t, body, `<button type="submit" name="action" value="approve">Approve</button>`)
}

func TestConsentClientNameAndLinks(t *testing.T) {
	p := newPages(t, ui.Options{ScopeDescriptions: map[string]string{"email": "Read your work email", "calendar.read": "See your calendar"}})
	cp := consentPage()
	cp.Client = &oauthd.Client{ID: "test_client", Name: "Example App", LogoURI: "https://app.example/logo.png", ClientURI: "https://app.example/about"}
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) })
	mustContain(t, got.body,
		"<h1>Example App would like permissions</h1>",
		`<img class="logo" src="https://app.example/logo.png" alt="" width="64" height="64">`,
		// The link says, to screen readers, that it opens a new tab (WCAG
		// technique G201).
		`<a href="https://app.example/about" target="_blank" rel="noopener noreferrer">app.example<span class="vh"> (opens in a new tab)</span></a>`,
		"<li>Read your work email <code>email</code></li>",
		"<li>See your calendar <code>calendar.read</code></li>",
	)

	cp.Client, cp.Scopes, cp.SwitchUserURL = nil, nil, ""
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) })
	mustContain(t, got.body, "<h1>An application would like permissions</h1>", "It does not ask for access to any of your information.")
	mustNotContain(t, got.body, "Not you?", "<ul")
}

// Scope descriptions may be given per language ("name#fr"), the one
// without a tag serving the other languages; a built-in scope's is
// replaced only in the language given.
func TestConsentScopeDescriptionsPerLanguage(t *testing.T) {
	p := newPages(t, ui.Options{ScopeDescriptions: map[string]string{
		"calendar.read": "See your calendar", "calendar.read#fr": "Voir votre agenda", "email#fr": "Lire votre courriel pro",
	}})
	call := func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, consentPage()) }
	en := render(t, call, "Accept-Language", "en").body
	mustContain(t, en, "<li>See your calendar <code>calendar.read</code></li>")
	mustNotContain(t, en, "Voir votre agenda", "courriel pro")
	fr := render(t, call, "Accept-Language", "fr").body
	mustContain(t, fr, "<li>Voir votre agenda <code>calendar.read</code></li>", "<li>Lire votre courriel pro <code>email</code></li>")
	mustNotContain(t, fr, "See your calendar")
}

// A client's name is isolated in the page's sentences (UAX #9 §2.7): a
// direction override in it (registered before Client.Validate refused
// them) ends with the name instead of reversing the page's own words; and
// the host of its link is shown in its ASCII form, so a mixed-script
// look-alike (Cyrillic o's in "google") is not read as the real one (OIDC
// Core §3.1.2.4: the person must be able to tell who asks).
func TestConsentClientNameIsolatedHostASCII(t *testing.T) {
	p := newPages(t, ui.Options{})
	cp := consentPage()
	cp.Client = &oauthd.Client{ID: "c", Name: "Photo App \u202elgooG", ClientURI: "https://g\u043e\u043egle.com:8443/about"}
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) })
	for _, want := range []string{
		"<h1>\u2068Photo App \u202elgooG\u2069 would like permissions</h1>",
		"This will allow \u2068Photo App \u202elgooG\u2069 to:",
		`>xn--ggle-55da.com:8443<span class="vh">`,
	} {
		if !strings.Contains(got.body, want) {
			t.Errorf("page does not contain %q\n%s", want, got.body)
		}
	}
	if strings.Contains(got.body, ">g\u043e\u043egle.com") {
		t.Errorf("the look-alike host is shown as Unicode:\n%s", got.body)
	}
}

// TestConsentUnsafeClientURIs checks that only http(s) logo and client
// URIs reach the page.
func TestConsentUnsafeClientURIs(t *testing.T) {
	p := newPages(t, ui.Options{})
	for _, uri := range []string{
		"javascript:alert(1)",
		"JavaScript:alert(document.cookie)",
		" javascript:alert(1)",
		"data:image/svg+xml,<svg onload=alert(1)>",
		"vbscript:msgbox(1)",
		"//evil.example/logo.png",
		"/relative/logo.png",
		"https://user:pass@evil.example/",
		"https:///nohost",
	} {
		cp := consentPage()
		cp.Client = &oauthd.Client{ID: "c", LogoURI: uri, ClientURI: uri}
		got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) })
		mustNotContain(t, got.body, "<img", `target="_blank"`, "javascript:", "vbscript:", "data:", "evil.example", "nohost")
	}
}

// An http logo would be blocked by the pages' CSP (img-src 'self' https:
// data:) and show as a broken image: it is left out; an http client URI is
// a link, kept.
func TestConsentHTTPLogoLeftOut(t *testing.T) {
	p := newPages(t, ui.Options{})
	cp := consentPage()
	cp.Client = &oauthd.Client{ID: "c", LogoURI: "http://app.example/logo.png", ClientURI: "http://app.example/about"}
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) })
	mustNotContain(t, got.body, "<img")
	mustContain(t, got.body, `<a href="http://app.example/about"`)
}

const xss = `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`

// TestEscaping puts an XSS payload in every field a page shows and checks
// that it comes out escaped.
func TestEscaping(t *testing.T) {
	p := newPages(t, ui.Options{ProductName: xss})
	evilClient := &oauthd.Client{ID: xss, Name: xss}
	evilUser := &oauthd.User{ID: xss, Username: xss}
	pg := oauthd.Page{RequestID: xss, Locales: []string{xss}}
	pages := map[string]func(http.ResponseWriter, *http.Request){
		"login (login_hint)": func(w http.ResponseWriter, r *http.Request) {
			p.Login(w, r, &oauthd.LoginPage{Page: pg, Action: "/login", AuthReqID: xss, CSRF: xss, Username: xss, Error: xss, Client: evilClient})
		},
		"consent": func(w http.ResponseWriter, r *http.Request) {
			p.Consent(w, r, &oauthd.ConsentPage{Page: pg, Action: "/consent", AuthReqID: xss, CSRF: xss, Client: evilClient, User: evilUser, Scopes: []string{xss, "openid"}, SwitchUserURL: "/switch?u=" + xss})
		},
		"error": func(w http.ResponseWriter, r *http.Request) {
			p.Error(w, r, &oauthd.ErrorPage{Page: pg, Code: xss, Description: xss})
		},
		"form_post": func(w http.ResponseWriter, r *http.Request) {
			p.FormPost(w, r, &oauthd.FormPostPage{Page: pg, Action: "https://client.example/cb", Params: []oauthd.Param{{Name: xss, Value: xss}, {Name: "state", Value: xss}}})
		},
		"home": func(w http.ResponseWriter, r *http.Request) {
			p.Home(w, r, &oauthd.HomePage{Page: pg, User: evilUser, LogoutAction: "/logout", CSRF: xss})
		},
		"logout": func(w http.ResponseWriter, r *http.Request) {
			p.Logout(w, r, &oauthd.LogoutPage{Page: pg, Action: "/logout", CSRF: xss, Client: evilClient, User: evilUser, Hidden: []oauthd.Param{{Name: xss, Value: xss}}})
		},
	}
	for name, call := range pages {
		t.Run(name, func(t *testing.T) {
			got := render(t, call, "Accept-Language", xss)
			mustNotContain(t, got.body, "<script>alert", "<img src=x", `"'>`)
			mustContain(t, got.body, "&lt;script&gt;alert(1)&lt;/script&gt;")
			checkCSPSafe(t, got.body)
		})
	}
}

func TestErrorPage(t *testing.T) {
	p := newPages(t, ui.Options{})
	tests := []struct {
		code       string
		wantStatus int
		want       string
	}{
		{oauthd.PageUnknownClient, 400, "This application is not known."},
		{oauthd.PageInvalidRedirectURI, 400, "The address this application asked to return to is not registered."},
		{oauthd.PageRequestExpired, 400, "This sign-in request has expired or was already used. Go back to the application and start again."},
		{oauthd.PageOutdated, 400, "This page is out of date: something changed on this browser since it was shown (a sign-in, perhaps in another tab). Go back, reload the page and decide again."},
		{oauthd.PageNotFound, 404, "This page does not exist."},
		{oauthd.PageMethodNotAllowed, 405, "This page cannot be used this way."},
		{oauthd.PageBadRequest, 400, "The request was not valid."},
		{oauthd.PageServerError, 500, "Something went wrong on our side. Try again in a moment."},
		{oauthd.PageTooManyRequests, 429, "Too many requests. Wait a moment and try again."},
		{oauthd.ErrorInvalidScope, 400, "The application asked for permissions it may not have."},
		{oauthd.ErrorTemporarilyUnavailable, 503, "The service is temporarily unavailable."},
		{oauthd.ErrorInvalidRequestObject, 400, "The application&#39;s request could not be completed."},
		{"", 400, "The application&#39;s request could not be completed."},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			ep := &oauthd.ErrorPage{Page: oauthd.Page{RequestID: "req-42"}, Code: tt.code, Description: "redirect_uri does not match"}
			got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Error(w, r, ep) })
			if got.status != tt.wantStatus {
				t.Errorf("status = %d; want %d", got.status, tt.wantStatus)
			}
			mustContain(t, got.body,
				"<h1>Something went wrong</h1>",
				tt.want,
				"<h2>Details</h2>",
				`<p class="description" lang="en">redirect_uri does not match</p>`,
				"Request ID: req-42",
			)
			if tt.code != "" {
				mustContain(t, got.body, "Error code: "+tt.code)
			}
			// No way back to anything a client supplied: no link at all.
			mustNotContain(t, got.body, "<a ", "goroutine", ".go:")
		})
	}
}

func TestFormPost(t *testing.T) {
	p := newPages(t, ui.Options{})
	params := []oauthd.Param{
		{Name: "state", Value: "s&t=1"},
		{Name: "code", Value: "abc"},
		{Name: "iss", Value: "https://auth.example"},
		{Name: "a", Value: ""},
	}
	for _, action := range []string{
		"https://client.example/cb",
		"https://client.example/cb?tenant=1",
		"http://127.0.0.1:49152/cb",
		"http://[::1]:8080/callback",
		"com.example.app:/cb",
		"com.example.app:/oauth2redirect?x=1&y=2",
	} {
		t.Run(action, func(t *testing.T) {
			got := render(t, func(w http.ResponseWriter, r *http.Request) {
				p.FormPost(w, r, &oauthd.FormPostPage{Action: action, Params: params})
			})
			if got.status != 200 {
				t.Errorf("status = %d; want 200", got.status)
			}
			wantAction := strings.ReplaceAll(action, "&", "&amp;")
			mustContain(t, got.body,
				`<form method="post" action="`+wantAction+`">`+"\n"+
					`<input type="hidden" name="state" value="s&amp;t=1">`+"\n"+
					`<input type="hidden" name="code" value="abc">`+"\n"+
					`<input type="hidden" name="iss" value="https://auth.example">`+"\n"+
					`<input type="hidden" name="a" value="">`+"\n",
				`<script src="/static/formpost.js" defer></script>`,
				"<noscript>",
				`<button type="submit">Continue</button>`,
			)
			if i, j := strings.Index(got.body, "<noscript>"), strings.Index(got.body, "<button"); i < 0 || j < i {
				t.Errorf("the Continue button is not inside <noscript>")
			}
			if n := strings.Count(got.body, "<form"); n != 1 {
				t.Errorf("%d forms; formpost.js submits document.forms[0], so want exactly 1", n)
			}
			checkCSPSafe(t, got.body)
		})
	}
}

// TestFormPostRefusesScriptSchemes checks the second line of defence: a
// form_post target that could run script gives an error page, not a form.
func TestFormPostRefusesScriptSchemes(t *testing.T) {
	var logs bytes.Buffer
	p := newPages(t, ui.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, action := range []string{"javascript:alert(1)", "JAVASCRIPT:alert(1)", "data:text/html,x", "vbscript:x", "", "/relative", "https://a.example/ cb"} {
		got := render(t, func(w http.ResponseWriter, r *http.Request) {
			p.FormPost(w, r, &oauthd.FormPostPage{Page: oauthd.Page{RequestID: "req-9"}, Action: action, Params: []oauthd.Param{{Name: "code", Value: "secret-code"}}})
		})
		if got.status != http.StatusInternalServerError {
			t.Errorf("%q: status = %d; want 500", action, got.status)
		}
		mustNotContain(t, got.body, "<form", "secret-code", "javascript:", "vbscript:")
		mustContain(t, got.body, "Request ID: req-9")
	}
	mustContain(t, logs.String(), "form_post action", "request_id=req-9")
}

func TestFormPostScript(t *testing.T) {
	p := newPages(t, ui.Options{})
	w := get(t, p.Static(), http.MethodGet, "/static/formpost.js")
	if w.Code != 200 {
		t.Fatalf("status = %d; want 200", w.Code)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/javascript; charset=utf-8" {
		t.Errorf("Content-Type = %q; want text/javascript; charset=utf-8", ct)
	}
	mustContain(t, w.Body.String(), "document.forms[0]", ".submit()")
}

func TestHome(t *testing.T) {
	p := newPages(t, ui.Options{ProductName: "Example ID"})
	got := render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Home(w, r, &oauthd.HomePage{User: testUser, LogoutAction: "/logout", CSRF: "csrf-h"})
	})
	mustContain(t, got.body,
		"<h1>Hello, admin</h1>",
		"You are signed in to Example ID.",
		`<form method="post" action="/logout">`,
		`<input type="hidden" name="csrf" value="csrf-h">`,
		`<button type="submit">Sign out</button>`,
	)
}

func TestLogout(t *testing.T) {
	p := newPages(t, ui.Options{})
	got := render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Logout(w, r, &oauthd.LogoutPage{Action: "/logout", CSRF: "csrf-l", Client: testClient, User: testUser,
			Hidden: []oauthd.Param{{Name: "post_logout_redirect_uri", Value: "https://client.example/bye"}, {Name: "state", Value: "st"}}})
	})
	mustContain(t, got.body,
		"<h1>Sign out of oauthd?</h1>",
		"Test Client asked to sign you out.",
		"Signed in as admin.",
		`<form method="post" action="/logout">`+"\n"+
			`<input type="hidden" name="post_logout_redirect_uri" value="https://client.example/bye">`+"\n"+
			`<input type="hidden" name="state" value="st">`+"\n"+
			`<input type="hidden" name="csrf" value="csrf-l">`,
		`<button type="submit" name="action" value="logout">Sign out</button>`,
		`<button type="submit" name="action" value="cancel" class="secondary">Stay signed in</button>`,
	)
	mustNotContain(t, got.body, "You are signed out")

	got = render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Logout(w, r, &oauthd.LogoutPage{SignedOut: true})
	})
	mustContain(t, got.body, "<h1>You are signed out</h1>", "You can close this page.")
	mustNotContain(t, got.body, "<form", "<button")
}

func TestLocale(t *testing.T) {
	p := newPages(t, ui.Options{})
	tests := []struct {
		name    string
		locales []string
		accept  string
		want    string
	}{
		{"ui_locales fr-CA", []string{"fr-CA"}, "", "fr"},
		{"first supported locale", []string{"de", "fr_FR", "en"}, "", "fr"},
		{"locales before header", []string{"en"}, "fr", "en"},
		{"Accept-Language fr", nil, "fr", "fr"},
		{"Accept-Language weights", nil, "de;q=0.9, fr-BE;q=0.8, en;q=0.7", "fr"},
		{"Accept-Language q order", nil, "en;q=0.1, fr", "fr"},
		{"Accept-Language q=0", nil, "fr;q=0, de", "en"},
		{"unsupported locales then header", []string{"ja"}, "FR-ca", "fr"},
		{"nothing", nil, "", "en"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := render(t, func(w http.ResponseWriter, r *http.Request) {
				lp := loginPage()
				lp.Locales = tt.locales
				p.Login(w, r, lp)
			}, "Accept-Language", tt.accept)
			mustContain(t, got.body, `<html lang="`+tt.want+`">`)
			if cl := got.header.Get("Content-Language"); cl != tt.want {
				t.Errorf("Content-Language = %q; want %q", cl, tt.want)
			}
		})
	}
}

func TestFrench(t *testing.T) {
	p := newPages(t, ui.Options{})
	fr := oauthd.Page{Locales: []string{"fr-CA"}, RequestID: "req-fr"}
	lp := loginPage()
	lp.Page, lp.Error = fr, "invalid_credentials"
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
	mustContain(t, got.body, `<html lang="fr">`, "<h1>Connexion</h1>", "pour continuer vers Test Client",
		`<label for="username">Nom d’utilisateur</label>`, `<label for="password">Mot de passe</label>`,
		`<button type="submit">Se connecter</button>`, "Nom d’utilisateur ou mot de passe incorrect.")

	cp := consentPage()
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) }, "Accept-Language", "fr")
	mustContain(t, got.body, `<html lang="fr">`, "<h1>test_client demande des autorisations</h1>",
		"Confirmer votre identité (l’identifiant de votre compte)", "Mémoriser mon accord",
		`value="approve">Autoriser</button>`, `value="deny" class="secondary">Refuser</button>`, "Connecté en tant qu’admin.")
	// French elides before a vowel only.
	cp.User = &oauthd.User{Username: "bob"}
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, cp) }, "Accept-Language", "fr")
	mustContain(t, got.body, "Connecté en tant que bob.")
	got = render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Logout(w, r, &oauthd.LogoutPage{Page: fr, User: &oauthd.User{Username: "Émile"}})
	})
	mustContain(t, got.body, "Se déconnecter d’oauthd\u00a0?", "Connecté en tant qu’Émile.")

	got = render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Error(w, r, &oauthd.ErrorPage{Page: fr, Code: oauthd.PageUnknownClient})
	})
	mustContain(t, got.body, "Cette application est inconnue.", "Identifiant de requête\u00a0: req-fr")

	got = render(t, func(w http.ResponseWriter, r *http.Request) {
		p.FormPost(w, r, &oauthd.FormPostPage{Page: fr, Action: "https://client.example/cb"})
	})
	mustContain(t, got.body, `<button type="submit">Continuer</button>`)

	got = render(t, func(w http.ResponseWriter, r *http.Request) {
		p.Logout(w, r, &oauthd.LogoutPage{Page: fr, SignedOut: true})
	})
	mustContain(t, got.body, "Votre session est fermée")
}

func TestDefaultLocale(t *testing.T) {
	p := newPages(t, ui.Options{DefaultLocale: "fr-FR"})
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) }, "Accept-Language", "de")
	mustContain(t, got.body, `<html lang="fr">`)

	_, err := ui.New(ui.Options{DefaultLocale: "tlh"})
	if err == nil || !strings.Contains(err.Error(), "DefaultLocale") {
		t.Errorf("New(DefaultLocale: tlh) error = %v; want one naming DefaultLocale", err)
	}
}

func TestLocales(t *testing.T) {
	if got := strings.Join(ui.Locales(), ","); got != "en,fr" {
		t.Errorf("Locales() = %s; want en,fr", got)
	}
}

// writeFiles creates the files (name, content pairs) under dir.
func writeFiles(t testing.TB, dir string, files ...string) {
	t.Helper()
	for i := 0; i+1 < len(files); i += 2 {
		name := filepath.Join(dir, filepath.FromSlash(files[i]))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(files[i+1]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestThemeDir(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir,
		"templates/login.html", `{{define "content"}}<h1 class="brand">{{.Title}} at ACME</h1><p>{{.Data.Username}}</p>{{end}}`,
		"static/oauthd.css", "body{color:#123}",
		"static/img/logo.svg", `<svg xmlns="http://www.w3.org/2000/svg"/>`,
		"static/.secret", "hidden",
	)
	p := newPages(t, ui.Options{ThemeDir: dir})

	lp := loginPage()
	lp.Username = xss
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, lp) })
	mustContain(t, got.body, `<h1 class="brand">Sign in at ACME</h1>`, "&lt;script&gt;", `<link rel="stylesheet" href="/static/oauthd.css">`)
	mustNotContain(t, got.body, `<label for="username">`)

	// Other pages keep the embedded templates.
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, consentPage()) })
	mustContain(t, got.body, "<h1>test_client would like permissions</h1>")

	w := get(t, p.Static(), http.MethodGet, "/static/oauthd.css")
	if w.Code != 200 || w.Body.String() != "body{color:#123}" {
		t.Errorf("oauthd.css = %d %q; want the theme's", w.Code, w.Body.String())
	}
	w = get(t, p.Static(), http.MethodGet, "/static/img/logo.svg")
	if w.Code != 200 || w.Header().Get("Content-Type") != "image/svg+xml" {
		t.Errorf("img/logo.svg = %d %q; want 200 image/svg+xml", w.Code, w.Header().Get("Content-Type"))
	}
	if w = get(t, p.Static(), http.MethodGet, "/static/.secret"); w.Code != 404 {
		t.Errorf("hidden file: status = %d; want 404", w.Code)
	}
	if w = get(t, p.Static(), http.MethodGet, "/static/formpost.js"); w.Code != 200 {
		t.Errorf("embedded formpost.js: status = %d; want 200", w.Code)
	}

	// The theme is read at New: a later change needs a new Pages.
	writeFiles(t, dir, "templates/login.html", `{{define "content"}}changed{{end}}`)
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) })
	mustContain(t, got.body, "at ACME")
	got = render(t, func(w http.ResponseWriter, r *http.Request) {
		newPages(t, ui.Options{ThemeDir: dir}).Login(w, r, loginPage())
	})
	mustContain(t, got.body, "changed")
}

func TestThemeDirLayout(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, "templates/layout.html",
		`{{define "layout"}}<!doctype html><html lang="{{.Lang}}"><head><title>{{.Title}}</title><link rel="stylesheet" href="/static/acme.css">{{block "head" .}}{{end}}</head><body><header>ACME</header>{{template "content" .}}</body></html>{{end}}`,
		"static/acme.css", "header{font-weight:bold}")
	p := newPages(t, ui.Options{ThemeDir: dir})
	got := render(t, func(w http.ResponseWriter, r *http.Request) {
		p.FormPost(w, r, &oauthd.FormPostPage{Action: "https://client.example/cb"})
	})
	mustContain(t, got.body, "<header>ACME</header>", `href="/static/acme.css"`, `<script src="/static/formpost.js" defer></script>`)
}

func TestThemeDirErrors(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  string
	}{
		{"unknown template", []string{"templates/logn.html", `{{define "content"}}{{end}}`}, "logn.html"},
		{"syntax error", []string{"templates/consent.html", `{{define "content"}}{{if}}{{end}}`}, "consent.html"},
		{"missing field", []string{"templates/home.html", `{{define "content"}}{{.Data.NoSuchField}}{{end}}`}, "home"},
		{"unknown function", []string{"templates/error.html", `{{define "content"}}{{nosuch .}}{{end}}`}, "nosuch"},
		{"layout without layout", []string{"templates/layout.html", `{{define "page"}}{{end}}`}, "layout"},
		{"theme.css and colour", []string{"static/theme.css", ":root{}"}, "theme.css"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tt.files...)
			_, err := ui.New(ui.Options{ThemeDir: dir, PrimaryColor: "navy"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v; want one mentioning %q", err, tt.want)
			}
		})
	}
	_, err := ui.New(ui.Options{ThemeDir: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "ThemeDir") {
		t.Errorf("New(missing ThemeDir) error = %v; want one naming ThemeDir", err)
	}
}

func TestColours(t *testing.T) {
	bad := []struct{ primary, accent, field string }{
		{"red;}body{display:none", "", "PrimaryColor"},
		{"#12", "", "PrimaryColor"},
		{"#12345g", "", "PrimaryColor"},
		{"url(x)", "", "PrimaryColor"},
		{"bleu", "", "PrimaryColor"},
		{"transparent", "", "PrimaryColor"},
		{"", "rgb(0,0,0)", "AccentColor"},
		{"", "#1234567", "AccentColor"},
		{"", "yellow", "AccentColor"}, // 1.1:1 on the white card: unreadable links
	}
	for _, tt := range bad {
		_, err := ui.New(ui.Options{PrimaryColor: tt.primary, AccentColor: tt.accent})
		if err == nil || !strings.Contains(err.Error(), tt.field) {
			t.Errorf("New(%q, %q) error = %v; want one naming %s", tt.primary, tt.accent, err, tt.field)
		}
	}

	p := newPages(t, ui.Options{PrimaryColor: "Gold", AccentColor: "#036"})
	got := render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) })
	mustContain(t, got.body, `<link rel="stylesheet" href="/static/oauthd.css">`+"\n"+`<link rel="stylesheet" href="/static/theme.css">`)
	w := get(t, p.Static(), http.MethodGet, "/static/theme.css")
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Fatalf("theme.css = %d %q; want 200 text/css", w.Code, w.Header().Get("Content-Type"))
	}
	// Black text on gold; #036 in light mode, and in dark mode (too dark
	// for the dark card, WCAG 1.4.3) a lighter tint of it that reads there:
	// the theme comes after oauthd.css and would otherwise replace its dark
	// mode accent with the unreadable one.
	css := w.Body.String()
	mustContain(t, css, "--primary:#ffd700;--on-primary:#000000", ":root{--accent:#003366}")
	dark := themeDarkVars(t, css)
	if a, ok := dark["--accent"]; !ok || contrastOf(t, a, "#1f2937") < 4.5 {
		t.Errorf("dark mode accent %q in\n%s\nwant one that contrasts 4.5:1 with the dark card", a, css)
	}
	if _, ok := dark["--primary"]; ok {
		t.Errorf("gold, readable on the dark card, was replaced in dark mode:\n%s", css)
	}

	// The README's example theme: a navy accent and a dark blue primary.
	p = newPages(t, ui.Options{PrimaryColor: "#0b5394", AccentColor: "navy"})
	css = get(t, p.Static(), http.MethodGet, "/static/theme.css").Body.String()
	dark = themeDarkVars(t, css)
	if contrastOf(t, dark["--accent"], "#1f2937") < 4.5 || contrastOf(t, dark["--primary"], "#1f2937") < 3 ||
		contrastOf(t, dark["--primary"], dark["--on-primary"]) < 4.5 {
		t.Errorf("dark mode of primary #0b5394, accent navy:\n%s\nwant links 4.5:1 and buttons 3:1 on the dark card, button text 4.5:1", css)
	}

	p = newPages(t, ui.Options{PrimaryColor: "#abc", AccentColor: "darkviolet"})
	w = get(t, p.Static(), http.MethodGet, "/static/theme.css")
	mustContain(t, w.Body.String(), "--primary:#aabbcc;")

	p = newPages(t, ui.Options{})
	got = render(t, func(w http.ResponseWriter, r *http.Request) { p.Login(w, r, loginPage()) })
	mustNotContain(t, got.body, "theme.css")
	if w := get(t, p.Static(), http.MethodGet, "/static/theme.css"); w.Code != 404 {
		t.Errorf("theme.css without colours: status = %d; want 404", w.Code)
	}
}

func TestStatic(t *testing.T) {
	p := newPages(t, ui.Options{})
	h := p.Static()
	w := get(t, h, http.MethodGet, "/static/oauthd.css")
	if w.Code != 200 {
		t.Fatalf("status = %d; want 200", w.Code)
	}
	for k, want := range map[string]string{
		"Content-Type":           "text/css; charset=utf-8",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "public, max-age=3600",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q; want %q", k, got, want)
		}
	}
	mustContain(t, w.Body.String(), ":focus-visible", "prefers-color-scheme: dark")
	if n := w.Body.Len(); n >= 6<<10 {
		t.Errorf("oauthd.css is %d bytes; want < 6 KiB", n)
	}

	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatalf("no ETag")
	}
	if w := get(t, h, http.MethodGet, "/static/oauthd.css", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: status = %d; want 304", w.Code)
	}
	if w := get(t, h, http.MethodHead, "/static/oauthd.css"); w.Code != 200 || w.Body.Len() != 0 {
		t.Errorf("HEAD: status = %d, %d bytes; want 200, empty", w.Code, w.Body.Len())
	}
	if w := get(t, h, http.MethodPost, "/static/oauthd.css"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status = %d, Allow %q; want 405, GET, HEAD", w.Code, w.Header().Get("Allow"))
	}
	// RFC 9110 §14.2: byte ranges are served, a range of an unknown unit
	// is ignored (the whole file).
	if w := get(t, h, http.MethodGet, "/static/oauthd.css", "Range", "bytes=0-9"); w.Code != http.StatusPartialContent || w.Body.Len() != 10 {
		t.Errorf("Range bytes=0-9: status = %d, %d bytes; want 206, 10", w.Code, w.Body.Len())
	}
	if w := get(t, h, http.MethodGet, "/static/oauthd.css", "Range", "items=0-1"); w.Code != http.StatusOK || w.Body.Len() < 100 {
		t.Errorf("Range items=0-1: status = %d, %d bytes; want 200 and the whole file", w.Code, w.Body.Len())
	}
}

func TestStaticNotFound(t *testing.T) {
	p := newPages(t, ui.Options{})
	mux := http.NewServeMux()
	mux.Handle(oauthd.StaticPath, p.Static())
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, path := range []string{
		"/static/nope.css",
		"/static/",
		"/static",
		"/oauthd.css",
		"/static/../ui.go",
		"/static/..%2fui.go",
		"/static/%2e%2e/ui.go",
		"/static/..%2f..%2f..%2fetc%2fpasswd",
		"/static//etc/passwd",
		"/static/./oauthd.css/..",
		"/static/templates/login.html",
		"/static/static/oauthd.css",
		"/static/OAUTHD.CSS",
		"/static/oauthd.css%00",
		`/static/..\ui.go`,
	} {
		// Straight to the handler, as the Provider might call it...
		if w := get(t, p.Static(), http.MethodGet, path); w.Code != http.StatusNotFound {
			t.Errorf("handler: %s: status = %d; want 404", path, w.Code)
		}
		// ...and over HTTP through a ServeMux, which cleans paths first.
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("server: %s: status = %d, body %.60q; want 404", path, resp.StatusCode, body)
		}
	}
}

// TestConcurrentRendering renders pages from many goroutines; run with
// -race it checks that Pages holds no shared mutable state.
func TestConcurrentRendering(t *testing.T) {
	p := newPages(t, ui.Options{PrimaryColor: "navy"})
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				render(t, func(w http.ResponseWriter, r *http.Request) { p.Consent(w, r, consentPage()) }, "Accept-Language", "fr")
				get(t, p.Static(), http.MethodGet, "/static/theme.css")
			}
		}()
	}
	wg.Wait()
}

// themeDarkVars are the custom properties theme.css sets in dark mode.
func themeDarkVars(t *testing.T, css string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, rule := range strings.Split(css, "\n") {
		body, ok := strings.CutPrefix(rule, "@media (prefers-color-scheme:dark){:root{")
		if !ok {
			continue
		}
		for _, decl := range strings.Split(strings.TrimSuffix(body, "}}"), ";") {
			if k, v, ok := strings.Cut(decl, ":"); ok {
				vars[k] = v
			}
		}
	}
	return vars
}

// contrastOf is the WCAG contrast ratio of two #rrggbb colours.
func contrastOf(t *testing.T, a, b string) float64 {
	t.Helper()
	lum := func(s string) float64 {
		v, err := strconv.ParseUint(strings.TrimPrefix(s, "#"), 16, 32)
		if err != nil || len(s) != 7 {
			t.Fatalf("colour %q", s)
		}
		ch := func(x uint64) float64 {
			c := float64(x&0xff) / 255
			if c <= 0.04045 {
				return c / 12.92
			}
			return math.Pow((c+0.055)/1.055, 2.4)
		}
		return 0.2126*ch(v>>16) + 0.7152*ch(v>>8) + 0.0722*ch(v)
	}
	x, y := lum(a), lum(b)
	if x < y {
		x, y = y, x
	}
	return (x + 0.05) / (y + 0.05)
}
