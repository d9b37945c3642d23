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

// The tests of oauthd.CodeRedeemer, which a store may implement; they skip
// a store that does not.
var redeemTests = []test{
	{"RedeemConsumesAndStoresTokens", testRedeem},
	{"RedeemSingleUse", testRedeemSingleUse},
	{"RedeemUnknownCode", testRedeemUnknown},
	{"RefusedRedemptionStillConsumes", testRedeemRefused},
	{"RedeemRevokedGrantStoresNoTokens", testRedeemRevokedGrant},
	{"RedeemIsAllOrNothing", testRedeemAtomic},
	{"ConcurrentRedeemOneIssues", testRedeemRace},
	{"RedeemCancelled", testRedeemCancelled},
}

// redeemer returns the store as a CodeRedeemer, or skips the test.
func redeemer(t testing.TB, s oauthd.Storage) oauthd.CodeRedeemer {
	t.Helper()
	r, ok := s.(oauthd.CodeRedeemer)
	if !ok {
		t.Skip("the store is not an oauthd.CodeRedeemer")
	}
	return r
}

// codeTokens are an access and a refresh token of the code's grant, their
// hashes prefix-at and prefix-rt.
func codeTokens(prefix string, c *oauthd.AuthCode) []*oauthd.Token {
	access := fullToken(prefix+"-at", oauthd.AccessToken, c.GrantID)
	refresh := fullToken(prefix+"-rt", oauthd.RefreshToken, c.GrantID)
	refresh.ExpiresAt = at(24 * time.Hour)
	return []*oauthd.Token{access, refresh}
}

// notIssued is an issue callback that fails the test when called.
func notIssued(t *testing.T, what string) func(*oauthd.AuthCode) ([]*oauthd.Token, error) {
	return func(*oauthd.AuthCode) ([]*oauthd.Token, error) {
		t.Errorf("%s called issue", what)
		return nil, errors.New("issue must not be called")
	}
}

// testRedeem checks a redemption (RFC 6749 §4.1.3): issue gets the code,
// marked used; the tokens it returns are stored; the code is consumed.
func testRedeem(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	in := fullCode("code-1")
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, in))
	want := normCode(in)
	want.UsedAt = ms(at(5 * time.Second))

	var issued []*oauthd.Token
	calls := 0
	got, err := r.RedeemAuthCode(ctx, "code-1", at(5*time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		calls++
		if c == nil {
			t.Fatal("issue got a nil code")
		}
		if g := normCode(c); !reflect.DeepEqual(g, want) {
			t.Errorf("issue got %+v; want %+v", g, want)
		}
		issued = codeTokens("code-1", c)
		return issued, nil
	})
	must(t, "RedeemAuthCode", err)
	if calls != 1 {
		t.Errorf("issue called %d times; want 1", calls)
	}
	if got == nil {
		t.Fatal("RedeemAuthCode = nil, nil; want the code")
	}
	if g := normCode(got); !reflect.DeepEqual(g, want) {
		t.Errorf("RedeemAuthCode = %+v; want %+v", g, want)
	}
	for _, in := range issued {
		tok, err := s.Token(ctx, in.Hash)
		must(t, "Token("+in.Hash+")", err)
		if g, w := normToken(tok), normToken(in); !reflect.DeepEqual(g, w) {
			t.Errorf("Token(%q) = %+v; want %+v", in.Hash, g, w)
		}
	}
	again, err := s.ConsumeAuthCode(ctx, "code-1", at(10*time.Second))
	wantErr(t, "ConsumeAuthCode after RedeemAuthCode", err, oauthd.ErrAlreadyUsed)
	if again == nil || !again.UsedAt.Equal(want.UsedAt) {
		t.Errorf("ConsumeAuthCode after RedeemAuthCode = %+v; want the code used at %v", again, want.UsedAt)
	}
}

