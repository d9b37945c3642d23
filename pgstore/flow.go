package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/oauthd/oauthd"
)

// The statements of the authorization flow. pgx prepares each once per
// connection and keeps it in the connection's statement cache.
const (
	sqlCreateAuthRequest = `INSERT INTO auth_requests (id, data, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	sqlAuthRequest       = `SELECT data FROM auth_requests WHERE id = $1`
	sqlDeleteAuthRequest = `DELETE FROM auth_requests WHERE id = $1`

	sqlCreateAuthCode = `INSERT INTO auth_codes (` + codeColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL) ON CONFLICT DO NOTHING`
	// The single-use step: of concurrent updates, PostgreSQL lets the
	// first lock the row; the others wait for it to commit, re-check
	// used_at on the row it committed, and update nothing.
	sqlConsumeAuthCode = `UPDATE auth_codes SET used_at = $1 WHERE hash = $2 AND used_at IS NULL RETURNING ` + codeColumns
	sqlAuthCode        = `SELECT ` + codeColumns + ` FROM auth_codes WHERE hash = $1`

	// Tokens of a revoked grant are not inserted; a taken hash fails the
	// whole statement with a unique violation.
	sqlCreateTokens = `INSERT INTO tokens (hash, kind, grant_id, client_id, subject, scopes, claims, auth_time, issued_at, expires_at)
		SELECT n.hash, n.kind, n.grant_id, n.client_id, n.subject, n.scopes, n.claims, n.auth_time, n.issued_at, n.expires_at
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::timestamptz[], $9::timestamptz[], $10::timestamptz[])
			AS n (hash, kind, grant_id, client_id, subject, scopes, claims, auth_time, issued_at, expires_at)
		WHERE NOT EXISTS (SELECT 1 FROM grant_revocations r WHERE r.grant_id = n.grant_id)`
	// A token whose grant was revoked is not found, even if a transaction
	// that raced the revocation inserted it.
	sqlToken = `SELECT ` + tokenColumns + ` FROM tokens t WHERE t.hash = $1
		AND NOT EXISTS (SELECT 1 FROM grant_revocations r WHERE r.grant_id = t.grant_id)`
	// The single-use step of rotation, like sqlConsumeAuthCode.
	sqlRotateToken = `UPDATE tokens t SET rotated_at = $1, successor = $2
		WHERE t.hash = $3 AND t.kind = 'refresh_token' AND t.rotated_at IS NULL
		AND NOT EXISTS (SELECT 1 FROM grant_revocations r WHERE r.grant_id = t.grant_id)
		RETURNING ` + tokenColumns
	sqlRefreshToken = `SELECT ` + tokenColumns + ` FROM tokens t WHERE t.hash = $1 AND t.kind = 'refresh_token'
		AND NOT EXISTS (SELECT 1 FROM grant_revocations r WHERE r.grant_id = t.grant_id)`
	// RotateRefreshTokenFunc locks the refresh token's row for its
	// transaction: a concurrent rotation, on any node, waits for this one
	// to commit or roll back, then sees the row as it was left (READ
	// COMMITTED re-reads a locked row that changed), rotated or gone.
	sqlLockRefreshToken = `SELECT ` + tokenColumns + ` FROM tokens t WHERE t.hash = $1 AND t.kind = 'refresh_token'
		AND NOT EXISTS (SELECT 1 FROM grant_revocations r WHERE r.grant_id = t.grant_id)
		FOR UPDATE OF t`
	sqlMarkRotated = `UPDATE tokens t SET rotated_at = $1, successor = $2
		WHERE t.hash = $3 AND t.rotated_at IS NULL RETURNING ` + tokenColumns
	sqlDeleteToken = `DELETE FROM tokens WHERE hash = $1`
	// A revocation lasts until the latest time it was given; NULL is for
	// good.
	sqlRevokeGrant = `INSERT INTO grant_revocations (grant_id, expires_at) VALUES ($1, $2)
		ON CONFLICT (grant_id) DO UPDATE SET expires_at =
			CASE WHEN grant_revocations.expires_at IS NULL OR excluded.expires_at IS NULL THEN NULL
			ELSE greatest(grant_revocations.expires_at, excluded.expires_at) END`
	sqlDeleteGrantTokens = `DELETE FROM tokens WHERE grant_id = $1`
	sqlDeleteTokensOf    = `DELETE FROM tokens WHERE subject = $1 AND client_id = $2`
	// Every grant the user gave the client, found by its tokens (a
	// rotated refresh token stays until it expires, so a grant whose
	// current token a racing rotation stored is found by its
	// predecessor) and its codes that can still be redeemed (one being
	// redeemed now), is revoked: the tokens a racing rotation or
	// redemption stores are not found, and are not stored once this
	// commits. The revocation outlasts the grant's tokens by a year: the
	// store does not know how long a racing rotation's token lives.
	sqlRevokeGrantsOf = `INSERT INTO grant_revocations (grant_id, expires_at)
		SELECT g.grant_id, greatest(now(), max(g.expires_at)) + interval '1 year' FROM (
			SELECT grant_id, expires_at FROM tokens WHERE subject = $1 AND client_id = $2
			UNION ALL SELECT grant_id, expires_at FROM auth_codes
				WHERE expires_at > now() AND subject = $1 AND client_id = $2) g
		WHERE g.grant_id <> ''
		GROUP BY g.grant_id
		ON CONFLICT (grant_id) DO UPDATE SET expires_at =
			CASE WHEN grant_revocations.expires_at IS NULL THEN NULL
			ELSE greatest(grant_revocations.expires_at, excluded.expires_at) END`
	sqlDeleteCodesOf = `DELETE FROM auth_codes WHERE expires_at > now() AND subject = $1 AND client_id = $2 AND used_at IS NULL`

	sqlCreateSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`
	sqlSession       = `SELECT ` + sessionColumns + ` FROM sessions WHERE hash = $1`
	sqlDeleteSession = `DELETE FROM sessions WHERE hash = $1`
)

// expiring names the tables DeleteExpired cleans, with their primary key:
// every one has an expires_at column, where NULL means never.
var expiring = []struct{ table, key string }{
	{"auth_requests", "id"},
	{"auth_codes", "hash"},
	{"tokens", "hash"},
	{"sessions", "hash"},
	{"grant_revocations", "grant_id"},
	{"signing_keys", "id"},
}

// sqlDeleteExpired are the bounded deletes of DeleteExpired, in the order
// of expiring. Each deletes by primary key a batch the subselect picks and
// locks, skipping rows another node's DeleteExpired has locked, so nodes
// that collect garbage at once share the work instead of waiting.
var sqlDeleteExpired = func() []string {
	q := make([]string, len(expiring))
	for i, e := range expiring {
		q[i] = fmt.Sprintf(`DELETE FROM %[1]s WHERE %[2]s IN
			(SELECT %[2]s FROM %[1]s WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`, e.table, e.key)
	}
	return q
}()

// CreateAuthRequest stores an authorization request; ErrAlreadyExists if
// the ID is taken.
func (s *Store) CreateAuthRequest(ctx context.Context, r *oauthd.AuthRequest) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return err
	}
	data, err := marshal(r)
	if err != nil {
		return fmt.Errorf("pgstore: encode auth request: %w", err)
	}
	tag, err := s.exec(ctx, sqlCreateAuthRequest, r.ID, json.RawMessage(data), ts(r.ExpiresAt))
	if err != nil {
		return s.fail("create auth request", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: create auth request: %w", oauthd.ErrAlreadyExists)
	}
	return nil
}

// AuthRequest returns the request, or ErrNotFound.
func (s *Store) AuthRequest(ctx context.Context, id string) (*oauthd.AuthRequest, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var data []byte
	if err := s.pool.QueryRow(ctx, sqlAuthRequest, id).Scan(&data); err != nil {
		return nil, s.lookup("auth request", err)
	}
	r := new(oauthd.AuthRequest)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("pgstore: decode auth request: %w", err)
	}
	return r, nil
}

// DeleteAuthRequest removes the request; ErrNotFound if it was gone. It is
// one DELETE, so of concurrent calls exactly one removes the request.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, "delete auth request", sqlDeleteAuthRequest, id)
}

// changeOne runs a DELETE or UPDATE of one record; ErrNotFound (as what) if
// it changed nothing.
func (s *Store) changeOne(ctx context.Context, what, sql string, args ...any) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	tag, err := s.exec(ctx, sql, args...)
	if err != nil {
		return s.fail(what, err)
	}
	if tag.RowsAffected() == 0 {
		return notFound(what)
	}
	return nil
}

// create runs an INSERT ... ON CONFLICT DO NOTHING of one record;
// ErrAlreadyExists (as what) if it inserted nothing.
func (s *Store) create(ctx context.Context, what, sql string, args ...any) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	tag, err := s.exec(ctx, sql, args...)
	if err != nil {
		return s.fail("create "+what, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("pgstore: create %s: %w", what, oauthd.ErrAlreadyExists)
	}
	return nil
}

// CreateAuthCode stores an authorization code; ErrAlreadyExists if the hash
// is taken.
func (s *Store) CreateAuthCode(ctx context.Context, c *oauthd.AuthCode) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.create(ctx, "auth code", sqlCreateAuthCode, c.Hash, c.GrantID, c.ClientID, c.Subject, c.RedirectURI,
		joinScopes(c.Scopes), c.CodeChallenge, c.CodeChallengeMethod, c.Nonce, c.Claims,
		ts(c.AuthTime), ts(c.IssuedAt), ts(c.ExpiresAt))
}

// ConsumeAuthCode marks the code used at now and returns it, with one
// conditional UPDATE: of concurrent calls, on any number of nodes, exactly
// one finds the code unused. The others get the code with ErrAlreadyUsed;
// an unknown hash is ErrNotFound.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*oauthd.AuthCode, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if now.IsZero() {
		// NULL means unused; the code would stay redeemable.
		return nil, errors.New("pgstore: consume auth code: now is the zero time")
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var code *oauthd.AuthCode
	err := retry(ctx, func() error {
		var err error
		code, err = scanCode(s.pool.QueryRow(ctx, sqlConsumeAuthCode, ts(now), hash))
		return err
	})
	if err == nil {
		return code, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, s.fail("consume auth code", err)
	}
	// A statement of its own, so that it sees the row as the call that
	// used the code committed it.
	code, err = scanCode(s.pool.QueryRow(ctx, sqlAuthCode, hash))
	if err != nil {
		return nil, s.lookup("auth code", err)
	}
	return code, fmt.Errorf("pgstore: auth code: %w", oauthd.ErrAlreadyUsed)
}

// RedeemAuthCode consumes the code, calls issue with it and stores the
// tokens issue returns, in one transaction with one commit (see
// oauthd.CodeRedeemer): ConsumeAuthCode's conditional UPDATE, then
// CreateTokens' INSERT, which skips the tokens of a revoked grant. It takes
// two round trips: BEGIN and the UPDATE are sent together, and so are the
// INSERT and COMMIT. issue runs while the transaction holds the code's row.
//
// If issue returns an error, the consumed code is committed alone and
// RedeemAuthCode returns issue's error. If the tokens cannot be stored, the
// transaction is rolled back: the code stays unused. A serialization
// failure or deadlock runs the whole transaction again, issue included.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if now.IsZero() {
		// NULL means unused; the code would stay redeemable.
		return nil, errors.New("pgstore: redeem auth code: now is the zero time")
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var (
		code     *oauthd.AuthCode
		issueErr error
	)
	err := retry(ctx, func() error {
		var err error
		code, issueErr, err = s.redeem(ctx, hash, now, issue)
		return err
	})
	if err == nil {
		return code, issueErr
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, s.fail("redeem auth code", err)
	}
	// As in ConsumeAuthCode: a statement of its own, which sees the row as
	// the call that used the code committed it.
	code, err = scanCode(s.pool.QueryRow(ctx, sqlAuthCode, hash))
	if err != nil {
		return nil, s.lookup("auth code", err)
	}
	return code, fmt.Errorf("pgstore: auth code: %w", oauthd.ErrAlreadyUsed)
}

// errNotCommitted is a redemption or rotation whose COMMIT rolled back.
var errNotCommitted = errors.New("pgstore: the transaction was rolled back at COMMIT")

// A callbackTx is a transaction of two round trips on a connection of its
// own, for the writes that call back into the engine in the middle (code
// redemption, refresh rotation): BEGIN and a first statement whose row is
// read, then more statements and COMMIT. A connection released inside the
// transaction (after a failure, or a panic in the engine's callback: the
// callers defer release) is closed by the pool, which ends the transaction
// without committing.
type callbackTx struct {
	ctx  context.Context
	conn *pgxpool.Conn
}

// lostCommitError is a commit whose connection gave no answer in time: it
// names the backend that ran the transaction, which may still commit it
// (see committedAfterAll).
type lostCommitError struct {
	pid uint32
	err error
}

func (e *lostCommitError) Error() string { return e.err.Error() }
func (e *lostCommitError) Unwrap() error { return e.err }

// begin acquires a connection and sends BEGIN with the statement sql,
// whose one row scan reads. On an error (pgx.ErrNoRows for no row) the
// transaction is rolled back and the connection released.
func (s *Store) begin(ctx context.Context, what string, scan func(pgx.Row) error, sql string, args ...any) (*callbackTx, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx := &callbackTx{ctx: ctx, conn: conn}
	b := new(pgx.Batch)
	b.Queue("BEGIN")
	b.Queue(sql, args...)
	br := conn.SendBatch(ctx, b)
	if _, err = br.Exec(); err == nil {
		err = scan(br.QueryRow())
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if st := conn.Conn().PgConn().TxStatus(); st != 'T' {
			// BEGIN did not hold (a proxy between?): what the statement
			// did may stay, but nothing follows it.
			err = fmt.Errorf("pgstore: %s: not in a transaction after BEGIN (status %q)", what, st)
		}
	}
	if err != nil {
		tx.rollback()
		return nil, err
	}
	return tx, nil
}

// rollback ends the transaction without committing, and releases the
// connection.
func (tx *callbackTx) rollback() {
	tx.conn.Exec(tx.ctx, "ROLLBACK")
	tx.release()
}

// release gives the connection back to the pool, once: deferred by the
// callers, it is what ends the transaction when the engine's callback
// panics (the pool closes a connection released in a transaction).
func (tx *callbackTx) release() {
	if tx.conn != nil {
		tx.conn.Release()
		tx.conn = nil
	}
}

// commit sends the statements of b and COMMIT, reading the first
// statement's row with first if it is not nil, and releases the
// connection. It fails if a statement does, or if the COMMIT rolled back.
func (tx *callbackTx) commit(b *pgx.Batch, first func(pgx.Row) error) error {
	b.Queue("COMMIT")
	pid := tx.conn.Conn().PgConn().PID()
	br := tx.conn.SendBatch(tx.ctx, b)
	var (
		tag pgconn.CommandTag
		err error
		i   int
	)
	if first != nil {
		err, i = first(br.QueryRow()), 1
	}
	for ; err == nil && i < b.Len(); i++ {
		tag, err = br.Exec()
	}
	// Once COMMIT has answered COMMIT, the transaction is committed,
	// whatever comes after: a backend terminated then (a failover, an
	// administrator's pg_terminate_backend) sends its FATAL error before
	// the ready-for-query that Close reads, and that error must not be the
	// answer, or a client told to try again would replay a code or
	// refresh token that was used (and lose its grant). The connection is
	// gone; the pool drops it.
	committed := err == nil && tag.String() == "COMMIT"
	if cerr := br.Close(); err == nil && !committed {
		err = cerr
	}
	if err == nil && tag.String() != "COMMIT" {
		// COMMIT of a failed transaction answers ROLLBACK, without an
		// error.
		err = errNotCommitted
	}
	if err != nil {
		tx.rollback()
		if timedOut(err) {
			return &lostCommitError{pid: pid, err: err}
		}
		return err
	}
	tx.release()
	return nil
}

// timedOut reports whether err is a wait that ran out: the operation's
// timeout, or the network's.
func timedOut(err error) bool {
	var to interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errOperationTimeout) || (errors.As(err, &to) && to.Timeout())
}

// redeem is one attempt of RedeemAuthCode (see callbackTx). The error is
// pgx.ErrNoRows when the code is used or unknown, and is nil when issue
// fails (issueErr) and the transaction was rolled back, the code unused.
func (s *Store) redeem(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (code *oauthd.AuthCode, issueErr, err error) {
	tx, err := s.begin(ctx, "redeem auth code", func(r pgx.Row) (err error) {
		code, err = scanCode(r)
		return err
	}, sqlConsumeAuthCode, ts(now), hash)
	if err != nil {
		return nil, nil, err
	}
	defer tx.release()
	toks, issueErr := issue(code)
	if issueErr != nil {
		// Refused: rolled back, the code stays unused.
		tx.rollback()
		code.UsedAt = time.Time{}
		return code, issueErr, nil
	}
	b := new(pgx.Batch)
	if len(toks) > 0 {
		b.Queue(sqlCreateTokens, newTokenRows(toks).args()...)
	}
	if err := tx.commit(b, nil); err != nil && !s.committedAfterAll(ctx, err, toks) {
		return nil, nil, err
	}
	return code, issueErr, nil
}

// committedAfterAll reports whether a redemption or rotation whose commit
// failed with err, a lost connection, committed all the same: the
// connection may be lost after PostgreSQL committed and before its answer
// arrived, and the client, answered 503, would retry with a code or
// refresh token that was used, a replay that revokes its grant. Whether
// the transaction committed is read from the first of the tokens it
// inserted, which no other transaction can have written, on another
// connection. A connection that gave no answer in time (packets dropped)
// may still have a backend about to commit: that backend is terminated
// first, and the read waits until it is gone, so that what it reads is
// final. A database out of reach (restarting, failing over) is asked
// again, a little later each time, for up to committedCheckFor; past that,
// the error stands.
func (s *Store) committedAfterAll(ctx context.Context, err error, toks []*oauthd.Token) bool {
	var lost *lostCommitError
	silent := errors.As(err, &lost) && lost.pid != 0
	if len(toks) == 0 || (!deadConn(err) && !silent) {
		return false
	}
	// The request's own time may be spent: the check has its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), committedCheckFor)
	defer cancel()
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		err := s.readCommitted(ctx, toks[0].Hash, lost)
		if err == nil {
			return true
		}
		if errors.Is(err, pgx.ErrNoRows) || !unavailable(err) || !sleep(ctx, delay) {
			return false
		}
	}
}

// readCommitted reads whether the token hash is stored (pgx.ErrNoRows if
// not), once the backend of lost, if any, has ended.
func (s *Store) readCommitted(ctx context.Context, hash string, lost *lostCommitError) error {
	if lost != nil {
		if _, err := s.pool.Exec(ctx, `SELECT pg_terminate_backend($1)`, int64(lost.pid)); err != nil {
			return err
		}
		for {
			var n int
			if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE pid = $1`, int64(lost.pid)).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				break
			}
			if !sleep(ctx, 20*time.Millisecond) {
				return ctx.Err()
			}
		}
	}
	var one int
	return s.readRow(ctx, func(r pgx.Row) error { return r.Scan(&one) }, `SELECT 1 FROM tokens WHERE hash = $1`, hash)
}

