package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// In WAL mode a commit appends pages to the -wal file; a checkpoint copies
// them back into the database file, with an fsync of the WAL before and
// one of the database after (Synchronous NORMAL and FULL alike). SQLite's
// default runs that checkpoint inside the commit that takes the WAL past
// 1000 pages, on the committing connection: here the writer goroutine,
// which every write of the process waits for. Under load that was about
// ten checkpoints a second, each holding the writer (and so every request
// that writes) for the length of two fsyncs; where an fsync takes
// milliseconds, it doubled the p99 latency of token issuance.
//
// A checkpointer runs the checkpoints on a connection of its own instead.
// The writer kicks it every checkpointEvery commits, and it runs a PASSIVE
// checkpoint: one that takes no lock a writer or a reader waits for, so
// the writer keeps committing while the pages are copied and synced.
//
// A passive checkpoint copies the frames committed before it started. The
// WAL starts over from its beginning (instead of growing) only when a
// write transaction begins with every frame copied back, and under
// constant writes some always arrive during the checkpoint. So once the
// WAL holds restartFrames frames, the checkpointer catches up (see
// catchUp) and hands over: it sets finish and runs no checkpoint until
// the writer, between two transactions, has run one on its own
// connection. That one copies only the frames committed during the
// checkpointer's last, short checkpoint, and the writer's next
// transaction starts the WAL over.
//
// The writer keeps SQLite's automatic checkpoint too, at walBackstopPages:
// should the checkpointer fail, the WAL still does not grow without bound.

// checkpointEvery is how many of the writer's commits it takes to kick the
// checkpointer: a busy server's group commits write about ten pages each,
// so about as many pages as SQLite's default (1000). Measured with oauthd
// bench (64 connections): 256 served as many client_credentials tokens,
// but its longer checkpoints put the p99 latency of refresh and code
// redemption above 100 ms, against 25-28 ms with 64 (and 33-43 ms with
// SQLite's own checkpoints on the writer).
const checkpointEvery = 64

// restartFrames is the size of the WAL, in frames (pages), at which the
// checkpointer has the writer finish a checkpoint so that the WAL starts
// over.
const restartFrames = 2048

// walBackstopPages is the writer connection's wal_autocheckpoint.
const walBackstopPages = 4 * restartFrames

// walSizeLimit is the writer connection's journal_size_limit, in bytes:
// when the WAL starts over, SQLite cuts a -wal file larger than this back
// to it. SQLite reuses the file from its start rather than shrink it, so
// without a limit the file keeps the largest size it ever reached (48.5
// MB after a flood of pending authorization requests and their deletion,
// in a load test). Twice the size at which the checkpointer has the WAL
// start over (restartFrames pages of 4 KiB), so that a steady load, whose
// WAL starts over at about 8 MiB, never pays for cutting the file and
// growing it again.
const walSizeLimit = 16 << 20

type checkpointer struct {
	db   *sql.DB
	stmt *sql.Stmt // PRAGMA wal_checkpoint(PASSIVE)
	kick chan struct{}
	done chan struct{}

	// finish is set by the checkpointer when the WAL has grown to
	// restartFrames, and cleared by the writer once it has run a
	// checkpoint (see writer.finishCheckpoint).
	finish atomic.Bool

	// runs counts the checkpoints run (once done), failures those that
	// failed (a failure loses nothing: the frames stay in the WAL, and
	// the next checkpoint, or the writer's, copies them).
	runs, failures atomic.Int64
}

// newCheckpointer opens its connection to the database at uri (already in
// WAL mode) with the writer's synchronous setting, which decides the
// checkpoint's fsyncs, and starts its goroutine.
func newCheckpointer(ctx context.Context, uri, syncMode string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", uri+fmt.Sprintf("?_busy_timeout=%d&_synchronous=%s&_pragma=cache_size(-%d)", busyTimeout, syncMode, readerCacheKiB))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	stmt, err := db.PrepareContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	if err != nil {
		db.Close()
		return nil, err
	}
	c := &checkpointer{db: db, stmt: stmt, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// notify asks for a checkpoint without waiting: a kick that finds one
// pending adds nothing.
func (c *checkpointer) notify() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for range c.kick {
		if c.finish.Load() {
			continue // the writer's turn
		}
		if frames, ok := c.catchUp(); ok && frames >= restartFrames {
			c.finish.Store(true)
		}
	}
}

// catchUpPasses bounds the passes of catchUp; catchUpFrames is what a pass
// may copy for catchUp to stop.
const (
	catchUpPasses = 5
	catchUpFrames = 64
)

// catchUp runs passive checkpoints until one copies at most catchUpFrames
// frames (or catchUpPasses have run), and returns the number of frames in
// the WAL. Each pass copies what was committed during the one before, a
// fraction of it: a pass of 5,000 frames takes some 100 ms, during which
// a busy writer commits about 1,000, which a second pass copies in 20 ms,
// and so on. What the writer then copies to finish (see writer.
// finishCheckpoint), holding every write meanwhile, is only what was
// committed during the last, short pass: finishing after a single pass
// held the writes for 40-50 ms under refresh-token load.
func (c *checkpointer) catchUp() (frames int64, ok bool) {
	prev := int64(-1)
	for range catchUpPasses {
		var copied int64
		frames, copied, ok = c.checkpoint()
		if !ok {
			return frames, false
		}
		// copied counts from the start of the WAL; a smaller count than
		// the last pass's means the WAL started over in between.
		n := copied
		if prev >= 0 && copied >= prev {
			n = copied - prev
		}
		prev = copied
		if n <= catchUpFrames {
			break
		}
	}
	return frames, true
}

// checkpoint runs one passive checkpoint and returns the number of frames
// in the WAL and how many of them have been copied back.
func (c *checkpointer) checkpoint() (frames, copied int64, ok bool) {
	var busy int64
	// busy is 1 when another connection held the checkpoint lock (another
	// process's checkpoint); nothing is lost then either.
	err := c.stmt.QueryRowContext(context.Background()).Scan(&busy, &frames, &copied)
	if err != nil {
		c.failures.Add(1)
	}
	c.runs.Add(1)
	return frames, copied, err == nil
}

// truncateWAL runs a TRUNCATE checkpoint on the writer's connection,
// between two of its transactions: it copies every frame of the WAL back
// into the database file, waiting up to the busy timeout for the readers
// that still need one, and cuts the -wal file to nothing, which gives its
// space back to the file system. It fails when a frame cannot be copied:
// on a full disk, a page the database file does not have yet, which would
// grow it. A failed checkpoint loses nothing.
func (s *Store) truncateWAL(ctx context.Context) error {
	return s.w.withConn(func(c *sql.Conn) error {
		for range 3 {
			var busy, frames, copied int64
			if err := c.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil {
				return fmt.Errorf("sqlitestore: WAL checkpoint: %w", err)
			}
			if busy == 0 {
				return nil
			}
			// Another connection (the checkpointer's, or another
			// process's) held the checkpoint lock.
			time.Sleep(10 * time.Millisecond)
		}
		return errors.New("sqlitestore: WAL checkpoint: busy")
	})
}

// close stops the goroutine after the checkpoint in progress, if any, and
// closes the connection. The writer must be closed first: it is the one
// that kicks.
func (c *checkpointer) close() error {
	close(c.kick)
	<-c.done
	c.stmt.Close()
	return c.db.Close()
}
