package oauthd_test

// The machinery of the negative battery (negative_test.go): how a case's
// request is made and what is checked of every answer.

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/htmlform"
	"github.com/oauthd/oauthd/ui"
)

// XSS payloads sent in every parameter a page or a redirect may echo.
const (
	xssScript = `<script>alert(1)</script>`
	xssAttr   = `"><img src=x onerror=alert(1)>`
)

// Redirect URIs of the extra clients the battery registers.
const (
	loopbackCB     = "http://127.0.0.1:5555/cb"
	ccRedirectURI  = "https://cc.example/cb"
	pkceRedirect   = "https://pkce.example/cb"
	pwClientSecret = "pw-secret"
	rpRedirectURI  = "https://rp.example/cb"
	rpLogoutURI    = "https://rp.example/logged-out"
)

var rpAuth = basic("rp", "rp-secret")

// registeredURIs are every redirect URI registered in a battery env: a
// Location off the server must start with one of these.
var registeredURIs = []string{redirectURI, "http://127.0.0.1/cb", "com.example.app:/cb", "https://other.example/cb", ccRedirectURI, pkceRedirect, rpRedirectURI, rpLogoutURI}

// negEnv is the testEnv of one battery case.
type negEnv struct {
	*testEnv
	ui bool // real ui pages (HTML) instead of the JSON fake pages
	// stash and stashCookie carry what a case's setup made to its check.
	stash       *response
	stashCookie string
}

// Battery environments.
const (
	envFake     = ""         // fake pages, default Config
	envUI       = "ui"       // the real ui pages, for escaping checks
	envPassword = "password" // the password grant enabled, with a client allowed to use it
)

func newNegEnv(t *testing.T, kind string) *negEnv {
	t.Helper()
	var opts []func(*oauthd.Config)
	switch kind {
	case envUI:
		pages, err := ui.New(ui.Options{})
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, func(c *oauthd.Config) { c.Pages = pages })
	case envPassword:
		opts = append(opts, func(c *oauthd.Config) { c.EnablePasswordGrant = true })
	}
	e := newEnv(t, opts...)
	ctx := context.Background()
	for _, c := range []*oauthd.Client{
		{ID: "cc_redirect", SecretHash: hash(t, "cc-secret"), RedirectURIs: []string{ccRedirectURI},
			GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}},
		{ID: "pkce_required", SecretHash: hash(t, "pkce-secret"), RequirePKCE: true, RedirectURIs: []string{pkceRedirect},
			GrantTypes: []string{oauthd.GrantAuthorizationCode}, Scopes: []string{"email"}},
		{ID: "pw_client", SecretHash: hash(t, pwClientSecret), GrantTypes: []string{oauthd.GrantPassword}, Scopes: []string{"email"}},
		{ID: "rp", SecretHash: hash(t, "rp-secret"), RedirectURIs: []string{rpRedirectURI}, PostLogoutRedirectURIs: []string{rpLogoutURI},
			GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"openid", "email"}},
	} {
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return &negEnv{testEnv: e, ui: kind == envUI}
}

// negReq is one HTTP request of a case.
type negReq struct {
	method string
	// target is a path with an optional raw query ("/oauth/token?x=1") or
	// an absolute URL on the test server.
	target string
	// body is a raw form body; ctype defaults to form-urlencoded for POST.
	body, ctype string
	auth        string
	host        string
	header      map[string]string
	// also are header values added after the others (a second
	// Authorization header, say).
	also map[string]string
	// b sends the request from a browser (with its cookies); nil sends it
	// without cookies.
	b *browser
}