// committedCheckFor bounds how long committedAfterAll asks again.
const committedCheckFor = 10 * time.Second

// CreateTokens stores the tokens, all or none, with one INSERT;
// ErrAlreadyExists if a hash is taken. Tokens of a revoked grant are not
// stored: the grant stays revoked for them.
func (s *Store) CreateTokens(ctx context.Context, tokens ...*oauthd.Token) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return err
	}
	if len(tokens) == 0 {
		return nil
	}
	if _, err := s.exec(ctx, sqlCreateTokens, newTokenRows(tokens).args()...); err != nil {
		return s.fail("create tokens", err)
	}
	return nil
}

// Token returns the token with the hash, or ErrNotFound, also when its
// grant was revoked.
func (s *Store) Token(ctx context.Context, hash string) (*oauthd.Token, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var t *oauthd.Token
	err := s.readRow(ctx, func(r pgx.Row) (err error) { t, err = scanToken(r); return err }, sqlToken, hash)
	if err != nil {
		return nil, s.lookup("token", err)
	}
	return t, nil
}

// RotateRefreshToken marks the refresh token oldHash rotated at now,
// records successor and stores next, in one transaction. The rotation is
// one conditional UPDATE: of concurrent calls, on any number of nodes,
// exactly one finds the token unrotated, and the others get the old token
// with ErrAlreadyUsed. An unknown hash, that of an access token, or that of
// a token whose grant was revoked, is ErrNotFound.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, successor []byte, next ...*oauthd.Token) (*oauthd.Token, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if now.IsZero() {
		// NULL means unrotated; the token would stay usable.
		return nil, errors.New("pgstore: rotate refresh token: now is the zero time")
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var rows *tokenRows
	if len(next) > 0 {
		rows = newTokenRows(next)
	}
	var old *oauthd.Token
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		t, err := scanToken(tx.QueryRow(ctx, sqlRotateToken, ts(now), successor, oldHash))
		if err != nil {
			return err
		}
		if rows != nil {
			if _, err := tx.Exec(ctx, sqlCreateTokens, rows.args()...); err != nil {
				return err
			}
		}
		old = t
		return nil
	})
	if err == nil {
		return old, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, s.fail("rotate refresh token", err)
	}
	old, err = scanToken(s.pool.QueryRow(ctx, sqlRefreshToken, oldHash))
	if err != nil {
		return nil, s.lookup("refresh token", err)
	}
	return old, fmt.Errorf("pgstore: refresh token: %w", oauthd.ErrAlreadyUsed)
}

