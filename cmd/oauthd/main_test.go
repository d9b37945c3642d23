package main

import (
	"bytes"
	"context"
	"net/url"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/secret"
)

// oauthd runs a command against db and returns its exit code and output.
func oauthdCmd(t *testing.T, db, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: func(k string) string {
		if k == "OAUTHD_DB" {
			return db
		}
		return ""
	}}
	code := run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

func TestClientCommands(t *testing.T) { testClientCommands(t, filepath.Join(t.TempDir(), "o.db")) }

// testClientCommands runs the client commands on the database db.
func testClientCommands(t *testing.T, db string) {
	code, out, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--secret", "s3cret", "--redirect-uri", "https://app.example/cb",
		"--scope", "openid email", "--name", "Web App")
	if code != 0 || !strings.Contains(out, "client_id:     web") || !strings.Contains(out, "client_secret: s3cret") ||
		!strings.Contains(out, "/oauth/authorize?") || !strings.Contains(out, "curl ") {
		t.Fatalf("create: %d %s %s", code, out, errs)
	}
	code, _, errs = oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://app.example/cb")
	if code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("duplicate id: %d %s", code, errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--redirect-uri", "http://evil.example/cb"}, "--redirect-uri"},
		{[]string{"--redirect-uri", "https://a.example/cb#frag"}, "fragment"},
		{[]string{"--grant", "magic", "--redirect-uri", "https://a.example/cb"}, "--grant"},
		{[]string{}, "--redirect-uri is required"},
		{[]string{"--public", "--grant", "client_credentials"}, "public client"},
		{[]string{"--redirect-uri", "https://a.example/cb", "--auth-method", "private_key_jwt"}, "--auth-method"},
		{[]string{"--redirect-uri", "https://a.example/cb", "--scope", `a"b`}, "--scope"},
	} {
		code, _, errs := oauthdCmd(t, db, "", append([]string{"client", "create"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("create %v: %d %q; want an error naming %s", tc.args, code, errs, tc.want)
		}
	}
	code, out, _ = oauthdCmd(t, db, "", "client", "create", "--public", "--redirect-uri", "http://127.0.0.1/cb")
	if code != 0 || !strings.Contains(out, "public client") || !strings.Contains(out, "code_challenge") {
		t.Errorf("public create: %d %s", code, out)
	}
	// RFC 7636 §4.2: the printed verifier is the one whose S256 hash is
	// the printed URL's code_challenge, so the example works as printed.
	if challenge, verifier := printedPKCE(t, out); oauthd.S256Challenge(verifier) != challenge {
		t.Errorf("public create: code_verifier %q does not match code_challenge %q", verifier, challenge)
	}
	code, out, _ = oauthdCmd(t, db, "", "client", "list")
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "public") {
		t.Errorf("list: %s", out)
	}
	code, out, _ = oauthdCmd(t, db, "", "client", "update", "web", "--skip-consent", "--rotate-secret", "--access-token-ttl", "5m")
	if code != 0 || !strings.Contains(out, "client_secret:") {
		t.Fatalf("update: %d %s", code, out)
	}
	newSecret := strings.Fields(out[strings.Index(out, "client_secret:"):])[1]
	s, err := app.OpenStore(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Client(context.Background(), "web")
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	if !c.SkipConsent || c.AccessTokenTTL != 5*time.Minute || c.Name != "Web App" || len(c.Scopes) != 2 || !secret.Verify(c.SecretHash, newSecret) || secret.Verify(c.SecretHash, "s3cret") {
		t.Errorf("after update: %+v", c)
	}
	code, out, _ = oauthdCmd(t, db, "", "client", "show", "web")
	if code != 0 || !strings.Contains(out, "skip_consent:") || strings.Contains(out, "secret_hash") || strings.Contains(out, "argon2") {
		t.Errorf("show: %s", out)
	}
	if code, _, _ = oauthdCmd(t, db, "", "client", "delete", "web"); code != 0 {
		t.Error("delete failed")
	}
	if code, _, errs = oauthdCmd(t, db, "", "client", "delete", "web"); code != 1 || !strings.Contains(errs, "no client") {
		t.Errorf("second delete: %d %s", code, errs)
	}
}

func TestUserCommands(t *testing.T) { testUserCommands(t, filepath.Join(t.TempDir(), "o.db")) }

// testUserCommands runs the user and grants commands on the database db.
func testUserCommands(t *testing.T, db string) {
	code, out, errs := oauthdCmd(t, db, "pw-one\n", "user", "add", "alice", "--claim", "email=alice@example.com", "--claim", "email_verified=true")
	if code != 0 || !strings.Contains(out, "added user alice") {
		t.Fatalf("add: %d %s %s", code, out, errs)
	}
	if code, _, errs = oauthdCmd(t, db, "x\n", "user", "add", "alice"); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("duplicate: %d %s", code, errs)
	}
	if code, _, errs = oauthdCmd(t, db, "", "user", "add", "bob"); code != 1 || !strings.Contains(errs, "password") {
		t.Errorf("no password: %d %s", code, errs)
	}
	before := time.Now()
	if code, out, _ = oauthdCmd(t, db, "pw-two\n", "user", "passwd", "alice", "--password-stdin"); code != 0 || !strings.Contains(out, "signed out of every browser") {
		t.Errorf("passwd: %d %s", code, out)
	}
	s, _ := app.OpenStore(context.Background(), db, true)
	u, err := s.UserByUsername(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if !secret.Verify(u.PasswordHash, "pw-two") || secret.Verify(u.PasswordHash, "pw-one") || u.Claims["email_verified"] != true {
		t.Errorf("user after passwd: %+v", u)
	}
	if u.PasswordChangedAt.Before(before.Truncate(time.Millisecond)) {
		t.Errorf("PasswordChangedAt %v; want the time of passwd (after %v), which ends older sessions", u.PasswordChangedAt, before)
	}
	// a remembered consent and a token, then grants list and revoke
	now := time.Now()
	// grants list shows consents of clients that exist (and predate them).
	s.CreateClient(context.Background(), &oauthd.Client{ID: "web", RedirectURIs: []string{"https://web.example/cb"}, CreatedAt: now})
	s.SaveConsent(context.Background(), &oauthd.Consent{UserID: u.ID, ClientID: "web", Scopes: []string{"email"}, CreatedAt: now, UpdatedAt: now})
	s.CreateTokens(context.Background(), &oauthd.Token{Hash: "h1", Kind: oauthd.AccessToken, GrantID: "g", ClientID: "web", Subject: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	s.Close()
	code, out, _ = oauthdCmd(t, db, "", "grants", "list", "alice")
	if code != 0 || !strings.Contains(out, "web") || !strings.Contains(out, "email") {
		t.Errorf("grants list: %s", out)
	}
	if code, out, _ = oauthdCmd(t, db, "", "grants", "revoke", "alice", "web"); code != 0 || !strings.Contains(out, "revoked the consent") {
		t.Errorf("grants revoke: %s", out)
	}
	s, _ = app.OpenStore(context.Background(), db, true)
	if _, err := s.Token(context.Background(), "h1"); err == nil {
		t.Error("revoking the consent left its token")
	}
	// Approved without "remember": no consent, but a token to revoke.
	s.CreateClient(context.Background(), &oauthd.Client{ID: "app2", RedirectURIs: []string{"https://app2.example/cb"}, CreatedAt: now})
	s.CreateTokens(context.Background(), &oauthd.Token{Hash: "h2", Kind: oauthd.AccessToken, GrantID: "g2", ClientID: "app2", Subject: u.ID, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	s.Close()
	if code, out, _ = oauthdCmd(t, db, "", "grants", "revoke", "alice", "app2"); code != 0 || !strings.Contains(out, "no remembered consent") {
		t.Errorf("grants revoke without a consent: %d %s", code, out)
	}
	s, _ = app.OpenStore(context.Background(), db, true)
	if _, err := s.Token(context.Background(), "h2"); err == nil {
		t.Error("grants revoke without a consent left the token")
	}
	s.Close()
	if code, _, errs := oauthdCmd(t, db, "", "grants", "revoke", "alice", "nosuchclient"); code != 1 || !strings.Contains(errs, "no client") {
		t.Errorf("grants revoke of an unknown client: %d %s", code, errs)
	}
	code, out, _ = oauthdCmd(t, db, "", "user", "list")
	if code != 0 || !strings.Contains(out, "alice") || strings.Contains(out, "argon2") {
		t.Errorf("list: %s", out)
	}
	if code, _, _ = oauthdCmd(t, db, "", "user", "delete", "alice"); code != 0 {
		t.Error("delete failed")
	}
}

func TestUsage(t *testing.T) {
	if code, _, _ := oauthdCmd(t, "x.db", "", "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d; want 2", code)
	}
	if code, _, errs := oauthdCmd(t, "x.db", "", "serve", "--no-such-flag"); code != 2 || !strings.Contains(errs, "no-such-flag") {
		t.Errorf("bad flag: %d %s", code, errs)
	}
}

// printedPKCE returns the code_challenge of the authorize URL and the
// code_verifier of the curl that client create printed.
func printedPKCE(t *testing.T, out string) (challenge, verifier string) {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if u, err := url.Parse(f); err == nil && u.Query().Get("code_challenge") != "" {
			challenge = u.Query().Get("code_challenge")
		}
		if v, ok := strings.CutPrefix(strings.Trim(f, "'"), "code_verifier="); ok {
			verifier = v
		}
	}
	if challenge == "" || verifier == "" {
		t.Fatalf("no code_challenge and code_verifier in %s", out)
	}
	return challenge, verifier
}

// Asking any command for help prints it on standard output and exits 0;
// a wrong flag or a missing subcommand exits 2 with the usage on standard
// error.
func TestHelp(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, args := range [][]string{
		{"--help"}, {"help"}, {"serve", "--help"}, {"serve", "-h"}, {"config", "print", "--help"}, {"config", "--help"},
		{"client", "--help"}, {"client", "help"}, {"client", "create", "--help"}, {"client", "update", "web", "-h"},
		{"user", "--help"}, {"user", "add", "--help"}, {"keys", "-h"}, {"keys", "rotate", "--help"},
		{"grants", "--help"}, {"grants", "revoke", "--help"}, {"migrate", "--help"}, {"bench", "--help"}, {"backup", "--help"},
		{"version", "--help"}, {"help", "keys", "rotate"},
	} {
		code, out, errs := oauthdCmd(t, db, "", args...)
		if code != 0 || !strings.Contains(strings.ToLower(out), "usage") || errs != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 0 and the usage on stdout", args, code, out, errs)
		}
	}
	for _, args := range [][]string{{}, {"client"}, {"serve", "--bogus"}, {"client", "create", "--bogus"}, {"user", "frobnicate"}} {
		code, out, errs := oauthdCmd(t, db, "", args...)
		if code != 2 || errs == "" || out != "" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and the reason on stderr", args, code, out, errs)
		}
	}
}

// oauthd backup copies the database into a new file that the other
// commands open as the database; it never overwrites a file.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	db, to := filepath.Join(dir, "o.db"), filepath.Join(dir, "copy.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://app.example/cb"); code != 0 {
		t.Fatalf("client create: %s", errs)
	}
	if code, out, errs := oauthdCmd(t, db, "", "backup", to); code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("backup: %d %s %s", code, out, errs)
	}
	if code, out, _ := oauthdCmd(t, to, "", "client", "list"); code != 0 || !strings.Contains(out, "web") {
		t.Errorf("client list of the backup: %d %s", code, out)
	}
	if code, _, errs := oauthdCmd(t, db, "", "backup", to); code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("backup into an existing file: %d %s", code, errs)
	}
	if code, _, errs := oauthdCmd(t, "postgres://u@127.0.0.1:1/x", "", "backup", filepath.Join(dir, "pg.db")); code != 1 || !strings.Contains(errs, "pg_dump") {
		t.Errorf("backup of PostgreSQL: %d %s", code, errs)
	}
}

