package pgstore

import (
	"bytes"
	"encoding/json"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/oauthd/oauthd"
)

// ts is t as a timestamptz parameter, truncated to the millisecond; the
// zero time is NULL.
func ts(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: t.Truncate(time.Millisecond).UTC(), Valid: true}
}

// fromTS is the time of a timestamptz column in UTC; NULL is the zero time.
func fromTS(v pgtype.Timestamptz) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return v.Time.UTC()
}

// joinScopes and splitScopes store scopes space-separated.
func joinScopes(s []string) string { return strings.Join(s, " ") }

func splitScopes(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Fields(s)
}

// The columns of the tables read into structs, in the order the scan
// functions expect them.
const (
	codeColumns = `hash, grant_id, client_id, subject, redirect_uri, scopes, code_challenge,
		code_challenge_method, nonce, claims, auth_time, issued_at, expires_at, used_at`
	tokenColumns = `hash, kind, grant_id, client_id, subject, scopes, claims,
		auth_time, issued_at, expires_at, rotated_at, successor`
	sessionColumns = `hash, user_id, auth_time, expires_at`
	consentColumns = `user_id, client_id, scopes, created_at, updated_at`
	keyColumns     = `id, alg, private, not_before, retire_at, expires_at, created_at`
)

func scanCode(row pgx.Row) (*oauthd.AuthCode, error) {
	var (
		c                                     oauthd.AuthCode
		scopes                                string
		authTime, issuedAt, expiresAt, usedAt pgtype.Timestamptz
	)
	err := row.Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.Subject, &c.RedirectURI, &scopes, &c.CodeChallenge,
		&c.CodeChallengeMethod, &c.Nonce, &c.Claims, &authTime, &issuedAt, &expiresAt, &usedAt)
	if err != nil {
		return nil, err
	}
	c.Scopes = splitScopes(scopes)
	c.AuthTime, c.IssuedAt, c.ExpiresAt, c.UsedAt = fromTS(authTime), fromTS(issuedAt), fromTS(expiresAt), fromTS(usedAt)
	return &c, nil
}

func scanToken(row pgx.Row) (*oauthd.Token, error) {
	var (
		t                                        oauthd.Token
		scopes                                   string
		authTime, issuedAt, expiresAt, rotatedAt pgtype.Timestamptz
	)
	err := row.Scan(&t.Hash, &t.Kind, &t.GrantID, &t.ClientID, &t.Subject, &scopes, &t.Claims,
		&authTime, &issuedAt, &expiresAt, &rotatedAt, &t.Successor)
	if err != nil {
		return nil, err
	}
	t.Scopes = splitScopes(scopes)
	t.AuthTime, t.IssuedAt, t.ExpiresAt, t.RotatedAt = fromTS(authTime), fromTS(issuedAt), fromTS(expiresAt), fromTS(rotatedAt)
	return &t, nil
}

func scanSession(row pgx.Row) (*oauthd.Session, error) {
	var (
		s                   oauthd.Session
		authTime, expiresAt pgtype.Timestamptz
	)
	if err := row.Scan(&s.Hash, &s.UserID, &authTime, &expiresAt); err != nil {
		return nil, err
	}
	s.AuthTime, s.ExpiresAt = fromTS(authTime), fromTS(expiresAt)
	return &s, nil
}

func scanConsent(row pgx.Row) (*oauthd.Consent, error) {
	var (
		c                    oauthd.Consent
		scopes               string
		createdAt, updatedAt pgtype.Timestamptz
	)
	if err := row.Scan(&c.UserID, &c.ClientID, &scopes, &createdAt, &updatedAt); err != nil {
		return nil, err
	}
	c.Scopes = splitScopes(scopes)
	c.CreatedAt, c.UpdatedAt = fromTS(createdAt), fromTS(updatedAt)
	return &c, nil
}

func scanKey(row pgx.Row) (*oauthd.SigningKey, error) {
	var (
		k                                         oauthd.SigningKey
		notBefore, retireAt, expiresAt, createdAt pgtype.Timestamptz
	)
	if err := row.Scan(&k.ID, &k.Algorithm, &k.Private, &notBefore, &retireAt, &expiresAt, &createdAt); err != nil {
		return nil, err
	}
	k.NotBefore, k.RetireAt, k.ExpiresAt, k.CreatedAt = fromTS(notBefore), fromTS(retireAt), fromTS(expiresAt), fromTS(createdAt)
	return &k, nil
}

// tokenRows are tokens as the column arrays of the createTokens statement.
type tokenRows struct {
	hash, kind, grantID, clientID, subject, scopes, claims []string
	authTime, issuedAt, expiresAt                          []pgtype.Timestamptz
}

func newTokenRows(tokens []*oauthd.Token) *tokenRows {
	n := len(tokens)
	r := &tokenRows{
		hash: make([]string, n), kind: make([]string, n), grantID: make([]string, n), clientID: make([]string, n),
		subject: make([]string, n), scopes: make([]string, n), claims: make([]string, n),
		authTime: make([]pgtype.Timestamptz, n), issuedAt: make([]pgtype.Timestamptz, n), expiresAt: make([]pgtype.Timestamptz, n),
	}
	for i, t := range tokens {
		r.hash[i], r.kind[i], r.grantID[i], r.clientID[i] = t.Hash, t.Kind, t.GrantID, t.ClientID
		r.subject[i], r.scopes[i], r.claims[i] = t.Subject, joinScopes(t.Scopes), t.Claims
		r.authTime[i], r.issuedAt[i], r.expiresAt[i] = ts(t.AuthTime), ts(t.IssuedAt), ts(t.ExpiresAt)
	}
	return r
}

// args are the arguments of the createTokens statement.
func (r *tokenRows) args() []any {
	return []any{r.hash, r.kind, r.grantID, r.clientID, r.subject, r.scopes, r.claims, r.authTime, r.issuedAt, r.expiresAt}
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
