// Package pgstore is the oauthd.Storage for PostgreSQL, through
// github.com/jackc/pgx/v5 and its connection pool. Several oauthd nodes may
// share one database: every record lives in it, and the single-use steps
// are single conditional statements that stay correct at PostgreSQL's
// default isolation level, READ COMMITTED.
//
// Open connects, and brings the schema up to date with the migrations
// embedded in the package:
//
//	store, err := pgstore.Open(ctx, "postgres://oauthd@db.example.com/oauthd", pgstore.Options{})
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//
// The DSN is a postgres:// URL or a key=value connection string, as pgx
// reads it; pool settings may be given in it (pool_max_conns,
// pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time...) or in
// Options, which win. Without connect_timeout in the DSN, connecting gives up
// after 5 seconds.
//
// How the dangerous steps stay safe with many nodes:
//
//   - ConsumeAuthCode is one UPDATE ... WHERE used_at IS NULL RETURNING:
//     PostgreSQL lets exactly one of concurrent updates of the row find it
//     unused. A call that finds no row then reads the code to tell an
//     already used code (ErrAlreadyUsed) from an unknown one.
//   - RedeemAuthCode is the same UPDATE and the INSERT of the code's
//     tokens, in one transaction with one commit: the tokens are stored
//     only if the code was consumed, and the code stays unused if they
//     cannot be or the engine refuses the request (rollback).
//   - RotateRefreshToken is one UPDATE ... WHERE rotated_at IS NULL and the
//     INSERT of the successors, in one transaction.
//   - RevokeGrant records a tombstone and deletes the grant's tokens.
//     Inserts skip tokens of a revoked grant, and Token and
//     RotateRefreshToken treat a token whose grant has a tombstone as not
//     found, so a token inserted by a transaction that raced the revocation
//     is never seen.
//   - A serialization failure or a deadlock (SQLSTATE 40001, 40P01), which
//     PostgreSQL at SERIALIZABLE and distributed SQL databases report, is
//     retried a few times with jitter.
//
// The store keeps times to the millisecond, in timestamptz columns, with
// NULL for the zero time. Scopes are stored space-separated, so a scope
// must not contain a space (RFC 6749 §3.3 forbids it).
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oauthd/oauthd"
)

// ErrSchemaVersion is returned (wrapped) by every operation of a store
// whose database schema is not the version this package needs: older (run
// Migrate) or newer (run a newer program).
var ErrSchemaVersion = errors.New("pgstore: wrong database schema version")

// errClosed is returned by every method after Close.
var errClosed = errors.New("pgstore: store is closed")

// DefaultConnectTimeout bounds connecting to the server when the DSN sets
// no connect_timeout.
const DefaultConnectTimeout = 5 * time.Second

// The session settings a Store's connections start with when the DSN sets
// none (?statement_timeout=30000, in milliseconds, or 0 for none): a
// statement stuck behind another session's lock, or running away, fails
// with an error after them instead of holding its request for as long as
// the other session likes. Migrate lifts them on its own connection.
const (
	DefaultLockTimeout      = 5 * time.Second
	DefaultStatementTimeout = 10 * time.Second
)

// Options configure Open. The zero value is the default; a zero field keeps
// what the DSN says, or pgxpool's default.
type Options struct {
	// NoMigrate makes Open leave the schema alone. Until the schema is
	// current (see Migrate), every operation fails with ErrSchemaVersion.
	NoMigrate bool
	// MaxConns and MinConns bound the connection pool (DSN pool_max_conns,
	// pool_min_conns; pgxpool's default maximum is the greater of 4 and
	// the number of CPUs).
	MaxConns, MinConns int32
	// MaxConnLifetime and MaxConnIdleTime recycle connections (DSN
	// pool_max_conn_lifetime, pool_max_conn_idle_time; default 1 hour and
	// 30 minutes).
	MaxConnLifetime, MaxConnIdleTime time.Duration
	// Schema, when set, is the schema the store's tables live in: it is
	// the connections' search_path, and Migrate creates it if it does not
	// exist. Empty means the DSN's search_path, or the server's default
	// (usually public).
	Schema string
	// OperationTimeout bounds each call of the store, from taking a
	// connection to the last answer, on the client's side: a database
	// that stops answering on an open connection (a frozen host, a
	// network partition behind a proxy) fails the call with ErrUnavailable
	// after it instead of holding its request for ever (the server-side
	// statement_timeout cannot, as the server is not answering). 0 means
	// DefaultOperationTimeout; negative, none. A caller's earlier deadline
	// wins. Migrate is not bound by it.
	OperationTimeout time.Duration
}

