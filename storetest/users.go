package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var userTests = []test{
	{"RoundTrip", testUserRoundTrip},
	{"CreateDuplicate", testUserCreateDuplicate},
	{"Unknown", testUserUnknown},
	{"Update", testUserUpdate},
	{"UpdateToTakenUsername", testUserUpdateTakenUsername},
	{"Delete", testUserDelete},
	{"ListOrderedByUsername", testUsersOrdered},
	{"ReturnsCopies", testUserCopies},
}

func testUserRoundTrip(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	tests := []struct {
		name string
		u    *oauthd.User
	}{
		{"every field and nested claims", fullUser("u1", "ada")},
		{"no claims", &oauthd.User{ID: "u2", Username: "bob", PasswordHash: "h"}},
	}
	for _, tc := range tests {
		must(t, "CreateUser", s.CreateUser(ctx, tc.u))
		want := normUser(tc.u)
		got, err := s.User(ctx, tc.u.ID)
		must(t, "User", err)
		if g := normUser(got); !reflect.DeepEqual(g, want) {
			t.Errorf("%s: User(%q) = %+v; want %+v", tc.name, tc.u.ID, g, want)
		}
		got, err = s.UserByUsername(ctx, tc.u.Username)
		must(t, "UserByUsername", err)
		if g := normUser(got); !reflect.DeepEqual(g, want) {
			t.Errorf("%s: UserByUsername(%q) = %+v; want %+v", tc.name, tc.u.Username, g, want)
		}
	}
}

func testUserCreateDuplicate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u1", "ada")))
	tests := []struct {
		name string
		u    *oauthd.User
	}{
		{"same ID", fullUser("u1", "other")},
		{"same username", fullUser("u2", "ada")},
		{"same ID and username", fullUser("u1", "ada")},
	}
	for _, tc := range tests {
		wantErr(t, "CreateUser("+tc.name+")", s.CreateUser(ctx, tc.u), oauthd.ErrAlreadyExists)
	}
	_, err := s.UserByUsername(ctx, "other")
	wantErr(t, "UserByUsername after refused create", err, oauthd.ErrNotFound)
	_, err = s.User(ctx, "u2")
	wantErr(t, "User after refused create", err, oauthd.ErrNotFound)
	users, err := s.Users(ctx)
	must(t, "Users", err)
	if len(users) != 1 {
		t.Errorf("Users = %d users; want 1", len(users))
	}
}

func testUserUnknown(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	_, err := s.User(ctx, "nobody")
	wantErr(t, "User(unknown)", err, oauthd.ErrNotFound)
	_, err = s.UserByUsername(ctx, "nobody")
	wantErr(t, "UserByUsername(unknown)", err, oauthd.ErrNotFound)
	wantErr(t, "UpdateUser(unknown)", s.UpdateUser(ctx, fullUser("nobody", "nobody")), oauthd.ErrNotFound)
	wantErr(t, "DeleteUser(unknown)", s.DeleteUser(ctx, "nobody"), oauthd.ErrNotFound)
	_, err = s.UserByUsername(ctx, "nobody")
	wantErr(t, "UserByUsername after UpdateUser(unknown)", err, oauthd.ErrNotFound)
}

func testUserUpdate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u1", "ada")))
	updated := &oauthd.User{
		ID:           "u1",
		Username:     "countess",
		PasswordHash: "new-hash",
		Claims:       map[string]any{"email_verified": false, "roles": []any{"x"}},
		CreatedAt:    at(-48 * time.Hour),
		UpdatedAt:    at(0),
	}
	must(t, "UpdateUser", s.UpdateUser(ctx, updated))
	got, err := s.User(ctx, "u1")
	must(t, "User", err)
	if g, w := normUser(got), normUser(updated); !reflect.DeepEqual(g, w) {
		t.Errorf("User after update = %+v; want %+v", g, w)
	}
	got, err = s.UserByUsername(ctx, "countess")
	must(t, "UserByUsername(new name)", err)
	if got.ID != "u1" {
		t.Errorf("UserByUsername(new name).ID = %q; want %q", got.ID, "u1")
	}
	_, err = s.UserByUsername(ctx, "ada")
	wantErr(t, "UserByUsername(old name)", err, oauthd.ErrNotFound)
	// The old username is free again.
	must(t, "CreateUser(old name)", s.CreateUser(ctx, fullUser("u2", "ada")))
}