// "client delete" then "client create" under the same client_id, as a
// script runs them: the new client gets none of the old one's records,
// even one made the moment before the deletion.
func TestClientDeleteThenCreateStartsClean(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "svc", "--grant", "client_credentials", "--scope", "read"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	last := time.Now() // a token issued just before the deletion
	if code, _, errs := oauthdCmd(t, db, "", "client", "delete", "svc"); code != 0 {
		t.Fatalf("delete: %d %s", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "svc", "--grant", "client_credentials", "--scope", "read"); code != 0 {
		t.Fatalf("create again: %d %s", code, errs)
	}
	s, err := app.OpenStore(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Client(context.Background(), "svc")
	if err != nil {
		t.Fatal(err)
	}
	// A server may issue a token from its cached client up to a second
	// after the deletion.
	if !c.Predates(last) || !c.Predates(last.Add(time.Second)) {
		t.Errorf("the client registered again (at %v) would take a record of the deleted one made at %v", c.CreatedAt, last)
	}
}

// oauthd version names the build even when -X main.version was not set:
// the module version of a go install, else the commit built.
func TestVersionString(t *testing.T) {
	info := func(main string, settings ...debug.BuildSetting) func() (*debug.BuildInfo, bool) {
		return func() (*debug.BuildInfo, bool) {
			return &debug.BuildInfo{Main: debug.Module{Version: main}, Settings: settings}, true
		}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "0123456789abcdef0123"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	for _, c := range []struct {
		name, set string
		info      func() (*debug.BuildInfo, bool)
		want      string
	}{
		{"ldflags", "v1.2.3", info("v9"), "v1.2.3"},
		{"go install @version", "dev", info("v0.4.0"), "v0.4.0"},
		{"a clone's commit", "dev", info("(devel)", rev), "dev-0123456789ab"},
		{"uncommitted changes", "dev", info("(devel)", rev, dirty), "dev-0123456789ab+dirty"},
		{"nothing known", "dev", info("(devel)"), "dev"},
		{"no build info", "dev", func() (*debug.BuildInfo, bool) { return nil, false }, "dev"},
	} {
		if got := versionString(c.set, c.info); got != c.want {
			t.Errorf("%s: %q; want %q", c.name, got, c.want)
		}
	}
}
