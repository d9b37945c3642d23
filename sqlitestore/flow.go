package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/oauthd/oauthd"
)

// CreateAuthRequest stores an authorization request; ErrAlreadyExists if
// the ID is taken.
func (s *Store) CreateAuthRequest(ctx context.Context, r *oauthd.AuthRequest) error {
	data, err := marshal(r)
	if err != nil {
		return fmt.Errorf("sqlitestore: encode auth request: %w", err)
	}
	expiresAt := unixMS(r.ExpiresAt)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createAuthRequest, r.ID, string(data), expiresAt)
		if err != nil {
			return fmt.Errorf("sqlitestore: create auth request: %w", err)
		}
		return inserted(res, "auth request")
	})
}

// AuthRequest returns the request, or ErrNotFound.
func (s *Store) AuthRequest(ctx context.Context, id string) (*oauthd.AuthRequest, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	var data []byte
	if err := st.authRequest.QueryRowContext(lookup, id).Scan(&data); err != nil {
		return nil, lookupErr(err, "auth request")
	}
	r := new(oauthd.AuthRequest)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("sqlitestore: decode auth request: %w", err)
	}
	return r, nil
}

// DeleteAuthRequest removes the request; ErrNotFound if it was gone. It is
// one DELETE, so of concurrent calls exactly one removes the request.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteAuthRequest, id)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete auth request: %w", err)
		}
		return affected(res, "delete auth request")
	})
}

// CreateAuthCode stores an authorization code; ErrAlreadyExists if the hash
// is taken.
func (s *Store) CreateAuthCode(ctx context.Context, c *oauthd.AuthCode) error {
	args := []any{c.Hash, c.GrantID, c.ClientID, c.Subject, c.RedirectURI, joinScopes(c.Scopes), c.CodeChallenge,
		c.CodeChallengeMethod, c.Nonce, c.Claims, unixMS(c.AuthTime), unixMS(c.IssuedAt), unixMS(c.ExpiresAt)}
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createAuthCode, args...)
		if err != nil {
			return fmt.Errorf("sqlitestore: create auth code: %w", err)
		}
		return inserted(res, "auth code")
	})
}

// ConsumeAuthCode marks the code used at now and returns it, with one
// conditional UPDATE: of concurrent calls exactly one finds the code
// unused. The others get the code with ErrAlreadyUsed; an unknown hash is
// ErrNotFound. now must be after 1970: a used_at of 0 means unused.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*oauthd.AuthCode, error) {
	usedAt := unixMS(now)
	if usedAt == 0 {
		// 0 means unused; the code would stay redeemable.
		return nil, errors.New("sqlitestore: consume auth code: now must be a time after 1970")
	}
	var code *oauthd.AuthCode
	err := s.writeClaim(ctx, claim{hash: hash, usedAt: usedAt}, func(st *stmts, x *txn) error {
		var err error
		code, err = consumeCode(st, x, usedAt, hash)
		return err
	})
	if err != nil && !errors.Is(err, oauthd.ErrAlreadyUsed) {
		return nil, err
	}
	return code, err
}

// consumeCode is the single-use step of ConsumeAuthCode and RedeemAuthCode:
// one conditional UPDATE. If it finds the code used, it returns the code
// with ErrAlreadyUsed; an unknown hash is ErrNotFound.
//
// The UPDATE runs as an Exec and the code is read afterwards, in the same
// transaction, rather than with UPDATE ... RETURNING: SQLite runs a
// RETURNING statement to its end into a temporary table before it yields
// the row, and database/sql's Query path costs more than Exec's; the two
// statements cost the writer less than the one. The transaction holds the
// write lock from its BEGIN (IMMEDIATE), so nothing changes the code
// between the UPDATE and the read, and the UPDATE alone decides which of
// concurrent redemptions wins.
func consumeCode(st *stmts, x *txn, usedAt int64, hash string) (*oauthd.AuthCode, error) {
	if o, ok := x.codes[hash]; ok {
		// Consumed (or found used, or not found) with the batch's other
		// redemptions (txn.readClaims). A second redemption of the same
		// code in the batch goes on below, and finds it used.
		delete(x.codes, hash)
		if o.err == nil {
			x.wrote = true
		}
		return o.v, o.err
	}
	res, err := x.exec(st.consumeAuthCode, usedAt, hash)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: consume auth code: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: consume auth code: %w", err)
	}
	c, err := scanCode(x.readRow(st.authCode, hash))
	if err != nil {
		return nil, lookupErr(err, "auth code")
	}
	if n == 0 {
		return c, fmt.Errorf("sqlitestore: auth code: %w", oauthd.ErrAlreadyUsed)
	}
	return c, nil
}

