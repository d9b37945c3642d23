package oauthd

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyStore is a Storage that only keeps signing keys and knows no client:
// enough for the key manager and ID token signing, without importing a
// store package (which would import this one); the KeyStore of this
// package's key tests.
type keyStore struct {
	Storage // nil: any other method panics
	mu      sync.Mutex
	keys    []*SigningKey
}

func (s *keyStore) CreateSigningKey(_ context.Context, k *SigningKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range s.keys {
		if o.ID == k.ID {
			return ErrAlreadyExists
		}
	}
	c := *k
	s.keys = append(s.keys, &c)
	slices.SortFunc(s.keys, func(a, b *SigningKey) int { return a.NotBefore.Compare(b.NotBefore) })
	return nil
}

func (s *keyStore) SigningKeys(context.Context) ([]*SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*SigningKey, len(s.keys))
	for i, k := range s.keys {
		c := *k
		out[i] = &c
	}
	return out, nil
}

func (s *keyStore) DeleteSigningKey(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, k := range s.keys {
		if k.ID == id {
			s.keys = slices.Delete(s.keys, i, i+1)
			return nil
		}
	}
	return ErrNotFound
}

func (s *keyStore) Client(context.Context, string) (*Client, error) { return nil, ErrNotFound }

// noPages renders nothing; the ID token target serves no page.
type noPages struct{}

func (noPages) Login(http.ResponseWriter, *http.Request, *LoginPage)       {}
func (noPages) Consent(http.ResponseWriter, *http.Request, *ConsentPage)   {}
func (noPages) Error(http.ResponseWriter, *http.Request, *ErrorPage)       {}
func (noPages) FormPost(http.ResponseWriter, *http.Request, *FormPostPage) {}
func (noPages) Home(http.ResponseWriter, *http.Request, *HomePage)         {}
func (noPages) Logout(http.ResponseWriter, *http.Request, *LogoutPage)     {}
func (noPages) Static() http.Handler                                       { return http.NotFoundHandler() }

