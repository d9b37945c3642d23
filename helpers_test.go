package oauthd_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/memstore"
)

// fakePages renders every page as JSON of its data, so engine tests read
// what the engine decided rather than HTML.
type fakePages struct{}

func writePage(w http.ResponseWriter, status int, kind string, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Page", kind)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (fakePages) Login(w http.ResponseWriter, r *http.Request, p *oauthd.LoginPage) {
	writePage(w, p.Status, "login", p)
}
func (fakePages) Consent(w http.ResponseWriter, r *http.Request, p *oauthd.ConsentPage) {
	writePage(w, p.Status, "consent", p)
}
func (fakePages) Error(w http.ResponseWriter, r *http.Request, p *oauthd.ErrorPage) {
	writePage(w, p.Status, "error", p)
}
func (fakePages) FormPost(w http.ResponseWriter, r *http.Request, p *oauthd.FormPostPage) {
	writePage(w, p.Status, "form_post", p)
}
func (fakePages) Home(w http.ResponseWriter, r *http.Request, p *oauthd.HomePage) {
	writePage(w, p.Status, "home", p)
}
func (fakePages) Logout(w http.ResponseWriter, r *http.Request, p *oauthd.LogoutPage) {
	writePage(w, p.Status, "logout", p)
}
func (fakePages) Static() http.Handler { return http.NotFoundHandler() }

// clock is a settable fake time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

const (
	redirectURI  = "https://www.example.com/redirect"
	clientID     = "test_client"
	clientSecret = "password"
)

var fastParams = secret.Params{Memory: 64, Time: 1, Threads: 1}

