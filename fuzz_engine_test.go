package oauthd_test

// Fuzz targets that drive the whole Provider (as an http.Handler, without a
// network) with arbitrary requests and check the properties that must hold
// for any input: never a 5xx, never a redirect to a URI that was not
// validated, the security headers on every answer.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// fuzzProvider is a Provider with the test clients of newEnv, served
// without a network.
func fuzzProvider(tb testing.TB) *oauthd.Provider {
	tb.Helper()
	store := memstore.New()
	p, err := oauthd.New(oauthd.Config{Issuer: "https://issuer.example", Pages: fakePages{}}, store)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []*oauthd.Client{
		{ID: clientID, SecretHash: hash(tb, clientSecret), RedirectURIs: []string{redirectURI},
			GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"}},
		{ID: "public_app", Public: true, TokenEndpointAuthMethod: oauthd.AuthMethodNone,
			RedirectURIs: []string{"http://127.0.0.1/cb", "com.example.app:/cb"},
			GrantTypes:   []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email", "profile"}},
		{ID: "service", SecretHash: hash(tb, "service-secret"), GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read", "write"}},
	} {
		if err := store.CreateClient(ctx, c); err != nil {
			tb.Fatal(err)
		}
	}
	if err := store.CreateUser(ctx, &oauthd.User{ID: "u1", Username: "admin", PasswordHash: hash(tb, "admin"), CreatedAt: time.Now()}); err != nil {
		tb.Fatal(err)
	}
	return p
}

// checkAlways checks what every answer of the Provider must have.
func checkAlways(t *testing.T, w *httptest.ResponseRecorder, what string) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("%s: status %d: %s", what, w.Code, w.Body)
	}
	h := w.Header()
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("%s: security headers missing: %v", what, h)
	}
	var body struct {
		Description string `json:"error_description"`
	}
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") && json.Unmarshal(w.Body.Bytes(), &body) == nil {
		if bad := descriptionBadChar(body.Description); bad != "" {
			t.Fatalf("%s: error_description %q has %s (RFC 6749 §5.2)", what, body.Description, bad)
		}
	}
	if u, err := url.Parse(h.Get("Location")); err == nil {
		d := u.Query().Get("error_description")
		if f, err := url.ParseQuery(u.Fragment); err == nil && d == "" {
			d = f.Get("error_description")
		}
		if bad := descriptionBadChar(d); bad != "" {
			t.Fatalf("%s: redirect error_description %q has %s (RFC 6749 §4.1.2.1)", what, d, bad)
		}
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == "oauthd_session" && c.Value != "" {
			t.Fatalf("%s: a session was started: %v", what, c)
		}
	}
}

