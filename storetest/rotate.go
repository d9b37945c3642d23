package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// The tests of oauthd.RefreshRotator, which a store may implement; they
// skip a store that does not.
var rotateFuncTests = []test{
	{"RotatesAndStoresTokens", testRotateFunc},
	{"SingleUse", testRotateFuncSingleUse},
	{"UnknownOrAccessToken", testRotateFuncNotFound},
	{"RefusedRotationChangesNothing", testRotateFuncRefused},
	{"RevokedGrantStoresNoTokens", testRotateFuncRevokedGrant},
	{"AllOrNothing", testRotateFuncAtomic},
	{"ConcurrentOneRotates", testRotateFuncRace},
	{"Cancelled", testRotateFuncCancelled},
}

// rotator returns the store as a RefreshRotator, or skips the test.
func rotator(t testing.TB, s oauthd.Storage) oauthd.RefreshRotator {
	t.Helper()
	r, ok := s.(oauthd.RefreshRotator)
	if !ok {
		t.Skip("the store is not an oauthd.RefreshRotator")
	}
	return r
}

// successors are an access and a refresh token of old's grant, their
// hashes prefix-at and prefix-rt.
func successors(prefix string, old *oauthd.Token) []*oauthd.Token {
	access := fullToken(prefix+"-at", oauthd.AccessToken, old.GrantID)
	refresh := fullToken(prefix+"-rt", oauthd.RefreshToken, old.GrantID)
	return []*oauthd.Token{access, refresh}
}

// notRotated is a rotate callback that fails the test when called.
func notRotated(t *testing.T, what string) func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
	return func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
		t.Errorf("%s called rotate", what)
		return nil, nil, errors.New("rotate must not be called")
	}
}

// testRotateFunc checks a rotation (RFC 6749 §6, RFC 9700 §4.14.2): rotate
// gets the token as stored; the token comes back rotated at now with the
// successor; the tokens rotate returned are stored.
func testRotateFunc(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	in := fullToken("rt-0", oauthd.RefreshToken, "g1")
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("at-0", oauthd.AccessToken, "g1"), in))
	successor := []byte("sealed successor \x00\x01\xff")
	calls := 0
	got, err := r.RotateRefreshTokenFunc(ctx, "rt-0", at(30*time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		calls++
		if old == nil {
			t.Fatal("rotate got a nil token")
		}
		if g, w := normToken(old), normToken(in); !reflect.DeepEqual(g, w) {
			t.Errorf("rotate got %+v; want %+v", g, w)
		}
		return successor, successors("rt-0", old), nil
	})
	must(t, "RotateRefreshTokenFunc", err)
	if calls == 0 {
		t.Fatal("RotateRefreshTokenFunc did not call rotate")
	}
	want := normToken(in)
	want.RotatedAt = ms(at(30 * time.Second))
	want.Successor = successor
	if got == nil {
		t.Fatal("RotateRefreshTokenFunc = nil, nil; want the rotated token")
	}
	if g := normToken(got); !reflect.DeepEqual(g, want) {
		t.Errorf("RotateRefreshTokenFunc = %+v; want %+v", g, want)
	}
	stored, err := s.Token(ctx, "rt-0")
	must(t, "Token(old)", err)
	if g := normToken(stored); !reflect.DeepEqual(g, want) {
		t.Errorf("Token(old) after rotation = %+v; want %+v", g, want)
	}
	for _, n := range successors("rt-0", in) {
		got, err := s.Token(ctx, n.Hash)
		must(t, "Token(successor)", err)
		if g, w := normToken(got), normToken(n); !reflect.DeepEqual(g, w) {
			t.Errorf("Token(%q) = %+v; want %+v", n.Hash, g, w)
		}
	}
	tokenExists(t, s, "at-0", true)

	// A nil successor (no grace period) is stored as none.
	_, err = r.RotateRefreshTokenFunc(ctx, "rt-0-rt", at(time.Minute), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return nil, successors("second", old), nil
	})
	must(t, "RotateRefreshTokenFunc(successor)", err)
	second, err := s.Token(ctx, "rt-0-rt")
	must(t, "Token(rotated successor)", err)
	if second.RotatedAt.IsZero() || len(second.Successor) != 0 {
		t.Errorf("rotated successor: RotatedAt %v, Successor %q; want rotated, no successor", second.RotatedAt, second.Successor)
	}
}