func hash(t testing.TB, s string) string {
	h, err := secret.HashWith(s, fastParams)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// testEnv is a Provider on a real HTTP server with the seed's demo client
// and user, a public PKCE client and a client_credentials client.
type testEnv struct {
	t      *testing.T
	p      *oauthd.Provider
	store  *memstore.Store
	clock  *clock
	srv    *httptest.Server
	issuer string
	user   *oauthd.User
}

func newEnv(t *testing.T, opts ...func(*oauthd.Config)) *testEnv {
	t.Helper()
	return newEnvWrapped(t, nil, opts...)
}

// newEnvWrapped is newEnv with the Provider's store wrapped by wrap (to
// count or fail calls); the env's store is the unwrapped memstore.
func newEnvWrapped(t *testing.T, wrap func(oauthd.Storage) oauthd.Storage, opts ...func(*oauthd.Config)) *testEnv {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	store := memstore.New()
	cfg := oauthd.Config{Issuer: issuer, Pages: fakePages{}, Now: clk.Now}
	for _, o := range opts {
		o(&cfg)
	}
	var ps oauthd.Storage = store
	if wrap != nil {
		ps = wrap(store)
	}
	p, err := oauthd.New(cfg, ps)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p
	srv.Start()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(store.CreateClient(ctx, &oauthd.Client{ID: clientID, SecretHash: hash(t, clientSecret), RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"},
		AccessTokenTTL: 300 * time.Second, RefreshTokenTTL: 900 * time.Second}))
	must(store.CreateClient(ctx, &oauthd.Client{ID: "public_app", Public: true, TokenEndpointAuthMethod: oauthd.AuthMethodNone,
		RedirectURIs: []string{"http://127.0.0.1/cb", "com.example.app:/cb"},
		GrantTypes:   []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email", "profile"}}))
	must(store.CreateClient(ctx, &oauthd.Client{ID: "service", SecretHash: hash(t, "service-secret"),
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read", "write"}}))
	must(store.CreateClient(ctx, &oauthd.Client{ID: "other", SecretHash: hash(t, "other-secret"), RedirectURIs: []string{"https://other.example/cb"},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"}}))
	u := &oauthd.User{ID: "3f2c7e1a-0000-4000-8000-000000000001", Username: "admin", PasswordHash: hash(t, "admin")}
	must(store.CreateUser(ctx, u))
	return &testEnv{t: t, p: p, store: store, clock: clk, srv: srv, issuer: issuer, user: u}
}

// browser is a person's browser: a cookie jar that does not follow redirects.
type browser struct {
	t *testing.T
	c *http.Client
}

func (e *testEnv) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type response struct {
	status int
	header http.Header
	body   string
	page   map[string]any
}

func (r *response) location() string { return r.header.Get("Location") }
func (r *response) pageKind() string { return r.header.Get("X-Page") }
func (r *response) str(k string) string {
	s, _ := r.page[k].(string)
	return s
}

func do(t *testing.T, c *http.Client, req *http.Request) *response {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := &response{status: res.StatusCode, header: res.Header, body: string(b)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(b, &r.page)
	}
	return r
}

func (b *browser) get(u string) *response {
	b.t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	return do(b.t, b.c, req)
}

func (b *browser) post(u string, form url.Values) *response {
	b.t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(b.t, b.c, req)
}

func (e *testEnv) url(path string) string { return e.srv.URL + path }

// relayFields are the fields of a relay page (see Provider.relay): a
// form_post page of the server that posts a request back to it.
func relayFields(t *testing.T, r *response) url.Values {
	t.Helper()
	if r.status != http.StatusOK || r.pageKind() != "form_post" || r.page["Relay"] != true {
		t.Fatalf("want a relay page, got %d %s", r.status, r.body)
	}
	f := url.Values{}
	for _, p := range r.page["Params"].([]any) {
		m := p.(map[string]any)
		f.Add(m["Name"].(string), m["Value"].(string))
	}
	return f
}

// relay submits a relay page's form from b, as the page does.
func (b *browser) relay(r *response) *response {
	b.t.Helper()
	return b.post(r.str("Action"), relayFields(b.t, r))
}

// authorizeURL is the seed's authorization URL with extra parameters.
func (e *testEnv) authorizeURL(kv ...string) string {
	q := url.Values{"client_id": {clientID}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "state": {"somestate"}, "scope": {"email"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return e.url(oauthd.AuthorizePath + "?" + q.Encode())
}

// follow follows a same-server redirect.
func (b *browser) follow(e *testEnv, r *response) *response {
	b.t.Helper()
	loc := r.location()
	if loc == "" {
		b.t.Fatalf("no redirect: %d %s", r.status, r.body)
	}
	if strings.HasPrefix(loc, "/") {
		loc = e.srv.URL + loc
	}
	return b.get(loc)
}

// login fills the login form the response shows.
func (b *browser) login(e *testEnv, r *response, user, pass string) *response {
	b.t.Helper()
	if r.pageKind() != "login" {
		b.t.Fatalf("want the login page, got %d %s %s", r.status, r.pageKind(), r.body)
	}
	return b.post(e.url(oauthd.LoginPath), url.Values{"request": {r.str("AuthReqID")}, "csrf": {r.str("CSRF")}, "username": {user}, "password": {pass}})
}

// decide answers the consent page the response shows.
func (b *browser) decide(e *testEnv, r *response, action string, extra ...string) *response {
	b.t.Helper()
	if r.pageKind() != "consent" {
		b.t.Fatalf("want the consent page, got %d %s %s", r.status, r.pageKind(), r.body)
	}
	f := url.Values{"request": {r.str("AuthReqID")}, "csrf": {r.str("CSRF")}, "action": {action}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	return b.post(e.url(oauthd.ConsentPath), f)
}

// authorize runs authorize → login → consent(action) and returns the final
// redirect to the client.
func (e *testEnv) authorize(b *browser, authURL, action string) *url.URL {
	e.t.Helper()
	r := b.get(authURL)
	if r.status != http.StatusSeeOther {
		e.t.Fatalf("authorize: %d %s", r.status, r.body)
	}
	r = b.follow(e, r)
	if r.pageKind() == "login" {
		r = b.login(e, r, "admin", "admin")
		r = b.follow(e, r)
	}
	if r.pageKind() == "consent" {
		r = b.decide(e, r, action)
	}
	if r.status != http.StatusSeeOther && r.status != http.StatusFound {
		e.t.Fatalf("want a redirect to the client, got %d %s", r.status, r.body)
	}
	u, err := url.Parse(r.location())
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// code gets a fresh authorization code for the seed request.
func (e *testEnv) code(kv ...string) string {
	e.t.Helper()
	u := e.authorize(e.browser(), e.authorizeURL(kv...), "approve")
	c := u.Query().Get("code")
	if c == "" {
		e.t.Fatalf("no code in %s", u)
	}
	return c
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// token posts a form to the token endpoint with optional Basic credentials.
func (e *testEnv) token(auth string, form url.Values) *response {
	e.t.Helper()
	return e.postForm(oauthd.TokenizePath, auth, form)
}

func (e *testEnv) postForm(path, auth string, form url.Values) *response {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.url(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	return do(e.t, http.DefaultClient, req)
}

func form(kv ...string) url.Values {
	f := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Add(kv[i], kv[i+1])
	}
	return f
}
