package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/htmlform"
)

// httpBrowser is a cookie-keeping HTTP client that does not follow
// redirects, for the tests that need no real browser.
type httpBrowser struct {
	t *testing.T
	c *http.Client
}

func newHTTPBrowser(t *testing.T) *httpBrowser {
	jar, _ := cookiejar.New(nil)
	return &httpBrowser{t: t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type page struct {
	url  string
	res  *http.Response
	body string
}

func (b *httpBrowser) do(method, u string, form url.Values) *page {
	b.t.Helper()
	var res *http.Response
	var err error
	if method == http.MethodPost {
		res, err = b.c.PostForm(u, form)
	} else {
		res, err = b.c.Get(u)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return &page{url: u, res: res, body: string(body)}
}

// follow follows redirects that stay on the server.
func (b *httpBrowser) follow(p *page, server string) *page {
	b.t.Helper()
	for range 10 {
		loc := p.res.Header.Get("Location")
		if p.res.StatusCode/100 != 3 || loc == "" {
			return p
		}
		base, _ := url.Parse(p.url)
		next, _ := url.Parse(loc)
		u := base.ResolveReference(next).String()
		if !strings.HasPrefix(u, server+"/") {
			return p
		}
		p = b.do(http.MethodGet, u, nil)
	}
	b.t.Fatal("too many redirects")
	return nil
}

// submit fills the page's first form and posts it with the button whose
// text contains button.
func (b *httpBrowser) submit(p *page, button string, set map[string]string) *page {
	b.t.Helper()
	forms, err := htmlform.Parse(strings.NewReader(p.body))
	if err != nil || len(forms) == 0 {
		b.t.Fatalf("%s: no form", p.url)
	}
	f := forms[0]
	btn := f.Button(button)
	if btn == nil {
		b.t.Fatalf("%s: no %q button", p.url, button)
	}
	base, _ := url.Parse(p.url)
	action, _ := url.Parse(f.Action)
	return b.do(http.MethodPost, base.ResolveReference(action).String(), f.Values(btn, set))
}

var (
	inlineScript  = regexp.MustCompile(`(?i)<script(?:\s[^>]*)?>\s*[^<\s]`)
	inlineHandler = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
	styleAttr     = regexp.MustCompile(`(?i)\sstyle\s*=`)
	resourceURL   = regexp.MustCompile(`(?i)<(?:script|link|img)\b[^>]*\s(?:src|href)="([^"]*)"`)
)

// checkPage checks the security headers of a page and that it works under
// the Content-Security-Policy: no inline script or style, nothing loaded
// from elsewhere.
func checkPage(t *testing.T, name string, p *page, wantStatus int) {
	t.Helper()
	if p.res.StatusCode != wantStatus {
		t.Errorf("%s: status %d; want %d", name, p.res.StatusCode, wantStatus)
	}
	h := p.res.Header
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q", name, ct)
	}
	checkHeaders(t, name, h)
	if inlineScript.MatchString(p.body) || inlineHandler.MatchString(p.body) || styleAttr.MatchString(p.body) {
		t.Errorf("%s: inline script or style in\n%s", name, p.body)
	}
	for _, m := range resourceURL.FindAllStringSubmatch(p.body, -1) {
		if !strings.HasPrefix(m[1], oauthd.StaticPath) {
			t.Errorf("%s: loads %q, not from %s", name, m[1], oauthd.StaticPath)
		}
	}
	if !regexp.MustCompile(`<html lang="[a-z]{2}">`).MatchString(p.body) {
		t.Errorf("%s: no lang attribute", name)
	}
}

// checkHeaders checks the headers every response of oauthd carries.
func checkHeaders(t *testing.T, name string, h http.Header) {
	t.Helper()
	for k, want := range map[string]string{
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"Cache-Control":          "no-store",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q; want %q", name, k, got, want)
		}
	}
	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "frame-ancestors 'none'", "script-src 'self'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("%s: Content-Security-Policy %q lacks %q", name, csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("%s: Content-Security-Policy %q allows unsafe sources", name, csp)
	}
	if h.Get("X-Request-Id") == "" {
		t.Errorf("%s: no X-Request-Id", name)
	}
}

