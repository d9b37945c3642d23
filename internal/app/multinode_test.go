package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/htmlform"
	"github.com/oauthd/oauthd/internal/pgtest"
)

// startNode runs the code `oauthd serve --demo` runs with cfg, on a
// random port, until the test ends.
func startNode(t *testing.T, cfg app.Config) *app.Main {
	t.Helper()
	cfg.Addr, cfg.Demo, cfg.LogLevel = "127.0.0.1:0", true, "warn"
	m, err := app.Open(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return m
}

// clientPost posts a form to a node's endpoint as the demo client, with
// Basic authentication, and decodes the JSON answer, if any.
func clientPost(t *testing.T, node *app.Main, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://"+node.Addr()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(app.DemoClientID+":"+app.DemoClientSecret)))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

// active introspects a token on a node (RFC 7662) and returns "active".
func active(t *testing.T, node *app.Main, token string) bool {
	t.Helper()
	st, m := clientPost(t, node, "/oauth/introspect", url.Values{"token": {token}})
	if st != 200 {
		t.Fatalf("introspect on %s: %d %v", node.Addr(), st, m)
	}
	return m["active"] == true
}

// TestTwoNodes runs two servers on one PostgreSQL schema, as two nodes
// behind a load balancer, with the same issuer, and sends each step of the
// flows to whichever node the test names: every node sees what the other
// stored.
func TestTwoNodes(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a := startNode(t, app.Config{DB: dsn})
	iss := a.Config.Issuer
	b := startNode(t, app.Config{DB: dsn, Issuer: iss})
	if b.Config.Issuer != iss {
		t.Fatalf("node B's issuer is %s; want %s", b.Config.Issuer, iss)
	}
	nodeA := "http://" + a.Addr()

	// Log in and consent on A; redeem the code on B.
	loc, err := newPerson(t).walk(app.DemoAuthorizeURL(nodeA), app.DemoRedirectURI, app.DemoUsername, app.DemoPassword, "approve")
	if err != nil {
		t.Fatalf("login and consent on A: %v", err)
	}
	q := mustParse(loc).Query()
	if q.Get("code") == "" || q.Get("iss") != iss {
		t.Fatalf("redirect from A: %s; want a code and iss=%s", loc, iss)
	}
	st, tok := clientPost(t, b, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {app.DemoRedirectURI}})
	if st != 200 || tok["access_token"] == nil || tok["refresh_token"] == nil {
		t.Fatalf("code from A redeemed on B: %d %v", st, tok)
	}
	// The code is single-use across nodes: a replay on A fails.
	if st, m := clientPost(t, a, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {app.DemoRedirectURI}}); st != 400 || m["error"] != "invalid_grant" {
		t.Errorf("code replayed on A: %d %v; want 400 invalid_grant", st, m)
	}
	// The replay revoked what the code issued, on every node.
	if active(t, a, tok["access_token"].(string)) || active(t, b, tok["access_token"].(string)) {
		t.Errorf("the access token of a replayed code is still active")
	}

	// A fresh flow: tokens from A, refresh on A, introspection on B,
	// revocation on A seen by both.
	loc, err = newPerson(t).walk(app.DemoAuthorizeURL(nodeA), app.DemoRedirectURI, app.DemoUsername, app.DemoPassword, "approve")
	if err != nil {
		t.Fatalf("second flow on A: %v", err)
	}
	st, tok = clientPost(t, b, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {mustParse(loc).Query().Get("code")}, "redirect_uri": {app.DemoRedirectURI}})
	if st != 200 {
		t.Fatalf("second code redeemed on B: %d %v", st, tok)
	}
	st, fresh := clientPost(t, a, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok["refresh_token"].(string)}})
	if st != 200 || fresh["access_token"] == tok["access_token"] || fresh["refresh_token"] == nil {
		t.Fatalf("refresh on A: %d %v", st, fresh)
	}
	access, refresh := fresh["access_token"].(string), fresh["refresh_token"].(string)
	if !active(t, b, access) || !active(t, b, refresh) {
		t.Errorf("B does not see the tokens A issued by refresh as active")
	}
	if active(t, b, tok["refresh_token"].(string)) {
		t.Errorf("B sees the refresh token A rotated as active")
	}
	if st, m := clientPost(t, a, "/oauth/revoke", url.Values{"token": {refresh}, "token_type_hint": {"refresh_token"}}); st != 200 {
		t.Fatalf("revoke on A: %d %v", st, m)
	}
	for _, node := range []*app.Main{a, b} {
		for _, tk := range []string{access, refresh} {
			if active(t, node, tk) {
				t.Errorf("after revocation on A, %s introspects a token of the grant as active", node.Addr())
			}
		}
	}
	if st, m := clientPost(t, b, "/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}); st != 400 || m["error"] != "invalid_grant" {
		t.Errorf("revoked refresh token on B: %d %v; want 400 invalid_grant", st, m)
	}
}