func testUserUpdateTakenUsername(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u1", "ada")))
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u2", "bob")))
	wantErr(t, "UpdateUser(taken username)", s.UpdateUser(ctx, fullUser("u2", "ada")), oauthd.ErrAlreadyExists)
	got, err := s.UserByUsername(ctx, "ada")
	must(t, "UserByUsername", err)
	if got.ID != "u1" {
		t.Errorf("UserByUsername(ada).ID = %q; want %q", got.ID, "u1")
	}
	got, err = s.User(ctx, "u2")
	must(t, "User", err)
	if got.Username != "bob" {
		t.Errorf("User(u2).Username = %q; want %q", got.Username, "bob")
	}
	// Keeping one's own username is no conflict.
	same := fullUser("u1", "ada")
	same.PasswordHash = "rotated"
	must(t, "UpdateUser(same username)", s.UpdateUser(ctx, same))
}

func testUserDelete(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u1", "ada")))
	must(t, "CreateUser", s.CreateUser(ctx, fullUser("u2", "bob")))
	must(t, "DeleteUser", s.DeleteUser(ctx, "u1"))
	_, err := s.User(ctx, "u1")
	wantErr(t, "User after delete", err, oauthd.ErrNotFound)
	_, err = s.UserByUsername(ctx, "ada")
	wantErr(t, "UserByUsername after delete", err, oauthd.ErrNotFound)
	wantErr(t, "DeleteUser twice", s.DeleteUser(ctx, "u1"), oauthd.ErrNotFound)
	if _, err := s.User(ctx, "u2"); err != nil {
		t.Errorf("User(u2) after deleting u1: %v", err)
	}
	must(t, "CreateUser(reused username)", s.CreateUser(ctx, fullUser("u3", "ada")))
}

func testUsersOrdered(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	got, err := s.Users(ctx)
	must(t, "Users(empty store)", err)
	if len(got) != 0 {
		t.Fatalf("Users(empty store) = %d users; want 0", len(got))
	}
	// IDs sort in another order than usernames.
	for id, name := range map[string]string{"u1": "zoe", "u2": "ada", "u3": "Max", "u4": "bob"} {
		must(t, "CreateUser", s.CreateUser(ctx, fullUser(id, name)))
	}
	got, err = s.Users(ctx)
	must(t, "Users", err)
	var names []string
	for _, u := range got {
		names = append(names, u.Username)
	}
	if want := []string{"Max", "ada", "bob", "zoe"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("Users usernames = %q; want %q", names, want)
	}
	if g, w := normUser(got[1]), normUser(fullUser("u2", "ada")); !reflect.DeepEqual(g, w) {
		t.Errorf("Users()[1] = %+v; want %+v", g, w)
	}
}

func testUserCopies(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	in := fullUser("u1", "ada")
	must(t, "CreateUser", s.CreateUser(ctx, in))
	in.Claims["email"] = "changed@example.com"
	in.Claims["address"].(map[string]any)["country"] = "XX"

	got, err := s.User(ctx, "u1")
	must(t, "User", err)
	got.Claims["name"] = "Mallory"
	got.Claims["address"].(map[string]any)["locality"] = "Nowhere"
	got.Claims["groups"].([]any)[0] = "root"

	again, err := s.UserByUsername(ctx, "ada")
	must(t, "UserByUsername", err)
	if g, w := normUser(again), normUser(fullUser("u1", "ada")); !reflect.DeepEqual(g, w) {
		t.Errorf("stored user changed through a caller's copy: %+v; want %+v", g, w)
	}
}
