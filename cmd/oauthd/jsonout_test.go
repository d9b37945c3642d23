package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

// decodeJSON runs a command that must print one JSON document and decodes it
// into v.
func decodeJSON(t *testing.T, db string, v any, args ...string) {
	t.Helper()
	code, out, errs := oauthdCmd(t, db, "", args...)
	if code != 0 {
		t.Fatalf("%v: exit %d: %s", args, code, errs)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%v: not the JSON documented: %v\n%s", args, err, out)
	}
	if dec.More() {
		t.Fatalf("%v: more than one JSON document:\n%s", args, out)
	}
}

// TestListJSON: --json prints what the tables show as one JSON document a
// script can decode, [] for an empty list, and never a secret's hash.
func TestListJSON(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	var none []map[string]any
	if code, _, errs := oauthdCmd(t, db, "", "migrate"); code != 0 {
		t.Fatalf("migrate: %s", errs)
	}
	for _, args := range [][]string{{"client", "list", "--json"}, {"user", "list", "--json"}} {
		code, out, errs := oauthdCmd(t, db, "", args...)
		if code != 0 || strings.TrimSpace(out) != "[]" {
			t.Errorf("%v on an empty database: %d %q %s; want []", args, code, out, errs)
		}
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--secret", "s3cret-s3cret-s3cret", "--redirect-uri", "https://web.example/cb",
		"--scope", "openid email", "--name", "Web App", "--access-token-ttl", "10m"); code != 0 {
		t.Fatalf("client create: %s", errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "spa", "--public", "--redirect-uri", "http://127.0.0.1/cb"); code != 0 {
		t.Fatalf("client create --public: %s", errs)
	}
	if code, _, errs := oauthdCmd(t, db, "pw-alice-1\n", "user", "add", "alice", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	for _, args := range [][]string{{"client", "list", "--json"}, {"client", "show", "web", "--json"}, {"user", "list", "--json"}} {
		_, out, _ := oauthdCmd(t, db, "", args...)
		if strings.Contains(out, "$argon2id$") || strings.Contains(out, "s3cret") || strings.Contains(out, "pw-alice") {
			t.Errorf("%v prints a secret or its hash:\n%s", args, out)
		}
	}

	var clients []clientJSON
	decodeJSON(t, db, &clients, "client", "list", "--json")
	if len(clients) != 2 {
		t.Fatalf("client list --json: %d clients; want 2", len(clients))
	}
	var web clientJSON
	decodeJSON(t, db, &web, "client", "show", "web", "--json")
	if web.ClientID != "web" || web.ClientName != "Web App" || web.Public || web.TokenEndpointAuthMethod != oauthd.AuthMethodBasic ||
		strings.Join(web.RedirectURIs, " ") != "https://web.example/cb" || strings.Join(web.Scopes, " ") != "openid email" ||
		web.AccessTokenTTL != 600 || web.CreatedAt == "" {
		t.Errorf("client show web --json: %+v", web)
	}
	if _, err := time.Parse(time.RFC3339, web.CreatedAt); err != nil {
		t.Errorf("created_at %q is not RFC 3339: %v", web.CreatedAt, err)
	}
	var spa clientJSON
	decodeJSON(t, db, &spa, "client", "show", "spa", "--json")
	if !spa.Public || !spa.RequirePKCE || spa.TokenEndpointAuthMethod != oauthd.AuthMethodNone {
		t.Errorf("client show spa --json: %+v; want a public client with PKCE required and auth method none", spa)
	}

	var users []userJSON
	decodeJSON(t, db, &users, "user", "list", "--json")
	if len(users) != 1 || users[0].Username != "alice" || users[0].Sub == "" {
		t.Fatalf("user list --json: %+v", users)
	}

	decodeJSON(t, db, &none, "grants", "list", "alice", "--json")
	if none == nil || len(none) != 0 {
		t.Errorf("grants list --json with no consent: %v; want []", none)
	}
	s, err := app.OpenStore(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	s.SaveConsent(context.Background(), &oauthd.Consent{UserID: users[0].Sub, ClientID: "web", Scopes: []string{"openid", "email"}, CreatedAt: now, UpdatedAt: now})
	// a consent of a client that no longer exists is not listed, as in the table
	s.SaveConsent(context.Background(), &oauthd.Consent{UserID: users[0].Sub, ClientID: "gone", Scopes: []string{"email"}, CreatedAt: now, UpdatedAt: now})
	s.Close()
	var consents []consentJSON
	decodeJSON(t, db, &consents, "grants", "list", "alice", "--json")
	if len(consents) != 1 || consents[0].ClientID != "web" || strings.Join(consents[0].Scopes, " ") != "openid email" || consents[0].UpdatedAt == "" {
		t.Errorf("grants list --json: %+v; want web's consent only", consents)
	}

	var keys []keyJSON
	decodeJSON(t, db, &keys, "keys", "list", "--json")
	algs := map[string]bool{}
	for _, k := range keys {
		algs[k.Alg] = true
		if k.KID == "" || k.State == "" || k.SignsFrom == "" || k.SignsUntil == "" || k.PublishedUntil == "" {
			t.Errorf("keys list --json: %+v has an empty field", k)
		}
	}
	if !algs["RS256"] {
		t.Errorf("keys list --json: %+v; want an RS256 key", keys)
	}
}
