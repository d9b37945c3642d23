package oauthd_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// FuzzParseClaimsRequest: the claims parameter parser (OIDC Core §5.5)
// never panics, and what it accepts has only objects or nulls per claim.
func FuzzParseClaimsRequest(f *testing.F) {
	for _, s := range []string{
		`{"userinfo":{"name":{"essential":true}}}`,
		`{"id_token":{"auth_time":{"essential":true},"acr":{"values":["1","2"]}},"userinfo":{"email":null}}`,
		`{"userinfo":[]}`, `{"userinfo":{"":null}}`, `{"id_token":{"x":{"essential":"yes"}}}`,
		`null`, `[]`, `{}`, `{"a":1} {}`, `{"userinfo":{"sub":{"value":"248289761001"}}}`,
		`{"userinfo":{"email":null}}]`, `{"userinfo":{"email":null}}}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cr, err := oauthd.ParseClaimsRequest(s)
		if err != nil {
			return
		}
		// What is accepted is one JSON value and nothing after it but
		// spaces (OIDC Core §5.5: the parameter is a JSON object).
		if !json.Valid([]byte(s)) {
			t.Fatalf("accepted %q, which is not one JSON value", s)
		}
		for _, m := range []map[string]*oauthd.ClaimRequest{cr.UserInfo, cr.IDToken} {
			for name := range m {
				if name == "" {
					t.Fatalf("accepted an empty claim name in %q", s)
				}
			}
		}
		if _, err := json.Marshal(cr); err != nil {
			t.Fatalf("accepted %q but cannot encode it: %v", s, err)
		}
	})
}

// FuzzParseIDTokenHint: id_token_hint verification never panics and
// accepts only tokens signed by the server's own keys.
func FuzzParseIDTokenHint(f *testing.F) {
	p, err := oauthd.New(oauthd.Config{Issuer: "http://localhost:8000", Pages: fakePages{}}, memstore.New())
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	if err := p.Keys().Ensure(ctx); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJSUzI1NiIsImtpZCI6IngifQ.eyJzdWIiOiJ4In0.AAAA",
		"eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJodHRwOi8vbG9jYWxob3N0OjgwMDAiLCJzdWIiOiJ4IiwiYXVkIjoiYyJ9.c2ln",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if h, err := p.ParseIDTokenHint(ctx, s); err == nil {
			t.Fatalf("accepted a hint the server never signed: %q -> %+v", s, h)
		}
	})
}
