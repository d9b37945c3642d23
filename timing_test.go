package oauthd_test

// An unknown user answers like a wrong password, and an unknown client like
// a wrong secret: the same bytes, and the same work (the KDF runs once in
// both cases, counted with secret.KDFRuns rather than timed). The
// benchmarks measure the two paths for docs/reliability.md.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/memstore"
)

// answer is what a client can observe of a response, without what differs
// on every request (the request id, the date, the pending request's id
// and the username echoed back to the login form).
type answer struct {
	status int
	header http.Header
	body   string
}

func observe(w *httptest.ResponseRecorder) answer {
	h := w.Header().Clone()
	h.Del("X-Request-Id")
	h.Del("Date")
	// The name typed, kept for the login page: the username itself.
	cookies := h.Values("Set-Cookie")
	h.Del("Set-Cookie")
	for _, c := range cookies {
		if name, _, _ := strings.Cut(c, "="); !strings.HasSuffix(name, "oauthd_login_name") {
			h.Add("Set-Cookie", c)
		}
	}
	if loc := h.Get("Location"); loc != "" {
		u, _ := url.Parse(loc)
		q := u.Query()
		q.Del("request")
		q.Del("username")
		q.Del("sig") // a MAC of the username, for this browser
		u.RawQuery = q.Encode()
		h.Set("Location", u.String())
	}
	body := w.Body.String()
	if strings.HasPrefix(h.Get("Content-Type"), "application/json") && w.Header().Get("X-Page") != "" {
		// A fake page: drop the per-request fields.
		var v map[string]any
		json.Unmarshal([]byte(body), &v)
		delete(v, "RequestID")
		b, _ := json.Marshal(v)
		body = string(b)
	}
	return answer{w.Code, h, body}
}

func sameAnswer(t *testing.T, what string, a, b answer) {
	t.Helper()
	if a.status != b.status || a.body != b.body {
		t.Errorf("%s: %d %s\nvs %d %s", what, a.status, a.body, b.status, b.body)
	}
	keys := func(h http.Header) []string {
		var k []string
		for name := range h {
			k = append(k, name)
		}
		slices.Sort(k)
		return k
	}
	if !slices.Equal(keys(a.header), keys(b.header)) {
		t.Errorf("%s: headers %v vs %v", what, keys(a.header), keys(b.header))
	}
	for k, v := range a.header {
		if k != "Set-Cookie" && !slices.Equal(v, b.header[k]) {
			t.Errorf("%s: %s %q vs %q", what, k, v, b.header[k])
		}
	}
}

// timingProvider is a Provider on memstore whose user and clients are
// hashed with the default KDF parameters, as the CLI stores them, served
// without a network.
type timingProvider struct {
	p       *oauthd.Provider
	cookie  string
	csrf    string
	pwAuth  string
	svcAuth string
}

// newTimingProvider has the rate limits off, so every attempt reaches the
// KDF; limits adds them back.
func newTimingProvider(tb testing.TB, limits ...oauthd.RateLimit) *timingProvider {
	tb.Helper()
	return newTimingProviderClock(tb, nil, limits...)
}

// newTimingProviderClock is newTimingProvider on the clock now (nil: the
// real one).
func newTimingProviderClock(tb testing.TB, now func() time.Time, limits ...oauthd.RateLimit) *timingProvider {
	tb.Helper()
	store := memstore.New()
	off := oauthd.RateLimit{MaxFailures: -1}
	cfg := oauthd.Config{Issuer: "https://issuer.example", Pages: fakePages{}, EnablePasswordGrant: true,
		LoginLimit: off, LoginIPLimit: off, ClientLimit: off, Now: now}
	if len(limits) > 0 {
		cfg.LoginLimit, cfg.ClientLimit = limits[0], limits[0]
	}
	p, err := oauthd.New(cfg, store)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	h := func(s string) string {
		v, err := secret.Hash(s)
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
	for _, c := range []*oauthd.Client{
		{ID: "svc", SecretHash: h("svc-secret"), GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}},
		{ID: "pw", SecretHash: h("pw-secret"), GrantTypes: []string{oauthd.GrantPassword}, Scopes: []string{"email"}},
	} {
		if err := store.CreateClient(ctx, c); err != nil {
			tb.Fatal(err)
		}
	}
	if err := store.CreateUser(ctx, &oauthd.User{ID: "u1", Username: "alice", PasswordHash: h("alice-password")}); err != nil {
		tb.Fatal(err)
	}
	// The login form without a pending request: its cookie and CSRF token.
	w := httptest.NewRecorder()
	p.ServeHTTP(w, httptest.NewRequest("GET", oauthd.LoginPath, nil))
	var lp oauthd.LoginPage
	json.Unmarshal(w.Body.Bytes(), &lp)
	var cookie string
	for _, c := range w.Result().Cookies() {
		if c.Name == "__Host-oauthd_browser" {
			cookie = c.Name + "=" + c.Value
		}
	}
	if cookie == "" || lp.CSRF == "" {
		tb.Fatalf("no login form: %s", w.Body)
	}
	secret.VerifyDummy("warm up") // the dummy hash is made once per process
	return &timingProvider{p: p, cookie: cookie, csrf: lp.CSRF, pwAuth: basic("pw", "pw-secret"), svcAuth: basic("svc", "svc-secret")}
}

