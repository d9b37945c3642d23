// Package sqlitestore is the embedded oauthd.Storage: one SQLite file in WAL
// mode, through the pure-Go driver modernc.org/sqlite (no cgo).
//
// Open creates the file on first use and brings its schema up to date with
// the migrations embedded in the package:
//
//	store, err := sqlitestore.Open(ctx, "/var/lib/oauthd/oauthd.db", sqlitestore.Options{})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//
// A Store reads through a small pool of read-only connections and writes
// through a single connection owned by one writer goroutine. Every write is
// funnelled to that goroutine, which commits the writes waiting for it
// together: one IMMEDIATE transaction, so that concurrent writes share one
// commit (and, with Synchronous "FULL", one fsync) while each keeps its own
// outcome (a write that fails after changing rows makes the batch run again
// with a savepoint per write). Every caller is answered only after the commit. The
// single-use steps (ConsumeAuthCode, RedeemAuthCode, RotateRefreshToken,
// DeleteAuthRequest) are single conditional statements inside that
// transaction, never a read followed by a write. RedeemAuthCode
// (oauthd.CodeRedeemer) is one write: the conditional UPDATE that consumes
// the code, the caller's issue callback, run on the writer goroutine, and
// the inserts of the tokens, so a code redemption takes one trip through
// the writer instead of two.
//
// The WAL checkpoints (copying committed pages back into the database
// file, with two fsyncs) run on a connection of their own, kicked by the
// writer every 64 commits, so that writes do not wait for them; when the
// WAL reaches 2048 pages the writer finishes a checkpoint between two
// transactions so that the WAL starts over (see checkpointer).
//
// Token and User lookups go through a bounded read cache
// (Options.CacheSize). The store's own writes drop what they change before
// they return, so a revocation is seen by the next lookup; commits of other
// processes on the same file are noticed through PRAGMA data_version on the
// writer's connection, checked every 10 ms, and empty the cache.
//
// The store keeps times to the millisecond, as unix milliseconds; the zero
// time is stored as 0 and read back as the zero time. Scopes are stored
// space-separated, so a scope must not contain a space (RFC 6749 §3.3
// forbids it).
package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/oauthd/oauthd"
	"modernc.org/sqlite" // the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrSchemaVersion is returned (wrapped) by every operation of a store
// whose database schema is not the version this package needs: older (run
// Migrate) or newer (run a newer program).
var ErrSchemaVersion = errors.New("sqlitestore: wrong database schema version")

// errClosed is returned by every method after Close.
var errClosed = errors.New("sqlitestore: store is closed")

// Options configure Open. The zero value is the default.
type Options struct {
	// NoMigrate makes Open leave the schema alone. Until the schema is
	// current (see Migrate), every operation fails with ErrSchemaVersion.
	NoMigrate bool
	// Synchronous is the SQLite synchronous setting of the writer: "NORMAL"
	// (the default when empty), which in WAL mode may lose the last
	// transactions on power loss but never corrupts the file, or "FULL",
	// which syncs every commit.
	Synchronous string
	// CacheSize is how many tokens the read cache keeps (and a quarter as
	// many users): 0 is DefaultCacheSize, a negative value turns the cache
	// off. See Store.Token.
	CacheSize int
}

// busyTimeout is how long, in milliseconds, a connection waits for a lock
// another process holds before it gives up with SQLITE_BUSY.
const busyTimeout = 10000

// writerCacheKiB is the page cache of the writer's connection, in KiB:
// half SQLite's default of 2,000. The writes of a busy server touch the
// right-hand edges of the tables and indexes (time-ordered keys) and the
// codes and refresh tokens issued shortly before, which fit in it many
// times over; with the default, the cache's pages, allocated one by one
// as it fills, took the server's RSS from 36-38 MB to 42-45 MB within
// seconds of a code-redemption load test, over issue 8's 40 MB (and did
// not make it faster).
const writerCacheKiB = 1000

