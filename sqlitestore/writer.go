package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
)

// maxBatch bounds how many writes share one transaction.
const maxBatch = 128

// The states of a writeOp. The writer claims a queued op before running it;
// a caller whose context ends claims it first to withdraw it, so an op
// either runs to its answer or never runs at all.
const (
	opQueued int32 = iota
	opRunning
	opWithdrawn
)

// A writeOp is one write waiting for the writer.
type writeOp struct {
	ctx   context.Context
	fn    func(*txn) error
	state atomic.Int32
	done  chan error // buffered; receives the op's outcome after commit
}

// A writer owns the one write connection. One goroutine takes the writes
// waiting for it and commits them together: group commit. Each write runs
// inside a savepoint, so a write that fails is rolled back alone, and every
// caller hears its outcome only once the transaction has committed.
//
// Writers that arrive while a transaction commits wait for the next one, so
// a lone write is never delayed and concurrent writes share commits.
type writer struct {
	db  *sql.DB
	ops chan *writeOp

	savepoint, release, rollbackTo *sql.Stmt

	mu     sync.RWMutex // held to send on ops; Lock to close it
	closed bool
	done   chan struct{} // closed when the goroutine has ended
}

func newWriter(ctx context.Context, db *sql.DB) (*writer, error) {
	w := &writer{db: db, ops: make(chan *writeOp, maxBatch), done: make(chan struct{})}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.savepoint, `SAVEPOINT op`},
		{&w.release, `RELEASE op`},
		{&w.rollbackTo, `ROLLBACK TO op`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			w.closeStmts()
			return nil, err
		}
		*p.dst = st
	}
	go w.run()
	return w, nil
}

// do runs fn in the writer's next transaction and returns fn's error once
// that transaction has committed; if the commit fails, every write in it
// fails with the commit's error. If ctx ends before the writer takes fn,
// fn never runs and do returns ctx's error; once the writer has taken fn, do
// waits for its outcome. fn must use only the txn it is given.
func (w *writer) do(ctx context.Context, fn func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.ops <- op:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return fmt.Errorf("sqlitestore: %w", ctx.Err())
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opWithdrawn) {
			return fmt.Errorf("sqlitestore: %w", ctx.Err())
		}
		return <-op.done
	}
}

// close stops taking writes, waits until those queued are done and closes
// the writer's statements.
func (w *writer) close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ops)
	}
	w.mu.Unlock()
	<-w.done
	w.closeStmts()
}

func (w *writer) closeStmts() {
	for _, st := range []*sql.Stmt{w.savepoint, w.release, w.rollbackTo} {
		if st != nil {
			st.Close()
		}
	}
}

// run is the writer goroutine: it takes a write, adds those already
// waiting, and commits them together.
func (w *writer) run() {
	defer close(w.done)
	batch := make([]*writeOp, 0, maxBatch)
	for op := range w.ops {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < maxBatch {
			select {
			case op, ok := <-w.ops:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		w.commit(batch)
		clear(batch)
	}
}

// commit runs the ops of batch that are still wanted in one transaction
// and answers each.
func (w *writer) commit(batch []*writeOp) {
	ops := batch[:0]
	for _, op := range batch {
		if !op.state.CompareAndSwap(opQueued, opRunning) {
			continue // withdrawn by its caller
		}
		if err := op.ctx.Err(); err != nil {
			op.done <- fmt.Errorf("sqlitestore: %w", err)
			continue
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		return
	}
	errs := w.runTx(ops)
	for i, op := range ops {
		op.done <- errs[i]
	}
}

// runTx runs ops in one transaction and returns their outcomes. The
// statements run with a context of their own: a caller's context must not
// interrupt a transaction that other callers' writes share.
func (w *writer) runTx(ops []*writeOp) []error {
	ctx := context.Background()
	errs := make([]error, len(ops))
	failAll := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return failAll(fmt.Errorf("sqlitestore: begin: %w", err))
	}
	x := &txn{ctx: ctx, tx: tx}
	if len(ops) == 1 {
		// A lone write needs no savepoint: the transaction is its own.
		if err := ops[0].fn(x); err != nil {
			tx.Rollback()
			return failAll(err)
		}
	} else {
		for i, op := range ops {
			if _, err := x.stmt(w.savepoint).ExecContext(ctx); err != nil {
				tx.Rollback()
				return failAll(fmt.Errorf("sqlitestore: savepoint: %w", err))
			}
			errs[i] = op.fn(x)
			if errs[i] != nil {
				// A failed statement may have changed rows before it
				// failed; undo everything this op did. If SQLite rolled
				// back the whole transaction (I/O error, disk full),
				// this fails too, and so does every op of the batch.
				if _, err := x.stmt(w.rollbackTo).ExecContext(ctx); err != nil {
					tx.Rollback()
					return failAll(fmt.Errorf("sqlitestore: rollback to savepoint: %w (after: %w)", err, errs[i]))
				}
			}
			if _, err := x.stmt(w.release).ExecContext(ctx); err != nil {
				tx.Rollback()
				return failAll(fmt.Errorf("sqlitestore: release savepoint: %w", err))
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return failAll(fmt.Errorf("sqlitestore: commit: %w", err))
	}
	return errs
}

// txn is the writer's transaction as a write sees it.
type txn struct {
	ctx   context.Context
	tx    *sql.Tx
	stmts map[*sql.Stmt]*sql.Stmt
}

// stmt returns the prepared statement st bound to the transaction. The
// statement was prepared on the writer's one connection, so SQLite reuses
// it rather than preparing it again.
func (x *txn) stmt(st *sql.Stmt) *sql.Stmt {
	if s, ok := x.stmts[st]; ok {
		return s
	}
	if x.stmts == nil {
		x.stmts = make(map[*sql.Stmt]*sql.Stmt)
	}
	s := x.tx.StmtContext(x.ctx, st)
	x.stmts[st] = s
	return s
}

// exec runs st in the transaction.
func (x *txn) exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	return x.stmt(st).ExecContext(x.ctx, args...)
}

// queryRow runs st in the transaction and returns its first row.
func (x *txn) queryRow(st *sql.Stmt, args ...any) *sql.Row {
	return x.stmt(st).QueryRowContext(x.ctx, args...)
}
