package e2e

import (
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

// The seed walkthrough in a browser: the authorize URL, the login form
// (admin/admin), Approve, and the redirect to the client with a code and
// the state, which the client then exchanges.
func TestBrowserSeedFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	res := tb.open(s.authorizeURL())
	if res.Status != http.StatusOK || tb.location().Path != oauthd.LoginPath {
		t.Fatalf("authorize led to %d %s; want the login page", res.Status, tb.location())
	}
	if got := tb.text("h1"); got != "Sign in" {
		t.Errorf("login h1 = %q", got)
	}
	if got := tb.text(".sub"); !strings.Contains(got, "test_client") {
		t.Errorf("login page does not name the client: %q", got)
	}
	res = tb.login("admin", "admin")
	if tb.location().Path != oauthd.ConsentPath {
		t.Fatalf("after login: %d %s; want the consent page", res.Status, tb.location())
	}
	if got := tb.text("h1"); got != "test_client would like permissions" {
		t.Errorf("consent h1 = %q", got)
	}
	if got := tb.text(".scopes li"); !strings.Contains(got, "See your email address") || !strings.Contains(got, "email") {
		t.Errorf("consent scope = %q; want the description of email", got)
	}
	if got := tb.text(".who"); !strings.Contains(got, "admin") || !strings.Contains(got, "Not you?") {
		t.Errorf("consent does not show the signed-in user and a 'Not you?' link: %q", got)
	}
	if eval[bool](tb, `document.getElementById("remember").checked`) {
		t.Error("the remember box is ticked by default")
	}
	tb.decide("approve")
	u := tb.nextRedirect()
	q := u.Query()
	if got := u.Scheme + "://" + u.Host + u.Path; got != app.DemoRedirectURI {
		t.Errorf("redirected to %s; want %s", got, app.DemoRedirectURI)
	}
	if q.Get("code") == "" || q.Get("state") != "somestate" || q.Get("scope") != "email" || q.Get("iss") != s.URL {
		t.Fatalf("redirect %s; want code, state=somestate, scope=email, iss", u)
	}
	if st, tok := s.exchange(t, app.DemoClientID, app.DemoClientSecret, q.Get("code"), app.DemoRedirectURI); st != 200 || tok == "" {
		t.Errorf("exchanging the code: %d", st)
	}
	tb.noConsoleErrors()
}

// Deny sends access_denied with the state to the client.
func TestBrowserDeny(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.login("admin", "admin")
	tb.decide("deny")
	q := tb.nextRedirect().Query()
	if q.Get("error") != "access_denied" || q.Get("state") != "somestate" || q.Has("code") {
		t.Errorf("deny redirect %v; want error=access_denied&state=somestate and no code", q)
	}
	tb.noConsoleErrors()
}

// A wrong password and an unknown user get the same message, the login
// form again, and nothing is sent to the client.
func TestBrowserWrongPassword(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	var messages []string
	for _, user := range []string{"admin", "nobody"} {
		res := tb.login(user, "wrong")
		if res.Status != http.StatusOK || tb.location().Path != oauthd.LoginPath {
			t.Fatalf("%s/wrong: %d %s; want the login page again", user, res.Status, tb.location())
		}
		messages = append(messages, tb.text(`[role=alert]`))
		if got, _ := chromedp.Run(tb.ctx, chromedp.Value(chromedp.ID("username"))); got != user {
			t.Errorf("username field = %q; want %q kept", got, user)
		}
		if got, _ := chromedp.Run(tb.ctx, chromedp.Value(chromedp.ID("password"))); got != "" {
			t.Errorf("password field = %q; want it empty", got)
		}
		if id := eval[string](tb, `document.activeElement.id`); id != "password" {
			t.Errorf("focus on %q after a failed attempt; want the password field", id)
		}
	}
	if messages[0] != "Incorrect username or password." || messages[1] != messages[0] {
		t.Errorf("messages %q; want the same generic message for both", messages)
	}
	if c := tb.capturedURLs(); len(c) != 0 {
		t.Errorf("the client got %v", c)
	}
	// The right password still works afterwards.
	tb.login("admin", "admin")
	if tb.location().Path != oauthd.ConsentPath {
		t.Errorf("right password after wrong ones led to %s", tb.location())
	}
	tb.noConsoleErrors()
}

