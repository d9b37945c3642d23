package oauthd_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// rotationStore records the store calls that rotate refresh tokens, and
// the hashes of the tokens stored by them. It hides RotateRefreshTokenFunc
// of the store it wraps; rotatingStore shows it.
type rotationStore struct {
	oauthd.Storage
	mu                  sync.Mutex
	reads, rotates, fns int
	stored              []string
}

func (s *rotationStore) Token(ctx context.Context, hash string) (*oauthd.Token, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Storage.Token(ctx, hash)
}

func (s *rotationStore) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, successor []byte, next ...*oauthd.Token) (*oauthd.Token, error) {
	s.mu.Lock()
	s.rotates++
	s.mu.Unlock()
	old, err := s.Storage.RotateRefreshToken(ctx, oldHash, now, successor, next...)
	if err == nil {
		s.record(next)
	}
	return old, err
}

func (s *rotationStore) record(tokens []*oauthd.Token) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		s.stored = append(s.stored, t.Hash)
	}
}

type rotatingStore struct{ *rotationStore }

func (s rotatingStore) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	s.mu.Lock()
	s.fns++
	s.mu.Unlock()
	var next []*oauthd.Token
	old, err := s.Storage.(oauthd.RefreshRotator).RotateRefreshTokenFunc(ctx, hash, now, func(t *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		successor, toks, err := rotate(t)
		next = toks
		return successor, toks, err
	})
	if err == nil {
		s.record(next)
	}
	return old, err
}

