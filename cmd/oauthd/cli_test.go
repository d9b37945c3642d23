package main

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// lines are the lines of a command's output.
func lines(s string) []string { return strings.Split(strings.TrimSuffix(s, "\n"), "\n") }

// Every command rejects arguments it does not take: exit 2, one line
// naming the argument, nothing done (no database created).
func TestUnexpectedArguments(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, tc := range []struct {
		args       []string
		extra      string // the argument named
		hint       string // also in the message
		dbNotTouch bool
	}{
		{[]string{"client", "create", "--redirect-uri", "https://a.example/cb", "--id", "x1", "--scope", "email", "profile", "--public"}, "profile",
			`to give several values, repeat --scope or quote them as one: --scope "email profile"`, true},
		{[]string{"client", "create", "--redirect-uri", "https://a.example/cb", "--scope=email", "profile"}, "profile", `--scope "email profile"`, true},
		{[]string{"client", "create", "--redirect-uri", "https://a.example/cb", "--name", "Web", "App"}, "App", `quote a value with spaces: --name "Web App"`, true},
		{[]string{"client", "create", "--public", "extra", "--redirect-uri", "https://a.example/cb"}, "extra", "it takes no arguments", true},
		{[]string{"version", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"--version", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"client", "list", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"migrate", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"user", "list", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"keys", "list", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"keys", "rotate", "--alg", "ES256", "RS256"}, "RS256", "repeat --alg", true},
		{[]string{"serve", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"config", "print", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"config", "check", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"bench", "extra"}, "extra", "it takes no arguments", true},
		{[]string{"backup", "a.db", "b.db"}, "b.db", "it takes one file to write the backup to", true},
		{[]string{"client", "show", "web", "extra"}, "extra", "it takes one client_id", true},
		{[]string{"client", "delete", "web", "extra"}, "extra", "it takes one client_id", true},
		{[]string{"client", "update", "web", "extra", "--name", "x"}, "extra", "it takes one client_id", true},
		{[]string{"user", "add", "ada", "extra"}, "extra", "it takes one username", true},
		{[]string{"user", "delete", "ada", "extra"}, "extra", "it takes one username", true},
		{[]string{"user", "passwd", "ada", "extra"}, "extra", "it takes one username", true},
		{[]string{"user", "claims", "ada", "--claim", "name=Ada", "Lovelace"}, "Lovelace",
			`quote a value with spaces: --claim "name=Ada Lovelace"; to give several values, repeat --claim`, true},
		{[]string{"grants", "list", "ada", "extra"}, "extra", "it takes one username", true},
		{[]string{"grants", "revoke", "ada", "web", "extra"}, "extra", "it takes a username and a client_id", true},
	} {
		code, out, errs := oauthdCmd(t, db, "pw\n", tc.args...)
		want := fmt.Sprintf("unexpected argument %q (", tc.extra)
		if code != 2 || out != "" || len(lines(errs)) != 1 || !strings.HasPrefix(errs, "oauthd ") ||
			!strings.Contains(errs, want) || !strings.Contains(errs, tc.hint) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line with %q and %q", tc.args, code, out, errs, want, tc.hint)
		}
		if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v created the database", tc.args)
		}
	}
	// Too few arguments is a usage error too.
	for _, args := range [][]string{{"client", "show"}, {"user", "add"}, {"grants", "revoke", "ada"}, {"backup"}} {
		if code, out, errs := oauthdCmd(t, db, "", args...); code != 2 || out != "" || len(lines(errs)) != 1 || !strings.Contains(errs, "expected ") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and what is expected", args, code, out, errs)
		}
	}
	// oauthd help COMMAND is the help of the command, not an extra argument.
	if code, out, errs := oauthdCmd(t, db, "", "help", "client", "create"); code != 0 || !strings.Contains(out, "-redirect-uri") || errs != "" {
		t.Errorf("help client create: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	// The hint's advice works.
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--redirect-uri", "https://a.example/cb", "--id", "x1", "--scope", "email profile", "--public"); code != 0 {
		t.Fatalf("client create with quoted scopes: %d %s", code, errs)
	}
	if code, out, _ := oauthdCmd(t, db, "", "client", "show", "x1"); code != 0 || !strings.Contains(out, "email profile") {
		t.Errorf("client show: %d %s; want the scopes email profile", code, out)
	}
}

