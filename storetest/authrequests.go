package storetest

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/oauthd/oauthd"
)

var authRequestTests = []test{
	{"RoundTrip", testAuthRequestRoundTrip},
	{"CreateDuplicate", testAuthRequestDuplicate},
	{"Delete", testAuthRequestDelete},
	{"ReturnsCopies", testAuthRequestCopies},
	{"ConcurrentDeleteOneWins", testAuthRequestDeleteRace},
}

func testAuthRequestRoundTrip(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	tests := []struct {
		name string
		r    *oauthd.AuthRequest
	}{
		{"every field", fullAuthRequest("r1")},
		{"only required fields", &oauthd.AuthRequest{ID: "r2", ClientID: "c", RedirectURI: "https://c.example/cb", ResponseType: "code", ExpiresAt: at(0)}},
	}
	for _, tc := range tests {
		must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, tc.r))
		got, err := s.AuthRequest(ctx, tc.r.ID)
		must(t, "AuthRequest", err)
		if g, w := normAuthRequest(got), normAuthRequest(tc.r); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: AuthRequest(%q) = %+v; want %+v", tc.name, tc.r.ID, g, w)
		}
	}
	_, err := s.AuthRequest(ctx, "unknown")
	wantErr(t, "AuthRequest(unknown)", err, oauthd.ErrNotFound)
}

func testAuthRequestDuplicate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, fullAuthRequest("r1")))
	other := fullAuthRequest("r1")
	other.State = "other"
	wantErr(t, "CreateAuthRequest(duplicate)", s.CreateAuthRequest(ctx, other), oauthd.ErrAlreadyExists)
	got, err := s.AuthRequest(ctx, "r1")
	must(t, "AuthRequest", err)
	if got.State != "af0ifjsldkj" {
		t.Errorf("State after duplicate create = %q; want %q", got.State, "af0ifjsldkj")
	}
}

func testAuthRequestDelete(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, fullAuthRequest("r1")))
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, fullAuthRequest("r2")))
	must(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, "r1"))
	_, err := s.AuthRequest(ctx, "r1")
	wantErr(t, "AuthRequest after delete", err, oauthd.ErrNotFound)
	wantErr(t, "DeleteAuthRequest twice", s.DeleteAuthRequest(ctx, "r1"), oauthd.ErrNotFound)
	wantErr(t, "DeleteAuthRequest(unknown)", s.DeleteAuthRequest(ctx, "unknown"), oauthd.ErrNotFound)
	if _, err := s.AuthRequest(ctx, "r2"); err != nil {
		t.Errorf("AuthRequest(r2) after deleting r1: %v", err)
	}
}

func testAuthRequestCopies(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	in := fullAuthRequest("r1")
	must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, in))
	*in.MaxAge = 1
	in.Scopes[0] = "admin"

	got, err := s.AuthRequest(ctx, "r1")
	must(t, "AuthRequest", err)
	*got.MaxAge = 2
	got.Prompt[0] = "none"

	again, err := s.AuthRequest(ctx, "r1")
	must(t, "AuthRequest", err)
	if g, w := normAuthRequest(again), normAuthRequest(fullAuthRequest("r1")); !reflect.DeepEqual(g, w) {
		t.Errorf("stored request changed through a caller's copy: %+v; want %+v", g, w)
	}
}

// testAuthRequestDeleteRace checks that of many concurrent deletes of one
// request exactly one succeeds: the request is continued exactly once.
func testAuthRequestDeleteRace(t *testing.T, s oauthd.Storage) { authRequestDeleteRace(t, s) }

func authRequestDeleteRace(t testing.TB, s oauthd.Storage) {
	ctx := t.Context()
	for round := range raceRounds {
		id := fmt.Sprintf("r%d", round)
		must(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, fullAuthRequest(id)))
		errs := make([]error, raceGoroutines)
		race(raceGoroutines, func(i int) { errs[i] = s.DeleteAuthRequest(ctx, id) })
		oneWinnerLosing(t, fmt.Sprintf("round %d: DeleteAuthRequest", round), errs, oauthd.ErrNotFound)
		if t.Failed() {
			return
		}
	}
}
