package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is an output shared with a running server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// runCmd runs the command line with an environment.
func runCmd(ctx context.Context, vars map[string]string, ready func(string), args ...string) result {
	var out, errOut lockedBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(k string) string { return vars[k] }, ready: ready}
	code := run(ctx, args, e)
	return result{code, out.String(), errOut.String()}
}

func tempFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// config print shows what serve would run with: flags over the
// environment over the file over the defaults.
func TestConfigPrintPrecedence(t *testing.T) {
	file := tempFile(t, "oauthd.yaml", "addr: file:1\ndb: postgres://oauthd:hunter2@db:5432/oauthd\ngc:\n  interval: 2m\n")
	ctx := context.Background()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want []string
	}{
		{"defaults", nil, nil, []string{"addr: localhost:8000", "issuer: http://localhost:8000", "interval: 1m"}},
		{"file", map[string]string{"OAUTHD_CONFIG": file}, nil, []string{"addr: file:1", "interval: 2m", "db: postgres://oauthd:xxxxx@db:5432/oauthd"}},
		{"env over file", map[string]string{"OAUTHD_CONFIG": file, "OAUTHD_ADDR": "env:2"}, nil, []string{"addr: env:2", "interval: 2m"}},
		{"flag over env", map[string]string{"OAUTHD_CONFIG": file, "OAUTHD_ADDR": "env:2"}, []string{"--addr", "flag:3", "--gc-interval", "3m"},
			[]string{"addr: flag:3", "interval: 3m", "issuer: http://flag:3"}},
		{"--config flag", nil, []string{"--config", file}, []string{"addr: file:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(ctx, tt.env, nil, append([]string{"config", "print"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w+"\n") {
					t.Errorf("config print lacks %q:\n%s", w, r.stdout)
				}
			}
			if strings.Contains(r.stdout, "hunter2") {
				t.Error("config print shows the database password")
			}
		})
	}
}