// keyedProvider is a Provider of https://issuer.example on a keyStore, its
// clock fixed, with its signing keys made.
func keyedProvider(tb testing.TB) *Provider {
	tb.Helper()
	p, err := New(Config{Issuer: "https://issuer.example", Pages: noPages{}, Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}, &keyStore{})
	if err != nil {
		tb.Fatal(err)
	}
	if err := p.Keys().Ensure(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return p
}

// FuzzIDTokenHintTamper starts from genuine ID tokens the server signed
// with each algorithm (RS256, ES256, EdDSA) and tampers with them: a
// changed byte, inserted text, or a whole forged token (alg none, HS256
// keyed with the public key, another key's kid, a re-used signature on
// other claims). ParseIDTokenHint must accept a token only if it says what
// a genuine token says: same subject, same audience.
func FuzzIDTokenHintTamper(f *testing.F) {
	ctx := context.Background()
	p := keyedProvider(f)
	user := &User{ID: "user-1", Username: "alice"}
	var genuine []string
	for _, alg := range SigningAlgorithms() {
		tok, err := p.idToken(ctx, &idTokenInput{client: &Client{ID: "client-" + alg, IDTokenSignedResponseAlg: alg}, user: user, nonce: "n"})
		if err != nil {
			f.Fatal(err)
		}
		if h, err := p.ParseIDTokenHint(ctx, tok); err != nil || h.Subject != user.ID {
			f.Fatalf("the genuine %s token does not verify: %v", alg, err)
		}
		genuine = append(genuine, tok)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	header := func(tok string) map[string]any {
		var h map[string]any
		b, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
		json.Unmarshal(b, &h)
		return h
	}
	forge := func(h map[string]any, claims string, sig string) string {
		hb, _ := json.Marshal(h)
		return b64(hb) + "." + b64([]byte(claims)) + "." + sig
	}
	other := `{"iss":"https://issuer.example","sub":"admin","aud":"client-RS256","iat":1800000000,"exp":1900000000}`
	jwks, _ := p.keys.publicKeys(ctx)
	pub, _ := json.Marshal(jwks[0])
	for i, tok := range genuine {
		parts := strings.Split(tok, ".")
		h := header(tok)
		f.Add(i, uint(0), byte(0), "", false)
		f.Add(i, uint(len(parts[0])+5), byte('A'), "", false)
		f.Add(i, uint(len(tok)-1), byte('B'), "", false)
		f.Add(i, uint(len(tok)), byte(0), "AA", false)
		// The genuine signature on other claims.
		f.Add(i, uint(0), byte(0), parts[0]+"."+b64([]byte(other))+"."+parts[2], true)
		// alg none with the genuine kid.
		none := map[string]any{"alg": "none", "kid": h["kid"], "typ": "JWT"}
		f.Add(i, uint(0), byte(0), forge(none, other, ""), true)
		// HS256 keyed with the published public key (algorithm confusion).
		hs := map[string]any{"alg": "HS256", "kid": h["kid"], "typ": "JWT"}
		hb, _ := json.Marshal(hs)
		signing := b64(hb) + "." + b64([]byte(other))
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(signing))
		f.Add(i, uint(0), byte(0), signing+"."+b64(m.Sum(nil)), true)
		// Another algorithm with this key's kid.
		for _, alg := range SigningAlgorithms() {
			if alg != h["alg"] {
				f.Add(i, uint(0), byte(0), forge(map[string]any{"alg": alg, "kid": h["kid"]}, other, parts[2]), true)
			}
		}
		// A JSON serialization and an embedded jwk header.
		f.Add(i, uint(0), byte(0), `{"payload":"`+parts[1]+`","protected":"`+parts[0]+`","signature":"`+parts[2]+`"}`, true)
		f.Add(i, uint(0), byte(0), forge(map[string]any{"alg": h["alg"], "kid": h["kid"], "jwk": json.RawMessage(pub)}, other, parts[2]), true)
	}
	f.Fuzz(func(t *testing.T, which int, pos uint, b byte, text string, whole bool) {
		base := genuine[uint(which)%uint(len(genuine))]
		tok := text
		if !whole {
			i := int(pos % uint(len(base)+1))
			if text != "" {
				tok = base[:i] + text + base[i:]
			} else if i < len(base) {
				tok = base[:i] + string([]byte{b}) + base[i+1:]
			} else {
				tok = base + string([]byte{b})
			}
		}
		h, err := p.ParseIDTokenHint(ctx, tok)
		if err != nil {
			return
		}
		for _, g := range genuine {
			want, _ := p.ParseIDTokenHint(ctx, g)
			if h.Subject == want.Subject && slices.Equal(h.Audience, want.Audience) && h.ExpiresAt.Equal(want.ExpiresAt) {
				return // the same statement (base64 may encode it in more than one way)
			}
		}
		t.Fatalf("accepted a forged hint %q: %+v", tok, h)
	})
}

// FuzzDeviceCookie: a device cookie (device.go) is accepted only as this
// server signed it, for the user it names, with the user's password as it
// is: any other value a browser sends, a tampered one, another user's, an
// ID token (signed with the same keys), counts for nothing, and a value
// accepted is counted as the genuine cookie (its ID), whatever its
// spelling.
func FuzzDeviceCookie(f *testing.F) {
	ctx := context.Background()
	p := keyedProvider(f)
	user := &User{ID: "user-1", Username: "alice", PasswordHash: "hash-1"}
	other := &User{ID: "user-2", Username: "bob", PasswordHash: "hash-2"}
	genuine, err := p.deviceToken(ctx, user)
	if err != nil {
		f.Fatal(err)
	}
	req := func(v string) *http.Request {
		r, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://issuer.example"+LoginPath, nil)
		r.Header.Set("Cookie", p.deviceCookie+"="+v)
		return r
	}
	want, ok := p.device(req(genuine), user)
	if !ok {
		f.Fatal("the genuine device cookie is not accepted")
	}
	if _, ok := p.device(req(genuine), other); ok {
		f.Fatal("the device cookie is accepted for another user")
	}
	idt, err := p.idToken(ctx, &idTokenInput{client: &Client{ID: "c", IDTokenSignedResponseAlg: AlgEdDSA}, user: user})
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(genuine, ".")
	f.Add(uint(0), byte(0), "", false)
	f.Add(uint(len(genuine)-1), byte('B'), "", false)
	f.Add(uint(len(parts[0])+3), byte('x'), "", false)
	f.Add(uint(0), byte(0), idt, true)
	f.Add(uint(0), byte(0), parts[0]+"."+base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"https://issuer.example","sub":"user-1","jti":"x","pwd":"y","exp":1900000000}`))+"."+parts[2], true)
	f.Fuzz(func(t *testing.T, pos uint, b byte, text string, whole bool) {
		tok := text
		if !whole {
			i := int(pos % uint(len(genuine)+1))
			switch {
			case text != "":
				tok = genuine[:i] + text + genuine[i:]
			case i < len(genuine):
				tok = genuine[:i] + string([]byte{b}) + genuine[i+1:]
			default:
				tok = genuine + string([]byte{b})
			}
		}
		if key, ok := p.device(req(tok), user); ok && key != want {
			t.Fatalf("accepted a forged device cookie %q as %v", tok, key)
		}
		if _, ok := p.device(req(tok), other); ok {
			t.Fatalf("accepted %q for another user", tok)
		}
	})
}