// noRedirects is an HTTP client without cookies that does not follow redirects.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (n *negEnv) do(q *negReq) *response {
	n.t.Helper()
	u := q.target
	if strings.HasPrefix(u, "/") {
		u = n.srv.URL + u
	}
	var body *strings.Reader
	if q.body != "" {
		body = strings.NewReader(q.body)
	} else {
		body = strings.NewReader("")
	}
	method := q.method
	if method == "" {
		method = "GET"
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		n.t.Fatal(err)
	}
	if method == "POST" {
		ct := q.ctype
		if ct == "" {
			ct = "application/x-www-form-urlencoded"
		}
		if ct != "-" {
			req.Header.Set("Content-Type", ct)
		}
	}
	if q.auth != "" {
		req.Header.Set("Authorization", q.auth)
	}
	if q.host != "" {
		req.Host = q.host
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	for k, v := range q.also {
		req.Header.Add(k, v)
	}
	c := noRedirects
	if q.b != nil {
		c = q.b.c
		if q.host != "" {
			// The jar would pick cookies by the spoofed Host: send the
			// browser's cookies for the real server by hand.
			for _, ck := range q.b.c.Jar.Cookies(req.URL) {
				req.AddCookie(ck)
			}
			c = noRedirects
		}
	}
	return do(n.t, c, req)
}

// get, post and api build requests.
func get(target string) *negReq { return &negReq{method: "GET", target: target} }

func post(path string, kv ...string) *negReq {
	return &negReq{method: "POST", target: path, body: form(kv...).Encode()}
}

// api posts a form to a JSON endpoint with client credentials.
func api(path, auth string, kv ...string) *negReq {
	return &negReq{method: "POST", target: path, body: form(kv...).Encode(), auth: auth}
}

func (q *negReq) from(b *browser) *negReq { q.b = b; return q }

// authz is the seed's authorization request with changed parameters (an
// empty value removes one), as a target.
func (n *negEnv) authz(kv ...string) string {
	return strings.TrimPrefix(n.authorizeURL(kv...), n.srv.URL)
}

