package sqlitestore

import (
	"slices"
	"strings"
	"testing"
)

// RevokeTokensOf's statements find the user and client's marker through
// the partial index of markers (migration 0006), not by scanning the
// table: they name the kind as a literal, without which SQLite could not
// use the index.
func TestTokensOfUseTheMarkerIndex(t *testing.T) {
	s := openTemp(t)
	plan := queryPlan(t, s, sqlDeleteTokensOfMarker, "x", "y")
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX tokens_revoked (subject=? AND client_id=?)") {
		t.Errorf("%s: plan %q; want a search using index tokens_revoked", sqlDeleteTokensOfMarker, plan)
	}
}

// RevokeTokensOf finds the user's unused codes for the client among the
// unexpired codes only, by the index of expiry times, never by a scan of
// every code the table keeps.
func TestCodesOfUseTheExpiryIndex(t *testing.T) {
	s := openTemp(t)
	plan := queryPlan(t, s, sqlDeleteCodesOf, "x", "y", 1)
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX auth_codes_expires_at (expires_at>?)") {
		t.Errorf("%s: plan %q; want a search using index auth_codes_expires_at", sqlDeleteCodesOf, plan)
	}
}

// queryPlan returns the details of EXPLAIN QUERY PLAN for query.
func queryPlan(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

// A token insert pays for the table and its primary key, and nothing
// else: the expiry sweep needs no index of its own (migration 0004), nor
// does RevokeGrant (migration 0005), nor RevokeTokensOf (migration 0006,
// whose index takes its markers only). The sweep reads rowid ranges of the
// table, looking up each grant's revocation by its key and each user's
// marker for the client in the index of markers, and its delete finds each
// row by rowid.
func TestTokenSweepNeedsNoIndex(t *testing.T) {
	s := openTemp(t)
	indexes := queryStrings(t, s, `SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'tokens' ORDER BY name`)
	if want := []string{"sqlite_autoindex_tokens_1", "tokens_revoked"}; !slices.Equal(indexes, want) {
		t.Errorf("indexes on tokens = %q; want %q", indexes, want)
	}

	plan := queryPlan(t, s, sqlExpiredTokens, 0, 10, 0, 10)
	if len(plan) == 0 || !strings.Contains(plan[0], "SEARCH tokens USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)") {
		t.Errorf("sweep read: plan %q; want a search of a rowid range", plan)
	}
	for _, p := range plan[1:] {
		if strings.Contains(p, "SCAN") || (strings.HasPrefix(p, "SEARCH") && !strings.Contains(p, "sqlite_autoindex_grant_revocations_1 (grant_id=?)") &&
			!strings.Contains(p, "USING INDEX tokens_revoked (subject=? AND client_id=?") && !strings.Contains(p, "USING COVERING INDEX tokens_revoked (subject=? AND client_id=?")) {
			t.Errorf("sweep read: plan %q; want only lookups of revocations by grant ID and of markers by user and client besides the range", plan)
		}
	}
	if plan := strings.Join(queryPlan(t, s, sqlDeleteExpiredTokens, "[1]", 0), "; "); !strings.Contains(plan, "USING INTEGER PRIMARY KEY (rowid=?)") {
		t.Errorf("sweep delete: plan %q; want a search by rowid", plan)
	}
}

// A batch's redemptions read and consume their codes, and its rotations
// read their refresh tokens, by the primary key: one lookup per hash of the
// JSON array, never a scan of the table.
func TestClaimsUseTheKey(t *testing.T) {
	s := openTemp(t)
	for _, q := range []struct {
		query string
		args  []any
		table string
	}{
		{sqlAuthCodes, []any{`["a","b"]`}, "auth_codes"},
		{sqlConsumeAuthCodes, []any{1, `["a","b"]`}, "auth_codes"},
		{sqlRefreshTokens, []any{`["a","b"]`}, "tokens"},
	} {
		plan := queryPlan(t, s, q.query, q.args...)
		joined := strings.Join(plan, "; ")
		if !strings.Contains(joined, q.table+" USING INDEX sqlite_autoindex_"+q.table+"_1 (hash=?)") || strings.Contains(joined, "SCAN "+q.table) {
			t.Errorf("%s: plan %q; want lookups by the primary key", q.query, plan)
		}
	}
}
