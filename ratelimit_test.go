package oauthd_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
)

// countingStore counts the store's user and client lookups.
type countingStore struct {
	oauthd.Storage
	userLookups, clientLookups atomic.Int64
}

func (s *countingStore) UserByUsername(ctx context.Context, username string) (*oauthd.User, error) {
	s.userLookups.Add(1)
	return s.Storage.UserByUsername(ctx, username)
}

func (s *countingStore) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	s.clientLookups.Add(1)
	return s.Storage.Client(ctx, id)
}

func newCountingEnv(t *testing.T, opts ...func(*oauthd.Config)) (*testEnv, *countingStore) {
	var cs *countingStore
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage {
		cs = &countingStore{Storage: s}
		return cs
	}, opts...)
	return e, cs
}

// loginPage opens the seed's authorization request in b and returns the
// login page.
func (e *testEnv) loginPage(b *browser) *response {
	e.t.Helper()
	r := b.follow(e, b.get(e.authorizeURL()))
	if r.pageKind() != "login" {
		e.t.Fatalf("want the login page, got %d %s", r.status, r.body)
	}
	return r
}

// postLogin posts the login form without t.Fatal, for goroutines.
func postLogin(c *http.Client, u string, f url.Values) (int, http.Header, error) {
	res, err := c.PostForm(u, f)
	if err != nil {
		return 0, nil, err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header, nil
}

// 200 parallel wrong-password posts for one account check at most
// LoginLimit.MaxFailures passwords: each attempt is reserved before the
// password is checked, so the count cannot be overrun. The rest are
// answered 429 with Retry-After, and during the lockout even the right
// password does not sign in.
func TestLoginLimitParallel(t *testing.T) {
	e, _ := newCountingEnv(t)
	b := e.browser()
	lp := e.loginPage(b)
	f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"wrong"}}
	before := secret.KDFRuns()

	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for range 200 {
		wg.Go(func() {
			status, h, err := postLogin(b.c, e.url(oauthd.LoginPath), f)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			statuses[status]++
			if status == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
				t.Error("429 without Retry-After")
			}
		})
	}
	wg.Wait()
	checks := int64(secret.KDFRuns() - before)
	max := int64(oauthd.DefaultLoginLimit.MaxFailures)
	if checks > max || checks == 0 {
		t.Errorf("%d password checks for 200 parallel wrong passwords; want 1..%d", checks, max)
	}
	if statuses[http.StatusSeeOther] != int(checks) || statuses[http.StatusTooManyRequests] != 200-int(checks) {
		t.Errorf("statuses %v; want %d × 303 (invalid_credentials) and the rest 429", statuses, checks)
	}

	// The account is locked: the right password is refused unchecked.
	f.Set("password", "admin")
	before = secret.KDFRuns()
	r := b.post(e.url(oauthd.LoginPath), f)
	if r.status != http.StatusTooManyRequests || r.pageKind() != "login" || r.str("Error") != "too_many_attempts" {
		t.Fatalf("right password during lockout: %d %s %s; want 429 and the login page with too_many_attempts", r.status, r.pageKind(), r.body)
	}
	if got := r.header.Get("Retry-After"); got != "60" {
		t.Errorf("Retry-After %q; want 60 (the first lockout, a minute)", got)
	}
	if got, _ := r.page["RetryAfter"].(float64); time.Duration(got) != time.Minute {
		t.Errorf("the login page's RetryAfter %v; want a minute, as Retry-After says", time.Duration(got))
	}
	if n := secret.KDFRuns() - before; n != 0 {
		t.Errorf("%d password checks during the lockout; want 0", n)
	}
	if r2 := b.get(e.url("/")); r2.pageKind() == "home" {
		t.Error("signed in during the lockout")
	}

	// After the lockout the right password works.
	e.clock.Add(time.Minute)
	r = b.post(e.url(oauthd.LoginPath), f)
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Fatalf("right password after the lockout: %d %s; want 303 to consent", r.status, r.location())
	}
}

