package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthd/oauthd"
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
	claim *claim // the code or refresh token fn starts with, if any
	state atomic.Int32
	done  chan error // buffered; receives the op's outcome after commit
}

// A writer owns the one write connection. One goroutine takes the writes
// waiting for it and commits them together: group commit. A write that
// fails is rolled back alone (the batch runs again with a savepoint per
// write when needed, see runTx), and every caller hears its outcome only
// once the transaction has committed.
//
// Writers that arrive while a transaction commits wait for the next one, so
// a lone write is never delayed and concurrent writes share commits.
type writer struct {
	ops chan *writeOp

	// conn is the one write connection, held by the writer for the life
	// of the store. Its statements, the store's writes among them
	// (stmts), are prepared on it, and a transaction is the prepared
	// BEGIN IMMEDIATE and COMMIT run on it: database/sql's own
	// transactions cost the writer, for every batch, a goroutine (the
	// Tx's context watcher, whose start often woke an idle thread), a
	// statement rebound for every statement the batch runs, and the
	// driver's preparing BEGIN and COMMIT again each time. connMu is held
	// while the conn is in use: by the writer goroutine for a batch, a
	// check or a checkpoint, and by withConn for migrations and
	// preparing, which so never run inside a batch's transaction.
	conn   *sql.Conn
	connMu sync.Mutex

	begin, commitStmt, rollback    *sql.Stmt
	savepoint, release, rollbackTo *sql.Stmt
	// dataVersionStmt is PRAGMA data_version, prepared once: checkForeign
	// runs it a hundred times a second, and preparing it each time cost a
	// parse and a schema check that, under load, made the checks take a
	// tenth of the CPU of an idle-writer server.
	dataVersionStmt *sql.Stmt
	// checkpointStmt is PRAGMA wal_checkpoint(PASSIVE), for
	// finishCheckpoint.
	checkpointStmt *sql.Stmt

	// txns and writes count the transactions committed (or tried) and
	// the writes they held; reruns counts the batches run again with
	// savepoints after a write failed (see runTx); finishes counts the
	// writer's own checkpoints (see finishCheckpoint).
	txns, writes, reruns, finishes atomic.Int64
	// codeSets and refreshSets count the batches whose codes were
	// consumed together, and whose refresh tokens were read together
	// (txn.readClaims).
	codeSets, refreshSets atomic.Int64

	// foreign, if set, is the read cache that the writer goroutine empties
	// when another connection (another process) has committed to the
	// database since the last check, and tells of each check: see
	// checkForeign. lastCheck is when the last check began.
	foreign     *readCache
	dataVersion int64
	lastCheck   time.Duration

	// pending is the buffer of the token rows a batch defers (see
	// txn.flushTokens), kept from one batch to the next.
	pending []any

	// ckpt, if set, is kicked every checkpointEvery commits (see
	// checkpointer); commits counts the commits since the last kick.
	ckpt    *checkpointer
	commits int

	mu     sync.RWMutex // held to send on ops; Lock to close it
	closed bool
	done   chan struct{} // closed when the goroutine has ended
}

func newWriter(ctx context.Context, db *sql.DB, foreign *readCache, ckpt *checkpointer) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{conn: conn, ops: make(chan *writeOp, maxBatch), done: make(chan struct{}), foreign: foreign, ckpt: ckpt}
	for _, p := range []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.begin, `BEGIN IMMEDIATE`},
		{&w.commitStmt, `COMMIT`},
		{&w.rollback, `ROLLBACK`},
		{&w.savepoint, `SAVEPOINT op`},
		{&w.release, `RELEASE op`},
		{&w.rollbackTo, `ROLLBACK TO op`},
		{&w.dataVersionStmt, `PRAGMA data_version`},
		{&w.checkpointStmt, `PRAGMA wal_checkpoint(PASSIVE)`},
	} {
		st, err := conn.PrepareContext(ctx, p.query)
		if err != nil {
			w.closeStmts()
			w.conn.Close()
			return nil, err
		}
		*p.dst = st
	}
	if foreign != nil {
		start := monotonic()
		if err := w.dataVersionStmt.QueryRowContext(ctx).Scan(&w.dataVersion); err != nil {
			w.closeStmts()
			w.conn.Close()
			return nil, err
		}
		w.lastCheck = start
		foreign.checked()
	}
	go w.run()
	return w, nil
}