// readerCacheKiB is the page cache of each read connection and of the
// checkpointer's, in KiB (SQLite's default is 2,000). While the server
// writes, a reader's cache is emptied at the start of every read after a
// commit, so it serves little more than the pages of one lookup; but a
// scan fills it to the limit (the expiry sweep reads up to 50,000 rows of
// the tokens table), and the memory stays with the connection. Every page
// costs about 8 KiB of C memory (a 4 KiB page and its header in the
// allocator's 8 KiB size class): five connections at the default could
// hold 20 MB. At SQLite's default, the sweep that fell inside a
// code-redemption load test added 6 MB of RSS in about a third of the runs
// (peaks of 42.7-43.2 MB against 37 MB, over issue 8's 40 MB); at 256 KiB,
// 9 runs peaked at 36.8-38.5 MB with the same throughput.
const readerCacheKiB = 256

// readConns is the size of the read pool. WAL readers do not block each
// other or the writer.
const readConns = 4

// connectWriter makes the writer's first connection, which creates the
// file and switches it to WAL. Processes doing so at the same time on a new
// file can each hold what the other waits for; SQLite then answers one of
// them SQLITE_BUSY at once, without waiting out the busy timeout. That one
// tries again, a little later each time, until the busy timeout has passed
// (TestConcurrentOpen).
func connectWriter(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout * time.Millisecond)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// Store is an oauthd.Storage on one SQLite file. It is safe for concurrent
// use by many goroutines; several processes may open the same file.
type Store struct {
	wdb *sql.DB // the pool of the one write connection, which the writer holds (writer.conn)
	rdb *sql.DB // the read pool; query_only connections
	w   *writer
	// ckpt runs the WAL checkpoints on a connection of its own.
	ckpt *checkpointer

	cache *readCache // nil when off

	// sweepMu serialises DeleteExpired, whose token sweep goes on from
	// where the last one stopped (sweep.go).
	sweepMu sync.Mutex
	sweep   tokenSweep

	// st holds the prepared statements once the schema is current; nil
	// before. prepMu serialises preparing and migrating.
	st     atomic.Pointer[stmts]
	prepMu sync.Mutex

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

var (
	_ oauthd.Storage                = (*Store)(nil)
	_ oauthd.CodeRedeemer           = (*Store)(nil)
	_ oauthd.RefreshRotator         = (*Store)(nil)
	_ oauthd.SigningKeyBootstrapper = (*Store)(nil)
)

// createPrivate creates the empty file path, readable and writable by its
// owner only, whatever the umask: a new database holds password and secret
// hashes and the signing keys. SQLite creates the WAL and shared-memory
// files with the database file's permissions.
func createPrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

// checkWritable tells, in the operating system's words, why the database
// at path cannot be opened for writing: its directory is missing or not a
// directory, or the file exists but cannot be written. SQLite itself says
// only "unable to open database file", or, for a read-only file, opens it
// read-only and fails every write later, after the server has started and
// reported ready.
func checkWritable(path string) error {
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil {
		return fmt.Errorf("the directory %s: %w", dir, errors.Unwrap(err))
	} else if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // created on open
	} else if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("it is a directory, not a database file")
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("the database file cannot be written: %w", err)
	}
	return f.Close()
}

// openError is the error of opening the database at path (abs, made
// absolute). A directory the database cannot be created in, or in which
// SQLite cannot create the -wal and -shm files beside a database it can
// write (SQLITE_READONLY_DIRECTORY, "attempt to write a readonly
// database"), is named, with what it needs.
func openError(path, abs string, err error) error {
	var se *sqlite.Error
	if errors.Is(err, fs.ErrPermission) || errors.As(err, &se) && se.Code() == sqlite3.SQLITE_READONLY_DIRECTORY {
		return fmt.Errorf("sqlitestore: open %s: the directory %s is not writable by this user: the database's -wal and -shm files are created beside it, so the directory must be writable by the user the server runs as (%w)",
			path, filepath.Dir(abs), err)
	}
	if errors.Is(err, syscall.ENOSPC) || errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_FULL || se.Code()&0xff == sqlite3.SQLITE_IOERR && diskFull(abs)) {
		// SQLite says "disk I/O error" when it cannot grow its
		// shared-memory file on a full disk: an operator would suspect
		// the hardware.
		return fmt.Errorf("sqlitestore: open %s: the disk holding %s is full: free some space (%w)", path, filepath.Dir(abs), err)
	}
	return fmt.Errorf("sqlitestore: open %s: %w", path, err)
}

