package storetest

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var authCodeTests = []test{
	{"ConsumeOnce", testCodeConsume},
	{"CreateDuplicate", testCodeDuplicate},
	{"ConsumeLeavesOthers", testCodeIndependent},
	{"ConcurrentConsumeOneWins", testCodeConsumeRace},
}

func testCodeConsume(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	in := fullCode("code-1")
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, in))

	first := at(5 * time.Second)
	got, err := s.ConsumeAuthCode(ctx, "code-1", first)
	must(t, "ConsumeAuthCode(first)", err)
	want := normCode(in)
	want.UsedAt = ms(first)
	if got == nil {
		t.Fatalf("ConsumeAuthCode(first) = nil, nil; want the code")
	}
	if g := normCode(got); !reflect.DeepEqual(g, want) {
		t.Errorf("ConsumeAuthCode(first) = %+v; want %+v", g, want)
	}
	got.Scopes[0] = "admin"

	for _, now := range []time.Time{at(10 * time.Second), first, at(-time.Hour)} {
		again, err := s.ConsumeAuthCode(ctx, "code-1", now)
		wantErr(t, "ConsumeAuthCode(again)", err, oauthd.ErrAlreadyUsed)
		if again == nil {
			t.Fatalf("ConsumeAuthCode(again) returned no code with ErrAlreadyUsed; the engine needs its GrantID")
		}
		if g := normCode(again); !reflect.DeepEqual(g, want) {
			t.Errorf("ConsumeAuthCode(again) = %+v; want %+v", g, want)
		}
	}

	_, err = s.ConsumeAuthCode(ctx, "unknown", first)
	wantErr(t, "ConsumeAuthCode(unknown)", err, oauthd.ErrNotFound)
}

func testCodeDuplicate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-1")))
	_, err := s.ConsumeAuthCode(ctx, "code-1", at(0))
	must(t, "ConsumeAuthCode", err)
	// Creating the code again must not make it usable again.
	dup := fullCode("code-1")
	dup.GrantID = "other-grant"
	wantErr(t, "CreateAuthCode(duplicate)", s.CreateAuthCode(ctx, dup), oauthd.ErrAlreadyExists)
	got, err := s.ConsumeAuthCode(ctx, "code-1", at(time.Second))
	wantErr(t, "ConsumeAuthCode after duplicate create", err, oauthd.ErrAlreadyUsed)
	if got == nil || got.GrantID != "grant-code-1" {
		t.Errorf("ConsumeAuthCode after duplicate create = %+v; want GrantID %q", got, "grant-code-1")
	}
}

func testCodeIndependent(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-1")))
	must(t, "CreateAuthCode", s.CreateAuthCode(ctx, fullCode("code-2")))
	_, err := s.ConsumeAuthCode(ctx, "code-1", at(0))
	must(t, "ConsumeAuthCode(code-1)", err)
	got, err := s.ConsumeAuthCode(ctx, "code-2", at(time.Second))
	must(t, "ConsumeAuthCode(code-2) after consuming code-1", err)
	if got.GrantID != "grant-code-2" {
		t.Errorf("ConsumeAuthCode(code-2).GrantID = %q; want %q", got.GrantID, "grant-code-2")
	}
}

// testCodeConsumeRace checks the heart of RFC 6749 §4.1.2: of many
// concurrent redemptions of one code exactly one succeeds, and every other
// gets ErrAlreadyUsed with the code, so the engine can revoke the grant.
func testCodeConsumeRace(t *testing.T, s oauthd.Storage) { codeConsumeRace(t, s) }

func codeConsumeRace(t testing.TB, s oauthd.Storage) {
	ctx := t.Context()
	// Each goroutine passes its own time, so the stored UsedAt names the
	// winner.
	now := func(i int) time.Time { return at(time.Duration(i) * time.Second) }
	for round := range raceRounds {
		hash := fmt.Sprintf("race-%d", round)
		in := fullCode(hash)
		must(t, "CreateAuthCode", s.CreateAuthCode(ctx, in))
		codes := make([]*oauthd.AuthCode, raceGoroutines)
		errs := make([]error, raceGoroutines)
		race(raceGoroutines, func(i int) {
			codes[i], errs[i] = s.ConsumeAuthCode(ctx, hash, now(i))
		})
		winner := oneWinner(t, fmt.Sprintf("round %d: ConsumeAuthCode", round), errs)
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
		if t.Failed() {
			return
		}
	}
}