// RedeemAuthCode consumes the code, calls issue with it and stores the
// tokens issue returns, as one write: one trip through the writer, one
// savepoint in its transaction (see oauthd.CodeRedeemer). The steps are
// ConsumeAuthCode's conditional UPDATE and CreateTokens' inserts, which
// skip the tokens of a revoked grant. issue runs on the writer goroutine:
// every write of the process waits while it runs.
//
// If issue returns an error (the request was refused), the write is rolled
// back and RedeemAuthCode returns the code, unused, and issue's error. If
// the tokens cannot be stored, the write is rolled back too: the code
// stays unused. A panic in issue rolls the write back, and is raised again
// in the caller's goroutine.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	usedAt := unixMS(now)
	if usedAt == 0 {
		// 0 means unused; the code would stay redeemable.
		return nil, errors.New("sqlitestore: redeem auth code: now must be a time after 1970")
	}
	var (
		code     *oauthd.AuthCode
		issueErr error
		panicked *issuePanic
	)
	err := s.writeClaim(ctx, claim{hash: hash, usedAt: usedAt}, func(st *stmts, x *txn) error {
		// The write may run twice (see writer.runTx): each run starts
		// over, and calls issue again, as CodeRedeemer allows.
		code, issueErr, panicked = nil, nil, nil
		c, err := consumeCode(st, x, usedAt, hash)
		code = c
		if err != nil {
			return err
		}
		toks, err := callIssue(issue, c, &panicked)
		if panicked != nil {
			return errIssuePanicked
		}
		if err != nil {
			issueErr = err
			return errRefused // the consumption is rolled back: the code stays unused
		}
		if err := checkKinds(toks); err != nil {
			return err
		}
		args := make([][]any, len(toks))
		for i, t := range toks {
			args[i] = tokenArgs(t)
		}
		return createTokens(st, x, args)
	})
	if panicked != nil {
		panic(panicked)
	}
	switch {
	case err == nil:
		return code, nil
	case errors.Is(err, errRefused):
		if code != nil {
			code.UsedAt = time.Time{}
		}
		return code, issueErr
	case errors.Is(err, oauthd.ErrAlreadyUsed):
		return code, err
	}
	return nil, err
}

// issuePanic is a panic of RedeemAuthCode's issue or
// RotateRefreshTokenFunc's rotate on the writer goroutine, raised again in
// the caller's.
type issuePanic struct {
	fn    string // the callback: "RedeemAuthCode's issue"
	value any
	stack []byte
}

func (p *issuePanic) String() string {
	return fmt.Sprintf("sqlitestore: %s panicked on the writer goroutine: %v\n\n%s", p.fn, p.value, p.stack)
}

var errIssuePanicked = errors.New("sqlitestore: redeem auth code: issue panicked")

// callIssue calls issue with c; a panic is stored in *panicked instead of
// ending the writer goroutine (and the process).
func callIssue(issue func(*oauthd.AuthCode) ([]*oauthd.Token, error), c *oauthd.AuthCode, panicked **issuePanic) (toks []*oauthd.Token, err error) {
	defer func() {
		if v := recover(); v != nil {
			*panicked = &issuePanic{fn: "RedeemAuthCode's issue", value: v, stack: debug.Stack()}
		}
	}()
	return issue(c)
}

