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
//
// The sweep also finds the tokens of revoked grants, which RevokeGrant
// leaves to it (reads hide them). A revocation record may be forgotten,
// once expired, only when its grant has no token left: when a complete
// pass of the sweep over the table began after the record was committed.
// Every token of the grant was stored before the record (the record stops
// new ones), so has a rowid the pass reaches, and the pass sees the record
// there and deletes it. mark is the highest record seq a pass could see
// when it began (records committed later take higher ones: AUTOINCREMENT);
// clean is the mark of the last complete pass, up to which DeleteExpired
// forgets expired records (sqlDeleteRevocations).
type tokenSweep struct {
	// All guarded by Store.sweepMu.
	after int64 // the last rowid looked at
	begun bool  // a pass has begun, and mark is its
	mark  int64
	clean int64
}

// beginPass starts a pass over the table at rowid 0.
func (sw *tokenSweep) beginPass(ctx context.Context, st *stmts) error {
	if err := st.revocationMark.QueryRowContext(ctx).Scan(&sw.mark); err != nil {
		return fmt.Errorf("sqlitestore: find expired tokens: %w", err)
	}
	sw.begun = true
	return nil
}

// endPass records that the pass has looked at every rowid of the table.
func (sw *tokenSweep) endPass() {
	if sw.begun {
		sw.clean = sw.mark
	}
	sw.begun = false
}

// expiredTokens returns the rowids of at most limit tokens that expired
// before nowMS or whose grant is revoked, looking at most once at every
// rowid of the table, from just after s.sweep.after and round again from
// the start, and where the sweep is then. The caller makes that the
// sweep's state once it has deleted the rowids: a pass is complete only
// when what it found is gone.
func (s *Store) expiredTokens(ctx context.Context, st *stmts, nowMS int64, limit int) ([]int64, tokenSweep, error) {
	sw := s.sweep
	var maxID int64
	if err := st.maxTokenRowid.QueryRowContext(ctx).Scan(&maxID); err != nil {
		return nil, sw, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
	}
	pos := sw.after
	if pos < 0 || pos >= maxID {
		// The pass has looked at every rowid up to the end of the
		// table (the end may have been deleted since).
		sw.endPass()
		pos = 0
	}
	if !sw.begun {
		if err := sw.beginPass(ctx, st); err != nil {
			return nil, sw, err
		}
	}
	var ids []int64
	for covered := int64(0); covered < maxID && len(ids) < limit; {
		// Up to the end of the table, and after the wrap no further than
		// where this call started.
		hi := min(pos+sweepSpan, maxID, pos+maxID-covered)
		rows, err := st.expiredTokens.QueryContext(ctx, pos, hi, nowMS, limit-len(ids))
		if err != nil {
			return nil, sw, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
		}
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, sw, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return nil, sw, fmt.Errorf("sqlitestore: find expired tokens: %w", err)
		}
		if len(ids) == limit {
			// Full: the next call goes on just after the last one found.
			covered += ids[len(ids)-1] - pos
			pos = ids[len(ids)-1]
			break
		}
		covered += hi - pos
		if pos = hi; pos >= maxID {
			sw.endPass()
			pos = 0
			if err := sw.beginPass(ctx, st); err != nil {
				return nil, sw, err
			}
		}
	}
	sw.after = pos
	return ids, sw, nil
}

// rowidList encodes rowids as the JSON array that deleteExpiredTokens
// reads with json_each.
func rowidList(ids []int64) string {
	b, _ := json.Marshal(ids) // []int64 always encodes
	return string(b)
}
