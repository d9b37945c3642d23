package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var clientTests = []test{
	{"RoundTrip", testClientRoundTrip},
	{"CreateDuplicate", testClientCreateDuplicate},
	{"Unknown", testClientUnknown},
	{"Update", testClientUpdate},
	{"Delete", testClientDelete},
	{"ListOrderedByID", testClientsOrdered},
	{"ReturnsCopies", testClientCopies},
}

func testClientRoundTrip(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	public := &oauthd.Client{
		ID:                      "public",
		RedirectURIs:            []string{"http://127.0.0.1/cb"},
		GrantTypes:              []string{oauthd.GrantAuthorizationCode},
		Public:                  true,
		TokenEndpointAuthMethod: oauthd.AuthMethodNone,
	}
	tests := []struct {
		name string
		c    *oauthd.Client
	}{
		{"every field", fullClient("full")},
		{"public with zero values", public},
		{"only an ID", &oauthd.Client{ID: "bare"}},
	}
	for _, tc := range tests {
		must(t, "CreateClient("+tc.c.ID+")", s.CreateClient(ctx, tc.c))
		got, err := s.Client(ctx, tc.c.ID)
		must(t, "Client("+tc.c.ID+")", err)
		if g, w := normClient(got), normClient(tc.c); !reflect.DeepEqual(g, w) {
			t.Errorf("%s: Client(%q) = %+v; want %+v", tc.name, tc.c.ID, g, w)
		}
	}
}

func testClientCreateDuplicate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("c1")))
	other := fullClient("c1")
	other.Name = "Impostor"
	wantErr(t, "CreateClient(duplicate)", s.CreateClient(ctx, other), oauthd.ErrAlreadyExists)
	got, err := s.Client(ctx, "c1")
	must(t, "Client", err)
	if got.Name != "Client c1" {
		t.Errorf("Name after duplicate create = %q; want %q", got.Name, "Client c1")
	}
}

func testClientUnknown(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	_, err := s.Client(ctx, "nobody")
	wantErr(t, "Client(unknown)", err, oauthd.ErrNotFound)
	wantErr(t, "UpdateClient(unknown)", s.UpdateClient(ctx, fullClient("nobody")), oauthd.ErrNotFound)
	wantErr(t, "DeleteClient(unknown)", s.DeleteClient(ctx, "nobody"), oauthd.ErrNotFound)
	if _, err := s.Client(ctx, "nobody"); err == nil {
		t.Errorf("UpdateClient(unknown) created the client")
	}
}

func testClientUpdate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("c1")))
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("c2")))
	updated := &oauthd.Client{
		ID:                      "c1",
		Name:                    "Renamed",
		RedirectURIs:            []string{"https://app.example.org/cb"},
		Public:                  true,
		TokenEndpointAuthMethod: oauthd.AuthMethodNone,
		AccessTokenTTL:          42 * time.Second,
		CreatedAt:               at(-72 * time.Hour),
	}
	must(t, "UpdateClient", s.UpdateClient(ctx, updated))
	got, err := s.Client(ctx, "c1")
	must(t, "Client", err)
	if g, w := normClient(got), normClient(updated); !reflect.DeepEqual(g, w) {
		t.Errorf("Client after update = %+v; want %+v", g, w)
	}
	other, err := s.Client(ctx, "c2")
	must(t, "Client(c2)", err)
	if g, w := normClient(other), normClient(fullClient("c2")); !reflect.DeepEqual(g, w) {
		t.Errorf("other client changed by update: %+v; want %+v", g, w)
	}
}

func testClientDelete(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("c1")))
	must(t, "CreateClient", s.CreateClient(ctx, fullClient("c2")))
	must(t, "DeleteClient", s.DeleteClient(ctx, "c1"))
	_, err := s.Client(ctx, "c1")
	wantErr(t, "Client after delete", err, oauthd.ErrNotFound)
	wantErr(t, "DeleteClient twice", s.DeleteClient(ctx, "c1"), oauthd.ErrNotFound)
	if _, err := s.Client(ctx, "c2"); err != nil {
		t.Errorf("Client(c2) after deleting c1: %v", err)
	}
	// The ID can be used again.
	must(t, "CreateClient after delete", s.CreateClient(ctx, fullClient("c1")))
}

func testClientsOrdered(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	got, err := s.Clients(ctx)
	must(t, "Clients(empty store)", err)
	if len(got) != 0 {
		t.Fatalf("Clients(empty store) = %d clients; want 0", len(got))
	}
	ids := []string{"m", "a", "Z", "b-2", "b-10"}
	for _, id := range ids {
		must(t, "CreateClient", s.CreateClient(ctx, fullClient(id)))
	}
	got, err = s.Clients(ctx)
	must(t, "Clients", err)
	want := []string{"Z", "a", "b-10", "b-2", "m"}
	var gotIDs []string
	for _, c := range got {
		gotIDs = append(gotIDs, c.ID)
	}
	if !reflect.DeepEqual(gotIDs, want) {
		t.Fatalf("Clients IDs = %q; want %q", gotIDs, want)
	}
	if g, w := normClient(got[1]), normClient(fullClient("a")); !reflect.DeepEqual(g, w) {
		t.Errorf("Clients()[1] = %+v; want %+v", g, w)
	}
}

func testClientCopies(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	in := fullClient("c1")
	must(t, "CreateClient", s.CreateClient(ctx, in))
	in.RedirectURIs[0] = "https://evil.example/"
	in.Name = "changed after create"

	got, err := s.Client(ctx, "c1")
	must(t, "Client", err)
	got.RedirectURIs[0] = "https://evil.example/"
	got.Scopes = append(got.Scopes[:0], "admin")

	list, err := s.Clients(ctx)
	must(t, "Clients", err)
	list[0].GrantTypes[0] = "password"

	again, err := s.Client(ctx, "c1")
	must(t, "Client", err)
	if g, w := normClient(again), normClient(fullClient("c1")); !reflect.DeepEqual(g, w) {
		t.Errorf("stored client changed through a caller's copy: %+v; want %+v", g, w)
	}
}