// config check and serve refuse a bad configuration, naming the key.
func TestBadConfigNamesTheKey(t *testing.T) {
	ctx := context.Background()
	bad := tempFile(t, "bad.yaml", "lifetimes:\n  access_token_ttl: 0s\n")
	unknown := tempFile(t, "unknown.yaml", "listen: :8000\n")
	good := tempFile(t, "good.yaml", "addr: 127.0.0.1:0\n")
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"config", "check", "--config", bad}, nil, "config: lifetimes.access_token_ttl: must be at least 1s"},
		{[]string{"serve", "--config", bad}, nil, "config: lifetimes.access_token_ttl: must be at least 1s"},
		{[]string{"serve"}, map[string]string{"OAUTHD_CONFIG": unknown}, `unknown.yaml:1: unknown key "listen"`},
		{[]string{"config", "check", "--config", good}, map[string]string{"OAUTHD_LOG_FORMAT": "xml"}, "config: log.format"},
		{[]string{"config", "check", "--config", good, "--tls-key-file", "/k.pem"}, nil, "config: tls.cert_file: is required"},
		{[]string{"config", "check", "--config", good, "--db", "postgres://oauthd:S3cr3t@db.example/oauthd?sslmode=bogus"}, nil, "config: db: invalid DSN"},
		// What serve would refuse, config check refuses too.
		{[]string{"config", "check", "--config", good, "--key-refresh-interval", "30m"}, nil, "config: key.refresh_interval: must be between 1s and 5m (set by --key-refresh-interval)"},
		{[]string{"config", "check", "--addr", "auth.example.com:8000"}, nil, `config: issuer: not set, and the default from addr "auth.example.com:8000" is refused`},
		{[]string{"config", "check", "--config", good, "--db", "/nonexistent-dir/sub/oauthd.db"}, nil, "config: db: the directory of /nonexistent-dir/sub/oauthd.db: no such file or directory; create it, writable by the server's user (under systemd, StateDirectory= creates it at the unit's first start)"},
	} {
		r := runCmd(ctx, tt.env, nil, tt.args...)
		if strings.Contains(r.stderr, "S3cr3t") {
			t.Errorf("%v: the password is in %q", tt.args, r.stderr)
		}
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if r := runCmd(ctx, nil, nil, "config", "check", "--config", good); r.code != 0 || !strings.Contains(r.stdout, "valid") {
		t.Errorf("a good file: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(ctx, nil, nil, "config", "print", "--gc-interval", "soon"); r.code != 2 || !strings.Contains(r.stderr, "gc-interval") {
		t.Errorf("a bad flag value: exit %d %s", r.code, r.stderr)
	}
}

// serve fails fast with a clear message when the store is unreachable.
func TestServeStoreUnreachable(t *testing.T) {
	start := time.Now()
	r := runCmd(context.Background(), nil, nil, "serve", "--addr", "127.0.0.1:0", "--db", "/nonexistent-dir/sub/oauthd.db")
	if r.code != 1 || !strings.Contains(r.stderr, "oauthd: opening the store /nonexistent-dir/sub/oauthd.db (db)") {
		t.Errorf("exit %d, stderr %q; want 1 and the store named", r.code, r.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s", d)
	}
}

// startServe runs serve with JSON logs on a new database and a random
// port, with the flags extra, until ctx ends; it returns the address and
// the channel of the command's result.
func startServe(t *testing.T, ctx context.Context, extra ...string) (string, <-chan result) {
	t.Helper()
	db := filepath.Join(t.TempDir(), "oauthd.db")
	addrc := make(chan string, 1)
	done := make(chan result, 1)
	go func() {
		done <- runCmd(ctx, map[string]string{"OAUTHD_LOG_FORMAT": "json"}, func(a string) { addrc <- a },
			append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, extra...)...)
	}()
	select {
	case addr := <-addrc:
		return addr, done
	case r := <-done:
		t.Fatalf("serve ended: %d %s", r.code, r.stderr)
		return "", nil
	}
}

// SIGTERM (the context ending) makes serve finish and exit 0.
func TestServeStopsGracefully(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := startServe(t, ctx)
	res, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("/readyz: %d", res.StatusCode)
	}
	cancel()
	r := <-done
	if r.code != 0 || !strings.Contains(r.stderr, `"msg":"stopped"`) {
		t.Errorf("exit %d, stderr %s; want 0 and a stopped line", r.code, r.stderr)
	}
	// serve started a new SQLite file, and said so, as the other commands
	// that may create one do.
	if !strings.Contains(r.stderr, `"msg":"created a new database"`) {
		t.Errorf("stderr %s; want a line saying the database was created", r.stderr)
	}
	// ... before the signing keys that new database gets.
	if i, j := strings.Index(r.stderr, `"msg":"created a new database"`), strings.Index(r.stderr, `"msg":"signing key created"`); j < 0 || i > j {
		t.Errorf("stderr %s; want the new database said before its first signing key", r.stderr)
	}
}

// A client still sending its request body when shutdown_timeout passes
// has its connection closed, and serve still exits 0 (it stopped as
// asked), saying so in the log.
func TestServeStopsAfterShutdownTimeout(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr, done := startServe(t, ctx, "--shutdown-timeout", "1s")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Half a request body, the rest never sent.
	fmt.Fprintf(conn, "POST /oauth/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant_type=", addr)
	time.Sleep(100 * time.Millisecond)
	cancel()
	r := <-done
	if r.code != 0 || !strings.Contains(r.stderr, "shutdown_timeout passed") || !strings.Contains(r.stderr, `"msg":"stopped"`) {
		t.Errorf("exit %d, stderr %s; want 0, a shutdown_timeout warning and a stopped line", r.code, r.stderr)
	}
}

