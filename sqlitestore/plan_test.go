package sqlitestore

import (
	"strings"
	"testing"
)

// The statements that delete a grant's tokens and the tokens a user
// granted a client find them through the partial indexes on tokens
// (migrations 0002 and 0003), not by scanning the table.
func TestTokenDeletesUsePartialIndexes(t *testing.T) {
	s := openTemp(t)
	for _, c := range []struct{ query, index string }{
		{sqlDeleteGrantTokens, "tokens_grant_id"},
		{sqlDeleteTokensOf, "tokens_subject_client_id"},
	} {
		rows, err := s.rdb.QueryContext(t.Context(), `EXPLAIN QUERY PLAN `+c.query, "x", "y")
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX "+c.index+" ") {
			t.Errorf("%s: plan %q; want a search using index %s", c.query, plan, c.index)
		}
	}
}