// DefaultOperationTimeout is Options.OperationTimeout's default: the
// default statement_timeout and connect timeout, with room to spare.
const DefaultOperationTimeout = 15 * time.Second

// Store is an oauthd.Storage on a PostgreSQL database. It is safe for
// concurrent use by many goroutines, and many processes may share one
// database.
type Store struct {
	pool      *pgxpool.Pool
	schema    string
	opTimeout time.Duration // see Options.OperationTimeout; 0: none
	readTries int           // see readRow: the pool's size, and one more
	// current is set once the schema is known to be the version this
	// package needs.
	current atomic.Bool
	closed  atomic.Bool
}

var (
	_ oauthd.Storage                = (*Store)(nil)
	_ oauthd.CodeRedeemer           = (*Store)(nil)
	_ oauthd.RefreshRotator         = (*Store)(nil)
	_ oauthd.SigningKeyBootstrapper = (*Store)(nil)
)

// Open connects to the database the DSN names and migrates its schema
// unless opts.NoMigrate is set; with NoMigrate it fails if the schema is
// newer than this package. It fails fast, naming the server and
// database but never the password, when the database is unreachable.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	if unencodedAt(dsn) {
		return nil, errUnencodedAt
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, parseError(dsn, err)
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.MaxConns < 0 || opts.MinConns < 0 || opts.MaxConnLifetime < 0 || opts.MaxConnIdleTime < 0 {
		return nil, errors.New("pgstore: negative pool option")
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("pgstore: MinConns %d is more than MaxConns %d", cfg.MinConns, cfg.MaxConns)
	}
	if opts.MaxConnLifetime > 0 {
		cfg.MaxConnLifetime = opts.MaxConnLifetime
	}
	if opts.MaxConnIdleTime > 0 {
		cfg.MaxConnIdleTime = opts.MaxConnIdleTime
	}
	params := cfg.ConnConfig.RuntimeParams
	if opts.Schema != "" {
		params["search_path"] = pgx.Identifier{opts.Schema}.Sanitize()
	}
	if params["application_name"] == "" {
		params["application_name"] = "oauthd"
	}
	if params["lock_timeout"] == "" {
		params["lock_timeout"] = fmt.Sprint(DefaultLockTimeout.Milliseconds())
	}
	if params["statement_timeout"] == "" {
		params["statement_timeout"] = fmt.Sprint(DefaultStatementTimeout.Milliseconds())
	}
	// A password with an unencoded "@" ends up in pgx's host: neither the
	// target nor pgx's errors may carry it.
	target := scrub(describe(cfg.ConnConfig), dsn)

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pgstore: connect to %s: %w", target, scrubErr(connError(err), dsn))
	}
	s := &Store{pool: pool, schema: opts.Schema, opTimeout: opts.OperationTimeout, readTries: int(pool.Config().MaxConns) + 1}
	if s.opTimeout == 0 {
		s.opTimeout = DefaultOperationTimeout
	} else if s.opTimeout < 0 {
		s.opTimeout = 0
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("pgstore: connect to %s: %w", target, ctx.Err())
		}
		return nil, fmt.Errorf("pgstore: cannot connect to %s: %w", target, scrubErr(connError(err), dsn))
	}
	if !opts.NoMigrate {
		err = s.Migrate(ctx)
	} else if v, cerr := s.checkSchema(ctx); cerr != nil && (!errors.Is(cerr, ErrSchemaVersion) || v > latestVersion) {
		// A schema that is behind may be migrated later, by another
		// node or by oauthd migrate; one that is ahead will not go back.
		err = cerr
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// CheckDSN reports whether pgx can read dsn as a connection string,
// without connecting (for a configuration check); its error never holds
// the password.
func CheckDSN(dsn string) error {
	if unencodedAt(dsn) {
		return errUnencodedAt
	}
	if _, err := pgxpool.ParseConfig(dsn); err != nil {
		return parseError(dsn, err)
	}
	return nil
}

// describe names the server and database of a configuration for messages:
// user, host, port and database, never the password.
func describe(c *pgx.ConnConfig) string {
	host := c.Host
	if host != "" && host[0] != '/' {
		host = net.JoinHostPort(host, strconv.Itoa(int(c.Port)))
	}
	return fmt.Sprintf("database %q on %s as user %q", c.Database, host, c.User)
}

// parseError is the error for a DSN pgx cannot parse. pgx's error keeps the
// whole DSN in a field and may quote it in its text, so neither is passed
// on: the text is rebuilt without the password.
func parseError(dsn string, err error) error {
	msg := err.Error()
	var pe *pgconn.ParseConfigError
	if errors.As(err, &pe) {
		msg = pe.Error()
	}
	return errors.New("pgstore: invalid DSN: " + scrub(msg, dsn))
}

// scrubErr is err, or, if its text holds a password of dsn, an error of
// the same text without it.
func scrubErr(err error, dsn string) error {
	if msg := err.Error(); scrub(msg, dsn) != msg {
		return errors.New(scrub(msg, dsn))
	}
	return err
}

// connError strips a connection error of pgx's ConnectError, which holds
// the whole configuration (password included) in a field, keeping the
// cause it wraps.
func connError(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		if inner := ce.Unwrap(); inner != nil {
			return inner
		}
		return errors.New("connection failed")
	}
	return err
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := s.pool.Ping(ctx); err != nil {
		return s.fail("ping", err)
	}
	return nil
}