// testRedeemSingleUse checks RFC 6749 §4.1.2: a code is used once. A
// second redemption, or one after ConsumeAuthCode, gets the code (the
// engine revokes its grant) with ErrAlreadyUsed, and issue is not called.
func testRedeemSingleUse(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	in := fullCode("code-1")
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, in))
	_, err := r.RedeemAuthCode(ctx, "code-1", at(time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		return codeTokens("first", c), nil
	})
	must(t, "RedeemAuthCode(first)", err)
	want := normCode(in)
	want.UsedAt = ms(at(time.Second))

	got, err := r.RedeemAuthCode(ctx, "code-1", at(2*time.Second), notIssued(t, "RedeemAuthCode(again)"))
	wantErr(t, "RedeemAuthCode(again)", err, oauthd.ErrAlreadyUsed)
	if got == nil {
		t.Fatal("RedeemAuthCode(again) returned no code with ErrAlreadyUsed; the engine needs its GrantID")
	}
	if g := normCode(got); !reflect.DeepEqual(g, want) {
		t.Errorf("RedeemAuthCode(again) = %+v; want %+v", g, want)
	}
	tokenExists(t, s, "first-at", true)

	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-2")))
	_, err = s.ConsumeAuthCode(ctx, "code-2", at(time.Second))
	must(t, "ConsumeAuthCode(code-2)", err)
	got, err = r.RedeemAuthCode(ctx, "code-2", at(2*time.Second), notIssued(t, "RedeemAuthCode after ConsumeAuthCode"))
	wantErr(t, "RedeemAuthCode after ConsumeAuthCode", err, oauthd.ErrAlreadyUsed)
	if got == nil || got.GrantID != "grant-code-2" {
		t.Errorf("RedeemAuthCode after ConsumeAuthCode = %+v; want the code of grant %q", got, "grant-code-2")
	}
}

func testRedeemUnknown(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-1")))
	_, err := r.RedeemAuthCode(ctx, "unknown", at(0), notIssued(t, "RedeemAuthCode(unknown)"))
	wantErr(t, "RedeemAuthCode(unknown)", err, oauthd.ErrNotFound)
	// The other code is untouched.
	_, err = s.ConsumeAuthCode(ctx, "code-1", at(time.Second))
	must(t, "ConsumeAuthCode(code-1)", err)
}

// testRedeemRefused checks a redemption the engine refuses once it has
// the code (a wrong PKCE verifier, RFC 7636 §4.6; another client's code or
// a wrong redirect_uri, RFC 6749 §4.1.3): nothing is stored, the code
// stays unused for the client it was issued to, and issue's error comes
// back as it is.
func testRedeemRefused(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	in := fullCode("code-1")
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, in))
	refused := &oauthd.Error{Code: oauthd.ErrorInvalidGrant, Description: "code_verifier does not match the code_challenge"}
	got, err := r.RedeemAuthCode(ctx, "code-1", at(time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		// Tokens returned with an error are not stored either.
		return codeTokens("refused", c), refused
	})
	if err != refused {
		t.Fatalf("RedeemAuthCode with issue failing: err = %v; want issue's error, not wrapped", err)
	}
	if got == nil || got.GrantID != "grant-code-1" || !got.UsedAt.IsZero() {
		t.Errorf("RedeemAuthCode with issue failing = %+v; want the code, unused", got)
	}
	tokenExists(t, s, "refused-at", false)
	tokenExists(t, s, "refused-rt", false)
	// The rightful redemption still works, once.
	got, err = r.RedeemAuthCode(ctx, "code-1", at(2*time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		return codeTokens("redeemed", c), nil
	})
	must(t, "RedeemAuthCode after a refused redemption", err)
	if got == nil || !got.UsedAt.Equal(ms(at(2*time.Second))) {
		t.Errorf("RedeemAuthCode after a refused redemption = %+v; want the code, used at %v", got, at(2*time.Second))
	}
	tokenExists(t, s, "redeemed-at", true)
	tokenExists(t, s, "redeemed-rt", true)
	_, err = s.ConsumeAuthCode(ctx, "code-1", at(3*time.Second))
	wantErr(t, "ConsumeAuthCode after the redemption", err, oauthd.ErrAlreadyUsed)
}

// testRedeemRevokedGrant checks RevokeGrant's promise for the tokens of a
// redemption: a grant revoked before (a replay of the code, detected while
// the first redemption was under way) gets no tokens. The redemption
// itself succeeds and consumes the code.
func testRedeemRevokedGrant(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-1")))
	must(t, "RevokeGrant", s.RevokeGrant(ctx, "grant-code-1", at(time.Hour)))
	_, err := r.RedeemAuthCode(ctx, "code-1", at(time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		return codeTokens("revoked", c), nil
	})
	must(t, "RedeemAuthCode of a revoked grant", err)
	tokenExists(t, s, "revoked-at", false)
	tokenExists(t, s, "revoked-rt", false)
	_, err = s.ConsumeAuthCode(ctx, "code-1", at(2*time.Second))
	wantErr(t, "ConsumeAuthCode after redeeming a revoked grant's code", err, oauthd.ErrAlreadyUsed)
}

