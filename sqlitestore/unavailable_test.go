package sqlitestore

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
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

// A full disk (SQLITE_FULL, made here with max_page_count) fails writes
// with ErrUnavailable: nothing was written, and the same write succeeds
// once there is room, so clients get 503 and Retry-After, not a 500.
func TestFullDiskIsUnavailable(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "full.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	setMax := func(pages string) {
		onWriteConn(t, s, func(c *sql.Conn) error {
			_, err := c.ExecContext(ctx, `PRAGMA max_page_count = `+pages)
			return err
		})
	}
	var pages string
	onWriteConn(t, s, func(c *sql.Conn) error { return c.QueryRowContext(ctx, `PRAGMA page_count`).Scan(&pages) })
	setMax(pages)
	now := time.Now()
	var full error
	for i := range 10_000 {
		tok := &oauthd.Token{Hash: oauthd.HashToken(oauthd.NewCredential()), Kind: oauthd.AccessToken, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		if full = s.CreateTokens(ctx, tok); full != nil {
			t.Logf("full after %d tokens: %v", i, full)
			break
		}
	}
	if !errors.Is(full, oauthd.ErrUnavailable) {
		t.Fatalf("write on a full database: %v; want ErrUnavailable", full)
	}
	setMax("1073741823")
	tok := &oauthd.Token{Hash: oauthd.HashToken(oauthd.NewCredential()), Kind: oauthd.AccessToken, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateTokens(ctx, tok); err != nil {
		t.Errorf("write once there is room: %v", err)
	}
}

// Close does not wait out the busy timeout when another process holds the
// write lock: a server's shutdown must stay within its shutdown timeout
// (the PRAGMA optimize run on close only tries briefly).
func TestCloseBehindAnotherWriter(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "locked.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer lockedByAnother(t, path)()
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > busyTimeout*time.Millisecond/2 {
		t.Errorf("Close took %s behind another process's write lock; want well under the %s busy timeout", d, busyTimeout*time.Millisecond)
	}
}

// Open says, in the operating system's words, why a database cannot be
// written, instead of SQLite's "unable to open database file" or, for a
// read-only file, a start that succeeds and writes that all fail later.
func TestOpenUnwritable(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ path, want string }{
		"missing directory":   {filepath.Join(dir, "nope", "o.db"), "no such file or directory"},
		"path is a directory": {dir, "is a directory"},
	}
	if os.Geteuid() != 0 { // root writes read-only files
		ro := filepath.Join(dir, "ro.db")
		s, err := Open(t.Context(), ro, Options{})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		os.Chmod(ro, 0o444)
		cases["read-only file"] = struct{ path, want string }{ro, "cannot be written: permission denied"}
	}
	for name, c := range cases {
		s, err := Open(t.Context(), c.path, Options{})
		if err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
			continue
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want it to say %q", name, err, c.want)
		}
	}
}

// A failed lookup by username does not name it: the sign-in form's
// username is often a password typed in the wrong box, and the error is
// logged.
func TestUserByUsernameErrorHoldsNoUsername(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	onWriteConn(t, s, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `ALTER TABLE users RENAME TO users_gone`)
		return err
	})
	const typed = "MyPassw0rdInTheWrongBox"
	_, err := s.UserByUsername(ctx, typed)
	if err == nil || errors.Is(err, oauthd.ErrNotFound) {
		t.Fatalf("UserByUsername on a database without its users table = %v; want an error", err)
	}
	if strings.Contains(err.Error(), typed) {
		t.Errorf("error %q holds the username", err)
	}
}