// Close closes every connection of the pool, waiting for the ones in use to
// be released. Every later call fails.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.pool.Close()
	return nil
}

// Pool returns the store's connection pool, for metrics (Pool().Stat()) and
// for tools that read the tables directly. Writing to the tables behind the
// store's back voids its guarantees.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// usable returns the error a call fails with before it reaches the
// database: a done context or a closed store.
func (s *Store) usable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("pgstore: %w", err)
	}
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// ready is usable, and checks that the schema is current; once it is, the
// check costs an atomic load.
func (s *Store) ready(ctx context.Context) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if s.current.Load() {
		return nil
	}
	_, err := s.checkSchema(ctx)
	return err
}

// bound returns ctx with the store's operation deadline (see
// Options.OperationTimeout), unless ctx has an earlier one.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.opTimeout <= 0 {
		return ctx, func() {}
	}
	if d, ok := ctx.Deadline(); ok && time.Until(d) <= s.opTimeout {
		return ctx, func() {}
	}
	return context.WithTimeoutCause(ctx, s.opTimeout, errOperationTimeout)
}

// errOperationTimeout is the cause of a context ended by bound: the
// database did not answer within Options.OperationTimeout.
var errOperationTimeout = fmt.Errorf("the database did not answer in time: %w", oauthd.ErrUnavailable)

// maxAttempts bounds how often an operation runs when it keeps failing
// with a serialization failure or a deadlock.
const maxAttempts = 8

// retry runs op until it succeeds, fails with an error other than a
// serialization failure or deadlock, or has run maxAttempts times. Between
// attempts it sleeps a random, growing time, so that the transactions that
// collided do not collide again.
func retry(ctx context.Context, op func() error) error {
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil || attempt == maxAttempts || !retryable(err) {
			return err
		}
		// 1-2 ms, 2-4 ms, 4-8 ms ... up to 64-128 ms.
		base := time.Millisecond << (attempt - 1)
		if !sleep(ctx, base+rand.N(base)) {
			return err
		}
	}
}

// sleep waits for d, or until ctx ends: it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// SQLSTATE codes the store reacts to.
const (
	codeSerializationFailure = "40001"
	codeDeadlock             = "40P01"
	codeUniqueViolation      = "23505"
)

// retryable reports whether err is a serialization failure or a deadlock:
// the transaction was rolled back and may simply be run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == codeSerializationFailure || pe.Code == codeDeadlock
	}
	return false
}

// isUnique reports whether err is a unique (or primary key) violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == codeUniqueViolation
}

// fail wraps the error of the operation what: a unique violation becomes
// ErrAlreadyExists, a cancelled or expired context stays recognisable, and
// a connection error loses pgx's copy of the configuration.
//
// An error that says the database cannot be reached or used for now (no
// connection, the server shutting down or refusing connections, a lock
// or statement timeout) also wraps oauthd.ErrUnavailable, which the
// Provider answers with 503 and Retry-After.
func (s *Store) fail(what string, err error) error {
	switch {
	case isUnique(err):
		return fmt.Errorf("pgstore: %s: %w", what, oauthd.ErrAlreadyExists)
	case errors.Is(err, context.DeadlineExceeded) || (pgconn.Timeout(err) && !errors.Is(err, context.Canceled)):
		// The operation's deadline (Options.OperationTimeout) or the
		// caller's passed: the database did not answer in time.
		return fmt.Errorf("pgstore: %s: %w: the database did not answer in time (%w)", what, oauthd.ErrUnavailable, context.DeadlineExceeded)
	case unavailable(err):
		return fmt.Errorf("pgstore: %s: %w: %w", what, oauthd.ErrUnavailable, connError(err))
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("pgstore: %s: %w", what, err)
	}
	return fmt.Errorf("pgstore: %s: %w", what, connError(err))
}

