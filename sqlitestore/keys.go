package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/oauthd/oauthd"
)

// sqlCreateFirstSigningKey inserts a signing key (?1 to ?7, as keyColumns)
// unless a key of its algorithm has not retired at ?8 (?8 < retire_at: it
// signs, or is due to; a zero retire_at is past). The check and the insert are one statement
// of the writer's transaction, which BEGIN IMMEDIATE opened holding the
// database's write lock: no other connection, of this process or another
// on the same file, writes between them. The WHERE clause also tells the
// parser that ON CONFLICT belongs to the INSERT, not to a join.
const sqlCreateFirstSigningKey = `INSERT INTO signing_keys (` + keyColumns + `)
	SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
	WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = ?2 AND retire_at > ?8)
	ON CONFLICT DO NOTHING`

// CreateSigningKeyIfNoneActive stores k unless a key of its algorithm has
// not retired at now (see oauthd.SigningKeyBootstrapper), in one write;
// ErrAlreadyExists if one does or the ID is taken. Several stores, in
// several processes, may share the file: the write lock of the writer's
// transaction serializes them.
func (s *Store) CreateSigningKeyIfNoneActive(ctx context.Context, k *oauthd.SigningKey, now time.Time) error {
	args := []any{k.ID, k.Algorithm, k.Private, unixMS(k.NotBefore), unixMS(k.RetireAt), unixMS(k.ExpiresAt), unixMS(k.CreatedAt),
		unixMS(now)}
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createFirstSigningKey, args...)
		if err != nil {
			return fmt.Errorf("sqlitestore: create signing key %q: %w", k.ID, err)
		}
		return inserted(res, fmt.Sprintf("signing key %q (unless a %s key has not retired at %s)", k.ID, k.Algorithm, now.UTC().Format(time.RFC3339Nano)))
	})
}