// testRotateFuncSingleUse checks that a rotated token rotates no more: the
// second call gets it with ErrAlreadyUsed, without calling rotate, whether
// the first rotation was made by RotateRefreshTokenFunc or by
// RotateRefreshToken.
func testRotateFuncSingleUse(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("rt-a", oauthd.RefreshToken, "g1"), fullToken("rt-b", oauthd.RefreshToken, "g2")))
	_, err := r.RotateRefreshTokenFunc(ctx, "rt-a", at(time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return []byte("first"), successors("first", old), nil
	})
	must(t, "RotateRefreshTokenFunc", err)
	_, err = s.RotateRefreshToken(ctx, "rt-b", at(time.Second), []byte("first"))
	must(t, "RotateRefreshToken", err)
	for _, h := range []string{"rt-a", "rt-b"} {
		again, err := r.RotateRefreshTokenFunc(ctx, h, at(2*time.Second), notRotated(t, "RotateRefreshTokenFunc of a rotated token"))
		wantErr(t, "RotateRefreshTokenFunc("+h+", again)", err, oauthd.ErrAlreadyUsed)
		if again == nil || string(again.Successor) != "first" || !again.RotatedAt.Equal(ms(at(time.Second))) {
			t.Errorf("RotateRefreshTokenFunc(%s, again) = %+v; want the token as the first rotation left it", h, again)
		}
	}
	_, err = s.RotateRefreshToken(ctx, "rt-a", at(3*time.Second), nil)
	wantErr(t, "RotateRefreshToken after RotateRefreshTokenFunc", err, oauthd.ErrAlreadyUsed)
}

// testRotateFuncNotFound checks that an unknown hash and an access
// token's are ErrNotFound, without a call to rotate.
func testRotateFuncNotFound(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("at-0", oauthd.AccessToken, "g1")))
	_, err := r.RotateRefreshTokenFunc(ctx, "nope", at(time.Second), notRotated(t, "RotateRefreshTokenFunc(unknown)"))
	wantErr(t, "RotateRefreshTokenFunc(unknown)", err, oauthd.ErrNotFound)
	_, err = r.RotateRefreshTokenFunc(ctx, "at-0", at(time.Second), notRotated(t, "RotateRefreshTokenFunc(access token)"))
	wantErr(t, "RotateRefreshTokenFunc(access token)", err, oauthd.ErrNotFound)
	at0, err := s.Token(ctx, "at-0")
	must(t, "Token(at-0)", err)
	if !at0.RotatedAt.IsZero() {
		t.Errorf("the access token was marked rotated")
	}
}

// testRotateFuncRefused checks a rotation that rotate refuses (another
// client's token, a wider scope: RFC 6749 §6): nothing is written, the
// token stays unrotated and usable, and rotate's error comes back as it
// is, with the token.
func testRotateFuncRefused(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	in := fullToken("rt-0", oauthd.RefreshToken, "g1")
	must(t, "CreateTokens", s.CreateTokens(ctx, in))
	refused := &oauthd.Error{Code: oauthd.ErrorInvalidScope, Description: "the requested scope exceeds the scope originally granted"}
	got, err := r.RotateRefreshTokenFunc(ctx, "rt-0", at(time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		// What is returned with an error is not stored either.
		return []byte("refused"), successors("refused", old), refused
	})
	if err != refused {
		t.Fatalf("RotateRefreshTokenFunc with rotate failing: err = %v; want rotate's error, not wrapped", err)
	}
	if got == nil || normToken(got).Hash != "rt-0" || !got.RotatedAt.IsZero() {
		t.Errorf("RotateRefreshTokenFunc with rotate failing = %+v; want the token, unrotated", got)
	}
	tokenExists(t, s, "refused-at", false)
	tokenExists(t, s, "refused-rt", false)
	stored, err := s.Token(ctx, "rt-0")
	must(t, "Token after a refused rotation", err)
	if g, w := normToken(stored), normToken(in); !reflect.DeepEqual(g, w) {
		t.Errorf("Token after a refused rotation = %+v; want %+v", g, w)
	}
	_, err = r.RotateRefreshTokenFunc(ctx, "rt-0", at(2*time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return nil, successors("later", old), nil
	})
	must(t, "RotateRefreshTokenFunc after a refused rotation", err)
	tokenExists(t, s, "later-rt", true)
}

// testRotateFuncRevokedGrant checks RevokeGrant's promise for the tokens
// of a rotation: tokens of a grant revoked before are not stored. The
// rotation itself succeeds.
func testRotateFuncRevokedGrant(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("rt-0", oauthd.RefreshToken, "g1")))
	must(t, "RevokeGrant", s.RevokeGrant(ctx, "g-revoked", at(time.Hour)))
	_, err := r.RotateRefreshTokenFunc(ctx, "rt-0", at(time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		toks := successors("revoked", old)
		for _, t := range toks {
			t.GrantID = "g-revoked"
		}
		return nil, toks, nil
	})
	must(t, "RotateRefreshTokenFunc with a revoked grant's tokens", err)
	tokenExists(t, s, "revoked-at", false)
	tokenExists(t, s, "revoked-rt", false)
	_, err = r.RotateRefreshTokenFunc(ctx, "rt-0", at(2*time.Second), notRotated(t, "RotateRefreshTokenFunc after the rotation"))
	wantErr(t, "RotateRefreshTokenFunc after the rotation", err, oauthd.ErrAlreadyUsed)
}

