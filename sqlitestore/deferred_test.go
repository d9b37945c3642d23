package sqlitestore

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// TestDeferredTokenInserts checks that a batch's token inserts, left to its
// end (txn.flushTokens), store every token of every write, with its own
// fields, in the one optimistic transaction: whatever the number of rows,
// which the flush splits into statements of 32, 16 ... 1 rows.
func TestDeferredTokenInserts(t *testing.T) {
	for _, tc := range []struct {
		name         string
		writes, toks int // writes of toks tokens each
	}{
		{"two writes of one token", 2, 1},
		{"37 writes of one token: 32+4+1 rows", 37, 1},
		{"a full batch of single tokens", maxBatch, 1},
		{"a full batch of token pairs: 8 statements of 32 rows", maxBatch, 2},
		{"writes of three tokens", 5, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s := openTemp(t)
			now := time.Now().Truncate(time.Millisecond)
			made := make([][]*oauthd.Token, tc.writes)
			errs := make([]error, tc.writes)
			calls := make([]func(), tc.writes)
			for i := range made {
				for j := range tc.toks {
					made[i] = append(made[i], &oauthd.Token{Hash: fmt.Sprintf("t%d-%d", i, j), Kind: oauthd.AccessToken,
						GrantID: fmt.Sprintf("g%d", i), ClientID: "c", Subject: fmt.Sprintf("u%d", i), Scopes: []string{"read"},
						Claims: `{"n":` + fmt.Sprint(j) + `}`, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(time.Duration(j+1) * time.Hour)})
				}
				calls[i] = func() { errs[i] = s.CreateTokens(ctx, made[i]...) }
			}
			queueWhileHeld(t, s, calls...)
			for i, err := range errs {
				if err != nil {
					t.Errorf("write %d: %v", i, err)
				}
			}
			for _, toks := range made {
				for _, want := range toks {
					got, err := s.Token(ctx, want.Hash)
					if err != nil {
						t.Fatalf("Token(%s): %v", want.Hash, err)
					}
					if got.GrantID != want.GrantID || got.Subject != want.Subject || got.Claims != want.Claims ||
						!got.ExpiresAt.Equal(want.ExpiresAt) || got.Kind != want.Kind {
						t.Errorf("Token(%s) = %+v; want %+v", want.Hash, got, want)
					}
				}
			}
			if n := s.w.reruns.Load(); n != 0 {
				t.Errorf("%d reruns; want 0: every deferred row was stored", n)
			}
		})
	}
}

// TestDeferredTokensOfRevokedGrant checks RevokeGrant's promise in a batch
// whose token inserts are deferred: the tokens of a grant revoked in the
// same batch, queued before or after the revocation, are not stored, and
// the other writes of the batch are.
func TestDeferredTokensOfRevokedGrant(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	tok := func(hash, grant string) *oauthd.Token {
		return &oauthd.Token{Hash: hash, Kind: oauthd.AccessToken, GrantID: grant, ClientID: "c", Subject: "u",
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	var errBefore, errRevoke, errAfter, errOther error
	queueWhileHeld(t, s,
		func() { errBefore = s.CreateTokens(ctx, tok("before", "g")) },
		func() { errRevoke = s.RevokeGrant(ctx, "g", time.Time{}) },
		func() { errAfter = s.CreateTokens(ctx, tok("after", "g")) },
		func() { errOther = s.CreateTokens(ctx, tok("other", "g2")) },
	)
	for name, err := range map[string]error{"before": errBefore, "revoke": errRevoke, "after": errAfter, "other": errOther} {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, hash := range []string{"before", "after"} {
		if _, err := s.Token(ctx, hash); !errors.Is(err, oauthd.ErrNotFound) {
			t.Errorf("Token(%s) of the revoked grant: %v; want ErrNotFound", hash, err)
		}
	}
	if _, err := s.Token(ctx, "other"); err != nil {
		t.Errorf("Token(other): %v", err)
	}
}

// TestDeferredRedemptionsAndRotations checks a batch of code redemptions and
// refresh rotations, whose token pairs are inserted at the batch's end: each
// caller gets its code or token, and every successor is stored.
func TestDeferredRedemptionsAndRotations(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	const n = 20
	for i := range n {
		if err := s.CreateAuthCode(ctx, redeemCode(fmt.Sprintf("code%d", i))); err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTokens(ctx, &oauthd.Token{Hash: fmt.Sprintf("rt%d", i), Kind: oauthd.RefreshToken, GrantID: fmt.Sprintf("rg%d", i),
			ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	errs := make([]error, 2*n)
	var calls []func()
	for i := range n {
		calls = append(calls, func() {
			_, errs[i] = s.RedeemAuthCode(ctx, fmt.Sprintf("code%d", i), now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
				return redeemTokens(c), nil
			})
		}, func() {
			_, errs[n+i] = s.RotateRefreshTokenFunc(ctx, fmt.Sprintf("rt%d", i), now, func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
				return []byte("sealed"), []*oauthd.Token{
					{Hash: old.Hash + "-next-at", Kind: oauthd.AccessToken, GrantID: old.GrantID, ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
					{Hash: old.Hash + "-next-rt", Kind: oauthd.RefreshToken, GrantID: old.GrantID, ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
				}, nil
			})
		})
	}
	queueWhileHeld(t, s, calls...)
	for i, err := range errs {
		if err != nil {
			t.Errorf("write %d: %v", i, err)
		}
	}
	for i := range n {
		for _, hash := range []string{fmt.Sprintf("code%d-at", i), fmt.Sprintf("code%d-rt", i), fmt.Sprintf("rt%d-next-at", i), fmt.Sprintf("rt%d-next-rt", i)} {
			if _, err := s.Token(ctx, hash); err != nil {
				t.Errorf("Token(%s): %v", hash, err)
			}
		}
		if old, err := s.Token(ctx, fmt.Sprintf("rt%d", i)); err != nil || old.RotatedAt.IsZero() {
			t.Errorf("Token(rt%d) = %v, %v; want it rotated", i, old, err)
		}
	}
	if n := s.w.reruns.Load(); n != 0 {
		t.Errorf("%d reruns; want 0", n)
	}
}
