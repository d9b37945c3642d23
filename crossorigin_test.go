package oauthd_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
)

// postWith posts a form from b with extra request headers (what a browser
// adds: Sec-Fetch-Site, Origin).
func (b *browser) postWith(u string, form url.Values, header ...string) *response {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(b.t, b.c, req)
}

// setBrowserCookie puts a chosen browser cookie into b's jar, as a page on
// another port of the server's host can (cookies are not isolated by port,
// RFC 6265 §8.5).
func (b *browser) setBrowserCookie(e *testEnv, v string) {
	u, _ := url.Parse(e.srv.URL)
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_browser", Value: v, Path: "/"}})
}

// otherOrigin is a page on another port of the server's host: same site,
// another origin.
func otherOrigin(e *testEnv) string {
	u, _ := url.Parse(e.srv.URL)
	return "http://" + u.Hostname() + ":1"
}

// The login, consent and sign-out forms are refused when the browser says
// they were posted from a page of another origin (Fetch Metadata's
// Sec-Fetch-Site, else Origin), before any cookie is set; from this
// server's own pages, from programs that send neither header and from
// browsers that send Origin: null (no Fetch Metadata, no-referrer policy)
// they are taken.
func TestFormsRefuseOtherOrigins(t *testing.T) {
	e := newEnv(t)
	refused := []struct {
		name   string
		header []string
	}{
		{"FetchMetadata/cross-site", []string{"Sec-Fetch-Site", "cross-site"}},
		{"FetchMetadata/same-site_other_port", []string{"Sec-Fetch-Site", "same-site", "Origin", otherOrigin(e)}},
		{"RFC6454/origin_other_port", []string{"Origin", otherOrigin(e)}},
		{"RFC6454/origin_other_host", []string{"Origin", "https://evil.example"}},
	}
	accepted := [][]string{
		{"Sec-Fetch-Site", "same-origin", "Origin", e.srv.URL},
		{"Origin", e.srv.URL},
		{"Origin", "null"},
		nil,
	}
	check := func(t *testing.T, what string, r *response) {
		t.Helper()
		if r.status != http.StatusForbidden || r.pageKind() != "error" {
			t.Errorf("%s: %d %s %q; want a 403 error page", what, r.status, r.pageKind(), r.location())
		}
		if sc := r.header.Values("Set-Cookie"); len(sc) != 0 {
			t.Errorf("%s: Set-Cookie %q; want none (a new browser cookie would replace the person's)", what, sc)
		}
	}

	for i, ok := range accepted {
		b := e.browser()
		login := b.follow(e, b.get(e.authorizeURL()))
		lf := url.Values{"request": {login.str("AuthReqID")}, "csrf": {login.str("CSRF")}, "username": {"admin"}, "password": {"admin"}}
		for _, tc := range refused {
			check(t, "login "+tc.name, b.postWith(e.url(oauthd.LoginPath), lf, tc.header...))
		}
		r := b.postWith(e.url(oauthd.LoginPath), lf, ok...)
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
			t.Fatalf("login with %q: %d %q; want the consent page", ok, r.status, r.location())
		}
		consent := b.follow(e, r)
		cf := url.Values{"request": {consent.str("AuthReqID")}, "csrf": {consent.str("CSRF")}, "action": {"approve"}}
		for _, tc := range refused {
			check(t, "consent "+tc.name, b.postWith(e.url(oauthd.ConsentPath), cf, tc.header...))
		}
		r = b.postWith(e.url(oauthd.ConsentPath), cf, ok...)
		if u, err := url.Parse(r.location()); err != nil || u.Query().Get("code") == "" {
			t.Fatalf("consent with %q: %d %q; want a code", ok, r.status, r.location())
		}
		logout := b.get(e.url(oauthd.LogoutPath))
		if logout.pageKind() != "logout" || logout.str("CSRF") == "" {
			t.Fatalf("logout page: %d %s", logout.status, logout.body)
		}
		of := url.Values{"csrf": {logout.str("CSRF")}}
		for _, tc := range refused {
			check(t, "logout "+tc.name, b.postWith(e.url(oauthd.LogoutPath), of, tc.header...))
		}
		if r := b.get(e.url(oauthd.LogoutPath)); r.pageKind() != "logout" || r.page["SignedOut"] == true {
			t.Fatalf("after the refused sign-outs: %d %s; want the person still signed in", r.status, r.body)
		}
		if r := b.follow(e, b.postWith(e.url(oauthd.LogoutPath), of, ok...)); r.status != http.StatusOK || r.page["SignedOut"] != true {
			t.Errorf("sign-out %d with %q: %d %s; want signed out", i, ok, r.status, r.body)
		}
	}
}