// do runs fn in the writer's next transaction and returns fn's error once
// that transaction has committed; if the commit fails, every write in it
// fails with the commit's error. If ctx ends before the writer takes fn,
// fn never runs and do returns ctx's error; once the writer has taken fn, do
// waits for its outcome, which is ctx's error, with nothing of fn
// committed, if ctx ended before the commit (see abandoned). fn must use only the txn it is given, and may be
// run more than once (the last run counts; see runTx): it must assign its
// results afresh on every run and do nothing outside the transaction.
func (w *writer) do(ctx context.Context, fn func(*txn) error) error {
	return w.doClaim(ctx, fn, nil)
}

// doClaim is do for an fn that starts with the single-use credential c
// names (see claim); c may be nil.
func (w *writer) doClaim(ctx context.Context, fn func(*txn) error, c *claim) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	op := &writeOp{ctx: ctx, fn: fn, claim: c, done: make(chan error, 1)}
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
// the writer's statements. The connection stays open for the statements
// prepared on it with withConn, until releaseConn.
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

// releaseConn gives the write connection back to its pool, after close
// and after the statements prepared on it are closed.
func (w *writer) releaseConn() error {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	return w.conn.Close()
}

// withConn runs fn with the write connection, between two of the writer's
// transactions. fn must leave no transaction open.
func (w *writer) withConn(fn func(*sql.Conn) error) error {
	w.connMu.Lock()
	defer w.connMu.Unlock()
	return fn(w.conn)
}

func (w *writer) closeStmts() {
	for _, st := range []*sql.Stmt{w.begin, w.commitStmt, w.rollback, w.savepoint, w.release, w.rollbackTo, w.dataVersionStmt, w.checkpointStmt} {
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
		w.connMu.Lock()
		w.commit(batch)
		w.connMu.Unlock()
		clear(batch)
		// Under constant writes the ticker's turn in the select above is
		// left to chance: check here too once one is due, so that the
		// read cache stays fresh (see readCache.fresh).
		if w.foreign != nil && monotonic()-w.lastCheck >= foreignCheckInterval {
			w.checkForeign()
		}
		if w.ckpt != nil {
			if w.ckpt.finish.Load() {
				w.finishCheckpoint()
			}
			if w.commits++; w.commits >= checkpointEvery {
				w.commits = 0
				w.ckpt.notify()
			}
		}
	}
}

// foreignCheckInterval is how often the writer asks SQLite whether another
// connection has committed: the longest a change made by another process
// (the oauthd CLI, a second server on the same file) can stay unseen by the
// read cache.
const foreignCheckInterval = 10 * time.Millisecond

// checkForeign empties the read cache if another connection committed
// since the last check, and tells the cache when this check began. PRAGMA
// data_version on a connection changes only with the commits of other
// connections, and only the writer's connection writes in this process, so
// a change is another process's commit. A failed check counts as a change,
// and does not count as a check: until one succeeds, the cache is not used.
func (w *writer) checkForeign() {
	var v int64
	start := monotonic()
	w.connMu.Lock()
	err := w.dataVersionStmt.QueryRowContext(context.Background()).Scan(&v)
	w.connMu.Unlock()
	w.lastCheck = start
	if err != nil || v != w.dataVersion {
		w.dataVersion = v
		w.foreign.clear()
	}
	if err == nil {
		w.foreign.checked()
	}
}

// finishCheckpoint runs a passive checkpoint on the writer's connection,
// between two transactions, when the checkpointer has handed over: no
// frame is added while it runs, so it copies every frame back (unless a
// reader still needs one), and the next transaction starts the WAL over.
// See checkpointer.
func (w *writer) finishCheckpoint() {
	var busy, frames, copied int64
	// An error loses nothing: the checkpointer asks again.
	w.connMu.Lock()
	_ = w.checkpointStmt.QueryRowContext(context.Background()).Scan(&busy, &frames, &copied)
	w.connMu.Unlock()
	w.finishes.Add(1)
	w.ckpt.finish.Store(false)
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
	for len(ops) > 0 {
		errs := w.runTx(ops)
		if len(errs) == 0 || errs[0] != errSomeAbandoned {
			for i, op := range ops {
				op.done <- errs[i]
			}
			return
		}
		// Rolled back because some callers gave up before the commit
		// (see abandoned): they hear so, and the others' writes run
		// again without theirs. Each round leaves one out at least.
		live := ops[:0]
		for _, op := range ops {
			if err := op.ctx.Err(); err != nil {
				op.done <- fmt.Errorf("sqlitestore: not committed: %w", err)
			} else {
				live = append(live, op)
			}
		}
		ops = live
	}
}

// errSomeAbandoned is the outcome of every write of a batch rolled back
// because some of its callers gave up before the commit: commit runs the
// others again.
var errSomeAbandoned = errors.New("sqlitestore: some writes of the batch were given up")

