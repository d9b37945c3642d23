package sqlitestore

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"math/bits"

	"github.com/oauthd/oauthd"
)

// A batch of writes (a group commit's optimistic run, see
// writer.runOptimistic) shares statements where its writes would each run
// their own: it reads the single-use credentials its writes start with
// together, before them (readClaims), and inserts the tokens they store
// together, after them (flushTokens).
//
// Neither changes an outcome a caller can see. A write's caller hears of it
// only once its batch has committed, so no write of a batch can depend on
// another's (no caller knows a code's or token's fate, or a token of the
// batch, before it commits): the writes of one batch may take effect in any
// order, and the reads and inserts moved to its start and end are what some
// order of them would do. The transaction holds the write lock from its
// BEGIN, so what readClaims reads stays as read unless a write of the
// batch changes it, which the write's own conditional statement notices. If
// anything does not go as planned, the batch runs again with a savepoint per
// write and without either (writer.runSavepoints), where every write runs
// its own statements and gets its own outcome.

// A claim is the single-use credential a write starts with: the code it
// consumes (ConsumeAuthCode, RedeemAuthCode: consumeCode) or the refresh
// token it rotates (RotateRefreshTokenFunc: refreshToken).
type claim struct {
	st      *stmts
	hash    string
	usedAt  int64 // for a code: the time it is used at
	refresh bool  // a refresh token, not a code
}

// An outcome is what readClaims found for one claim: what consumeCode or
// refreshToken returns for it.
type outcome[T any] struct {
	v   T
	err error
}

// plainHash reports whether h is printable ASCII, as HashToken's hashes
// are: readClaims passes hashes to SQLite in JSON, and leaves any other to
// its write.
func plainHash(h string) bool {
	for i := range len(h) {
		if h[i] < 0x21 || h[i] > 0x7e {
			return false
		}
	}
	return h != ""
}

// readClaims reads the claims of the batch's writes, ahead of them:
//
//   - The codes: one SELECT reads them all and one UPDATE for each time
//     they are used at (one or a few) marks the unused ones used, where
//     every redemption would run an UPDATE and a SELECT of its own
//     (consumeCode).
//   - The refresh tokens: one SELECT reads them all, where every rotation
//     would run one of its own (refreshToken). Each rotation still marks
//     its token rotated with its own conditional UPDATE, which fails if a
//     write before it in the batch removed the token (the batch then runs
//     again).
//
// It leaves each outcome in x.codes and x.refresh, where the write takes
// it. A code or token claimed twice in the batch is read for the first
// claim only: the second finds it used or rotated by the first.
func (x *txn) readClaims(ops []*writeOp) error {
	n := 0
	for _, op := range ops {
		if op.claim != nil {
			n++
		}
	}
	if n < 2 {
		return nil // a lone claim costs its write no more than a read of its own
	}
	var codes, tokens []*claim
	seen := make(map[claim]bool, n)
	for _, op := range ops {
		c := op.claim
		if c == nil || !plainHash(c.hash) {
			continue
		}
		key := claim{hash: c.hash, refresh: c.refresh}
		if seen[key] {
			continue
		}
		seen[key] = true
		if c.refresh {
			tokens = append(tokens, c)
		} else {
			codes = append(codes, c)
		}
	}
	if len(codes) > 1 {
		if err := x.consumeCodes(codes); err != nil {
			return err
		}
	}
	if len(tokens) > 1 {
		if err := x.readRefreshTokens(tokens); err != nil {
			return err
		}
	}
	return nil
}

// hashList is the JSON array of the claims' hashes.
func hashList(claims []*claim) (string, error) {
	hashes := make([]string, len(claims))
	for i, c := range claims {
		hashes[i] = c.hash
	}
	b, err := json.Marshal(hashes)
	return string(b), err
}

// consumeCodes consumes the codes claims name (see readClaims).
func (x *txn) consumeCodes(claims []*claim) error {
	st := claims[0].st
	list, err := hashList(claims)
	if err != nil {
		return err
	}
	usedAt := make(map[string]int64, len(claims))
	for _, c := range claims {
		usedAt[c.hash] = c.usedAt
	}
	rows, err := st.authCodes.QueryContext(x.ctx, list)
	if err != nil {
		return err
	}
	defer rows.Close()
	found := make(map[string]outcome[*oauthd.AuthCode], len(claims))
	// The unused codes' hashes by the time they are used at: one UPDATE
	// for each time (milliseconds; a batch's redemptions share one or a
	// few).
	var (
		times []int64
		uses  = make(map[int64][]string)
	)
	for rows.Next() {
		c, err := scanCode(rows)
		if err != nil {
			return err
		}
		if !c.UsedAt.IsZero() {
			found[c.Hash] = outcome[*oauthd.AuthCode]{c, fmt.Errorf("sqlitestore: auth code: %w", oauthd.ErrAlreadyUsed)}
			continue
		}
		at := usedAt[c.Hash]
		c.UsedAt = fromMS(at)
		found[c.Hash] = outcome[*oauthd.AuthCode]{c, nil}
		if _, ok := uses[at]; !ok {
			times = append(times, at)
		}
		uses[at] = append(uses[at], c.Hash)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	rows.Close()
	for _, c := range claims {
		if _, ok := found[c.hash]; !ok {
			found[c.hash] = outcome[*oauthd.AuthCode]{nil, lookupErr(sql.ErrNoRows, "auth code")}
		}
	}
	for _, at := range times {
		hashes := uses[at]
		b, err := json.Marshal(hashes)
		if err != nil {
			return err
		}
		res, err := x.exec(st.consumeAuthCodes, at, string(b))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(hashes)) {
			return fmt.Errorf("sqlitestore: consume auth codes: %d of %d marked used (%v)", n, len(hashes), err)
		}
	}
	x.codes = found
	return nil
}

// readRefreshTokens reads the refresh tokens claims name (see
// readClaims).
func (x *txn) readRefreshTokens(claims []*claim) error {
	list, err := hashList(claims)
	if err != nil {
		return err
	}
	rows, err := claims[0].st.refreshTokens.QueryContext(x.ctx, list)
	if err != nil {
		return err
	}
	defer rows.Close()
	found := make(map[string]outcome[*oauthd.Token], len(claims))
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return err
		}
		found[t.Hash] = outcome[*oauthd.Token]{t, nil}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, c := range claims {
		if _, ok := found[c.hash]; !ok {
			found[c.hash] = outcome[*oauthd.Token]{nil, lookupErr(sql.ErrNoRows, "refresh token")}
		}
	}
	x.refresh = found
	return nil
}

// flushTokens inserts the token rows the batch's writes left in pending
// (createTokens), with a statement per up to 32 rows, and reports whether
// every row was stored. If a row was skipped (its hash is taken, its grant
// revoked) or a statement failed, it reports false and the caller rolls
// the batch back, to run it again with a savepoint per write. The inserts
// run after every write of the batch, as if those writes had come first: a
// grant revoked in the same batch gets none of its tokens stored, as
// RevokeGrant promises for the tokens created after it.
func (x *txn) flushTokens() bool {
	args := x.pending
	for len(args) > 0 {
		k := min(bits.Len(uint(len(args)/tokenParams))-1, insertTokensLevels-1)
		n := 1 << k
		res, err := x.insertTokens[k].ExecContext(x.ctx, args[:n*tokenParams]...)
		if err != nil {
			return false
		}
		if got, err := res.RowsAffected(); err != nil || got != int64(n) {
			return false
		}
		args = args[n*tokenParams:]
	}
	return true
}