// CreateTokens stores the tokens, all or none; ErrAlreadyExists if a hash
// is taken. Tokens of a revoked grant are not stored: the grant stays
// revoked for them.
func (s *Store) CreateTokens(ctx context.Context, tokens ...*oauthd.Token) error {
	if len(tokens) == 0 {
		return s.checkReady(ctx)
	}
	if err := checkKinds(tokens); err != nil {
		return err
	}
	args := make([][]any, len(tokens))
	for i, t := range tokens {
		args[i] = tokenArgs(t)
	}
	return s.write(ctx, func(st *stmts, x *txn) error {
		return createTokens(st, x, args)
	})
}

// checkReady returns the error an operation would fail with before it
// reaches the database.
func (s *Store) checkReady(ctx context.Context) error {
	_, err := s.ready(ctx)
	return err
}

// createTokens inserts tokens with their tokenArgs, except those of a
// revoked grant. The caller rolls back when it fails. In a batch that
// defers its inserts (see txn.flushTokens), it must be the last statement
// of its write.
func createTokens(st *stmts, x *txn, args [][]any) error {
	if x.deferTokens {
		// The batch inserts them at its end (txn.flushTokens).
		for _, a := range args {
			x.pending = append(x.pending, a...)
		}
		x.insertTokens = &st.insertTokens
		return nil
	}
	if len(args) == 2 && args[0][tokenGrant] == args[1][tokenGrant] {
		return createTokenPair(st, x, args[0], args[1])
	}
	for _, a := range args {
		res, err := x.exec(st.insertTokens[0], a...)
		if err != nil {
			return fmt.Errorf("sqlitestore: create token: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlitestore: create token: %w", err)
		}
		if n != 0 {
			continue
		}
		// The insert skipped the token: its grant is revoked, or its
		// hash is taken.
		var revoked bool
		if err := x.readRow(st.grantRevoked, a[tokenGrant]).Scan(&revoked); err != nil {
			return fmt.Errorf("sqlitestore: create token: %w", err)
		}
		if !revoked {
			return fmt.Errorf("sqlitestore: create token: %w", oauthd.ErrAlreadyExists)
		}
	}
	return nil
}

// createTokenPair inserts two tokens of one grant (a code redemption's or
// a refresh's access and refresh token) with one statement: the same as
// two single-row inserts, for one statement's overhead instead of two.
// Both are skipped if the grant is revoked; if either hash is taken, the
// pair fails (and the caller rolls back the one inserted).
func createTokenPair(st *stmts, x *txn, a, b []any) error {
	var buf [2 * tokenParams]any
	res, err := x.exec(st.insertTokens[1], append(append(buf[:0], a...), b...)...)
	if err != nil {
		return fmt.Errorf("sqlitestore: create token: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlitestore: create token: %w", err)
	}
	if n == 2 {
		return nil
	}
	var revoked bool
	if err := x.readRow(st.grantRevoked, a[tokenGrant]).Scan(&revoked); err != nil {
		return fmt.Errorf("sqlitestore: create token: %w", err)
	}
	if !revoked || n != 0 {
		return fmt.Errorf("sqlitestore: create token: %w", oauthd.ErrAlreadyExists)
	}
	return nil
}

// Token returns the token with the hash, or ErrNotFound. A token of a
// revoked grant is not found (tokenLive).
func (s *Store) Token(ctx context.Context, hash string) (*oauthd.Token, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	if t, ok := s.cache.token(hash); ok {
		return t, nil
	}
	gen := s.cache.generation()
	t, err := scanToken(st.token.QueryRowContext(lookup, hash))
	if err != nil {
		return nil, lookupErr(err, "token")
	}
	s.cache.putToken(gen, t)
	return t, nil
}

// RotateRefreshToken marks the refresh token oldHash rotated at now,
// records successor and stores next, in one transaction: it is
// RotateRefreshTokenFunc with a rotate that returns successor and next. Of
// concurrent calls exactly one finds the token unrotated, and the others
// get the old token with ErrAlreadyUsed. An unknown hash, or that of an
// access token, is ErrNotFound. now must be after 1970: a rotated_at of 0
// means unrotated.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, successor []byte, next ...*oauthd.Token) (*oauthd.Token, error) {
	return s.RotateRefreshTokenFunc(ctx, oldHash, now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return successor, next, nil
	})
}

