//go:build unix

package sqlitestore

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// A new database, its WAL and shared-memory files, and a backup are
// readable by their owner only, whatever the umask: they hold password and
// secret hashes and the signing keys.
func TestNewFilesPrivate(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	dir := t.TempDir()
	db := filepath.Join(dir, "o.db")
	s, err := Open(t.Context(), db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.CreateTokens(t.Context(), &oauthd.Token{Hash: "h", Kind: oauthd.AccessToken, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	bak := filepath.Join(dir, "o.bak")
	if err := Backup(t.Context(), db, bak); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{db, db + "-wal", db + "-shm", bak} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is %v; want no access for group and others", filepath.Base(f), fi.Mode().Perm())
		}
	}
	s.Close()
}
