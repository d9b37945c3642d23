package storetest

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// Churn checks that a store's tables stay flat under churn when
// DeleteExpired runs the way the server runs it. Round after round, an hour
// apart on a fake clock, it issues auth requests, codes, tokens, sessions
// and grant revocations that expire within the round, uses some of them
// (consumes codes, rotates refresh tokens, revokes grants) and then calls
// DeleteExpired in bounded batches until it finds nothing more. After each
// collection the store must hold exactly what the round left live: the same
// number of rows, table by table, every round.
//
// rows counts the rows of the store's tables, by table name; a store
// passes the tables it has. Churn needs a fresh store.
func Churn(t *testing.T, s oauthd.Storage, rows func() (map[string]int, error)) {
	t.Helper()
	ctx := t.Context()
	const (
		rounds   = 8
		perRound = 120
		limit    = 50
	)
	var first map[string]int
	revokedTokens := 0
	for r := range rounds {
		now := at(time.Duration(r) * time.Hour)
		expires := now.Add(30 * time.Minute)
		for i := range perRound {
			name := fmt.Sprintf("%d-%d", r, i)
			req := fullAuthRequest("req-" + name)
			req.CreatedAt, req.ExpiresAt = now, expires
			must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, req))
			if i%2 == 0 {
				must(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, req.ID))
			}

			code := fullCode("code-" + name)
			code.IssuedAt, code.ExpiresAt = now, now.Add(time.Minute)
			must(t, "CreateAuthCode", s.CreateAuthCode(ctx, code))
			if i%2 == 0 {
				_, err := s.ConsumeAuthCode(ctx, code.Hash, now)
				must(t, "ConsumeAuthCode", err)
			}

			grant := "grant-" + name
			access, refresh := fullToken("at-"+name, oauthd.AccessToken, grant), fullToken("rt-"+name, oauthd.RefreshToken, grant)
			access.IssuedAt, access.ExpiresAt = now, now.Add(5*time.Minute)
			refresh.IssuedAt, refresh.ExpiresAt = now, expires
			must(t, "CreateTokens", s.CreateTokens(ctx, access, refresh))
			if i%3 == 0 {
				access2, refresh2 := fullToken("at2-"+name, oauthd.AccessToken, grant), fullToken("rt2-"+name, oauthd.RefreshToken, grant)
				access2.IssuedAt, access2.ExpiresAt = now, now.Add(5*time.Minute)
				refresh2.IssuedAt, refresh2.ExpiresAt = now, expires
				_, err := s.RotateRefreshToken(ctx, refresh.Hash, now, []byte("sealed"), access2, refresh2)
				must(t, "RotateRefreshToken", err)
			}
			if i%10 == 0 {
				must(t, "RevokeGrant", s.RevokeGrant(ctx, grant, expires))
				if r == 0 {
					revokedTokens += 2
					if i%3 == 0 {
						revokedTokens += 2
					}
				}
			}

			se := fullSession("sess-" + name)
			se.AuthTime, se.ExpiresAt = now, expires
			must(t, "CreateSession", s.CreateSession(ctx, se))
		}

		before, err := rows()
		must(t, "counting rows", err)
		// Collect the way the server does: bounded batches until one
		// finds nothing.
		removed, calls := 0, 0
		for {
			n, err := s.DeleteExpired(ctx, now, limit)
			must(t, "DeleteExpired", err)
			calls++
			if n > 6*limit {
				t.Fatalf("round %d: DeleteExpired(limit %d) removed %d records; want at most %d (6 kinds)", r, limit, n, 6*limit)
			}
			if n == 0 {
				break
			}
			removed += n
			if calls > 1000 {
				t.Fatalf("round %d: DeleteExpired keeps finding records", r)
			}
		}
		after, err := rows()
		must(t, "counting rows", err)
		total := 0
		for table, n := range after {
			total += n
			if n > before[table] {
				t.Errorf("round %d: table %s grew from %d to %d rows during DeleteExpired", r, table, before[table], n)
			}
		}
		// Each round issues at most this many records of every kind.
		if bound := 8 * perRound; total > bound {
			t.Errorf("round %d: %d rows after DeleteExpired; want at most %d (one round's records)", r, total, bound)
		}
		if r == 0 {
			// Only the tokens of the grants revoked in the round, which
			// a store may delete in RevokeGrant or later (they are not
			// found from RevokeGrant on).
			if removed > revokedTokens {
				t.Errorf("round 0: DeleteExpired removed %d records before anything expired; want at most the %d tokens of revoked grants", removed, revokedTokens)
			}
			first = after
			continue
		}
		if removed == 0 {
			t.Errorf("round %d: DeleteExpired removed nothing; the previous round's records had expired", r)
		}
		if !maps.Equal(after, first) {
			t.Errorf("round %d: rows after DeleteExpired %v; want %v, as after round 0 (tables flat)", r, after, first)
		}
	}
	// Everything expires in the end.
	end := at(rounds * time.Hour)
	for {
		n, err := s.DeleteExpired(ctx, end, limit)
		must(t, "DeleteExpired", err)
		if n == 0 {
			break
		}
	}
	left, err := rows()
	must(t, "counting rows", err)
	for table, n := range left {
		if n != 0 {
			t.Errorf("table %s has %d rows after everything expired; want 0", table, n)
		}
	}
}
