package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// rawData reads the data column of the row of table with the key id.
func rawData(t *testing.T, s *Store, table, id string) string {
	t.Helper()
	var data string
	if err := s.rdb.QueryRowContext(t.Context(), `SELECT data FROM `+table+` WHERE id = ?`, id).Scan(&data); err != nil {
		t.Fatalf("read %s %s: %v", table, id, err)
	}
	return data
}

// Clients, users and pending requests are stored as JSON without HTML
// escapes: a <, > or & takes one byte on disk, not six (\u003c), and
// reads back as written.
func TestRowsKeepHTMLCharacters(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now().UTC().Truncate(time.Millisecond)
	state := strings.Repeat("<&>", 1000)
	r := &oauthd.AuthRequest{ID: "req", ClientID: "web", RedirectURI: "https://rp.example/cb?a=1&b=2",
		ResponseType: "code", State: state, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateAuthRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	c := &oauthd.Client{ID: "web", Name: "<b>Bits & Bytes</b>", RedirectURIs: []string{"https://rp.example/cb?a=1&b=2"}, CreatedAt: now}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	u := &oauthd.User{ID: "u1", Username: "ann", Claims: map[string]any{"name": "Ann <ann@example.com> & co"}, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}

	data := rawData(t, s, "auth_requests", "req")
	if strings.Contains(data, `\u00`) || !strings.Contains(data, state) || !strings.Contains(data, "cb?a=1&b=2") {
		t.Errorf("stored auth request %.200q...; want <, > and & unescaped", data)
	}
	if len(data) > len(state)+400 {
		t.Errorf("stored auth request: %d bytes for a %d-byte state; want about the state's size", len(data), len(state))
	}
	if data := rawData(t, s, "clients", "web"); !strings.Contains(data, `"<b>Bits & Bytes</b>"`) {
		t.Errorf("stored client %s; want the name unescaped", data)
	}
	if data := rawData(t, s, "users", "u1"); !strings.Contains(data, `"Ann <ann@example.com> & co"`) {
		t.Errorf("stored user %s; want the claim unescaped", data)
	}

	got, err := s.AuthRequest(ctx, "req")
	if err != nil || got.State != state || got.RedirectURI != r.RedirectURI {
		t.Errorf("AuthRequest = %+v, %v; want the state and redirect URI as written", got, err)
	}
	gc, err := s.Client(ctx, "web")
	if err != nil || gc.Name != c.Name {
		t.Errorf("Client = %+v, %v; want the name %q", gc, err, c.Name)
	}
	gu, err := s.User(ctx, "u1")
	if err != nil || gu.Claims["name"] != u.Claims["name"] {
		t.Errorf("User = %+v, %v; want the name claim %q", gu, err, u.Claims["name"])
	}
}

// Rows written before, with json.Marshal's HTML escapes, read as they
// did.
func TestRowsWithHTMLEscapesDecode(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	if _, err := s.ready(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	r := &oauthd.AuthRequest{ID: "old", ClientID: "web", State: "<&>", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	c := &oauthd.Client{ID: "web", Name: "A & B <c>", CreatedAt: now}
	u := &oauthd.User{ID: "u1", Username: "ann", Claims: map[string]any{"name": "<Ann & co>"}, CreatedAt: now, UpdatedAt: now}
	escaped := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `\u003c`) {
			t.Fatalf("json.Marshal(%T) = %s; want HTML escapes", v, b)
		}
		return string(b)
	}
	err := s.w.withConn(func(conn *sql.Conn) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO auth_requests (id, data, expires_at) VALUES (?, ?, ?)`, []any{r.ID, escaped(r), unixMS(r.ExpiresAt)}},
			{`INSERT INTO clients (id, data, created_at) VALUES (?, ?, ?)`, []any{c.ID, escaped(c), unixMS(now)}},
			{`INSERT INTO users (id, username, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`, []any{u.ID, u.Username, escaped(u), unixMS(now), unixMS(now)}},
		} {
			if _, err := conn.ExecContext(context.Background(), q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.AuthRequest(ctx, "old"); err != nil || got.State != "<&>" {
		t.Errorf("AuthRequest of an escaped row = %+v, %v; want the state <&>", got, err)
	}
	if got, err := s.Client(ctx, "web"); err != nil || got.Name != c.Name {
		t.Errorf("Client of an escaped row = %+v, %v; want the name %q", got, err, c.Name)
	}
	if got, err := s.UserByUsername(ctx, "ann"); err != nil || got.Claims["name"] != "<Ann & co>" {
		t.Errorf("UserByUsername of an escaped row = %+v, %v; want the name claim <Ann & co>", got, err)
	}
}

// A database that takes no writes (here the writer's connection made
// query_only: SQLITE_READONLY, as a read-only file system gives) makes
// every write fail, and WriteRefused says why; the store's answers
// (already exists) are no refusal. A full disk is tested in
// walfull_linux_test.go.
func TestWriteRefused(t *testing.T) {
	ctx := t.Context()
	s := openTemp(t)
	now := time.Now()
	c := &oauthd.Client{ID: "a", CreatedAt: now}
	if err := s.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateClient(ctx, c); !errors.Is(err, oauthd.ErrAlreadyExists) {
		t.Fatalf("CreateClient again: %v; want ErrAlreadyExists", err)
	} else if _, ok := WriteRefused(err); ok {
		t.Errorf("WriteRefused(%v) = true", err)
	}
	for _, err := range []error{nil, errors.New("boom"), oauthd.ErrUnavailable} {
		if _, ok := WriteRefused(err); ok {
			t.Errorf("WriteRefused(%v) = true", err)
		}
	}
	err := s.w.withConn(func(c *sql.Conn) error {
		_, err := c.ExecContext(ctx, `PRAGMA query_only = 1`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateClient(ctx, &oauthd.Client{ID: "b", CreatedAt: now})
	if reason, ok := WriteRefused(err); !ok || reason != "read-only" {
		t.Errorf("CreateClient on a read-only connection: %v (WriteRefused %q, %v); want read-only", err, reason, ok)
	}
	if _, err := s.Client(ctx, "a"); err != nil {
		t.Errorf("Client: %v; want reads to work", err)
	}
}