// An error of the library, which starts with "oauthd: " itself, is
// printed with the prefix once.
func TestErrorPrefixOnce(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "migrate"); code != 0 {
		t.Fatalf("migrate: %s", errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "rotate", "--alg", "HS256"}, `oauthd: signing algorithm "HS256" is not supported`},
		{[]string{"client", "create", "--redirect-uri", "https://a.example/cb#frag"}, `oauthd: --redirect-uri: redirect URI "https://a.example/cb#frag" has a fragment`},
	} {
		code, _, errs := oauthdCmd(t, db, "", tc.args...)
		if code != 1 || !strings.HasPrefix(errs, tc.want) || strings.Count(errs, "oauthd: ") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and %q, with one oauthd: prefix", tc.args, code, errs, tc.want)
		}
	}
	for in, want := range map[string]string{
		"oauthd: x":                      "x",
		"oauthd: oauthd: x":              "x",
		"--db: oauthd: x":                "--db: x",
		"open: oauthd: read: oauthd: x":  "open: read: x",
		"no client \"oauthd: web\" here": "no client \"oauthd: web\" here",
	} {
		if got := errorMessage(errors.New(in)); got != want {
			t.Errorf("errorMessage(%q) = %q; want %q", in, got, want)
		}
	}
}

// A flag where a group's subcommand belongs asks for the subcommand
// and lists them.
func TestGroupFlagBeforeSubcommand(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"keys", "--db", "X"}, "oauthd keys: give a subcommand before flags: list, rotate\n"},
		{[]string{"client", "--db", "X", "list"}, "oauthd client: give a subcommand before flags: create, update, list, show, delete\n"},
		{[]string{"user", "--config=x.yaml"}, "oauthd user: give a subcommand before flags: add, list, delete, passwd, claims\n"},
		{[]string{"grants", "--db", "X"}, "oauthd grants: give a subcommand before flags: list, revoke\n"},
		{[]string{"config", "--config", "x.yaml"}, "oauthd config: give a subcommand before flags: print, check\n"},
		{[]string{"--db", "X", "client", "list"}, "oauthd: give a command before flags: serve, config, client"},
	} {
		code, out, errs := oauthdCmd(t, db, "", tc.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, tc.want) || strings.Contains(errs, "unknown") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, errs, tc.want)
		}
	}
	if code, _, errs := oauthdCmd(t, db, "", "keys", "frobnicate"); code != 2 || errs != "oauthd keys: unknown subcommand \"frobnicate\" (list, rotate)\n" {
		t.Errorf("keys frobnicate: exit %d, stderr %q", code, errs)
	}
}

// client update refuses to change nothing.
func TestClientUpdateNothingToChange(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb"); code != 0 {
		t.Fatalf("create: %s", errs)
	}
	for _, args := range [][]string{{"client", "update", "web"}, {"client", "update", "--db", db, "web"}} {
		code, out, errs := oauthdCmd(t, db, "", args...)
		if code != 2 || out != "" || len(lines(errs)) != 1 || !strings.HasPrefix(errs, "oauthd client update: nothing to change: give one of ") ||
			!strings.Contains(errs, "--name") || !strings.Contains(errs, "--rotate-secret") || !strings.Contains(errs, "--scope") || strings.Contains(errs, "--db") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and the flags that change a client", args, code, out, errs)
		}
	}
	if code, out, errs := oauthdCmd(t, db, "", "client", "update", "web", "--name", "Web"); code != 0 || !strings.Contains(out, "updated client web") {
		t.Errorf("update --name: %d %s %s", code, out, errs)
	}
}

