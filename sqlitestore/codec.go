package sqlitestore

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/oauthd/oauthd"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// unixMS is t in unix milliseconds, 0 for the zero time.
func unixMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// fromMS is the time of unix milliseconds v in UTC, the zero time for 0.
func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// joinScopes and splitScopes store scopes space-separated.
func joinScopes(s []string) string { return strings.Join(s, " ") }

func splitScopes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanCode(sc scanner) (*oauthd.AuthCode, error) {
	var (
		c                                     oauthd.AuthCode
		scopes                                string
		authTime, issuedAt, expiresAt, usedAt int64
	)
	err := sc.Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.Subject, &c.RedirectURI, &scopes, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.Nonce, &c.Claims, &authTime, &issuedAt, &expiresAt, &usedAt)
	if err != nil {
		return nil, err
	}
	c.Scopes = splitScopes(scopes)
	c.AuthTime, c.IssuedAt, c.ExpiresAt, c.UsedAt = fromMS(authTime), fromMS(issuedAt), fromMS(expiresAt), fromMS(usedAt)
	return &c, nil
}

func scanToken(sc scanner) (*oauthd.Token, error) {
	var (
		t                                        oauthd.Token
		scopes                                   string
		authTime, issuedAt, expiresAt, rotatedAt int64
	)
	err := sc.Scan(&t.Hash, &t.Kind, &t.GrantID, &t.ClientID, &t.Subject, &scopes, &t.Claims,
		&authTime, &issuedAt, &expiresAt, &rotatedAt, &t.Successor)
	if err != nil {
		return nil, err
	}
	t.Scopes = splitScopes(scopes)
	t.AuthTime, t.IssuedAt, t.ExpiresAt, t.RotatedAt = fromMS(authTime), fromMS(issuedAt), fromMS(expiresAt), fromMS(rotatedAt)
	return &t, nil
}

func scanSession(sc scanner) (*oauthd.Session, error) {
	var (
		s                   oauthd.Session
		authTime, expiresAt int64
	)
	if err := sc.Scan(&s.Hash, &s.UserID, &authTime, &expiresAt); err != nil {
		return nil, err
	}
	s.AuthTime, s.ExpiresAt = fromMS(authTime), fromMS(expiresAt)
	return &s, nil
}

func scanConsent(sc scanner) (*oauthd.Consent, error) {
	var (
		c                    oauthd.Consent
		scopes               string
		createdAt, updatedAt int64
	)
	if err := sc.Scan(&c.UserID, &c.ClientID, &scopes, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	c.Scopes = splitScopes(scopes)
	c.CreatedAt, c.UpdatedAt = fromMS(createdAt), fromMS(updatedAt)
	return &c, nil
}

func scanKey(sc scanner) (*oauthd.SigningKey, error) {
	var (
		k                                         oauthd.SigningKey
		notBefore, retireAt, expiresAt, createdAt int64
	)
	if err := sc.Scan(&k.ID, &k.Algorithm, &k.Private, &notBefore, &retireAt, &expiresAt, &createdAt); err != nil {
		return nil, err
	}
	k.NotBefore, k.RetireAt, k.ExpiresAt, k.CreatedAt = fromMS(notBefore), fromMS(retireAt), fromMS(expiresAt), fromMS(createdAt)
	return &k, nil
}

// checkKinds checks that every token is an access or a refresh token:
// the tokens table keeps RevokeTokensOf's markers too (revokedKind).
func checkKinds(tokens []*oauthd.Token) error {
	for _, t := range tokens {
		if t.Kind != oauthd.AccessToken && t.Kind != oauthd.RefreshToken {
			return fmt.Errorf("sqlitestore: token kind %q: want %q or %q", t.Kind, oauthd.AccessToken, oauthd.RefreshToken)
		}
	}
	return nil
}

// tokenArgs are the arguments of a token insert (stmts.insertTokens).
// The grant ID comes twice, first for the revocation check; tokenGrant is
// its index.
func tokenArgs(t *oauthd.Token) []any {
	return []any{t.Hash, t.GrantID, t.Kind, t.GrantID, t.ClientID, t.Subject, joinScopes(t.Scopes), t.Claims,
		unixMS(t.AuthTime), unixMS(t.IssuedAt), unixMS(t.ExpiresAt)}
}

// tokenGrant is the index of the grant ID in tokenArgs, and tokenParams
// their number.
const (
	tokenGrant  = 1
	tokenParams = 11
)

// isConstraint reports whether err is a violated UNIQUE or PRIMARY KEY
// constraint (or another constraint SQLite did not detail).
func isConstraint(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT, sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// isBusy reports whether err is SQLITE_BUSY (or one of its extended codes).
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// isFull reports whether err is SQLITE_FULL: the disk (or a quota) is
// full. Nothing was written, and the write succeeds again once there is
// room: for clients it is a 503 to retry, not a server fault.
func isFull(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_FULL
}

// WriteRefused reports whether err, an error of the store's, says that
// the database file takes no writes for a reason that outlasts the
// request, and names it: "disk full" (SQLITE_FULL: the file system or a
// quota is full), "read-only" (SQLITE_READONLY: a file system remounted
// read-only, a database file deleted or replaced under the server) or
// "I/O error" (SQLITE_IOERR, which SQLite also says when it cannot grow
// its shared-memory file on a full disk). Every write fails the same way
// until an operator acts or, for a full disk, until space is given back;
// a server should stop taking traffic meanwhile. A database locked by
// another process (SQLITE_BUSY) is not one: the lock passes.
func WriteRefused(err error) (reason string, ok bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return "", false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL:
		return "disk full", true
	case sqlite3.SQLITE_READONLY:
		return "read-only", true
	case sqlite3.SQLITE_IOERR:
		return "I/O error", true
	}
	return "", false
}

// lookupErr turns the error of a single-row lookup into the store's error:
// ErrNotFound for no row.
func lookupErr(err error, what string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlitestore: %s: %w", what, oauthd.ErrNotFound)
	}
	return unavailable(fmt.Errorf("sqlitestore: read %s: %w", what, err))
}

// unavailable marks an error that says the database cannot be used for
// now with oauthd.ErrUnavailable (the Provider answers 503 and
// Retry-After): SQLITE_BUSY once the busy timeout has passed (another
// process holds the write lock) and a closed store (a server shutting
// down).
func unavailable(err error) error {
	if err == nil || errors.Is(err, oauthd.ErrUnavailable) || !(isBusy(err) || isFull(err) || errors.Is(err, errClosed)) {
		return err
	}
	return fmt.Errorf("%w: %w", oauthd.ErrUnavailable, err)
}

// affected returns the rows a statement changed, or ErrNotFound (as what)
// when it changed none.
func affected(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlitestore: %s: %w", what, oauthd.ErrNotFound)
	}
	return nil
}

// inserted returns ErrAlreadyExists (as what) when an INSERT ... ON
// CONFLICT DO NOTHING inserted nothing.
func inserted(res sql.Result, what string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("sqlitestore: create %s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlitestore: create %s: %w", what, oauthd.ErrAlreadyExists)
	}
	return nil
}

// marshal encodes v as JSON for a row, as json.Marshal does but without
// escaping <, > and & for HTML: a row is never embedded in HTML, and each
// escape (\u003c) takes six bytes where the character takes one, so a
// pending authorization request full of them would take up to six times
// its size. Rows written with the escapes decode alike.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}
