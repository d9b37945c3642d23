package storetest

import (
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// base is the suite's "now": a fixed instant with sub-millisecond digits, so
// that the suite notices a store that loses milliseconds. No store reads the
// clock; every time is passed in.
var base = time.Date(2030, time.March, 4, 5, 6, 7, 891_234_567, time.UTC)

// cet is a zone other than UTC, to check that stores keep the instant.
var cet = time.FixedZone("CET", 3600)

// at returns base moved by d.
func at(d time.Duration) time.Time { return base.Add(d) }

// ms truncates t to the millisecond in UTC; the zero time stays zero.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Truncate(time.Millisecond).UTC()
}

// strs makes an empty slice nil.
func strs(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return slices.Clone(s)
}

// blob makes an empty byte slice nil.
func blob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return slices.Clone(b)
}

// The norm functions return a copy of a record that compares equal, with
// reflect.DeepEqual, to any faithful round-trip of it: times truncated to
// the millisecond in UTC, empty slices and maps nil.

func normClient(c *oauthd.Client) oauthd.Client {
	n := *c
	n.RedirectURIs = strs(c.RedirectURIs)
	n.PostLogoutRedirectURIs = strs(c.PostLogoutRedirectURIs)
	n.GrantTypes = strs(c.GrantTypes)
	n.ResponseTypes = strs(c.ResponseTypes)
	n.Scopes = strs(c.Scopes)
	n.CreatedAt = ms(c.CreatedAt)
	return n
}

func normUser(u *oauthd.User) oauthd.User {
	n := *u
	n.Claims = nil
	if len(u.Claims) > 0 {
		n.Claims = maps.Clone(u.Claims)
	}
	n.CreatedAt = ms(u.CreatedAt)
	n.UpdatedAt = ms(u.UpdatedAt)
	n.PasswordChangedAt = ms(u.PasswordChangedAt)
	return n
}

func normAuthRequest(r *oauthd.AuthRequest) oauthd.AuthRequest {
	n := *r
	n.Scopes = strs(r.Scopes)
	n.Prompt = strs(r.Prompt)
	n.UILocales = strs(r.UILocales)
	n.ACRValues = strs(r.ACRValues)
	n.CreatedAt = ms(r.CreatedAt)
	n.ExpiresAt = ms(r.ExpiresAt)
	return n
}

func normCode(c *oauthd.AuthCode) oauthd.AuthCode {
	n := *c
	n.Scopes = strs(c.Scopes)
	n.AuthTime = ms(c.AuthTime)
	n.IssuedAt = ms(c.IssuedAt)
	n.ExpiresAt = ms(c.ExpiresAt)
	n.UsedAt = ms(c.UsedAt)
	return n
}

func normToken(t *oauthd.Token) oauthd.Token {
	n := *t
	n.Scopes = strs(t.Scopes)
	n.AuthTime = ms(t.AuthTime)
	n.IssuedAt = ms(t.IssuedAt)
	n.ExpiresAt = ms(t.ExpiresAt)
	n.RotatedAt = ms(t.RotatedAt)
	n.Successor = blob(t.Successor)
	return n
}

func normSession(s *oauthd.Session) oauthd.Session {
	n := *s
	n.AuthTime = ms(s.AuthTime)
	n.ExpiresAt = ms(s.ExpiresAt)
	return n
}

func normConsent(c *oauthd.Consent) oauthd.Consent {
	n := *c
	n.Scopes = strs(c.Scopes)
	n.CreatedAt = ms(c.CreatedAt)
	n.UpdatedAt = ms(c.UpdatedAt)
	return n
}

func normKey(k *oauthd.SigningKey) oauthd.SigningKey {
	n := *k
	n.Private = blob(k.Private)
	n.NotBefore = ms(k.NotBefore)
	n.RetireAt = ms(k.RetireAt)
	n.ExpiresAt = ms(k.ExpiresAt)
	n.CreatedAt = ms(k.CreatedAt)
	return n
}

// must fails the test when err is not nil.
func must(t testing.TB, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails the test unless errors.Is(err, want); want may be nil.
func wantErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v; want %v", what, err, want)
	}
}

// Fixtures. Every field is set, with sub-millisecond times and a zone other
// than UTC here and there, so a round-trip that drops anything shows.

func fullClient(id string) *oauthd.Client {
	return &oauthd.Client{
		ID:                       id,
		SecretHash:               "$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
		Name:                     "Client " + id,
		RedirectURIs:             []string{"https://www.example.com/redirect", "http://127.0.0.1/callback"},
		PostLogoutRedirectURIs:   []string{"https://www.example.com/bye"},
		GrantTypes:               []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken},
		ResponseTypes:            []string{"code"},
		Scopes:                   []string{"openid", "email", "profile"},
		Public:                   false,
		TokenEndpointAuthMethod:  oauthd.AuthMethodPost,
		RequirePKCE:              true,
		SkipConsent:              true,
		AccessTokenTTL:           5 * time.Minute,
		RefreshTokenTTL:          15*time.Minute + 250*time.Millisecond,
		IDTokenSignedResponseAlg: "ES256",
		LogoURI:                  "https://www.example.com/logo.png",
		ClientURI:                "https://www.example.com/",
		CreatedAt:                at(-time.Hour).In(cet),
	}
}

