package sqlitestore

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// queueWhileHeld holds the writer, starts the writes calls in goroutines,
// waits until all of them are queued and releases the writer, so that they
// run in one batch. It returns once every call has returned.
func queueWhileHeld(t *testing.T, s *Store, calls ...func()) {
	t.Helper()
	queue(t, s, false, calls)
}

// queueInOrderWhileHeld is queueWhileHeld with the writes queued, and so
// run in the batch, in the order of calls.
func queueInOrderWhileHeld(t *testing.T, s *Store, calls ...func()) {
	t.Helper()
	queue(t, s, true, calls)
}

func queue(t *testing.T, s *Store, inOrder bool, calls []func()) {
	t.Helper()
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	for i, call := range calls {
		wg.Go(call)
		for inOrder && len(s.w.ops) < i+1 {
			runtime.Gosched()
		}
	}
	for len(s.w.ops) < len(calls) {
		runtime.Gosched()
	}
	before := s.w.txns.Load()
	release()
	wg.Wait()
	if n := s.w.txns.Load() - before; n != 1 {
		t.Fatalf("the queued writes took %d transactions; want 1", n)
	}
}

// TestOptimisticCleanFailures checks that writes failing with an expected
// outcome before changing anything (an existing client, an unknown token)
// keep their error and leave the other writes of their batch in the one
// optimistic run: no rerun.
func TestOptimisticCleanFailures(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "taken"}); err != nil {
		t.Fatal(err)
	}
	var errTaken, errUnknown, errA, errB error
	queueWhileHeld(t, s,
		func() { errA = s.CreateClient(ctx, &oauthd.Client{ID: "a"}) },
		func() { errTaken = s.CreateClient(ctx, &oauthd.Client{ID: "taken"}) },
		func() { errUnknown = s.RevokeToken(ctx, "unknown") },
		func() { errB = s.CreateClient(ctx, &oauthd.Client{ID: "b"}) },
	)
	if !errors.Is(errTaken, oauthd.ErrAlreadyExists) {
		t.Errorf("CreateClient(taken): %v; want ErrAlreadyExists", errTaken)
	}
	if !errors.Is(errUnknown, oauthd.ErrNotFound) {
		t.Errorf("RevokeToken(unknown): %v; want ErrNotFound", errUnknown)
	}
	if errA != nil || errB != nil {
		t.Errorf("CreateClient: %v, %v", errA, errB)
	}
	for _, id := range []string{"a", "b", "taken"} {
		if _, err := s.Client(ctx, id); err != nil {
			t.Errorf("Client(%s): %v", id, err)
		}
	}
	if n := s.w.reruns.Load(); n != 0 {
		t.Errorf("%d reruns; want 0", n)
	}
}