// Lockouts double while failures continue, up to MaxLockout; a success
// forgets them.
func TestLoginLimitBackoff(t *testing.T) {
	lim := oauthd.RateLimit{MaxFailures: 3, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: 3 * time.Minute}
	e := newEnv(t, func(c *oauthd.Config) { c.LoginLimit = lim })
	b := e.browser()
	lp := e.loginPage(b)
	f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"wrong"}}
	fail := func(n int) {
		t.Helper()
		for i := range n {
			if r := b.post(e.url(oauthd.LoginPath), f); r.status != http.StatusSeeOther {
				t.Fatalf("failure %d: %d; want 303 invalid_credentials", i+1, r.status)
			}
		}
	}
	retry := func() string {
		t.Helper()
		r := b.post(e.url(oauthd.LoginPath), f)
		if r.status != http.StatusTooManyRequests {
			t.Fatalf("%d; want 429", r.status)
		}
		return r.header.Get("Retry-After")
	}
	for i, want := range []string{"60", "120", "180", "180"} {
		fail(3)
		if got := retry(); got != want {
			t.Errorf("lockout %d: Retry-After %s; want %s", i+1, got, want)
		}
		s, _ := strconv.Atoi(want)
		e.clock.Add(time.Duration(s) * time.Second)
	}
	// A success forgets the lockouts: the next three failures lock for a minute.
	f.Set("password", "admin")
	if r := b.post(e.url(oauthd.LoginPath), f); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Fatalf("right password: %d %s", r.status, r.location())
	}
	f.Set("password", "wrong")
	fail(2)
	e.clock.Add(10 * time.Minute) // the window ends: the two failures are forgotten
	fail(2)
	fail(1)
	if got := retry(); got != "60" {
		t.Errorf("after a success: Retry-After %s; want 60", got)
	}
}

// The per-IP limit stops one address from trying many accounts; a success
// from the address does not wipe its failures.
func TestLoginIPLimit(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) {
		c.LoginIPLimit = oauthd.RateLimit{MaxFailures: 4, Window: time.Hour, Lockout: time.Minute}
	})
	b := e.browser()
	lp := e.loginPage(b)
	post := func(user, pass string) int {
		f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {user}, "password": {pass}}
		return b.post(e.url(oauthd.LoginPath), f).status
	}
	for _, u := range []string{"alice", "bob", "carol"} {
		if s := post(u, "guess"); s != http.StatusSeeOther {
			t.Fatalf("%s: %d; want 303", u, s)
		}
	}
	if s := post("admin", "admin"); s != http.StatusSeeOther {
		t.Fatalf("right password: %d; want 303", s)
	}
	if s := post("dave", "guess"); s != http.StatusSeeOther {
		t.Fatalf("fourth failure: %d; want 303", s)
	}
	if s := post("erin", "guess"); s != http.StatusTooManyRequests {
		t.Errorf("fifth account from one IP: %d; want 429", s)
	}
}