// The client and user commands find the database in the config file.
func TestCommandsReadDBFromConfig(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "from-config.db")
	file := tempFile(t, "oauthd.yaml", "db: "+db+"\ntls:\n  cert_file: /unreadable/cert.pem\n  key_file: /unreadable/key.pem\n")
	r := runCmd(ctx, nil, nil, "client", "create", "--config", file, "--id", "app1", "--redirect-uri", "https://app.example/cb")
	if r.code != 0 {
		t.Fatalf("client create: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(db); err != nil {
		t.Errorf("the database of the config file was not used: %v", err)
	}
	r = runCmd(ctx, map[string]string{"OAUTHD_CONFIG": file}, nil, "client", "list")
	if r.code != 0 || !strings.Contains(r.stdout, "app1") {
		t.Errorf("client list with OAUTHD_CONFIG: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// --db wins over the file; a list of a database that is not there
	// is an error, not a new empty database.
	other := filepath.Join(t.TempDir(), "other.db")
	r = runCmd(ctx, map[string]string{"OAUTHD_CONFIG": file}, nil, "client", "list", "--db", other)
	if r.code != 1 || strings.Contains(r.stdout, "app1") || !strings.Contains(r.stderr, "no database at "+other) {
		t.Errorf("client list --db: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(other); err == nil {
		t.Errorf("client list created %s", other)
	}
	r = runCmd(ctx, nil, nil, "client", "create", "--db", other, "--id", "app2", "--redirect-uri", "https://app.example/cb")
	if r.code != 0 || !strings.Contains(r.stderr, "created a new database at "+other) {
		t.Errorf("client create on a new database: %d %s", r.code, r.stderr)
	}
	r = runCmd(ctx, map[string]string{"OAUTHD_CONFIG": file}, nil, "client", "list", "--db", other)
	if r.code != 0 || !strings.Contains(r.stdout, "app2") || strings.Contains(r.stdout, "app1") {
		t.Errorf("client list --db: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// A config file that cannot be read is an error, not the default database.
	r = runCmd(ctx, map[string]string{"OAUTHD_CONFIG": "/nonexistent/oauthd.yaml"}, nil, "client", "list")
	if r.code != 1 || !strings.Contains(r.stderr, "OAUTHD_CONFIG: open /nonexistent/oauthd.yaml") {
		t.Errorf("missing config: %d %s", r.code, r.stderr)
	}
}

// The keys commands read the key settings of the configuration file, as
// serve does: the encryption key from the file encrypts the keys, and a
// serve with the same file can read them.
func TestKeysCommandsReadConfig(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "o.db")
	file := tempFile(t, "oauthd.yaml", "db: "+db+"\naddr: 127.0.0.1:0\nkey:\n  encryption_key: BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n  rotation_period: 48h\n")
	r := runCmd(ctx, map[string]string{"OAUTHD_CONFIG": file}, nil, "keys", "list")
	if r.code != 0 || strings.Contains(r.stdout, " no\n") || !strings.Contains(r.stdout, "yes") {
		t.Fatalf("keys list: %d %s %s; want encrypted keys", r.code, r.stdout, r.stderr)
	}
	listed := r.stdout
	// Without the key, keys list shows the same schedule from the
	// records, says why, and creates nothing; rotate, which must encrypt
	// what it stores, is refused.
	r = runCmd(ctx, map[string]string{"OAUTHD_DB": db}, nil, "keys", "list")
	if r.code != 0 || r.stdout != listed || !strings.Contains(r.stderr, "OAUTHD_KEY_ENCRYPTION_KEY is not set") {
		t.Errorf("keys list without the key: %d\n%s\n%s\nwant the list as with the key:\n%s", r.code, r.stdout, r.stderr, listed)
	}
	if r := runCmd(ctx, map[string]string{"OAUTHD_DB": db}, nil, "keys", "rotate"); r.code != 1 || !strings.Contains(r.stderr, "no key encryption key") {
		t.Errorf("keys rotate without the key: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := runCmd(ctx, map[string]string{"OAUTHD_CONFIG": file}, nil, "keys", "list"); r.code != 0 || r.stdout != listed {
		t.Errorf("keys list with the key again: %d\n%s\nwant\n%s", r.code, r.stdout, listed)
	}
	// config print masks it.
	r = runCmd(ctx, nil, nil, "config", "print", "--config", file)
	if r.code != 0 || strings.Contains(r.stdout, "BwcHBwcH") || !strings.Contains(r.stdout, "encryption_key: '***'") || !strings.Contains(r.stdout, "rotation_period: 48h") {
		t.Errorf("config print: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// serve with the same file starts (it reads the encrypted keys).
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan result, 1)
	ready := make(chan string, 1)
	go func() {
		done <- runCmd(sctx, map[string]string{"OAUTHD_CONFIG": file}, func(a string) { ready <- a }, "serve")
	}()
	select {
	case <-ready:
	case r := <-done:
		t.Fatalf("serve: %d %s", r.code, r.stderr)
	}
	cancel()
	if r := <-done; r.code != 0 {
		t.Errorf("serve: %d %s", r.code, r.stderr)
	}
}

// The example client create prints is for the server's issuer: --issuer,
// else OAUTHD_ISSUER, else the issuer of the config file.
func TestClientCreateExampleUsesTheIssuer(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	file := tempFile(t, "oauthd.yaml", "db: "+filepath.Join(dir, "o.db")+"\nissuer: https://auth.example.com\n")
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"--id", "a1"}, "https://auth.example.com/oauth/authorize?"},
		{map[string]string{"OAUTHD_ISSUER": "https://env.example.com"}, []string{"--id", "a2"}, "https://env.example.com/oauth/authorize?"},
		{nil, []string{"--id", "a3", "--issuer", "https://flag.example.com"}, "https://flag.example.com/oauth/authorize?"},
	} {
		args := append([]string{"client", "create", "--config", file, "--redirect-uri", "https://app.example/cb"}, tc.args...)
		r := runCmd(ctx, tc.vars, nil, args...)
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) || !strings.Contains(r.stdout, "curl "+strings.TrimSuffix(tc.want, "/oauth/authorize?")+"/oauth/token") {
			t.Errorf("%v: %d %s %s; want the example at %s", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

// config check warns of an OAUTHD_ variable that names no setting.
func TestConfigCheckWarnsOfUnknownVariables(t *testing.T) {
	var out, errb bytes.Buffer
	vars := map[string]string{"OAUTHD_DB": filepath.Join(t.TempDir(), "o.db"), "OAUTHD_GC_BATCHSIZE": "5"}
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] },
		environ: func() []string { return []string{"OAUTHD_DB=" + vars["OAUTHD_DB"], "OAUTHD_GC_BATCHSIZE=5"} }}
	if code := run(context.Background(), []string{"config", "check"}, e); code != 0 || !strings.Contains(errb.String(), "OAUTHD_GC_BATCHSIZE names no setting") {
		t.Errorf("config check: exit %d, stderr %q; want 0 and a warning naming OAUTHD_GC_BATCHSIZE", code, errb.String())
	}
}

// An issuer written with a trailing slash is refused by serve and config
// check alike, with the issuer to write instead: clients compare the issuer
// byte for byte (OIDC Discovery §4.3), and discovery and the tokens name it
// without the slash.
func TestIssuerTrailingSlashRefused(t *testing.T) {
	ctx := context.Background()
	for _, args := range [][]string{
		{"serve", "--db", filepath.Join(t.TempDir(), "o.db"), "--addr", "127.0.0.1:0", "--issuer", "http://127.0.0.1:18991/"},
		{"config", "check", "--issuer", "https://auth.example.com/"},
	} {
		r := runCmd(ctx, nil, nil, args...)
		want := `"http://127.0.0.1:18991"`
		if args[0] == "config" {
			want = `"https://auth.example.com"`
		}
		if r.code == 0 || !strings.Contains(r.stderr, "ends with /") || !strings.Contains(r.stderr, want) {
			t.Errorf("%v: exit %d, stderr %s; want a refusal naming %s", args, r.code, r.stderr, want)
		}
	}
}

// The keys commands take the ID token lifetime from the environment, as
// serve does (a container's variables reach "docker exec oauthd /oauthd
// keys rotate"): a key they make stays published until every ID token it
// signed has expired.
func TestKeysCommandsReadIDTokenLifetimeFromEnv(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "o.db")
	vars := map[string]string{"OAUTHD_DB": db, "OAUTHD_LIFETIMES_ID_TOKEN_TTL": "24h"}
	if r := runCmd(ctx, vars, nil, "keys", "rotate", "--alg", "RS256"); r.code != 0 {
		t.Fatalf("keys rotate: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Listed by a command that does not know the lifetime, the keys show
	// what was stored when they were made.
	r := runCmd(ctx, map[string]string{"OAUTHD_DB": db}, nil, "keys", "list")
	if r.code != 0 {
		t.Fatalf("keys list: %d %s %s", r.code, r.stdout, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) < 5 {
		t.Fatalf("keys list: %s; want the 3 first keys and the rotated RS256 one", r.stdout)
	}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("keys list line %q", l)
		}
		until, err1 := time.Parse(time.RFC3339, f[4])
		published, err2 := time.Parse(time.RFC3339, f[5])
		if err1 != nil || err2 != nil {
			t.Fatalf("keys list line %q: %v %v", l, err1, err2)
		}
		if published.Sub(until) < 24*time.Hour {
			t.Errorf("key %s (%s) published until %s, signing until %s; want at least 24h after (OAUTHD_LIFETIMES_ID_TOKEN_TTL)", f[0], f[2], f[5], f[4])
		}
	}
}

// client create prints its example URLs with the issuer serve would have:
// OAUTHD_ISSUER, else the file's issuer or addr, with OAUTHD_ADDR over it.
func TestClientCreateIssuerAsServe(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "o.db")
	for i, tc := range []struct {
		vars map[string]string
		want string
	}{
		{map[string]string{"OAUTHD_DB": db}, "http://localhost:8000/oauth/token"},
		{map[string]string{"OAUTHD_DB": db, "OAUTHD_ADDR": "localhost:19806"}, "http://localhost:19806/oauth/token"},
		{map[string]string{"OAUTHD_DB": db, "OAUTHD_ADDR": "localhost:19806", "OAUTHD_ISSUER": "https://auth.example.com"}, "https://auth.example.com/oauth/token"},
	} {
		r := runCmd(ctx, tc.vars, nil, "client", "create", "--id", fmt.Sprintf("svc%d", i), "--grant", "client_credentials", "--scope", "read")
		if r.code != 0 || !strings.Contains(r.stdout, tc.want) {
			t.Errorf("client create with %v: %d %s %s; want %s", tc.vars, r.code, r.stdout, r.stderr, tc.want)
		}
	}
}

// config check and serve refuse an addr on every interface without
// issuer, in one line saying what to set; config print shows no issuer
// for it. The container image's file is such a configuration.
func TestEveryInterfaceNeedsIssuer(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "oauthd.db")
	container, err := filepath.Abs("../../deploy/container.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(container)
	if err != nil {
		t.Fatal(err)
	}
	issuerLine := 0
	for i, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "issuer:") {
			issuerLine = i + 1
		}
	}
	const fix = "set issuer (OAUTHD_ISSUER or --issuer) to the URL clients use, or to http://localhost:8000 for a try on this machine"
	for _, tt := range []struct {
		name string
		env  map[string]string
		args []string
		want string // stderr; "" for a valid configuration
	}{
		{"no host is refused", nil, []string{"--addr", ":8000"},
			`oauthd: config: issuer: not set, and addr ":8000" listens on every interface, so there is no default: ` + fix + "\n"},
		{"0.0.0.0 is refused", nil, []string{"--addr", "0.0.0.0:8000"},
			`oauthd: config: issuer: not set, and addr "0.0.0.0:8000" listens on every interface, so there is no default: ` + fix + "\n"},
		{"[::] is refused", nil, []string{"--addr", "[::]:8000"},
			`oauthd: config: issuer: not set, and addr "[::]:8000" listens on every interface, so there is no default: ` + fix + "\n"},
		{"the container's file without OAUTHD_ISSUER is refused", map[string]string{"OAUTHD_CONFIG": container}, nil,
			`oauthd: config: issuer: not set, and addr ":8000" listens on every interface, so there is no default: ` + fix + fmt.Sprintf(" (set by %s:%d)\n", container, issuerLine)},
		{"the container's file with OAUTHD_ISSUER is valid", map[string]string{"OAUTHD_CONFIG": container, "OAUTHD_ISSUER": "https://auth.example.com"}, nil, ""},
		{"every interface with --issuer is valid", nil, []string{"--addr", ":8000", "--issuer", "https://auth.example.com"}, ""},
		{"the try on this machine is valid", nil, []string{"--addr", ":8000", "--issuer", "http://localhost:8000"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, cmd := range []string{"config check", "serve"} {
				if cmd == "serve" && tt.want == "" {
					continue // it would listen on every interface
				}
				r := runCmd(ctx, tt.env, nil, append(append(strings.Fields(cmd), "--db", db), tt.args...)...)
				switch {
				case tt.want == "" && (r.code != 0 || r.stderr != ""):
					t.Errorf("%s: exit %d, stderr %q; want 0 and nothing", cmd, r.code, r.stderr)
				case tt.want != "" && (r.code != 1 || r.stderr != tt.want):
					t.Errorf("%s: exit %d, stderr\n%q\nwant 1 and\n%q", cmd, r.code, r.stderr, tt.want)
				}
			}
			r := runCmd(ctx, tt.env, nil, append([]string{"config", "print", "--db", db}, tt.args...)...)
			if iss := "issuer: \"\"\n"; r.code != 0 || tt.want != "" && !strings.HasPrefix(r.stdout, iss) {
				t.Errorf("config print: exit %d, stdout %q; want 0 and %q", r.code, r.stdout, iss)
			}
		})
	}
	if r := runCmd(ctx, nil, nil, "config", "print", "--addr", "localhost:9000"); !strings.HasPrefix(r.stdout, "issuer: http://localhost:9000\n") {
		t.Errorf("config print --addr localhost:9000: %q; want the derived issuer", r.stdout)
	}
}