// testRedeemAtomic checks that the code and its tokens commit together,
// as RotateRefreshToken's rotation and successors do: tokens that cannot
// be stored (a taken hash) leave the code unused and store none of them.
func testRedeemAtomic(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-1")))
	must(t, "CreateTokens", s.CreateTokens(ctx, fullToken("taken", oauthd.AccessToken, "g9")))
	_, err := r.RedeemAuthCode(ctx, "code-1", at(time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		toks := codeTokens("first", c)
		toks[1].Hash = "taken"
		return toks, nil
	})
	wantErr(t, "RedeemAuthCode(a token hash is taken)", err, oauthd.ErrAlreadyExists)
	tokenExists(t, s, "first-at", false)
	taken, err := s.Token(ctx, "taken")
	must(t, "Token(taken)", err)
	if taken.GrantID != "g9" {
		t.Errorf("Token(taken).GrantID = %q after a refused redemption; want %q", taken.GrantID, "g9")
	}
	// The code can still be redeemed.
	_, err = r.RedeemAuthCode(ctx, "code-1", at(2*time.Second), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		return codeTokens("retry", c), nil
	})
	must(t, "RedeemAuthCode(retry)", err)
	tokenExists(t, s, "retry-at", true)
	tokenExists(t, s, "retry-rt", true)
}

// testRedeemRace checks the heart of RFC 6749 §4.1.2 through
// RedeemAuthCode: of many concurrent redemptions of one code exactly one
// calls issue and succeeds, only its tokens are stored, and every other
// gets the code with ErrAlreadyUsed.
func testRedeemRace(t *testing.T, s oauthd.Storage) { redeemRace(t, s) }

func redeemRace(t testing.TB, s oauthd.Storage) {
	r := redeemer(t, s)
	ctx := t.Context()
	now := func(i int) time.Time { return at(time.Duration(i) * time.Second) }
	for round := range raceRounds {
		hash := fmt.Sprintf("race-%d", round)
		prefix := func(i int) string { return fmt.Sprintf("round-%d-goroutine-%d", round, i) }
		in := fullCode(hash)
		must(t, "CreateAuthCode", s.CreateAuthCode(ctx, in))
		codes := make([]*oauthd.AuthCode, raceGoroutines)
		errs := make([]error, raceGoroutines)
		issued := make([]atomic.Int32, raceGoroutines)
		race(raceGoroutines, func(i int) {
			codes[i], errs[i] = r.RedeemAuthCode(ctx, hash, now(i), func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
				issued[i].Add(1)
				return codeTokens(prefix(i), c), nil
			})
		})
		winner := oneWinner(t, fmt.Sprintf("round %d: RedeemAuthCode", round), errs)
		for i := range raceGoroutines {
			// A store that retries a transaction calls issue again in the
			// same goroutine; no other goroutine may call it.
			if c := issued[i].Load(); (c > 0) != (i == winner) {
				t.Errorf("round %d: goroutine %d called issue %d times; the winner is goroutine %d", round, i, c, winner)
			}
		}
		want := normCode(in)
		want.UsedAt = ms(now(winner))
		for i, c := range codes {
			if c == nil {
				t.Errorf("round %d: goroutine %d got no code", round, i)
				continue
			}
			if g := normCode(c); !reflect.DeepEqual(g, want) {
				t.Errorf("round %d: goroutine %d got %+v; want %+v", round, i, g, want)
			}
		}
		for i := range raceGoroutines {
			tokenExists(t, s, prefix(i)+"-at", i == winner)
			tokenExists(t, s, prefix(i)+"-rt", i == winner)
		}
		if t.Failed() {
			return
		}
	}
}

// testRedeemCancelled checks that a redemption refused for a cancelled
// context has no effect and does not call issue.
func testRedeemCancelled(t *testing.T, s oauthd.Storage) {
	r := redeemer(t, s)
	must(t, "CreateAuthCode", s.CreateAuthCode(t.Context(), fullCode("code-1")))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := r.RedeemAuthCode(ctx, "code-1", at(time.Second), notIssued(t, "RedeemAuthCode with a cancelled context"))
	wantErr(t, "RedeemAuthCode with a cancelled context", err, context.Canceled)
	_, err = s.ConsumeAuthCode(t.Context(), "code-1", at(2*time.Second))
	must(t, "ConsumeAuthCode after a cancelled RedeemAuthCode", err)
}