// tokenStatus posts body to the token endpoint with the Authorization
// header auth (none when empty) and returns the status; 0 after a transport
// error, which it reports. Unlike e.token it may run on any goroutine.
func tokenStatus(t *testing.T, e *testEnv, auth, body string) int {
	req, _ := http.NewRequest("POST", e.url(oauthd.TokenPath), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// 200 parallel wrong client secrets check at most ClientLimit.MaxFailures
// secrets; then even the right secret is answered 429 until the lockout
// ends.
func TestClientLimitParallel(t *testing.T) {
	e := newEnv(t)
	before := secret.KDFRuns()
	var wg sync.WaitGroup
	var n401, n429 atomic.Int64
	for range 200 {
		wg.Go(func() {
			switch s := tokenStatus(t, e, basic("service", "wrong"), "grant_type=client_credentials"); s {
			case 0:
			case http.StatusUnauthorized:
				n401.Add(1)
			case http.StatusTooManyRequests:
				n429.Add(1)
			default:
				t.Errorf("status %d", s)
			}
		})
	}
	wg.Wait()
	checks := int64(secret.KDFRuns() - before)
	if max := int64(oauthd.DefaultClientLimit.MaxFailures); checks > max || n401.Load() > max || n429.Load() != 200-n401.Load() {
		t.Errorf("%d secret checks, %d × 401, %d × 429; want at most %d checks, one 401 each, the rest 429", checks, n401.Load(), n429.Load(), max)
	}
	r := e.token(basic("service", "service-secret"), form("grant_type", "client_credentials"))
	if r.status != http.StatusTooManyRequests || r.str("error") != "temporarily_unavailable" || r.header.Get("Retry-After") != "10" {
		t.Errorf("right secret during the lockout: %d %s Retry-After %q; want 429 temporarily_unavailable, 10", r.status, r.body, r.header.Get("Retry-After"))
	}
	e.clock.Add(10 * time.Second)
	if r := e.token(basic("service", "service-secret"), form("grant_type", "client_credentials")); r.status != http.StatusOK {
		t.Errorf("after the lockout: %d %s", r.status, r.body)
	}
	// Other clients were never affected.
	if r := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", "x")); r.status != http.StatusBadRequest {
		t.Errorf("another client: %d %s; want 400 invalid_grant", r.status, r.body)
	}
}

// The password grant shares the account limit with the login form.
func TestPasswordGrantLimit(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.EnablePasswordGrant = true })
	ctx := context.Background()
	if err := e.store.CreateClient(ctx, &oauthd.Client{ID: "cli", SecretHash: hash(t, "cli-secret"),
		GrantTypes: []string{oauthd.GrantPassword}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	auth := basic("cli", "cli-secret")
	for i := range oauthd.DefaultLoginLimit.MaxFailures {
		if r := e.token(auth, form("grant_type", "password", "username", "admin", "password", "wrong")); r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
			t.Fatalf("failure %d: %d %s", i+1, r.status, r.body)
		}
	}
	r := e.token(auth, form("grant_type", "password", "username", "admin", "password", "admin"))
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || r.str("access_token") != "" {
		t.Errorf("right password during the lockout: %d %s; want 429 with Retry-After and no token", r.status, r.body)
	}
	// The login form is locked too: it is the same account.
	b := e.browser()
	lp := e.loginPage(b)
	lr := b.post(e.url(oauthd.LoginPath), url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"admin"}})
	if lr.status != http.StatusTooManyRequests {
		t.Errorf("login form during the lockout: %d; want 429", lr.status)
	}
}

// Wrong passwords from many IPv6 /64s of one /48 (a site's usual
// assignment: 65,536 of them) count together too, up to 16 times the
// per-IP limit: past it, one more /64 of that /48 is refused without a
// password check, and a network elsewhere is not.
func TestLoginIPLimitPerSite(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) {
		c.EnablePasswordGrant = true
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
		c.LoginIPLimit = oauthd.RateLimit{MaxFailures: 2, Window: time.Hour, Lockout: time.Minute}
		c.LoginLimit = oauthd.RateLimit{MaxFailures: -1}
	})
	if err := e.store.CreateClient(t.Context(), &oauthd.Client{ID: "cli", SecretHash: hash(t, "cli-secret"),
		GrantTypes: []string{oauthd.GrantPassword}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	from := func(ip, user, pass string) int {
		req, _ := http.NewRequest("POST", e.url(oauthd.TokenPath), strings.NewReader(form("grant_type", "password", "username", user, "password", pass).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic("cli", "cli-secret"))
		req.Header.Set("X-Forwarded-For", ip)
		return do(t, http.DefaultClient, req).status
	}
	checked := 0
	for n := range 20 {
		for range 2 {
			if s := from(fmt.Sprintf("2001:db8:7:%x::1", n), fmt.Sprintf("nobody%d", n), "guess"); s == http.StatusBadRequest {
				checked++
			}
		}
	}
	if checked != 16*2 {
		t.Errorf("%d wrong passwords checked from 20 /64s of one /48; want 16 times the per-IP limit, %d", checked, 16*2)
	}
	if s := from("2001:db8:7:ff::1", "admin", "admin"); s != http.StatusTooManyRequests {
		t.Errorf("another /64 of the /48: %d; want 429", s)
	}
	if s := from("2001:db8:8::1", "admin", "admin"); s != http.StatusOK {
		t.Errorf("a /64 of another /48: %d; want 200", s)
	}
}

// A negative MaxFailures turns a limit off.
func TestLoginLimitOff(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) {
		c.LoginLimit = oauthd.RateLimit{MaxFailures: -1}
		c.LoginIPLimit = oauthd.RateLimit{MaxFailures: -1}
	})
	b := e.browser()
	lp := e.loginPage(b)
	f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"wrong"}}
	for i := range 60 {
		if r := b.post(e.url(oauthd.LoginPath), f); r.status != http.StatusSeeOther {
			t.Fatalf("failure %d: %d; want 303 (no limit)", i+1, r.status)
		}
	}
}

