package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"

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
		if err := s.wdb.QueryRowContext(t.Context(), `PRAGMA synchronous`).Scan(&got); err != nil {
			t.Fatal(err)
		}
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