// login posts the login form.
func (tp *timingProvider) login(username, password string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", oauthd.LoginPath, strings.NewReader(url.Values{"csrf": {tp.csrf}, "username": {username}, "password": {password}}.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Cookie", tp.cookie)
	w := httptest.NewRecorder()
	tp.p.ServeHTTP(w, r)
	return w
}

// post posts a form to an endpoint with an Authorization header.
func (tp *timingProvider) post(path, auth string, form url.Values) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	tp.p.ServeHTTP(w, r)
	return w
}

// kdf runs f and returns its answer and how many times the KDF ran.
func kdf(f func() *httptest.ResponseRecorder) (answer, uint64) {
	before := secret.KDFRuns()
	w := f()
	return observe(w), secret.KDFRuns() - before
}

func TestUnknownUserAnswersLikeWrongPassword(t *testing.T) {
	tp := newTimingProvider(t)
	cases := []struct {
		name       string
		wrong, unk func() *httptest.ResponseRecorder
	}{
		{"RFC9700_4.7/login_form",
			func() *httptest.ResponseRecorder { return tp.login("alice", "wrong") },
			func() *httptest.ResponseRecorder { return tp.login("mallory", "wrong") }},
		{"RFC9700_4.7/login_form_empty_password",
			func() *httptest.ResponseRecorder { return tp.login("alice", "") },
			func() *httptest.ResponseRecorder { return tp.login("mallory", "") }},
		{"RFC9700_4.7/login_form_empty_username",
			func() *httptest.ResponseRecorder { return tp.login("alice", "x") },
			func() *httptest.ResponseRecorder { return tp.login("", "x") }},
		{"RFC6749_4.3.2/password_grant",
			func() *httptest.ResponseRecorder {
				return tp.post(oauthd.TokenPath, tp.pwAuth, url.Values{"grant_type": {"password"}, "username": {"alice"}, "password": {"wrong"}})
			},
			func() *httptest.ResponseRecorder {
				return tp.post(oauthd.TokenPath, tp.pwAuth, url.Values{"grant_type": {"password"}, "username": {"mallory"}, "password": {"wrong"}})
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.wrong() // the client's own secret is verified once, then cached
			a, na := kdf(tc.wrong)
			b, nb := kdf(tc.unk)
			sameAnswer(t, "wrong password vs unknown user", a, b)
			if na != 1 || nb != 1 {
				t.Errorf("KDF runs: wrong password %d, unknown user %d; want 1 and 1", na, nb)
			}
		})
	}
}