// An unregistered redirect_uri gets an error page in words a person
// understands, with a request ID the operator finds in the log, and the
// browser stays on oauthd.
func TestBrowserUnregisteredRedirectURI(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	evil := "https://evil.example.net/cb"
	tb := newTab(t, app.DemoRedirectURI, "https://evil.example.net/")
	res := tb.open(s.authorizeURL("redirect_uri", evil))
	if res.Status != http.StatusBadRequest {
		t.Errorf("status %d; want 400", res.Status)
	}
	if loc := tb.location(); loc.Host != strings.TrimPrefix(s.URL, "http://") {
		t.Fatalf("the browser went to %s", loc)
	}
	if got := tb.text("[role=alert]"); got != "The address this application asked to return to is not registered." {
		t.Errorf("error message %q", got)
	}
	id, _ := res.Headers["X-Request-Id"].(string)
	if id == "" {
		t.Fatal("no X-Request-Id header")
	}
	if got := tb.text(".request-id"); !strings.Contains(got, id) {
		t.Errorf("request id on the page %q; want %s", got, id)
	}
	if !s.logged("request_id=" + id) {
		t.Errorf("request id %s is not in the server log", id)
	}
	if n := eval[int](tb, `document.scripts.length`); n != 0 {
		t.Errorf("the error page has %d scripts", n)
	}
	// Nothing was sent anywhere, not even to the registered URI.
	if c := tb.capturedURLs(); len(c) != 0 {
		t.Errorf("requests left oauthd: %v", c)
	}

	// Raw input is never echoed: an unknown client_id full of markup.
	res = tb.open(s.authorizeURL("client_id", `<img src=x onerror=alert(1)>`))
	if res.Status != http.StatusBadRequest || tb.text("[role=alert]") != "This application is not known." {
		t.Errorf("unknown client: %d %q", res.Status, tb.text("[role=alert]"))
	}
	if tb.has("img") || strings.Contains(eval[string](tb, `document.body.innerHTML`), "onerror") {
		t.Error("the error page shows the client_id as markup")
	}
	tb.noConsoleErrors()
}

// prompt=login asks for the password again though the person is signed in;
// without it the second request goes straight to consent.
func TestBrowserPromptLogin(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.login("admin", "admin")
	tb.decide("approve")
	tb.nextRedirect()

	tb.open(s.authorizeURL("state", "again"))
	if tb.location().Path != oauthd.ConsentPath {
		t.Fatalf("signed in, no prompt: %s; want the consent page", tb.location())
	}
	tb.open(s.authorizeURL("state", "relogin", "prompt", "login"))
	if tb.location().Path != oauthd.LoginPath || !tb.has("#password") {
		t.Fatalf("prompt=login: %s; want the password asked again", tb.location())
	}
	tb.login("admin", "admin")
	tb.decide("approve")
	if q := tb.nextRedirect().Query(); q.Get("state") != "relogin" || q.Get("code") == "" {
		t.Errorf("after prompt=login: %v", q)
	}
	tb.noConsoleErrors()
}

// A ticked "Remember my approval" makes the next request of the same
// scopes go straight back to the client.
func TestBrowserConsentRemembered(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.login("admin", "admin")
	tb.do(chromedp.Click(chromedp.ID("remember")))
	if !eval[bool](tb, `document.getElementById("remember").checked`) {
		t.Fatal("clicking the remember box did not tick it")
	}
	tb.decide("approve")
	tb.nextRedirect()

	tb.open(s.authorizeURL("state", "second"))
	u := tb.nextRedirect()
	if q := u.Query(); q.Get("state") != "second" || q.Get("code") == "" {
		t.Errorf("second visit: %s; want a code at once", u)
	}
	if tb.has("#remember") || tb.has("#password") {
		t.Error("the second visit showed a form")
	}
	tb.noConsoleErrors()
}