// errRotated is a rotation that found the refresh token rotated already.
var errRotated = errors.New("pgstore: rotate refresh token: rotated already")

// RotateRefreshTokenFunc looks the refresh token up and rotates it in one
// transaction (see oauthd.RefreshRotator): it locks the token's row, calls
// rotate with it, then marks it rotated and stores the tokens rotate
// returned, and commits. Of concurrent calls, on any number of nodes,
// exactly one finds the token unrotated: the others wait for the row's
// lock and then find it rotated (ErrAlreadyUsed, with the old token) or
// gone (ErrNotFound). A token of a revoked grant is not found. If rotate
// fails, the transaction is rolled back and the token is returned
// unrotated with rotate's error. rotate runs while the row is locked, and
// runs again if the transaction is retried (a deadlock or serialization
// failure).
func (s *Store) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if now.IsZero() {
		// NULL means unrotated; the token would stay usable.
		return nil, errors.New("pgstore: rotate refresh token: now is the zero time")
	}
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var (
		old       *oauthd.Token
		rotateErr error
	)
	err := retry(ctx, func() error {
		var err error
		old, rotateErr, err = s.rotateOnce(ctx, hash, now, rotate)
		return err
	})
	switch {
	case err == nil:
		return old, rotateErr
	case errors.Is(err, errRotated):
		return old, fmt.Errorf("pgstore: refresh token: %w", oauthd.ErrAlreadyUsed)
	case errors.Is(err, pgx.ErrNoRows):
		return nil, notFound("refresh token")
	}
	return nil, s.fail("rotate refresh token", err)
}

