package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// The tests of a full or read-only disk need a small tmpfs of their own,
// so root; they are skipped elsewhere.

// mountTmpfs mounts a tmpfs of the size ("16m") on a new directory,
// unmounted when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).Run(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return dir
}

// fillDisk writes the file name in dir until the file system has at most
// leave bytes free.
func fillDisk(t *testing.T, dir, name string, leave int64) {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	n := int64(st.Bavail)*st.Bsize - leave
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for n > 0 {
		w, err := f.Write(buf[:min(n, int64(len(buf)))])
		if err != nil {
			return // full
		}
		n -= int64(w)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	} else if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// createUntilFull stores pending requests of size bytes each, expiring at
// expires, from writers goroutines, until the disk is full; it returns how
// many it stored and the error that stopped them.
func createUntilFull(t *testing.T, s *Store, prefix string, writers, size int, expires time.Time) (int, error) {
	t.Helper()
	pad := strings.Repeat("x", size)
	var (
		mu       sync.Mutex
		created  int
		firstErr error
		wg       sync.WaitGroup
	)
	for g := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				r := &oauthd.AuthRequest{ID: fmt.Sprintf("%s-%d-%d", prefix, g, i), ClientID: "c", State: pad,
					CreatedAt: expires.Add(-time.Minute), ExpiresAt: expires}
				err := s.CreateAuthRequest(context.Background(), r)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				created++
				mu.Unlock()
				if i > 100_000 {
					t.Error("the disk does not fill")
					return
				}
			}
		})
	}
	wg.Wait()
	return created, firstErr
}

// checkDiskFull checks that err is a full disk, as WriteRefused and the
// Provider (ErrUnavailable, a 503) see it.
func checkDiskFull(t *testing.T, what string, err error) {
	t.Helper()
	if reason, ok := WriteRefused(err); !ok || reason != "disk full" || !errors.Is(err, oauthd.ErrUnavailable) {
		t.Fatalf("%s: %v (WriteRefused %q, %v); want a full disk, unavailable", what, err, reason, ok)
	}
}

// When the WAL grew until the disk was full while a reader held it back
// (a backup, a long read), the frames it holds are pages the database
// file already has. DeleteExpired then fails to commit for lack of room in
// the WAL, runs a TRUNCATE checkpoint, which copies them back without
// growing the file and gives the -wal file's space back, and succeeds on
// its second try, so the garbage collection brings the server back.
func TestDeleteExpiredOnAFullDiskTruncatesTheWAL(t *testing.T) {
	ctx := t.Context()
	dir := mountTmpfs(t, "40m")
	path := filepath.Join(dir, "o.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	later := now.Add(time.Hour) // when the garbage collection runs

	// Some 12 MB of requests, deleted: the database file keeps their
	// pages, free for the next ones.
	pad := strings.Repeat("x", 40<<10)
	for i := range 300 {
		r := &oauthd.AuthRequest{ID: fmt.Sprintf("old-%d", i), ClientID: "c", State: pad, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		if err := s.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.DeleteExpired(ctx, later, 500); err != nil || n != 300 {
		t.Fatalf("DeleteExpired = %d, %v; want 300", n, err)
	}
	if err := s.truncateWAL(ctx); err != nil {
		t.Fatal(err)
	}
	dbSize := fileSize(t, path)

	// A reader's snapshot holds the WAL back while new requests fill the
	// disk; the reader then goes.
	rdb, err := sql.Open("sqlite", fileURI(path)+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	tx, err := rdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rows int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM auth_requests`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	fillDisk(t, dir, "filler", 6<<20)
	// Small requests, one commit each: many commits of the same pages,
	// which a checkpoint copies once.
	created, err := createUntilFull(t, s, "new", 1, 1<<10, now.Add(time.Minute))
	checkDiskFull(t, "creating requests", err)
	tx.Rollback()
	if created == 0 || fileSize(t, path) != dbSize {
		t.Fatalf("%d requests stored, database file %d bytes (before %d); want some, in the file's free pages", created, fileSize(t, path), dbSize)
	}
	t.Logf("%d requests stored; -wal file %d bytes", created, fileSize(t, path+"-wal"))

	// All in one batch: more pages than the failed commits left room
	// for at the end of the -wal file.
	n, err := s.DeleteExpired(ctx, later, 100_000)
	if err != nil || n != created {
		t.Fatalf("DeleteExpired on the full disk = %d, %v; want %d", n, err, created)
	}
	if size := fileSize(t, path+"-wal"); size > 1<<20 {
		t.Errorf("-wal file %d bytes after DeleteExpired; want it cut back", size)
	}
	r := &oauthd.AuthRequest{ID: "after", ClientID: "c", State: pad, CreatedAt: now, ExpiresAt: later}
	if err := s.CreateAuthRequest(ctx, r); err != nil {
		t.Errorf("CreateAuthRequest after the garbage collection: %v", err)
	}
}

// When the pages added since the last checkpoint filled the disk (a flood
// of new records), no checkpoint can copy them into the database file,
// which would have to grow: DeleteExpired fails until some space is
// freed. Freeing as much as the -wal file takes is enough, as the README
// tells operators.
func TestDeleteExpiredAfterTheDatabaseFilledTheDisk(t *testing.T) {
	ctx := t.Context()
	dir := mountTmpfs(t, "32m")
	// Space an operator can free: as large as the WAL can get on what
	// is left.
	fillDisk(t, dir, "old-logs", 16<<20)
	path := filepath.Join(dir, "o.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	later := now.Add(time.Hour)
	created, err := createUntilFull(t, s, "flood", 8, 40<<10, now.Add(time.Minute))
	checkDiskFull(t, "creating requests", err)
	wal := fileSize(t, path+"-wal")
	t.Logf("%d requests stored; database file %d bytes, -wal file %d", created, fileSize(t, path), wal)
	if _, err := s.DeleteExpired(ctx, later, 500); err != nil {
		checkDiskFull(t, "DeleteExpired on the full disk", err)
	} else {
		t.Log("DeleteExpired succeeded on the full disk: every page of the WAL was in the database file")
	}

	if wal > fileSize(t, filepath.Join(dir, "old-logs")) {
		t.Fatalf("-wal file %d bytes: larger than the space the test frees", wal)
	}
	if err := os.Remove(filepath.Join(dir, "old-logs")); err != nil {
		t.Fatal(err)
	}
	total := 0
	for {
		n, err := s.DeleteExpired(ctx, later, 500)
		if err != nil {
			t.Fatalf("DeleteExpired after freeing %d bytes: %v (%d deleted)", wal, err, total)
		}
		if total += n; n < 500 {
			break
		}
	}
	if total > created {
		t.Errorf("DeleteExpired deleted %d of %d requests", total, created)
	}
	var left int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM auth_requests`).Scan(&left); err != nil || left != 0 {
		t.Errorf("%d requests left (%v); want none", left, err)
	}
	r := &oauthd.AuthRequest{ID: "after", ClientID: "c", CreatedAt: now, ExpiresAt: later}
	if err := s.CreateAuthRequest(ctx, r); err != nil {
		t.Errorf("CreateAuthRequest after freeing space: %v", err)
	}
}