// RotateRefreshTokenFunc looks up the refresh token and rotates it with
// what rotate makes for it, in one write (see oauthd.RefreshRotator). The
// token is read on the writer's connection, in the write's transaction:
// the readers' page caches are emptied by every commit, so that under
// constant writes a read there costs several times more than the writer's,
// whose cache stays warm. The rotation is RotateRefreshToken's conditional
// UPDATE; the transaction holds the write lock from its BEGIN, so the
// token read unrotated is still unrotated. rotate runs on the writer
// goroutine: every write of the process waits while it runs.
func (s *Store) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	rotatedAt := unixMS(now)
	if rotatedAt == 0 {
		// 0 means unrotated; the token would stay usable.
		return nil, errors.New("sqlitestore: rotate refresh token: now must be a time after 1970")
	}
	var (
		old       *oauthd.Token
		rotateErr error
		panicked  *issuePanic
	)
	defer s.cache.dropToken(hash)
	err := s.writeClaim(ctx, claim{hash: hash, refresh: true}, func(st *stmts, x *txn) error {
		// The write may run twice (see writer.runTx): each run starts
		// over, and calls rotate again, as RefreshRotator allows.
		old, rotateErr, panicked = nil, nil, nil
		t, err := refreshToken(st, x, hash)
		if err != nil {
			return err
		}
		old = t
		if !t.RotatedAt.IsZero() {
			return fmt.Errorf("sqlitestore: refresh token: %w", oauthd.ErrAlreadyUsed)
		}
		successor, next, err := callRotate(rotate, cloneToken(t), &panicked)
		if panicked != nil {
			return errRotatePanicked
		}
		if err != nil {
			rotateErr = err
			return errRefused // nothing written: the token stays unrotated
		}
		if err := checkKinds(next); err != nil {
			return err
		}
		rotated, err := markRotated(st, x, rotatedAt, successor, t)
		if err != nil {
			return fmt.Errorf("sqlitestore: rotate refresh token: %w", err)
		}
		args := make([][]any, len(next))
		for i, n := range next {
			args[i] = tokenArgs(n)
		}
		if err := createTokens(st, x, args); err != nil {
			return err
		}
		old = rotated
		return nil
	})
	if panicked != nil {
		panic(panicked)
	}
	switch {
	case err == nil:
		return old, nil
	case errors.Is(err, errRefused):
		return old, rotateErr
	case errors.Is(err, oauthd.ErrAlreadyUsed):
		return old, err
	}
	return nil, err
}

// refreshToken reads the refresh token with the hash in the write, or
// takes it as the batch read it with the others (txn.readClaims). A second
// rotation of the same token in the batch reads it again, and finds it
// rotated.
func refreshToken(st *stmts, x *txn, hash string) (*oauthd.Token, error) {
	if o, ok := x.refresh[hash]; ok {
		delete(x.refresh, hash)
		return o.v, o.err
	}
	t, err := scanToken(x.readRow(st.refreshToken, hash))
	if err != nil {
		return nil, lookupErr(err, "refresh token")
	}
	return t, nil
}

// errRefused is the outcome of a write whose callback refused it: an
// expected outcome. Refused before anything was written (a rotation, see
// RotateRefreshTokenFunc), it leaves the other writes of its batch alone;
// refused after the code was consumed (RedeemAuthCode), the batch runs
// again with savepoints, which undo the consumption alone (see
// runOptimistic).
var errRefused = errors.New("sqlitestore: refused by the caller")

var errRotatePanicked = errors.New("sqlitestore: rotate refresh token: rotate panicked")

// errPendingTokens makes runOptimistic run its batch again with savepoints
// (an unexpected error): see RevokeTokensOf.
var errPendingTokens = errors.New("sqlitestore: tokens pending in the batch")

// callRotate calls rotate with t; a panic is stored in *panicked instead
// of ending the writer goroutine (and the process).
func callRotate(rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error), t *oauthd.Token, panicked **issuePanic) (successor []byte, next []*oauthd.Token, err error) {
	defer func() {
		if v := recover(); v != nil {
			*panicked = &issuePanic{fn: "RotateRefreshTokenFunc's rotate", value: v, stack: debug.Stack()}
		}
	}()
	return rotate(t)
}