type countingObserver struct {
	oauthd.NopObserver
	mu        sync.Mutex
	tokens    map[string]int
	failures  int
	throttled map[string]int
}

func (o *countingObserver) TokenIssued(g string) { o.mu.Lock(); o.tokens[g]++; o.mu.Unlock() }
func (o *countingObserver) LoginFailed()         { o.mu.Lock(); o.failures++; o.mu.Unlock() }
func (o *countingObserver) Throttled(l string)   { o.mu.Lock(); o.throttled[l]++; o.mu.Unlock() }

// The Observer hears about tokens by grant, failed logins and throttling.
func TestObserver(t *testing.T) {
	o := &countingObserver{tokens: map[string]int{}, throttled: map[string]int{}}
	e := newEnv(t, func(c *oauthd.Config) {
		c.Observer = o
		c.LoginLimit = oauthd.RateLimit{MaxFailures: 2}
	})
	code := e.code()
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	e.token(basic("service", "service-secret"), form("grant_type", "client_credentials"))
	e.token(basic("service", "service-secret"), form("grant_type", "bogus"))
	b := e.browser()
	lp := e.loginPage(b)
	f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"wrong"}}
	for range 3 {
		b.post(e.url(oauthd.LoginPath), f)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	want := map[string]int{"authorization_code": 1, "refresh_token": 1, "client_credentials": 1}
	if len(o.tokens) != len(want) || o.tokens["authorization_code"] != 1 || o.tokens["refresh_token"] != 1 || o.tokens["client_credentials"] != 1 {
		t.Errorf("tokens issued %v; want %v", o.tokens, want)
	}
	if o.failures != 2 || o.throttled[oauthd.LimitLoginAccount] != 1 {
		t.Errorf("login failures %d, throttled %v; want 2 and login_account 1", o.failures, o.throttled)
	}
}

