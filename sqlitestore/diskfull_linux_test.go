package sqlitestore_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/sqlitestore"
)

// A database on a full disk says so at start, not "disk I/O error" (what
// SQLite reports when it cannot grow its shared-memory file), which an
// operator would take for failing hardware. It needs a small tmpfs, so
// root; it is skipped elsewhere.
func TestOpenOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).Run(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "o.db")
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Remove(path + "-shm")
	os.Remove(path + "-wal")
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	_, err = sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err == nil {
		t.Skip("the store opened on the full tmpfs (nothing to grow)")
	}
	if !strings.Contains(err.Error(), "is full: free some space") {
		t.Errorf("open on a full disk: %v; want it to say the disk is full", err)
	}
}
