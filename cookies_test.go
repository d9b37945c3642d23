package oauthd_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// RFC 6265bis §4.1.3.2, RFC 6797: with an https issuer the browser and session
// cookies are __Host- cookies (Secure, Path=/, no Domain), which only this
// host, over https, can set: a sibling subdomain or a forged plain-http
// answer cannot plant a browser cookie whose CSRF tokens it knows, nor
// shadow the session.
func TestCookiesHostPrefixWithHTTPSIssuer(t *testing.T) {
	tp := newTimingProvider(t)
	if !strings.HasPrefix(tp.cookie, "__Host-oauthd_browser=") {
		t.Fatalf("browser cookie %q; want the __Host- prefix", tp.cookie)
	}
	w := httptest.NewRecorder()
	tp.p.ServeHTTP(w, httptest.NewRequest("GET", oauthd.LoginPath, nil))
	checkHostCookie(t, w.Result(), "__Host-oauthd_browser")
	if got := w.Header().Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("Strict-Transport-Security %q; want max-age=31536000 (RFC 6797) with an https issuer", got)
	}

	w = tp.login("alice", "alice-password")
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	checkHostCookie(t, w.Result(), "__Host-oauthd_session")

	// The same value under the unprefixed name, as a sibling subdomain
	// could set it, is not this host's browser cookie: the form's CSRF
	// token does not match it.
	planted := strings.TrimPrefix(tp.cookie, "__Host-")
	r := httptest.NewRequest("POST", oauthd.LoginPath, strings.NewReader(url.Values{"csrf": {tp.csrf}, "username": {"alice"}, "password": {"alice-password"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", planted)
	w = httptest.NewRecorder()
	tp.p.ServeHTTP(w, r)
	if w.Code != http.StatusForbidden {
		t.Errorf("sign-in with the browser cookie under its unprefixed name: %d; want 403", w.Code)
	}
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, "session") && c.Value != "" {
			t.Errorf("a session was started: %v", c)
		}
	}
}

func checkHostCookie(t *testing.T, res *http.Response, name string) {
	t.Helper()
	for _, c := range res.Cookies() {
		if c.Name == name {
			if !c.Secure || c.Path != "/" || c.Domain != "" || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode {
				t.Errorf("%s: Secure=%v Path=%q Domain=%q HttpOnly=%v SameSite=%v; want Secure, Path=/, no Domain, HttpOnly, Lax",
					name, c.Secure, c.Path, c.Domain, c.HttpOnly, c.SameSite)
			}
			return
		}
	}
	t.Errorf("no %s cookie in %v", name, res.Header["Set-Cookie"])
}

// An issuer's scheme is case-insensitive (RFC 3986 §3.1): HTTPS://... is
// an https issuer, with Secure __Host- cookies and HSTS. On localhost or a
// loopback address there is no HSTS: it would hold for every port of the
// host (RFC 6797 §8.3) and break every other development server there.
func TestCookiesIssuerSchemeCaseAndLocalhost(t *testing.T) {
	for _, c := range []struct {
		issuer string
		hsts   bool
	}{{"HTTPS://auth.example.com", true}, {"https://localhost:8443", false}, {"https://127.0.0.1:8443", false}} {
		p, err := oauthd.New(oauthd.Config{Issuer: c.issuer, Pages: fakePages{}}, memstore.New())
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", oauthd.LoginPath, nil))
		checkHostCookie(t, w.Result(), "__Host-oauthd_browser")
		if got := w.Header().Get("Strict-Transport-Security") != ""; got != c.hsts {
			t.Errorf("%s: HSTS %v; want %v", c.issuer, got, c.hsts)
		}
	}
}

// After a failed attempt, signing in clears the kept name.
func TestLoginNameClearedAfterSignIn(t *testing.T) {
	tp := newTimingProvider(t)
	w := tp.login("alice", "wrong")
	var kept string
	for _, c := range w.Result().Cookies() {
		if c.Name == "__Secure-oauthd_login_name" {
			kept = c.Name + "=" + c.Value
		}
	}
	if kept == "" {
		t.Fatalf("no login name kept: %v", w.Result().Header["Set-Cookie"])
	}
	r := httptest.NewRequest("POST", oauthd.LoginPath, strings.NewReader(url.Values{"csrf": {tp.csrf}, "username": {"alice"}, "password": {"alice-password"}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", tp.cookie+"; "+kept)
	w = httptest.NewRecorder()
	tp.p.ServeHTTP(w, r)
	cleared := false
	for _, c := range w.Result().Cookies() {
		cleared = cleared || c.Name == "__Secure-oauthd_login_name" && c.MaxAge < 0
	}
	if w.Code != http.StatusSeeOther || !cleared {
		t.Errorf("sign-in: %d, Set-Cookie %v; want 303 and the kept name cleared", w.Code, w.Result().Header["Set-Cookie"])
	}
}

// An http issuer (development on localhost) cannot have __Host- cookies,
// which must be Secure: the names are plain and the cookies not Secure.
func TestCookiesPlainWithHTTPIssuer(t *testing.T) {
	p, err := oauthd.New(oauthd.Config{Issuer: "http://localhost:8000", Pages: fakePages{}}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", oauthd.LoginPath, nil))
	cs := w.Result().Cookies()
	if len(cs) != 1 || cs[0].Name != "oauthd_browser" || cs[0].Secure {
		t.Errorf("cookies %v; want oauthd_browser, not Secure", w.Result().Header["Set-Cookie"])
	}
	if got := w.Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("Strict-Transport-Security %q with an http issuer; want none", got)
	}
}

// A failed sign-in keeps the name typed for the login page in a cookie,
// but not a name too long for one: a 60,000-character name made an 80 KB
// Set-Cookie header (browsers drop cookies over 4 KB; proxies with 4–8 KB
// header buffers answer 502).
func TestLongLoginNameNotKept(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name     string
		username string
		kept     bool
	}{
		{"a name", "someone", true},
		{"a 60,000-character name", strings.Repeat("n", 60000), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			lp := e.loginPage(b)
			r := b.post(e.url(oauthd.LoginPath), url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {tc.username}, "password": {"wrong"}})
			if r.status != http.StatusSeeOther {
				t.Fatalf("failed sign-in: %d", r.status)
			}
			kept := false
			for _, c := range r.header.Values("Set-Cookie") {
				if len(c) > 4096 {
					t.Errorf("a Set-Cookie header of %d bytes; want under 4 KB", len(c))
				}
				kept = kept || strings.Contains(c, "oauthd_login_name=") && !strings.Contains(c, "Max-Age=0")
			}
			if kept != tc.kept {
				t.Errorf("name kept in a cookie: %v; want %v", kept, tc.kept)
			}
			// The login page it is sent to says the sign-in failed,
			// whether or not the name was kept.
			page := b.get(e.url(r.location()))
			if page.str("Error") != "invalid_credentials" {
				t.Errorf("the login page after the failed sign-in: error %q; want invalid_credentials", page.str("Error"))
			}
		})
	}
}