// writeTestCert writes a self-signed certificate for 127.0.0.1, valid from
// notBefore to notAfter, and its key into dir.
func writeTestCert(t *testing.T, dir string, notBefore, notAfter time.Time) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: notBefore, NotAfter: notAfter,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// config check prints what is likely a mistake as warnings on standard
// error, one line each, and still says the configuration is valid; it
// refuses a certificate that has expired or is not valid yet.
func TestConfigCheckWarnings(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "oauthd.db")
	now := time.Now()
	good, goodKey := writeTestCert(t, t.TempDir(), now.Add(-time.Hour), now.Add(90*24*time.Hour))
	soon, soonKey := writeTestCert(t, t.TempDir(), now.Add(-time.Hour), now.Add(3*24*time.Hour))
	expired, expiredKey := writeTestCert(t, t.TempDir(), now.Add(-48*time.Hour), now.Add(-24*time.Hour))
	future, futureKey := writeTestCert(t, t.TempDir(), now.Add(24*time.Hour), now.Add(48*time.Hour))
	if err := os.Chmod(goodKey, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name    string
		args    []string
		code    int
		wantErr []string // stderr lines, in order (a prefix of each)
	}{
		{"proxies covering every address are warned about", []string{"--trusted-proxies", "127.0.0.1,0.0.0.0/0,::/0"}, 0, []string{
			"oauthd: warning: config: trusted_proxies: 0.0.0.0/0 covers every IPv4 address: any client can then choose the IP it is logged and rate-limited as, by sending X-Forwarded-For; list only the reverse proxies' addresses",
			"oauthd: warning: config: trusted_proxies: ::/0 covers every IPv6 address",
		}},
		{"private proxy ranges are fine", []string{"--trusted-proxies", "10.0.0.0/8,fc00::/7,127.0.0.1"}, 0, nil},
		{"key readable by others is warned about", []string{"--tls-cert-file", good, "--tls-key-file", goodKey}, 0, []string{
			"oauthd: warning: config: tls.key_file: " + goodKey + " is readable by its group or by others (mode 0644): make it readable by the server's user only (chmod 600)",
		}},
		{"certificate expiring soon is warned about", []string{"--tls-cert-file", soon, "--tls-key-file", soonKey}, 0, []string{
			"oauthd: warning: config: tls.cert_file: " + soon + ": the TLS certificate expires at",
		}},
		{"expired certificate is an error", []string{"--tls-cert-file", expired, "--tls-key-file", expiredKey}, 1, []string{
			"oauthd: config: tls.cert_file: " + expired + ": the TLS certificate expired at",
		}},
		{"certificate not yet valid is an error", []string{"--tls-cert-file", future, "--tls-key-file", futureKey}, 1, []string{
			"oauthd: config: tls.cert_file: " + future + ": the TLS certificate is not valid before",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := runCmd(ctx, nil, nil, append([]string{"config", "check", "--addr", "127.0.0.1:8443", "--db", db}, tt.args...)...)
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if r.stderr == "" {
				lines = nil
			}
			ok := r.code == tt.code && len(lines) == len(tt.wantErr)
			for i := 0; ok && i < len(lines); i++ {
				ok = strings.HasPrefix(lines[i], tt.wantErr[i])
			}
			if !ok {
				t.Errorf("exit %d, stderr %q; want %d and lines starting %q", r.code, r.stderr, tt.code, tt.wantErr)
			}
			if valid := strings.Contains(r.stdout, "the configuration is valid"); valid != (tt.code == 0) {
				t.Errorf("stdout %q; want it valid: %v", r.stdout, tt.code == 0)
			}
		})
	}
}