// Open opens the SQLite database at path, creating the file if it does not
// exist, and migrates its schema unless opts.NoMigrate is set. The database
// is put in WAL mode, with a busy timeout and foreign keys on.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlitestore: path %q must name a file", path)
	}
	syncMode := strings.ToUpper(opts.Synchronous)
	switch syncMode {
	case "":
		syncMode = "NORMAL"
	case "NORMAL", "FULL":
	default:
		return nil, fmt.Errorf("sqlitestore: Options.Synchronous is %q; want NORMAL or FULL", opts.Synchronous)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	if err := checkWritable(abs); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		if err := createPrivate(abs); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, openError(path, abs, err)
		}
	}
	uri := fileURI(abs)

	// wal_autocheckpoint: the checkpoints run on the checkpointer's
	// connection; the writer's own are a backstop (see checkpointer).
	//
	// temp_store=memory keeps the savepoints' statement journals in
	// memory: past 64 KiB SQLite would otherwise spill them to a
	// temporary file, a write() for every page a group commit touches.
	//
	// cache_size: see writerCacheKiB; journal_size_limit: see
	// walSizeLimit.
	wdb, err := sql.Open("sqlite", uri+fmt.Sprintf(
		"?_txlock=immediate&_busy_timeout=%d&_journal_mode=WAL&_synchronous=%s&_foreign_keys=1&_pragma=temp_store(memory)&_pragma=cache_size(-%d)&_pragma=wal_autocheckpoint(%d)&_pragma=journal_size_limit(%d)",
		busyTimeout, syncMode, writerCacheKiB, walBackstopPages, walSizeLimit))
	if err != nil {
		return nil, openError(path, abs, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	// Connecting creates the file and switches it to WAL before any
	// reader connects.
	if err := connectWriter(ctx, wdb); err != nil {
		wdb.Close()
		return nil, openError(path, abs, err)
	}

	rdb, err := sql.Open("sqlite", uri+fmt.Sprintf(
		"?_busy_timeout=%d&_foreign_keys=1&_query_only=1&_pragma=cache_size(-%d)", busyTimeout, readerCacheKiB))
	if err != nil {
		wdb.Close()
		return nil, openError(path, abs, err)
	}
	rdb.SetMaxOpenConns(readConns)
	rdb.SetMaxIdleConns(readConns)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)

	ckpt, err := newCheckpointer(ctx, uri, syncMode)
	if err != nil {
		rdb.Close()
		wdb.Close()
		return nil, openError(path, abs, err)
	}
	cache := newReadCache(opts.CacheSize)
	w, err := newWriter(ctx, wdb, cache, ckpt)
	if err != nil {
		cache.stop()
		ckpt.close()
		rdb.Close()
		wdb.Close()
		return nil, openError(path, abs, err)
	}
	s := &Store{wdb: wdb, rdb: rdb, w: w, ckpt: ckpt, cache: cache}
	if !opts.NoMigrate {
		err = s.Migrate(ctx)
	} else {
		err = s.tryPrepare(ctx)
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// fileURI returns the SQLite URI of the absolute path p.
func fileURI(p string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(filepath.ToSlash(p))
}

// tryPrepare prepares the statements if the schema is current, and leaves
// the store unprepared, with no error, if it is not.
func (s *Store) tryPrepare(ctx context.Context) error {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	_, err := s.prepareLocked(ctx)
	if errors.Is(err, ErrSchemaVersion) {
		return nil
	}
	return err
}

// lookup is the context of a point lookup: one row by its key, on the read
// pool. The caller's context was checked by ready just before; the lookup
// itself is not tied to it. With a context that can be cancelled, the
// driver starts a goroutine for every query to interrupt SQLite when the
// context ends, and database/sql starts another to close the rows: most of
// the cost of a lookup by key, which takes microseconds and waits for a
// connection only while other such lookups finish.
var lookup = context.Background()

// ready returns the prepared statements, preparing them first if another
// process has migrated the database since Open.
func (s *Store) ready(ctx context.Context) (*stmts, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	if s.closed.Load() {
		return nil, unavailable(errClosed)
	}
	if st := s.st.Load(); st != nil {
		return st, nil
	}
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	return s.prepareLocked(ctx)
}

// prepareLocked checks the schema version and prepares the statements.
// The caller holds s.prepMu.
func (s *Store) prepareLocked(ctx context.Context) (*stmts, error) {
	if st := s.st.Load(); st != nil {
		return st, nil
	}
	v, err := schemaVersion(ctx, s.rdb)
	if err != nil {
		return nil, err
	}
	switch {
	case v < latestVersion:
		return nil, fmt.Errorf("%w: the database is at version %d, this program needs %d: it must be migrated first (oauthd migrate, or the store's Migrate)", ErrSchemaVersion, v, latestVersion)
	case v > latestVersion:
		return nil, fmt.Errorf("%w: the database is at version %d, newer than this program's %d", ErrSchemaVersion, v, latestVersion)
	}
	var st *stmts
	err = s.w.withConn(func(c *sql.Conn) (err error) {
		st, err = prepare(ctx, s.rdb, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.st.Store(st)
	return st, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	if err := s.rdb.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlitestore: ping: %w", err)
	}
	return nil
}

// WriteStats count the store's writes and the transactions that carried
// them since Open: Writes / Transactions is the average group commit size.
type WriteStats struct {
	Transactions int64
	Writes       int64
	// Checkpoints counts the WAL checkpoints run off the writer,
	// CheckpointFailures those that failed (a failed checkpoint loses
	// nothing: its pages wait in the WAL for the next), and
	// WriterCheckpoints the small ones the writer runs so that the WAL
	// starts over (see Open).
	Checkpoints, CheckpointFailures, WriterCheckpoints int64
}

// WriteStats returns the counts of writes and transactions so far.
func (s *Store) WriteStats() WriteStats {
	return WriteStats{Transactions: s.w.txns.Load(), Writes: s.w.writes.Load(),
		Checkpoints: s.ckpt.runs.Load(), CheckpointFailures: s.ckpt.failures.Load(), WriterCheckpoints: s.w.finishes.Load()}
}

// Close waits for the writes in progress, then closes the database. Every
// later call fails.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.w.close()
		s.cache.stop()
		var errs []error
		errs = append(errs, s.ckpt.close())
		if st := s.st.Load(); st != nil {
			errs = append(errs, st.close())
		}
		errs = append(errs, s.w.releaseConn())
		// PRAGMA optimize is advice to the query planner, run on close as
		// SQLite recommends; its failure harms nothing. It may write, so
		// it waits for the write lock, but only briefly: behind another
		// process's transaction it would hold up a shutdown (or a failed
		// start) for the whole busy timeout.
		if c, err := s.wdb.Conn(context.Background()); err == nil {
			if _, err := c.ExecContext(context.Background(), `PRAGMA busy_timeout = 100`); err == nil {
				_, _ = c.ExecContext(context.Background(), `PRAGMA optimize`)
			}
			c.Close()
		}
		errs = append(errs, s.rdb.Close(), s.wdb.Close())
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("sqlitestore: close: %w", err)
		}
	})
	return s.closeErr
}
