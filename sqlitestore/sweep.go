package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
)

// sweepSpan is how many rowids one query of the token sweep looks at: a
// range scan of the table that a read connection runs in milliseconds.
const sweepSpan = 50_000

// tokenSweep is where DeleteExpired goes on looking for expired tokens.
//
// The tokens table has no index on expires_at (migration 0004): every
// token insert would pay for it, and only DeleteExpired reads it. Instead,
// DeleteExpired walks the table in rowid order on a read connection (WAL
// readers do not hold up the writer), sweepSpan rowids per query, from
// where the last call stopped, and wraps around at the end, so a call
// looks at every token at most once and successive calls go on through
// the table instead of scanning its live part again and again. The rowids
// it finds are deleted by the write of DeleteExpired, which checks the
// expiry again: a rowid freed and reused since is not deleted unless its
// new token has expired too.
type tokenSweep struct {
	after int64 // the last rowid looked at; guarded by Store.sweepMu
}

// expiredTokens returns the rowids of at most limit tokens that expired
// before nowMS, looking at most once at every rowid of the table, from
// just after s.after and round again from the start.
func (s *Store) expiredTokens(ctx context.Context, st *stmts, nowMS int64, limit int) ([]int64, error) {
	var maxID int64
	if err := st.maxTokenRowid.QueryRowContext(ctx).Scan(&maxID); err != nil {
		return nil, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
	}
	pos := s.sweep.after
	if pos < 0 || pos >= maxID {
		pos = 0
	}
	var ids []int64
	for covered := int64(0); covered < maxID && len(ids) < limit; {
		// Up to the end of the table, and after the wrap no further than
		// where this call started.
		hi := min(pos+sweepSpan, maxID, pos+maxID-covered)
		rows, err := st.expiredTokens.QueryContext(ctx, pos, hi, nowMS, limit-len(ids))
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
		}
		if len(ids) == limit {
			// Full: the next call goes on just after the last one found.
			covered += ids[len(ids)-1] - pos
			pos = ids[len(ids)-1]
			break
		}
		covered += hi - pos
		if pos = hi; pos >= maxID {
			pos = 0
		}
	}
	s.sweep.after = pos
	return ids, nil
}

// rowidList encodes rowids as the JSON array that deleteExpiredTokens
// reads with json_each.
func rowidList(ids []int64) string {
	b, _ := json.Marshal(ids) // []int64 always encodes
	return string(b)
}