// response_mode=form_post delivers the code by a POST from the browser to
// the client (OAuth 2.0 Form Post Response Mode), with the page's script
// under the Content-Security-Policy.
func TestBrowserFormPost(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	fr := newFormRecorder(t)
	redirect := fr.URL + "/cb"
	id, sec := s.addClient(t, &oauthd.Client{ID: "formpost-app", Name: "Form Post App", RedirectURIs: []string{redirect}, Scopes: []string{"email", "profile"}})
	tb := newTab(t)
	tb.open(s.URL + oauthd.AuthorizePath + "?" + url.Values{"client_id": {id}, "redirect_uri": {redirect}, "response_type": {"code"},
		"response_mode": {"form_post"}, "scope": {"email profile"}, "state": {"fp-state"}}.Encode())
	tb.login("admin", "admin")
	if got := tb.text("h1"); got != "Form Post App would like permissions" {
		t.Errorf("consent h1 %q", got)
	}
	if n := eval[int](tb, `document.querySelectorAll(".scopes li").length`); n != 2 {
		t.Errorf("%d scopes listed; want 2", n)
	}
	tb.decide("approve")
	var form url.Values
	select {
	case form = <-fr.forms:
	case <-tb.ctx.Done():
		t.Fatalf("the client got no POST; the page is %s", tb.location())
	}
	if form.Get("code") == "" || form.Get("state") != "fp-state" || form.Get("iss") != s.URL {
		t.Fatalf("posted form %v", form)
	}
	if st, tok := s.exchange(t, id, sec, form.Get("code"), redirect); st != 200 || tok == "" {
		t.Errorf("exchanging the posted code: %d", st)
	}
	tb.do(chromedp.WaitVisible(chromedp.ID("received")))
	tb.noConsoleErrors()
}