// rotateOnce is one attempt of RotateRefreshTokenFunc (see callbackTx).
// The error is pgx.ErrNoRows for an unknown token, errRotated (with the
// token) for a rotated one, and nil when rotate fails (rotateErr) and
// nothing was written.
func (s *Store) rotateOnce(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (old *oauthd.Token, rotateErr, err error) {
	tx, err := s.begin(ctx, "rotate refresh token", func(r pgx.Row) (err error) {
		old, err = scanToken(r)
		return err
	}, sqlLockRefreshToken, hash)
	if err != nil {
		return nil, nil, err
	}
	defer tx.release()
	if !old.RotatedAt.IsZero() {
		tx.rollback()
		return old, nil, errRotated
	}
	successor, next, rotateErr := rotate(old)
	if rotateErr != nil {
		tx.rollback()
		return old, rotateErr, nil
	}
	b := new(pgx.Batch)
	b.Queue(sqlMarkRotated, ts(now), successor, hash)
	if len(next) > 0 {
		b.Queue(sqlCreateTokens, newTokenRows(next).args()...)
	}
	var rotated *oauthd.Token
	err = tx.commit(b, func(r pgx.Row) (err error) {
		rotated, err = scanToken(r)
		if errors.Is(err, pgx.ErrNoRows) {
			// The row is locked and was unrotated: this cannot be, but
			// must not read as an unknown token.
			err = errors.New("pgstore: rotate refresh token: the locked token changed")
		}
		return err
	})
	if err != nil && s.committedAfterAll(ctx, err, next) {
		// What the transaction read of the token is what it rotated:
		// the old token, now marked rotated with its successor.
		rotated, err = old, nil
		rotated.RotatedAt, rotated.Successor = now, successor
	}
	if err != nil {
		return nil, nil, err
	}
	return rotated, nil, nil
}

// RevokeToken removes one token; ErrNotFound if it was not there.
func (s *Store) RevokeToken(ctx context.Context, hash string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, "revoke token", sqlDeleteToken, hash)
}

