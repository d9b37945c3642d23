package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/memstore"
)

// storedRedirects is the redirect URIs stored for the client id in db.
func storedRedirects(t *testing.T, db, id string) []string {
	t.Helper()
	s, err := app.OpenStore(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := s.Client(context.Background(), id)
	if err != nil {
		t.Fatalf("client %s: %v", id, err)
	}
	return c.RedirectURIs
}

// A --redirect-uri value with whitespace is refused whole (not split into
// several URIs, nor reported by its first word), and the message says to
// repeat the flag; repeating it registers several URIs.
func TestRedirectURIWithSpaces(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"client", "create", "--id", "web", "--redirect-uri", "not a url"}, "redirect-uri"},
		{[]string{"client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb https://b.example/cb"}, "redirect-uri"},
		{[]string{"client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb\thttps://b.example/cb"}, "redirect-uri"},
		{[]string{"client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb", "--post-logout-redirect-uri", "https://a.example/ https://b.example/"}, "post-logout-redirect-uri"},
	} {
		value := tc.args[len(tc.args)-1]
		code, out, errs := oauthdCmd(t, db, "", tc.args...)
		if code != 2 || out != "" || !strings.HasPrefix(errs, "oauthd client create: ") || !strings.Contains(errs, strconv.Quote(value)) ||
			!strings.Contains(errs, "repeat --"+tc.flag) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2, the whole value and 'repeat --%s'", value, code, out, errs, tc.flag)
		}
		if strings.Contains(errs, `"not"`) {
			t.Errorf("%q: the message names the first word alone: %q", value, errs)
		}
		if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%q: the database was created", value)
		}
	}
	// Two URIs not quoted: the second is an extra argument, and the hint
	// says to repeat the flag, not to quote them as one.
	code, _, errs := oauthdCmd(t, db, "", "client", "create", "--redirect-uri", "https://a.example/cb", "https://b.example/cb")
	if code != 2 || !strings.Contains(errs, "repeat it for several") || strings.Contains(errs, "quote them") {
		t.Errorf("unquoted second URI: exit %d, stderr %q; want the advice to repeat --redirect-uri", code, errs)
	}
	// Repeated, they are registered; and client update refuses spaces too.
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb",
		"--redirect-uri", "https://b.example/cb"); code != 0 {
		t.Fatalf("two --redirect-uri: exit %d, %s", code, errs)
	}
	if got := strings.Join(storedRedirects(t, db, "web"), " "); got != "https://a.example/cb https://b.example/cb" {
		t.Errorf("redirect URIs = %q", got)
	}
	code, _, errs = oauthdCmd(t, db, "", "client", "update", "web", "--redirect-uri", "https://c.example/cb https://d.example/cb")
	if code != 2 || !strings.Contains(errs, `"https://c.example/cb https://d.example/cb"`) || !strings.Contains(errs, "repeat --redirect-uri") {
		t.Errorf("update with spaces: exit %d, stderr %q", code, errs)
	}
	if got := strings.Join(storedRedirects(t, db, "web"), " "); got != "https://a.example/cb https://b.example/cb" {
		t.Errorf("after a refused update, redirect URIs = %q", got)
	}
}

// A bad rotation period is named as it was given: the environment
// variable when no flag was.
func TestKeyRotationPeriodSource(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
		not  string
	}{
		{map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ROTATION_PERIOD": "banana"}, []string{"keys", "list"},
			`OAUTHD_KEY_ROTATION_PERIOD "banana": use a duration of at least 1h`, "--key-rotation-period"},
		{map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ROTATION_PERIOD": "5m"}, []string{"keys", "rotate"},
			`OAUTHD_KEY_ROTATION_PERIOD "5m"`, "--key-rotation-period"},
		{map[string]string{"OAUTHD_DB": db}, []string{"keys", "list", "--key-rotation-period", "banana"},
			`--key-rotation-period "banana"`, "OAUTHD_KEY_ROTATION_PERIOD"},
		{map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ROTATION_PERIOD": "720h"}, []string{"keys", "list", "--key-rotation-period", "banana"},
			`--key-rotation-period "banana"`, "OAUTHD_KEY_ROTATION_PERIOD"},
	} {
		code, out, errs := oauthdEnv(t, tc.vars, tc.args...)
		if code != 1 || out != "" || !strings.Contains(errs, tc.want) || strings.Contains(errs, tc.not) {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want exit 1 and %q, not %q", tc.vars, tc.args, code, out, errs, tc.want, tc.not)
		}
	}
	// The flag wins over a bad variable.
	vars := map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ROTATION_PERIOD": "banana"}
	if code, _, errs := oauthdEnv(t, vars, "keys", "list", "--key-rotation-period", "720h"); code != 0 {
		t.Errorf("a good flag over a bad variable: exit %d, %s", code, errs)
	}
}

// keys rotate on a database whose keys are encrypted, without the key
// encryption key, says how to give it.
func TestKeysRotateWithoutKEKNamesTheFix(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	kek := map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ENCRYPTION_KEY": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}
	if code, _, errs := oauthdEnv(t, kek, "keys", "list"); code != 0 {
		t.Fatalf("keys list: %s", errs)
	}
	code, out, errs := oauthdEnv(t, map[string]string{"OAUTHD_DB": db}, "keys", "rotate", "--alg", "ES256")
	if code != 1 || out != "" || len(lines(errs)) != 1 || !strings.Contains(errs, "encrypted at rest") ||
		!strings.Contains(errs, "set OAUTHD_KEY_ENCRYPTION_KEY") || !strings.Contains(errs, "key.encryption_key") {
		t.Errorf("keys rotate without the key: exit %d, stdout %q, stderr %q; want exit 1 and one line naming OAUTHD_KEY_ENCRYPTION_KEY and key.encryption_key", code, out, errs)
	}
	// Nothing was rotated: with the key, the list has the three first keys.
	if code, out, errs := oauthdEnv(t, kek, "keys", "list"); code != 0 || strings.Count(out, "\n") != 4 {
		t.Errorf("keys list after the refused rotation: %d %s %s; want 3 keys", code, out, errs)
	}
}