func fullUser(id, username string) *oauthd.User {
	return &oauthd.User{
		ID:           id,
		Username:     username,
		PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdHNhbHQ$cGFzc3dvcmRoYXNo",
		Claims: map[string]any{
			"name":           "Ada Lovelace",
			"email":          username + "@example.com",
			"email_verified": true,
			"phone_verified": false,
			"age":            float64(36),
			"address": map[string]any{
				"country":  "GB",
				"locality": "London",
				"geo":      map[string]any{"lat": 51.5, "lng": -0.12},
			},
			"groups":  []any{"admins", "analysts"},
			"nothing": nil,
		},
		CreatedAt:         at(-48 * time.Hour).In(cet),
		UpdatedAt:         at(-time.Minute),
		PasswordChangedAt: at(-2 * time.Minute),
	}
}

func fullAuthRequest(id string) *oauthd.AuthRequest {
	maxAge := int64(3600)
	return &oauthd.AuthRequest{
		ID:                  id,
		BrowserHash:         "browser-" + id,
		ClientID:            "test_client",
		RedirectURI:         "https://www.example.com/redirect",
		ResponseType:        "code",
		ResponseMode:        "form_post",
		Scopes:              []string{"openid", "email"},
		State:               "af0ifjsldkj",
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Nonce:               "n-0S6_WzA2Mj",
		Prompt:              []string{"login", "consent"},
		MaxAge:              &maxAge,
		LoginHint:           "admin",
		IDTokenHintSubject:  "user-1",
		UILocales:           []string{"de-DE", "en"},
		Display:             "page",
		ACRValues:           []string{"urn:mace:incommon:iap:silver"},
		Claims:              `{"id_token":{"email":{"essential":true}}}`,
		CreatedAt:           at(0).In(cet),
		ExpiresAt:           at(10 * time.Minute),
	}
}

func fullCode(hash string) *oauthd.AuthCode {
	return &oauthd.AuthCode{
		Hash:                hash,
		GrantID:             "grant-" + hash,
		ClientID:            "test_client",
		Subject:             "user-1",
		RedirectURI:         "https://www.example.com/redirect",
		Scopes:              []string{"openid", "email"},
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Nonce:               "n-0S6_WzA2Mj",
		Claims:              `{"userinfo":{"email":null}}`,
		AuthTime:            at(-time.Minute).In(cet),
		IssuedAt:            at(0),
		ExpiresAt:           at(time.Minute),
	}
}

func fullToken(hash, kind, grantID string) *oauthd.Token {
	return &oauthd.Token{
		Hash:      hash,
		Kind:      kind,
		GrantID:   grantID,
		ClientID:  "test_client",
		Subject:   "user-1",
		Scopes:    []string{"openid", "email"},
		Claims:    `{"userinfo":{"email":null}}`,
		AuthTime:  at(-time.Minute).In(cet),
		IssuedAt:  at(0),
		ExpiresAt: at(time.Hour),
	}
}

func fullSession(hash string) *oauthd.Session {
	return &oauthd.Session{
		Hash:      hash,
		UserID:    "user-1",
		AuthTime:  at(-time.Minute).In(cet),
		ExpiresAt: at(24 * time.Hour),
	}
}

func fullConsent(userID, clientID string) *oauthd.Consent {
	return &oauthd.Consent{
		UserID:    userID,
		ClientID:  clientID,
		Scopes:    []string{"openid", "email"},
		CreatedAt: at(-time.Hour).In(cet),
		UpdatedAt: at(-time.Hour),
	}
}

func fullKey(id string, notBefore time.Time) *oauthd.SigningKey {
	return &oauthd.SigningKey{
		ID:        id,
		Algorithm: "ES256",
		Private:   []byte(`{"kty":"EC","crv":"P-256","kid":"` + id + `","d":"c2VjcmV0"}` + "\x00\xff"),
		NotBefore: notBefore,
		RetireAt:  notBefore.Add(30 * 24 * time.Hour),
		ExpiresAt: notBefore.Add(60 * 24 * time.Hour).In(cet),
		CreatedAt: notBefore.Add(-24 * time.Hour),
	}
}

// oneWinner checks the outcomes of concurrent calls of a single-use
// operation (RFC 6749 §4.1.2, §10.4): exactly one succeeded and every other
// got ErrAlreadyUsed. It returns the index of the one that succeeded.
func oneWinner(t testing.TB, op string, errs []error) int {
	t.Helper()
	return oneWinnerLosing(t, op, errs, oauthd.ErrAlreadyUsed)
}

// oneWinnerLosing is oneWinner for an operation whose losers get lost.
func oneWinnerLosing(t testing.TB, op string, errs []error, lost error) int {
	t.Helper()
	winner, losers := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("%s succeeded in goroutines %d and %d", op, winner, i)
			}
			winner = i
		case errors.Is(err, lost):
			losers++
		default:
			t.Errorf("%s in goroutine %d: %v", op, i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("%s: no call succeeded; %d got %v", op, losers, lost)
	}
	if losers != len(errs)-1 {
		t.Errorf("%s: %d calls got %v; want %d", op, losers, lost, len(errs)-1)
	}
	return winner
}
