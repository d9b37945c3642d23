package main

import (
	"bytes"
	"context"
	"fmt"
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
		{[]string{"config", "check", "--config", good, "--db", "/nonexistent-dir/sub/oauthd.db"}, nil, "config: db: the directory of /nonexistent-dir/sub/oauthd.db: no such file or directory"},
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