// publicAuthz is a PKCE request of the public native client on a loopback
// port.
func (n *negEnv) publicAuthz(kv ...string) string {
	q := url.Values{"client_id": {"public_app"}, "redirect_uri": {loopbackCB}, "response_type": {"code"}, "state": {"s"},
		"code_challenge": {oauthd.S256Challenge(verifier)}, "code_challenge_method": {"S256"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return oauthd.AuthorizePath + "?" + q.Encode()
}

// raw appends raw query text to a target (for repeated parameters).
func raw(target, extra string) string { return target + "&" + extra }

// verifier is the PKCE code_verifier of the battery's requests.
var verifier = strings.Repeat("V", 50)

// loginPage starts an authorization request in b and returns the login
// page (fake pages only).
func (n *negEnv) loginPage(b *browser, target string) *response {
	n.t.Helper()
	r := b.get(n.srv.URL + target)
	if r.status != http.StatusSeeOther {
		n.t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	return b.follow(n.testEnv, r)
}

// consentPage signs b in for an authorization request and returns the
// consent page (fake pages only).
func (n *negEnv) consentPage(b *browser, target string) *response {
	n.t.Helper()
	r := n.loginPage(b, target)
	return b.follow(n.testEnv, b.login(n.testEnv, r, "admin", "admin"))
}

// publicCode is a code of the public client for the loopback redirect URI.
func (n *negEnv) publicCode() string {
	n.t.Helper()
	u := n.authorize(n.browser(), n.srv.URL+n.publicAuthz(), "approve")
	if u.Query().Get("code") == "" {
		n.t.Fatalf("no code: %s", u)
	}
	return u.Query().Get("code")
}

// pkceCode is a code of the seed client made with a challenge of v.
func (n *negEnv) pkceCode(v string) string {
	n.t.Helper()
	return n.code("code_challenge", oauthd.S256Challenge(v), "code_challenge_method", "S256")
}

// rpTokens runs the OpenID Connect code flow of the relying party "rp"
// and returns the token response (access, refresh and ID tokens).
func (n *negEnv) rpTokens() *response {
	n.t.Helper()
	u := n.authorize(n.browser(), n.srv.URL+n.rpAuthz(), "approve")
	r := n.token(rpAuth, form("grant_type", "authorization_code", "code", u.Query().Get("code"), "redirect_uri", rpRedirectURI))
	if r.status != http.StatusOK || r.str("id_token") == "" {
		n.t.Fatalf("rp tokens: %d %s", r.status, r.body)
	}
	return r
}

// rpAuthz is an OpenID Connect request of the relying party "rp".
func (n *negEnv) rpAuthz(kv ...string) string {
	q := url.Values{"client_id": {"rp"}, "redirect_uri": {rpRedirectURI}, "response_type": {"code"}, "scope": {"openid email"}, "state": {"somestate"}, "nonce": {"n"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return oauthd.AuthorizePath + "?" + q.Encode()
}

// uiSignIn signs b in through the real login page.
func (n *negEnv) uiSignIn(b *browser) {
	n.t.Helper()
	r := b.get(n.authorizeURL())
	r = b.get(n.srv.URL + r.location())
	f := uiForm(n.t, r)
	r = b.post(n.srv.URL+f.Action, f.Values(nil, map[string]string{"username": "admin", "password": "admin"}))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		n.t.Fatalf("sign-in: %s", describe(r))
	}
}

// bearer is a userinfo request with the access token in the header.
func bearer(tok string) *negReq {
	return &negReq{method: "GET", target: oauthd.UserinfoPath, header: map[string]string{"Authorization": "Bearer " + tok}}
}

// active reports whether the seed client's introspection sees tok active.
func (n *negEnv) active(tok string) bool {
	n.t.Helper()
	return n.introspect(seedAuth, "token", tok).page["active"] == true
}

// uiForm returns the first form of an HTML page.
func uiForm(t *testing.T, r *response) *htmlform.Form {
	t.Helper()
	forms, err := htmlform.Parse(strings.NewReader(r.body))
	if err != nil || len(forms) == 0 {
		t.Fatalf("no form in %d %s", r.status, r.body)
	}
	return forms[0]
}

var uiErrorCode = regexp.MustCompile(`Error code: ([a-z_]+)`)

// errorCode is the error a response carries: the error parameter of a
// redirect or a form_post page, the code of an error page, or the error
// member of a JSON body.
func errorCode(t *testing.T, r *response) string {
	if loc := r.location(); loc != "" {
		u, err := url.Parse(loc)
		if err != nil {
			return "unparsable Location " + loc
		}
		q := u.Query()
		if u.Fragment != "" {
			q, _ = url.ParseQuery(u.Fragment)
		}
		return q.Get("error")
	}
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		if forms, err := htmlform.Parse(strings.NewReader(r.body)); err == nil && len(forms) > 0 {
			if in := forms[0].Input("error"); in != nil {
				return in.Value
			}
		}
		if m := uiErrorCode.FindStringSubmatch(r.body); m != nil {
			return m[1]
		}
		return ""
	}
	switch r.pageKind() {
	case "error":
		return r.str("Code")
	case "form_post":
		ps, _ := r.page["Params"].([]any)
		for _, p := range ps {
			if m, _ := p.(map[string]any); m["Name"] == "error" {
				s, _ := m["Value"].(string)
				return s
			}
		}
		return ""
	}
	return r.str("error")
}

// formPostAction is the Action of a form_post page.
func formPostAction(r *response) string {
	if r.pageKind() == "form_post" {
		return r.str("Action")
	}
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		if forms, err := htmlform.Parse(strings.NewReader(r.body)); err == nil && len(forms) > 0 && forms[0].Input("error") != nil {
			return forms[0].Action
		}
	}
	return ""
}

// checkInvariants checks what holds for every answer of every case: no
// Location or form_post target but a registered redirect URI (with iss),
// no-store on every protocol answer, WWW-Authenticate on every 401, no
// 5xx, and no payload echoed unescaped.
func (n *negEnv) checkInvariants(t *testing.T, q *negReq, r *response) {
	t.Helper()
	if r.status >= 500 {
		t.Errorf("status %d: %s", r.status, r.body)
	}
	for _, target := range []string{r.location(), formPostAction(r)} {
		if target == "" || strings.HasPrefix(target, "/") && !strings.HasPrefix(target, "//") {
			continue
		}
		if r.page["Relay"] == true && (target == n.issuer+oauthd.AuthorizePath || target == n.issuer+oauthd.LogoutPath) {
			continue // the server's own page posting a request back to it
		}
		ok := false
		for _, reg := range registeredURIs {
			if strings.HasPrefix(target, reg+"?") || strings.HasPrefix(target, reg+"#") || target == reg ||
				strings.HasPrefix(reg, "http://127.0.0.1/") && strings.HasPrefix(target, loopbackCB) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("sent to an unregistered URI: %q", target)
		}
		if target == r.location() && !strings.HasPrefix(target, rpLogoutURI) {
			u, _ := url.Parse(target)
			q := u.Query()
			if u.Fragment != "" {
				q, _ = url.ParseQuery(u.Fragment)
			}
			if q.Get("iss") != n.issuer {
				t.Errorf("authorization response %q: iss = %q; want %q (RFC 9207)", target, q.Get("iss"), n.issuer)
			}
		}
	}
	path := q.target
	if u, err := url.Parse(q.target); err == nil {
		path = u.Path
	}
	switch path {
	case oauthd.TokenPath, oauthd.TokenizePath, oauthd.IntrospectPath, oauthd.RevokePath:
		if r.header.Get("Cache-Control") != "no-store" || r.header.Get("Pragma") != "no-cache" {
			t.Errorf("Cache-Control %q, Pragma %q; want no-store, no-cache (RFC 6749 §5.1)", r.header.Get("Cache-Control"), r.header.Get("Pragma"))
		}
		if r.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Errorf("error answer Content-Type %q; want JSON (RFC 6749 §5.2)", r.header.Get("Content-Type"))
		}
	}
	if path == oauthd.UserinfoPath && r.status != http.StatusMethodNotAllowed {
		if r.status >= 400 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), `Bearer realm="oauthd"`) {
			t.Errorf("%d with WWW-Authenticate %q; want a Bearer challenge (RFC 6750 §3)", r.status, r.header.Get("WWW-Authenticate"))
		}
		if c := errorCode(t, r); c != "" && !strings.Contains(r.header.Get("WWW-Authenticate"), `error="`+c+`"`) {
			t.Errorf("WWW-Authenticate %q does not carry error=%q (RFC 6750 §3)", r.header.Get("WWW-Authenticate"), c)
		}
		if r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("userinfo Cache-Control %q; want no-store", r.header.Get("Cache-Control"))
		}
	} else if r.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("401 with WWW-Authenticate %q; want Basic (RFC 6749 §5.2)", r.header.Get("WWW-Authenticate"))
	}
	for where, d := range errorDescriptions(r) {
		if bad := descriptionBadChar(d); bad != "" {
			t.Errorf("%s error_description %q has %s; RFC 6749 §5.2 allows only %%x20-21 / %%x23-5B / %%x5D-7E", where, d, bad)
		}
	}
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		if what := injected(r.body); what != "" {
			t.Errorf("the page has an injected %s", what)
		}
	}
	for _, p := range []string{xssScript, xssAttr, "<img src=x", "<script>alert"} {
		if strings.Contains(r.body, p) {
			t.Errorf("the body echoes %q unescaped", p)
		}
		if strings.Contains(r.location(), p) || strings.ContainsAny(r.location(), "<>\" ") {
			t.Errorf("the Location %q has unescaped characters", r.location())
		}
	}
	if n.ui && !strings.HasPrefix(path, "/oauth/token") && r.status != http.StatusSeeOther && r.body != "" && !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Errorf("page Content-Type %q; want text/html", r.header.Get("Content-Type"))
	}
}