// keys rotate with a key encryption key on a database whose keys are not
// encrypted warns that servers without it cannot use the new keys, and
// until when to give it to them; a rotation with the keys all encrypted,
// or none, does not.
func TestKeysRotateWarnsOfMixedEncryption(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	kek := map[string]string{"OAUTHD_DB": db, "OAUTHD_KEY_ENCRYPTION_KEY": "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="}
	if code, _, errs := oauthdEnv(t, map[string]string{"OAUTHD_DB": db}, "keys", "rotate", "--alg", "ES256"); code != 0 || strings.Contains(errs, "warning") {
		t.Fatalf("keys rotate without encryption: exit %d, stderr %q; want no warning", code, errs)
	}
	code, out, errs := oauthdEnv(t, kek, "keys", "rotate", "--alg", "ES256")
	if code != 0 || !strings.Contains(out, "ES256") {
		t.Fatalf("keys rotate with a key encryption key: exit %d, %s %s", code, out, errs)
	}
	if !strings.Contains(errs, "warning") || !strings.Contains(errs, "OAUTHD_KEY_ENCRYPTION_KEY") || !strings.Contains(errs, "cannot use the new keys") ||
		strings.Contains(errs, kek["OAUTHD_KEY_ENCRYPTION_KEY"]) {
		t.Errorf("stderr %q; want a warning naming OAUTHD_KEY_ENCRYPTION_KEY, not its value", errs)
	}
}

// keys rotate counts an algorithm given twice once; a second rotation
// right after the first ends the publication of the key it replaced
// before that key signed for long, rather than a rotation period later.
func TestKeysRotateRepeatedAlg(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	vars := map[string]string{"OAUTHD_DB": db}
	if code, _, errs := oauthdEnv(t, vars, "keys", "list"); code != 0 {
		t.Fatalf("keys list: %s", errs)
	}
	for _, args := range [][]string{{"--alg", "RS256", "--alg", "RS256"}, {"--alg", "RS256,RS256"}} {
		code, out, errs := oauthdEnv(t, vars, append([]string{"keys", "rotate"}, args...)...)
		if code != 0 || strings.Count(out, " next ") != 1 {
			t.Errorf("keys rotate %v: exit %d, %s %s; want one next RS256 key", args, code, out, errs)
		}
	}
	_, out, _ := oauthdEnv(t, vars, "keys", "list")
	var rs [][]string // KID ALG STATE FROM UNTIL PUBLISHED ENCRYPTED
	for _, l := range lines(out)[1:] {
		if f := strings.Fields(l); len(f) == 7 && f[1] == "RS256" {
			rs = append(rs, f)
		}
	}
	if len(rs) != 3 {
		t.Fatalf("keys list:\n%s; want 3 RS256 keys (the first and one per rotation)", out)
	}
	// The first rotation's key signs until the second's starts, and is
	// published until then plus the ID tokens' lifetime and a margin,
	// not for the rotation period.
	first, second := rs[1], rs[2]
	from, _ := time.Parse(time.RFC3339, second[3])
	until, _ := time.Parse(time.RFC3339, first[4])
	published, _ := time.Parse(time.RFC3339, first[5])
	if !until.Equal(from) || published.After(from.Add(24*time.Hour)) {
		t.Errorf("keys list:\n%s; want the first rotation's key to sign until the second's starts, and published for at most a day more", out)
	}
}

// client update --rotate-secret --secret S is a usage error naming both
// flags, and changes nothing; the secret is not shown.
func TestRotateSecretConflictsWithSecret(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example/cb"); code != 0 {
		t.Fatalf("create: %s", errs)
	}
	for _, args := range [][]string{
		{"client", "update", "web", "--rotate-secret", "--secret", "foo-foo-foo-foo-foo"},
		{"client", "update", "--secret=foo-foo-foo-foo-foo", "web", "--rotate-secret", "--name", "Web"},
	} {
		code, out, errs := oauthdCmd(t, db, "", args...)
		if code != 2 || out != "" || len(lines(errs)) != 1 || !strings.HasPrefix(errs, "oauthd client update: ") ||
			!strings.Contains(errs, "--rotate-secret") || !strings.Contains(errs, "--secret") || !strings.Contains(errs, "conflict") ||
			strings.Contains(errs, "foo-foo") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line naming both flags, without the secret", args, code, out, errs)
		}
	}
	if _, out, _ := oauthdCmd(t, db, "", "client", "show", "web"); strings.Contains(out, "Web") {
		t.Errorf("the refused update changed the client:\n%s", out)
	}
	// Each alone still works.
	if code, out, errs := oauthdCmd(t, db, "", "client", "update", "web", "--rotate-secret"); code != 0 || !strings.Contains(out, "client_secret:") {
		t.Errorf("--rotate-secret alone: exit %d, %s %s", code, out, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "update", "web", "--secret", "a-long-enough-secret-value"); code != 0 || errs != "" {
		t.Errorf("--secret alone: exit %d, stderr %q", code, errs)
	}
}

