package sqlitestore

import (
	"errors"
	"fmt"
	"sync/atomic"
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
	wantCount(t, &s.w.reruns, 0, "batches run again with savepoints")
}

// TestConsumeCodesTogether checks the codes of a batch's redemptions,
// consumed with one SELECT and one UPDATE ahead of the batch
// (txn.consumeCodes): every caller gets what consuming its code alone would
// give it, and the database keeps each redemption's own time.
func TestConsumeCodesTogether(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	first := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	base := time.Now().Truncate(time.Millisecond)
	const fresh = 6
	var codes []*oauthd.AuthCode
	for i := range fresh {
		codes = append(codes, redeemCode(fmt.Sprintf("fresh%d", i)))
	}
	used, twice, refused := redeemCode("used"), redeemCode("twice"), redeemCode("refused")
	for _, c := range append(codes, used, twice, refused) {
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeAuthCode(ctx, used.Hash, first); err != nil {
		t.Fatal(err)
	}
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Millisecond) }
	type result struct {
		code *oauthd.AuthCode
		err  error
	}
	var (
		freshGot           = make([]result, fresh)
		replay, unknown    result
		twiceGot           [2]result
		refusedGot         result
		errRefusedByIssuer = errors.New("issue refused")
	)
	issue := func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { return redeemTokens(c), nil }
	calls := []func(){
		func() { replay.code, replay.err = s.RedeemAuthCode(ctx, used.Hash, at(100), issue) },
		func() { unknown.code, unknown.err = s.ConsumeAuthCode(ctx, "unknown", at(101)) },
		func() { twiceGot[0].code, twiceGot[0].err = s.RedeemAuthCode(ctx, twice.Hash, at(102), issue) },
		func() { twiceGot[1].code, twiceGot[1].err = s.RedeemAuthCode(ctx, twice.Hash, at(103), issue) },
		func() {
			refusedGot.code, refusedGot.err = s.RedeemAuthCode(ctx, refused.Hash, at(104), func(*oauthd.AuthCode) ([]*oauthd.Token, error) {
				return nil, errRefusedByIssuer
			})
		},
	}
	for i, c := range codes {
		if i%2 == 0 {
			calls = append(calls, func() { freshGot[i].code, freshGot[i].err = s.RedeemAuthCode(ctx, c.Hash, at(i), issue) })
		} else {
			calls = append(calls, func() { freshGot[i].code, freshGot[i].err = s.ConsumeAuthCode(ctx, c.Hash, at(i)) })
		}
	}
	queueWhileHeld(t, s, calls...)

	for i, c := range codes {
		got := freshGot[i]
		if got.err != nil || got.code == nil || got.code.GrantID != c.GrantID || !got.code.UsedAt.Equal(at(i)) {
			t.Errorf("code %d = %+v, %v; want it, used at %v", i, got.code, got.err, at(i))
		}
		if i%2 == 0 {
			for _, tok := range redeemTokens(c) {
				if _, err := s.Token(ctx, tok.Hash); err != nil {
					t.Errorf("Token(%s): %v", tok.Hash, err)
				}
			}
		}
		// Stored as used at its own time: a replay says when.
		if again, err := s.ConsumeAuthCode(ctx, c.Hash, base.Add(time.Hour)); !errors.Is(err, oauthd.ErrAlreadyUsed) || !again.UsedAt.Equal(at(i)) {
			t.Errorf("replay of code %d = %+v, %v; want ErrAlreadyUsed, used at %v", i, again, err, at(i))
		}
	}
	if !errors.Is(replay.err, oauthd.ErrAlreadyUsed) || replay.code == nil || !replay.code.UsedAt.Equal(first) {
		t.Errorf("RedeemAuthCode(used) = %+v, %v; want the code used at %v and ErrAlreadyUsed", replay.code, replay.err, first)
	}
	if !errors.Is(unknown.err, oauthd.ErrNotFound) || unknown.code != nil {
		t.Errorf("ConsumeAuthCode(unknown) = %+v, %v; want ErrNotFound", unknown.code, unknown.err)
	}
	// One of the two redemptions of a code wins; the other finds it used
	// at the winner's time.
	win, lose := twiceGot[0], twiceGot[1]
	if win.err != nil {
		win, lose = lose, win
	}
	if win.err != nil || !errors.Is(lose.err, oauthd.ErrAlreadyUsed) || lose.code == nil || !lose.code.UsedAt.Equal(win.code.UsedAt) {
		t.Errorf("two redemptions of one code: %+v, %v and %+v, %v; want one success and one ErrAlreadyUsed", twiceGot[0].code, twiceGot[0].err, twiceGot[1].code, twiceGot[1].err)
	}
	// An issue that refuses leaves the code unused, as alone: the batch
	// runs again with savepoints, which undo that consumption alone.
	if !errors.Is(refusedGot.err, errRefusedByIssuer) || refusedGot.code == nil || !refusedGot.code.UsedAt.IsZero() {
		t.Errorf("RedeemAuthCode(refused) = %+v, %v; want the code, unused, and the issue's error", refusedGot.code, refusedGot.err)
	}
	if _, err := s.ConsumeAuthCode(ctx, refused.Hash, base.Add(time.Hour)); err != nil {
		t.Errorf("code refused by issue, then consumed: %v; want it unused until then", err)
	}
	wantCount(t, &s.w.reruns, 1, "batches run again with savepoints")
	wantCount(t, &s.w.codeSets, 1, "batches whose codes were consumed together")
}

