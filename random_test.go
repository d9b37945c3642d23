package oauthd_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// Grant IDs are unique and grow with the clock (as strings), so B-tree
// stores append them to their grant index.
func TestNewGrantID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := oauthd.NewGrantID()
		if len(id) != 38 {
			t.Fatalf("grant ID %q has %d characters; want 38", id, len(id))
		}
		if seen[id] {
			t.Fatalf("grant ID %q twice", id)
		}
		seen[id] = true
		if n, err := strconv.ParseUint(id[:16], 16, 64); err != nil || time.Since(time.Unix(0, int64(n))).Abs() > time.Minute {
			t.Fatalf("grant ID %q: the prefix is not the time in nanoseconds as hex", id)
		}
		if _, err := base64.RawURLEncoding.DecodeString(id[16:]); err != nil {
			t.Fatalf("grant ID %q: the rest is not base64url: %v", id, err)
		}
		if id[:16] < prev {
			t.Fatalf("grant ID %q sorts before the previous one's time %q", id, prev)
		}
		prev = id[:16]
	}
}

// Credentials start with the time; their hashes keep that prefix, so
// stores index them in issue order; anything else hashes as before.
func TestNewCredential(t *testing.T) {
	prevHash := ""
	seen := map[string]bool{}
	for range 1000 {
		c := oauthd.NewCredential()
		if len(c) != 60 || c[16] != '.' || seen[c] {
			t.Fatalf("credential %q: want 60 characters, a dot at 16, never twice", c)
		}
		seen[c] = true
		if n, err := strconv.ParseUint(c[:16], 16, 64); err != nil || time.Since(time.Unix(0, int64(n))).Abs() > time.Minute {
			t.Fatalf("credential %q: the prefix is not the time in nanoseconds as hex", c)
		}
		h := oauthd.HashToken(c)
		if sum := sha256.Sum256([]byte(c)); h[17:] != base64.RawURLEncoding.EncodeToString(sum[:]) {
			t.Fatalf("hash %q of %q: want the prefix and base64url(SHA-256) of the whole credential", h, c)
		}
		if h[:17] != c[:17] || len(h) != 17+43 || strings.Contains(h, c[17:]) {
			t.Fatalf("hash %q of %q: want the time prefix and a SHA-256, not the secret part", h, c)
		}
		if h[:16] < prevHash {
			t.Fatalf("hash %q sorts before the previous one's time %q", h, prevHash)
		}
		prevHash = h[:16]
	}
	// A 43-character token of the earlier format, or anything that only
	// looks like a prefix, hashes to the plain SHA-256.
	for _, tok := range []string{oauthd.RandomToken(), "0123456789abcdeX.rest", "0123456789abcdef.", "short"} {
		sum := sha256.Sum256([]byte(tok))
		if got, want := oauthd.HashToken(tok), base64.RawURLEncoding.EncodeToString(sum[:]); got != want {
			t.Errorf("HashToken(%q) = %q; want %q", tok, got, want)
		}
	}
}

// Every request gets its own request id, 16 lower-case hex digits, sent as
// X-Request-Id and given to the pages (RequestID); an id kept after its
// request keeps its value while later requests get theirs.
func TestRequestIDs(t *testing.T) {
	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: fakePages{}}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	type kept struct{ hdr, page string }
	var ids []kept
	seen := map[string]bool{}
	for range 200 {
		w := httptest.NewRecorder()
		p.ServeHTTP(w, httptest.NewRequest("GET", "/no-such-page", nil))
		var page struct{ RequestID string }
		if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil {
			t.Fatal(err)
		}
		id := w.Header().Get("X-Request-Id")
		if id != page.RequestID || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" || seen[id] {
			t.Fatalf("request id %q, page's %q (seen before: %v)", id, page.RequestID, seen[id])
		}
		seen[id] = true
		ids = append(ids, kept{w.Header()["X-Request-Id"][0], page.RequestID})
	}
	for _, k := range ids {
		if k.hdr != k.page {
			t.Fatalf("a kept request id changed: %q, %q", k.hdr, k.page)
		}
	}
}