// A client secret given with --secret shorter than 16 characters, and a
// password shorter than 8 or the same as the username, are accepted with a warning on standard error
// that recommends a generated secret (or a longer password) and does not
// show the value; longer ones, and generated secrets, get none.
func TestShortSecretAndPasswordWarn(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	warned := func(what, errs, value string, want ...string) {
		t.Helper()
		if !strings.Contains(errs, "oauthd: warning: ") || strings.Contains(errs, value) {
			t.Errorf("%s: stderr %q; want a warning without the value", what, errs)
		}
		for _, w := range want {
			if !strings.Contains(errs, w) {
				t.Errorf("%s: stderr %q; want %q in the warning", what, errs, w)
			}
		}
	}
	code, out, errs := oauthdCmd(t, db, "", "client", "create", "--id", "a", "--secret", "zq", "--redirect-uri", "https://a.example/cb")
	if code != 0 || !strings.Contains(out, "client_id:     a") {
		t.Fatalf("create with a short secret: exit %d, %s %s; want it created", code, out, errs)
	}
	warned("client create --secret zq", errs, "zq\n", "client secret", "at least 16", "leave --secret out")
	code, _, errs = oauthdCmd(t, db, "", "client", "update", "a", "--secret", "s3cr3t")
	if code != 0 {
		t.Fatalf("update with a short secret: exit %d, %s", code, errs)
	}
	warned("client update --secret s3cr3t", errs, "s3cr3t", "at least 16", "leave --secret out")
	for _, args := range [][]string{
		{"client", "create", "--id", "b", "--secret", "0123456789abcdef", "--redirect-uri", "https://a.example/cb"},
		{"client", "create", "--id", "c", "--redirect-uri", "https://a.example/cb"},
		{"client", "update", "c", "--rotate-secret"},
	} {
		if code, _, errs := oauthdCmd(t, db, "", args...); code != 0 || strings.Contains(errs, "warning") {
			t.Errorf("%v: exit %d, stderr %q; want no warning", args, code, errs)
		}
	}
	// RFC 6749 §2.3.1: an ID or secret that HTTP Basic clients must
	// form-encode is told of (many libraries do not encode), the secret
	// not shown; client_secret_post clients are not concerned.
	code, _, errs = oauthdCmd(t, db, "", "client", "create", "--id", "svc:1", "--secret", "p@ss:w0rd+&=%/ é-long-enough", "--redirect-uri", "https://a.example/cb")
	if code != 0 {
		t.Fatalf("create with form-encoded ID and secret: exit %d, %s", code, errs)
	}
	warned("client create --id svc:1 --secret p@ss:...", errs, "p@ss", "client_id \"svc:1\" has characters", "client secret given with --secret has characters", "RFC 6749 §2.3.1", "client_secret_post")
	code, _, errs = oauthdCmd(t, db, "", "client", "update", "svc:1", "--secret", "another secret, with a space")
	if code != 0 {
		t.Fatalf("update with a secret to form-encode: exit %d, %s", code, errs)
	}
	warned("client update --secret with a space", errs, "another secret", "form-encode")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "post:1", "--auth-method", "client_secret_post", "--secret", "p@ss:w0rd+&=%/ é-long-enough", "--redirect-uri", "https://a.example/cb"); code != 0 || strings.Contains(errs, "warning") {
		t.Errorf("client_secret_post client: exit %d, stderr %q; want no warning", code, errs)
	}
	code, out, errs = oauthdCmd(t, db, "a\n", "user", "add", "carol", "--password-stdin")
	if code != 0 || !strings.Contains(out, "added user carol") {
		t.Fatalf("user add with a short password: exit %d, %s %s; want the user added", code, out, errs)
	}
	warned("user add, password a", errs, `"a"`, "password", "at least 8")
	code, _, errs = oauthdCmd(t, db, "1234567\n", "user", "passwd", "carol", "--password-stdin")
	if code != 0 {
		t.Fatalf("user passwd: exit %d, %s", code, errs)
	}
	warned("user passwd, 7 characters", errs, "1234567", "password", "at least 8")
	// The username as the password (OWASP ASVS 2.1.7's first guesses),
	// in any case: a warning that does not repeat it.
	code, _, errs = oauthdCmd(t, db, "Margaret\n", "user", "add", "margaret", "--password-stdin")
	if code != 0 {
		t.Fatalf("user add with the username as password: exit %d, %s", code, errs)
	}
	warned("user add, password = username", errs, "Margaret", "password is the username")
	code, _, errs = oauthdCmd(t, db, "carol\n", "user", "passwd", "carol", "--password-stdin")
	if code != 0 {
		t.Fatalf("user passwd: exit %d, %s", code, errs)
	}
	warned("user passwd, password = username", errs, "carol\n", "password is the username")
	// The README's example password gets no warning.
	if code, _, errs := oauthdCmd(t, db, "s3cret-passw0rd\n", "user", "add", "bob", "--password-stdin"); code != 0 || strings.Contains(errs, "warning") {
		t.Errorf("user add with the README's password: exit %d, stderr %q; want no warning", code, errs)
	}
}

