package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the controlling side and the
// terminal a command reads from.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// Ctrl-C at the password prompt of user add stops the command at once
// (exit 130, nothing stored) and gives the terminal its echo back: the
// prompt had turned it off, and a person left with a terminal that shows
// nothing they type would have to know about stty sane.
func TestPasswordPromptInterrupted(t *testing.T) {
	_, pts := openPTY(t)
	db := filepath.Join(t.TempDir(), "o.db")
	var out, errb bytes.Buffer
	e := &env{stdin: pts, stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "OAUTHD_DB" {
			return db
		}
		return ""
	}}
	ctx, cancel := context.WithCancel(t.Context())
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"user", "add", "zed"}, e) }()
	echoOff := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if tio.Lflag&unix.ECHO == 0 {
			echoOff = true
			break
		}
	}
	if !echoOff {
		t.Fatal("the prompt never turned the terminal's echo off")
	}
	cancel() // what the first Ctrl-C does
	select {
	case c := <-code:
		if c != 130 || !strings.Contains(errb.String(), "interrupted") {
			t.Errorf("exit %d, stderr %q; want 130 and \"interrupted\"", c, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("user add still waits for a password after Ctrl-C")
	}
	tio, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&unix.ECHO == 0 {
		t.Error("the terminal's echo is still off after the interrupted prompt")
	}
	if c, out, _ := oauthdCmd(t, db, "", "user", "list"); c == 0 && strings.Contains(out, "zed") {
		t.Errorf("user list: %q; want no user zed", out)
	}
}
