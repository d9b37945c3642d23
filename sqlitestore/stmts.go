package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// The columns of the tables read into structs, in the order the scan
// functions expect them.
const (
	codeColumns = `hash, grant_id, client_id, subject, redirect_uri, scopes, code_challenge,
		code_challenge_method, nonce, claims, auth_time, issued_at, expires_at, used_at`
	tokenColumns = `hash, kind, grant_id, client_id, subject, scopes, claims,
		auth_time, issued_at, expires_at, rotated_at, successor`
	keyColumns = `id, alg, private, not_before, retire_at, expires_at, created_at`
)

// revokedKind is the kind of the marker rows RevokeTokensOf stores in
// tokens (migration 0006): a marker hides the tokens of its user and
// client stored before it, those with a lower rowid. Its hash starts with
// a '!', which no HashToken has, and every read by hash leaves markers out.
const revokedKind = "revoked"

// The statements of RevokeTokensOf: the user and client's marker, if any,
// replaced by a new one, whose rowid is above every token's. They name the
// kind as a literal, which lets SQLite use the partial index of markers
// (TestTokensOfUseTheMarkerIndex).
const (
	sqlDeleteTokensOfMarker = `DELETE FROM tokens WHERE kind = 'revoked' AND subject = ? AND client_id = ?`
	// The user's unused codes for the client go too; only unexpired
	// codes can still be redeemed, which bounds the search to the codes of
	// the last code lifetime, by the index of expiry times
	// (TestCodesOfUseTheExpiryIndex).
	sqlDeleteCodesOf        = `DELETE FROM auth_codes WHERE expires_at > ?3 AND subject = ?1 AND client_id = ?2 AND used_at = 0`
	sqlInsertTokensOfMarker = `INSERT INTO tokens (` + tokenColumns + `)
		VALUES ('!' || lower(hex(randomblob(16))), 'revoked', '', ?2, ?1, '', '', 0, ?3, 0, 0, NULL)`
)

// tokenLive is the condition every read of a token adds: its grant is not
// revoked, and its user has not revoked its client's tokens since it was
// stored. RevokeGrant only records the revocation, RevokeTokensOf only
// stores a marker; the token sweep deletes the tokens they hide later
// (migrations 0005, 0006). A grantless token (client_credentials) has no
// revocation to look for, a token of no user no marker.
const tokenLive = `((grant_id = '' OR NOT EXISTS (SELECT 1 FROM grant_revocations r WHERE r.grant_id = tokens.grant_id))
	AND (subject = '' OR NOT EXISTS (SELECT 1 FROM tokens m WHERE m.kind = 'revoked'
		AND m.subject = tokens.subject AND m.client_id = tokens.client_id AND m.rowid > tokens.rowid)))`

// The reads and writes of one token, by its hash (TestTokenReadsUseTheKeys).
// The single-use step of rotation: only the first UPDATE finds rotated_at = 0.
const (
	sqlToken        = `SELECT ` + tokenColumns + ` FROM tokens WHERE hash = ? AND kind <> 'revoked' AND ` + tokenLive
	sqlRefreshToken = `SELECT ` + tokenColumns + ` FROM tokens WHERE hash = ? AND kind = 'refresh_token' AND ` + tokenLive
	sqlRotateToken  = `UPDATE tokens SET rotated_at = ?, successor = ?
		WHERE hash = ? AND kind = 'refresh_token' AND rotated_at = 0 AND ` + tokenLive
	sqlDeleteToken = `DELETE FROM tokens WHERE hash = ? AND kind <> 'revoked' AND ` + tokenLive
)

// tokenRow is the VALUES row of a token insert, for the tokenParams
// arguments of tokenArgs: a token of a revoked grant gets a NULL kind,
// which the NOT NULL constraint makes INSERT OR IGNORE skip.
const tokenRow = `(?, CASE WHEN EXISTS (SELECT 1 FROM grant_revocations WHERE grant_id = ?) THEN NULL ELSE ? END,
	?, ?, ?, ?, ?, ?, ?, ?, 0, NULL)`