// RevokeGrant records the revocation of the grant until until (or the
// latest until it was given; the zero time is for good) and removes every
// token of the grant, in one transaction. Tokens that a transaction racing
// this one inserts for the grant are removed by DeleteExpired, and are
// never found meanwhile.
func (s *Store) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if grantID == "" {
		return errors.New("pgstore: revoke grant: empty grant ID")
	}
	if err := s.ready(ctx); err != nil {
		return err
	}
	err := s.batch(ctx, func(b *pgx.Batch) {
		b.Queue(sqlRevokeGrant, grantID, ts(until))
		b.Queue(sqlDeleteGrantTokens, grantID)
	}, nil)
	if err != nil {
		return s.fail(fmt.Sprintf("revoke grant %q", grantID), err)
	}
	return nil
}

// RevokeTokensOf removes every token the user granted the client, and the
// user's unused codes for the client. Deleting the tokens alone is not
// enough: a refresh token rotation that committed while the DELETE waited
// for its predecessor's row stores a token the DELETE does not see, and a
// client refreshing in a loop kept its grant for good. So each of the
// pair's grants is revoked first, as RevokeGrant does, for a year past its
// tokens' expiry (the store does not know how long a racing rotation's
// token lives): every read of a token checks its grant's revocation. A
// token stored later under one of those grant IDs is not stored (oauthd
// never reuses a grant ID).
func (s *Store) RevokeTokensOf(ctx context.Context, userID, clientID string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return err
	}
	// The revocations and the codes' deletion commit together, first, at
	// READ COMMITTED (see batchReadCommitted). From then on the grants' tokens are
	// not found, no code of the pair is left, and the deletes below only
	// free the tokens' rows: if they fail, nothing can use those rows.
	err := s.batchReadCommitted(ctx, func(b *pgx.Batch) {
		b.Queue(sqlRevokeGrantsOf, userID, clientID)
		b.Queue(sqlDeleteCodesOf, userID, clientID)
	})
	if err == nil {
		// Twice: a rotation (or a redemption) that held a row the first
		// DELETE waited for has committed by the time the second starts,
		// which removes the tokens it stored (tokens of the revoked
		// grants would not be found anyway; this also covers tokens a
		// custom caller stores under a grant of their own).
		err = s.batchReadCommitted(ctx, func(b *pgx.Batch) {
			b.Queue(sqlDeleteTokensOf, userID, clientID)
			b.Queue(sqlDeleteTokensOf, userID, clientID)
		})
	}
	if err != nil {
		return s.fail(fmt.Sprintf("revoke tokens of user %q for client %q", userID, clientID), err)
	}
	return nil
}

