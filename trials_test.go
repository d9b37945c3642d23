package oauthd_test

// Race trials: many rounds of parallel redemption of one code and parallel
// refresh of one refresh token, through the whole engine over HTTP, on the
// real stores. OAUTHD_TRIALS sets the number of rounds (default 50, 10
// with -race, 5 with -short; the long mode of docs/reliability.md uses
// 1000).

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

// raceWidth is how many requests race for one code or one refresh token.
const raceWidth = 16

func trials(t *testing.T) int {
	if s := os.Getenv("OAUTHD_TRIALS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("OAUTHD_TRIALS=%q is not a positive number", s)
		}
		return n
	}
	if testing.Short() {
		return 5
	}
	if raceDetector {
		return 10
	}
	return 50
}

// trialStores are the stores the trials run on; PostgreSQL runs on a
// schema of its own on the server OAUTHD_TEST_POSTGRES_DSN names (and
// skips without it, see internal/pgtest).
var trialStores = map[string]func(t *testing.T) oauthd.Storage{
	"sqlite": func(t *testing.T) oauthd.Storage {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(t.TempDir(), "trials.db"), sqlitestore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	"postgres": func(t *testing.T) oauthd.Storage {
		dsn, _ := pgtest.Schema(t)
		s, err := pgstore.Open(context.Background(), dsn, pgstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
}

func TestRaceTrials(t *testing.T) {
	for name, open := range trialStores {
		t.Run(name, func(t *testing.T) { raceTrials(t, open(t)) })
	}
}

// raceTrials runs the rounds on one store and reports the totals.
func raceTrials(t *testing.T, store oauthd.Storage) {
	ctx := context.Background()
	p, err := oauthd.New(oauthd.Config{Issuer: "http://127.0.0.1", Pages: fakePages{}}, store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	const cid, csec = "racer", "racer-secret"
	if err := store.CreateClient(ctx, &oauthd.Client{ID: cid, SecretHash: hash(t, csec), RedirectURIs: []string{redirectURI}, SkipConsent: true,
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"}}); err != nil {
		t.Fatal(err)
	}
	if err := store.CreateUser(ctx, &oauthd.User{ID: "racer-user", Username: "racer", PasswordHash: hash(t, "pw"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	auth := basic(cid, csec)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * raceWidth}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer hc.CloseIdleConnections()
	jar, _ := cookiejar.New(nil)
	person := &http.Client{Jar: jar, Transport: hc.Transport, CheckRedirect: hc.CheckRedirect}

	post := func(path string, form url.Values) *response {
		req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", auth)
		return do(t, hc, req)
	}
	get := func(c *http.Client, u string) *response {
		req, _ := http.NewRequest("GET", u, nil)
		return do(t, c, req)
	}
	// Sign in once; then every authorization request of the pre-approved
	// client ends in a code after two redirects.
	authURL := srv.URL + oauthd.AuthorizePath + "?" + url.Values{"client_id": {cid}, "redirect_uri": {redirectURI}, "response_type": {"code"}, "scope": {"email"}}.Encode()
	r := get(person, authURL)
	r = get(person, srv.URL+r.location())
	if r.pageKind() != "login" {
		t.Fatalf("want the login page: %d %s", r.status, r.body)
	}
	form := url.Values{"request": {r.str("AuthReqID")}, "csrf": {r.str("CSRF")}, "username": {"racer"}, "password": {"pw"}}
	req, _ := http.NewRequest("POST", srv.URL+oauthd.LoginPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	do(t, person, req)
	code := func() string {
		t.Helper()
		r := get(person, authURL)
		for range 3 {
			if !strings.HasPrefix(r.location(), "/") {
				break
			}
			r = get(person, srv.URL+r.location())
		}
		u, _ := url.Parse(r.location())
		if c := u.Query().Get("code"); c != "" {
			return c
		}
		t.Fatalf("no code: %d %s %s", r.status, r.location(), r.body)
		return ""
	}
	active := func(tok string) bool {
		return post(oauthd.IntrospectPath, url.Values{"token": {tok}}).page["active"] == true
	}
	// race sends the same form raceWidth times at once and returns the
	// responses.
	race := func(form url.Values) []*response {
		out := make([]*response, raceWidth)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range raceWidth {
			done.Add(1)
			go func() {
				defer done.Done()
				start.Wait()
				out[i] = post(oauthd.TokenPath, form)
			}()
		}
		start.Done()
		done.Wait()
		return out
	}

	n := trials(t)
	var codeWins, codeDoubles, refreshWins, refreshDoubles, refreshNone, fiveXX, leaks int
	for range n {
		// Parallel redemption of one code: exactly one 200, the rest
		// invalid_grant, and the replays revoke what the winner got.
		c := code()
		wins := 0
		var winner *response
		for _, r := range race(url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirectURI}}) {
			switch {
			case r.status >= 500:
				fiveXX++
				t.Errorf("5xx on redemption: %d %s", r.status, r.body)
			case r.status == 200:
				wins++
				winner = r
			case r.status != 400 || r.str("error") != "invalid_grant":
				t.Errorf("redemption answered %d %s; want 200 or invalid_grant", r.status, r.body)
			}
		}
		if wins == 1 {
			codeWins++
			if active(winner.str("access_token")) || active(winner.str("refresh_token")) {
				leaks++
				t.Errorf("the winner's tokens survived the parallel replays of its code")
			}
		} else {
			codeDoubles += max(wins-1, 0)
			t.Errorf("%d redemptions of one code succeeded; want exactly 1", wins)
		}

		// Parallel refresh of one refresh token: at most one 200; when
		// there was a reuse, the grant is revoked, successor included.
		tok := post(oauthd.TokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {code()}, "redirect_uri": {redirectURI}})
		if tok.status != 200 {
			t.Fatalf("redeem: %d %s", tok.status, tok.body)
		}
		wins = 0
		winner = nil
		for _, r := range race(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}}) {
			switch {
			case r.status >= 500:
				fiveXX++
				t.Errorf("5xx on refresh: %d %s", r.status, r.body)
			case r.status == 200:
				wins++
				winner = r
			case r.status != 400 || r.str("error") != "invalid_grant":
				t.Errorf("refresh answered %d %s; want 200 or invalid_grant", r.status, r.body)
			}
		}
		switch {
		case wins == 1:
			refreshWins++
			if active(winner.str("refresh_token")) || active(winner.str("access_token")) {
				leaks++
				t.Errorf("the successor survived the parallel reuse of its refresh token")
			}
		case wins == 0:
			refreshNone++
		default:
			refreshDoubles += wins - 1
			t.Errorf("%d refreshes of one token succeeded; want at most 1", wins)
		}
	}
	t.Logf("%d trials × %d parallel requests: code redemption %d single wins, %d double successes; refresh %d single wins, %d with no winner, %d double successes; %d 5xx; %d surviving tokens",
		n, raceWidth, codeWins, codeDoubles, refreshWins, refreshNone, refreshDoubles, fiveXX, leaks)
	if codeDoubles+refreshDoubles+fiveXX+leaks != 0 {
		t.Errorf("double successes %d, 5xx %d, surviving tokens %d; want 0, 0, 0", codeDoubles+refreshDoubles, fiveXX, leaks)
	}
}
