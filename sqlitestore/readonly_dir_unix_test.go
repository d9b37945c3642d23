//go:build unix

package sqlitestore

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A database whose directory is not writable cannot have its -wal and
// -shm files: the error names the directory and says it must be writable
// (SQLite says only "attempt to write a readonly database (1544)"), and so
// does the error of creating a database there.
func TestOpenReadOnlyDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestOpenReadOnlyDirectory")
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "o.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path + "-wal"); err == nil {
		t.Fatal("the -wal file is left after Close")
	}
	if err := os.Chmod(dir, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(dir, 0o755)
	want := "the directory " + dir + " is not writable by this user: the database's -wal and -shm files are created beside it, so the directory must be writable by the user the server runs as"
	for _, p := range []string{path, filepath.Join(dir, "new.db")} {
		s, err := Open(ctx, p, Options{})
		if err == nil {
			s.Close()
			t.Fatalf("%s opened in a read-only directory", p)
		}
		if !strings.HasPrefix(err.Error(), "sqlitestore: open "+p+": "+want) {
			t.Errorf("error %q; want %q", err, want)
		}
	}
}

// runAsNobody runs the test named in a copy of this test binary as the
// user nobody (root writes to any directory), or skips it if it cannot.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "sqlitestore-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	copyExe := filepath.Join(dir, "test.bin")
	copyFile(t, exe, copyExe)
	if err := os.Chmod(copyExe, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(copyExe, "-test.run=^"+name+"$", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR="+os.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil && len(out) == 0 {
		t.Skipf("cannot run as nobody: %v", err)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: "+name) {
		t.Errorf("as nobody: %v\n%s", err, out)
	}
}
