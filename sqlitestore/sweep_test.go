package sqlitestore

import (
	"database/sql"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// sweepTokens creates n tokens named prefix-0..n-1; the even ones expired
// a minute ago, the odd ones expire in an hour.
func sweepTokens(t *testing.T, s *Store, prefix string, n int) {
	t.Helper()
	now := time.Now()
	for i := range n {
		exp := now.Add(time.Hour)
		if i%2 == 0 {
			exp = now.Add(-time.Minute)
		}
		tok := &oauthd.Token{Hash: fmt.Sprintf("%s-%d", prefix, i), Kind: oauthd.AccessToken, ClientID: "c",
			Scopes: []string{"read"}, IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: exp}
		if err := s.CreateTokens(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
}

// tokenHashes lists the hashes of the tokens table in rowid order.
func tokenHashes(t *testing.T, s *Store) []string {
	t.Helper()
	return queryStrings(t, s, `SELECT hash FROM tokens ORDER BY rowid`)
}

// queryStrings returns the one text column of query's rows, read on the
// read pool.
func queryStrings(t *testing.T, s *Store, query string, args ...any) []string {
	t.Helper()
	rows, err := s.rdb.QueryContext(t.Context(), query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Successive calls go on through the table where the last one stopped,
// and a call that reaches the end goes round again from the start: an
// expired token behind the sweep's position is found by the next call.
func TestSweepGoesOnAndWrapsAround(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	sweepTokens(t, s, "t", 10) // t-0, t-2, ... t-8 expired
	var got []int
	for range 4 {
		n, err := s.DeleteExpired(ctx, time.Now(), 2)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, n)
	}
	if want := []int{2, 2, 1, 0}; !slices.Equal(got, want) {
		t.Errorf("DeleteExpired(limit 2) calls = %v; want %v", got, want)
	}
	if want := []string{"t-1", "t-3", "t-5", "t-7", "t-9"}; !slices.Equal(tokenHashes(t, s), want) {
		t.Errorf("tokens left = %v; want %v", tokenHashes(t, s), want)
	}

	// Expire the first token (behind the sweep) and one past its position.
	sweepTokens(t, s, "u", 3) // u-0 and u-2 expired
	onWriteConn(t, s, func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `UPDATE tokens SET expires_at = ? WHERE hash = 't-1'`, unixMS(time.Now().Add(-time.Second)))
		return err
	})
	n, err := s.DeleteExpired(ctx, time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("DeleteExpired after the wrap = %d; want 3 (t-1, u-0, u-2)", n)
	}
	if want := []string{"t-3", "t-5", "t-7", "t-9", "u-1"}; !slices.Equal(tokenHashes(t, s), want) {
		t.Errorf("tokens left = %v; want %v", tokenHashes(t, s), want)
	}
}

// Rowids far apart (tokens deleted in between) are looked at in several
// queries of sweepSpan rowids; one call still finds every expired token.
func TestSweepCrossesRowidGaps(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	sweepTokens(t, s, "t", 6)
	for i, h := range []string{"t-2", "t-3", "t-4", "t-5"} {
		onWriteConn(t, s, func(c *sql.Conn) error {
			_, err := c.ExecContext(ctx, `UPDATE tokens SET rowid = ? WHERE hash = ?`, int64(i+1)*3*sweepSpan+7, h)
			return err
		})
	}
	n, err := s.DeleteExpired(ctx, time.Now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("DeleteExpired = %d; want 3", n)
	}
	if want := []string{"t-1", "t-3", "t-5"}; !slices.Equal(tokenHashes(t, s), want) {
		t.Errorf("tokens left = %v; want %v", tokenHashes(t, s), want)
	}
}

// The rowids are found on a read connection before the write: if one of
// them is a live token by the time the write runs (its rowid freed and
// reused), the write leaves it alone.
func TestSweepWriteRechecksExpiry(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	sweepTokens(t, s, "t", 2) // t-0 expired, t-1 live
	var live, expired int64
	if err := s.rdb.QueryRowContext(ctx, `SELECT rowid FROM tokens WHERE hash = 't-1'`).Scan(&live); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.QueryRowContext(ctx, `SELECT rowid FROM tokens WHERE hash = 't-0'`).Scan(&expired); err != nil {
		t.Fatal(err)
	}
	var n int64
	err := s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteExpiredTokens, rowidList([]int64{live, expired, 999}), unixMS(time.Now()))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("deleted %d; want 1", n)
	}
	if want := []string{"t-1"}; !slices.Equal(tokenHashes(t, s), want) {
		t.Errorf("tokens left = %v; want %v", tokenHashes(t, s), want)
	}
}

// A sweep of an empty table, or of one with nothing expired, finds nothing
// and keeps working afterwards.
func TestSweepNothingExpired(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	for range 2 {
		if n, err := s.DeleteExpired(ctx, time.Now(), 10); err != nil || n != 0 {
			t.Fatalf("DeleteExpired on an empty table = %d, %v; want 0, nil", n, err)
		}
	}
	now := time.Now()
	if err := s.CreateTokens(ctx, &oauthd.Token{Hash: "live", Kind: oauthd.AccessToken, ClientID: "c",
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteExpired(ctx, now, 10); err != nil || n != 0 {
		t.Fatalf("DeleteExpired = %d, %v; want 0, nil", n, err)
	}
	if n, err := s.DeleteExpired(ctx, now.Add(2*time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpired two hours later = %d, %v; want 1, nil", n, err)
	}
}

// One call looks at every rowid once: from just after where the last call
// stopped to the end, then from the start to there, never twice.
func TestSweepLooksAtEveryTokenOnce(t *testing.T) {
	s := openTemp(t)
	ctx := t.Context()
	sweepTokens(t, s, "t", 10) // rowids 1..10; 1, 3, 5, 7, 9 expired
	st, err := s.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after int64
		limit int
		want  []int64
		next  int64
	}{
		{after: 0, limit: 100, want: []int64{1, 3, 5, 7, 9}, next: 0},
		{after: 4, limit: 100, want: []int64{5, 7, 9, 1, 3}, next: 4},
		{after: 9, limit: 100, want: []int64{1, 3, 5, 7, 9}, next: 9},
		{after: 10, limit: 100, want: []int64{1, 3, 5, 7, 9}, next: 0},
		{after: 6, limit: 2, want: []int64{7, 9}, next: 9},
		{after: 8, limit: 2, want: []int64{9, 1}, next: 1},
		{after: 99, limit: 3, want: []int64{1, 3, 5}, next: 5}, // past the end: from the start
	} {
		s.sweep.after = c.after
		got, sw, err := s.expiredTokens(ctx, st, unixMS(time.Now()), c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, c.want) || sw.after != c.next {
			t.Errorf("after %d, limit %d: found %v, next after %d; want %v, next after %d", c.after, c.limit, got, sw.after, c.want, c.next)
		}
	}
}