// insertTokensLevels is the number of token insert statements: they insert
// 1, 2, 4 ... 32 rows (stmts.insertTokens): a statement of more rows
// saves little more, and a prepared statement takes memory for every row.
const insertTokensLevels = 6

// insertTokensQuery is the INSERT of n token rows (tokenRow).
func insertTokensQuery(n int) string {
	return `INSERT OR IGNORE INTO tokens (` + tokenColumns + `) VALUES ` + tokenRow + strings.Repeat(`, `+tokenRow, n-1)
}

// The codes and refresh tokens of a batch's writes (txn.readClaims): read
// by a JSON array of hashes; the codes consumed by the time they are used
// at and a JSON array of hashes (TestClaimsUseTheKey). An UPDATE ... FROM
// json_each of [hash, used_at] pairs would take one statement, but SQLite
// runs it through a temporary table and it cost twice as much per code.
const (
	sqlAuthCodes        = `SELECT ` + codeColumns + ` FROM auth_codes WHERE hash IN (SELECT value FROM json_each(?))`
	sqlConsumeAuthCodes = `UPDATE auth_codes SET used_at = ? WHERE hash IN (SELECT value FROM json_each(?)) AND used_at = 0`
	sqlRefreshTokens    = `SELECT ` + tokenColumns + ` FROM tokens
		WHERE hash IN (SELECT value FROM json_each(?)) AND kind = 'refresh_token' AND ` + tokenLive
)

// The token sweep (sweep.go) reads a range of rowids for expired tokens,
// and tokens of revoked grants, on a read connection, then deletes the
// rowids it found, given as a JSON array, checking them again: they were
// found before the write (TestTokenSweepNeedsNoIndex).
const (
	sqlExpiredTokens = `SELECT rowid FROM tokens WHERE rowid > ? AND rowid <= ?
		AND (expires_at != 0 AND expires_at < ? OR NOT ` + tokenLive + `)
		ORDER BY rowid LIMIT ?`
	sqlDeleteExpiredTokens = `DELETE FROM tokens WHERE rowid IN (SELECT value FROM json_each(?1))
		AND (expires_at != 0 AND expires_at < ?2 OR NOT ` + tokenLive + `)`
)

// The revocation records DeleteExpired may forget: expired before ?1, and
// seen by a complete pass of the token sweep (seq up to ?2, see
// tokenSweep), which deleted their grants' tokens.
const (
	sqlRevocationMark    = `SELECT coalesce(max(seq), 0) FROM grant_revocations`
	sqlDeleteRevocations = `DELETE FROM grant_revocations WHERE seq IN (SELECT seq FROM grant_revocations
		WHERE expires_at != 0 AND expires_at < ?1 AND seq <= ?2 LIMIT ?3)`
)

// expiring names the tables DeleteExpired cleans through their expires_at
// index: every one has an expires_at column, where 0 means never; grant
// revocations are forgotten apart (sqlDeleteRevocations). Tokens
// have no such index and are swept separately (sweep.go).
var expiring = []string{"auth_requests", "auth_codes", "sessions", "signing_keys"}

