package storetest

import (
	"reflect"
	"testing"

	"github.com/oauthd/oauthd"
)

var sessionTests = []test{
	{"RoundTrip", testSessionRoundTrip},
	{"CreateDuplicate", testSessionDuplicate},
	{"Delete", testSessionDelete},
}

func testSessionRoundTrip(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	in := fullSession("s1")
	must(t, "CreateSession", s.CreateSession(ctx, in))
	got, err := s.Session(ctx, "s1")
	must(t, "Session", err)
	if g, w := normSession(got), normSession(in); !reflect.DeepEqual(g, w) {
		t.Errorf("Session = %+v; want %+v", g, w)
	}
	got.UserID = "mallory"
	again, err := s.Session(ctx, "s1")
	must(t, "Session", err)
	if again.UserID != "user-1" {
		t.Errorf("stored session changed through a caller's copy: UserID = %q", again.UserID)
	}
	_, err = s.Session(ctx, "unknown")
	wantErr(t, "Session(unknown)", err, oauthd.ErrNotFound)
}

func testSessionDuplicate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateSession", s.CreateSession(ctx, fullSession("s1")))
	other := fullSession("s1")
	other.UserID = "mallory"
	wantErr(t, "CreateSession(duplicate)", s.CreateSession(ctx, other), oauthd.ErrAlreadyExists)
	got, err := s.Session(ctx, "s1")
	must(t, "Session", err)
	if got.UserID != "user-1" {
		t.Errorf("UserID after duplicate create = %q; want %q", got.UserID, "user-1")
	}
}

func testSessionDelete(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateSession", s.CreateSession(ctx, fullSession("s1")))
	must(t, "CreateSession", s.CreateSession(ctx, fullSession("s2")))
	must(t, "DeleteSession", s.DeleteSession(ctx, "s1"))
	_, err := s.Session(ctx, "s1")
	wantErr(t, "Session after delete", err, oauthd.ErrNotFound)
	wantErr(t, "DeleteSession twice", s.DeleteSession(ctx, "s1"), oauthd.ErrNotFound)
	if _, err := s.Session(ctx, "s2"); err != nil {
		t.Errorf("Session(s2) after deleting s1: %v", err)
	}
}
