package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// TestGroupCommit holds the writer busy while writes queue up, and checks
// that the queued writes then share one transaction, that a failing write
// is rolled back alone, and that every other write is kept.
func TestGroupCommit(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	st, err := s.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// A first write holds the writer until released.
	release := holdWriter(t, s)

	// Queue writes straight into the writer's channel while it is busy.
	const n = 10
	boom := errors.New("boom")
	txns := make([]*txn, n)
	ops := make([]*writeOp, n)
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		ops[i] = &writeOp{ctx: ctx, done: make(chan error, 1), fn: func(x *txn) error {
			txns[i] = x
			if _, err := x.exec(st.createClient, id, `{"client_id":"`+id+`"}`, 0); err != nil {
				return err
			}
			if i == 3 {
				return boom // after its insert: the savepoint must undo it
			}
			return nil
		}}
		s.w.ops <- ops[i]
	}
	release()
	for i, op := range ops {
		err := <-op.done
		if want := error(nil); i == 3 {
			if !errors.Is(err, boom) {
				t.Errorf("write %d: err = %v; want %v", i, err, boom)
			}
		} else if err != want {
			t.Errorf("write %d: %v", i, err)
		}
		if txns[i] != txns[0] {
			t.Errorf("write %d ran in another transaction than write 0", i)
		}
	}
	for i := range n {
		_, err := s.Client(ctx, fmt.Sprintf("c%d", i))
		if i == 3 {
			if !errors.Is(err, oauthd.ErrNotFound) {
				t.Errorf("Client(c3) of the failed write: err = %v; want ErrNotFound", err)
			}
		} else if err != nil {
			t.Errorf("Client(c%d): %v", i, err)
		}
	}
}

// TestWithdrawnWrite checks that a write whose context ends before the
// writer takes it never runs.
func TestWithdrawnWrite(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)

	// A first write holds the writer until released.
	release := holdWriter(t, s)

	cctx, cancel := context.WithCancel(ctx)
	var ran atomic.Bool
	errc := make(chan error, 1)
	go func() {
		errc <- s.w.do(cctx, func(*txn) error { ran.Store(true); return nil })
	}()
	for len(s.w.ops) == 0 { // wait until the write is queued
		runtime.Gosched()
	}
	cancel()
	err := <-errc
	release()
	// A later write is answered after the withdrawn one was skipped.
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "after"}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("withdrawn write: err = %v; want context.Canceled", err)
	}
	if ran.Load() {
		t.Errorf("withdrawn write ran")
	}
}

func TestSynchronous(t *testing.T) {
	for _, tc := range []struct {
		opt  string
		want int
	}{{"", 1}, {"NORMAL", 1}, {"full", 2}} {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "oauthd.db"), Options{Synchronous: tc.opt})
		if err != nil {
			t.Fatal(err)
		}
		var got int
		onWriteConn(t, s, func(c *sql.Conn) error {
			return c.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&got)
		})
		s.Close()
		if got != tc.want {
			t.Errorf("Synchronous %q: PRAGMA synchronous = %d; want %d", tc.opt, got, tc.want)
		}
	}
}

func TestReadPoolIsReadOnly(t *testing.T) {
	s := openTemp(t)
	if _, err := s.rdb.ExecContext(t.Context(), `DELETE FROM clients`); err == nil {
		t.Errorf("a write through the read pool succeeded")
	}
}

// holdWriter queues a write that keeps the writer goroutine busy until
// release is called, so that the writes queued meanwhile meet in its next
// transaction. release fails the test if the held write failed.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	ctx := t.Context()
	unblock := make(chan struct{})
	blocked := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.w.do(ctx, func(*txn) error {
			close(blocked)
			<-unblock
			return nil
		})
	}()
	<-blocked
	return func() {
		t.Helper()
		close(unblock)
		if err := <-done; err != nil {
			t.Fatalf("the write holding the writer: %v", err)
		}
	}
}

// onWriteConn runs fn on the write connection, which the writer holds,
// between two of its transactions.
func onWriteConn(tb testing.TB, s *Store, fn func(*sql.Conn) error) {
	tb.Helper()
	if err := s.w.withConn(fn); err != nil {
		tb.Fatal(err)
	}
}

