package sqlitestore_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
)

// A backup taken while the store is open and has just written holds every
// committed write, opens as a store of its own, and never overwrites a
// file.
func TestBackup(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "web", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	tok := &oauthd.Token{Hash: oauthd.HashToken("t"), Kind: oauthd.AccessToken, ClientID: "web", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateTokens(ctx, tok); err != nil {
		t.Fatal(err)
	}
	to := filepath.Join(dir, "copy.db")
	if err := sqlitestore.Backup(ctx, path, to); err != nil {
		t.Fatal(err)
	}
	c, err := sqlitestore.Open(ctx, to, sqlitestore.Options{NoMigrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Client(ctx, "web"); err != nil {
		t.Errorf("the backup has no client web: %v", err)
	}
	if _, err := c.Token(ctx, tok.Hash); err != nil {
		t.Errorf("the backup has no token: %v", err)
	}
	if err := sqlitestore.Backup(ctx, path, to); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup into the same file: %v; want already exists", err)
	}
	if err := sqlitestore.Backup(ctx, filepath.Join(dir, "none.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("a backup of a database that is not there succeeded")
	}
}