// errorDescriptions are the error_description values of an answer, by
// where they were: the JSON body, the redirect's query or fragment, the
// form_post page's fields and the WWW-Authenticate challenge.
func errorDescriptions(r *response) map[string]string {
	out := map[string]string{}
	if d, ok := r.page["error_description"].(string); ok {
		out["body"] = d
	}
	if u, err := url.Parse(r.location()); err == nil && r.location() != "" {
		if d := u.Query().Get("error_description"); d != "" {
			out["Location query"] = d
		}
		if f, err := url.ParseQuery(u.Fragment); err == nil && f.Get("error_description") != "" {
			out["Location fragment"] = f.Get("error_description")
		}
	}
	if m := regexp.MustCompile(`name="error_description" value="([^"]*)"`).FindStringSubmatch(r.body); m != nil {
		out["form_post"] = html.UnescapeString(m[1])
	}
	if m := regexp.MustCompile(`error_description="((?:[^"\\]|\\.)*)"`).FindStringSubmatch(r.header.Get("WWW-Authenticate")); m != nil {
		out["WWW-Authenticate"] = m[1]
	}
	return out
}

// descriptionBadChar names the first character of d outside RFC 6749's
// error_description set, or is "".
func descriptionBadChar(d string) string {
	for _, c := range []byte(d) {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return fmt.Sprintf("byte %#02x", c)
		}
	}
	return ""
}

