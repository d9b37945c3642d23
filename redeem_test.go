package oauthd_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// pathStore records the store calls that redeem codes, and the hashes of
// the tokens stored for them.
type pathStore struct {
	oauthd.Storage
	mu                         sync.Mutex
	consumes, creates, redeems int
	stored                     []string
}

func (s *pathStore) ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*oauthd.AuthCode, error) {
	s.mu.Lock()
	s.consumes++
	s.mu.Unlock()
	return s.Storage.ConsumeAuthCode(ctx, hash, now)
}

func (s *pathStore) CreateTokens(ctx context.Context, tokens ...*oauthd.Token) error {
	s.mu.Lock()
	s.creates++
	s.mu.Unlock()
	s.record(tokens)
	return s.Storage.CreateTokens(ctx, tokens...)
}

func (s *pathStore) record(tokens []*oauthd.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		s.stored = append(s.stored, t.Hash)
	}
}

func (s *pathStore) calls() (consumes, creates, redeems int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.consumes, s.creates, s.redeems
}

// redeemingStore is a pathStore that is an oauthd.CodeRedeemer.
type redeemingStore struct{ *pathStore }

func (s redeemingStore) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	s.mu.Lock()
	s.redeems++
	s.mu.Unlock()
	return s.Storage.(oauthd.CodeRedeemer).RedeemAuthCode(ctx, hash, now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		toks, err := issue(c)
		if err == nil {
			s.record(toks)
		}
		return toks, err
	})
}

