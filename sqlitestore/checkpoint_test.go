package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// ckptToken is a client_credentials token with the hash h.
func ckptToken(h string) *oauthd.Token {
	now := time.Now()
	return &oauthd.Token{Hash: h, Kind: oauthd.AccessToken, GrantID: h, ClientID: "svc",
		Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// waitCheckpoints waits until the checkpointer has run n checkpoints.
func waitCheckpoints(t *testing.T, s *Store, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.WriteStats().Checkpoints < n {
		if time.Now().After(deadline) {
			t.Fatalf("checkpoints: %d after 10s; want %d", s.WriteStats().Checkpoints, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The checkpointer, not the writer, copies committed pages back into the
// database file: after checkpointEvery commits it runs one, and the
// database file alone (without its -wal) then holds those commits.
func TestCheckpointerCopiesCommitsIntoTheDatabaseFile(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.w.txns.Load()
	// One write at a time: one commit each. Migrations committed too, so
	// count to the next multiple of checkpointEvery.
	for i := 0; ; i++ {
		if s.w.txns.Load()-base >= checkpointEvery && s.WriteStats().Checkpoints > 0 {
			break
		}
		if i > 10*checkpointEvery {
			t.Fatalf("no checkpoint after %d commits", s.w.txns.Load()-base)
		}
		if err := s.CreateTokens(ctx, ckptToken(fmt.Sprintf("tok-%d", i))); err != nil {
			t.Fatal(err)
		}
		if s.w.txns.Load()-base >= checkpointEvery {
			waitCheckpoints(t, s, 1)
		}
	}
	if st := s.WriteStats(); st.CheckpointFailures != 0 {
		t.Errorf("WriteStats %+v: want no failed checkpoint", st)
	}

	// A passive checkpoint that ran beside a commit leaves the file
	// alone inconsistent: it copies no page written again after the
	// frames it copies, page 1 included. So with the writes over, ask for
	// checkpoints until one has begun after them (the passes run one
	// after another: the second to end after now began after now), and
	// hold the checkpointer's one connection while copying the file.
	for n := s.WriteStats().Checkpoints; s.WriteStats().Checkpoints < n+2; {
		s.ckpt.notify()
		time.Sleep(time.Millisecond)
	}
	hold, err := s.ckpt.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()

	// A copy of the database file without its WAL has the first tokens.
	dir := t.TempDir()
	copyFile(t, path, filepath.Join(dir, "copy.db"))
	c, err := Open(ctx, filepath.Join(dir, "copy.db"), Options{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, h := range []string{"tok-0", "tok-1", "tok-10"} {
		if _, err := c.Token(ctx, h); err != nil {
			t.Errorf("token %s in the checkpointed database file: %v", h, err)
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A checkpoint is not a change of the data: PRAGMA data_version on the
// writer's connection, which the read cache watches for other processes'
// commits, stays the same, so checkpoints do not empty the cache.
func TestCheckpointKeepsDataVersion(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	for i := range 20 {
		if err := s.CreateTokens(ctx, ckptToken(fmt.Sprintf("tok-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	dataVersion := func() int64 {
		var v int64
		onWriteConn(t, s, func(c *sql.Conn) error {
			return c.QueryRowContext(ctx, `PRAGMA data_version`).Scan(&v)
		})
		return v
	}
	before := dataVersion()
	n := s.WriteStats().Checkpoints
	s.ckpt.notify()
	waitCheckpoints(t, s, n+1)
	var busy, log, copied int64
	if err := s.ckpt.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied); err != nil {
		t.Fatal(err)
	}
	if log == 0 || copied != log {
		t.Errorf("after the checkpoint: %d of %d WAL frames copied; want all", copied, log)
	}
	if after := dataVersion(); after != before {
		t.Errorf("data_version %d after a checkpoint, %d before: the read cache would be emptied", after, before)
	}
}

// Under constant writes the WAL still starts over: a passive checkpoint
// never catches up with a writer that keeps committing, so the writer
// copies the rest between two transactions. The WAL file stays about
// restartFrames frames large (plus what is committed during one
// checkpoint; readers whose snapshots are older than the last checkpoint
// put the start over off, as they do with SQLite's own checkpoints).
func TestWALStaysBoundedUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("writes some 50 MiB of WAL")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, path, Options{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, perWriter = 32, 600
	var wg sync.WaitGroup
	var maxWAL int64 // the largest size of the WAL file, for the log
	var mu sync.Mutex
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				h := oauthd.HashToken(oauthd.NewCredential()) // time-ordered, as in production
				if w == 0 && i == 0 || w == writers-1 && i == perWriter-1 {
					h = fmt.Sprintf("w%d-%d", w, i)
				}
				if err := s.CreateTokens(context.Background(), ckptToken(h)); err != nil {
					t.Error(err)
					return
				}
				if fi, err := os.Stat(path + "-wal"); err == nil {
					mu.Lock()
					maxWAL = max(maxWAL, fi.Size())
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	st := s.WriteStats()
	t.Logf("%+v, largest WAL %d KiB", st, maxWAL>>10)
	if st.Checkpoints == 0 || st.WriterCheckpoints == 0 {
		t.Errorf("%d checkpoints by the checkpointer and %d by the writer in %d commits; want some of both", st.Checkpoints, st.WriterCheckpoints, st.Transactions)
	}
	// The WAL starts over: after a few more commits (the checkpointer
	// may be running a checkpoint, then the writer finishes it) it holds
	// fewer than restartFrames frames, not the tens of thousands written.
	walFrames := func() int64 {
		var busy, log, copied int64
		if err := s.ckpt.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &copied); err != nil {
			t.Fatal(err)
		}
		return log
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		if err := s.CreateTokens(ctx, ckptToken(fmt.Sprintf("after-%d", i))); err != nil {
			t.Fatal(err)
		}
		n := walFrames()
		if n < restartFrames {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the WAL holds %d frames after %d more commits; want fewer than %d: it does not start over", n, i+1, restartFrames)
		}
		time.Sleep(time.Millisecond)
	}
	for _, h := range []string{"w0-0", "w31-599"} {
		if _, err := s.Token(ctx, h); err != nil {
			t.Errorf("token %s: %v", h, err)
		}
	}
}

// A -wal file that grew large (here while a reader held the WAL back) is
// cut back to walSizeLimit when the WAL starts over, rather than keeping
// its largest size for good.
func TestWALFileShrinksToTheLimit(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := Open(ctx, path, Options{CacheSize: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// A reader's snapshot keeps every frame committed after it in the
	// WAL: no checkpoint copies them, and the WAL cannot start over.
	rdb, err := sql.Open("sqlite", fileURI(path)+"?_query_only=1")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	tx, err := rdb.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM auth_requests`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	pad := strings.Repeat("x", 40<<10)
	walSize := func() int64 {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	for i := 0; walSize() < 2*walSizeLimit; i++ {
		r := &oauthd.AuthRequest{ID: fmt.Sprintf("r%d", i), ClientID: "c", State: pad, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := s.CreateAuthRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	grown := walSize()
	tx.Rollback()
	// With the reader gone, the checkpoints copy the frames and the WAL
	// starts over at the next commits.
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; walSize() > walSizeLimit; i++ {
		if time.Now().After(deadline) {
			t.Fatalf("-wal file %d bytes (grown to %d) after %d more commits; want at most %d", walSize(), grown, i, walSizeLimit)
		}
		if err := s.CreateTokens(ctx, ckptToken(fmt.Sprintf("after-%d", i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("-wal file grown to %d bytes, then %d", grown, walSize())
}