// A response type the client's grants do not allow is refused, on create
// and update, with the grant to add: the Provider would refuse every
// authorization request of the client with it
// (Provider.checkResponseType). One the Provider does not serve is
// refused too; one with its values in another order is stored as the
// Provider compares it.
func TestResponseTypeNeedsItsGrant(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	vars := map[string]string{"OAUTHD_DB": db}
	cb := []string{"--redirect-uri", "https://a.example/cb"}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--response-type", "token"}, []string{`--response-type "token" needs --grant implicit`, "authorization_code,refresh_token"}},
		{[]string{"--grant", "authorization_code,refresh_token", "--response-type", "token"}, []string{"needs --grant implicit"}},
		{[]string{"--response-type", "id_token"}, []string{`"id_token" needs --grant implicit`}},
		{[]string{"--response-type", "id_token token"}, []string{"needs --grant implicit"}},
		{[]string{"--grant", "implicit", "--response-type", "code"}, []string{`"code" needs --grant authorization_code`}},
		{[]string{"--grant", "implicit", "--response-type", "code id_token"}, []string{"needs --grant authorization_code"}},
		{[]string{"--grant", "authorization_code", "--response-type", "code token"}, []string{"needs --grant implicit"}},
		{[]string{"--grant", "client_credentials", "--response-type", "id_token code"}, []string{"needs --grant authorization_code and --grant implicit"}},
		{[]string{"--grant", "authorization_code,implicit", "--response-type", "none"}, []string{`--response-type "none": use code, token`}},
		{[]string{"--grant", "authorization_code,implicit", "--response-type", "code code"}, []string{`--response-type "code code": use`}},
	} {
		code, out, errs := oauthdEnv(t, vars, append(append([]string{"client", "create", "--id", "x"}, cb...), tc.args...)...)
		ok := code == 1 && out == "" && len(lines(errs)) == 1
		for _, w := range tc.want {
			ok = ok && strings.Contains(errs, w)
		}
		if !ok {
			t.Errorf("create %v: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.args, code, out, errs, tc.want)
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused create made the database")
	}
	// Allowed: each type with its grants; values in another order are
	// stored in the Provider's order, a repeated type once.
	for id, args := range map[string][]string{
		"c1": {"--response-type", "code"},
		"c2": {"--grant", "implicit", "--response-type", "token"},
		"c3": {"--grant", "implicit", "--response-type", "id_token,id_token token"},
		"c4": {"--grant", "authorization_code,implicit", "--response-type", "token id_token code,code", "--response-type", "code id_token token"},
		"c5": {"--grant", "client_credentials"},
	} {
		a := append([]string{"client", "create", "--id", id}, args...)
		if id != "c5" {
			a = append(a, cb...)
		}
		if code, _, errs := oauthdEnv(t, vars, a...); code != 0 {
			t.Errorf("create %v: exit %d, %s", args, code, errs)
		}
	}
	s, err := app.OpenStore(context.Background(), db, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Client(context.Background(), "c4")
	s.Close()
	if err != nil || strings.Join(c.ResponseTypes, "|") != "code id_token token|code" {
		t.Errorf("c4's response types = %q, %v; want code id_token token|code", c.ResponseTypes, err)
	}
	// Update: removing the grant a listed type needs, or adding a type
	// the grants do not allow, is refused and changes nothing.
	for _, args := range [][]string{
		{"client", "update", "c2", "--grant", "authorization_code"},
		{"client", "update", "c1", "--response-type", "token"},
		{"client", "update", "c4", "--grant", "implicit"},
	} {
		code, _, errs := oauthdEnv(t, vars, append(args, cb...)...)
		if code != 1 || !strings.Contains(errs, "needs --grant") {
			t.Errorf("%v: exit %d, stderr %q; want exit 1 and the grant needed", args, code, errs)
		}
	}
	if _, out, _ := oauthdEnv(t, vars, "client", "show", "c2"); !strings.Contains(out, "grant_types:                 implicit\n") {
		t.Errorf("a refused update changed c2:\n%s", out)
	}
	// An update that gives both agrees.
	if code, _, errs := oauthdEnv(t, vars, "client", "update", "c1", "--grant", "authorization_code,implicit", "--response-type", "code,token"); code != 0 {
		t.Errorf("update with the grant and the type: exit %d, %s", code, errs)
	}
}

// client create refuses an issuer serve refuses (app.Config.Validate),
// naming where it came from, before it creates anything; the URLs it
// prints then start with a good one.
func TestClientCreateIssuerValidated(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "o.db")
	cfg := filepath.Join(dir, "oauthd.yaml")
	if err := os.WriteFile(cfg, []byte("db: "+db+"\nissuer: https://file.example.com/\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cb := []string{"client", "create", "--redirect-uri", "https://a.example/cb"}
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"--issuer", "not a url"}, `--issuer: issuer "not a url" is not an absolute URL`},
		{nil, []string{"--issuer", "https://x.example.com/"}, `--issuer: "https://x.example.com/" ends with /: write it without, "https://x.example.com"`},
		{nil, []string{"--issuer", "http://x.example.com"}, "use https"},
		{nil, []string{"--issuer", "https://x.example.com/auth"}, "has a path"},
		{map[string]string{"OAUTHD_ISSUER": "https://x.example.com/"}, nil, `OAUTHD_ISSUER: "https://x.example.com/" ends with /`},
		{map[string]string{"OAUTHD_ISSUER": "not a url"}, nil, `OAUTHD_ISSUER: issuer "not a url"`},
		{map[string]string{"OAUTHD_CONFIG": cfg}, nil, `the issuer of the configuration file: "https://file.example.com/" ends with /`},
	} {
		vars := map[string]string{"OAUTHD_DB": db}
		for k, v := range tc.vars {
			vars[k] = v
		}
		code, out, errs := oauthdEnv(t, vars, append(cb, tc.args...)...)
		if code != 1 || out != "" || len(lines(errs)) != 1 || !strings.HasPrefix(errs, "oauthd: ") || !strings.Contains(errs, tc.want) {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want exit 1 and %q", tc.vars, tc.args, code, out, errs, tc.want)
		}
		if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%v %v: the database was created", tc.vars, tc.args)
		}
	}
	// A good issuer: the flag over a bad variable, and the printed URLs.
	code, out, errs := oauthdEnv(t, map[string]string{"OAUTHD_DB": db, "OAUTHD_ISSUER": "not a url"},
		append(cb, "--issuer", "https://auth.example.com")...)
	if code != 0 || !strings.Contains(out, "https://auth.example.com/oauth/authorize?") || !strings.Contains(out, "curl https://auth.example.com/oauth/token") {
		t.Errorf("--issuer https://auth.example.com: exit %d, %s %s", code, out, errs)
	}
	if code, out, errs := oauthdEnv(t, map[string]string{"OAUTHD_DB": db}, append(cb, "--issuer", "http://127.0.0.1:8000")...); code != 0 ||
		!strings.Contains(out, "http://127.0.0.1:8000/oauth/authorize?") {
		t.Errorf("--issuer http://127.0.0.1:8000: exit %d, %s %s", code, out, errs)
	}
}

