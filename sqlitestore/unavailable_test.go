package sqlitestore

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// A closed store (a server shutting down) answers reads and writes with an
// error that wraps oauthd.ErrUnavailable, which the Provider turns into 503
// and Retry-After rather than 500; an unknown record stays ErrNotFound.
func TestClosedStoreIsUnavailable(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "u.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, "nope"); !errors.Is(err, oauthd.ErrNotFound) || errors.Is(err, oauthd.ErrUnavailable) {
		t.Errorf("unknown token on an open store: %v; want ErrNotFound only", err)
	}
	s.Close()
	now := time.Now()
	if _, err := s.Token(ctx, "nope"); !errors.Is(err, oauthd.ErrUnavailable) {
		t.Errorf("read after Close: %v; want ErrUnavailable", err)
	}
	err = s.CreateTokens(ctx, &oauthd.Token{Hash: "h", Kind: oauthd.AccessToken, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if !errors.Is(err, oauthd.ErrUnavailable) {
		t.Errorf("write after Close: %v; want ErrUnavailable", err)
	}
}
