//go:build unix

package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// config check refuses a SQLite database whose directory, or file, the
// user cannot write, as serve does; run as a user other than root (root
// writes anywhere).
func TestCheckDeploymentDatabaseWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		runAsNobody(t, "TestCheckDeploymentDatabaseWritable")
		return
	}
	base := t.TempDir()
	roDir := filepath.Join(base, "ro")
	rwDir := filepath.Join(base, "rw")
	for _, d := range []string{roDir, rwDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	roFile := filepath.Join(rwDir, "ro.db")
	if err := os.WriteFile(roFile, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(roDir, 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(roDir, 0o755) })
	for _, tt := range []struct {
		name    string
		db      string
		wantErr string
	}{
		{"database in a writable directory passes", filepath.Join(rwDir, "o.db"), ""},
		{"database in a read-only directory is refused", filepath.Join(roDir, "o.db"),
			"config: db: the directory " + roDir + " is not writable by this user: the database's -wal and -shm files are created beside it, so the directory must be writable by the user the server runs as (permission denied)"},
		{"read-only database file is refused", roFile, "config: db: the database file " + roFile + " cannot be read and written by this user (permission denied)"},
		{"a directory is refused", rwDir, "config: db: " + rwDir + " is a directory, not a database file: name a file in it, e.g. " + filepath.Join(rwDir, "oauthd.db")},
		{"database in a missing directory is refused", filepath.Join(base, "none", "o.db"), "config: db: the directory of " + filepath.Join(base, "none", "o.db") + ": no such file or directory; create it, writable by the server's user (under systemd, StateDirectory= creates it at the unit's first start)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Config{Addr: "127.0.0.1:8000", DB: tt.db}
			err := c.checkDeployment(time.Now())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v; want none", err)
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("error %v; want %q", err, tt.wantErr)
			}
		})
	}
}

// runAsNobody runs the test named in a copy of this test binary as the
// user nobody, or skips it if it cannot.
func runAsNobody(t *testing.T, name string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	dir, err := os.MkdirTemp("", "oauthd-app-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(dir, "test.bin")
	if err := os.WriteFile(copyExe, b, 0o755); err != nil {
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