// A page on another port of the server's host can replace the browser
// cookie with a value of its choosing and obtain the forms made for it,
// signed in as the attacker: it still can neither sign the person in as
// the attacker (login CSRF) nor approve a request in their session.
func TestTossedBrowserCookie(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.store.CreateUser(ctx, &oauthd.User{ID: "mallory-id", Username: "mallory", PasswordHash: hash(t, "mallory-pw")}); err != nil {
		t.Fatal(err)
	}
	const tossed = "ATTACKERCHOSENattackerchosenATTACKERCHOSEN0" // 43 characters, like a real one
	attacker := e.browser()
	attacker.setBrowserCookie(e, tossed)
	victim := e.browser()

	// Login CSRF: the attacker's login form, posted from the attacker's page
	// in the victim's browser.
	login := attacker.follow(e, attacker.get(e.authorizeURL()))
	victim.setBrowserCookie(e, tossed)
	r := victim.postWith(e.url(oauthd.LoginPath), url.Values{"request": {login.str("AuthReqID")}, "csrf": {login.str("CSRF")},
		"username": {"mallory"}, "password": {"mallory-pw"}}, "Sec-Fetch-Site", "same-site", "Origin", otherOrigin(e))
	if r.status != http.StatusForbidden {
		t.Errorf("forged login from another port: %d %q; want 403", r.status, r.location())
	}

	// Consent: the victim is signed in; the attacker signs in as mallory
	// with the tossed cookie, takes the consent form of a request, and has
	// the victim's browser (an old one that sends no Fetch Metadata)
	// post it.
	victim = e.browser()
	victim.follow(e, victim.login(e, victim.follow(e, victim.get(e.authorizeURL())), "admin", "admin"))
	consent := attacker.follow(e, attacker.login(e, attacker.follow(e, attacker.get(e.authorizeURL("scope", "email"))), "mallory", "mallory-pw"))
	if consent.pageKind() != "consent" {
		t.Fatalf("attacker's consent page: %d %s", consent.status, consent.body)
	}
	victim.setBrowserCookie(e, tossed)
	r = victim.post(e.url(oauthd.ConsentPath), url.Values{"request": {consent.str("AuthReqID")}, "csrf": {consent.str("CSRF")},
		"action": {"approve"}, "remember": {"1"}})
	if r.status != http.StatusForbidden {
		t.Errorf("a consent form of another session approved in the victim's: %d %q; want 403", r.status, r.location())
	}
	if cs, err := e.store.Consent(ctx, e.user.ID, clientID); err == nil {
		t.Errorf("a consent was remembered for the victim: %+v", cs)
	}
	// The attacker's own browser can still answer it.
	if r := attacker.post(e.url(oauthd.ConsentPath), url.Values{"request": {consent.str("AuthReqID")}, "csrf": {consent.str("CSRF")}, "action": {"approve"}}); !strings.Contains(r.location(), "code=") {
		t.Errorf("the attacker's own consent: %d %q; want a code", r.status, r.location())
	}
}

// A consent form shown before another person signed in on the browser is
// refused: it would approve for someone other than the page named.
func TestConsentFormOfAnEarlierSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	consent := b.follow(e, b.login(e, b.follow(e, b.get(e.authorizeURL())), "admin", "admin"))
	if consent.pageKind() != "consent" {
		t.Fatalf("consent page: %d %s", consent.status, consent.body)
	}
	// Signed in again (a new session) in another tab, then the first
	// tab's form is sent.
	b.follow(e, b.login(e, b.get(e.url(oauthd.LoginPath)), "admin", "admin"))
	if r := b.decide(e, consent, "approve"); r.status != http.StatusForbidden || r.str("Code") != oauthd.PageOutdated {
		t.Errorf("the form of an earlier session: %d %q %s; want 403 %s", r.status, r.location(), r.body, oauthd.PageOutdated)
	}
	again := b.get(e.url(oauthd.ConsentPath + "?request=" + url.QueryEscape(consent.str("AuthReqID"))))
	if r := b.decide(e, again, "approve"); !strings.Contains(r.location(), "code=") {
		t.Errorf("the form shown to the new session: %d %q; want a code", r.status, r.location())
	}
}

// A page of another site cannot skip the relay page by adding its marker:
// such a POST is relayed like any other, without a cookie.
func TestRelayMarkerFromAnotherSite(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.follow(e, b.login(e, b.follow(e, b.get(e.authorizeURL())), "admin", "admin"))
	u, _ := url.Parse(e.authorizeURL())
	f := u.Query()
	f.Set("oauthd_relay", "1")
	req, _ := http.NewRequest("POST", e.url(oauthd.AuthorizePath), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.Header.Set("Origin", "https://evil.example")
	r := do(t, noRedirects, req)
	if r.pageKind() != "form_post" || r.page["Relay"] != true || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("cross-site POST with the relay marker: %d %s, Set-Cookie %q; want the relay page and no cookie", r.status, r.pageKind(), r.header.Values("Set-Cookie"))
	}
	if r = b.relay(r); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Errorf("relayed in the signed-in browser: %d %q; want the consent page", r.status, r.location())
	}
}