// batchReadCommitted runs the statements queue queues in one transaction
// at READ COMMITTED, whatever the server's default isolation, retrying it
// on a deadlock (or a serialization failure, which READ COMMITTED does not
// raise for them on PostgreSQL), for statements that read the tokens or
// codes of a user and client and write what token writers read
// (RevokeTokensOf). They are written for READ COMMITTED (their
// correctness rests on the grant revocations, which every read of a token
// checks, not on the isolation level); at SERIALIZABLE each token writer
// that overlaps them, a client refreshing in a loop or any busy token
// issuance (predicate locks cover whole index pages), aborted them time
// after time, and RevokeTokensOf failed after every retry. Databases that
// run every transaction SERIALIZABLE (CockroachDB without READ COMMITTED
// enabled) take the request and retry as before.
func (s *Store) batchReadCommitted(ctx context.Context, queue func(*pgx.Batch)) error {
	return retry(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			b := new(pgx.Batch)
			queue(b)
			return tx.SendBatch(ctx, b).Close()
		})
	})
}

// batch sends the statements queue queues in one round trip, as one
// implicit transaction, retrying it on a serialization failure or
// deadlock; affected, when not nil, receives each statement's count of
// rows changed.
func (s *Store) batch(ctx context.Context, queue func(*pgx.Batch), affected func(i int, n int64)) error {
	return retry(ctx, func() error {
		b := new(pgx.Batch)
		queue(b)
		br := s.pool.SendBatch(ctx, b)
		for i := range b.Len() {
			tag, err := br.Exec()
			if err != nil {
				br.Close()
				return err
			}
			if affected != nil {
				affected(i, tag.RowsAffected())
			}
		}
		return br.Close()
	})
}