// FuzzAuthorizeRedirect sends arbitrary authorization requests (GET query
// or POST body) and checks that a Location header, when there is one,
// points to the server's own login page or to a registered redirect URI of
// the client named in the request, never elsewhere (RFC 6749 §4.1.2.1,
// RFC 9700 §4.1): the one the request names, or, when it names none, the
// client's only one (RFC 6749 §3.1.2.3).
func FuzzAuthorizeRedirect(f *testing.F) {
	for _, s := range []string{
		"client_id=test_client&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect&response_type=code&state=s&scope=email",
		"client_id=test_client&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=foo",
		"client_id=test_client&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect&response_type=code&scope=admin",
		"client_id=public_app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&response_type=code",
		"client_id=public_app&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%40evil.example%2Fcb&response_type=code",
		"client_id=public_app&redirect_uri=com.example.app%3A%2Fcb&response_type=token&response_mode=query",
		"client_id=test_client&client_id=public_app&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb",
		"client_id=test_client&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect&redirect_uri=https%3A%2F%2Fevil.example",
		"client_id=test_client&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect&response_type=code&prompt=none&state=%3Cscript%3E",
		"client_id=test_client",
		"client_id=test_client&response_type=code&scope=openid",
		"client_id=public_app&response_type=code",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	p := fuzzProvider(f)
	f.Fuzz(func(t *testing.T, q string, post bool) {
		var r *http.Request
		if post {
			r = httptest.NewRequest("POST", oauthd.AuthorizePath, strings.NewReader(q))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			if strings.ContainsAny(q, " #\x00\r\n") {
				return // not a request line a client can send
			}
			r = httptest.NewRequest("GET", "/", nil)
			r.URL.Path, r.URL.RawQuery = oauthd.AuthorizePath, q
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		checkAlways(t, w, "authorize "+q)
		loc := w.Header().Get("Location")
		if post && loc == "" && strings.Contains(w.Body.String(), `"Relay":true`) {
			// A cookieless POST is answered with a page that posts it
			// again (with the browser's cookies, and a marker that
			// stops a second relay): that POST's answer is the one to
			// check.
			r = httptest.NewRequest("POST", oauthd.AuthorizePath, strings.NewReader(q+"&oauthd_relay=1"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w = httptest.NewRecorder()
			p.ServeHTTP(w, r)
			checkAlways(t, w, "authorize "+q)
			loc = w.Header().Get("Location")
		}
		if loc == "" {
			return
		}
		if strings.HasPrefix(loc, oauthd.LoginPath+"?") || strings.HasPrefix(loc, oauthd.ConsentPath+"?") {
			return
		}
		vs, err := url.ParseQuery(q)
		var registered []string
		switch vs.Get("client_id") {
		case clientID:
			registered = []string{redirectURI}
		case "public_app":
			registered = []string{"http://127.0.0.1/cb", "com.example.app:/cb"}
		}
		ru := vs.Get("redirect_uri")
		if err == nil && len(vs["client_id"]) == 1 && ru == "" && len(vs["redirect_uri"]) <= 1 && len(registered) == 1 {
			// No redirect_uri: the answer goes to the client's only one.
			ru = registered[0]
		} else if err != nil || len(vs["client_id"]) != 1 || len(vs["redirect_uri"]) != 1 {
			t.Fatalf("redirected to %q for a request without one client_id and one redirect_uri: %q", loc, q)
		}
		if !oauthd.MatchRedirectURI(registered, ru) || !(strings.HasPrefix(loc, ru+"?") || strings.HasPrefix(loc, ru+"&") || strings.HasPrefix(loc, ru+"#")) {
			t.Fatalf("redirected to %q, which is not the registered redirect URI %q of %q", loc, ru, vs.Get("client_id"))
		}
		if !strings.Contains(loc, "iss="+url.QueryEscape("https://issuer.example")) {
			t.Fatalf("authorization response %q without iss (RFC 9207)", loc)
		}
	})
}

// FuzzCookies sends arbitrary Cookie headers and form fields to the pages
// that read cookies (login, consent, logout, home, authorize): never a 5xx,
// never a session from a forged cookie, never a Location off the server
// except to the registered redirect URI.
func FuzzCookies(f *testing.F) {
	f.Add("oauthd_browser="+strings.Repeat("A", 43), "request=x&csrf=y&username=admin&password=admin", 0)
	f.Add("oauthd_session="+strings.Repeat("B", 43)+"; oauthd_browser=x", "action=approve&request=&csrf=", 1)
	f.Add("oauthd_browser=\x00; oauthd_browser=a", "csrf=%00", 2)
	f.Add(`oauthd_session="quoted"; ;;; =`, "", 3)
	f.Add("oauthd_browser=<script>", "request=<script>", 4)
	p := fuzzProvider(f)
	f.Fuzz(func(t *testing.T, cookie, body string, which int) {
		paths := []string{oauthd.LoginPath, oauthd.ConsentPath, oauthd.LogoutPath, "/",
			oauthd.AuthorizePath + "?client_id=test_client&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect&response_type=code&prompt=none"}
		path := paths[uint(which)%uint(len(paths))]
		for _, method := range []string{"GET", "POST"} {
			r := httptest.NewRequest(method, path, strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set("Cookie", cookie)
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			checkAlways(t, w, method+" "+path)
			if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, redirectURI+"?") {
				t.Fatalf("%s %s redirected to %q", method, path, loc)
			}
		}
	})
}

// FuzzTokenEndpoint sends arbitrary bodies and Authorization headers to the
// token, introspection and revocation endpoints: always JSON (or an empty
// 200 from revocation), never a 5xx, 401 always with WWW-Authenticate, no
// token unless the client authenticated.
func FuzzTokenEndpoint(f *testing.F) {
	f.Add("Basic c2VydmljZTpzZXJ2aWNlLXNlY3JldA==", "grant_type=client_credentials&scope=read", 0)
	f.Add("", "grant_type=client_credentials&client_id=service&client_secret=service-secret", 0)
	f.Add("Basic dGVzdF9jbGllbnQ6cGFzc3dvcmQ=", "grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect", 0)
	f.Add("", "grant_type=refresh_token&client_id=public_app&refresh_token=x", 0)
	f.Add("Basic Og==", "token=x&token_type_hint=access_token", 1)
	f.Add("Bearer x", "token=x&token=y", 2)
	f.Add("", "grant_type=password&username=admin&password=admin&client_id=public_app", 0)
	p := fuzzProvider(f)
	f.Fuzz(func(t *testing.T, auth, body string, which int) {
		paths := []string{oauthd.TokenPath, oauthd.IntrospectPath, oauthd.RevokePath}
		path := paths[uint(which)%uint(len(paths))]
		r := httptest.NewRequest("POST", path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if auth != "" {
			if strings.ContainsAny(auth, "\r\n\x00") {
				return
			}
			r.Header.Set("Authorization", auth)
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		checkAlways(t, w, path)
		if w.Header().Get("Location") != "" {
			t.Fatalf("%s answered with a redirect", path)
		}
		if w.Code == http.StatusUnauthorized && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("%s: 401 without WWW-Authenticate", path)
		}
		if w.Code != http.StatusOK && !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			t.Fatalf("%s: error %d is not JSON: %q", path, w.Code, w.Body)
		}
		if w.Code == http.StatusOK && path == oauthd.TokenPath {
			vs, _ := url.ParseQuery(body)
			id, sec, _ := oauthd.ParseBasicAuth(auth)
			if id == "" {
				id, sec = vs.Get("client_id"), vs.Get("client_secret")
			}
			if !(id == "service" && sec == "service-secret") {
				t.Fatalf("a token was issued to %q without its secret: %s", id, w.Body)
			}
		}
	})
}