// runTx runs ops in one transaction and returns their outcomes. The
// statements run with a context of their own: a caller's context must not
// interrupt a transaction that other callers' writes share.
//
// A batch first runs optimistically, without a savepoint per write: the
// savepoints (two statements a write, and a copy of every page a write
// touches into SQLite's statement journal) cost as much writer CPU as a
// token insert, and almost every write succeeds. If a write fails after it
// may have changed rows, the transaction is rolled back and the batch runs
// again with a savepoint per write, which rolls the failing write back
// alone. Every write function is safe to run twice for that: it assigns its
// outputs afresh on each run and has no effect outside the transaction.
func (w *writer) runTx(ops []*writeOp) []error {
	if len(ops) > 1 {
		if errs, ok := w.runOptimistic(ops); ok {
			return errs
		}
		w.reruns.Add(1)
	}
	return w.runSavepoints(ops)
}

// failAll sets every outcome to err.
func failAll(errs []error, err error) []error {
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// runOptimistic runs ops in one transaction without savepoints. It
// returns false, having rolled the transaction back, if a write failed in
// a way only a savepoint can undo.
//
// A write that failed cleanly stays in the transaction with its error: it
// changed no row (txn.wrote), and its error is one of the store's expected
// outcomes (not found, already exists, already used), which a write
// returns only after its statements completed or failed on a constraint.
// SQLite undoes a failed statement by itself and keeps the transaction
// open on a constraint error; any other error (I/O, disk full) may have
// ended the transaction, so it takes the savepoint path, which notices.
func (w *writer) runOptimistic(ops []*writeOp) ([]error, bool) {
	ctx := context.Background()
	errs := make([]error, len(ops))
	if err := w.beginTx(ops); err != nil {
		return failAll(errs, err), true
	}
	x := &txn{ctx: ctx, deferTokens: true, pending: w.pending[:0]}
	defer func() {
		clear(x.pending)
		w.pending = x.pending[:0]
	}()
	if err := x.readClaims(ops); err != nil {
		w.rollbackTx(ctx)
		return nil, false
	}
	if x.codes != nil {
		w.codeSets.Add(1)
	}
	if x.refresh != nil {
		w.refreshSets.Add(1)
	}
	for i, op := range ops {
		x.wrote = false
		mark := len(x.pending)
		errs[i] = op.fn(x)
		if errs[i] != nil {
			x.pending = x.pending[:mark] // a failed write stores nothing
			if x.wrote || !expected(errs[i]) {
				w.rollbackTx(ctx)
				return nil, false
			}
		}
	}
	if !x.flushTokens() {
		w.rollbackTx(ctx)
		return nil, false
	}
	if gone := abandoned(ops); gone > 0 {
		w.rollbackTx(ctx)
		return failAll(errs, errSomeAbandoned), true
	}
	if err := w.commitTx(ctx); err != nil {
		return failAll(errs, err), true
	}
	return errs, true
}

// abandoned counts the writes of a batch given up by their callers (the
// context ended: the client went away, or the server ended the request at
// its shutdown timeout) while the batch ran. Nobody would be told of such
// a write's outcome, and committing it would make the caller's retry find
// its code used up or its refresh token rotated, which revokes the grant:
// the batch is rolled back instead, and commit runs the other writes
// again.
func abandoned(ops []*writeOp) int {
	n := 0
	for _, op := range ops {
		if op.ctx.Err() != nil {
			n++
		}
	}
	return n
}

// beginTx begins the writer's transaction for ops (BEGIN IMMEDIATE: it
// takes the write lock at once, waiting for it up to the busy timeout
// while another process holds it). The wait is cut into slices of
// beginSlice, and it ends early once every caller of ops has given up (a
// server ending its requests at its shutdown timeout must not wait out
// the busy timeout behind another process's lock); SQLite interrupts the
// wait when the statement's context ends.
func (w *writer) beginTx(ops []*writeOp) error {
	deadline := time.Now().Add(busyTimeout * time.Millisecond)
	for {
		end := time.Now().Add(beginSlice)
		if end.After(deadline) {
			end = deadline
		}
		ctx, cancel := context.WithDeadline(context.Background(), end)
		_, err := w.begin.ExecContext(ctx)
		sliced := ctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			return nil
		case !sliced && !errors.Is(err, context.DeadlineExceeded):
			return fmt.Errorf("sqlitestore: begin: %w", err)
		}
		// Interrupted: in case the lock was taken as the slice ended, no
		// transaction is left open.
		w.rollbackTx(context.Background())
		switch {
		case !time.Now().Before(deadline):
			return fmt.Errorf("sqlitestore: begin: another process held the write lock for the busy timeout (%d ms): %w", busyTimeout, oauthd.ErrUnavailable)
		case abandoned(ops) == len(ops):
			return errSomeAbandoned // commit tells each caller
		}
	}
}