// TestTwoNodesBrowser checks that a browser can move between nodes: the
// login form A served is accepted by B (the CSRF token is an HMAC of the
// browser cookie, and the pending request is in the database), and the
// session A's login started is valid on B.
func TestTwoNodesBrowser(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	a := startNode(t, app.Config{DB: dsn})
	b := startNode(t, app.Config{DB: dsn, Issuer: a.Config.Issuer})
	nodeA, nodeB := "http://"+a.Addr(), "http://"+b.Addr()
	p := newPerson(t)

	// Start on A, up to its login form.
	u := app.DemoAuthorizeURL(nodeA)
	var page string
	for range 5 {
		res, err := p.c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if loc := res.Header.Get("Location"); res.StatusCode/100 == 3 && loc != "" {
			u = mustParse(u).ResolveReference(mustParse(loc)).String()
			continue
		}
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", u, res.StatusCode, body)
		}
		page = string(body)
		break
	}
	forms, err := htmlform.Parse(strings.NewReader(page))
	if err != nil || len(forms) == 0 || forms[0].Input("password") == nil {
		t.Fatalf("A did not show a login form: %v %s", err, page)
	}
	f := forms[0]

	// Post A's form to B.
	action := mustParse(nodeB + "/").ResolveReference(mustParse(f.Action))
	action.Scheme, action.Host = "http", b.Addr()
	res, err := p.c.PostForm(action.String(), f.Values(f.Button("sign in"), map[string]string{"username": app.DemoUsername, "password": app.DemoPassword}))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || loc == "" {
		t.Fatalf("A's login form posted to B: %d %s; want 303 to the next step", res.StatusCode, body)
	}
	// Consent on B, and the code comes back with the shared issuer.
	next := mustParse(nodeB + "/").ResolveReference(mustParse(loc)).String()
	got, err := p.walk(next, app.DemoRedirectURI, "", "", "approve")
	if err != nil {
		t.Fatalf("continuing on B after logging in with A's form: %v", err)
	}
	q := mustParse(got).Query()
	if q.Get("code") == "" || q.Get("iss") != a.Config.Issuer {
		t.Fatalf("redirect from B: %s; want a code and iss=%s", got, a.Config.Issuer)
	}
	if st, m := clientPost(t, a, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {app.DemoRedirectURI}}); st != 200 {
		t.Errorf("code from B redeemed on A: %d %v", st, m)
	}

	// The session cookie set by B's login is good on A: a new request on
	// A needs no login (walk fails on a login form when it has no
	// username).
	got, err = p.walk(app.DemoAuthorizeURL(nodeA), app.DemoRedirectURI, "", "", "approve")
	if err != nil {
		t.Fatalf("a new authorization on A with the session from B: %v", err)
	}
	if mustParse(got).Query().Get("code") == "" {
		t.Errorf("a new authorization on A with the session from B: %s; want a code", got)
	}

	// And a session started on A is good on B.
	p2 := newPerson(t)
	if _, err := p2.walk(app.DemoAuthorizeURL(nodeA), app.DemoRedirectURI, app.DemoUsername, app.DemoPassword, "approve"); err != nil {
		t.Fatalf("login on A: %v", err)
	}
	got, err = p2.walk(app.DemoAuthorizeURL(nodeB), app.DemoRedirectURI, "", "", "approve")
	if err != nil {
		t.Fatalf("a new authorization on B with the session from A: %v", err)
	}
	if mustParse(got).Query().Get("code") == "" {
		t.Errorf("a new authorization on B with the session from A: %s; want a code", got)
	}
}