// unavailable reports whether err means the database cannot be reached or
// used for now: a failed or lost connection (a connection cut in the middle
// of an answer is io.ErrUnexpectedEOF), or one of PostgreSQL's
// SQLSTATEs for that (class 08 connection exceptions; 53300
// too_many_connections; 55P03 lock_not_available, lock_timeout; 57014
// query_canceled, statement_timeout; 57P01-57P03, shutting down or
// starting; 57P05 and 25P03, a connection the server closed for its
// idle_session_timeout or idle_in_transaction_session_timeout).
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	var pe *pgconn.PgError
	if errors.As(err, &ce) {
		// No connection could be made: what the server said (the
		// database does not exist, 3D000, or takes no connections,
		// 55000) is about now, not about the request; but a refused
		// login (class 28: a wrong password, pg_hba) is a configuration
		// that does not mend itself, an error for the operator.
		return !errors.As(err, &pe) || !strings.HasPrefix(pe.Code, "28")
	}
	if errors.As(err, &pe) {
		switch pe.Code {
		case "53300", "55P03", "57014", "57P01", "57P02", "57P03", "57P05", "25P03":
			return true
		}
		if _, refused := WriteRefused(err); refused {
			// A read-only, full or failing database: 503 too (and
			// /readyz says so), not a 500 for every write.
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		pgconn.SafeToRetry(err) && !errors.Is(err, context.Canceled)
}

// WriteRefused reports whether err, an error of the store's, says that
// the database takes no writes for a reason that outlasts the request,
// and names it: "disk full" (SQLSTATE 53100 disk_full), "read-only"
// (25006 read_only_sql_transaction: a standby, after a failover that left
// the DSN on it, or default_transaction_read_only) or "I/O error" (58030
// io_error). Every write fails the same way until an operator acts; a
// server should stop taking traffic meanwhile.
func WriteRefused(err error) (reason string, ok bool) {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return "", false
	}
	switch pe.Code {
	case "53100":
		return "disk full", true
	case "25006":
		return "read-only", true
	case "58030":
		return "I/O error", true
	}
	return "", false
}

// notFound is ErrNotFound for what.
func notFound(what string) error { return fmt.Errorf("pgstore: %s: %w", what, oauthd.ErrNotFound) }

// lookup turns the error of a single-row read into the store's error:
// ErrNotFound for no row.
func (s *Store) lookup(what string, err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(what)
	}
	return s.fail("read "+what, err)
}

// readRow runs a one-row read and scans it. A read that failed on a
// connection the server had closed (a backend terminated by an
// administrator or a failover, a restart) runs again, on another
// connection of the pool, which drops the dead one: reading twice changes
// nothing, and the request is answered instead of getting a 503 for a
// connection it never chose. Every idle connection may be dead, so it
// tries up to the pool's size, and one more.
func (s *Store) readRow(ctx context.Context, scan func(pgx.Row) error, sql string, args ...any) error {
	for i := 1; ; i++ {
		err := scan(s.pool.QueryRow(ctx, sql, args...))
		if err == nil || i >= s.readTries || !deadConn(err) || ctx.Err() != nil {
			return err
		}
	}
}

// deadConn reports whether err says the connection it ran on was closed
// by the server or lost: not a refusal of the statement, and not a
// failure to connect at all (which another try would only repeat).
func deadConn(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "57P01", "57P02", "57P05", "25P03":
			return true
		}
		return strings.HasPrefix(pe.Code, "08")
	}
	var op *net.OpError
	return errors.As(err, &op) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || pgconn.SafeToRetry(err)
}

// exec runs one statement, retrying it on a serialization failure.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := retry(ctx, func() error {
		var err error
		tag, err = s.pool.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// inTx runs f in a transaction and commits it, running it again from the
// start on a serialization failure or deadlock. f returns an error to roll
// back.
func (s *Store) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	return retry(ctx, func() error {
		return pgx.BeginFunc(ctx, s.pool, f)
	})
}