// Every refusal of a locked-out client is counted, also that of a request
// with the right (already verified) secret, which the lockout check
// refuses without reserving an attempt.
func TestObserverCountsClientLockout(t *testing.T) {
	o := &countingObserver{tokens: map[string]int{}, throttled: map[string]int{}}
	e := newEnv(t, func(c *oauthd.Config) {
		c.Observer = o
		c.ClientLimit = oauthd.RateLimit{MaxFailures: 2}
	})
	cc := form("grant_type", "client_credentials")
	e.token(basic("service", "service-secret"), cc) // the secret is verified and cached
	for range 4 {
		e.token(basic("service", "wrong"), cc)
	}
	o.mu.Lock()
	before := o.throttled[oauthd.LimitClient]
	o.mu.Unlock()
	if r := e.token(basic("service", "service-secret"), cc); r.status != http.StatusTooManyRequests {
		t.Fatalf("right secret while locked out: %d %s; want 429", r.status, r.body)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.throttled[oauthd.LimitClient] != before+1 {
		t.Errorf("throttled %v (was %d); want the refusal of the right secret counted", o.throttled, before)
	}
}

// MemoryLimiter stays within its key budget however many keys are tried.
func TestMemoryLimiterBounded(t *testing.T) {
	m := oauthd.NewMemoryLimiter(100)
	lim := oauthd.RateLimit{MaxFailures: 3, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	ctx := context.Background()
	now := time.Now()
	for i := range 10_000 {
		k := "user:" + strconv.Itoa(i)
		if wait, err := m.Reserve(ctx, k, lim, now); err != nil || wait != 0 {
			t.Fatalf("reserve %s: %v %v", k, wait, err)
		}
		m.Done(ctx, k, lim, now, oauthd.Failed)
	}
	if n := m.Len(); n > 100 {
		t.Errorf("%d keys remembered; want at most 100", n)
	}
	// A key whose attempts all succeed or are released is not remembered.
	m2 := oauthd.NewMemoryLimiter(0)
	for _, o := range []oauthd.Outcome{oauthd.Succeeded, oauthd.Released} {
		m2.Reserve(ctx, "k", lim, now)
		m2.Done(ctx, "k", lim, now, o)
	}
	if n := m2.Len(); n != 0 {
		t.Errorf("%d keys after successes; want 0", n)
	}
}

// Failures older than the window do not count.
func TestMemoryLimiterWindow(t *testing.T) {
	m := oauthd.NewMemoryLimiter(0)
	lim := oauthd.RateLimit{MaxFailures: 3, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fail := func() time.Duration {
		wait, _ := m.Reserve(ctx, "k", lim, now)
		if wait == 0 {
			m.Done(ctx, "k", lim, now, oauthd.Failed)
		}
		return wait
	}
	fail()
	fail()
	now = now.Add(61 * time.Second)
	fail()
	fail()
	if w := fail(); w != 0 {
		t.Fatalf("third failure of a new window refused: %s", w)
	}
	if w := fail(); w != time.Minute {
		t.Errorf("after three failures in a window: wait %s; want 1m", w)
	}
}

// A burst of requests of a client whose right secret is not verified yet
// (a node that has just started) is not throttled either: the requests
// that come while the secret's KDF run is in progress wait for it without
// taking an attempt, instead of each reserving one of ClientLimit's.
func TestClientLimitBurstBeforeTheSecretIsCached(t *testing.T) {
	e := newEnv(t)
	// The production KDF, so that the burst comes while it runs.
	h, err := secret.Hash("slow-secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateClient(t.Context(), &oauthd.Client{ID: "slow", SecretHash: h,
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}}); err != nil {
		t.Fatal(err)
	}
	before := secret.KDFRuns()
	var wg sync.WaitGroup
	var n200, bad atomic.Int64
	for range 100 {
		wg.Go(func() {
			if tokenStatus(t, e, basic("slow", "slow-secret"), "grant_type=client_credentials") == http.StatusOK {
				n200.Add(1)
			} else {
				bad.Add(1)
			}
		})
	}
	wg.Wait()
	if n200.Load() != 100 {
		t.Errorf("%d × 200, %d other; want 100 × 200", n200.Load(), bad.Load())
	}
	if runs := secret.KDFRuns() - before; runs > 2 {
		t.Errorf("%d KDF runs for one secret; want 1 (2 if a request came as the first run ended)", runs)
	}
}

// A client whose secret is right is never throttled by its own
// concurrency: once the secret is verified, 100 parallel token requests
// (more than ClientLimit.MaxFailures) all succeed; and a public client,
// which has no secret to guess, is never throttled for being busy.
func TestClientLimitSparesRightSecrets(t *testing.T) {
	e := newEnv(t)
	if r := e.token(basic("service", "service-secret"), form("grant_type", "client_credentials")); r.status != 200 {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	var wg sync.WaitGroup
	var bad atomic.Int64
	post := func(auth, body string) {
		if s := tokenStatus(t, e, auth, body); s == http.StatusTooManyRequests || s >= 500 {
			bad.Add(1)
		}
	}
	for range 100 {
		wg.Go(func() { post(basic("service", "service-secret"), "grant_type=client_credentials") })
		wg.Go(func() { post("", "grant_type=refresh_token&refresh_token=x&client_id=public_app") })
	}
	wg.Wait()
	if bad.Load() != 0 {
		t.Errorf("%d requests of authenticating clients were throttled or failed", bad.Load())
	}
}

// RFC 6749 §10.10 asks for protection against guessing client secrets, not
// for a lockout any third party can trigger: client_ids are public, so
// wrong secrets are counted per client and client IP network. A guesser
// locks out only itself; the client, from its own hosts, is not refused,
// with its secret cached or not.
func TestClientLimitLocksOutTheGuesserOnly(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	})
	from := func(ip, auth string) *response {
		req, _ := http.NewRequest("POST", e.url(oauthd.TokenPath), strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		req.Header.Set("X-Forwarded-For", ip)
		return do(t, http.DefaultClient, req)
	}
	const attacker, client, neighbour = "203.0.113.7", "198.51.100.20", "2001:db8:1:2::99"
	for i := range oauthd.DefaultClientLimit.MaxFailures {
		if r := from(attacker, basic("service", "guess"+strconv.Itoa(i))); r.status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s; want 401", i, r.status, r.body)
		}
	}
	if r := from(attacker, basic("service", "service-secret")); r.status != http.StatusTooManyRequests {
		t.Errorf("the guesser with the right secret during its lockout: %d; want 429 (no oracle for guesses)", r.status)
	}
	if r := from(client, basic("service", "service-secret")); r.status != http.StatusOK {
		t.Errorf("the client from its own address, secret not cached yet: %d %s; want 200", r.status, r.body)
	}
	if r := from(client, basic("service", "service-secret")); r.status != http.StatusOK {
		t.Errorf("the client from its own address, secret cached: %d %s; want 200", r.status, r.body)
	}
	if r := from(attacker, basic("service", "service-secret")); r.status != http.StatusTooManyRequests {
		t.Errorf("the guesser with the right, now cached, secret during its lockout: %d; want 429", r.status)
	}
	// An IPv6 client is counted per /64, as at the login form.
	for i := range oauthd.DefaultClientLimit.MaxFailures {
		from("2001:db8:1:2::"+strconv.Itoa(i+1), basic("service", "guess"))
	}
	if r := from(neighbour, basic("service", "service-secret")); r.status != http.StatusTooManyRequests {
		t.Errorf("another address of the guesser's /64: %d; want 429", r.status)
	}
}