// injected parses an HTML page as a browser would and reports markup that
// can only come from an XSS payload: an event handler attribute, an img
// element, or a script with inline code.
func injected(page string) string {
	z := html.NewTokenizer(strings.NewReader(page))
	inScript := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			return ""
		case html.StartTagToken, html.SelfClosingTagToken:
			tok := z.Token()
			if tok.Data == "img" {
				return "img element"
			}
			for _, a := range tok.Attr {
				if strings.HasPrefix(strings.ToLower(a.Key), "on") {
					return "event handler attribute " + a.Key
				}
			}
			inScript = tok.Data == "script"
		case html.TextToken:
			if inScript && strings.TrimSpace(string(z.Text())) != "" {
				return "inline script"
			}
		case html.EndTagToken:
			inScript = false
		}
	}
}

// wantLocation checks a Location against a case's expectation: "" means no
// Location at all; otherwise the Location must start with it.
func wantLocation(t *testing.T, r *response, want string) {
	t.Helper()
	got := r.location()
	switch {
	case want == "" && got != "":
		t.Errorf("Location %q; want none (never redirect on this error)", got)
	case want != "" && !strings.HasPrefix(got, want):
		t.Errorf("Location %q; want one starting with %q", got, want)
	}
}

// cookieValue is the value the response sets for a cookie, or "".
func cookieValue(r *response, name string) string {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func describe(r *response) string {
	body := r.body
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	return fmt.Sprintf("%d Location=%q %s", r.status, r.location(), body)
}

// after advances the env's clock; a setup step.
func (n *negEnv) after(d time.Duration) { n.clock.Add(d) }

// The XSS check is not vacuous: it finds the payloads when a page echoes
// them raw, and not when html/template escaped them.
func TestInjectedDetectsPayloads(t *testing.T) {
	for _, page := range []string{
		`<p>` + xssScript + `</p>`,
		`<input value="` + xssAttr + `">`,
		`<html lang="` + xssAttr + `">`,
	} {
		if injected(page) == "" {
			t.Errorf("injected(%q) found nothing", page)
		}
	}
	escaped := `<input value="&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"><p>&lt;script&gt;alert(1)&lt;/script&gt;</p><script src="/static/formpost.js"></script>`
	if what := injected(escaped); what != "" {
		t.Errorf("injected(escaped page) = %s", what)
	}
}