// CreateSession stores a session; ErrAlreadyExists if the hash is taken.
func (s *Store) CreateSession(ctx context.Context, se *oauthd.Session) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.create(ctx, "session", sqlCreateSession, se.Hash, se.UserID, ts(se.AuthTime), ts(se.ExpiresAt))
}

// Session returns the session with the hash, or ErrNotFound.
func (s *Store) Session(ctx context.Context, hash string) (*oauthd.Session, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	se, err := scanSession(s.pool.QueryRow(ctx, sqlSession, hash))
	if err != nil {
		return nil, s.lookup("session", err)
	}
	return se, nil
}

// DeleteSession removes the session; ErrNotFound if it was gone.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, "delete session", sqlDeleteSession, hash)
}

// DeleteExpired removes at most limit records of each kind (auth requests,
// codes, tokens, sessions, grant revocations, signing keys) that expired
// before now, and returns how many it removed. Records with a zero expiry
// never expire; a limit below one removes nothing. Every node may run it at
// once: each batch skips the rows another node is deleting.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return 0, err
	}
	if limit < 1 {
		return 0, nil
	}
	counts := make([]int64, len(expiring))
	err := s.batch(ctx, func(b *pgx.Batch) {
		for i, q := range sqlDeleteExpired {
			before := now
			if expiring[i].table == "signing_keys" {
				before = now.Add(-oauthd.SigningKeyRetention)
			}
			b.Queue(q, ts(before), int64(limit))
		}
	}, func(i int, n int64) { counts[i] = n })
	if err != nil {
		return 0, s.fail("delete expired records", err)
	}
	var n int64
	for _, c := range counts {
		n += c
	}
	return int(n), nil
}
