package oauthd

import (
	"testing"
	"time"
)

// newTokens builds the response's tokens in the response's own memory and
// the records in another allocation: every token is a well-formed
// credential of its own, the records hold its hash, and a token keeps its
// value while later ones are made.
func TestNewTokens(t *testing.T) {
	p, err := New(Config{Issuer: "https://auth.example.com", Pages: noPages{}}, &keyStore{})
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{ID: "c", AccessTokenTTL: time.Minute, RefreshTokenTTL: time.Hour}
	type kept struct{ at, rt, atHash, rtHash string }
	var all []kept
	seen := map[string]bool{}
	for i := range 100 {
		refresh := i%2 == 0
		resp, toks := p.newTokens(c, "g", "u", []string{"a", "b"}, time.Time{}, refresh)
		if len(toks) != map[bool]int{false: 1, true: 2}[refresh] || cap(toks) != len(toks) {
			t.Fatalf("refresh %v: %d records (cap %d)", refresh, len(toks), cap(toks))
		}
		k := kept{at: resp.AccessToken, atHash: toks[0].Hash}
		if refresh {
			k.rt, k.rtHash = resp.RefreshToken, toks[1].Hash
			if toks[1].Kind != RefreshToken || resp.RefreshTokenExpiresIn != 3600 {
				t.Fatalf("refresh record %+v, response %+v", toks[1], resp)
			}
		} else if resp.RefreshToken != "" {
			t.Fatalf("a refresh token without refresh: %+v", resp)
		}
		if toks[0].Kind != AccessToken || resp.ExpiresIn != 60 || resp.Scope != "a b" || resp.TokenType != "Bearer" {
			t.Fatalf("access record %+v, response %+v", toks[0], resp)
		}
		for _, tok := range []string{k.at, k.rt} {
			if tok == "" {
				continue
			}
			if _, ok := timePrefix(tok); !ok || len(tok) != 60 || seen[tok] {
				t.Fatalf("token %q: not a new credential", tok)
			}
			seen[tok] = true
		}
		all = append(all, k)
	}
	for _, k := range all {
		if HashToken(k.at) != k.atHash || (k.rt != "" && HashToken(k.rt) != k.rtHash) {
			t.Fatalf("a token changed after it was made: %+v", k)
		}
	}
}
