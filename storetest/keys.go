package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var signingKeyTests = []test{
	{"RoundTripOrderedByNotBefore", testKeysOrdered},
	{"CreateDuplicate", testKeyDuplicate},
	{"Delete", testKeyDelete},
}

func testKeysOrdered(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	got, err := s.SigningKeys(ctx)
	must(t, "SigningKeys(empty store)", err)
	if len(got) != 0 {
		t.Fatalf("SigningKeys(empty store) = %d keys; want 0", len(got))
	}
	// Created out of order; IDs sort in another order than NotBefore.
	keys := []*oauthd.SigningKey{
		fullKey("a-next", at(24*time.Hour)),
		fullKey("c-old", at(-30*24*time.Hour)),
		fullKey("b-current", at(-time.Hour)),
		{ID: "d-bare", Algorithm: "RS256", NotBefore: at(48 * time.Hour)},
	}
	for _, k := range keys {
		must(t, "CreateSigningKey("+k.ID+")", s.CreateSigningKey(ctx, k))
	}
	got, err = s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	want := []*oauthd.SigningKey{keys[1], keys[2], keys[0], keys[3]}
	if len(got) != len(want) {
		t.Fatalf("SigningKeys = %d keys; want %d", len(got), len(want))
	}
	for i := range want {
		if g, w := normKey(got[i]), normKey(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("SigningKeys()[%d] = %+v; want %+v", i, g, w)
		}
	}
	got[0].Private[0] = 'X'
	again, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	if again[0].Private[0] != '{' {
		t.Errorf("stored key changed through a caller's copy")
	}
}

func testKeyDuplicate(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateSigningKey", s.CreateSigningKey(ctx, fullKey("k1", at(0))))
	other := fullKey("k1", at(time.Hour))
	other.Algorithm = "RS256"
	wantErr(t, "CreateSigningKey(duplicate)", s.CreateSigningKey(ctx, other), oauthd.ErrAlreadyExists)
	got, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	if len(got) != 1 || got[0].Algorithm != "ES256" {
		t.Errorf("SigningKeys after duplicate create = %+v; want only the first key", got)
	}
}

func testKeyDelete(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "CreateSigningKey", s.CreateSigningKey(ctx, fullKey("k1", at(0))))
	must(t, "CreateSigningKey", s.CreateSigningKey(ctx, fullKey("k2", at(time.Hour))))
	must(t, "DeleteSigningKey", s.DeleteSigningKey(ctx, "k1"))
	wantErr(t, "DeleteSigningKey twice", s.DeleteSigningKey(ctx, "k1"), oauthd.ErrNotFound)
	got, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	if len(got) != 1 || got[0].ID != "k2" {
		t.Errorf("SigningKeys after delete = %+v; want only k2", got)
	}
}
