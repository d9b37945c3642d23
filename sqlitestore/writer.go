package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
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
	// dataVersionStmt is PRAGMA data_version, prepared once: checkForeign
	// runs it a hundred times a second, and preparing it each time cost a
	// parse and a schema check that, under load, made the checks take a
	// tenth of the CPU of an idle-writer server.
	dataVersionStmt *sql.Stmt

	// txns and writes count the transactions committed (or tried) and
	// the writes they held.
	txns, writes atomic.Int64

	// foreign, if set, is called by the writer goroutine when another
	// connection (another process) has committed to the database since the
	// last check: see checkForeign.
	foreign     func()
	dataVersion int64

	mu     sync.RWMutex // held to send on ops; Lock to close it
	closed bool
	done   chan struct{} // closed when the goroutine has ended
}

func newWriter(ctx context.Context, db *sql.DB, foreign func()) (*writer, error) {
	w := &writer{db: db, ops: make(chan *writeOp, maxBatch), done: make(chan struct{}), foreign: foreign}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.savepoint, `SAVEPOINT op`},
		{&w.release, `RELEASE op`},
		{&w.rollbackTo, `ROLLBACK TO op`},
		{&w.dataVersionStmt, `PRAGMA data_version`},
	} {
		st, err := db.PrepareContext(ctx, p.query)
		if err != nil {
			w.closeStmts()
			return nil, err
		}
		*p.dst = st
	}
	if foreign != nil {
		if err := w.dataVersionStmt.QueryRowContext(ctx).Scan(&w.dataVersion); err != nil {
			w.closeStmts()
			return nil, err
		}
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
	for _, st := range []*sql.Stmt{w.savepoint, w.release, w.rollbackTo, w.dataVersionStmt} {
		if st != nil {
			st.Close()
		}
	}
}

// run is the writer goroutine: it takes a write, adds those already
// waiting, and commits them together.
func (w *writer) run() {
	defer close(w.done)
	var tick <-chan time.Time
	if w.foreign != nil {
		t := time.NewTicker(foreignCheckInterval)
		defer t.Stop()
		tick = t.C
	}
	batch := make([]*writeOp, 0, maxBatch)
	for {
		var op *writeOp
		select {
		case o, ok := <-w.ops:
			if !ok {
				return
			}
			op = o
		case <-tick:
			w.checkForeign()
			continue
		}
		batch = append(batch[:0], op)
		batch = w.fill(batch)
		// Before committing, let the goroutines that are about to write
		// run: on a busy server they queue their writes within
		// microseconds, and every write that joins this transaction
		// shares its commit (its lock, its WAL write, the pages it
		// touches) instead of paying for one of its own. When nothing
		// else is runnable, Gosched returns at once: a lone write is not
		// delayed.
		for range maxYields {
			n := len(batch)
			if n >= maxBatch {
				break
			}
			runtime.Gosched()
			if batch = w.fill(batch); len(batch) == n {
				break
			}
		}
		w.txns.Add(1)
		w.writes.Add(int64(len(batch)))
		w.commit(batch)
		clear(batch)
	}
}

// foreignCheckInterval is how often the writer asks SQLite whether another
// connection has committed: the longest a change made by another process
// (the oauthd CLI, a second server on the same file) can stay unseen by the
// read cache.
const foreignCheckInterval = 10 * time.Millisecond

// checkForeign calls w.foreign if another connection committed since the
// last check. PRAGMA data_version on a connection changes only with the
// commits of other connections, and only the writer's connection writes in
// this process, so a change is another process's commit. A failed check
// counts as a change.
func (w *writer) checkForeign() {
	var v int64
	err := w.dataVersionStmt.QueryRowContext(context.Background()).Scan(&v)
	if err != nil || v != w.dataVersion {
		w.dataVersion = v
		w.foreign()
	}
}

// maxYields bounds how many times the writer yields to gather a batch.
const maxYields = 4

// fill adds the writes already waiting to batch, up to maxBatch.
func (w *writer) fill(batch []*writeOp) []*writeOp {
	for len(batch) < maxBatch {
		select {
		case op, ok := <-w.ops:
			if !ok {
				return batch
			}
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
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