// TestRefreshGrantStorePaths refreshes through a store that is an
// oauthd.RefreshRotator (the token looked up and rotated in one store call)
// and through one that is not (Token, then RotateRefreshToken), and checks
// that clients see the same answers on both: the same errors and
// descriptions, a refused refresh leaves the token usable, a reuse revokes
// the grant, a retry within the grace period gets the same tokens (with an
// ID token of its own when the grant has openid), and tokens that were not
// delivered are not left in the store.
func TestRefreshGrantStorePaths(t *testing.T) {
	// start redeems a code for the kv of the authorization request and
	// returns the token response.
	start := func(e *testEnv, kv ...string) *response {
		r := e.token(seedAuth, form("grant_type", "authorization_code", "code", e.code(kv...), "redirect_uri", redirectURI))
		if r.status != http.StatusOK || r.str("refresh_token") == "" {
			e.t.Fatalf("code exchange: %d %s", r.status, r.body)
		}
		return r
	}
	refresh := func(e *testEnv, auth, rt string, kv ...string) *response {
		return e.token(auth, form(append([]string{"grant_type", "refresh_token", "refresh_token", rt}, kv...)...))
	}
	mustOK := func(e *testEnv, r *response, what string) {
		if r.status != http.StatusOK {
			e.t.Fatalf("%s: %d %s", what, r.status, r.body)
		}
	}
	scenarios := []struct {
		name  string
		grace time.Duration
		run   func(e *testEnv) *response
	}{
		{"RFC6749_6/success", 0, func(e *testEnv) *response { return refresh(e, seedAuth, start(e).str("refresh_token")) }},
		{"RFC6749_6/narrower_scope", 0, func(e *testEnv) *response {
			return refresh(e, seedAuth, start(e, "scope", "openid email").str("refresh_token"), "scope", "email")
		}},
		// A refused refresh leaves the token as it was: the next,
		// right, request rotates it.
		{"RFC6749_6/wider_scope_then_right_scope", 0, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			if r := refresh(e, seedAuth, rt, "scope", "email profile"); r.str("error") != "invalid_scope" {
				e.t.Fatalf("wider scope: %d %s; want invalid_scope", r.status, r.body)
			}
			return refresh(e, seedAuth, rt)
		}},
		{"RFC6749_6/wider_scope", 0, func(e *testEnv) *response {
			return refresh(e, seedAuth, start(e).str("refresh_token"), "scope", "email profile")
		}},
		{"RFC6749_6/token_of_another_client_then_owner", 0, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			if r := refresh(e, basic("other", "other-secret"), rt); r.str("error") != "invalid_grant" {
				e.t.Fatalf("another client: %d %s; want invalid_grant", r.status, r.body)
			}
			return refresh(e, seedAuth, rt)
		}},
		{"RFC6749_6/token_of_another_client", 0, func(e *testEnv) *response {
			return refresh(e, basic("other", "other-secret"), start(e).str("refresh_token"))
		}},
		{"RFC6749_6/expired", 0, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			e.clock.Add(900*time.Second + time.Second)
			defer e.clock.Add(-900*time.Second - time.Second)
			return refresh(e, seedAuth, rt)
		}},
		{"RFC6749_6/unknown", 0, func(e *testEnv) *response { return refresh(e, seedAuth, "nope") }},
		{"RFC6749_6/access_token", 0, func(e *testEnv) *response { return refresh(e, seedAuth, start(e).str("access_token")) }},
		// RFC 9700 §4.14.2: a rotated token used again revokes the grant,
		// the successor with it.
		{"RFC9700_4.14.2/reuse", 0, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			next := refresh(e, seedAuth, rt)
			mustOK(e, next, "first refresh")
			if r := refresh(e, seedAuth, rt); r.str("error") != "invalid_grant" {
				e.t.Fatalf("reuse: %d %s; want invalid_grant", r.status, r.body)
			}
			return refresh(e, seedAuth, next.str("refresh_token"))
		}},
		{"RFC9700_4.14.2/retry_within_grace", 10 * time.Second, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			first := refresh(e, seedAuth, rt)
			mustOK(e, first, "first refresh")
			again := refresh(e, seedAuth, rt)
			mustOK(e, again, "retry")
			if again.str("access_token") != first.str("access_token") || again.str("refresh_token") != first.str("refresh_token") {
				e.t.Errorf("retry within the grace period got other tokens: %s / %s", first.body, again.body)
			}
			return again
		}},
		// A retry of a token whose successor was rotated in turn is a
		// replay: a stolen token must not lead, one grace period after
		// another, to the current one. The grant is revoked.
		{"RFC9700_4.14.2/retry_within_grace_after_the_successor_was_used", 10 * time.Second, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			first := refresh(e, seedAuth, rt)
			mustOK(e, first, "first refresh")
			second := refresh(e, seedAuth, first.str("refresh_token"))
			mustOK(e, second, "second refresh")
			if r := refresh(e, seedAuth, rt); r.str("error") != "invalid_grant" {
				e.t.Fatalf("replay of the first token: %d %s; want invalid_grant", r.status, r.body)
			}
			return refresh(e, seedAuth, second.str("refresh_token"))
		}},
		// A scope removed from the client's registration is not issued
		// again by a refresh, asked for or not, nor kept by the next
		// refresh token.
		{"registration/scope_removed", 0, func(e *testEnv) *response {
			rt := start(e, "scope", "openid email").str("refresh_token")
			setClientScopes(e, "openid")
			if r := refresh(e, seedAuth, rt, "scope", "email"); r.str("error") != "invalid_scope" {
				e.t.Fatalf("refresh asking for the removed scope: %d %s; want invalid_scope", r.status, r.body)
			}
			next := refresh(e, seedAuth, rt)
			mustOK(e, next, "refresh")
			if next.str("scope") != "openid" {
				e.t.Errorf("refresh after email was removed from the client: scope %q; want openid", next.str("scope"))
			}
			setClientScopes(e, "openid", "email")
			again := refresh(e, seedAuth, next.str("refresh_token"))
			if again.str("scope") != "openid" {
				e.t.Errorf("the next refresh, the scope registered again: %q; want openid (the grant was narrowed)", again.str("scope"))
			}
			return again
		}},
		{"OIDC_12.2/success_with_id_token", 0, func(e *testEnv) *response {
			return refresh(e, seedAuth, start(e, "scope", "openid email").str("refresh_token"))
		}},
		// The retry's ID token is for the access token it carries.
		{"OIDC_12.2/retry_within_grace_with_id_token", 10 * time.Second, func(e *testEnv) *response {
			rt := start(e, "scope", "openid email").str("refresh_token")
			mustOK(e, refresh(e, seedAuth, rt), "first refresh")
			return refresh(e, seedAuth, rt)
		}},
		// The user is gone by the time the ID token is made.
		{"OIDC_12.2/user_deleted", 0, func(e *testEnv) *response {
			rt := start(e, "scope", "openid email").str("refresh_token")
			if err := e.store.DeleteUser(context.Background(), e.user.ID); err != nil {
				e.t.Fatal(err)
			}
			return refresh(e, seedAuth, rt)
		}},
		{"RFC6749_5.2/user_deleted", 0, func(e *testEnv) *response {
			rt := start(e).str("refresh_token")
			if err := e.store.DeleteUser(context.Background(), e.user.ID); err != nil {
				e.t.Fatal(err)
			}
			return refresh(e, seedAuth, rt)
		}},
	}
	paths := []struct {
		name    string
		wrap    func(*rotationStore) oauthd.Storage
		rotator bool
	}{
		{"RotateRefreshTokenFunc", func(s *rotationStore) oauthd.Storage { return rotatingStore{s} }, true},
		{"Token+RotateRefreshToken", func(s *rotationStore) oauthd.Storage { return s }, false},
	}
	results := runStorePaths(t, []string{paths[0].name, paths[1].name}, len(scenarios), func(j int) string { return scenarios[j].name }, func(t *testing.T, i, j int) pathOutcome {
		path, sc := paths[i], scenarios[j]
		rs := &rotationStore{}
		e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage {
			rs.Storage = s
			return path.wrap(rs)
		}, func(c *oauthd.Config) {
			c.RefreshGracePeriod = sc.grace
			c.ClientCacheTTL = -1 // the token endpoint sees a client's change at once
		})
		allowOpenID(e)
		r := sc.run(e)
		rs.mu.Lock()
		hashes, reads, rotates, fns := rs.stored, rs.reads, rs.rotates, rs.fns
		rs.mu.Unlock()
		o := observePath(e, r, hashes)
		if o.status == http.StatusOK && o.idToken {
			checkIDTokenFor(t, e, r)
		}
		if path.rotator && (rotates != 0 || fns == 0) {
			t.Errorf("RotateRefreshToken %d, RotateRefreshTokenFunc %d calls; want RotateRefreshTokenFunc only", rotates, fns)
		}
		if !path.rotator && (fns != 0 || reads == 0) {
			t.Errorf("Token %d, RotateRefreshTokenFunc %d calls; want Token", reads, fns)
		}
		return o
	})

	want := map[string]struct {
		status  int
		err     string
		idToken bool
	}{
		"RFC6749_6/success":                                              {200, "", false},
		"RFC6749_6/narrower_scope":                                       {200, "", false},
		"RFC6749_6/wider_scope_then_right_scope":                         {200, "", false},
		"RFC6749_6/wider_scope":                                          {400, "invalid_scope", false},
		"RFC6749_6/token_of_another_client_then_owner":                   {200, "", false},
		"RFC6749_6/token_of_another_client":                              {400, "invalid_grant", false},
		"RFC6749_6/expired":                                              {400, "invalid_grant", false},
		"RFC6749_6/unknown":                                              {400, "invalid_grant", false},
		"RFC6749_6/access_token":                                         {400, "invalid_grant", false},
		"RFC9700_4.14.2/reuse":                                           {400, "invalid_grant", false},
		"RFC9700_4.14.2/retry_within_grace":                              {200, "", false},
		"RFC9700_4.14.2/retry_within_grace_after_the_successor_was_used": {400, "invalid_grant", false},
		"registration/scope_removed":                                     {200, "", true},
		"OIDC_12.2/success_with_id_token":                                {200, "", true},
		"OIDC_12.2/retry_within_grace_with_id_token":                     {200, "", true},
		"OIDC_12.2/user_deleted":                                         {400, "invalid_grant", false},
		"RFC6749_5.2/user_deleted":                                       {400, "invalid_grant", false},
	}
	for _, sc := range scenarios {
		fast, slow := results[0][sc.name], results[1][sc.name]
		if w := want[sc.name]; fast.status != w.status || fast.err != w.err || fast.idToken != w.idToken {
			t.Errorf("%s: %d %q, ID token %v; want %d %q, ID token %v", sc.name, fast.status, fast.err, fast.idToken, w.status, w.err, w.idToken)
		}
		if !fast.same(slow) {
			t.Errorf("%s: RotateRefreshTokenFunc path %+v; Token+RotateRefreshToken path %+v", sc.name, fast, slow)
		}
	}
}

