package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
	"github.com/oauthd/oauthd/storetest"
)

// The conformance suite without the read cache: both read paths must hold.
func TestConformanceNoCache(t *testing.T) {
	storetest.Run(t, func(t *testing.T) oauthd.Storage {
		return open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{CacheSize: -1})
	})
}

func cacheToken(hash, grant, subject string) *oauthd.Token {
	now := time.Now().Truncate(time.Millisecond)
	return &oauthd.Token{
		Hash: hash, Kind: oauthd.AccessToken, GrantID: grant, ClientID: "c1", Subject: subject,
		Scopes: []string{"read", "write"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
	}
}

// mustBeGone polls s until the token is not found: a change made through
// another connection is seen within the writer's check interval.
func mustBeGone(t *testing.T, what string, lookup func() error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := lookup()
		if errors.Is(err, oauthd.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still found 2 s after another process removed it (read cache not invalidated)", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// RFC 7009 §2: once revoked, a token cannot be used again: a revocation made
// through this Store is seen by the very next lookup, however often the
// token was read (and cached) before.
func TestCacheRevocationSeenAtOnce(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{})
	for i, revoke := range map[string]func(tok *oauthd.Token) error{
		"RevokeToken":    func(tok *oauthd.Token) error { return s.RevokeToken(ctx, tok.Hash) },
		"RevokeGrant":    func(tok *oauthd.Token) error { return s.RevokeGrant(ctx, tok.GrantID, time.Now().Add(time.Hour)) },
		"RevokeTokensOf": func(tok *oauthd.Token) error { return s.RevokeTokensOf(ctx, tok.Subject, tok.ClientID) },
	} {
		tok := cacheToken("h-"+i, "g-"+i, "u-"+i)
		if err := s.CreateTokens(ctx, tok); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if _, err := s.Token(ctx, tok.Hash); err != nil {
				t.Fatalf("%s: Token before: %v", i, err)
			}
		}
		if err := revoke(tok); err != nil {
			t.Fatalf("%s: %v", i, err)
		}
		if _, err := s.Token(ctx, tok.Hash); !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("%s: Token after revocation = %v; want ErrNotFound", i, err)
		}
	}
}