// grants list shows only the consents the server honours: not those of a
// client that no longer exists, nor those given to an earlier client with
// the client_id of one registered since (Client.Predates).
func TestGrantsListOnlyHonouredConsents(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "correct-horse\n", "user", "add", "ada", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	for _, id := range []string{"kept", "again"} {
		if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", id, "--redirect-uri", "https://a.example/cb", "--scope", "email"); code != 0 {
			t.Fatalf("client create %s: %s", id, errs)
		}
	}
	ctx := context.Background()
	s, err := app.OpenStore(ctx, db, true)
	if err != nil {
		t.Fatal(err)
	}
	u, err := s.UserByUsername(ctx, "ada")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Client(ctx, "again")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []*oauthd.Consent{
		{UserID: u.ID, ClientID: "kept", Scopes: []string{"email"}, CreatedAt: now, UpdatedAt: now},
		// The client was deleted.
		{UserID: u.ID, ClientID: "gone", Scopes: []string{"email"}, CreatedAt: now, UpdatedAt: now},
		// Given to an earlier "again", deleted and registered again since.
		{UserID: u.ID, ClientID: "again", Scopes: []string{"email"}, CreatedAt: again.CreatedAt.Add(-time.Hour), UpdatedAt: again.CreatedAt.Add(-time.Minute)},
	} {
		if err := s.SaveConsent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	code, out, errs := oauthdCmd(t, db, "", "grants", "list", "ada")
	if code != 0 || len(lines(out)) != 2 || !strings.HasPrefix(lines(out)[1], "kept ") || strings.Contains(out, "gone") || strings.Contains(out, "again") {
		t.Errorf("grants list: exit %d, stdout %q, stderr %q; want the consent for kept alone", code, out, errs)
	}
	// A consent the new "again" got counts.
	s, err = app.OpenStore(ctx, db, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveConsent(ctx, &oauthd.Consent{UserID: u.ID, ClientID: "again", Scopes: []string{"email"}, CreatedAt: now, UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, out, _ := oauthdCmd(t, db, "", "grants", "list", "ada"); len(lines(out)) != 3 || !strings.Contains(out, "\nagain ") {
		t.Errorf("grants list after the new client's consent:\n%s; want kept and again", out)
	}
}

// startDemoServer runs 'oauthd serve --demo' in this process on a new
// database, on a port of 127.0.0.1 in 19500-19599, until the test ends,
// and returns its URL.
func startDemoServer(t *testing.T) string {
	t.Helper()
	u, _ := startDemoServerDB(t)
	return u
}

// startDemoServerDB is startDemoServer that also returns the database.
func startDemoServerDB(t *testing.T) (string, string) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "demo.db")
	for port := 19537; port < 19600; port++ {
		ctx, cancel := context.WithCancel(context.Background())
		addr := make(chan string, 1)
		done := make(chan int, 1)
		var errb strings.Builder
		e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &syncWriter{w: &errb}, getenv: func(string) string { return "" },
			ready: func(a string) { addr <- a }}
		go func() {
			done <- run(ctx, []string{"serve", "--demo", "--db", db, "--addr", "127.0.0.1:" + strconv.Itoa(port), "--log-level", "warn"}, e)
		}()
		select {
		case a := <-addr:
			t.Cleanup(func() { cancel(); <-done })
			return "http://" + a, db
		case <-done:
			cancel()
			continue // the port is taken: the next one
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatalf("serve --demo did not start: %s", errb.String())
		}
	}
	t.Fatal("no free port in 19537-19599")
	return "", ""
}

// bench --url against 'serve --demo' with the client_credentials scenario
// (the default) fails, as the demo's test_client may not use that grant,
// and the error says what to do; the flow scenario the message suggests
// works with the demo client.
func TestBenchDemoClientCredentialsHint(t *testing.T) {
	url := startDemoServer(t)
	bench := func(args ...string) (int, string, string) {
		var out, errb strings.Builder
		e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		code := run(context.Background(), append([]string{"bench", "--url", url, "--connections", "1", "--duration", "300ms"}, args...), e)
		return code, out.String(), errb.String()
	}
	code, out, errs := bench()
	last := lines(errs)[len(lines(errs))-1]
	if code != 1 || out != "" || !strings.Contains(last, "unauthorized_client") || !strings.Contains(last, "test_client") ||
		!strings.Contains(last, "oauthd client create --grant client_credentials") || !strings.Contains(last, "--client-id and --client-secret") ||
		!strings.Contains(last, "--scenario code, refresh, introspect, flow or mixed") || strings.Contains(last, "password") {
		t.Errorf("bench --url on the demo: exit %d, stdout %q, stderr %q; want exit 1 and what to do", code, out, errs)
	}
	// Another client named: the message names it, not the demo's.
	if code, _, errs := bench("--client-id", "svc", "--client-secret", "wrong-secret-value"); code != 1 || strings.Contains(errs, "may not use the client_credentials grant") {
		t.Errorf("bench with an unknown client: exit %d, stderr %q; want the server's error without the demo hint", code, errs)
	}
	if code, out, errs := bench("--scenario", "flow"); code != 0 || !strings.Contains(out, "scenario flow") {
		t.Errorf("bench --scenario flow on the demo: exit %d, %s %s", code, out, errs)
	}
}