// clock is a fake clock both nodes share.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// kids returns the key IDs a node publishes at its JWKS endpoint.
func kids(t *testing.T, node *app.Main) []string {
	t.Helper()
	res, err := http.Get("http://" + node.Addr() + oauthd.JWKSPath)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || res.StatusCode != 200 {
		t.Fatalf("JWKS of %s: %d %v", node.Addr(), res.StatusCode, err)
	}
	var ids []string
	for _, k := range set.Keys {
		ids = append(ids, k.Kid)
	}
	slices.Sort(ids)
	return ids
}

// TestTwoNodesKeyRotation checks that a signing key rotated on one node
// (as `oauthd keys rotate` does) is published by the other within the key
// refresh interval: keys live in the database, and each node re-reads them
// when its cache is older than Config.KeyRefreshInterval.
func TestTwoNodesKeyRotation(t *testing.T) {
	dsn, _ := pgtest.Schema(t)
	c := &clock{now: time.Now()}
	const refresh = 30 * time.Second
	cfg := app.Config{DB: dsn, Provider: oauthd.Config{Now: c.Now, KeyRefreshInterval: refresh}}
	a := startNode(t, cfg)
	cfg.Issuer = a.Config.Issuer
	b := startNode(t, cfg)

	before := kids(t, a)
	if len(before) == 0 || !slices.Equal(kids(t, b), before) {
		t.Fatalf("the nodes publish %q and %q; want the same keys", before, kids(t, b))
	}
	rotated, err := a.Provider.Keys().Rotate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) == 0 {
		t.Fatal("Rotate made no key")
	}
	publishes := func(node *app.Main) bool {
		ids := kids(t, node)
		for _, k := range rotated {
			if !slices.Contains(ids, k.ID) {
				return false
			}
		}
		return true
	}
	if !publishes(a) {
		t.Errorf("A does not publish the keys it rotated in: %q", kids(t, a))
	}
	// B's cache is younger than the refresh interval: it has not re-read
	// the keys yet. Once the interval has passed, it has.
	if publishes(b) {
		t.Errorf("B published the new keys before its refresh interval passed: it does not cache them")
	}
	c.Advance(refresh)
	if !publishes(b) {
		t.Errorf("B does not publish the keys rotated on A after the refresh interval: %q", kids(t, b))
	}
	if !slices.Equal(kids(t, a), kids(t, b)) {
		t.Errorf("after the refresh interval the nodes publish %q and %q; want the same keys", kids(t, a), kids(t, b))
	}
	for _, old := range before {
		if !slices.Contains(kids(t, b), old) {
			t.Errorf("B stopped publishing %s, which may still have signed ID tokens", old)
		}
	}
}

// Nodes started together on an empty database (a first deployment) agree on
// one signing key per algorithm: every node publishes the same keys, and
// the database holds one of each (the store is an
// oauthd.SigningKeyBootstrapper through the metrics wrapper).
func TestNodesStartedTogetherShareTheFirstKeys(t *testing.T) {
	for _, db := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"SQLite", func(t *testing.T) string { return t.TempDir() + "/shared.db" }},
		{"PostgreSQL", func(t *testing.T) string { dsn, _ := pgtest.Schema(t); return dsn }},
	} {
		t.Run(db.name, func(t *testing.T) {
			dsn := db.dsn(t)
			const n = 3
			nodes := make([]*app.Main, n)
			var wg sync.WaitGroup
			var mu sync.Mutex
			for i := range nodes {
				wg.Go(func() {
					node := startNode(t, app.Config{DB: dsn, Issuer: "http://localhost:8000"})
					mu.Lock()
					nodes[i] = node
					mu.Unlock()
				})
			}
			wg.Wait()
			if _, ok := nodes[0].Provider.Store().(oauthd.SigningKeyBootstrapper); !ok {
				t.Fatalf("the Provider's store %T is not an oauthd.SigningKeyBootstrapper", nodes[0].Provider.Store())
			}
			sets := make([][]string, n)
			for i, node := range nodes {
				wg.Go(func() { sets[i] = kids(t, node) })
			}
			wg.Wait()
			for i := range sets {
				if !slices.Equal(sets[i], sets[0]) {
					t.Errorf("node %d publishes %q, node 0 %q; want one key set", i, sets[i], sets[0])
				}
			}
			keys, err := nodes[0].Store.SigningKeys(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) != len(oauthd.SigningAlgorithms()) {
				t.Errorf("the database holds %d signing keys; want one per algorithm (%d)", len(keys), len(oauthd.SigningAlgorithms()))
			}
		})
	}
}
