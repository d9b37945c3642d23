package oauthd_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
)

// RFC 6749 §3.3: repeated scope tokens count once and the order is kept,
// however many tokens a scope has (past a few, repeats are found in a set:
// a 64 KB scope of 16,000 tokens had cost 440 ms of CPU).
func TestParseScopeManyTokens(t *testing.T) {
	var b strings.Builder
	for i := range 16000 {
		fmt.Fprintf(&b, "s%d ", i%5000)
	}
	got, ok := oauthd.ParseScope(b.String())
	if !ok || len(got) != 5000 || got[0] != "s0" || got[4999] != "s4999" {
		t.Fatalf("ParseScope of 16,000 tokens, 5,000 distinct: %d tokens, ok %v; want the 5,000 in order", len(got), ok)
	}
	for _, tc := range []struct{ in, want string }{
		{"a b a c b", "a b c"},
		{strings.Repeat("x ", 40) + "y", "x y"},
	} {
		got, _ := oauthd.ParseScope(tc.in)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("ParseScope(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// OIDC Core §5.5: the claims parameter is one JSON object; a stray ] or }
// after it is invalid, as any other trailing data.
func TestParseClaimsRequestTrailingData(t *testing.T) {
	for _, s := range []string{`{"userinfo":{"email":null}}]`, `{"userinfo":{"email":null}}}`, `{"userinfo":{"email":null}} {}`, `{"userinfo":{"email":null}} x`} {
		if _, err := oauthd.ParseClaimsRequest(s); err == nil {
			t.Errorf("ParseClaimsRequest(%q) accepted it", s)
		}
	}
	if _, err := oauthd.ParseClaimsRequest(`{"userinfo":{"email":null}}  ` + "\n"); err != nil {
		t.Errorf("trailing spaces: %v", err)
	}
}
