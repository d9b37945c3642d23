package oauthd_test

// A model-based test: random sequences of the protocol's actions (sign-in,
// consent, every grant, refresh, revocation, introspection, userinfo,
// sign-out) and of an administrator's (clients and users changed or
// deleted, secrets and keys rotated, grants revoked), against a Provider on
// memstore and on sqlitestore over HTTP, with a model of what must be true
// checked after every step: no 5xx, errors in the specs' words, codes used
// once, no token outliving its revocation, client or user, no scope
// widened, no redirect to an unregistered URI, ID tokens that verify.
//
// The seeds are fixed, so a run is repeatable up to the Provider's own
// randomness and the goroutines' order; a failure prints its seed.
// STATEFUL_SEED, STATEFUL_SEQS, STATEFUL_STEPS, STATEFUL_ROUNDS and
// STATEFUL_STORE (mem or sqlite) run others, e.g. for a longer search:
//
//	STATEFUL_SEED=$RANDOM STATEFUL_SEQS=300 go test -run TestStateful$ .

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// ---------- model ----------

type mClient struct {
	id, secret     string
	public, rs     bool
	pkce           bool
	redirects      []string
	postLogout     []string
	scopes, grants []string
	createdAt      time.Time
	deleted        bool
	gen            int
}

type mUser struct {
	id, name, pw string
	deleted      bool
	pwEpoch      int
}

type mBrowser struct {
	c       *http.Client
	user    *mUser
	epoch   int
	idToken string // last ID token issued to this browser's flow (for logout hint)
}

type mConsent struct {
	scopes []string
	gen    int
}

type mCode struct {
	value, verifier, redirect, nonce string
	client                           *mClient
	gen                              int
	user                             *mUser
	scopes                           []string
	issuedAt                         time.Time
	redeemed                         *mGrant
	maybeBurned                      bool
	dead                             bool // grant revoked before redemption
}

type mTok struct {
	value     string
	refresh   bool
	g         *mGrant
	expiresAt time.Time
	dead      bool // certain
	why       string
	scopes    []string
}

type mGrant struct {
	client   *mClient
	gen      int
	user     *mUser // nil for client_credentials
	scopes   []string
	toks     []*mTok
	current  *mTok // current refresh token
	dead     bool
	why      string
	authTime int64
}

type world struct {
	t       *testing.T
	rng     *rand.Rand
	seed    int64
	kind    string
	p       *oauthd.Provider
	store   oauthd.Storage
	clk     *clock
	srv     *httptest.Server
	issuer  string
	https   bool
	clients map[string]*mClient
	cids    []string
	users   []*mUser
	br      []*mBrowser
	codes   []*mCode
	grants  []*mGrant
	consent map[string]*mConsent
	trace   []string
	step    int
	codeTTL time.Duration
	failed  bool
	mu      sync.Mutex
}

func (w *world) logf(f string, a ...any) {
	w.trace = append(w.trace, fmt.Sprintf("%3d ", w.step)+fmt.Sprintf(f, a...))
}

func (w *world) fail(f string, a ...any) {
	w.t.Helper()
	if w.failed {
		return
	}
	w.failed = true
	tr := w.trace
	if len(tr) > 60 {
		tr = tr[len(tr)-60:]
	}
	w.t.Errorf("VIOLATION seed=%d store=%s https=%v step=%d: %s\ntrace (last %d):\n%s", w.seed, w.kind, w.https, w.step, fmt.Sprintf(f, a...), len(tr), strings.Join(tr, "\n"))
}

var sharedKeys struct {
	once sync.Once
	keys []*oauthd.SigningKey
}

func newWorld(t *testing.T, seed int64, kind string, https bool) *world {
	rng := rand.New(rand.NewSource(seed))
	w := &world{t: t, rng: rng, seed: seed, kind: kind, https: https, clients: map[string]*mClient{}, consent: map[string]*mConsent{}, codeTTL: 10 * time.Minute}
	srv := httptest.NewUnstartedServer(nil)
	if https {
		w.issuer = "https://" + srv.Listener.Addr().String()
	} else {
		w.issuer = "http://" + srv.Listener.Addr().String()
	}
	w.clk = &clock{t: time.Now().UTC().Truncate(time.Second)} // sqlitestore.RevokeTokensOf uses the real clock
	var store oauthd.Storage
	if kind == "sqlite" {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		store = s
	} else {
		store = memstore.New()
	}
	w.store = store
	off := oauthd.RateLimit{MaxFailures: -1}
	cfg := oauthd.Config{Issuer: w.issuer, Pages: fakePages{}, Now: w.clk.Now, EnablePasswordGrant: true,
		LoginLimit: off, LoginIPLimit: off, ClientLimit: off, ClientCacheTTL: -1, CodeTTL: w.codeTTL, PendingRequestBudget: -1}
	p, err := oauthd.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	w.p = p
	srv.Config.Handler = p
	if https {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	w.srv = srv
	ctx := context.Background()
	now := w.clk.Now()
	mk := func(c *mClient) {
		c.createdAt = now
		w.clients[c.id] = c
		w.cids = append(w.cids, c.id)
		if err := store.CreateClient(ctx, w.toClient(c)); err != nil {
			t.Fatal(err)
		}
	}
	mk(&mClient{id: "web", secret: "web-secret-1", redirects: []string{"https://web.example/cb"}, postLogout: []string{"https://web.example/out"},
		scopes: []string{"openid", "email", "profile", "offline_access"}, grants: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}})
	mk(&mClient{id: "web2", secret: "web2-secret-1", redirects: []string{"https://web2.example/cb", "https://web2.example/cb2"},
		scopes: []string{"openid", "email"}, grants: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}})
	mk(&mClient{id: "spa", public: true, pkce: true, redirects: []string{"https://spa.example/cb", "http://127.0.0.1/cb"},
		scopes: []string{"openid", "email"}, grants: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}})
	mk(&mClient{id: "rs", secret: "rs-secret-1", rs: true, scopes: []string{"read", "write"}, grants: []string{oauthd.GrantClientCredentials}})
	mk(&mClient{id: "svc", secret: "svc-secret-1", scopes: []string{"read"}, grants: []string{oauthd.GrantClientCredentials}})
	mk(&mClient{id: "pw", secret: "pw-secret-1", scopes: []string{"openid", "email"}, grants: []string{oauthd.GrantPassword, oauthd.GrantRefreshToken}})
	for i, n := range []string{"alice", "bob"} {
		u := &mUser{id: fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), name: n, pw: n + "-pw-0"}
		w.users = append(w.users, u)
		if err := store.CreateUser(ctx, &oauthd.User{ID: u.id, Username: n, PasswordHash: hash(t, u.pw), CreatedAt: now, UpdatedAt: now,
			Claims: map[string]any{"email": n + "@example.com", "email_verified": true, "name": n}}); err != nil {
			t.Fatal(err)
		}
	}
	for range 3 {
		w.br = append(w.br, &mBrowser{c: w.newHTTPClient()})
	}
	return w
}