// The login and consent pages work with the keyboard alone: the username
// field has the focus, Tab moves on, Enter submits; on the consent page Tab
// reaches the link, the box and both buttons, each with a visible focus
// outline, and Space and Enter use them.
func TestBrowserKeyboard(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.do(chromedp.WaitVisible(chromedp.ID("username")))
	if id := eval[string](tb, `document.activeElement.id`); id != "username" {
		// No autofocus: Tab from the top of the page must reach it first.
		tb.do(chromedp.KeyEvent(kb.Tab))
		if id := eval[string](tb, `document.activeElement.id`); id != "username" {
			t.Fatalf("focus on %q; want the username field first", id)
		}
	}
	tb.do(chromedp.KeyEvent("admin"), chromedp.KeyEvent(kb.Tab))
	if id := eval[string](tb, `document.activeElement.id`); id != "password" {
		t.Fatalf("Tab from username went to %q; want password", id)
	}
	tb.do(chromedp.KeyEvent("admin"))
	tb.submit(chromedp.KeyEvent(kb.Enter))
	if tb.location().Path != oauthd.ConsentPath {
		t.Fatalf("Enter on the login form led to %s", tb.location())
	}

	// Walk the consent page with Tab and note what gets the focus.
	const focused = `(() => { const e = document.activeElement;
		return e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.value && e.tagName === "BUTTON" ? "=" + e.value : "") +
			(e.tagName === "A" ? ":" + e.textContent.trim() : ""); })()`
	const outline = `(() => { const s = getComputedStyle(document.activeElement);
		return s.outlineStyle !== "none" && parseFloat(s.outlineWidth) >= 2; })()`
	var order []string
	for range 8 {
		tb.do(chromedp.KeyEvent(kb.Tab))
		f := eval[string](tb, focused)
		if f == "body" || slices.Contains(order, f) {
			break
		}
		order = append(order, f)
		if !eval[bool](tb, outline) {
			t.Errorf("%s has no visible focus outline", f)
		}
	}
	want := []string{"a:Not you?", "input#remember", "button=approve", "button=deny"}
	if !slices.Equal(order, want) {
		t.Errorf("Tab order %q; want %q", order, want)
	}
	// Back to the box (Shift+Tab twice from Deny), Space ticks it, Tab,
	// Enter approves.
	tb.do(chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	for eval[string](tb, focused) != "input#remember" {
		tb.do(chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	}
	tb.do(chromedp.KeyEvent(" "))
	if !eval[bool](tb, `document.getElementById("remember").checked`) {
		t.Error("Space did not tick the remember box")
	}
	// Enter on the box does not send the form (the browser would send it
	// with its first button, Approve).
	tb.do(chromedp.KeyEvent(kb.Enter))
	time.Sleep(300 * time.Millisecond)
	if tb.location().Path != oauthd.ConsentPath || !tb.has("#remember") {
		t.Fatalf("Enter on the remember box left the consent page: %s", tb.location())
	}
	tb.do(chromedp.KeyEvent(kb.Tab))
	tb.submit(chromedp.KeyEvent(kb.Enter))
	if q := tb.nextRedirect().Query(); q.Get("code") == "" {
		t.Errorf("keyboard approve: %v", q)
	}
	tb.noConsoleErrors()
}

// ui_locales=fr gives French pages, lang attribute included; the error
// page, which has no request to read ui_locales from, follows the
// browser's Accept-Language.
func TestBrowserFrench(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL("ui_locales", "fr-CA en"))
	if lang := eval[string](tb, `document.documentElement.lang`); lang != "fr" {
		t.Errorf("login lang=%q; want fr", lang)
	}
	if got := tb.text("h1"); got != "Connexion" {
		t.Errorf("login h1 %q", got)
	}
	if got := tb.text(`label[for=password]`); got != "Mot de passe" {
		t.Errorf("password label %q", got)
	}
	res := tb.login("admin", "wrong")
	if got := tb.text("[role=alert]"); got != "Nom d’utilisateur ou mot de passe incorrect." {
		t.Errorf("French login error %q (%d)", got, res.Status)
	}
	tb.login("admin", "admin")
	if got := tb.text("button[value=approve]"); got != "Autoriser" {
		t.Errorf("approve button %q", got)
	}
	if got := tb.text(".scopes li"); !strings.Contains(got, "Voir votre adresse e-mail") {
		t.Errorf("scope in French %q", got)
	}
	if lang := eval[string](tb, `document.documentElement.lang`); lang != "fr" {
		t.Errorf("consent lang=%q; want fr", lang)
	}
	tb.decide("approve")
	tb.nextRedirect()

	// An error page of a request that asks for French is in French (its
	// technical details marked as English)...
	tb.open(s.authorizeURL("client_id", "nope", "ui_locales", "fr"))
	if lang := eval[string](tb, `document.documentElement.lang`); lang != "fr" {
		t.Errorf("error page of a ui_locales=fr request: lang=%q; want fr", lang)
	}
	if lang := eval[string](tb, `document.querySelector(".description").lang`); lang != "en" {
		t.Errorf("the English details of a French error page: lang=%q; want en", lang)
	}
	// ...one of a request that does not, in English for this English
	// browser...
	tb.open(s.authorizeURL("client_id", "nope"))
	if lang := eval[string](tb, `document.documentElement.lang`); lang != "en" {
		t.Errorf("error page lang=%q; want en (Accept-Language)", lang)
	}
	// ...and in French when the browser prefers French.
	if _, err := chromedp.Call(tb.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": "fr-FR,fr;q=0.9"}}); err != nil {
		t.Fatal(err)
	}
	tb.open(s.authorizeURL("client_id", "nope"))
	if got := tb.text("[role=alert]"); got != "Cette application est inconnue." {
		t.Errorf("French error page %q", got)
	}
	tb.noConsoleErrors()
}

// With no pending request, signing in lands on "Hello, admin"; its Sign out
// button signs out.
func TestBrowserHomeAndLogout(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t)
	tb.open(s.URL + "/")
	if tb.location().Path != oauthd.LoginPath {
		t.Fatalf("/ signed out: %s; want the login page", tb.location())
	}
	tb.login("admin", "admin")
	if got := tb.text("h1"); got != "Hello, admin" {
		t.Errorf("home h1 %q", got)
	}
	tb.submit(chromedp.Click(chromedp.CSS("form button")))
	if got := tb.text("h1"); got != "You are signed out" {
		t.Errorf("after sign out: %q", got)
	}
	tb.open(s.URL + "/")
	if tb.location().Path != oauthd.LoginPath {
		t.Errorf("/ after sign out: %s; want the login page", tb.location())
	}

	// The logout page asks first; Stay signed in keeps the session.
	tb.login("admin", "admin")
	tb.open(s.URL + oauthd.LogoutPath)
	if got := tb.text("h1"); got != "Sign out of oauthd?" {
		t.Errorf("logout h1 %q", got)
	}
	tb.submit(chromedp.Click(chromedp.CSS("button[value=cancel]")))
	if got := tb.text("h1"); got != "Hello, admin" {
		t.Errorf("after Stay signed in: %q", got)
	}
	tb.open(s.URL + oauthd.LogoutPath)
	tb.submit(chromedp.Click(chromedp.CSS("button[value=logout]")))
	if got := tb.text("h1"); got != "You are signed out" {
		t.Errorf("after Sign out: %q", got)
	}
	tb.noConsoleErrors()
}