// bench --url against 'serve --demo' with more connections than the
// per-account login limit (5 sign-ins of one user at once): the
// connections' sign-ins wait out the server's 429s while preparing, and
// the scenarios that need no remembered consent leave none behind (the
// walkthrough's consent page would be skipped afterwards).
func TestBenchURLDemoManyConnections(t *testing.T) {
	url, db := startDemoServerDB(t)
	var out, errb strings.Builder
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code := run(context.Background(), []string{"bench", "--url", url, "--scenario", "code", "--connections", "12", "--codes", "24", "--duration", "300ms"}, e)
	if code != 0 || !strings.Contains(out.String(), "scenario code") {
		t.Fatalf("bench --url --scenario code --connections 12 on the demo: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	r := runCmd(context.Background(), nil, nil, "grants", "list", "admin", "--db", db)
	if r.code != 0 || strings.Contains(r.stdout, "test_client") {
		t.Errorf("grants list admin after the bench: exit %d\n%s%s\nwant no remembered consent", r.code, r.stdout, r.stderr)
	}
}

// A generated client_id never starts with "-" (client show would take it
// for a flag) or "_".
func TestGeneratedClientIDIsNoFlag(t *testing.T) {
	for range 5000 {
		if id := newClientID(); len(id) != 22 || id[0] == '-' || id[0] == '_' {
			t.Fatalf("generated client_id %q", id)
		}
	}
}

// --redirect-uri takes its value whole, commas included (a query's
// "a=1,2" is part of a URI, RFC 3986 §3.4), refuses several URIs joined by
// commas rather than registering them as one, and keeps a repeated URI
// once. Token lifetimes under a second (dead on arrival: expires_in 0)
// are refused before anything is written.
func TestClientFlagsURIsAndLifetimes(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "commas", "--redirect-uri", "https://x.example.com/cb?a=1,2",
		"--redirect-uri", "https://x.example.com/cb?a=1,2", "--scope", "email")
	if code != 0 {
		t.Fatalf("create with a comma in the query: exit %d %s", code, errs)
	}
	code, out, errs := oauthdCmd(t, db, "", "client", "show", "commas", "--json")
	if code != 0 || strings.Count(out, "https://x.example.com/cb?a=1,2") != 1 {
		t.Errorf("show: exit %d %s %s; want the one URI, whole, once", code, out, errs)
	}
	code, _, errs = oauthdCmd(t, db, "", "client", "create", "--id", "joined", "--redirect-uri", "https://a.example/cb,https://b.example/cb", "--scope", "email")
	if code == 0 || !strings.Contains(errs, "several URIs joined by commas") {
		t.Errorf("joined URIs: exit %d %s; want a refusal", code, errs)
	}
	for _, args := range [][]string{
		{"--access-token-ttl", "1ms"}, {"--refresh-token-ttl", "500ms"},
	} {
		a := append([]string{"client", "create", "--id", "ttl", "--grant", "client_credentials", "--scope", "read"}, args...)
		code, _, errs := oauthdCmd(t, db, "", a...)
		if code != 1 || !strings.Contains(errs, args[0]) || !strings.Contains(errs, "at least 1s") {
			t.Errorf("%v: exit %d %s; want exit 1 naming the flag and the bounds", args, code, errs)
		}
		if code, out, _ := oauthdCmd(t, db, "", "client", "show", "ttl"); code == 0 {
			t.Errorf("%v: a client was stored: %s", args, out)
		}
	}
}

// keys rotate checks --alg before it opens the database: a wrong one
// leaves no new database, with its first keys, behind.
func TestKeysRotateBadAlgCreatesNothing(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	code, _, errs := oauthdCmd(t, db, "", "keys", "rotate", "--alg", "XX")
	if code != 1 || !strings.Contains(errs, `signing algorithm "XX" is not supported: use RS256, ES256 or EdDSA`) {
		t.Errorf("exit %d %q; want exit 1 naming the algorithms", code, errs)
	}
	if _, err := os.Stat(db); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a database was left at %s: %v", db, err)
	}
}

// An empty --secret is refused rather than taken for "generate one", and a
// claim both set and removed in one user claims is refused rather than
// resolved in silence.
func TestEmptySecretAndClaimConflict(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "c", "--secret", "", "--grant", "client_credentials", "--scope", "read"); code != 2 || !strings.Contains(errs, "--secret is empty") {
		t.Errorf("create --secret \"\": exit %d %q; want exit 2", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "c", "--grant", "client_credentials", "--scope", "read"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "update", "c", "--secret", ""); code != 2 || !strings.Contains(errs, "--secret is empty") {
		t.Errorf("update --secret \"\": exit %d %q; want exit 2", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "a-long-enough-password\n", "user", "add", "bob", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %d %s", code, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "user", "claims", "bob", "--claim", "name=X", "--unset", "name"); code != 2 || !strings.Contains(errs, `claim "name" is both set`) {
		t.Errorf("claims set and unset: exit %d %q; want exit 2", code, errs)
	}
}

// A misspelt OAUTHD_ variable is warned of by the database commands too,
// not only by serve and config check: OAUTHD_DBB would otherwise leave the
// command on ./oauthd.db without a word.
func TestUnknownEnvWarnedByCommands(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	var out, errb strings.Builder
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv:  func(k string) string { return map[string]string{"OAUTHD_DB": db}[k] },
		environ: func() []string { return []string{"OAUTHD_DB=" + db, "OAUTHD_DBB=/srv/oauthd.db", "OAUTHD_TEST_X=1"} }}
	if code := run(t.Context(), []string{"client", "create", "--grant", "client_credentials", "--scope", "read"}, e); code != 0 {
		t.Fatalf("client create: %d %s", code, errb.String())
	}
	if s := errb.String(); !strings.Contains(s, "warning: the environment variable OAUTHD_DBB names no setting") || strings.Contains(s, "OAUTHD_TEST_X") {
		t.Errorf("stderr %q; want a warning about OAUTHD_DBB only", s)
	}
}

