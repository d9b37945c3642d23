package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
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
// WAL holds restartFrames frames, the checkpointer hands over: it sets
// finish and runs no checkpoint until the writer, between two
// transactions, has run one on its own connection. That one copies only
// the frames committed during the checkpointer's last checkpoint, and the
// writer's next transaction starts the WAL over.
//
// The writer keeps SQLite's automatic checkpoint too, at walBackstopPages:
// should the checkpointer fail, the WAL still does not grow without bound.

// checkpointEvery is how many of the writer's commits it takes to kick the
// checkpointer. A busy server's group commits write about ten pages each,
// so that is some 2,500 pages: one checkpoint where SQLite's default would
// run two or three, and the pages many commits change (the last leaf of
// every index) are copied back fewer times. Measured with oauthd bench
// (client_credentials, 64 connections): 256 served 7-10% more than 64;
// 1024 no more than 256, and its larger remainders made the writer's own
// checkpoints (see below) hold writes for up to 200 ms.
const checkpointEvery = 256

// restartFrames is the size of the WAL, in frames (pages), at which the
// checkpointer has the writer finish a checkpoint so that the WAL starts
// over.
const restartFrames = 2048

// walBackstopPages is the writer connection's wal_autocheckpoint.
const walBackstopPages = 4 * restartFrames

type checkpointer struct {
	db   *sql.DB
	stmt *sql.Stmt // PRAGMA wal_checkpoint(PASSIVE)
	kick chan struct{}
	done chan struct{}

	// finish is set by the checkpointer when the WAL has grown to
	// restartFrames, and cleared by the writer once it has run a
	// checkpoint (see writer.finishCheckpoint).
	finish atomic.Bool

	// runs counts the checkpoints run (once done); failures those that failed (a
	// failure loses nothing: the frames stay in the WAL, and the next
	// checkpoint, or the writer's, copies them).
	runs, failures atomic.Int64
}

// newCheckpointer opens its connection to the database at uri (already in
// WAL mode) with the writer's synchronous setting, which decides the
// checkpoint's fsyncs, and starts its goroutine.
func newCheckpointer(ctx context.Context, uri, syncMode string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", uri+fmt.Sprintf("?_busy_timeout=%d&_synchronous=%s", busyTimeout, syncMode))
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
		if frames, ok := c.checkpoint(); ok && frames >= restartFrames {
			c.finish.Store(true)
		}
	}
}

// checkpoint runs one passive checkpoint and returns the number of frames
// in the WAL.
func (c *checkpointer) checkpoint() (frames int64, ok bool) {
	var busy, copied int64
	// busy is 1 when another connection held the checkpoint lock (another
	// process's checkpoint); nothing is lost then either.
	err := c.stmt.QueryRowContext(context.Background()).Scan(&busy, &frames, &copied)
	if err != nil {
		c.failures.Add(1)
	}
	c.runs.Add(1)
	return frames, err == nil
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