// beginSlice is how long BEGIN waits for the write lock before the writer
// looks whether the batch's callers are still there.
const beginSlice = 100 * time.Millisecond

// rollbackTx rolls the writer's transaction back. It fails only when no
// transaction is open (SQLite may have rolled it back itself after an I/O
// error), which leaves nothing to do.
func (w *writer) rollbackTx(ctx context.Context) {
	_, _ = w.rollback.ExecContext(ctx)
}

// commitTx commits the writer's transaction. A COMMIT that fails may leave
// the transaction open (SQLITE_BUSY); it is rolled back, so the next batch
// starts afresh and nothing of this one is kept.
func (w *writer) commitTx(ctx context.Context) error {
	if _, err := w.commitStmt.ExecContext(ctx); err != nil {
		w.rollbackTx(ctx)
		return fmt.Errorf("sqlitestore: commit: %w", err)
	}
	return nil
}

// expected reports whether err is an outcome a write returns on its own
// accord (see runOptimistic), not a failure of the database.
func expected(err error) bool {
	return errors.Is(err, oauthd.ErrNotFound) || errors.Is(err, oauthd.ErrAlreadyExists) ||
		errors.Is(err, oauthd.ErrAlreadyUsed) || errors.Is(err, errRefused)
}

// runSavepoints runs ops in one transaction, each in a savepoint of its
// own, so a failing write is rolled back alone.
func (w *writer) runSavepoints(ops []*writeOp) []error {
	ctx := context.Background()
	errs := make([]error, len(ops))
	if err := w.beginTx(ops); err != nil {
		return failAll(errs, err)
	}
	x := &txn{ctx: ctx}
	if len(ops) == 1 {
		// A lone write needs no savepoint: the transaction is its own.
		if err := ops[0].fn(x); err != nil {
			w.rollbackTx(ctx)
			return failAll(errs, err)
		}
	} else {
		for i, op := range ops {
			if _, err := w.savepoint.ExecContext(ctx); err != nil {
				w.rollbackTx(ctx)
				return failAll(errs, fmt.Errorf("sqlitestore: savepoint: %w", err))
			}
			errs[i] = op.fn(x)
			if errs[i] != nil {
				// A failed statement may have changed rows before it
				// failed; undo everything this op did. If SQLite rolled
				// back the whole transaction (I/O error, disk full),
				// this fails too, and so does every op of the batch.
				if _, err := w.rollbackTo.ExecContext(ctx); err != nil {
					w.rollbackTx(ctx)
					return failAll(errs, fmt.Errorf("sqlitestore: rollback to savepoint: %w (after: %w)", err, errs[i]))
				}
			}
			if _, err := w.release.ExecContext(ctx); err != nil {
				w.rollbackTx(ctx)
				return failAll(errs, fmt.Errorf("sqlitestore: release savepoint: %w", err))
			}
		}
	}
	if abandoned(ops) > 0 {
		w.rollbackTx(ctx)
		return failAll(errs, errSomeAbandoned)
	}
	if err := w.commitTx(ctx); err != nil {
		return failAll(errs, err)
	}
	return errs
}

// txn is the writer's transaction as a write sees it.
type txn struct {
	ctx context.Context

	// wrote is set when a statement of the current write may have changed
	// a row; see runOptimistic.
	wrote bool

	// deferTokens is set in runOptimistic's transactions: createTokens
	// then leaves its rows in pending, for flushTokens to insert at the
	// end of the batch with a statement per up to 32 rows, instead of a
	// statement per write. insertTokens are the statements it uses.
	deferTokens  bool
	pending      []any // tokenParams arguments a row
	insertTokens *[insertTokensLevels]*sql.Stmt

	// codes and refresh are the outcomes of readClaims, for consumeCode
	// and refreshToken to take.
	codes   map[string]outcome[*oauthd.AuthCode]
	refresh map[string]outcome[*oauthd.Token]
}

// exec runs st in the transaction. A statement that failed changed
// nothing (SQLite undoes it); one that completed changed the rows it
// reports (sqlite3_changes, read when it completed).
func (x *txn) exec(st *sql.Stmt, args ...any) (sql.Result, error) {
	res, err := st.ExecContext(x.ctx, args...)
	if err == nil {
		if n, err := res.RowsAffected(); err != nil || n != 0 {
			x.wrote = true
		}
	}
	return res, err
}

// readRow runs st, a SELECT, in the transaction and returns its first row.
func (x *txn) readRow(st *sql.Stmt, args ...any) *sql.Row {
	return st.QueryRowContext(x.ctx, args...)
}