// checkIDTokenFor checks the claims of the ID token of a refresh response
// (OIDC Core §12.2): for this client and user, no nonce, and at_hash of the
// access token beside it (RS256, the default: the left half of SHA-256).
func checkIDTokenFor(t *testing.T, e *testEnv, r *response) {
	t.Helper()
	parts := strings.Split(r.str("id_token"), ".")
	if len(parts) != 3 {
		t.Fatalf("id_token is not a JWS: %q", r.str("id_token"))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(r.str("access_token")))
	if want := base64.RawURLEncoding.EncodeToString(sum[:16]); c["at_hash"] != want {
		t.Errorf("at_hash = %v; want the access token's, %s", c["at_hash"], want)
	}
	if c["aud"] != clientID || c["sub"] != e.user.ID {
		t.Errorf("aud %v, sub %v; want %s, %s", c["aud"], c["sub"], clientID, e.user.ID)
	}
	if _, ok := c["nonce"]; ok {
		t.Errorf("a refresh's ID token has a nonce: %v", c["nonce"])
	}
}

// setClientScopes replaces the test client's registered scopes.
func setClientScopes(e *testEnv, scopes ...string) {
	e.t.Helper()
	ctx := context.Background()
	c, err := e.store.Client(ctx, clientID)
	if err != nil {
		e.t.Fatal(err)
	}
	c.Scopes = scopes
	if err := e.store.UpdateClient(ctx, c); err != nil {
		e.t.Fatal(err)
	}
}