// Every page carries the security headers (item 5 of the pages issue):
// login, login error, consent, the redirect with the code, form_post, error
// pages, home and both logout pages.
func TestPageHeaders(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	b := newHTTPBrowser(t)

	login := b.follow(b.do(http.MethodGet, s.authorizeURL(), nil), s.URL)
	checkPage(t, "login", login, http.StatusOK)
	again := b.follow(b.submit(login, "sign in", map[string]string{"username": "admin", "password": "wrong"}), s.URL)
	checkPage(t, "login error", again, http.StatusOK)
	consent := b.follow(b.submit(again, "sign in", map[string]string{"username": "admin", "password": "admin"}), s.URL)
	checkPage(t, "consent", consent, http.StatusOK)
	if !strings.Contains(consent.body, `name="remember"`) || strings.Contains(consent.body, "checked") {
		t.Error("consent: the remember box is missing or ticked")
	}
	redirect := b.submit(consent, "approve", nil)
	if loc := redirect.res.Header.Get("Location"); redirect.res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, app.DemoRedirectURI+"?") {
		t.Fatalf("approve: %d %q", redirect.res.StatusCode, loc)
	}
	checkHeaders(t, "redirect with the code", redirect.res.Header)

	home := b.do(http.MethodGet, s.URL+"/", nil)
	checkPage(t, "home", home, http.StatusOK)
	logout := b.do(http.MethodGet, s.URL+oauthd.LogoutPath, nil)
	checkPage(t, "logout", logout, http.StatusOK)
	out := b.submit(logout, "sign out", nil)
	checkHeaders(t, "sign out's redirect", out.res.Header)
	checkPage(t, "signed out", b.follow(out, s.URL), http.StatusOK)

	checkPage(t, "error: unknown client", b.do(http.MethodGet, s.authorizeURL("client_id", "nope"), nil), http.StatusBadRequest)
	checkPage(t, "error: unregistered redirect_uri", b.do(http.MethodGet, s.authorizeURL("redirect_uri", "https://evil.example.net/"), nil), http.StatusBadRequest)
	checkPage(t, "error: expired request", b.do(http.MethodGet, s.URL+oauthd.ConsentPath+"?request=gone", nil), http.StatusBadRequest)
	checkPage(t, "error: not found", b.do(http.MethodGet, s.URL+"/nothing-here", nil), http.StatusNotFound)

	// form_post, to a client on a loopback address that is never called.
	cb := "http://127.0.0.1:9/cb"
	id, _ := s.addClient(t, &oauthd.Client{ID: "fp", Name: "FP", RedirectURIs: []string{cb}, Scopes: []string{"email"}})
	fb := newHTTPBrowser(t)
	login = fb.follow(fb.do(http.MethodGet, s.URL+oauthd.AuthorizePath+"?"+url.Values{"client_id": {id}, "redirect_uri": {cb},
		"response_type": {"code"}, "response_mode": {"form_post"}, "scope": {"email"}, "state": {"s"}}.Encode(), nil), s.URL)
	consent = fb.follow(fb.submit(login, "sign in", map[string]string{"username": "admin", "password": "admin"}), s.URL)
	fp := fb.submit(consent, "approve", nil)
	checkPage(t, "form_post", fp, http.StatusOK)
	if !strings.Contains(fp.body, `action="`+cb+`"`) || !strings.Contains(fp.body, `name="code"`) {
		t.Errorf("form_post page does not post the code to %s:\n%s", cb, fp.body)
	}

	// Static files are cacheable but never sniffed.
	css := b.do(http.MethodGet, s.URL+"/static/oauthd.css", nil)
	if css.res.StatusCode != 200 || css.res.Header.Get("X-Content-Type-Options") != "nosniff" || !strings.HasPrefix(css.res.Header.Get("Content-Type"), "text/css") {
		t.Errorf("oauthd.css: %d %v", css.res.StatusCode, css.res.Header)
	}
}