// Two user add commands racing with names that differ only in case both
// pass the check before either stores its user (on PostgreSQL nothing
// serializes them); once stored, the later one removes its own user and
// fails, the first created stays.
func TestKeepFirstLookalike(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	t0 := time.Now()
	first := &oauthd.User{ID: "b-first", Username: "Eta", CreatedAt: t0}
	later := &oauthd.User{ID: "a-later", Username: "eta", CreatedAt: t0.Add(time.Millisecond)}
	other := &oauthd.User{ID: "c-other", Username: "theta", CreatedAt: t0.Add(2 * time.Millisecond)}
	for _, u := range []*oauthd.User{first, later, other} {
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	if err := keepFirstLookalike(ctx, s, first); err != nil {
		t.Errorf("the first created: %v; want it kept", err)
	}
	if err := keepFirstLookalike(ctx, s, other); err != nil {
		t.Errorf("another name: %v", err)
	}
	if err := keepFirstLookalike(ctx, s, later); err == nil || !strings.Contains(err.Error(), `"Eta" was added meanwhile`) {
		t.Errorf("the later one: %v; want an error naming Eta", err)
	}
	if _, err := s.UserByUsername(ctx, "eta"); !errors.Is(err, oauthd.ErrNotFound) {
		t.Errorf("the later user is still stored: %v", err)
	}
	if _, err := s.UserByUsername(ctx, "Eta"); err != nil {
		t.Errorf("the first user is gone: %v", err)
	}
}

// A scope or grant given twice is registered once.
func TestClientFlagsDeduplicated(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "d", "--grant", "client_credentials", "--grant", "client_credentials",
		"--scope", "a a b", "--scope", "b"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	code, out, errs := oauthdCmd(t, db, "", "client", "show", "d", "--json")
	var c struct {
		Grants []string `json:"grant_types"`
		Scopes []string `json:"scopes"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &c) != nil {
		t.Fatalf("show: %d %s %s", code, out, errs)
	}
	if strings.Join(c.Grants, " ") != "client_credentials" || strings.Join(c.Scopes, " ") != "a b" {
		t.Errorf("grants %q, scopes %q; want each once", c.Grants, c.Scopes)
	}
}

// A client registered before a check of a newer release (here a name with
// a direction override, stored without Client.Validate) can still be
// updated in another field, such as an emergency secret rotation, with a
// warning; changing the field to something the check refuses is refused.
func TestClientUpdateToleratesOlderRegistration(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "old", "--grant", "client_credentials", "--scope", "read"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	s, err := app.OpenStore(t.Context(), db, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Client(t.Context(), "old")
	if err != nil {
		t.Fatal(err)
	}
	c.Name = "Old \u202eppA"
	if err := s.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	s.Close()
	code, out, errs := oauthdCmd(t, db, "", "client", "update", "old", "--rotate-secret")
	if code != 0 || !strings.Contains(out, "client_secret:") || !strings.Contains(errs, "warning:") || !strings.Contains(errs, "invisible character") {
		t.Errorf("rotate-secret: exit %d %q %q; want the new secret and a warning about the name", code, out, errs)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "update", "old", "--name", "New \u202ex"); code != 1 || !strings.Contains(errs, "invisible character") {
		t.Errorf("a new name with an override: exit %d %q; want it refused", code, errs)
	}
}

// A redirect URI given to a client whose grants never redirect
// (client_credentials) is kept but warned of, at create and at update;
// a client with the authorization_code grant gets no such warning.
func TestClientRedirectURIWithoutARedirectingGrant(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	const warning = "none of the client's grants (client_credentials) redirects to it"
	code, _, stderr := oauthdCmd(t, db, "", "client", "create", "--id", "svc", "--grant", "client_credentials", "--redirect-uri", "https://a.example.com/cb", "--scope", "x")
	if code != 0 || !strings.Contains(stderr, warning) {
		t.Errorf("create: exit %d, stderr %q; want 0 and a warning with %q", code, stderr, warning)
	}
	code, out, _ := oauthdCmd(t, db, "", "client", "show", "svc")
	if code != 0 || !strings.Contains(out, "https://a.example.com/cb") {
		t.Errorf("show: exit %d, %q; want the redirect URI kept", code, out)
	}
	code, _, stderr = oauthdCmd(t, db, "", "client", "update", "svc", "--redirect-uri", "https://b.example.com/cb")
	if code != 0 || !strings.Contains(stderr, warning) {
		t.Errorf("update: exit %d, stderr %q; want 0 and the warning", code, stderr)
	}
	code, _, stderr = oauthdCmd(t, db, "", "client", "update", "svc", "--grant", "authorization_code")
	if code != 0 || strings.Contains(stderr, "redirects to it") {
		t.Errorf("update to authorization_code: exit %d, stderr %q; want 0 and no warning", code, stderr)
	}
	code, _, stderr = oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example.com/cb")
	if code != 0 || strings.Contains(stderr, "redirects to it") {
		t.Errorf("create web client: exit %d, stderr %q; want 0 and no warning", code, stderr)
	}
}

// The authorize URL client create prints asks for a response type the
// client may use: an implicit client's own (with the nonce OIDC Core
// §3.2.2.1 requires for an ID token), and no code exchange without a code;
// a hybrid client's, with PKCE and the exchange.
func TestClientCreateExampleResponseType(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	printedURL := func(out string) *url.URL {
		for _, f := range strings.Fields(out) {
			if strings.Contains(f, "/oauth/authorize?") {
				u, err := url.Parse(f)
				if err != nil {
					t.Fatal(err)
				}
				return u
			}
		}
		t.Fatalf("no authorize URL in %s", out)
		return nil
	}
	code, out, errs := oauthdCmd(t, db, "", "client", "create", "--id", "imp", "--grant", "implicit", "--response-type", "id_token", "--scope", "openid email", "--redirect-uri", "https://a.example.com/cb")
	if code != 0 {
		t.Fatalf("create implicit: %d %s", code, errs)
	}
	q := printedURL(out).Query()
	if q.Get("response_type") != "id_token" || q.Get("nonce") == "" || strings.Contains(out, "exchange the code") || !strings.Contains(out, "grants.enable_implicit_grant") {
		t.Errorf("implicit client's example: %s; want response_type=id_token with a nonce, the server setting named, no code exchange", out)
	}
	code, out, errs = oauthdCmd(t, db, "", "client", "create", "--id", "hyb", "--public", "--grant", "implicit", "--grant", "authorization_code", "--response-type", "code id_token", "--scope", "openid email", "--redirect-uri", "https://a.example.com/cb")
	if code != 0 {
		t.Fatalf("create hybrid: %d %s", code, errs)
	}
	q = printedURL(out).Query()
	if q.Get("response_type") != "code id_token" || q.Get("nonce") == "" || !strings.Contains(out, "exchange the code") {
		t.Errorf("hybrid client's example: %s; want response_type=code id_token with a nonce and the code exchange", out)
	}
	if challenge, verifier := printedPKCE(t, out); oauthd.S256Challenge(verifier) != challenge {
		t.Errorf("hybrid example: code_verifier %q does not match code_challenge %q", verifier, challenge)
	}
	// Without --scope the ID token still needs openid in the request.
	code, out, errs = oauthdCmd(t, db, "", "client", "create", "--id", "imp2", "--public", "--grant", "implicit", "--response-type", "id_token", "--redirect-uri", "https://a.example.com/cb")
	if q := printedURL(out).Query(); code != 0 || q.Get("scope") != "openid" {
		t.Errorf("implicit client without --scope: %d %s %s; want scope=openid in the example", code, out, errs)
	}
	code, out, _ = oauthdCmd(t, db, "", "client", "create", "--id", "web", "--redirect-uri", "https://a.example.com/cb")
	if q := printedURL(out).Query(); code != 0 || q.Get("response_type") != "code" || q.Get("nonce") != "" {
		t.Errorf("code client's example: %s", out)
	}
}

// --claims-in-id-token is set at create, shown, and cleared by update.
func TestClientClaimsInIDTokenFlag(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "", "client", "create", "--id", "rp", "--claims-in-id-token", "--scope", "openid email", "--redirect-uri", "https://a.example.com/cb"); code != 0 {
		t.Fatalf("create: %d %s", code, errs)
	}
	code, out, _ := oauthdCmd(t, db, "", "client", "show", "rp", "--json")
	if code != 0 || !strings.Contains(out, `"claims_in_id_token": true`) {
		t.Errorf("show --json: %d %s; want claims_in_id_token true", code, out)
	}
	if code, _, errs := oauthdCmd(t, db, "", "client", "update", "rp", "--claims-in-id-token=false"); code != 0 {
		t.Fatalf("update: %d %s", code, errs)
	}
	if _, out, _ := oauthdCmd(t, db, "", "client", "show", "rp", "--json"); !strings.Contains(out, `"claims_in_id_token": false`) {
		t.Errorf("show --json after update: %s; want claims_in_id_token false", out)
	}
}

// A claim that is not a standard one (OIDC Core §5.1) is kept, with a
// warning that oauthd releases it nowhere; a value in [...] is a JSON
// array; standard claims get no warning.
func TestUserClaimsNonStandardWarns(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, errs := oauthdCmd(t, db, "pw-alice-1234\n", "user", "add", "alice", "--claim", "email=alice@example.com"); code != 0 || strings.Contains(errs, "releases it nowhere") {
		t.Fatalf("user add with a standard claim: %d %s", code, errs)
	}
	code, out, errs := oauthdCmd(t, db, "", "user", "claims", "alice", "--claim", `groups=["admins","devs"]`, "--claim", "name#fr=Alice")
	if code != 0 || !strings.Contains(errs, "groups: not a standard OpenID Connect claim") || strings.Contains(errs, "name#fr") {
		t.Errorf("user claims groups: %d, stderr %q; want a warning naming groups alone", code, errs)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("user claims output %q: %v", out, err)
	}
	if g, ok := got["groups"].([]any); !ok || len(g) != 2 || g[0] != "admins" {
		t.Errorf("groups = %#v; want the JSON array [admins devs]", got["groups"])
	}
	if code, _, errs := oauthdCmd(t, db, "", "user", "claims", "alice", "--claim", "groups=[admins"); code != 2 || !strings.Contains(errs, "not a JSON array") {
		t.Errorf("a broken array: %d %s; want exit 2 saying it is not a JSON array", code, errs)
	}
}