// testRotateFuncAtomic checks that the rotation and its tokens commit
// together: tokens that cannot be stored (a taken hash) leave the token
// unrotated and store none of them.
func testRotateFuncAtomic(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("rt-0", oauthd.RefreshToken, "g1"), fullToken("taken", oauthd.AccessToken, "g9")))
	_, err := r.RotateRefreshTokenFunc(ctx, "rt-0", at(time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		toks := successors("first", old)
		toks[1].Hash = "taken"
		return []byte("first"), toks, nil
	})
	wantErr(t, "RotateRefreshTokenFunc(a token hash is taken)", err, oauthd.ErrAlreadyExists)
	tokenExists(t, s, "first-at", false)
	taken, err := s.Token(ctx, "taken")
	must(t, "Token(taken)", err)
	if taken.GrantID != "g9" {
		t.Errorf("Token(taken).GrantID = %q after a refused rotation; want %q", taken.GrantID, "g9")
	}
	old, err := s.Token(ctx, "rt-0")
	must(t, "Token(rt-0)", err)
	if !old.RotatedAt.IsZero() || len(old.Successor) != 0 {
		t.Errorf("Token(rt-0) after a refused rotation: RotatedAt %v, Successor %q; want unrotated", old.RotatedAt, old.Successor)
	}
	_, err = r.RotateRefreshTokenFunc(ctx, "rt-0", at(2*time.Second), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return nil, successors("retry", old), nil
	})
	must(t, "RotateRefreshTokenFunc(retry)", err)
	tokenExists(t, s, "retry-at", true)
	tokenExists(t, s, "retry-rt", true)
}

// testRotateFuncRace checks RFC 9700 §4.14.2's single use through
// RotateRefreshTokenFunc: of many concurrent rotations of one token
// exactly one calls rotate and succeeds, only its tokens are stored, and
// every other gets the token, rotated by the winner, with ErrAlreadyUsed.
func testRotateFuncRace(t *testing.T, s oauthd.Storage) { rotateFuncRace(t, s) }

func rotateFuncRace(t testing.TB, s oauthd.Storage) {
	r := rotator(t, s)
	ctx := t.Context()
	now := func(i int) time.Time { return at(time.Duration(i+1) * time.Second) }
	for round := range raceRounds {
		hash := fmt.Sprintf("race-%d", round)
		prefix := func(i int) string { return fmt.Sprintf("round-%d-goroutine-%d", round, i) }
		must(t, "CreateTokens", s.CreateTokens(ctx, fullToken(hash, oauthd.RefreshToken, fmt.Sprintf("g%d", round))))
		olds := make([]*oauthd.Token, raceGoroutines)
		errs := make([]error, raceGoroutines)
		rotated := make([]atomic.Int32, raceGoroutines)
		race(raceGoroutines, func(i int) {
			olds[i], errs[i] = r.RotateRefreshTokenFunc(ctx, hash, now(i), func(old *oauthd.Token) ([]byte, []*oauthd.Token, error) {
				rotated[i].Add(1)
				return []byte(prefix(i)), successors(prefix(i), old), nil
			})
		})
		winner := oneWinner(t, fmt.Sprintf("round %d: RotateRefreshTokenFunc", round), errs)
		for i := range raceGoroutines {
			if c := rotated[i].Load(); (c > 0) != (i == winner) {
				t.Errorf("round %d: goroutine %d called rotate %d times; the winner is goroutine %d", round, i, c, winner)
			}
			if o := olds[i]; o == nil || string(o.Successor) != prefix(winner) || !o.RotatedAt.Equal(ms(now(winner))) {
				t.Errorf("round %d: goroutine %d got %+v; want the token as goroutine %d rotated it", round, i, o, winner)
			}
			tokenExists(t, s, prefix(i)+"-at", i == winner)
			tokenExists(t, s, prefix(i)+"-rt", i == winner)
		}
		if t.Failed() {
			return
		}
	}
}

// testRotateFuncCancelled checks that a rotation refused for a cancelled
// context has no effect and does not call rotate.
func testRotateFuncCancelled(t *testing.T, s oauthd.Storage) {
	r := rotator(t, s)
	must(t, "CreateTokens", s.CreateTokens(t.Context(), fullToken("rt-0", oauthd.RefreshToken, "g1")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.RotateRefreshTokenFunc(ctx, "rt-0", at(time.Second), notRotated(t, "RotateRefreshTokenFunc with a cancelled context"))
	wantErr(t, "RotateRefreshTokenFunc with a cancelled context", err, context.Canceled)
	_, err = s.RotateRefreshToken(t.Context(), "rt-0", at(2*time.Second), nil)
	must(t, "RotateRefreshToken after a cancelled RotateRefreshTokenFunc", err)
}
