package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/internal/app"
)

// oauthdEnv runs a command with environment variables.
func oauthdEnv(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	code := run(context.Background(), args, e)
	return code, out.String(), errb.String()
}

func TestKeysCommands(t *testing.T) { testKeysCommands(t, filepath.Join(t.TempDir(), "o.db")) }

// testKeysCommands runs the keys commands on the database db.
func testKeysCommands(t *testing.T, db string) {
	kek := map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ENCRYPTION_KEY": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}
	code, out, errs := oauthdEnv(t, kek, "keys", "list")
	if code != 0 || strings.Count(out, "signing") != 3 || !strings.Contains(out, "RS256") || !strings.Contains(out, "EdDSA") ||
		strings.Contains(out, " no\n") {
		t.Fatalf("keys list: %d %s %s; want three encrypted signing keys", code, out, errs)
	}
	code, out, errs = oauthdEnv(t, kek, "keys", "rotate", "--alg", "ES256")
	if code != 0 || strings.Count(out, "next") != 1 || !strings.Contains(out, "ES256") {
		t.Fatalf("keys rotate: %d %s %s", code, out, errs)
	}
	if _, out, _ = oauthdEnv(t, kek, "keys", "list"); strings.Count(out, "\n") != 5 {
		t.Errorf("keys list after rotate:\n%s; want 4 keys", out)
	}
	// The ES256 key the new one replaces signs until the new one starts,
	// not until its own scheduled retirement.
	var from, until []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 5 && f[1] == "ES256" {
			from, until = append(from, f[3]), append(until, f[4])
		}
	}
	if len(from) != 2 || !(until[0] == from[1] || until[1] == from[0]) {
		t.Errorf("keys list after rotate:\n%s; want the old ES256 key to sign until the new one's start", out)
	}
	for name, c := range map[string]struct {
		vars map[string]string
		cmd  string
	}{
		// keys list lists from the records without the key
		// (TestKeysCommandsReadConfig); rotate must encrypt what it stores.
		"missing key": {map[string]string{"OAUTHD_DB": db}, "rotate"},
		"wrong key":   {map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ENCRYPTION_KEY": "CAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAg="}, "list"},
		"short key":   {map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ENCRYPTION_KEY": "c2hvcnQ="}, "list"},
	} {
		if code, _, errs := oauthdEnv(t, c.vars, "keys", c.cmd); code != 1 || !strings.Contains(strings.ToLower(errs), "key") {
			t.Errorf("%s: %d %s; want an error", name, code, errs)
		}
	}
	if code, _, errs := oauthdEnv(t, kek, "keys", "rotate", "--alg", "HS256"); code != 1 || !strings.Contains(errs, "HS256") {
		t.Errorf("rotate HS256: %d %s", code, errs)
	}
	if code, _, _ := oauthdEnv(t, kek, "keys", "list", "--key-rotation-period", "5m"); code != 1 {
		t.Errorf("a 5m rotation period was accepted")
	}
}

func TestUserClaimsCommand(t *testing.T) {
	testUserClaimsCommand(t, filepath.Join(t.TempDir(), "o.db"))
}

// testUserClaimsCommand runs the user claims command on the database db.
func testUserClaimsCommand(t *testing.T, db string) {
	vars := map[string]string{"OAUTHD_DB": db}
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader("pw\n"), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	if code := run(context.Background(), []string{"user", "add", "ada", "--claim", "name=Ada Lovelace"}, e); code != 0 {
		t.Fatalf("user add: %s", errb.String())
	}
	code, out2, errs := oauthdEnv(t, vars, "user", "claims", "ada", "--claim", "email=ada@example.com", "--claim", "email_verified=true",
		"--claim", `address={"locality":"London","country":"UK"}`, "--claim", "name#fr=Ada Lovelace (fr)")
	if code != 0 {
		t.Fatalf("user claims: %d %s", code, errs)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out2), &got); err != nil {
		t.Fatalf("output is not JSON: %s", out2)
	}
	addr, _ := got["address"].(map[string]any)
	if got["name"] != "Ada Lovelace" || got["email_verified"] != true || addr["locality"] != "London" || got["name#fr"] != "Ada Lovelace (fr)" {
		t.Errorf("claims = %v", got)
	}
	if code, out2, _ = oauthdEnv(t, vars, "user", "claims", "ada", "--unset", "address"); code != 0 || strings.Contains(out2, "address") {
		t.Errorf("unset: %s", out2)
	}
	for _, bad := range []string{"sub=x", "noequals", "address={not json"} {
		if code, _, _ := oauthdEnv(t, vars, "user", "claims", "ada", "--claim", bad); code != 2 {
			t.Errorf("--claim %s accepted", bad)
		}
	}
	if code, _, _ := oauthdEnv(t, vars, "user", "claims", "nobody"); code != 1 {
		t.Error("claims of an unknown user")
	}
}

// A client_id cannot be a user's sub.
func TestClientIDNotASubject(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	vars := map[string]string{"OAUTHD_DB": db}
	var out, errb bytes.Buffer
	e := &env{stdin: strings.NewReader("pw\n"), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	if code := run(context.Background(), []string{"user", "add", "ada"}, e); code != 0 {
		t.Fatalf("user add: %s", errb.String())
	}
	sub := strings.TrimSuffix(strings.TrimSpace(out.String()[strings.Index(out.String(), "(sub ")+5:]), ")")
	code, _, errs := oauthdEnv(t, vars, "client", "create", "--id", sub, "--redirect-uri", "https://rp.example/cb")
	if code != 1 || !strings.Contains(errs, "sub of a user") {
		t.Errorf("client with a user's sub as id: %d %s", code, errs)
	}
}

// --response-type keeps multi-valued response types whole.
func TestClientResponseTypeFlag(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	vars := map[string]string{"OAUTHD_DB": db}
	code, _, errs := oauthdEnv(t, vars, "client", "create", "--id", "hy", "--redirect-uri", "https://rp.example/cb",
		"--grant", "authorization_code,implicit", "--response-type", "code id_token,code", "--response-type", "id_token token", "--scope", "openid")
	if code != 0 {
		t.Fatalf("create: %s", errs)
	}
	s, err := app.OpenStore(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Client(context.Background(), "hy")
	if err != nil || strings.Join(c.ResponseTypes, "|") != "code id_token|code|id_token token" {
		t.Errorf("response types = %q, %v", c.ResponseTypes, err)
	}
}