// A wrong flag is told in one line, and the next points to --help; the
// usage itself is only printed when asked for.
func TestUnknownFlagOneLine(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, tc := range []struct {
		args    []string
		command string
		want    string
	}{
		{[]string{"serve", "--bogus"}, "serve", "flag provided but not defined: -bogus"},
		{[]string{"config", "print", "--bogus"}, "config print", "flag provided but not defined: -bogus"},
		{[]string{"client", "create", "--bogus"}, "client create", "-bogus"},
		{[]string{"client", "update", "web", "--access-token-ttl", "soon"}, "client update", `invalid value "soon" for flag -access-token-ttl: "soon" is not a duration such as 90s, 15m or 24h`},
		{[]string{"user", "claims", "ada", "--claim"}, "user claims", "flag needs an argument: -claim"},
		{[]string{"backup", "--bogus", "x.db"}, "backup", "-bogus"},
		{[]string{"bench", "--bogus"}, "bench", "-bogus"},
		{[]string{"version", "--bogus"}, "version", "-bogus"},
	} {
		code, out, errs := oauthdCmd(t, db, "", tc.args...)
		l := lines(errs)
		wantHelp := "Run 'oauthd " + tc.command + " --help' for usage."
		if code != 2 || out != "" || len(l) != 2 || !strings.HasPrefix(l[0], "oauthd "+tc.command+": ") || !strings.Contains(l[0], tc.want) || l[1] != wantHelp {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2, a line with %q and %q", tc.args, code, out, errs, tc.want, wantHelp)
		}
	}
	// --help still prints the whole usage, on standard output.
	code, out, errs := oauthdCmd(t, db, "", "serve", "--help")
	if code != 0 || errs != "" || !strings.Contains(out, "-addr") || !strings.Contains(out, "-issuer") {
		t.Errorf("serve --help: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// user claims gives the standard claims of OIDC Core §5.1 their types.
func TestUserClaimsTypes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "pw\n", "user", "add", "ada"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	for _, tc := range []struct{ claim, want string }{
		{"email_verified=maybe", "email_verified is a boolean: use true or false"},
		{"email_verified=1", "email_verified is a boolean"},
		{"phone_number_verified=nah", "phone_number_verified is a boolean: use true or false"},
		{`address="str"`, "address is a JSON object"},
		{"address=London", "address is a JSON object"},
		{"address=null", "address is a JSON object"},
		{"updated_at=yesterday", "updated_at is a number"},
		{"updated_at=-5", "updated_at is a number"},
		{"=x", "the claim name is empty"},
		{"#fr=x", "the claim name is empty"},
		{"name#=x", "a language tag follows the #"},
		{strings.Repeat("n", 257) + "=x", "a claim name of 257 bytes; at most 256"},
		{"custom={x", "not a JSON object"},
	} {
		for _, cmd := range [][]string{{"user", "claims", "ada"}, {"user", "add", "bob"}} {
			code, out, errs := oauthdCmd(t, db, "pw\n", append(cmd, "--claim", tc.claim)...)
			if code != 2 || out != "" || len(lines(errs)) != 1 || !strings.HasPrefix(errs, "oauthd "+strings.Join(cmd[:2], " ")+": --claim") || !strings.Contains(errs, tc.want) {
				t.Errorf("%v --claim %s: exit %d, stdout %q, stderr %q; want exit 2 and %q", cmd, tc.claim, code, out, errs, tc.want)
			}
		}
	}
	if code, out, _ := oauthdCmd(t, db, "", "user", "list"); code != 0 || strings.Contains(out, "bob") {
		t.Errorf("a user was added with a wrong claim")
	}
	code, out, errs := oauthdCmd(t, db, "", "user", "claims", "ada",
		"--claim", "name=true", "--claim", "name#fr=123", "--claim", "phone_number=15551234", "--claim", "locale=false",
		"--claim", "email_verified=false", "--claim", "phone_number_verified=true", "--claim", "updated_at=1767225600",
		"--claim", `address={"locality":"London"}`, "--claim", "custom=true", "--claim", "other=42", "--claim", `obj={"a":1}`,
		"--claim", strings.Repeat("n", 256)+"=long", "--claim", "website=https://a.example/?x=1&y=<2>")
	if code != 0 {
		t.Fatalf("user claims: %d %s", code, errs)
	}
	// Printed as given, not HTML-escaped (\u0026 for &).
	if !strings.Contains(out, `"https://a.example/?x=1&y=<2>"`) {
		t.Errorf("user claims printed %s; want the website with & < > as they are", out)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("output is not JSON: %s", out)
	}
	want := map[string]any{"name": "true", "name#fr": "123", "phone_number": "15551234", "locale": "false", "email_verified": false,
		"phone_number_verified": true, "updated_at": float64(1767225600), "custom": true, "other": "42", strings.Repeat("n", 256): "long"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("claim %s = %#v; want %#v", k, got[k], v)
		}
	}
	if a, _ := got["address"].(map[string]any); a["locality"] != "London" {
		t.Errorf("address = %#v", got["address"])
	}
	if o, _ := got["obj"].(map[string]any); o["a"] != float64(1) {
		t.Errorf("obj = %#v", got["obj"])
	}
}

// A logo is an https URL (the consent page loads images over https only);
// the client's home page may be http or https.
func TestClientLogoHTTPS(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb", "--logo-uri", "http://a.example/logo.png")
	if code == 0 || !strings.Contains(errs, "--logo-uri") || !strings.Contains(errs, "https") {
		t.Errorf("http logo: exit %d, stderr %q; want a refusal asking for https", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb",
		"--logo-uri", "https://a.example/logo.png", "--client-uri", "http://a.example/"); code != 0 {
		t.Errorf("https logo, http client URI: exit %d, %s", code, errs)
	}
}

// A command that reads does not wait for the write lock: another process
// (a server's batch, a backup) holding it does not hold up client list.
func TestListWhileAnotherProcessWrites(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb"); code != 0 {
		t.Fatalf("create: %s", errs)
	}
	other, err := sql.Open("sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(t.Context(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	defer c.ExecContext(t.Context(), `ROLLBACK`)
	start := time.Now()
	code, out, errs := oauthdCmd(t, db, "", "client", "list")
	if code != 0 || !strings.Contains(out, "web") {
		t.Errorf("client list while another process holds the write lock: exit %d, %q %q", code, out, errs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("client list took %s behind another process's write lock; want no wait for it", d)
	}
}

// The CLI stores only registrations the Provider serves (Client.Validate):
// a client_id with a space, or a home page URL without a host, had been
// stored and then refused at every request for the client.
func TestClientCreateRefusesWhatTheServerRefuses(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, tc := range []struct {
		name, flag string
		args       []string
	}{
		{"client_id with a space", "--id", []string{"--id", "my client"}},
		{"client_id with a zero-width space", "--id", []string{"--id", "web\u200b"}},
		{"client_id with a tab", "--id", []string{"--id", "a\tb"}},
		{"RFC6749_A.1/client_id outside printable ASCII", "--id", []string{"--id", "caf\u00e9"}},
		{"RFC6749_A.1/client_id with a newline", "--id", []string{"--id", "nl\nid"}},
		{"client URI without a host", "--client-uri", []string{"--id", "web", "--client-uri", "http://"}},
		{"client URI of another scheme", "--client-uri", []string{"--id", "web", "--client-uri", "ftp://a.example/"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"client", "create", "--redirect-uri", "https://a.example/cb"}, tc.args...)
			code, out, errs := oauthdCmd(t, db, "", args...)
			if code == 0 || !strings.Contains(errs, tc.flag) {
				t.Errorf("exit %d, stderr %q; want a refusal naming %s", code, errs, tc.flag)
			}
			if strings.Contains(out, "client_secret") {
				t.Errorf("a secret was printed for a refused client: %q", out)
			}
		})
	}
	// Refused before anything was written: not even the database file.
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after the refusals, the database file: %v; want none", err)
	}
	// client update runs the same checks.
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb"); code != 0 {
		t.Fatalf("create: %s", errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "update", "web", "--client-uri", "https://"); code == 0 || !strings.Contains(errs, "--client-uri") {
		t.Errorf("update with a URI without a host: exit %d, stderr %q", code, errs)
	}
}