// stmts are the store's prepared statements: the reads on the read pool,
// the writes on the writer's connection.
type stmts struct {
	all []*sql.Stmt

	// Reads.
	client, clients                *sql.Stmt
	user, userByUsername, users    *sql.Stmt
	authRequest, token, session    *sql.Stmt
	consent, consents, signingKeys *sql.Stmt
	maxTokenRowid, expiredTokens   *sql.Stmt // the token sweep (sweep.go)

	// Writes.
	createClient, updateClient, deleteClient   *sql.Stmt
	createUser, updateUser, deleteUser         *sql.Stmt
	createAuthRequest, deleteAuthRequest       *sql.Stmt
	createAuthCode, consumeAuthCode, authCode  *sql.Stmt
	authCodes, consumeAuthCodes, refreshTokens *sql.Stmt
	grantRevoked                               *sql.Stmt
	// insertTokens[k] inserts 1<<k token rows: a token (createTokens),
	// a pair (createTokenPair), a batch's (txn.flushTokens).
	insertTokens                       [insertTokensLevels]*sql.Stmt
	rotateToken, refreshToken          *sql.Stmt
	deleteToken, revokeGrant           *sql.Stmt
	deleteTokensOfMarker               *sql.Stmt // sqlDeleteTokensOfMarker
	insertTokensOfMarker               *sql.Stmt // sqlInsertTokensOfMarker
	deleteCodesOf                      *sql.Stmt // sqlDeleteCodesOf
	createSession, deleteSession       *sql.Stmt
	saveConsent, deleteConsent         *sql.Stmt
	createSigningKey, deleteSigningKey *sql.Stmt
	createFirstSigningKey              *sql.Stmt   // sqlCreateFirstSigningKey
	deleteExpired                      []*sql.Stmt // in the order of expiring
	deleteExpiredTokens                *sql.Stmt   // the rowids the token sweep found
	deleteRevocations                  *sql.Stmt   // sqlDeleteRevocations
	revocationMark                     *sql.Stmt   // sqlRevocationMark, a read
}