// TestConsumeCodesRolledBack checks that a batch whose codes were consumed
// together and which then runs again with savepoints (a redemption's
// tokens could not be stored) consumes each code once, for the right
// caller: the failed redemption's code stays unused.
func TestConsumeCodesRolledBack(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	ok, clash := redeemCode("ok"), redeemCode("clash")
	for _, c := range []*oauthd.AuthCode{ok, clash} {
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateTokens(ctx, &oauthd.Token{Hash: "taken", Kind: oauthd.AccessToken, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var errOK, errClash error
	queueWhileHeld(t, s,
		func() {
			_, errOK = s.RedeemAuthCode(ctx, ok.Hash, now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) { return redeemTokens(c), nil })
		},
		func() {
			_, errClash = s.RedeemAuthCode(ctx, clash.Hash, now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
				toks := redeemTokens(c)
				toks[1].Hash = "taken"
				return toks, nil
			})
		},
	)
	if errOK != nil {
		t.Errorf("RedeemAuthCode(ok): %v", errOK)
	}
	if !errors.Is(errClash, oauthd.ErrAlreadyExists) {
		t.Errorf("RedeemAuthCode(clash): %v; want ErrAlreadyExists", errClash)
	}
	if c, err := s.ConsumeAuthCode(ctx, clash.Hash, now); err != nil || c.GrantID != clash.GrantID {
		t.Errorf("the failed redemption's code: %+v, %v; want it unused", c, err)
	}
	if _, err := s.ConsumeAuthCode(ctx, ok.Hash, now); !errors.Is(err, oauthd.ErrAlreadyUsed) {
		t.Errorf("the redeemed code: %v; want ErrAlreadyUsed", err)
	}
	wantCount(t, &s.w.reruns, 1, "batches run again with savepoints")
	wantCount(t, &s.w.codeSets, 1, "batches whose codes were consumed together")
}

// TestReadRefreshTokensTogether checks the refresh tokens of a batch's
// rotations, read with one SELECT ahead of the batch (txn.readClaims):
// every caller gets what rotating its token alone would give it.
func TestReadRefreshTokensTogether(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now().Truncate(time.Millisecond)
	rt := func(hash string) *oauthd.Token {
		return &oauthd.Token{Hash: hash, Kind: oauthd.RefreshToken, GrantID: "g-" + hash, ClientID: "c", Subject: "u",
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	const fresh = 5
	for i := range fresh {
		if err := s.CreateTokens(ctx, rt(fmt.Sprintf("fresh%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	access := rt("access")
	access.Kind = oauthd.AccessToken
	for _, tok := range []*oauthd.Token{rt("rotated"), rt("twice"), rt("refused"), access} {
		if err := s.CreateTokens(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	earlier := now.Add(-time.Minute)
	if _, err := s.RotateRefreshToken(ctx, "rotated", earlier, []byte("first")); err != nil {
		t.Fatal(err)
	}
	next := func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return []byte("sealed-" + old.Hash), []*oauthd.Token{
			{Hash: old.Hash + "-at", Kind: oauthd.AccessToken, GrantID: old.GrantID, ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
			{Hash: old.Hash + "-rt", Kind: oauthd.RefreshToken, GrantID: old.GrantID, ClientID: "c", Subject: "u", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
		}, nil
	}
	type result struct {
		tok *oauthd.Token
		err error
	}
	var (
		freshGot                    = make([]result, fresh)
		rotated, unknown, accessGot result
		twiceGot                    [2]result
		refusedGot                  result
		errRefusedByRotate          = errors.New("rotate refused")
		rotate                      = func(hash string, r *result) func() {
			return func() { r.tok, r.err = s.RotateRefreshTokenFunc(ctx, hash, now, next) }
		}
	)
	calls := []func(){
		rotate("rotated", &rotated),
		rotate("unknown", &unknown),
		rotate("access", &accessGot),
		rotate("twice", &twiceGot[0]),
		rotate("twice", &twiceGot[1]),
		func() {
			refusedGot.tok, refusedGot.err = s.RotateRefreshTokenFunc(ctx, "refused", now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
				return nil, nil, errRefusedByRotate
			})
		},
	}
	for i := range fresh {
		calls = append(calls, rotate(fmt.Sprintf("fresh%d", i), &freshGot[i]))
	}
	queueWhileHeld(t, s, calls...)

	for i, got := range freshGot {
		hash := fmt.Sprintf("fresh%d", i)
		if got.err != nil || got.tok == nil || got.tok.Hash != hash || !got.tok.RotatedAt.Equal(now) || string(got.tok.Successor) != "sealed-"+hash {
			t.Errorf("rotation of %s = %+v, %v; want it rotated at %v", hash, got.tok, got.err, now)
		}
		for _, h := range []string{hash + "-at", hash + "-rt"} {
			if _, err := s.Token(ctx, h); err != nil {
				t.Errorf("Token(%s): %v", h, err)
			}
		}
	}
	if !errors.Is(rotated.err, oauthd.ErrAlreadyUsed) || rotated.tok == nil || !rotated.tok.RotatedAt.Equal(earlier.Truncate(time.Millisecond)) || string(rotated.tok.Successor) != "first" {
		t.Errorf("rotation of a rotated token = %+v, %v; want it as first rotated, and ErrAlreadyUsed", rotated.tok, rotated.err)
	}
	for name, r := range map[string]result{"unknown": unknown, "an access token": accessGot} {
		if !errors.Is(r.err, oauthd.ErrNotFound) {
			t.Errorf("rotation of %s = %+v, %v; want ErrNotFound", name, r.tok, r.err)
		}
	}
	win, lose := twiceGot[0], twiceGot[1]
	if win.err != nil {
		win, lose = lose, win
	}
	if win.err != nil || !errors.Is(lose.err, oauthd.ErrAlreadyUsed) {
		t.Errorf("two rotations of one token: %v and %v; want one success and one ErrAlreadyUsed", twiceGot[0].err, twiceGot[1].err)
	}
	if !errors.Is(refusedGot.err, errRefusedByRotate) {
		t.Errorf("refused rotation: %v; want the rotate's error", refusedGot.err)
	}
	if tok, err := s.Token(ctx, "refused"); err != nil || !tok.RotatedAt.IsZero() {
		t.Errorf("refused token = %+v, %v; want it unrotated", tok, err)
	}
	wantCount(t, &s.w.reruns, 0, "batches run again with savepoints")
	wantCount(t, &s.w.refreshSets, 1, "batches whose refresh tokens were read together")
}

// TestReadRefreshTokenRemovedInBatch checks a rotation whose token a write
// before it in the batch removes, after the batch read it: its conditional
// UPDATE finds no token, and the batch runs again, where the rotation finds
// the token gone and the batch's other rotation succeeds.
func TestReadRefreshTokenRemovedInBatch(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	for _, h := range []string{"revoked", "kept"} {
		if err := s.CreateTokens(ctx, &oauthd.Token{Hash: h, Kind: oauthd.RefreshToken, GrantID: "g-" + h, ClientID: "c", Subject: "u",
			IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	rotate := func(*oauthd.Token) ([]byte, []*oauthd.Token, error) { return []byte("s"), nil, nil }
	var errRevoke, errRevoked, errKept error
	queueInOrderWhileHeld(t, s,
		func() { errRevoke = s.RevokeGrant(ctx, "g-revoked", time.Time{}) },
		func() { _, errRevoked = s.RotateRefreshTokenFunc(ctx, "revoked", now, rotate) },
		func() { _, errKept = s.RotateRefreshTokenFunc(ctx, "kept", now, rotate) },
	)
	if errRevoke != nil || errKept != nil {
		t.Errorf("RevokeGrant: %v; rotation of the other token: %v", errRevoke, errKept)
	}
	if !errors.Is(errRevoked, oauthd.ErrNotFound) {
		t.Errorf("rotation of the revoked grant's token: %v; want ErrNotFound", errRevoked)
	}
	if tok, err := s.Token(ctx, "kept"); err != nil || tok.RotatedAt.IsZero() {
		t.Errorf("Token(kept) = %+v, %v; want it rotated", tok, err)
	}
	wantCount(t, &s.w.reruns, 1, "batches run again with savepoints")
}

// wantCount fails t unless the writer's counter c is want.
func wantCount(t *testing.T, c *atomic.Int64, want int64, what string) {
	t.Helper()
	if n := c.Load(); n != want {
		t.Errorf("%s: %d; want %d", what, n, want)
	}
}