func TestUnknownClientAnswersLikeWrongSecret(t *testing.T) {
	tp := newTimingProvider(t)
	cc := url.Values{"grant_type": {"client_credentials"}}
	with := func(kv ...string) url.Values {
		f := url.Values{"grant_type": {"client_credentials"}, "token": {"x"}}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	cases := []struct {
		name       string
		runs       uint64
		wrong, unk func() *httptest.ResponseRecorder
	}{
		{"RFC6749_2.3.1/basic_at_token", 1,
			func() *httptest.ResponseRecorder { return tp.post(oauthd.TokenPath, basic("svc", "wrong"), cc) },
			func() *httptest.ResponseRecorder { return tp.post(oauthd.TokenPath, basic("nobody", "wrong"), cc) }},
		{"RFC6749_2.3.1/post_at_token", 1,
			func() *httptest.ResponseRecorder {
				return tp.post(oauthd.TokenPath, "", with("client_id", "svc", "client_secret", "wrong"))
			},
			func() *httptest.ResponseRecorder {
				return tp.post(oauthd.TokenPath, "", with("client_id", "nobody", "client_secret", "wrong"))
			}},
		{"RFC6749_2.3.1/no_secret_at_token", 0,
			func() *httptest.ResponseRecorder { return tp.post(oauthd.TokenPath, "", with("client_id", "svc")) },
			func() *httptest.ResponseRecorder { return tp.post(oauthd.TokenPath, "", with("client_id", "nobody")) }},
		{"RFC7662_2.1/basic_at_introspection", 1,
			func() *httptest.ResponseRecorder {
				return tp.post(oauthd.IntrospectPath, basic("svc", "wrong"), with())
			},
			func() *httptest.ResponseRecorder {
				return tp.post(oauthd.IntrospectPath, basic("nobody", "wrong"), with())
			}},
		{"RFC7009_2.1/basic_at_revocation", 1,
			func() *httptest.ResponseRecorder { return tp.post(oauthd.RevokePath, basic("svc", "wrong"), with()) },
			func() *httptest.ResponseRecorder { return tp.post(oauthd.RevokePath, basic("nobody", "wrong"), with()) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Twice: a wrong secret is never cached, so the second try
			// costs what the first did.
			for range 2 {
				a, na := kdf(tc.wrong)
				b, nb := kdf(tc.unk)
				sameAnswer(t, "wrong secret vs unknown client", a, b)
				if na != tc.runs || nb != tc.runs {
					t.Errorf("KDF runs: wrong secret %d, unknown client %d; want %d and %d", na, nb, tc.runs, tc.runs)
				}
			}
		})
	}
}

// A locked-out unknown user and a locked-out known one get the same
// answer and cost no KDF run: the lockout tells nothing about who exists.
func TestLockoutAnswersAlike(t *testing.T) {
	limit := oauthd.RateLimit{MaxFailures: 3, Window: time.Minute, Lockout: time.Minute}
	// A clock that stands still: both lockouts start and are told at the
	// same instant, so their Retry-After is the same whole second (on the
	// real clock, a second boundary crossed between them failed the test
	// on a loaded machine).
	at := time.Now()
	tp := newTimingProviderClock(t, func() time.Time { return at }, limit)
	for range limit.MaxFailures {
		tp.login("alice", "wrong")
		tp.login("mallory", "wrong")
	}
	a, na := kdf(func() *httptest.ResponseRecorder { return tp.login("alice", "alice-password") })
	b, nb := kdf(func() *httptest.ResponseRecorder { return tp.login("mallory", "alice-password") })
	if a.status != http.StatusTooManyRequests {
		t.Fatalf("after %d failures: %d %s; want 429", limit.MaxFailures, a.status, a.body)
	}
	// The login page echoes the username back; compare without it.
	a.body = strings.Replace(a.body, `"alice"`, `"U"`, 1)
	b.body = strings.Replace(b.body, `"mallory"`, `"U"`, 1)
	sameAnswer(t, "locked-out known user vs unknown user", a, b)
	if na != 0 || nb != 0 {
		t.Errorf("KDF runs while locked out: known %d, unknown %d; want 0 and 0", na, nb)
	}
	for range limit.MaxFailures {
		tp.post(oauthd.TokenPath, basic("svc", "wrong"), url.Values{"grant_type": {"client_credentials"}})
		tp.post(oauthd.TokenPath, basic("nobody", "wrong"), url.Values{"grant_type": {"client_credentials"}})
	}
	a, na = kdf(func() *httptest.ResponseRecorder {
		return tp.post(oauthd.TokenPath, basic("svc", "svc-secret"), url.Values{"grant_type": {"client_credentials"}})
	})
	b, nb = kdf(func() *httptest.ResponseRecorder {
		return tp.post(oauthd.TokenPath, basic("nobody", "svc-secret"), url.Values{"grant_type": {"client_credentials"}})
	})
	sameAnswer(t, "locked-out known client vs unknown client", a, b)
	if a.status == http.StatusOK || na != nb {
		t.Errorf("locked-out clients: %d, KDF runs known %d, unknown %d; want a refusal and equal work", a.status, na, nb)
	}
}

// The benchmark pairs: each pair should take the same time per operation
// (docs/reliability.md records the ratio).
func BenchmarkLoginWrongPassword(b *testing.B) {
	tp := newTimingProvider(b)
	for b.Loop() {
		tp.login("alice", "wrong")
	}
}

func BenchmarkLoginUnknownUser(b *testing.B) {
	tp := newTimingProvider(b)
	for b.Loop() {
		tp.login("mallory", "wrong")
	}
}

func BenchmarkClientAuthWrongSecret(b *testing.B) {
	tp := newTimingProvider(b)
	f := url.Values{"grant_type": {"client_credentials"}}
	for b.Loop() {
		tp.post(oauthd.TokenPath, basic("svc", "wrong"), f)
	}
}

func BenchmarkClientAuthUnknownClient(b *testing.B) {
	tp := newTimingProvider(b)
	f := url.Values{"grant_type": {"client_credentials"}}
	for b.Loop() {
		tp.post(oauthd.TokenPath, basic("nobody", "wrong"), f)
	}
}