// prepare prepares every statement, the reads on rdb and the writes on
// wconn, the writer's connection.
func prepare(ctx context.Context, rdb *sql.DB, wconn *sql.Conn) (_ *stmts, err error) {
	st := new(stmts)
	defer func() {
		if err != nil {
			st.close()
		}
	}()
	reads := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&st.client, `SELECT data FROM clients WHERE id = ?`},
		{&st.clients, `SELECT data FROM clients ORDER BY id`},
		{&st.user, `SELECT data FROM users WHERE id = ?`},
		{&st.userByUsername, `SELECT data FROM users WHERE username = ?`},
		{&st.users, `SELECT data FROM users ORDER BY username`},
		{&st.authRequest, `SELECT data FROM auth_requests WHERE id = ?`},
		{&st.token, sqlToken},
		{&st.revocationMark, sqlRevocationMark},
		{&st.session, `SELECT hash, user_id, auth_time, expires_at FROM sessions WHERE hash = ?`},
		{&st.consent, `SELECT user_id, client_id, scopes, created_at, updated_at FROM consents WHERE user_id = ? AND client_id = ?`},
		{&st.consents, `SELECT user_id, client_id, scopes, created_at, updated_at FROM consents WHERE user_id = ? ORDER BY client_id`},
		{&st.signingKeys, `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY not_before, id`},
		{&st.maxTokenRowid, `SELECT coalesce(max(rowid), 0) FROM tokens`},
		{&st.expiredTokens, sqlExpiredTokens},
	}
	writes := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&st.createClient, `INSERT INTO clients (id, data, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.updateClient, `UPDATE clients SET data = ?, created_at = ? WHERE id = ?`},
		{&st.deleteClient, `DELETE FROM clients WHERE id = ?`},

		{&st.createUser, `INSERT INTO users (id, username, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.updateUser, `UPDATE users SET username = ?, data = ?, created_at = ?, updated_at = ? WHERE id = ?`},
		{&st.deleteUser, `DELETE FROM users WHERE id = ?`},

		{&st.createAuthRequest, `INSERT INTO auth_requests (id, data, expires_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.deleteAuthRequest, `DELETE FROM auth_requests WHERE id = ?`},

		{&st.createAuthCode, `INSERT INTO auth_codes (` + codeColumns + `)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT DO NOTHING`},
		// The single-use step: only the first UPDATE finds used_at = 0.
		// consumeCode reads the code afterwards with authCode, in the
		// same transaction: cheaper than a RETURNING clause (see there).
		{&st.consumeAuthCode, `UPDATE auth_codes SET used_at = ? WHERE hash = ? AND used_at = 0`},
		{&st.authCode, `SELECT ` + codeColumns + ` FROM auth_codes WHERE hash = ?`},
		// The codes of a batch's redemptions, read and consumed together
		// (txn.consumeCodes).
		{&st.authCodes, sqlAuthCodes},
		{&st.consumeAuthCodes, sqlConsumeAuthCodes},
		// The refresh tokens of a batch's rotations, read together
		// (txn.readClaims).
		{&st.refreshTokens, sqlRefreshTokens},

		// The token inserts (insertTokensQuery, prepared below): a
		// token of a revoked grant is not stored: its kind becomes NULL,
		// a row that OR IGNORE skips for its NOT NULL. They are INSERT
		// ... VALUES, not INSERT ... SELECT ... WHERE NOT EXISTS, which
		// cost more per row. OR IGNORE skips a taken hash too;
		// createTokens tells the two apart with grantRevoked.
		// Their parameters are anonymous, the grant ID bound twice (see
		// tokenArgs): the driver reads the name of every parameter as it
		// binds it, a string allocated for each ?NNN and none for a ?.
		{&st.grantRevoked, `SELECT EXISTS (SELECT 1 FROM grant_revocations WHERE grant_id = ?)`},
		{&st.rotateToken, sqlRotateToken},
		{&st.refreshToken, sqlRefreshToken},
		{&st.deleteToken, sqlDeleteToken},
		// A revocation lasts until the latest time it was given; 0 is
		// for good.
		{&st.revokeGrant, `INSERT INTO grant_revocations (grant_id, expires_at) VALUES (?, ?)
			ON CONFLICT (grant_id) DO UPDATE SET expires_at =
				CASE WHEN expires_at = 0 OR excluded.expires_at = 0 THEN 0
				ELSE max(expires_at, excluded.expires_at) END`},
		{&st.deleteTokensOfMarker, sqlDeleteTokensOfMarker},
		{&st.insertTokensOfMarker, sqlInsertTokensOfMarker},
		{&st.deleteCodesOf, sqlDeleteCodesOf},

		{&st.createSession, `INSERT INTO sessions (hash, user_id, auth_time, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.deleteSession, `DELETE FROM sessions WHERE hash = ?`},

		{&st.saveConsent, `INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (user_id, client_id) DO UPDATE SET
				scopes = excluded.scopes, created_at = excluded.created_at, updated_at = excluded.updated_at`},
		{&st.deleteConsent, `DELETE FROM consents WHERE user_id = ? AND client_id = ?`},

		{&st.createSigningKey, `INSERT INTO signing_keys (` + keyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`},
		{&st.deleteSigningKey, `DELETE FROM signing_keys WHERE id = ?`},
		{&st.createFirstSigningKey, sqlCreateFirstSigningKey},
		{&st.deleteExpiredTokens, sqlDeleteExpiredTokens},
		{&st.deleteRevocations, sqlDeleteRevocations},
	}
	for k := range st.insertTokens {
		writes = append(writes, struct {
			dst   **sql.Stmt
			query string
		}{&st.insertTokens[k], insertTokensQuery(1 << k)})
	}
	st.deleteExpired = make([]*sql.Stmt, len(expiring))
	for i, table := range expiring {
		writes = append(writes, struct {
			dst   **sql.Stmt
			query string
		}{&st.deleteExpired[i], fmt.Sprintf(
			`DELETE FROM %[1]s WHERE rowid IN (SELECT rowid FROM %[1]s WHERE expires_at != 0 AND expires_at < ? LIMIT ?)`, table)})
	}
	for _, p := range reads {
		if *p.dst, err = rdb.PrepareContext(ctx, p.query); err != nil {
			return nil, fmt.Errorf("sqlitestore: prepare %q: %w", p.query, err)
		}
		st.all = append(st.all, *p.dst)
	}
	for _, p := range writes {
		if *p.dst, err = wconn.PrepareContext(ctx, p.query); err != nil {
			return nil, fmt.Errorf("sqlitestore: prepare %q: %w", p.query, err)
		}
		st.all = append(st.all, *p.dst)
	}
	return st, nil
}

// close closes every statement.
func (st *stmts) close() error {
	var errs []error
	for _, s := range st.all {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