// Every flow works with JavaScript off: login, consent, and form_post,
// whose page then shows a Continue button.
func TestBrowserNoJavaScript(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	fr := newFormRecorder(t)
	redirect := fr.URL + "/cb"
	id, _ := s.addClient(t, &oauthd.Client{ID: "nojs-app", Name: "No JS App", RedirectURIs: []string{redirect}, Scopes: []string{"email"}})
	tb := newTab(t, app.DemoRedirectURI)
	if _, err := chromedp.Call(tb.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	tb.open(s.authorizeURL())
	tb.login("admin", "admin")
	tb.decide("approve")
	if q := tb.nextRedirect().Query(); q.Get("code") == "" {
		t.Errorf("approve without JavaScript: %v", q)
	}

	tb.open(s.URL + oauthd.AuthorizePath + "?" + url.Values{"client_id": {id}, "redirect_uri": {redirect}, "response_type": {"code"},
		"response_mode": {"form_post"}, "scope": {"email"}, "state": {"nojs"}}.Encode())
	tb.decide("approve") // still signed in: straight to consent
	select {
	case f := <-fr.forms:
		t.Fatalf("the form was posted without JavaScript and without a click: %v", f)
	default:
	}
	if got := tb.text("noscript button, form button"); got != "Continue" {
		t.Errorf("form_post without JavaScript shows %q; want a Continue button", got)
	}
	tb.submit(chromedp.Click(chromedp.CSS("form button")))
	select {
	case f := <-fr.forms:
		if f.Get("code") == "" || f.Get("state") != "nojs" {
			t.Errorf("posted %v", f)
		}
	case <-tb.ctx.Done():
		t.Fatal("Continue posted nothing")
	}
}

// The client's name is text, its link and logo appear only when they are
// http(s) URLs; theming changes the product name, the colours, a template
// and the static files without a rebuild; operator scope descriptions
// replace the built-in ones.
func TestBrowserThemeAndClientDetails(t *testing.T) {
	t.Parallel()
	theme := t.TempDir()
	login, err := os.ReadFile("../ui/templates/login.html")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(theme, "templates", "login.html"), strings.Replace(string(login), "</form>", `</form>
<p class="theme-note"><img src="/static/img/mark.svg" alt="" width="16" height="16"> Need help? Call the Example help desk.</p>`, 1))
	writeFile(t, filepath.Join(theme, "static", "img", "mark.svg"), `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 8 8"><rect width="8" height="8" fill="#7c3aed"/></svg>`)
	s := startServer(t, func(c *app.Config) {
		c.UI.ThemeDir = theme
		c.UI.ProductName = "Example ID"
		c.UI.PrimaryColor = "#7c3aed"
		c.UI.AccentColor = "#9a3412"
		c.UI.ScopeDescriptions = map[string]string{"calendar.read": "See your calendar", "email": "Read your e-mail address"}
	})
	id, _ := s.addClient(t, &oauthd.Client{ID: "fancy", Name: `<b>Fancy</b> & "Co"`, LogoURI: "https://app.example.org/logo.svg",
		ClientURI: "https://app.example.org/about", RedirectURIs: []string{"https://app.example.org/cb"}, Scopes: []string{"email", "calendar.read", "openid"}})
	bad, _ := s.addClient(t, &oauthd.Client{ID: "sneaky", Name: "Sneaky", LogoURI: "javascript:alert(1)", ClientURI: "data:text/html,<script>alert(1)</script>",
		RedirectURIs: []string{"https://app.example.org/cb"}, Scopes: []string{"email"}})
	tb := newTab(t, "https://app.example.org/")
	authorize := func(client, scope string) string {
		return s.URL + oauthd.AuthorizePath + "?" + url.Values{"client_id": {client}, "redirect_uri": {"https://app.example.org/cb"},
			"response_type": {"code"}, "scope": {scope}, "state": {"x"}}.Encode()
	}

	tb.open(authorize(id, "email calendar.read openid"))
	if got := tb.text(".product"); got != "Example ID" {
		t.Errorf("product name %q", got)
	}
	if got := eval[string](tb, `document.title`); !strings.HasSuffix(got, "Example ID") {
		t.Errorf("title %q", got)
	}
	if got := tb.text(".theme-note"); !strings.Contains(got, "Example help desk") {
		t.Errorf("the theme's login template is not used: %q", got)
	}
	if !eval[bool](tb, `document.querySelector(".theme-note img").naturalWidth > 0`) {
		t.Error("the theme's static image did not load")
	}
	if got := eval[string](tb, `getComputedStyle(document.querySelector("form button")).backgroundColor`); got != "rgb(124, 58, 237)" {
		t.Errorf("button colour %s; want the primary colour rgb(124, 58, 237)", got)
	}
	tb.login("admin", "admin")
	if got := tb.text("h1"); got != `<b>Fancy</b> & "Co" would like permissions` {
		t.Errorf("client name shown as %q", got)
	}
	if tb.has("h1 b") {
		t.Error("the client name was rendered as markup")
	}
	// Isolated (UAX #9), so that a direction override in a name cannot
	// turn the sentence around it.
	if !eval[bool](tb, `document.querySelector("h1").textContent.startsWith("\u2068<b>Fancy</b> & \"Co\"\u2069 ")`) {
		t.Errorf("the client name is not isolated in the heading: %q", eval[string](tb, `document.querySelector("h1").textContent`))
	}
	if got := eval[string](tb, `document.querySelector(".sub a").href`); got != "https://app.example.org/about" {
		t.Errorf("client link %q", got)
	}
	if !eval[bool](tb, `document.querySelector("img.logo").complete && document.querySelector("img.logo").naturalWidth > 0`) {
		t.Error("the client's logo did not load")
	}
	if got := eval[string](tb, `getComputedStyle(document.querySelector(".who a")).color`); got != "rgb(154, 52, 18)" {
		t.Errorf("link colour %s; want the accent colour rgb(154, 52, 18)", got)
	}
	scopes := eval[[]string](tb, `[...document.querySelectorAll(".scopes li")].map(li => li.textContent.trim().replace(/\s+/g, " "))`)
	want := []string{"Read your e-mail address email", "See your calendar calendar.read", "Confirm your identity (your account ID) openid"}
	if !slices.Equal(scopes, want) {
		t.Errorf("scopes %q; want %q", scopes, want)
	}

	tb.open(authorize(bad, "email"))
	if tb.location().Path != oauthd.ConsentPath {
		t.Fatalf("sneaky client: %s", tb.location())
	}
	if tb.has("img.logo") || tb.has(".sub a") {
		t.Error("a javascript: logo or data: link reached the page")
	}
	tb.noConsoleErrors()
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// "Not you?" on the consent page leads back to the login form of the same
// request; another person signs in and the consent page names them.
func TestBrowserNotYou(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	s.addUser(t, "bob", "bob-password")
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.login("admin", "admin")
	if got := tb.text(".who"); !strings.Contains(got, "Signed in as admin.") {
		t.Fatalf("consent .who = %q", got)
	}
	tb.submit(chromedp.Click(chromedp.CSS(".who a")))
	if tb.location().Path != oauthd.LoginPath || !tb.has("#password") {
		t.Fatalf("Not you? led to %s; want the login form", tb.location())
	}
	tb.login("bob", "bob-password")
	if got := tb.text(".who"); !strings.Contains(got, "Signed in as bob.") {
		t.Errorf("after signing in as bob: %q", got)
	}
	tb.decide("approve")
	if q := tb.nextRedirect().Query(); q.Get("code") == "" || q.Get("state") != "somestate" {
		t.Errorf("bob's approval: %v", q)
	}
	tb.noConsoleErrors()
}

// Approve clicked twice on a slow connection (or Approve, then Deny): the
// second click must not cancel the first decision's navigation and post
// again a decision the server has taken (which it refuses), leaving the
// person on an error page and the client without its answer. The page
// sends its form once; the client gets the code.
func TestBrowserDecisionClickedTwice(t *testing.T) {
	t.Parallel()
	for _, second := range []string{"approve", "deny"} {
		t.Run("approve_then_"+second, func(t *testing.T) {
			s := startServer(t)
			tb := newTab(t, app.DemoRedirectURI)
			tb.open(s.authorizeURL())
			tb.login("admin", "admin")
			tb.do(chromedp.WaitVisible(chromedp.CSS(`button[value=approve]`)))
			if _, err := chromedp.Call(tb.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
				MatchedNetworkConditions: []*network.Conditions{{URLPattern: "", Latency: 400, DownloadThroughput: -1, UploadThroughput: -1}},
			}); err != nil {
				t.Fatal(err)
			}
			// Where the buttons are, read before the first click: the
			// second one lands there whatever the page is by then.
			type point struct{ X, Y float64 }
			at := func(sel string) point {
				return eval[point](tb, `(() => { const r = document.querySelector('`+sel+`').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
			}
			first, again := at(`button[value=approve]`), at(`button[value=`+second+`]`)
			click := func(p point) {
				for _, typ := range []input.DispatchMouseEventType{input.DispatchMouseEventTypeMousePressed, input.DispatchMouseEventTypeMouseReleased} {
					if _, err := chromedp.Call(tb.ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: typ, X: p.X, Y: p.Y, Button: input.MouseButtonLeft, ClickCount: 1}); err != nil {
						t.Fatal(err)
					}
				}
			}
			click(first)
			time.Sleep(150 * time.Millisecond)
			click(again)
			q := tb.nextRedirect().Query()
			if q.Get("code") == "" || q.Has("error") {
				t.Errorf("the client got %v; want the code of the first decision", q)
			}
			tb.noConsoleErrors()
		})
	}
}

// Sign in double-clicked on a slow connection: the form is sent once, so
// a wrong password counts once against the account's few attempts (it
// counted twice, and three double clicks locked the account).
func TestBrowserSignInClickedTwice(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.do(
		chromedp.WaitVisible(chromedp.ID("password")),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong"),
	)
	if _, err := chromedp.Call(tb.ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		MatchedNetworkConditions: []*network.Conditions{{URLPattern: "", Latency: 400, DownloadThroughput: -1, UploadThroughput: -1}},
	}); err != nil {
		t.Fatal(err)
	}
	p := eval[struct{ X, Y float64 }](tb, `(() => { const r = document.querySelector('form button[type=submit]').getBoundingClientRect(); return {X: r.x + r.width/2, Y: r.y + r.height/2}; })()`)
	for range 2 {
		for _, typ := range []input.DispatchMouseEventType{input.DispatchMouseEventTypeMousePressed, input.DispatchMouseEventTypeMouseReleased} {
			if _, err := chromedp.Call(tb.ctx, input.DispatchMouseEvent, input.DispatchMouseEventParams{Type: typ, X: p.X, Y: p.Y, Button: input.MouseButtonLeft, ClickCount: 1}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.do(chromedp.WaitVisible(chromedp.CSS(`[role=alert]`)))
	time.Sleep(500 * time.Millisecond) // a second post, if any, is logged by now
	if n := strings.Count(s.log.String(), "login failed"); n != 1 {
		t.Errorf("%d failed logins logged for one double-clicked Sign in; want 1", n)
	}
	tb.noConsoleErrors()
}

// An authorization request POSTed from the client's own site (OIDC Core
// §3.1.2.1: GET and POST) carries none of oauthd's SameSite=Lax cookies:
// oauthd's relay page posts it again, with them, so a signed-in person with
// a remembered consent gets a code for prompt=none, as by GET.
func TestBrowserCrossSitePostAuthorize(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(s.authorizeURL())
	tb.login("admin", "admin")
	tb.do(chromedp.Click(chromedp.ID("remember")))
	tb.decide("approve")
	tb.nextRedirect()

	tb.open(clientSitePost(t, s.authorizeURL("prompt", "none", "state", "posted"), ""))
	q := tb.nextRedirect().Query()
	if q.Get("code") == "" || q.Get("state") != "posted" || q.Has("error") {
		t.Errorf("prompt=none POSTed from the client's site: %v; want a code, the person being signed in", q)
	}
}

// The relay page posts whatever fields the client's form had, one named
// "submit" (a common button name) included, which must not hide the form's
// submit method from the page's script.
func TestBrowserRelayFieldNamedSubmit(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	tb := newTab(t, app.DemoRedirectURI)
	tb.open(clientSitePost(t, s.authorizeURL("state", "relayed"), `<button type="submit" name="submit" value="go">Sign in</button>`))
	tb.do(chromedp.WaitVisible(chromedp.ID("password")))
	tb.noConsoleErrors()
}

// clientSitePost serves, on another site than the server's (localhost, not
// 127.0.0.1: another host name, so another site for the browser's
// cookies), a page that POSTs the query of target to target's path as soon
// as it loads, with extra HTML in the form (the last button is clicked, or
// the form submitted if there is none), and returns the page's URL.
func clientSitePost(t *testing.T, target, extra string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	var fields strings.Builder
	for k, vs := range u.Query() {
		for _, v := range vs {
			fmt.Fprintf(&fields, `<input type="hidden" name="%s" value="%s">`, html.EscapeString(k), html.EscapeString(v))
		}
	}
	action := u.Scheme + "://" + u.Host + u.Path
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form method="post" action="%s">%s%s</form><script>
var b = document.forms[0].querySelector("button"); if (b) { b.click() } else { HTMLFormElement.prototype.submit.call(document.forms[0]) }
</script>`, html.EscapeString(action), fields.String(), extra)
	}))
	t.Cleanup(rp.Close)
	_, port, _ := net.SplitHostPort(rp.Listener.Addr().String())
	return "http://localhost:" + port + "/"
}