// A rotated refresh token read before its rotation is read back rotated.
func TestCacheRotationSeenAtOnce(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{})
	old := cacheToken("r1", "g1", "u1")
	old.Kind = oauthd.RefreshToken
	if err := s.CreateTokens(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Token(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	next := cacheToken("r2", "g1", "u1")
	next.Kind = oauthd.RefreshToken
	if _, err := s.RotateRefreshToken(ctx, "r1", time.Now(), nil, next); err != nil {
		t.Fatal(err)
	}
	got, err := s.Token(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if got.RotatedAt.IsZero() {
		t.Errorf("Token after rotation has a zero RotatedAt: the cache served the token as it was before")
	}
}

// Users changed or deleted through this Store are read back as they are.
func TestCacheUserChanges(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{})
	u := &oauthd.User{ID: "u1", Username: "alice", Claims: map[string]any{"name": "Alice", "address": map[string]any{"country": "FR"}}}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	// A caller that changes what it was given does not change the store.
	got.Claims["name"] = "Mallory"
	got.Claims["address"].(map[string]any)["country"] = "XX"
	again, err := s.User(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if again.Claims["name"] != "Alice" || again.Claims["address"].(map[string]any)["country"] != "FR" {
		t.Errorf("User after the caller changed its copy = %v; want the stored claims", again.Claims)
	}
	u.Claims = map[string]any{"name": "Alice B."}
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.User(ctx, "u1"); got == nil || got.Claims["name"] != "Alice B." {
		t.Errorf("User after UpdateUser = %+v; want the new claims", got)
	}
	if err := s.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.User(ctx, "u1"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("User after DeleteUser = %v; want ErrNotFound", err)
	}
}

// Another process (here another Store on the same file: another
// connection, as the oauthd CLI is) revokes a token, deletes a user or
// changes one: the server's cache notices within its check interval.
func TestCacheSeesOtherProcesses(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oauthd.db")
	server := open(t, path, sqlitestore.Options{})
	cli := open(t, path, sqlitestore.Options{})
	for _, tok := range []*oauthd.Token{cacheToken("a", "ga", "u1"), cacheToken("b", "gb", "u1")} {
		if err := server.CreateTokens(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	if err := server.CreateUser(ctx, &oauthd.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := server.CreateUser(ctx, &oauthd.User{ID: "u2", Username: "bob"}); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"a", "b"} {
		if _, err := server.Token(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"u1", "u2"} {
		if _, err := server.User(ctx, id); err != nil {
			t.Fatal(err)
		}
	}

	if err := cli.RevokeToken(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	mustBeGone(t, "token revoked by another process", func() error { _, err := server.Token(ctx, "a"); return err })
	if err := cli.RevokeGrant(ctx, "gb", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mustBeGone(t, "grant revoked by another process", func() error { _, err := server.Token(ctx, "b"); return err })
	if err := cli.DeleteUser(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	mustBeGone(t, "user deleted by another process", func() error { _, err := server.User(ctx, "u1"); return err })

	if err := cli.UpdateUser(ctx, &oauthd.User{ID: "u2", Username: "robert"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		u, err := server.User(ctx, "u2")
		if err != nil {
			t.Fatal(err)
		}
		if u.Username == "robert" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("user changed by another process still read as %q after 2 s", u.Username)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The server's writer, which looks for other processes' commits, can be
// held up: here its write waits for the write lock another process holds
// (up to the 10 s busy timeout), right after that process deleted a token
// the server had cached. The cache must not answer for that long: the
// deletion is seen within the writer's check interval all the same.
func TestCacheSeesOtherProcessesWhileItsWriterWaits(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oauthd.db")
	server := open(t, path, sqlitestore.Options{})
	if err := server.CreateTokens(ctx, cacheToken("t", "g", "u1")); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Token(ctx, "t"); err != nil { // cached
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	other, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := other.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`BEGIN IMMEDIATE`)
	wrote := make(chan error, 1)
	go func() { wrote <- server.CreateTokens(context.Background(), cacheToken("w", "gw", "u1")) }()
	time.Sleep(50 * time.Millisecond) // the server's writer now waits for the lock
	exec(`DELETE FROM tokens WHERE hash = ?`, "t")
	exec(`COMMIT`)
	exec(`BEGIN IMMEDIATE`) // taken again before the writer's next try
	mustBeGone(t, "token deleted by another process while the server's writer waited", func() error {
		_, err := server.Token(ctx, "t")
		return err
	})
	exec(`COMMIT`)
	if err := <-wrote; err != nil {
		t.Errorf("the server's write, once the lock was free: %v", err)
	}
}

// Concurrent lookups and revocations: once RevokeToken has returned, no
// lookup that starts afterwards finds the token, however the lookups that
// raced with it filled the cache. Run with -race.
func TestCacheRevocationRace(t *testing.T) {
	ctx := t.Context()
	s := open(t, filepath.Join(t.TempDir(), "oauthd.db"), sqlitestore.Options{CacheSize: 64})
	const tokens = 40
	for i := range tokens {
		if err := s.CreateTokens(ctx, cacheToken(fmt.Sprint("h", i), fmt.Sprint("g", i), "u")); err != nil {
			t.Fatal(err)
		}
	}
	var revoked [tokens]atomic.Bool
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var stale atomic.Int64
	for r := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := r; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := n % tokens
				was := revoked[i].Load()
				_, err := s.Token(ctx, fmt.Sprint("h", i))
				if was && err == nil {
					stale.Add(1)
				}
				if err != nil && !errors.Is(err, oauthd.ErrNotFound) {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range tokens {
		time.Sleep(time.Millisecond)
		var err error
		if i%2 == 0 {
			err = s.RevokeToken(ctx, fmt.Sprint("h", i))
		} else {
			err = s.RevokeGrant(ctx, fmt.Sprint("g", i), time.Now().Add(time.Hour))
		}
		if err != nil {
			t.Fatal(err)
		}
		revoked[i].Store(true)
	}
	close(stop)
	wg.Wait()
	if n := stale.Load(); n > 0 {
		t.Errorf("%d lookups that started after the revocation had returned found the token", n)
	}
	for i := range tokens {
		if _, err := s.Token(ctx, fmt.Sprint("h", i)); !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("token %d after every revocation: %v; want ErrNotFound", i, err)
		}
	}
}
