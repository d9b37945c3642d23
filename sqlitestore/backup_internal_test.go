package sqlitestore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// On a file system without hard links (vfat, exFAT, many network mounts:
// link fails with EPERM) the finished copy is renamed to the backup's
// name instead, still never over an existing file.
func TestBackupWithoutHardLinks(t *testing.T) {
	linkFile = func(string, string) error { return &os.LinkError{Op: "link", Err: syscall.EPERM} }
	t.Cleanup(func() { linkFile = os.Link })
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "live.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	to := filepath.Join(dir, "copy.db")
	if err := Backup(ctx, path, to); err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, to, Options{NoMigrate: true})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	c.Close()
	if err := Backup(ctx, path, to); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup into the same file: %v; want already exists", err)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "*.partial-*"))
	if len(names) != 0 {
		t.Errorf("left behind: %v", names)
	}
}
