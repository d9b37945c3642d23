package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oauthd/oauthd"
)

// The statements of CreateSigningKeyIfNoneActive: the transaction-scoped
// advisory lock of the key's algorithm (bootstrapLock), then the insert
// of the key ($1 to $7, as keyColumns) unless a key of the algorithm has
// not retired at $8 ($8 < retire_at: it signs, or is due to; a NULL
// retire_at is past, as for the zero times in package oauthd). The
// parameters are cast: the SELECT gives them no column type.
const (
	sqlBootstrapLock         = `SELECT pg_advisory_xact_lock($1)`
	sqlCreateFirstSigningKey = `INSERT INTO signing_keys (` + keyColumns + `)
		SELECT $1::text, $2::text, $3::bytea, $4::timestamptz, $5::timestamptz, $6::timestamptz, $7::timestamptz
		WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE alg = $2::text AND retire_at > $8::timestamptz)
		ON CONFLICT DO NOTHING`
)

// bootstrapLock is the key of the advisory lock CreateSigningKeyIfNoneActive
// takes for the algorithm alg: the first 8 bytes of a SHA-256 of it, so
// each algorithm has its own, and none is migrationLock. Like that one it
// is per database: stores on different schemas of one database that
// create a first key at the same moment wait for each other, briefly.
func bootstrapLock(alg string) int64 {
	sum := sha256.Sum256([]byte("oauthd first signing key\x00" + alg))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// CreateSigningKeyIfNoneActive stores k unless a key of its algorithm has
// not retired at now (see oauthd.SigningKeyBootstrapper); ErrAlreadyExists if one does
// or the ID is taken. Its transaction first takes the algorithm's advisory
// lock, which it holds until it commits, so concurrent calls for one
// algorithm, from any node, check and insert one after another. It runs at
// READ COMMITTED whatever the connection's default: its check then sees
// every key committed before the lock was granted, where a snapshot taken
// at the transaction's first statement (REPEATABLE READ) would not. It is
// run again on a serialization failure or deadlock (SERIALIZABLE servers
// such as CockroachDB).
func (s *Store) CreateSigningKeyIfNoneActive(ctx context.Context, k *oauthd.SigningKey, now time.Time) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return err
	}
	what := fmt.Sprintf("create signing key %q", k.ID)
	var n int64
	err := retry(ctx, func() error {
		return pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.ReadCommitted}, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, sqlBootstrapLock, bootstrapLock(k.Algorithm)); err != nil {
				return err
			}
			tag, err := tx.Exec(ctx, sqlCreateFirstSigningKey, k.ID, k.Algorithm, k.Private,
				ts(k.NotBefore), ts(k.RetireAt), ts(k.ExpiresAt), ts(k.CreatedAt), ts(now))
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			return nil
		})
	})
	if err != nil {
		return s.fail(what, err)
	}
	if n == 0 {
		return fmt.Errorf("pgstore: %s (unless a %s key has not retired at %s): %w", what, k.Algorithm, now.UTC().Format(time.RFC3339Nano), oauthd.ErrAlreadyExists)
	}
	return nil
}