// Made-up client_ids from one network share one key: a flood of them
// cannot fill the limiter with keys and push out the failures it counts.
func TestClientLimitUnknownClientsShareAKey(t *testing.T) {
	m := oauthd.NewMemoryLimiter(0)
	e := newEnv(t, func(c *oauthd.Config) { c.Limiter = m })
	for i := range oauthd.DefaultClientLimit.MaxFailures {
		if s := tokenStatus(t, e, basic("ghost-"+strconv.Itoa(i), ""), "grant_type=client_credentials"); s != http.StatusUnauthorized {
			t.Fatalf("unknown client %d: %d; want 401", i, s)
		}
	}
	if s := tokenStatus(t, e, basic("ghost-new", ""), "grant_type=client_credentials"); s != http.StatusTooManyRequests {
		t.Errorf("one more made-up client_id from the same address: %d; want 429", s)
	}
	if n := m.Len(); n != 1 {
		t.Errorf("the limiter holds %d keys after %d made-up client_ids; want 1", n, oauthd.DefaultClientLimit.MaxFailures+1)
	}
	if s := tokenStatus(t, e, basic("service", "service-secret"), "grant_type=client_credentials"); s != http.StatusOK {
		t.Errorf("a real client from that address: %d; want 200", s)
	}
}

// A full limiter forgets the keys with the fewest failures first: a flood
// of keys with one failure each (made-up usernames, say) cannot wipe the
// count of an account one guess short of its lockout.
func TestMemoryLimiterKeepsTheNearlyLockedOut(t *testing.T) {
	m := oauthd.NewMemoryLimiter(1000)
	lim := oauthd.RateLimit{MaxFailures: 5, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	ctx := context.Background()
	now := time.Now()
	fail := func(k string) time.Duration {
		wait, err := m.Reserve(ctx, k, lim, now)
		if err != nil {
			t.Fatal(err)
		}
		if wait == 0 {
			m.Done(ctx, k, lim, now, oauthd.Failed)
		}
		return wait
	}
	for range 4 {
		fail("user:victim")
	}
	for i := range 10_000 {
		fail("user:junk-" + strconv.Itoa(i))
		now = now.Add(time.Millisecond)
	}
	if n := m.Len(); n > 1000 {
		t.Errorf("%d keys; want at most 1000", n)
	}
	fail("user:victim")
	if wait := fail("user:victim"); wait == 0 {
		t.Error("the victim's fifth failure after the flood did not lock it out: its four earlier failures were forgotten")
	}

	// Limits differ: keys with more failures, but further from their own
	// lockout (5 of a client's 20), go before an account one short of its.
	m = oauthd.NewMemoryLimiter(160)
	client := oauthd.RateLimit{MaxFailures: 20, Window: time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	for range 4 {
		fail("user:alice")
	}
	for i := range 2_000 {
		k := "client:junk-" + strconv.Itoa(i)
		for range 5 {
			if wait, _ := m.Reserve(ctx, k, client, now); wait == 0 {
				m.Done(ctx, k, client, now, oauthd.Failed)
			}
		}
	}
	if wait := fail("user:alice"); wait == 0 {
		if wait = fail("user:alice"); wait == 0 {
			t.Error("alice, one failure short of her lockout, was forgotten before client keys far from theirs")
		}
	}
}

// RFC 6749 §2.3.1: the guessing limit also holds across networks: a
// client's wrong secrets from every network together stop at ten times the
// per-network limit (an IPv6 /48 is 65,536 /64s). The ceiling delays only
// secrets not verified before: the client, its secret cached, is not
// refused.
func TestClientLimitCeilingAcrossNetworks(t *testing.T) {
	lim := oauthd.RateLimit{MaxFailures: 2, Window: time.Hour, Lockout: time.Minute}
	for _, cached := range []bool{false, true} {
		e := newEnv(t, func(c *oauthd.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			c.ClientLimit = lim
		})
		from := func(ip, auth string) int {
			req, _ := http.NewRequest("POST", e.url(oauthd.TokenPath), strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", auth)
			req.Header.Set("X-Forwarded-For", ip)
			return do(t, http.DefaultClient, req).status
		}
		if cached {
			if s := from("198.51.100.20", basic("service", "service-secret")); s != http.StatusOK {
				t.Fatalf("the client's first request: %d", s)
			}
		}
		refused := 0
		for n := range 15 {
			for range lim.MaxFailures {
				if s := from(fmt.Sprintf("2001:db8:0:%x::1", n+1), basic("service", "guess")); s == http.StatusTooManyRequests {
					refused++
				}
			}
		}
		if checked := 15*lim.MaxFailures - refused; checked != 10*lim.MaxFailures {
			t.Errorf("cached=%v: %d wrong secrets checked from 15 networks; want the ceiling, %d", cached, checked, 10*lim.MaxFailures)
		}
		s := from("2001:db8:0:ff::1", basic("service", "service-secret"))
		if !cached && s != http.StatusTooManyRequests {
			t.Errorf("the right secret, never verified, from yet another network: %d; want 429 past the ceiling", s)
		}
		if cached && s != http.StatusOK {
			t.Errorf("the right secret, verified before, from another network: %d; want 200 through the ceiling", s)
		}
	}
}

// A public client has no secret to guess: requests that send one are
// refused (invalid_client) without counting, so a web page posting
// client_secret=x across sites from the people's network cannot lock
// them out of the client (the public client's own requests carry no
// secret, and no lockout applies to them).
func TestClientLimitSparesPublicClients(t *testing.T) {
	e := newEnv(t)
	for i := range 3 * oauthd.DefaultClientLimit.MaxFailures {
		r := e.token("", form("grant_type", "refresh_token", "client_id", "public_app", "client_secret", "x"+strconv.Itoa(i), "refresh_token", "nope"))
		if r.status != http.StatusUnauthorized || r.str("error") != "invalid_client" {
			t.Fatalf("public client with a secret, request %d: %d %s; want 401 invalid_client", i, r.status, r.body)
		}
	}
	r := e.token("", form("grant_type", "refresh_token", "client_id", "public_app", "refresh_token", "nope"))
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Errorf("the public client's own request after the bogus secrets: %d %s; want 400 invalid_grant (no lockout)", r.status, r.body)
	}
}

// The per-account limit counts against the account the store finds: where
// usernames are case-sensitive, "ADMIN" is an account of its own. Its
// sign-ins neither reset admin's failures (which let 4 wrong passwords for
// admin, then one right one for ADMIN, go on past the limit) nor its
// failures lock admin out.
func TestLoginLimitPerAccountNotPerSpelling(t *testing.T) {
	e := newEnv(t)
	other := &oauthd.User{ID: "3f2c7e1a-0000-4000-8000-0000000000ad", Username: "ADMIN", PasswordHash: hash(t, "other-admin")}
	if err := e.store.CreateUser(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	login := func(user, pass string) *response {
		b := e.browser()
		lp := e.loginPage(b)
		return b.post(e.url(oauthd.LoginPath), url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {user}, "password": {pass}})
	}
	max := oauthd.DefaultLoginLimit.MaxFailures
	for range max - 1 {
		if r := login("admin", "wrong"); r.status != http.StatusSeeOther {
			t.Fatalf("wrong password: %d", r.status)
		}
	}
	if r := login("ADMIN", "other-admin"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Fatalf("ADMIN's right password: %d %s; want signed in", r.status, r.location())
	}
	login("admin", "wrong") // admin's failure number max
	if r := login("admin", "admin"); r.status != http.StatusTooManyRequests {
		t.Errorf("admin's right password after %d failures (and ADMIN signed in between): %d; want 429, the account locked", max, r.status)
	}
	// And ADMIN, an account of its own, is not locked by admin's failures.
	if r := login("ADMIN", "other-admin"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location(), oauthd.ConsentPath) {
		t.Errorf("ADMIN's right password while admin is locked: %d %s; want signed in", r.status, r.location())
	}
}

// The per-account limit tells nothing of which usernames exist: failures of
// another spelling of a name (ADMIN, NOBODY: accounts nobody has) lock
// neither admin, who exists, nor nobody, who does not: both answer the
// next wrong password alike (303, not 429). Counted under the name
// lowercased, the failures of NOBODY had locked nobody, and not admin.
func TestLoginLimitTellsNoUsernames(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) {
		c.LoginIPLimit = oauthd.RateLimit{MaxFailures: 1000, Window: time.Hour, Lockout: time.Minute}
	})
	login := func(user string) int {
		b := e.browser()
		lp := e.loginPage(b)
		return b.post(e.url(oauthd.LoginPath), url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {user}, "password": {"wrong"}}).status
	}
	for _, name := range []string{"admin", "nobody"} {
		for range oauthd.DefaultLoginLimit.MaxFailures {
			login(strings.ToUpper(name))
		}
		if got := login(name); got != http.StatusSeeOther {
			t.Errorf("a wrong password for %s after %d failures of %s: %d; want 303 (invalid credentials), as for any name", name, oauthd.DefaultLoginLimit.MaxFailures, strings.ToUpper(name), got)
		}
	}
}

// A flood of throttled attempts writes one "attempt throttled" line a
// second at most, with the count of those left out; the metrics (the
// Observer) count every one.
func TestThrottledAttemptsLoggedOnceASecond(t *testing.T) {
	var logs lockedBuffer
	obs := &throttleCounter{}
	e := newEnv(t, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.Observer = obs
		c.ClientLimit = oauthd.RateLimit{MaxFailures: 1, Window: time.Hour, Lockout: time.Hour}
	})
	for range 50 {
		e.token(basic("service", "guess"), form("grant_type", "client_credentials"))
	}
	if n := strings.Count(logs.String(), "attempt throttled"); n < 1 || n > 3 {
		t.Errorf("%d attempt throttled lines for 49 throttled attempts; want about one a second", n)
	}
	if obs.throttledCount() != 49 {
		t.Errorf("the Observer counted %d throttled attempts; want 49", obs.throttledCount())
	}
}

type throttleCounter struct {
	oauthd.NopObserver
	mu        sync.Mutex
	throttled int
}

func (o *throttleCounter) Throttled(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.throttled++
}

func (o *throttleCounter) throttledCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.throttled
}