func (w *world) newHTTPClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	c := w.srv.Client()
	return &http.Client{Transport: c.Transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (w *world) toClient(c *mClient) *oauthd.Client {
	oc := &oauthd.Client{ID: c.id, RedirectURIs: slices.Clone(c.redirects), PostLogoutRedirectURIs: slices.Clone(c.postLogout),
		Scopes: slices.Clone(c.scopes), GrantTypes: slices.Clone(c.grants), Public: c.public, ResourceServer: c.rs, RequirePKCE: c.pkce, CreatedAt: c.createdAt}
	if c.public {
		oc.TokenEndpointAuthMethod = oauthd.AuthMethodNone
	} else {
		oc.SecretHash = hash(w.t, c.secret)
	}
	return oc
}

// ---------- HTTP + generic checks ----------

type resp struct {
	status  int
	h       http.Header
	body    string
	j       map[string]any
	cookies []*http.Cookie
}

func (r *resp) s(k string) string { v, _ := r.j[k].(string); return v }
func (r *resp) has(k string) bool { _, ok := r.j[k]; return ok }

func (w *world) send(c *http.Client, method, path, auth string, f url.Values, hdr ...string) *resp {
	w.t.Helper()
	u := path
	if strings.HasPrefix(u, "/") {
		u = w.srv.URL + u
	}
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader(f.Encode())
	}
	req, _ := http.NewRequest(method, u, body)
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if c == nil {
		c = &http.Client{Transport: w.srv.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	res, err := c.Do(req)
	if err != nil {
		w.fail("transport error %s %s: %v (panic in handler?)", method, path, err)
		return &resp{status: 599}
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r := &resp{status: res.StatusCode, h: res.Header, body: string(b), cookies: res.Cookies()}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		json.Unmarshal(b, &r.j)
	}
	w.checkAlways(method, path, r)
	return r
}

var tokenErrs = []string{"invalid_request", "invalid_client", "invalid_grant", "unauthorized_client", "unsupported_grant_type", "invalid_scope"}

func (w *world) checkAlways(method, path string, r *resp) {
	w.t.Helper()
	if r.status >= 500 {
		w.fail("%s %s answered %d: %s", method, path, r.status, r.body)
	}
	for _, c := range r.cookies {
		bad := ""
		if !c.HttpOnly {
			bad += " not HttpOnly"
		}
		if c.SameSite != http.SameSiteLaxMode {
			bad += fmt.Sprintf(" SameSite=%v", c.SameSite)
		}
		if c.Secure != w.https {
			bad += fmt.Sprintf(" Secure=%v with https=%v", c.Secure, w.https)
		}
		if strings.HasPrefix(c.Name, "__Host-") && (c.Path != "/" || c.Domain != "" || !c.Secure) {
			bad += " bad __Host- cookie"
		}
		if w.https && (c.Name == "oauthd_session" || c.Name == "oauthd_browser") {
			bad += " unprefixed cookie with https issuer"
		}
		if bad != "" {
			w.fail("cookie %s from %s %s:%s (README TLS section)", c.Name, method, path, bad)
		}
	}
	if loc := r.h.Get("Location"); loc != "" && !strings.HasPrefix(loc, "/") {
		ok := false
		for _, c := range w.clients {
			if c.deleted {
				continue
			}
			for _, u := range append(slices.Clone(c.redirects), c.postLogout...) {
				if strings.HasPrefix(loc, u+"?") || strings.HasPrefix(loc, u+"#") || loc == u {
					ok = true
				}
			}
		}
		if strings.HasPrefix(loc, w.srv.URL+"/") {
			ok = true
		}
		if !ok {
			w.fail("%s %s redirected to unregistered %q", method, path, loc)
		}
	}
	switch {
	case strings.HasPrefix(path, oauthd.TokenPath), strings.HasPrefix(path, oauthd.IntrospectPath), strings.HasPrefix(path, oauthd.RevokePath):
		if r.status != 200 {
			e := r.s("error")
			if !slices.Contains(tokenErrs, e) {
				w.fail("%s %s: %d with error %q (RFC 6749 §5.2 / RFC 7009 §2.2.1): %s", method, path, r.status, e, r.body)
			}
			if r.status == 401 && !strings.Contains(r.h.Get("WWW-Authenticate"), "Basic") {
				w.fail("%s 401 without WWW-Authenticate Basic", path)
			}
		}
	case strings.HasPrefix(path, oauthd.UserinfoPath):
		if r.status != 200 {
			wa := r.h.Get("WWW-Authenticate")
			if !strings.HasPrefix(wa, "Bearer") {
				w.fail("userinfo %d without WWW-Authenticate Bearer: %q", r.status, wa)
			}
			e := r.s("error")
			if e == "" {
				if i := strings.Index(wa, `error="`); i >= 0 {
					e = strings.SplitN(wa[i+7:], `"`, 2)[0]
				}
			}
			if e != "" && !slices.Contains([]string{"invalid_token", "invalid_request", "insufficient_scope"}, e) {
				w.fail("userinfo error %q not RFC 6750 §3.1", e)
			}
		}
	case r.h.Get("Location") == "" && r.status >= 400:
		if r.h.Get("X-Page") == "" && r.j == nil {
			w.fail("%s %s %d without a page: %q", method, path, r.status, r.body)
		}
	}
}

// ---------- helpers ----------

func (w *world) pick(n int) int        { return w.rng.Intn(n) }
func (w *world) chance(p float64) bool { return w.rng.Float64() < p }

func (w *world) client(id string) *mClient { return w.clients[id] }

func (w *world) auth(c *mClient, mode int) (string, url.Values) {
	// mode 0 right, 1 wrong secret, 2 post
	f := url.Values{}
	if c.public {
		f.Set("client_id", c.id)
		return "", f
	}
	switch mode {
	case 1:
		return basic(c.id, c.secret+"x"), f
	case 2:
		f.Set("client_id", c.id)
		f.Set("client_secret", c.secret)
		return "", f
	}
	return basic(c.id, c.secret), f
}

func s256(v string) string {
	h := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func subsetOf(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

func intersect(a, b []string) []string {
	var o []string
	for _, x := range a {
		if slices.Contains(b, x) {
			o = append(o, x)
		}
	}
	return o
}

// tokenAlive reports what the model says of a token: 1 must be active,
// -1 must be inactive, 0 unknown.
func (w *world) tokenAlive(t *mTok) (int, string) {
	g := t.g
	if t.dead {
		return -1, t.why
	}
	if g.dead {
		return -1, "grant " + g.why
	}
	if g.client.deleted || g.client.gen != g.gen {
		return -1, "client deleted"
	}
	if g.user != nil && g.user.deleted {
		return -1, "user deleted"
	}
	now := w.clk.Now()
	if !now.Before(t.expiresAt.Add(-time.Second)) {
		if now.After(t.expiresAt.Add(time.Second)) {
			return -1, "expired"
		}
		return 0, ""
	}
	if len(intersect(g.scopes, g.client.scopes)) == 0 {
		return -1, "client scopes removed"
	}
	if t.refresh && g.current != t {
		return -1, "rotated"
	}
	return 1, ""
}

func (w *world) killGrant(g *mGrant, why string) {
	if !g.dead {
		g.dead = true
		g.why = why
	}
}

// ---------- actions ----------

var scopeChoices = [][]string{{"openid"}, {"email"}, {"openid", "email"}, {"openid", "email", "profile"}, {"openid", "offline_access"}, {"openid", "email", "offline_access"}, {"admin"}, {}}

func (w *world) actAuthorize(b *mBrowser) {
	cands := []string{"web", "web2", "spa"}
	c := w.client(cands[w.pick(len(cands))])
	q := url.Values{"client_id": {c.id}, "response_type": {"code"}, "state": {fmt.Sprintf("st%d", w.step)}}
	redirect := ""
	if len(c.redirects) > 0 {
		redirect = c.redirects[w.pick(len(c.redirects))]
	}
	scopes := scopeChoices[w.pick(len(scopeChoices))]
	if len(scopes) > 0 {
		q.Set("scope", strings.Join(scopes, " "))
	}
	nonce := ""
	if w.chance(0.8) {
		nonce = fmt.Sprintf("n-%d-%d", w.seed, w.step)
		q.Set("nonce", nonce)
	}
	verifier := ""
	if c.pkce || w.chance(0.6) {
		verifier = oauthd.RandomToken() + oauthd.RandomToken()
		q.Set("code_challenge", s256(verifier))
		q.Set("code_challenge_method", "S256")
	}
	mut := "none"
	switch w.pick(14) {
	case 0:
		redirect = "https://evil.example/cb"
		mut = "evil redirect"
	case 1:
		redirect = redirect + "/x"
		mut = "redirect path"
	case 2:
		q.Set("response_type", "token")
		mut = "response_type token"
	case 3:
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		verifier = ""
		mut = "no pkce"
	case 4:
		q.Set("code_challenge_method", "plain")
		mut = "plain"
	case 5:
		q.Set("prompt", "none")
		mut = "prompt=none"
	case 6:
		q.Set("prompt", "none")
		mut = "prompt=none"
	case 7:
		q.Set("prompt", "login")
		mut = "prompt=login"
	case 8:
		q.Set("client_id", "nosuch")
		mut = "unknown client"
	case 9:
		q.Set("prompt", "consent")
		mut = "prompt=consent"
	}
	if redirect != "" && !(mut == "none" && len(c.redirects) == 1 && w.chance(0.2)) {
		q.Set("redirect_uri", redirect)
	} else if len(c.redirects) == 1 {
		redirect = c.redirects[0]
	}
	w.logf("authorize br=%d client=%s scope=%q mut=%s redirect=%s", slices.Index(w.br, b), c.id, q.Get("scope"), mut, redirect)
	r := w.send(b.c, "GET", oauthd.AuthorizePath+"?"+q.Encode(), "", nil)
	sawLogin, loggedIn := false, false
	var loginUser *mUser
	consentShown := false
	remembered := false
	for hop := 0; hop < 8 && !w.failed; hop++ {
		loc := r.h.Get("Location")
		if r.status == 303 || r.status == 302 {
			if strings.HasPrefix(loc, "/") {
				r = w.send(b.c, "GET", loc, "", nil)
				continue
			}
			break
		}
		switch r.h.Get("X-Page") {
		case "login":
			sawLogin = true
			if w.chance(0.1) {
				w.logf("  abandon at login")
				return
			}
			u := w.users[w.pick(len(w.users))]
			pw := u.pw
			right := w.chance(0.8)
			if !right {
				pw = "wrong"
			}
			w.logf("  login %s right=%v deleted=%v", u.name, right, u.deleted)
			r = w.send(b.c, "POST", oauthd.LoginPath, "", url.Values{"request": {r.s("AuthReqID")}, "csrf": {r.s("CSRF")}, "username": {u.name}, "password": {pw}})
			if r.status == 303 && !strings.Contains(r.h.Get("Location"), "login") {
				if !right || u.deleted {
					w.fail("login as %s with right=%v deleted=%v succeeded", u.name, right, u.deleted)
				}
				loggedIn = true
				loginUser = u
				b.user, b.epoch = u, u.pwEpoch
			} else if right && !u.deleted && r.h.Get("X-Page") == "login" && r.status < 300 {
				w.fail("right password for %s refused: %d %s", u.name, r.status, r.body)
			}
		case "consent":
			consentShown = true
			if w.chance(0.1) {
				w.logf("  abandon at consent")
				return
			}
			act := "approve"
			if w.chance(0.2) {
				act = "deny"
			}
			f := url.Values{"request": {r.s("AuthReqID")}, "csrf": {r.s("CSRF")}, "action": {act}}
			rem := w.chance(0.5)
			if rem {
				f.Set("remember", "on")
			}
			w.logf("  consent %s remember=%v", act, rem)
			r = w.send(b.c, "POST", oauthd.ConsentPath, "", f)
			if act == "approve" && rem {
				remembered = true
			}
			if act == "deny" {
				if loc := r.h.Get("Location"); loc != "" && strings.Contains(loc, "code=") {
					w.fail("deny gave a code: %s", loc)
				}
			}
		default:
			hop = 99
		}
		if hop == 99 {
			break
		}
	}
	if w.failed {
		return
	}
	loc := r.h.Get("Location")
	if loc == "" || strings.HasPrefix(loc, "/") {
		w.logf("  ends %d page=%s %s", r.status, r.h.Get("X-Page"), trunc(r.body))
		if mut == "none" && r.h.Get("X-Page") == "error" && !c.deleted {
			w.logf("  (note: plain request ended on error page)")
		}
		return
	}
	lu, _ := url.Parse(loc)
	vs := responseParams(lu)
	w.logf("  -> %s", trunc(loc))
	if mut == "evil redirect" || mut == "redirect path" || mut == "unknown client" {
		w.fail("authorization with %s redirected to %s", mut, loc)
		return
	}
	if c.deleted {
		w.fail("deleted client %s got a redirect %s", c.id, loc)
	}
	if !slices.ContainsFunc(c.redirects, func(u string) bool { return strings.HasPrefix(loc, u+"?") || strings.HasPrefix(loc, u+"#") }) {
		w.fail("redirect %s is not a registered URI of %s %v", loc, c.id, c.redirects)
	}
	if vs.Get("iss") != w.issuer {
		w.fail("authorization response without iss=%s (RFC 9207): %s", w.issuer, loc)
	}
	if vs.Get("state") != q.Get("state") {
		w.fail("state not echoed: %s", loc)
	}
	code := vs.Get("code")
	if code == "" {
		e := vs.Get("error")
		allowed := []string{"invalid_request", "unauthorized_client", "access_denied", "unsupported_response_type", "invalid_scope", "server_error", "temporarily_unavailable", "login_required", "consent_required", "interaction_required", "account_selection_required", "invalid_request_uri", "invalid_request_object", "request_not_supported", "request_uri_not_supported", "registration_not_supported"}
		if !slices.Contains(allowed, e) {
			w.fail("authorization error %q not in RFC 6749 §4.1.2.1 / OIDC §3.1.2.6", e)
		}
		return
	}
	// A code was issued.
	if mut == "response_type token" || mut == "plain" || (mut == "no pkce" && c.pkce) {
		w.fail("code issued despite %s", mut)
	}
	if !subsetOf(scopes, c.scopes) {
		w.fail("code for scopes %v beyond client %s scopes %v", scopes, c.id, c.scopes)
	}
	u := b.user
	if loggedIn {
		u = loginUser
	}
	if u == nil || u.deleted || (!loggedIn && b.epoch != u.pwEpoch) {
		w.fail("code issued to a browser with no valid session (user=%v loggedIn=%v)", u, loggedIn)
		return
	}
	if mut == "prompt=none" && !consentShown && !sawLogin {
		k := u.id + "|" + c.id
		cs := w.consent[k]
		if cs == nil || cs.gen != c.gen || !subsetOf(scopes, cs.scopes) {
			w.fail("prompt=none issued a code for %s/%s scopes %v without a remembered consent (%v)", u.name, c.id, scopes, cs)
		}
		if !strings.HasPrefix(redirect, "https://") && c.public {
			w.fail("prompt=none issued a code to a public client's non-https redirect without consent (ConsentRememberable)")
		}
	}
	if remembered && (!c.public || strings.HasPrefix(redirect, "https://")) {
		k := u.id + "|" + c.id
		old := w.consent[k]
		sc := slices.Clone(scopes)
		if vs.Has("scope") {
			sc = strings.Fields(vs.Get("scope"))
		}
		if old != nil && old.gen == c.gen {
			for _, s := range old.scopes {
				if !slices.Contains(sc, s) {
					sc = append(sc, s)
				}
			}
		}
		w.consent[k] = &mConsent{scopes: sc, gen: c.gen}
	}
	gotScope := strings.Fields(vs.Get("scope"))
	if vs.Has("scope") && !subsetOf(gotScope, scopes) && len(scopes) > 0 {
		w.fail("code's scope %v wider than requested %v", gotScope, scopes)
	}
	codeScopes := scopes
	if vs.Has("scope") {
		codeScopes = gotScope
	}
	w.codes = append(w.codes, &mCode{value: code, verifier: verifier, redirect: redirect, nonce: nonce, client: c, gen: c.gen, user: u,
		scopes: codeScopes, issuedAt: w.clk.Now()})
}

func trunc(s string) string {
	if len(s) > 160 {
		return s[:160] + "..."
	}
	return s
}

func (w *world) recordTokens(r *resp, c *mClient, g *mGrant) {
	now := w.clk.Now()
	exp, _ := r.j["expires_in"].(float64)
	at := &mTok{value: r.s("access_token"), g: g, expiresAt: now.Add(time.Duration(exp) * time.Second), scopes: strings.Fields(r.s("scope"))}
	if !r.has("scope") {
		at.scopes = g.scopes
	}
	g.toks = append(g.toks, at)
	if rt := r.s("refresh_token"); rt != "" {
		rexp, _ := r.j["refresh_token_expires_in"].(float64)
		if rexp == 0 {
			rexp = 30 * 86400
		}
		t := &mTok{value: rt, refresh: true, g: g, expiresAt: now.Add(time.Duration(rexp) * time.Second)}
		g.toks = append(g.toks, t)
		g.current = t
	} else if g.current != nil {
		g.current = nil
	}
	if at.value == "" {
		w.fail("200 from token endpoint without access_token: %s", r.body)
	}
	if tt := r.s("token_type"); !strings.EqualFold(tt, "bearer") {
		w.fail("token_type %q", tt)
	}
}

func (w *world) checkIDTok(raw string, c *mClient, u *mUser, nonce string, access string, wantNonce bool) {
	if raw == "" {
		return
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		w.fail("id_token parse: %v", err)
		return
	}
	r := w.send(nil, "GET", oauthd.JWKSPath, "", nil)
	var set jose.JSONWebKeySet
	json.Unmarshal([]byte(r.body), &set)
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		w.fail("id_token kid %q published %d times", jws.Signatures[0].Header.KeyID, len(keys))
		return
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		w.fail("id_token signature: %v", err)
		return
	}
	var cl map[string]any
	json.Unmarshal(payload, &cl)
	if cl["iss"] != w.issuer {
		w.fail("id_token iss %v", cl["iss"])
	}
	aud := fmt.Sprint(cl["aud"])
	if aud != c.id && aud != "["+c.id+"]" {
		w.fail("id_token aud %v want %s", cl["aud"], c.id)
	}
	if u != nil && cl["sub"] != u.id {
		w.fail("id_token sub %v want %s", cl["sub"], u.id)
	}
	n, _ := cl["nonce"].(string)
	if wantNonce && n != nonce {
		w.fail("id_token nonce %q want %q", n, nonce)
	}
	if !wantNonce && n != "" {
		w.logf("  (refresh id_token has nonce %q)", n)
	}
	if access != "" {
		h := sha256.Sum256([]byte(access))
		alg := jws.Signatures[0].Header.Algorithm
		want := base64.RawURLEncoding.EncodeToString(h[:16])
		if alg != "EdDSA" && alg != "RS256" && alg != "ES256" {
			w.fail("alg %s", alg)
		}
		if ah, ok := cl["at_hash"].(string); ok && ah != want {
			w.fail("at_hash %s want %s", ah, want)
		}
	}
	exp, _ := cl["exp"].(float64)
	if int64(exp) <= w.clk.Now().Unix() {
		w.fail("id_token expired at issue")
	}
}

func (w *world) actRedeem() {
	if len(w.codes) == 0 {
		return
	}
	mc := w.codes[w.pick(len(w.codes))]
	c := mc.client
	caller := c
	callerMode := "owner"
	if w.chance(0.1) {
		caller = w.client([]string{"web", "web2", "spa"}[w.pick(3)])
		if caller != c {
			callerMode = "other:" + caller.id
		}
	}
	am := 0
	if w.chance(0.1) {
		am = 1
	} else if w.chance(0.3) {
		am = 2
	}
	auth, f := w.auth(caller, am)
	f.Set("grant_type", "authorization_code")
	f.Set("code", mc.value)
	vmode := "right"
	switch {
	case w.chance(0.1):
		vmode = "wrong"
		f.Set("code_verifier", oauthd.RandomToken()+oauthd.RandomToken())
	case w.chance(0.1):
		vmode = "missing"
	default:
		if mc.verifier != "" {
			f.Set("code_verifier", mc.verifier)
		}
	}
	rmode := "right"
	if w.chance(0.08) {
		rmode = "wrong"
		f.Set("redirect_uri", "https://evil.example/cb")
	} else if mc.redirect != "" {
		f.Set("redirect_uri", mc.redirect)
	}
	w.logf("redeem code#%d client=%s caller=%s auth=%d verifier=%s redirect=%s redeemed=%v", slices.Index(w.codes, mc), c.id, callerMode, am, vmode, rmode, mc.redeemed != nil)
	r := w.send(nil, "POST", oauthd.TokenPath, auth, f)
	authOK := am != 1 || caller.public
	ownerOK := caller == c && !c.deleted && caller.gen == mc.gen
	if r.status == 200 {
		var why []string
		if mc.redeemed != nil {
			why = append(why, "code already redeemed")
		}
		if !authOK {
			why = append(why, "wrong client secret")
		}
		if !ownerOK {
			why = append(why, "not the owner client/gen")
		}
		if mc.verifier != "" && vmode != "right" {
			why = append(why, "verifier "+vmode)
		}
		if rmode != "right" {
			why = append(why, "wrong redirect_uri")
		}
		if !w.clk.Now().Before(mc.issuedAt.Add(w.codeTTL + time.Second)) {
			why = append(why, "expired")
		}
		if mc.dead {
			why = append(why, "grants revoked (RevokeTokensOf) before redemption")
		}
		if !slices.Contains(c.redirects, mc.redirect) {
			why = append(why, "redirect URI no longer registered")
		}
		if !subsetOf(mc.scopes, c.scopes) {
			why = append(why, "scope no longer registered")
		}
		if len(why) > 0 {
			w.fail("code redeemed despite %v: %s", why, r.body)
		}
		g := &mGrant{client: c, gen: c.gen, user: mc.user, scopes: mc.scopes}
		mc.redeemed = g
		w.grants = append(w.grants, g)
		w.recordTokens(r, c, g)
		if slices.Contains(mc.scopes, "openid") {
			if r.s("id_token") == "" {
				w.fail("openid code without id_token")
			}
			w.checkIDTok(r.s("id_token"), c, mc.user, mc.nonce, r.s("access_token"), true)
			for _, b := range w.br {
				if b.user == mc.user {
					b.idToken = r.s("id_token")
				}
			}
		}
		if mc.user.deleted {
			w.logf("  (note: code of a deleted user redeemed)")
			w.killGrant(g, "user deleted")
		}
		return
	}
	if mc.redeemed != nil && ownerOK && authOK && r.s("error") == "invalid_grant" {
		w.killGrant(mc.redeemed, "code replay")
	}
	if mc.redeemed == nil && authOK && ownerOK {
		mc.maybeBurned = true
	}
	w.logf("  -> %d %s", r.status, trunc(r.body))
}

func (w *world) liveGrantTok(refresh bool) *mTok {
	var all []*mTok
	for _, g := range w.grants {
		for _, t := range g.toks {
			if t.refresh == refresh {
				all = append(all, t)
			}
		}
	}
	if len(all) == 0 {
		return nil
	}
	// prefer recent
	if w.chance(0.6) {
		return all[len(all)-1-w.pick(min(len(all), 4))]
	}
	return all[w.pick(len(all))]
}

func (w *world) actRefresh() {
	t := w.liveGrantTok(true)
	if t == nil {
		return
	}
	g := t.g
	c := g.client
	caller := c
	if w.chance(0.08) {
		caller = w.client([]string{"web", "web2", "spa", "pw"}[w.pick(4)])
	}
	am := 0
	if w.chance(0.08) {
		am = 1
	}
	auth, f := w.auth(caller, am)
	f.Set("grant_type", "refresh_token")
	f.Set("refresh_token", t.value)
	var asked []string
	switch w.pick(6) {
	case 0:
		asked = append(slices.Clone(g.scopes), "profile", "admin")
		f.Set("scope", strings.Join(asked, " "))
	case 1:
		if len(g.scopes) > 1 {
			asked = g.scopes[:1]
			f.Set("scope", strings.Join(asked, " "))
		}
	}
	alive, why := w.tokenAlive(t)
	w.logf("refresh grant#%d client=%s caller=%s auth=%d current=%v scope=%q model=%d(%s)", slices.Index(w.grants, g), c.id, caller.id, am, g.current == t, f.Get("scope"), alive, why)
	r := w.send(nil, "POST", oauthd.TokenPath, auth, f)
	authOK := am != 1 || caller.public
	owner := caller == c && !c.deleted && caller.gen == g.gen
	if r.status == 200 {
		if alive == -1 {
			w.fail("refresh with a dead token (%s) succeeded: %s", why, r.body)
		}
		if !authOK || !owner {
			w.fail("refresh by wrong client/secret succeeded")
		}
		got := strings.Fields(r.s("scope"))
		if !subsetOf(got, g.scopes) {
			w.fail("refresh widened scope: grant %v, got %v (RFC 6749 §6)", g.scopes, got)
		}
		if !subsetOf(got, c.scopes) {
			w.fail("refresh gave scopes %v the client no longer has %v", got, c.scopes)
		}
		if asked != nil && !subsetOf(got, asked) {
			w.fail("refresh gave %v beyond asked %v", got, asked)
		}
		if asked != nil && !subsetOf(asked, g.scopes) {
			w.fail("refresh asking wider %v than grant %v succeeded (RFC 6749 §6 invalid_scope)", asked, g.scopes)
		}
		ng := g
		old := g.current
		w.recordTokens(r, c, ng)
		if old == ng.current {
			w.fail("refresh token not rotated")
		}
		if old != nil {
			old.dead, old.why = true, "rotated"
		}
		if len(got) > 0 {
			// narrowed: subsequent tokens carry at most got
		}
		if id := r.s("id_token"); id != "" {
			w.checkIDTok(id, c, g.user, "", r.s("access_token"), false)
		}
		return
	}
	if t.dead && t.why == "rotated" && owner && authOK && r.s("error") == "invalid_grant" {
		w.killGrant(g, "rotated refresh replayed")
	}
	if alive == 1 && owner && authOK && asked == nil && r.status != 200 {
		w.fail("refresh of a live token refused: %d %s", r.status, r.body)
	}
	w.logf("  -> %d %s", r.status, trunc(r.body))
}

func (w *world) actIntrospect() {
	refresh := w.chance(0.3)
	t := w.liveGrantTok(refresh)
	if t == nil {
		return
	}
	g := t.g
	var caller *mClient
	mode := "own"
	switch w.pick(3) {
	case 0:
		caller = g.client
	case 1:
		caller = w.client("rs")
		mode = "rs"
	case 2:
		caller = w.client([]string{"web", "web2", "svc", "pw"}[w.pick(4)])
		mode = "other"
		if caller == g.client {
			mode = "own"
		}
	}
	if caller.public {
		caller = w.client("rs")
		mode = "rs"
	}
	if caller == g.client && mode == "rs" {
		mode = "own"
	}
	alive, why := w.tokenAlive(t)
	auth, f := w.auth(caller, 0)
	f.Set("token", t.value)
	if w.chance(0.3) {
		f.Set("token_type_hint", "refresh_token")
	}
	w.logf("introspect grant#%d refresh=%v by=%s(%s) model=%d(%s)", slices.Index(w.grants, g), refresh, caller.id, mode, alive, why)
	r := w.send(nil, "POST", oauthd.IntrospectPath, auth, f)
	if caller.deleted {
		if r.status == 200 {
			w.fail("deleted client %s authenticated at introspection", caller.id)
		}
		return
	}
	if r.status != 200 {
		w.fail("introspection %d: %s", r.status, r.body)
		return
	}
	act, _ := r.j["active"].(bool)
	if act {
		if alive == -1 {
			w.fail("introspection says active for a dead token (%s) (RFC 7662 §2.2): %s", why, r.body)
		}
		if mode == "other" && !caller.rs {
			w.fail("non-resource-server %s sees %s's token active", caller.id, g.client.id)
		}
		sc := strings.Fields(r.s("scope"))
		if !subsetOf(sc, g.scopes) {
			w.fail("introspection scope %v wider than grant %v", sc, g.scopes)
		}
		if !subsetOf(sc, g.client.scopes) {
			w.fail("introspection scope %v beyond client registration %v", sc, g.client.scopes)
		}
		if r.s("client_id") != g.client.id {
			w.fail("introspection client_id %s", r.s("client_id"))
		}
		if g.user != nil && r.s("sub") != g.user.id {
			w.fail("introspection sub %s want %s", r.s("sub"), g.user.id)
		}
	} else {
		if len(r.j) != 1 {
			w.fail("inactive answer not exactly {active:false}: %s", r.body)
		}
		if alive == 1 && mode != "other" {
			w.fail("introspection says inactive for a live token by %s: %s", mode, r.body)
		}
	}
}

func (w *world) actUserinfo() {
	t := w.liveGrantTok(false)
	if t == nil {
		return
	}
	alive, why := w.tokenAlive(t)
	w.logf("userinfo grant#%d client=%s model=%d(%s) scopes=%v", slices.Index(w.grants, t.g), t.g.client.id, alive, why, t.g.scopes)
	hdr := "Bearer " + t.value
	var r *resp
	if w.chance(0.2) {
		r = w.send(nil, "POST", oauthd.UserinfoPath, "", url.Values{"access_token": {t.value}})
	} else {
		r = w.send(nil, "GET", oauthd.UserinfoPath, hdr, nil)
	}
	if r.status == 200 {
		if alive == -1 {
			w.fail("userinfo accepted a dead token (%s): %s", why, r.body)
		}
		if t.g.user == nil || r.s("sub") != t.g.user.id {
			w.fail("userinfo sub %s", r.s("sub"))
		}
		if _, ok := r.j["email"]; ok && !slices.Contains(t.g.scopes, "email") {
			w.fail("userinfo released email without email scope")
		}
		return
	}
	if alive == 1 && slices.Contains(intersect(t.scopes, t.g.client.scopes), "openid") && t.g.user != nil {
		w.fail("userinfo refused live openid token: %d %s", r.status, r.body)
	}
	if alive == -1 && r.status != 401 && ((slices.Contains(t.scopes, "openid") && slices.Contains(t.g.client.scopes, "openid") && t.g.user != nil) || why == "revoked" || why == "expired" || strings.HasPrefix(why, "grant")) {
		w.fail("userinfo with dead token (%s) answered %d not 401 invalid_token: %s %s", why, r.status, r.h.Get("WWW-Authenticate"), r.body)
	}
}

func (w *world) actRevoke() {
	t := w.liveGrantTok(w.chance(0.5))
	if t == nil {
		return
	}
	g := t.g
	caller := g.client
	if w.chance(0.15) {
		caller = w.client([]string{"web", "web2", "spa", "svc"}[w.pick(4)])
	}
	auth, f := w.auth(caller, 0)
	f.Set("token", t.value)
	w.logf("revoke grant#%d refresh=%v by=%s owner=%s", slices.Index(w.grants, g), t.refresh, caller.id, g.client.id)
	r := w.send(nil, "POST", oauthd.RevokePath, auth, f)
	if r.status == 200 && caller == g.client && !caller.deleted {
		if t.refresh {
			w.killGrant(g, "refresh revoked")
		} else {
			t.dead, t.why = true, "revoked"
		}
	}
	if r.status == 200 && caller != g.client && !caller.deleted && len(r.body) == 0 {
		// RFC 7009 says refuse; model: token should remain. Check it is not gone.
		w.logf("  (revoke by other client answered 200)")
	}
}

func (w *world) actClientCreds() {
	c := w.client([]string{"svc", "rs", "web"}[w.pick(3)])
	am := 0
	if w.chance(0.15) {
		am = 1
	}
	auth, f := w.auth(c, am)
	f.Set("grant_type", "client_credentials")
	sc := []string{"read"}
	if w.chance(0.3) {
		sc = []string{"read", "write"}
	}
	f.Set("scope", strings.Join(sc, " "))
	w.logf("client_credentials %s auth=%d scope=%v", c.id, am, sc)
	r := w.send(nil, "POST", oauthd.TokenPath, auth, f)
	if r.status == 200 {
		if am == 1 || c.deleted || !slices.Contains(c.grants, oauthd.GrantClientCredentials) || !subsetOf(sc, c.scopes) {
			w.fail("client_credentials issued wrongly (auth=%d deleted=%v grants=%v scopes=%v)", am, c.deleted, c.grants, c.scopes)
		}
		if r.s("refresh_token") != "" {
			w.fail("client_credentials issued a refresh token (RFC 6749 §4.4.3 SHOULD NOT)")
		}
		g := &mGrant{client: c, gen: c.gen, scopes: sc}
		if s := r.s("scope"); s != "" {
			g.scopes = strings.Fields(s)
		}
		w.grants = append(w.grants, g)
		w.recordTokens(r, c, g)
	}
}

func (w *world) actPassword() {
	c := w.client("pw")
	u := w.users[w.pick(len(w.users))]
	pw := u.pw
	right := w.chance(0.7)
	if !right {
		pw = "nope"
	}
	auth, f := w.auth(c, 0)
	f.Set("grant_type", "password")
	f.Set("username", u.name)
	f.Set("password", pw)
	f.Set("scope", "openid email")
	w.logf("password grant %s right=%v deleted=%v", u.name, right, u.deleted)
	r := w.send(nil, "POST", oauthd.TokenPath, auth, f)
	if r.status == 200 {
		if !right || u.deleted || c.deleted {
			w.fail("password grant succeeded wrongly: right=%v deleted=%v", right, u.deleted)
		}
		g := &mGrant{client: c, gen: c.gen, user: u, scopes: strings.Fields(r.s("scope"))}
		w.grants = append(w.grants, g)
		w.recordTokens(r, c, g)
	} else if right && !u.deleted && !c.deleted && r.s("error") == "invalid_grant" {
		w.fail("password grant with right password refused: %s", r.body)
	}
}

func (w *world) actPromptNone(b *mBrowser) {
	c := w.client([]string{"web", "web2"}[w.pick(2)])
	q := url.Values{"client_id": {c.id}, "response_type": {"code"}, "scope": {"openid"}, "prompt": {"none"}, "state": {"pn"}, "redirect_uri": {c.redirects[0]}, "nonce": {"pn"}}
	w.logf("prompt=none br=%d client=%s model user=%v", slices.Index(w.br, b), c.id, b.user != nil)
	r := w.send(b.c, "GET", oauthd.AuthorizePath+"?"+q.Encode(), "", nil)
	loc := r.h.Get("Location")
	valid := b.user != nil && !b.user.deleted && b.epoch == b.user.pwEpoch
	if strings.Contains(loc, "code=") {
		if !valid {
			w.fail("prompt=none gave a code to a browser with no valid session (user deleted/password changed/logged out): %s", loc)
			return
		}
		cs := w.consent[b.user.id+"|"+c.id]
		if cs == nil || cs.gen != c.gen || !slices.Contains(cs.scopes, "openid") {
			w.fail("prompt=none gave a code without remembered consent")
		}
		lu, _ := url.Parse(loc)
		w.codes = append(w.codes, &mCode{value: lu.Query().Get("code"), redirect: c.redirects[0], nonce: "pn", client: c, gen: c.gen, user: b.user, scopes: []string{"openid"}, issuedAt: w.clk.Now()})
	} else if strings.Contains(loc, "error=login_required") && valid && !c.deleted {
		w.fail("prompt=none says login_required for a valid session of %s", b.user.name)
	}
	if r.status < 300 || r.status >= 400 {
		if !c.deleted {
			w.logf("  prompt=none non-redirect %d %s", r.status, trunc(r.body))
		}
	}
}

func (w *world) actLogout(b *mBrowser) {
	q := url.Values{}
	if b.idToken != "" && w.chance(0.7) {
		q.Set("id_token_hint", b.idToken)
		if w.chance(0.5) {
			q.Set("post_logout_redirect_uri", "https://web.example/out")
			q.Set("state", "lo")
		}
	}
	if w.chance(0.1) {
		q.Set("post_logout_redirect_uri", "https://evil.example/out")
	}
	w.logf("logout br=%d q=%v", slices.Index(w.br, b), q)
	r := w.send(b.c, "GET", oauthd.LogoutPath+"?"+q.Encode(), "", nil)
	if r.h.Get("X-Page") == "logout" && r.s("CSRF") != "" {
		f := url.Values{"csrf": {r.s("CSRF")}, "action": {"logout"}}
		if hs, ok := r.j["Hidden"].([]any); ok {
			for _, h := range hs {
				m := h.(map[string]any)
				f.Add(m["Name"].(string), m["Value"].(string))
			}
		}
		r2 := w.send(b.c, "POST", oauthd.LogoutPath, "", f)
		if r2.status < 400 {
			b.user = nil
		}
		if strings.Contains(r2.h.Get("Location"), "evil") {
			w.fail("logout redirected to unregistered post_logout_redirect_uri")
		}
	} else if r.status < 400 && b.user != nil && b.user.deleted == false && b.epoch == b.user.pwEpoch && r.h.Get("X-Page") != "error" {
		w.logf("  logout without confirmation %d %s", r.status, r.h.Get("X-Page"))
	}
}

// ---------- admin ----------

func (w *world) actAdmin() {
	ctx := context.Background()
	switch w.pick(9) {
	case 0: // delete / recreate client
		c := w.client(w.cids[w.pick(len(w.cids))])
		if !c.deleted {
			w.logf("ADMIN delete client %s", c.id)
			if err := w.store.DeleteClient(ctx, c.id); err != nil {
				w.fail("DeleteClient: %v", err)
			}
			c.deleted = true
			w.clk.Add(5 * time.Second)
		} else {
			w.clk.Add(5 * time.Second)
			c.deleted = false
			c.gen++
			c.createdAt = w.clk.Now()
			w.logf("ADMIN recreate client %s gen=%d", c.id, c.gen)
			if err := w.store.CreateClient(ctx, w.toClient(c)); err != nil {
				w.fail("CreateClient: %v", err)
			}
		}
	case 1: // redirect URIs
		c := w.client([]string{"web", "web2", "spa"}[w.pick(3)])
		if c.deleted {
			return
		}
		opts := map[string][][]string{
			"web":  {{"https://web.example/cb"}, {"https://web.example/cb", "https://web.example/cb3"}, {"https://web.example/cb3"}},
			"web2": {{"https://web2.example/cb", "https://web2.example/cb2"}, {"https://web2.example/cb2"}, {"https://web2.example/cb"}},
			"spa":  {{"https://spa.example/cb", "http://127.0.0.1/cb"}, {"http://127.0.0.1/cb"}},
		}[c.id]
		c.redirects = opts[w.pick(len(opts))]
		w.logf("ADMIN redirects %s = %v", c.id, c.redirects)
		w.update(c)
	case 2: // scopes
		c := w.client([]string{"web", "web2", "spa", "svc", "pw"}[w.pick(5)])
		if c.deleted {
			return
		}
		opts := map[string][][]string{
			"web":  {{"openid", "email", "profile", "offline_access"}, {"openid", "email"}, {"email"}, {"openid"}},
			"web2": {{"openid", "email"}, {"openid"}, {"email"}},
			"spa":  {{"openid", "email"}, {"openid"}},
			"svc":  {{"read"}, {"read", "write"}, {"write"}},
			"pw":   {{"openid", "email"}, {"email"}},
		}[c.id]
		c.scopes = opts[w.pick(len(opts))]
		w.logf("ADMIN scopes %s = %v", c.id, c.scopes)
		w.update(c)
	case 3: // rotate secret
		c := w.client([]string{"web", "web2", "rs", "svc", "pw"}[w.pick(5)])
		if c.deleted {
			return
		}
		old := c.secret
		c.secret = fmt.Sprintf("%s-secret-r%d", c.id, w.step)
		w.logf("ADMIN rotate secret %s", c.id)
		w.update(c)
		r := w.send(nil, "POST", oauthd.IntrospectPath, basic(c.id, old), url.Values{"token": {"x"}})
		if r.status == 200 {
			w.fail("old secret of %s still accepted after rotation (cache off): %d %s", c.id, r.status, r.body)
		}
	case 4: // delete user / recreate
		u := w.users[w.pick(len(w.users))]
		if !u.deleted {
			w.logf("ADMIN delete user %s", u.name)
			if err := w.store.DeleteUser(ctx, u.id); err != nil {
				w.fail("DeleteUser: %v", err)
			}
			u.deleted = true
		} else {
			nu := &mUser{id: fmt.Sprintf("00000000-0000-4000-9000-%012d", w.step), name: u.name, pw: u.name + "-pw-r"}
			w.logf("ADMIN recreate user %s id=%s", u.name, nu.id)
			now := w.clk.Now()
			if err := w.store.CreateUser(ctx, &oauthd.User{ID: nu.id, Username: nu.name, PasswordHash: hash(w.t, nu.pw), CreatedAt: now, UpdatedAt: now}); err != nil {
				w.fail("CreateUser: %v", err)
			}
			w.users[slices.Index(w.users, u)] = nu
		}
	case 5: // passwd
		u := w.users[w.pick(len(w.users))]
		if u.deleted {
			return
		}
		ou, err := w.store.User(ctx, u.id)
		if err != nil {
			w.fail("User: %v", err)
			return
		}
		u.pw = fmt.Sprintf("%s-pw-%d", u.name, w.step)
		u.pwEpoch++
		ou.PasswordHash = hash(w.t, u.pw)
		ou.UpdatedAt = w.clk.Now()
		ou.PasswordChangedAt = ou.UpdatedAt
		w.logf("ADMIN passwd %s", u.name)
		if err := w.store.UpdateUser(ctx, ou); err != nil {
			w.fail("UpdateUser: %v", err)
		}
		w.clk.Add(time.Second)
	case 6: // grants revoke
		u := w.users[w.pick(len(w.users))]
		c := w.client([]string{"web", "web2", "spa", "pw"}[w.pick(4)])
		w.logf("ADMIN grants revoke %s %s", u.name, c.id)
		if err := w.store.RevokeTokensOf(ctx, u.id, c.id); err != nil {
			w.fail("RevokeTokensOf: %v", err)
		}
		w.store.DeleteConsent(ctx, u.id, c.id)
		delete(w.consent, u.id+"|"+c.id)
		for _, g := range w.grants {
			if g.user == u && g.client == c {
				w.killGrant(g, "grants revoke")
			}
		}
		for _, mc := range w.codes {
			if mc.user == u && mc.client == c && mc.redeemed == nil {
				mc.dead = true
			}
		}
	case 7: // rotate keys
		algs := [][]string{{}, {oauthd.AlgES256}, {oauthd.AlgEdDSA}}[w.pick(3)]
		w.logf("ADMIN keys rotate %v", algs)
		if _, err := w.p.Keys().Rotate(ctx, algs...); err != nil {
			w.fail("Rotate: %v", err)
		}
	case 8: // big tick
		d := []time.Duration{2 * time.Minute, 11 * time.Minute, 61 * time.Minute}[w.pick(3)]
		w.logf("TICK %v", d)
		w.clk.Add(d)
	}
}

func (w *world) update(c *mClient) {
	if err := w.store.UpdateClient(context.Background(), w.toClient(c)); err != nil {
		w.fail("UpdateClient: %v", err)
	}
}

func (w *world) stepOnce() {
	w.step++
	w.clk.Add(time.Duration(w.pick(20)) * time.Second)
	b := w.br[w.pick(len(w.br))]
	switch n := w.pick(100); {
	case n < 22:
		w.actAuthorize(b)
	case n < 36:
		w.actRedeem()
	case n < 46:
		w.actRefresh()
	case n < 58:
		w.actIntrospect()
	case n < 66:
		w.actUserinfo()
	case n < 71:
		w.actRevoke()
	case n < 75:
		w.actClientCreds()
	case n < 79:
		w.actPassword()
	case n < 84:
		w.actPromptNone(b)
	case n < 88:
		w.actLogout(b)
	default:
		w.actAdmin()
	}
}

// statefulSize is the default number of sequences (or rounds) and steps:
// smaller with -short and under the race detector.
func statefulSize(seqs, steps int) (int, int) {
	switch {
	case testing.Short():
		return max(1, seqs/8), steps / 2
	case raceDetector:
		return max(1, seqs/4), steps / 2
	}
	return seqs, steps
}

func TestStateful(t *testing.T) {
	seed := int64(envInt("STATEFUL_SEED", 1))
	seqs, steps := statefulSize(8, 100)
	seqs, steps = envInt("STATEFUL_SEQS", seqs), envInt("STATEFUL_STEPS", steps)
	kinds := []string{"mem", "sqlite"}
	if k := os.Getenv("STATEFUL_STORE"); k == "mem" || k == "sqlite" {
		kinds = []string{k}
	}
	t.Logf("STATEFUL_SEED=%d seqs=%d steps=%d", seed, seqs, steps)
	violations := 0
	for i := 0; i < seqs; i++ {
		s := seed + int64(i)
		for _, kind := range kinds {
			https := s%2 == 0
			ok := t.Run(fmt.Sprintf("seed%d_%s", s, kind), func(t *testing.T) {
				w := newWorld(t, s, kind, https)
				for j := 0; j < steps && !w.failed; j++ {
					w.stepOnce()
				}
			})
			if !ok {
				violations++
				if violations > 30 {
					t.Fatal("too many")
				}
			}
		}
	}
}

// ---------- concurrency ----------

// codeFor signs b in as u (if needed) and returns a code for web with scope.
func (w *world) codeFor(b *mBrowser, u *mUser, scope string) (string, string) {
	v := oauthd.RandomToken() + oauthd.RandomToken()
	q := url.Values{"client_id": {"web"}, "response_type": {"code"}, "scope": {scope}, "state": {"s"}, "redirect_uri": {"https://web.example/cb"},
		"code_challenge": {s256(v)}, "code_challenge_method": {"S256"}, "nonce": {"n"}}
	r := w.send(b.c, "GET", oauthd.AuthorizePath+"?"+q.Encode(), "", nil)
	for range 6 {
		loc := r.h.Get("Location")
		if loc != "" && !strings.HasPrefix(loc, "/") {
			lu, _ := url.Parse(loc)
			return lu.Query().Get("code"), v
		}
		if loc != "" {
			r = w.send(b.c, "GET", loc, "", nil)
			continue
		}
		switch r.h.Get("X-Page") {
		case "login":
			r = w.send(b.c, "POST", oauthd.LoginPath, "", url.Values{"request": {r.s("AuthReqID")}, "csrf": {r.s("CSRF")}, "username": {u.name}, "password": {u.pw}})
		case "consent":
			r = w.send(b.c, "POST", oauthd.ConsentPath, "", url.Values{"request": {r.s("AuthReqID")}, "csrf": {r.s("CSRF")}, "action": {"approve"}, "remember": {"on"}})
		default:
			w.fail("codeFor: %d %s", r.status, r.body)
			return "", ""
		}
	}
	w.fail("codeFor: no code")
	return "", ""
}

func (w *world) redeemRaw(code, v string) *resp {
	return w.send(nil, "POST", oauthd.TokenPath, basic("web", w.client("web").secret), url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {"https://web.example/cb"}, "code_verifier": {v}})
}

func (w *world) refreshRaw(rt string) *resp {
	return w.send(nil, "POST", oauthd.TokenPath, basic("web", w.client("web").secret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (w *world) activeRS(tok string) bool {
	r := w.send(nil, "POST", oauthd.IntrospectPath, basic("rs", w.client("rs").secret), url.Values{"token": {tok}})
	a, _ := r.j["active"].(bool)
	return a
}

func TestStatefulConcurrent(t *testing.T) {
	seed := int64(envInt("STATEFUL_SEED", 1))
	rounds, _ := statefulSize(8, 0)
	rounds = envInt("STATEFUL_ROUNDS", rounds)
	t.Logf("STATEFUL_SEED=%d rounds=%d", seed, rounds)
	for _, kind := range []string{"mem", "sqlite"} {
		t.Run(kind, func(t *testing.T) {
			w := newWorld(t, seed, kind, seed%2 == 0)
			var mu sync.Mutex
			fail := func(f string, a ...any) { mu.Lock(); defer mu.Unlock(); w.fail(f, a...) }
			alice := w.users[0]
			b := w.br[0]
			var stats [3]int
			defer func() {
				t.Logf("%s: code replays %d, refresh losers %d, issued around revocation %d", kind, stats[0], stats[1], stats[2])
			}()
			for round := 0; round < rounds && !w.failed; round++ {
				rng := rand.New(rand.NewSource(seed + int64(round)))
				n := 2 + rng.Intn(6)
				// 1. one code, n concurrent redemptions
				code, v := w.codeFor(b, alice, "openid email offline_access")
				var wg sync.WaitGroup
				res := make([]*resp, n)
				for i := range n {
					wg.Go(func() { res[i] = w.redeemRaw(code, v) })
				}
				wg.Wait()
				var wins []*resp
				replays := 0
				for _, r := range res {
					if r.status == 200 {
						wins = append(wins, r)
					} else if strings.Contains(r.s("error_description"), "already used") {
						replays++
					}
				}
				if len(wins) > 1 {
					fail("round %d: code redeemed %d times concurrently (RFC 6749 §4.1.2)", round, len(wins))
				}
				stats[0] += replays
				if len(wins) == 1 && replays > 0 {
					if w.activeRS(wins[0].s("access_token")) || w.activeRS(wins[0].s("refresh_token")) {
						fail("round %d (%s): code replayed %d times concurrently but its tokens stay active (RFC 6749 §4.1.2)", round, kind, replays)
					}
				}
				// 2. one refresh token, n concurrent refreshes
				code, v = w.codeFor(b, alice, "openid email offline_access")
				r0 := w.redeemRaw(code, v)
				rt := r0.s("refresh_token")
				if rt == "" {
					fail("no refresh token: %s", r0.body)
					return
				}
				for i := range n {
					wg.Go(func() { res[i] = w.refreshRaw(rt) })
				}
				wg.Wait()
				wins = wins[:0]
				losers := 0
				for _, r := range res[:n] {
					if r.status == 200 {
						wins = append(wins, r)
					} else if r.s("error") == "invalid_grant" {
						losers++
					}
				}
				if len(wins) > 1 {
					same := true
					for _, x := range wins[1:] {
						if x.s("refresh_token") != wins[0].s("refresh_token") {
							same = false
						}
					}
					fail("round %d (%s): one refresh token rotated %d times concurrently (same successor=%v)", round, kind, len(wins), same)
				}
				stats[1] += losers
				if len(wins) == 1 && losers > 0 && w.activeRS(wins[0].s("refresh_token")) {
					fail("round %d (%s): refresh token reused %d times concurrently, yet the winner's successor stays active (README: reuse revokes the grant; RFC 9700 §4.14.2)", round, kind, losers)
				}
				// 3. grants revoke racing redemptions and refreshes of earlier grants
				var codes [][2]string
				var rts []string
				for range 3 {
					c, v := w.codeFor(b, alice, "openid email offline_access")
					codes = append(codes, [2]string{c, v})
				}
				for range 3 {
					c, v := w.codeFor(b, alice, "openid email offline_access")
					rts = append(rts, w.redeemRaw(c, v).s("refresh_token"))
				}
				var got []*resp
				var gmu sync.Mutex
				revoked := make(chan struct{})
				for _, cv := range codes {
					wg.Go(func() {
						r := w.redeemRaw(cv[0], cv[1])
						gmu.Lock()
						got = append(got, r)
						gmu.Unlock()
					})
				}
				for _, x := range rts {
					wg.Go(func() {
						for range 3 {
							r := w.refreshRaw(x)
							gmu.Lock()
							got = append(got, r)
							gmu.Unlock()
							if r.status != 200 {
								return
							}
							x = r.s("refresh_token")
						}
					})
				}
				wg.Go(func() {
					time.Sleep(time.Duration(rng.Intn(3000)) * time.Microsecond)
					if err := w.store.RevokeTokensOf(context.Background(), alice.id, "web"); err != nil {
						fail("RevokeTokensOf: %v", err)
					}
					close(revoked)
				})
				wg.Wait()
				<-revoked
				for _, r := range got {
					if r.status == 200 {
						stats[2]++
						for _, k := range []string{"access_token", "refresh_token"} {
							if tok := r.s(k); tok != "" && w.activeRS(tok) {
								fail("round %d (%s): %s issued from a grant that RevokeTokensOf(alice, web) covered is active after it returned (README grants revoke)", round, kind, k)
							}
						}
						// and a refresh of it must fail
						if rt := r.s("refresh_token"); rt != "" {
							if x := w.refreshRaw(rt); x.status == 200 {
								fail("round %d (%s): refresh of a revoked grant's token succeeded after RevokeTokensOf", round, kind)
							}
						}
					}
				}
				// 4. client delete racing issuance
				if round%5 == 4 {
					c, v := w.codeFor(b, alice, "openid email offline_access")
					rt := w.redeemRaw(c, v).s("refresh_token")
					c2, v2 := w.codeFor(b, alice, "openid email")
					var out []*resp
					wg.Go(func() { r := w.refreshRaw(rt); gmu.Lock(); out = append(out, r); gmu.Unlock() })
					wg.Go(func() { r := w.redeemRaw(c2, v2); gmu.Lock(); out = append(out, r); gmu.Unlock() })
					wg.Go(func() {
						if err := w.store.DeleteClient(context.Background(), "web"); err != nil {
							fail("DeleteClient: %v", err)
						}
					})
					wg.Wait()
					wc := w.client("web")
					wc.deleted = true
					for _, r := range out {
						if r.status == 200 && (w.activeRS(r.s("access_token")) || w.activeRS(r.s("refresh_token"))) {
							fail("round %d (%s): token issued concurrently with DeleteClient(web) active after it", round, kind)
						}
					}
					w.clk.Add(5 * time.Second)
					wc.deleted = false
					wc.gen++
					wc.createdAt = w.clk.Now()
					if err := w.store.CreateClient(context.Background(), w.toClient(wc)); err != nil {
						fail("CreateClient: %v", err)
					}
					for _, r := range out {
						if r.status == 200 && (w.activeRS(r.s("access_token")) || w.activeRS(r.s("refresh_token"))) {
							fail("round %d (%s): old client's token active after re-registration", round, kind)
						}
					}
					b.user = nil
				}
				w.clk.Add(time.Second)
			}
		})
	}
}

// TestStatefulParallel runs the sequential harness with several worlds at
// once (for -race over the package's shared state).
func TestStatefulParallel(t *testing.T) {
	seed := int64(envInt("STATEFUL_SEED", 1000))
	n, steps := statefulSize(4, 100)
	n, steps = envInt("STATEFUL_SEQS", n), envInt("STATEFUL_STEPS", steps)
	t.Logf("STATEFUL_SEED=%d", seed)
	for i := range n {
		for _, kind := range []string{"mem", "sqlite"} {
			s := seed + int64(i)
			t.Run(fmt.Sprintf("seed%d_%s", s, kind), func(t *testing.T) {
				t.Parallel()
				w := newWorld(t, s, kind, s%2 == 1)
				for j := 0; j < steps && !w.failed; j++ {
					w.stepOnce()
				}
			})
		}
	}
}