// markRotated is the rotation's conditional UPDATE of token t, read in the
// write: an Exec, not UPDATE ... RETURNING, which would copy the row,
// successor and all, through a temporary table. It returns sql.ErrNoRows
// when the UPDATE found no unrotated token.
func markRotated(st *stmts, x *txn, rotatedAt int64, successor []byte, t *oauthd.Token) (*oauthd.Token, error) {
	res, err := x.exec(st.rotateToken, rotatedAt, successor, t.Hash)
	if err != nil {
		return nil, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, sql.ErrNoRows
	}
	rotated := *t
	rotated.RotatedAt, rotated.Successor = fromMS(rotatedAt), slices.Clone(successor)
	return &rotated, nil
}

// RevokeToken removes one token; ErrNotFound if it was not there.
func (s *Store) RevokeToken(ctx context.Context, hash string) error {
	defer s.cache.dropToken(hash)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteToken, hash)
		if err != nil {
			return fmt.Errorf("sqlitestore: revoke token: %w", err)
		}
		return affected(res, "revoke token")
	})
}

// RevokeGrant records the revocation of the grant until until (or the
// latest until it was given; a zero until revokes the grant for good): from
// its commit every read treats the grant's tokens as not found (tokenLive),
// tokens created for the grant are not stored, and DeleteExpired's token
// sweep deletes the tokens it has. The record is forgotten after until,
// once a complete pass of the sweep has deleted them (see tokenSweep).
// There is no index of tokens by grant to find them at once: the tokens a
// refresh stored joined their grant's entries there, a page write per
// refresh (migration 0005).
func (s *Store) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	if grantID == "" {
		return errors.New("sqlitestore: revoke grant: empty grant ID")
	}
	untilMS := unixMS(until)
	defer s.cache.dropTokens(func(t *oauthd.Token) bool { return t.GrantID == grantID })
	return s.write(ctx, func(st *stmts, x *txn) error {
		if _, err := x.exec(st.revokeGrant, grantID, untilMS); err != nil {
			return fmt.Errorf("sqlitestore: revoke grant %q: %w", grantID, err)
		}
		return nil
	})
}

// RevokeTokensOf removes every token the user granted the client: it
// stores a marker that hides them at once, from every read, and the token
// sweep of DeleteExpired deletes them later (see migration 0006). There is
// no index of tokens by user and client to find them now: every token of
// a user's grant joined that user's entries there, a page write per token
// on a server with many users. Tokens stored after the marker are not
// hidden. The user's unused codes for the client are deleted.
func (s *Store) RevokeTokensOf(ctx context.Context, userID, clientID string) error {
	if userID == "" {
		// Tokens of no user (client_credentials) are no user's grant.
		return s.checkReady(ctx)
	}
	defer s.cache.dropTokens(func(t *oauthd.Token) bool { return t.Subject == userID && t.ClientID == clientID })
	return s.write(ctx, func(st *stmts, x *txn) error {
		if x.deferTokens && (len(x.pending) > 0 || len(x.codes) > 0) {
			// Tokens of the batch's writes wait for its end
			// (txn.flushTokens): inserted after the marker, they would
			// get higher rowids, and a rotation that came before the
			// revocation would store a live successor (a client
			// refreshing in a loop kept its grant). And the batch's codes
			// were consumed at its start (txn.readClaims), before the
			// revocation's delete of unused codes, which would spare a
			// code redeemed after it. The batch runs again with a
			// savepoint per write, which runs them in order.
			return errPendingTokens
		}
		if _, err := x.exec(st.deleteTokensOfMarker, userID, clientID); err != nil {
			return fmt.Errorf("sqlitestore: revoke tokens of user %q for client %q: %w", userID, clientID, err)
		}
		now := unixMS(time.Now())
		if _, err := x.exec(st.insertTokensOfMarker, userID, clientID, now); err != nil {
			return fmt.Errorf("sqlitestore: revoke tokens of user %q for client %q: %w", userID, clientID, err)
		}
		if _, err := x.exec(st.deleteCodesOf, userID, clientID, now); err != nil {
			return fmt.Errorf("sqlitestore: revoke codes of user %q for client %q: %w", userID, clientID, err)
		}
		return nil
	})
}