// Sign-in compares usernames byte for byte, so user add refuses names
// that would be accounts of their own while people take them for another:
// invisible and control characters, compatibility and decomposed forms
// (RFC 8265 §3.4 maps width and normalizes to NFC), and a name that
// differs from an existing one only in case.
func TestUserAddRefusesLookalikeUsernames(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "correct-horse\n", "user", "add", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("add admin: %s", errs)
	}
	for _, tc := range []struct{ name, username, want string }{
		{"zero-width space", "ad\u200bmin", "invisible"},
		{"no-break space", "admin\u00a0", "invisible"},
		{"bidirectional override", "rtl\u202eevil", "invisible"},
		{"control character", "ctl\x01", "control"},
		{"invalid UTF-8", "bad\xffname", "UTF-8"},
		{"RFC8265_3.4/full-width", "ａｄｍｉｎ2", `write it "admin2"`},
		{"RFC8265_3.4/decomposed accent", "cafe\u0301", "write it \"caf\u00e9\""},
		{"ligature", "\ufb01le", `write it "file"`},
		{"case variant of admin", "Admin", "only in case"},
		{"too long", strings.Repeat("a", 257), "at most 256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := oauthdCmd(t, db, "correct-horse\n", "user", "add", tc.username, "--password-stdin")
			if code == 0 || !strings.Contains(errs, tc.want) {
				t.Errorf("user add %q: exit %d, stderr %q; want a refusal saying %q", tc.username, code, errs, tc.want)
			}
		})
	}
	if code, _, errs := oauthdCmd(t, db, "correct-horse\n", "user", "add", "caf\u00e9", "--password-stdin"); code != 0 {
		t.Errorf("user add café (NFC): exit %d, %s; want it added", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "bad\xffpassword\n", "user", "add", "bob", "--password-stdin"); code == 0 || !strings.Contains(errs, "UTF-8") {
		t.Errorf("a password of invalid UTF-8: exit %d, %q; want a refusal (the login form could never send it)", code, errs)
	}
	code, out, _ := oauthdCmd(t, db, "", "user", "list")
	if code != 0 || strings.Count(out, "\n") != 3 { // the header, admin, café
		t.Errorf("user list: %q; want admin and café only", out)
	}
}