// TestCodeGrantStorePaths redeems codes through a store that is an
// oauthd.CodeRedeemer (one store call) and through one that is not
// (ConsumeAuthCode, then CreateTokens), and checks that clients see the
// same answers: the same errors and descriptions (except that a refused
// redemption leaves the code unused only with a CodeRedeemer), a replay revokes the first redemption's tokens, and tokens
// that were not delivered are not left in the store.
func TestCodeGrantStorePaths(t *testing.T) {
	const verifier = "verifier-0123456789-abcdefghijklmnopqrstuvwxyz"
	challenge := []string{"code_challenge", oauthd.S256Challenge(verifier), "code_challenge_method", "S256"}
	redeem := func(e *testEnv, auth, code string, kv ...string) *response {
		return e.token(auth, form(append([]string{"grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI}, kv...)...))
	}
	// Each scenario returns the answer to its last token request.
	scenarios := []struct {
		name string
		run  func(e *testEnv) *response
	}{
		{"RFC6749_4.1.3/success", func(e *testEnv) *response { return redeem(e, seedAuth, e.code()) }},
		{"RFC7636_4.6/success_with_pkce", func(e *testEnv) *response {
			return redeem(e, seedAuth, e.code(challenge...), "code_verifier", verifier)
		}},
		{"OIDC_3.1.3.3/success_with_id_token", func(e *testEnv) *response {
			return redeem(e, seedAuth, e.code("scope", "openid email", "nonce", "n-1"))
		}},
		{"RFC6749_4.1.3/unknown_code", func(e *testEnv) *response { return redeem(e, seedAuth, "nope") }},
		{"RFC6749_4.1.2/replay", func(e *testEnv) *response {
			code := e.code()
			if r := redeem(e, seedAuth, code); r.status != http.StatusOK {
				e.t.Fatalf("first redemption: %d %s", r.status, r.body)
			}
			return redeem(e, seedAuth, code)
		}},
		{"RFC6749_4.1.3/redirect_uri_mismatch", func(e *testEnv) *response {
			return e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", "https://www.example.com/other"))
		}},
		{"RFC6749_4.1.3/code_of_another_client", func(e *testEnv) *response {
			return redeem(e, basic("other", "other-secret"), e.code())
		}},
		{"RFC6749_4.1.2/expired", func(e *testEnv) *response {
			code := e.code()
			e.clock.Add(5*time.Minute + time.Second)
			defer e.clock.Add(-5*time.Minute - time.Second)
			return redeem(e, seedAuth, code)
		}},
		{"RFC9700_2.1.1/verifier_without_challenge", func(e *testEnv) *response {
			return redeem(e, seedAuth, e.code(), "code_verifier", verifier)
		}},
		{"RFC7636_4.5/missing_verifier", func(e *testEnv) *response { return redeem(e, seedAuth, e.code(challenge...)) }},
		{"RFC7636_4.6/wrong_verifier", func(e *testEnv) *response {
			return redeem(e, seedAuth, e.code(challenge...), "code_verifier", strings.Repeat("b", 43))
		}},
		// A refused redemption leaves the code to the client it was
		// issued to (on the RedeemAuthCode path; see afterRefusal).
		{"RFC7636_4.6/right_verifier_after_a_wrong_one", func(e *testEnv) *response {
			code := e.code(challenge...)
			if r := redeem(e, seedAuth, code, "code_verifier", strings.Repeat("b", 43)); r.status != http.StatusBadRequest {
				e.t.Fatalf("wrong verifier: %d %s", r.status, r.body)
			}
			return redeem(e, seedAuth, code, "code_verifier", verifier)
		}},
		{"RFC6749_4.1.3/right_redirect_uri_after_a_wrong_one", func(e *testEnv) *response {
			code := e.code()
			if r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", "https://www.example.com/other")); r.status != http.StatusBadRequest {
				e.t.Fatalf("wrong redirect_uri: %d %s", r.status, r.body)
			}
			return redeem(e, seedAuth, code)
		}},
		{"RFC6749_4.1.3/owner_after_another_client", func(e *testEnv) *response {
			code := e.code()
			if r := redeem(e, basic("other", "other-secret"), code); r.status != http.StatusBadRequest {
				e.t.Fatalf("another client: %d %s", r.status, r.body)
			}
			return redeem(e, seedAuth, code)
		}},
		// The user is gone by the time the ID token is made, after the
		// store call: the tokens stored for the code must not stay.
		{"OIDC_3.1.3.3/user_deleted", func(e *testEnv) *response {
			code := e.code("scope", "openid email")
			if err := e.store.DeleteUser(context.Background(), e.user.ID); err != nil {
				e.t.Fatal(err)
			}
			return redeem(e, seedAuth, code)
		}},
		// Without openid too: a grant does not outlive its user.
		{"RFC6749_5.2/user_deleted", func(e *testEnv) *response {
			code := e.code()
			if err := e.store.DeleteUser(context.Background(), e.user.ID); err != nil {
				e.t.Fatal(err)
			}
			return redeem(e, seedAuth, code)
		}},
	}
	paths := []struct {
		name     string
		wrap     func(*pathStore) oauthd.Storage
		redeemer bool
	}{
		{"RedeemAuthCode", func(s *pathStore) oauthd.Storage { return redeemingStore{s} }, true},
		{"ConsumeAuthCode+CreateTokens", func(s *pathStore) oauthd.Storage { return s }, false},
	}
	results := runStorePaths(t, []string{paths[0].name, paths[1].name}, len(scenarios), func(j int) string { return scenarios[j].name }, func(t *testing.T, i, j int) pathOutcome {
		path, sc := paths[i], scenarios[j]
		ps := &pathStore{}
		e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage {
			ps.Storage = s
			return path.wrap(ps)
		})
		allowOpenID(e)
		r := sc.run(e)
		ps.mu.Lock()
		hashes := ps.stored
		ps.mu.Unlock()
		consumes, creates, redeems := ps.calls()
		if path.redeemer && (consumes != 0 || creates != 0 || redeems == 0) {
			t.Errorf("ConsumeAuthCode %d, CreateTokens %d, RedeemAuthCode %d calls; want RedeemAuthCode only", consumes, creates, redeems)
		}
		if !path.redeemer && (redeems != 0 || consumes == 0) {
			t.Errorf("ConsumeAuthCode %d, RedeemAuthCode %d calls; want ConsumeAuthCode", consumes, redeems)
		}
		return observePath(e, r, hashes)
	})

	want := map[string]struct {
		status int
		err    string
	}{
		"RFC6749_4.1.3/success":                              {200, ""},
		"RFC7636_4.6/success_with_pkce":                      {200, ""},
		"OIDC_3.1.3.3/success_with_id_token":                 {200, ""},
		"RFC6749_4.1.3/unknown_code":                         {400, "invalid_grant"},
		"RFC6749_4.1.2/replay":                               {400, "invalid_grant"},
		"RFC6749_4.1.3/redirect_uri_mismatch":                {400, "invalid_grant"},
		"RFC6749_4.1.3/code_of_another_client":               {400, "invalid_grant"},
		"RFC6749_4.1.2/expired":                              {400, "invalid_grant"},
		"RFC9700_2.1.1/verifier_without_challenge":           {400, "invalid_request"},
		"RFC7636_4.5/missing_verifier":                       {400, "invalid_grant"},
		"RFC7636_4.6/wrong_verifier":                         {400, "invalid_grant"},
		"RFC7636_4.6/right_verifier_after_a_wrong_one":       {200, ""},
		"RFC6749_4.1.3/right_redirect_uri_after_a_wrong_one": {200, ""},
		"RFC6749_4.1.3/owner_after_another_client":           {200, ""},
		"OIDC_3.1.3.3/user_deleted":                          {400, "invalid_grant"},
		"RFC6749_5.2/user_deleted":                           {400, "invalid_grant"},
	}
	// Without a CodeRedeemer the Provider consumes the code before it can
	// check the request: a refused request uses it up, and the right one
	// afterwards is a replay.
	afterRefusal := map[string]bool{
		"RFC7636_4.6/right_verifier_after_a_wrong_one":       true,
		"RFC6749_4.1.3/right_redirect_uri_after_a_wrong_one": true,
		"RFC6749_4.1.3/owner_after_another_client":           true,
	}
	for _, sc := range scenarios {
		fast, slow := results[0][sc.name], results[1][sc.name]
		if w := want[sc.name]; fast.status != w.status || fast.err != w.err {
			t.Errorf("%s: %d %q; want %d %q", sc.name, fast.status, fast.err, w.status, w.err)
		}
		if afterRefusal[sc.name] {
			if slow.status != http.StatusBadRequest || slow.err != "invalid_grant" {
				t.Errorf("%s: ConsumeAuthCode+CreateTokens path %d %q; want 400 invalid_grant", sc.name, slow.status, slow.err)
			}
			continue
		}
		// What the client sees is the same on both paths; so is what
		// stays in the store: the delivered tokens (none after a replay)
		// and nothing else.
		if !fast.same(slow) {
			t.Errorf("%s: RedeemAuthCode path %+v; ConsumeAuthCode+CreateTokens path %+v", sc.name, fast, slow)
		}
	}
	for _, name := range []string{"OIDC_3.1.3.3/user_deleted", "RFC6749_5.2/user_deleted"} {
		if o := results[0][name]; o.issued == 0 || o.storedLeft != 0 {
			t.Errorf("%s: RedeemAuthCode stored %d tokens and left %d; want them removed", name, o.issued, o.storedLeft)
		}
	}
	if o := results[0]["OIDC_3.1.3.3/success_with_id_token"]; !o.idToken {
		t.Errorf("OpenID Connect redemption without an ID token: %+v", o)
	}
}

// pathOutcome is what a client got from its last token request, in a test
// that runs the same requests through two store paths, and what stayed in
// the store of the tokens the store calls stored.
type pathOutcome struct {
	status             int
	err, description   string
	idToken            bool
	storedLeft, issued int
}

// same reports whether clients see the same on both paths, and the same
// tokens stay in the store (the delivered ones, none after a refusal).
func (o pathOutcome) same(p pathOutcome) bool {
	return o.status == p.status && o.err == p.err && o.description == p.description && o.idToken == p.idToken &&
		o.storedLeft == p.storedLeft
}

// observePath makes the outcome of response r, stored being the hashes of the
// tokens the store calls stored; the tokens r delivers must be stored.
func observePath(e *testEnv, r *response, stored []string) pathOutcome {
	e.t.Helper()
	ctx := context.Background()
	o := pathOutcome{status: r.status, err: r.str("error"), description: r.str("error_description"), idToken: r.str("id_token") != "",
		issued: len(stored)}
	for _, h := range stored {
		if _, err := e.store.Token(ctx, h); err == nil {
			o.storedLeft++
		} else if !errors.Is(err, oauthd.ErrNotFound) {
			e.t.Fatal(err)
		}
	}
	if r.status == http.StatusOK {
		for _, k := range []string{"access_token", "refresh_token"} {
			if _, err := e.store.Token(ctx, oauthd.HashToken(r.str(k))); err != nil {
				e.t.Errorf("the %s delivered is not stored: %v", k, err)
			}
		}
	}
	return o
}

// allowOpenID lets the test client ask for openid.
func allowOpenID(e *testEnv) {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.store.Client(ctx, clientID)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Scopes = append(c.Scopes, oauthd.ScopeOpenID)
	if err := e.store.UpdateClient(ctx, c); err != nil {
		e.t.Fatal(err)
	}
}

// runStorePaths runs each of n scenarios on every path, each as a subtest
// path/name(scenario), and returns the outcomes by path, then scenario
// name.
func runStorePaths(t *testing.T, paths []string, n int, name func(scenario int) string, run func(t *testing.T, path, scenario int) pathOutcome) []map[string]pathOutcome {
	results := make([]map[string]pathOutcome, len(paths))
	for i, p := range paths {
		results[i] = map[string]pathOutcome{}
		t.Run(p, func(t *testing.T) {
			for j := range n {
				sc := name(j)
				t.Run(sc, func(t *testing.T) { results[i][sc] = run(t, i, j) })
			}
		})
	}
	return results
}

// keysDownStore is a store whose signing keys cannot be read while down
// is set; with redeemer, it also redeems codes in one write (as
// sqlitestore, pgstore and memstore do).
type keysDownStore struct {
	oauthd.Storage
	down *atomic.Bool
}

func (s keysDownStore) SigningKeys(ctx context.Context) ([]*oauthd.SigningKey, error) {
	if s.down.Load() {
		return nil, fmt.Errorf("keys unreadable: %w", oauthd.ErrUnavailable)
	}
	return s.Storage.SigningKeys(ctx)
}

type keysDownRedeemer struct {
	keysDownStore
	oauthd.CodeRedeemer
}

// RFC 6749 §4.1.2, §10.5: a code is used once, but a token request the
// server cannot answer (the ID token's signing key cannot be had) must not
// use it up: the client's retry would be a replay, and revoke the grant.
// So the key is had before the code is consumed, and the retry succeeds.
// A code without openid needs no key: it is redeemed all the same.
func TestCodeNotUsedUpWhenIDTokenCannotBeSigned(t *testing.T) {
	for _, redeemer := range []bool{true, false} {
		t.Run(fmt.Sprintf("CodeRedeemer=%v", redeemer), func(t *testing.T) {
			var down atomic.Bool
			down.Store(true)
			e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage {
				if redeemer {
					return keysDownRedeemer{keysDownStore{s, &down}, s.(oauthd.CodeRedeemer)}
				}
				return keysDownStore{s, &down}
			})
			addOIDCClients(t, e)
			code := func(scope string) string {
				u := e.authorize(e.browser(), e.oidcURL("scope", scope), "approve")
				if c := u.Query().Get("code"); c != "" {
					return c
				}
				t.Fatalf("no code: %s", u)
				return ""
			}
			f := func(c string) url.Values {
				return form("grant_type", "authorization_code", "code", c, "redirect_uri", oidcRedirectURI)
			}
			if redeemer {
				if r := e.token(oidcAuth, f(code("email"))); r.status != http.StatusOK || r.str("id_token") != "" {
					t.Errorf("a code without openid while the keys are unreadable: %d %s; want its tokens", r.status, r.body)
				}
			}
			c := code("openid")
			if r := e.token(oidcAuth, f(c)); r.status != http.StatusServiceUnavailable || r.str("error") != oauthd.ErrorTemporarilyUnavailable {
				t.Fatalf("token request with the keys unreadable: %d %s; want 503 temporarily_unavailable", r.status, r.body)
			}
			down.Store(false)
			r := e.token(oidcAuth, f(c))
			if r.status != http.StatusOK || r.str("id_token") == "" {
				t.Fatalf("the client's retry: %d %s; want the tokens and an ID token (the code was not used up)", r.status, r.body)
			}
			// And the grant was not revoked: its access token works.
			if ui := e.userinfo(t, r.str("access_token")); ui.status != http.StatusOK {
				t.Errorf("userinfo after the retry: %d %s; want 200", ui.status, ui.body)
			}
		})
	}
}