// CreateSession stores a session; ErrAlreadyExists if the hash is taken.
func (s *Store) CreateSession(ctx context.Context, se *oauthd.Session) error {
	args := []any{se.Hash, se.UserID, unixMS(se.AuthTime), unixMS(se.ExpiresAt)}
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createSession, args...)
		if err != nil {
			return fmt.Errorf("sqlitestore: create session: %w", err)
		}
		return inserted(res, "session")
	})
}

// Session returns the session with the hash, or ErrNotFound.
func (s *Store) Session(ctx context.Context, hash string) (*oauthd.Session, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	se, err := scanSession(st.session.QueryRowContext(lookup, hash))
	if err != nil {
		return nil, lookupErr(err, "session")
	}
	return se, nil
}

// DeleteSession removes the session; ErrNotFound if it was gone.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteSession, hash)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete session: %w", err)
		}
		return affected(res, "delete session")
	})
}

// DeleteExpired removes at most limit records of each kind (auth requests,
// codes, tokens, sessions, grant revocations, signing keys) that expired
// before now, and returns how many it removed. Records with a zero expiry
// never expire; a limit below one removes nothing.
//
// On a full disk (SQLITE_FULL) it runs a TRUNCATE checkpoint, which copies
// the WAL back into the database file and gives the -wal file's space
// back to the file system, and tries once more. That succeeds when the
// checkpoint need not grow the database file, which it cannot do on a
// full disk: when the WAL's pages are pages the file already has (the
// WAL grew while a reader held it back, or the disk was filled by
// something else), not when the pages added since the last checkpoint
// filled the disk (see the README's Expired records).
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, s.checkReady(ctx)
	}
	st, err := s.ready(ctx)
	if err != nil {
		return 0, err
	}
	nowMS := unixMS(now)
	// One sweep at a time: each goes on where the last one stopped.
	s.sweepMu.Lock()
	defer s.sweepMu.Unlock()
	tokenIDs, sweep, err := s.expiredTokens(ctx, st, nowMS, limit)
	if err != nil {
		return 0, err
	}
	var n int64
	// What expired may be cached; the cache forgets everything (it refills
	// with what is still asked for).
	defer func() {
		if n > 0 {
			s.cache.clear()
		}
	}()
	deleteAll := func(st *stmts, x *txn) error {
		n = 0
		if len(tokenIDs) > 0 {
			res, err := x.exec(st.deleteExpiredTokens, rowidList(tokenIDs), nowMS)
			if err != nil {
				return fmt.Errorf("sqlitestore: delete expired tokens: %w", err)
			}
			if n, err = res.RowsAffected(); err != nil {
				return fmt.Errorf("sqlitestore: delete expired tokens: %w", err)
			}
		}
		// Revocation records whose grants' tokens a complete pass of the
		// sweep deleted, this write's deletes included.
		res, err := x.exec(st.deleteRevocations, nowMS, sweep.clean, limit)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete expired grant revocations: %w", err)
		}
		m, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("sqlitestore: delete expired grant revocations: %w", err)
		}
		n += m
		for i, del := range st.deleteExpired {
			before := nowMS
			if expiring[i] == "signing_keys" {
				before -= oauthd.SigningKeyRetention.Milliseconds()
			}
			res, err := x.exec(del, before, limit)
			if err != nil {
				return fmt.Errorf("sqlitestore: delete expired %s: %w", expiring[i], err)
			}
			m, err := res.RowsAffected()
			if err != nil {
				return fmt.Errorf("sqlitestore: delete expired %s: %w", expiring[i], err)
			}
			n += m
		}
		return nil
	}
	err = s.write(ctx, deleteAll)
	if isFull(err) && s.truncateWAL(ctx) == nil {
		// The disk is full: the deletes need room in the WAL, which
		// the checkpoint just gave back to the file system.
		err = s.write(ctx, deleteAll)
	}
	if err != nil {
		return 0, err
	}
	s.sweep = sweep
	return int(n), nil
}