// TestOptimisticRerun puts in one batch a redemption, a rotation, a token
// insert that fails on its second token (after its first was inserted), a
// code replay and a plain write. The failures must take the savepoint
// rerun, and each write must end as if it had run alone: the failed insert
// stores nothing, the others keep what they did, and every caller gets its
// own outcome.
func TestOptimisticRerun(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	code, used := redeemCode("code"), redeemCode("used")
	for _, c := range []*oauthd.AuthCode{code, used} {
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeAuthCode(ctx, used.Hash, now); err != nil {
		t.Fatal(err)
	}
	rt := &oauthd.Token{Hash: "rt", Kind: oauthd.RefreshToken, GrantID: "g", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	dup := &oauthd.Token{Hash: "dup", Kind: oauthd.AccessToken, GrantID: "g", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateTokens(ctx, rt, dup); err != nil {
		t.Fatal(err)
	}

	var (
		issued               atomic.Int32
		redeemed, replayed   *oauthd.AuthCode
		redeemErr, replayErr error
		rotated              *oauthd.Token
		rotateErr, createErr error
		clientErr            error
	)
	next := &oauthd.Token{Hash: "rt2", Kind: oauthd.RefreshToken, GrantID: "g", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	fresh := &oauthd.Token{Hash: "fresh", Kind: oauthd.AccessToken, GrantID: "g2", ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	queueWhileHeld(t, s,
		func() {
			redeemed, redeemErr = s.RedeemAuthCode(ctx, code.Hash, now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
				issued.Add(1)
				return redeemTokens(c), nil
			})
		},
		func() { rotated, rotateErr = s.RotateRefreshToken(ctx, "rt", now, []byte("sealed"), next) },
		func() { createErr = s.CreateTokens(ctx, fresh, dup) }, // fresh is inserted, then dup fails
		func() {
			replayed, replayErr = s.RedeemAuthCode(ctx, used.Hash, now, func(*oauthd.AuthCode) ([]*oauthd.Token, error) {
				t.Error("issue called for a used code")
				return nil, nil
			})
		},
		func() { clientErr = s.CreateClient(ctx, &oauthd.Client{ID: "c"}) },
	)
	if n := s.w.reruns.Load(); n != 1 {
		t.Errorf("%d reruns; want 1", n)
	}
	if redeemErr != nil || redeemed == nil || redeemed.Hash != code.Hash {
		t.Errorf("RedeemAuthCode = %v, %v", redeemed, redeemErr)
	}
	if n := issued.Load(); n < 1 {
		t.Errorf("issue called %d times", n)
	}
	for _, tok := range redeemTokens(code) {
		if _, err := s.Token(ctx, tok.Hash); err != nil {
			t.Errorf("Token(%s) of the redemption: %v", tok.Hash, err)
		}
	}
	if rotateErr != nil || rotated == nil || rotated.Hash != "rt" {
		t.Errorf("RotateRefreshToken = %v, %v", rotated, rotateErr)
	}
	if _, err := s.Token(ctx, "rt2"); err != nil {
		t.Errorf("Token(rt2), the rotation's successor: %v", err)
	}
	if !errors.Is(createErr, oauthd.ErrAlreadyExists) {
		t.Errorf("CreateTokens(fresh, dup): %v; want ErrAlreadyExists", createErr)
	}
	if _, err := s.Token(ctx, "fresh"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token(fresh) of the failed CreateTokens: %v; want ErrNotFound", err)
	}
	if !errors.Is(replayErr, oauthd.ErrAlreadyUsed) || replayed == nil || replayed.Hash != used.Hash {
		t.Errorf("RedeemAuthCode(used) = %v, %v; want the code with ErrAlreadyUsed", replayed, replayErr)
	}
	if clientErr != nil {
		t.Errorf("CreateClient: %v", clientErr)
	}
	if _, err := s.Client(ctx, "c"); err != nil {
		t.Errorf("Client(c): %v", err)
	}
	// The code redeemed in the batch is used now.
	if _, err := s.ConsumeAuthCode(ctx, code.Hash, now); !errors.Is(err, oauthd.ErrAlreadyUsed) {
		t.Errorf("ConsumeAuthCode after the redemption: %v; want ErrAlreadyUsed", err)
	}
}

// TestOptimisticDatabaseError checks that a write failing with an error of
// the database, not an expected outcome, takes the rerun even when it
// changed nothing, and fails alone.
func TestOptimisticDatabaseError(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	st, err := s.ready(ctx)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	var errBoom, errA error
	queueWhileHeld(t, s,
		func() { errA = s.CreateClient(ctx, &oauthd.Client{ID: "a"}) },
		func() {
			errBoom = s.w.do(context.Background(), func(x *txn) error {
				if _, err := x.exec(st.deleteClient, "nothing"); err != nil {
					return err
				}
				return boom
			})
		},
	)
	if errA != nil {
		t.Errorf("CreateClient: %v", errA)
	}
	if !errors.Is(errBoom, boom) {
		t.Errorf("failing write: %v; want %v", errBoom, boom)
	}
	if n := s.w.reruns.Load(); n != 1 {
		t.Errorf("%d reruns; want 1", n)
	}
	if _, err := s.Client(ctx, "a"); err != nil {
		t.Errorf("Client(a): %v", err)
	}
}

// TestCreateTokenSkipped checks the two reasons the token INSERT OR IGNORE
// skips a token: a revoked grant (no error, nothing stored, as before even
// when the hash is taken) and a taken hash (ErrAlreadyExists). In a batch,
// the inserts are deferred to its end (txn.flushTokens): a skipped row
// makes the batch run once more with a savepoint per write, where each
// write gets its own outcome.
func TestCreateTokenSkipped(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	tok := func(hash, grant string) *oauthd.Token {
		return &oauthd.Token{Hash: hash, Kind: oauthd.AccessToken, GrantID: grant, ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	if err := s.CreateTokens(ctx, tok("taken", "g")); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeGrant(ctx, "revoked", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTokens(ctx, tok("r1", "revoked")); err != nil {
		t.Errorf("CreateTokens(revoked grant): %v", err)
	}
	if _, err := s.Token(ctx, "r1"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("Token(r1) of a revoked grant: %v; want ErrNotFound", err)
	}
	var errTaken, errTakenRevoked, errFresh error
	queueWhileHeld(t, s,
		func() { errTaken = s.CreateTokens(ctx, tok("taken", "g2")) },
		func() { errTakenRevoked = s.CreateTokens(ctx, tok("taken", "revoked")) },
		func() { errFresh = s.CreateTokens(ctx, tok("fresh", "g3")) },
	)
	if !errors.Is(errTaken, oauthd.ErrAlreadyExists) {
		t.Errorf("CreateTokens(taken): %v; want ErrAlreadyExists", errTaken)
	}
	if errTakenRevoked != nil {
		t.Errorf("CreateTokens(taken, of a revoked grant): %v; want nil", errTakenRevoked)
	}
	if errFresh != nil {
		t.Errorf("CreateTokens(fresh): %v", errFresh)
	}
	if got, err := s.Token(ctx, "taken"); err != nil || got.GrantID != "g" {
		t.Errorf("Token(taken) = %v, %v; want the first one, of grant g", got, err)
	}
	if _, err := s.Token(ctx, "fresh"); err != nil {
		t.Errorf("Token(fresh): %v", err)
	}
	if n := s.w.reruns.Load(); n != 1 {
		t.Errorf("%d reruns; want 1", n)
	}
}

// TestOptimisticCodeReplay checks that a replayed code fails cleanly: its
// conditional UPDATE changes no row, so the replay keeps ErrAlreadyUsed,
// with the code as first used, and leaves the rest of its batch (a
// redemption, a plain write) in the one optimistic run: no rerun.
func TestOptimisticCodeReplay(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	first := time.Now().Add(-time.Second).Truncate(time.Millisecond)
	now := time.Now()
	code, used := redeemCode("code"), redeemCode("used")
	for _, c := range []*oauthd.AuthCode{code, used} {
		if err := s.CreateAuthCode(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ConsumeAuthCode(ctx, used.Hash, first); err != nil {
		t.Fatal(err)
	}
	var (
		replayed, redeemed   *oauthd.AuthCode
		replayErr, redeemErr error
		clientErr            error
	)
	queueWhileHeld(t, s,
		func() { replayed, replayErr = s.ConsumeAuthCode(ctx, used.Hash, now) },
		func() {
			redeemed, redeemErr = s.RedeemAuthCode(ctx, code.Hash, now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
				return redeemTokens(c), nil
			})
		},
		func() { clientErr = s.CreateClient(ctx, &oauthd.Client{ID: "c"}) },
	)
	if n := s.w.reruns.Load(); n != 0 {
		t.Errorf("%d reruns; want 0", n)
	}
	if !errors.Is(replayErr, oauthd.ErrAlreadyUsed) || replayed == nil || replayed.GrantID != used.GrantID || !replayed.UsedAt.Equal(first) {
		t.Errorf("ConsumeAuthCode(used) = %+v, %v; want the code used at %v and ErrAlreadyUsed", replayed, replayErr, first)
	}
	if redeemErr != nil || redeemed == nil || redeemed.GrantID != code.GrantID || !redeemed.UsedAt.Equal(now.Truncate(time.Millisecond)) {
		t.Errorf("RedeemAuthCode = %+v, %v; want the code used at %v", redeemed, redeemErr, now)
	}
	for _, tok := range redeemTokens(code) {
		if _, err := s.Token(ctx, tok.Hash); err != nil {
			t.Errorf("Token(%s): %v", tok.Hash, err)
		}
	}
	if clientErr != nil {
		t.Errorf("CreateClient: %v", clientErr)
	}
}
