package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

var consentTests = []test{
	{"RoundTrip", testConsentRoundTrip},
	{"SaveReplaces", testConsentUpsert},
	{"ListOrderedByClientID", testConsentsOrdered},
	{"Delete", testConsentDelete},
}

func testConsentRoundTrip(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	in := fullConsent("u1", "c1")
	must(t, "SaveConsent", s.SaveConsent(ctx, in))
	got, err := s.Consent(ctx, "u1", "c1")
	must(t, "Consent", err)
	if g, w := normConsent(got), normConsent(in); !reflect.DeepEqual(g, w) {
		t.Errorf("Consent = %+v; want %+v", g, w)
	}
	got.Scopes[0] = "admin"
	again, err := s.Consent(ctx, "u1", "c1")
	must(t, "Consent", err)
	if again.Scopes[0] != "openid" {
		t.Errorf("stored consent changed through a caller's copy: Scopes = %q", again.Scopes)
	}
	for _, key := range [][2]string{{"u1", "c2"}, {"u2", "c1"}, {"", ""}} {
		_, err := s.Consent(ctx, key[0], key[1])
		wantErr(t, "Consent("+key[0]+", "+key[1]+")", err, oauthd.ErrNotFound)
	}
}

func testConsentUpsert(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u1", "c1")))
	must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u1", "c2")))
	next := &oauthd.Consent{
		UserID:    "u1",
		ClientID:  "c1",
		Scopes:    []string{"openid", "email", "profile"},
		CreatedAt: at(-time.Hour),
		UpdatedAt: at(0),
	}
	must(t, "SaveConsent(again)", s.SaveConsent(ctx, next))
	got, err := s.Consent(ctx, "u1", "c1")
	must(t, "Consent", err)
	if g, w := normConsent(got), normConsent(next); !reflect.DeepEqual(g, w) {
		t.Errorf("Consent after second save = %+v; want %+v", g, w)
	}
	list, err := s.Consents(ctx, "u1")
	must(t, "Consents", err)
	if len(list) != 2 {
		t.Errorf("Consents after second save = %d consents; want 2", len(list))
	}
	other, err := s.Consent(ctx, "u1", "c2")
	must(t, "Consent(c2)", err)
	if g, w := normConsent(other), normConsent(fullConsent("u1", "c2")); !reflect.DeepEqual(g, w) {
		t.Errorf("other consent changed by save: %+v; want %+v", g, w)
	}
}

func testConsentsOrdered(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	got, err := s.Consents(ctx, "u1")
	must(t, "Consents(none)", err)
	if len(got) != 0 {
		t.Fatalf("Consents(none) = %d consents; want 0", len(got))
	}
	for _, c := range []string{"m", "a", "Z", "b"} {
		must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u1", c)))
		must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u2", c+"-other")))
	}
	got, err = s.Consents(ctx, "u1")
	must(t, "Consents", err)
	var clients []string
	for _, c := range got {
		clients = append(clients, c.ClientID)
		if c.UserID != "u1" {
			t.Errorf("Consents(u1) returned a consent of %q", c.UserID)
		}
	}
	if want := []string{"Z", "a", "b", "m"}; !reflect.DeepEqual(clients, want) {
		t.Fatalf("Consents client IDs = %q; want %q", clients, want)
	}
	if g, w := normConsent(got[1]), normConsent(fullConsent("u1", "a")); !reflect.DeepEqual(g, w) {
		t.Errorf("Consents()[1] = %+v; want %+v", g, w)
	}
}

func testConsentDelete(t *testing.T, s oauthd.Storage) {
	ctx := t.Context()
	must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u1", "c1")))
	must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u1", "c2")))
	must(t, "SaveConsent", s.SaveConsent(ctx, fullConsent("u2", "c1")))
	must(t, "DeleteConsent", s.DeleteConsent(ctx, "u1", "c1"))
	_, err := s.Consent(ctx, "u1", "c1")
	wantErr(t, "Consent after delete", err, oauthd.ErrNotFound)
	wantErr(t, "DeleteConsent twice", s.DeleteConsent(ctx, "u1", "c1"), oauthd.ErrNotFound)
	for _, key := range [][2]string{{"u1", "c2"}, {"u2", "c1"}} {
		if _, err := s.Consent(ctx, key[0], key[1]); err != nil {
			t.Errorf("Consent(%s, %s) after deleting (u1, c1): %v", key[0], key[1], err)
		}
	}
}
