package pgstore

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// marshal writes <, > and & as they are, not as six-byte HTML escapes
// (\u003c), and what it writes decodes to what was encoded.
func TestMarshalKeepsHTMLCharacters(t *testing.T) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := &oauthd.AuthRequest{ID: "req", ClientID: "web", RedirectURI: "https://rp.example/cb?a=1&b=2",
		State: strings.Repeat("<&>", 100), CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	b, err := marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `\u00`) || !strings.Contains(string(b), r.State) || strings.HasSuffix(string(b), "\n") {
		t.Errorf("marshal = %.120s...; want <, > and & unescaped and no newline", b)
	}
	escaped, _ := json.Marshal(r)
	// Five bytes less for each <, > and &: the state's, and the one in
	// the redirect URI.
	if want := len(escaped) - 5*(len(r.State)+1); len(b) != want {
		t.Errorf("marshal: %d bytes (json.Marshal %d); want %d", len(b), len(escaped), want)
	}
	var got oauthd.AuthRequest
	if err := json.Unmarshal(b, &got); err != nil || got.State != r.State || got.RedirectURI != r.RedirectURI || !got.ExpiresAt.Equal(r.ExpiresAt) {
		t.Errorf("decoded %+v, %v; want %+v", got, err, r)
	}
}