// TestFailedCommitRolledBack makes a batch's COMMIT fail (a deferred
// foreign key left dangling, which SQLite reports at COMMIT and after
// which it keeps the transaction open) and checks that every write of the
// batch fails, that none of them is kept, and that the next write commits:
// the writer rolled the open transaction back.
func TestFailedCommitRolledBack(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	st, err := s.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	onWriteConn(t, s, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY);
			CREATE TEMP TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`)
		return err
	})
	release := holdWriter(t, s)
	ops := []*writeOp{
		{ctx: ctx, done: make(chan error, 1), fn: func(x *txn) error {
			_, err := x.exec(st.createClient, "kept-not", `{"client_id":"kept-not"}`, 0)
			return err
		}},
		{ctx: ctx, done: make(chan error, 1), fn: func(x *txn) error {
			_, err := s.w.conn.ExecContext(ctx, `INSERT INTO child (parent_id) VALUES (1)`)
			return err
		}},
	}
	for _, op := range ops {
		s.w.ops <- op
	}
	release()
	for i, op := range ops {
		if err := <-op.done; err == nil || !strings.Contains(err.Error(), "commit") {
			t.Errorf("write %d of the batch whose COMMIT failed: err = %v; want the commit's error", i, err)
		}
	}
	if _, err := s.Client(ctx, "kept-not"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Client of a write whose COMMIT failed: err = %v; want ErrNotFound", err)
	}
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "after"}); err != nil {
		t.Fatalf("the write after the failed COMMIT: %v", err)
	}
	if _, err := s.Client(ctx, "after"); err != nil {
		t.Errorf("Client(after): %v", err)
	}
}

// TestMigrateWhileWriting runs Migrate (which uses the writer's
// connection) again and again while writes stream in: it must wait for the
// writer's transactions rather than begin inside one, and every write must
// be kept.
func TestMigrateWhileWriting(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+20)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("c-%d-%d", w, i)
				if err := s.CreateClient(ctx, &oauthd.Client{ID: id}); err != nil {
					errs <- fmt.Errorf("CreateClient(%s): %w", id, err)
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := s.Migrate(ctx); err != nil {
				errs <- fmt.Errorf("Migrate: %w", err)
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	clients, err := s.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != writers*each {
		t.Errorf("clients stored: %d; want %d", len(clients), writers*each)
	}
}

// A batch whose every caller gave up before it committed (the client went
// away, or the server ended the request at its shutdown timeout) is rolled
// back: the caller's retry must find its code unused, not "already used",
// which would revoke its grant. Here the writer has taken the write and
// waits for another process's write lock when the caller gives up.
func TestAbandonedBatchRolledBack(t *testing.T) {
	ctx := t.Context()
	s, code, release := lockedWithCode(t)

	cctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := s.ConsumeAuthCode(cctx, code.Hash, time.Now())
		errc <- err
	}()
	// The writer takes the write at once and waits for the lock.
	for start := time.Now(); len(s.w.ops) > 0 || time.Since(start) < 100*time.Millisecond; {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	time.Sleep(50 * time.Millisecond)
	release()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("the abandoned write: %v; want context.Canceled", err)
	}
	// The code is still there for the retry.
	if got, err := s.ConsumeAuthCode(ctx, code.Hash, time.Now()); err != nil || got.GrantID != code.GrantID {
		t.Errorf("the retry: %v; want the code, unused", err)
	}
	if _, err := s.ConsumeAuthCode(ctx, code.Hash, time.Now()); !errors.Is(err, oauthd.ErrAlreadyUsed) {
		t.Errorf("a second use: %v; want ErrAlreadyUsed", err)
	}
}

// A batch in which some callers gave up before the commit while others
// still wait is rolled back and run again without the writes given up:
// those are not committed (their callers' retries find nothing done), the
// others are, and hear so.
func TestAbandonedWritesLeftOutOfTheirBatch(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	st, err := s.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	const n = 6
	ops := make([]*writeOp, n)
	runs := make([]int, n)
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		octx, cancel := context.WithCancel(ctx)
		ops[i] = &writeOp{ctx: octx, done: make(chan error, 1), fn: func(x *txn) error {
			runs[i]++
			if i%2 == 1 {
				cancel() // its caller leaves while the batch runs
			}
			_, err := x.exec(st.createClient, id, `{"client_id":"`+id+`"}`, 0)
			return err
		}}
		defer cancel()
		s.w.ops <- ops[i]
	}
	release()
	for i, op := range ops {
		err := <-op.done
		_, cerr := s.Client(ctx, fmt.Sprintf("c%d", i))
		if i%2 == 1 {
			if !errors.Is(err, context.Canceled) || !errors.Is(cerr, oauthd.ErrNotFound) {
				t.Errorf("write %d, given up: %v, stored: %v; want context.Canceled and nothing stored", i, err, cerr)
			}
		} else if err != nil || cerr != nil {
			t.Errorf("write %d: %v, stored: %v; want it committed", i, err, cerr)
		}
		if i%2 == 0 && runs[i] < 2 {
			t.Errorf("write %d ran %d times; want it run again without the writes given up", i, runs[i])
		}
	}
}

// A write waiting for another process's write lock gives up soon after its
// caller does (a slice of the wait), not after the 10 s busy timeout: a
// server ending its requests at its shutdown timeout then stops in time.
func TestAbandonedWriteStopsWaitingForTheLock(t *testing.T) {
	ctx := t.Context()
	s, code, release := lockedWithCode(t)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := s.ConsumeAuthCode(cctx, code.Hash, time.Now())
	if d := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || d > 2*time.Second {
		t.Errorf("the write of a caller gone while the lock is held: %v after %s; want its context's error within a slice of the wait", err, d)
	}
	release()
	if _, err := s.ConsumeAuthCode(ctx, code.Hash, time.Now()); err != nil {
		t.Errorf("the retry: %v; want the code, unused", err)
	}
}

// lockedWithCode is a new store holding one unused authorization code,
// whose write lock another connection holds until release.
func lockedWithCode(t *testing.T) (*Store, *oauthd.AuthCode, func()) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oauthd.db")
	s, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	code := redeemCode(oauthd.HashToken(oauthd.NewCredential()))
	if err := s.CreateAuthCode(t.Context(), code); err != nil {
		t.Fatal(err)
	}
	return s, code, lockedByAnother(t, path)
}

// lockedByAnother holds the write lock of the database at path from a
// connection of its own, as another process would, until release (or the
// test's end).
func lockedByAnother(t *testing.T, path string) (release func()) {
	t.Helper()
	ctx := context.Background()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			c.ExecContext(ctx, `ROLLBACK`)
			c.Close()
			other.Close()
		})
	}
	t.Cleanup(release)
	return release
}
