package sqlitestore_test

import (
	"context"
	"fmt"
	"os"
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
	// A copy into a directory that is not there names the directory, not
	// the temporary file the copy is made in first.
	missing := filepath.Join(dir, "no-such-dir", "copy.db")
	if err := sqlitestore.Backup(ctx, path, missing); err == nil || !strings.Contains(err.Error(), filepath.Dir(missing)) || strings.Contains(err.Error(), ".partial-") {
		t.Errorf("Backup into a missing directory: %v; want an error naming %s", err, filepath.Dir(missing))
	}
	if err := sqlitestore.Backup(ctx, path, to); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup into the same file: %v; want already exists", err)
	}
	if err := sqlitestore.Backup(ctx, filepath.Join(dir, "none.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("a backup of a database that is not there succeeded")
	}
	// A backup that fails halfway (here: its context ends) leaves nothing
	// under the backup's name, where an empty file would open as a valid,
	// empty database, and no temporary file either.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := sqlitestore.Backup(cctx, path, filepath.Join(dir, "failed.db")); err == nil {
		t.Error("a backup with its context ended succeeded")
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*"))
	for _, n := range names {
		if b := filepath.Base(n); strings.HasPrefix(b, "failed.db") || strings.Contains(b, ".partial-") {
			t.Errorf("left behind: %s", b)
		}
	}
}

// While a backup is being written, its name either does not exist or
// holds the whole copy: a backup killed halfway leaves no partial file
// under it (the copy is written under a temporary name, then linked).
func TestBackupAppearsWhole(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	for i := range 20000 {
		tok := &oauthd.Token{Hash: oauthd.HashToken(fmt.Sprint("t", i)), Kind: oauthd.AccessToken, ClientID: "web", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateTokens(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	to := filepath.Join(dir, "copy.db")
	done := make(chan error, 1)
	go func() { done <- sqlitestore.Backup(ctx, path, to) }()
	var seen []int64
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
			if fi, err := os.Stat(to); err == nil {
				seen = append(seen, fi.Size())
			}
		}
	}
	fi, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range seen {
		if n != fi.Size() {
			t.Fatalf("%s was seen with %d bytes while the backup ran; the whole copy has %d", to, n, fi.Size())
		}
	}
}
