package app_test

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oauthd/oauthd/internal/app"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "oauthd.yaml")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// load runs Load with an environment and command-line flags.
func load(t *testing.T, env map[string]string, args ...string) (app.Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fv := app.Flags(fs)
	if err := fs.Parse(args); err != nil {
		return app.Config{}, err
	}
	return app.Load(func(k string) string { return env[k] }, fv)
}

// Defaults < file < environment < flags, key by key.
func TestConfigPrecedence(t *testing.T) {
	file := writeFile(t, "addr: file:1\nlifetimes:\n  access_token_ttl: 2h\n  session_ttl: 3h\nlog:\n  level: warn\n")
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		addr    string
		access  time.Duration
		session time.Duration
		level   string
	}{
		{"defaults", nil, nil, "localhost:8000", time.Hour, 24 * time.Hour, "info"},
		{"file via OAUTHD_CONFIG", map[string]string{"OAUTHD_CONFIG": file}, nil, "file:1", 2 * time.Hour, 3 * time.Hour, "warn"},
		{"file via --config", nil, []string{"--config", file}, "file:1", 2 * time.Hour, 3 * time.Hour, "warn"},
		{"--config wins over OAUTHD_CONFIG", map[string]string{"OAUTHD_CONFIG": "/nonexistent.yaml"}, []string{"--config", file}, "file:1", 2 * time.Hour, 3 * time.Hour, "warn"},
		{"environment over file", map[string]string{"OAUTHD_CONFIG": file, "OAUTHD_ADDR": "env:2", "OAUTHD_LIFETIMES_ACCESS_TOKEN_TTL": "5m"}, nil,
			"env:2", 5 * time.Minute, 3 * time.Hour, "warn"},
		{"flags over environment and file", map[string]string{"OAUTHD_CONFIG": file, "OAUTHD_ADDR": "env:2", "OAUTHD_LOG_LEVEL": "error"},
			[]string{"--addr", "flag:3", "--lifetimes-session-ttl", "10m"}, "flag:3", 2 * time.Hour, 10 * time.Minute, "error"},
		{"environment over defaults without a file", map[string]string{"OAUTHD_LOG_LEVEL": "debug"}, nil, "localhost:8000", time.Hour, 24 * time.Hour, "debug"},
		{"the last of a repeated flag", nil, []string{"--addr", "a:1", "--addr", "b:2"}, "b:2", time.Hour, 24 * time.Hour, "info"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := load(t, tt.env, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if c.Addr != tt.addr || c.Provider.AccessTokenTTL != tt.access || c.Provider.SessionTTL != tt.session || c.LogLevel != tt.level {
				t.Errorf("addr %s, access %s, session %s, level %s; want %s, %s, %s, %s",
					c.Addr, c.Provider.AccessTokenTTL, c.Provider.SessionTTL, c.LogLevel, tt.addr, tt.access, tt.session, tt.level)
			}
		})
	}
}

// Every kind of setting from every source.
func TestConfigKinds(t *testing.T) {
	file := writeFile(t, `
trusted_proxies: [10.0.0.0/8, "::1"]
grants:
  enable_password_grant: true
ui:
  scope_descriptions:
    read: Read your files
rate_limit:
  login_account:
    max_failures: 0
  client:
    max_failures: 3
    lockout: 2s
metrics:
  enabled: false
`)
	c, err := load(t, map[string]string{"OAUTHD_CONFIG": file, "OAUTHD_GC_BATCH_SIZE": "50"},
		"--grants-allow-plain-pkce", "--trusted-proxies", "192.0.2.1,2001:db8::/32", "--rate-limit-login-ip-window", "1h")
	if err != nil {
		t.Fatal(err)
	}
	p := c.Provider
	var proxies []string
	for _, pr := range p.TrustedProxies {
		proxies = append(proxies, pr.String())
	}
	if got := strings.Join(proxies, " "); got != "192.0.2.1/32 2001:db8::/32" {
		t.Errorf("trusted proxies %s; want the flag's, replacing the file's", got)
	}
	if !p.EnablePasswordGrant || !p.AllowPlainPKCE || p.EnableImplicitGrant {
		t.Errorf("grants: password %v, plain %v, implicit %v", p.EnablePasswordGrant, p.AllowPlainPKCE, p.EnableImplicitGrant)
	}
	if c.UI.ScopeDescriptions["read"] != "Read your files" {
		t.Errorf("scope descriptions %v", c.UI.ScopeDescriptions)
	}
	if p.LoginLimit.Enabled() || p.ClientLimit.MaxFailures != 3 || p.ClientLimit.Lockout != 2*time.Second || p.ClientLimit.Window != time.Minute || p.LoginIPLimit.Window != time.Hour {
		t.Errorf("limits: account %+v, client %+v, ip %+v", p.LoginLimit, p.ClientLimit, p.LoginIPLimit)
	}
	if !c.MetricsDisabled || c.GCBatchSize != 50 {
		t.Errorf("metrics disabled %v, gc batch %d", c.MetricsDisabled, c.GCBatchSize)
	}
}

// Errors name the key, and the file line or variable that set it.
func TestConfigErrorsNameTheField(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown key", "lifetimes:\n  acess_token_ttl: 1h\n", nil, nil, `oauthd.yaml:2: unknown key "lifetimes.acess_token_ttl"`},
		{"unknown group", "logging:\n  level: info\n", nil, nil, `oauthd.yaml:1: unknown key "logging"`},
		{"key twice", "addr: a:1\naddr: b:2\n", nil, nil, "addr"},
		{"bad duration in the file", "gc:\n  interval: soon\n", nil, nil, `oauthd.yaml:2: gc.interval: "soon" is not a duration`},
		{"list for a scalar", "addr: [a, b]\n", nil, nil, "addr: want a single value"},
		{"bad bool", "demo: maybe\n", nil, nil, `demo: "maybe" is not true or false`},
		{"bad YAML", "addr: [\n", nil, nil, "oauthd.yaml"},
		{"bad duration in the environment", "", map[string]string{"OAUTHD_LIFETIMES_CODE_TTL": "5x"}, nil, "lifetimes.code_ttl (OAUTHD_LIFETIMES_CODE_TTL)"},
		{"bad proxy", "trusted_proxies: [10.0.0.0/33]\n", nil, nil, "trusted_proxies"},
		{"too short", "lifetimes:\n  access_token_ttl: 0s\n", nil, nil, "config: lifetimes.access_token_ttl: must be at least 1s"},
		{"code too long", "", nil, []string{"--lifetimes-code-ttl", "11m"}, "config: lifetimes.code_ttl: must be at most 10m (RFC 6749 §4.1.2) (set by --lifetimes-code-ttl)"},
		{"range error names the file line", "lifetimes:\n  code_ttl: 11m\n", nil, nil, "config: lifetimes.code_ttl: must be at most 10m (RFC 6749 §4.1.2) (set by "},
		{"range error names the variable", "", map[string]string{"OAUTHD_GC_BATCH_SIZE": "0"}, nil, "config: gc.batch_size: must be between 1 and 100000 (set by OAUTHD_GC_BATCH_SIZE)"},
		{"log format", "log:\n  format: xml\n", nil, nil, "config: log.format"},
		{"log level", "", map[string]string{"OAUTHD_LOG_LEVEL": "loud"}, nil, "config: log.level"},
		{"issuer", "issuer: http://auth.example.com\n", nil, nil, "config: issuer: "},
		{"issuer with a path", "issuer: https://example.com/auth\n", nil, nil, "config: issuer: issuer \"https://example.com/auth\" has a path; oauthd serves at the root of its host"},
		{"addr", "addr: nocolon\n", nil, nil, "config: addr"},
		{"tls half", "tls:\n  cert_file: /x.pem\n", nil, nil, "config: tls.key_file: is required"},
		{"tls files", "tls:\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n", nil, nil, "config: tls.cert_file"},
		{"gc batch", "gc:\n  batch_size: 0\n", nil, nil, "config: gc.batch_size"},
		{"limit lockout", "rate_limit:\n  client:\n    lockout: 10m\n    max_lockout: 1m\n", nil, nil, "config: rate_limit.client.max_lockout"},
		{"metrics addr", "addr: 127.0.0.1:9\nmetrics:\n  addr: 127.0.0.1:9\n", nil, nil, "config: metrics.addr"},
		{"ui colour", "ui:\n  primary_color: notacolour\n", nil, nil, "config: ui.primary_color"},
		{"ui theme dir", "ui:\n  theme_dir: /nonexistent/theme\n", nil, nil, "config: ui.theme_dir"},
		{"ui locale", "ui:\n  default_locale: xx\n", nil, nil, "config: ui.default_locale"},
		{"scope descriptions", "ui:\n  scope_descriptions: [a]\n", nil, nil, "ui.scope_descriptions: want a map"},
		{"missing file", "", map[string]string{"OAUTHD_CONFIG": "/nonexistent/oauthd.yaml"}, nil, "/nonexistent/oauthd.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range tt.env {
				env[k] = v
			}
			if tt.file != "" {
				env["OAUTHD_CONFIG"] = writeFile(t, tt.file)
			}
			_, err := load(t, env, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v; want one containing %q", err, tt.want)
			}
		})
	}
	// A flag with a bad value is refused when parsed.
	if _, err := load(t, nil, "--gc-interval", "often"); err == nil {
		t.Error("--gc-interval often was accepted")
	}
}

// An empty file is the defaults.
func TestConfigEmptyFile(t *testing.T) {
	c, err := load(t, map[string]string{"OAUTHD_CONFIG": writeFile(t, "# nothing\n")})
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	c.WriteYAML(&a)
	d := app.Default()
	d.WriteYAML(&b)
	if a.String() != b.String() {
		t.Errorf("empty file:\n%s\nwant the defaults:\n%s", a.String(), b.String())
	}
}

// config print masks secrets, and what it prints reads back as the same
// configuration.
func TestConfigPrint(t *testing.T) {
	c, err := load(t, map[string]string{"OAUTHD_DB": "postgres://oauthd:s3cret@db.internal:5432/oauthd?sslmode=require"},
		"--trusted-proxies", "10.0.0.0/8", "--lifetimes-refresh-grace-period", "90s")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := c.WriteYAML(&out); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	if strings.Contains(s, "s3cret") || !strings.Contains(s, "db: postgres://oauthd:xxxxx@db.internal:5432/oauthd?sslmode=require") {
		t.Errorf("the DSN's password is not masked:\n%s", s)
	}
	for _, want := range []string{"refresh_grace_period: 1m30s", "access_token_ttl: 1h\n", "refresh_token_ttl: 720h\n", "- 10.0.0.0/8", "enabled: true"} {
		if !strings.Contains(s, want) {
			t.Errorf("config print lacks %q:\n%s", want, s)
		}
	}
	c2, err := app.ParseYAML("printed", out.Bytes())
	if err != nil {
		t.Fatalf("printed config does not parse: %v\n%s", err, s)
	}
	var out2 bytes.Buffer
	c2.WriteYAML(&out2)
	if out2.String() != s {
		t.Errorf("printed config reads back differently:\n%s\nwant\n%s", out2.String(), s)
	}
}

func TestMaskDSN(t *testing.T) {
	for in, want := range map[string]string{
		"oauthd.db":                                    "oauthd.db",
		"postgres://u:p@h/db":                          "postgres://u:xxxxx@h/db",
		"postgresql://u@h/db":                          "postgresql://u@h/db",
		"host=h user=u password=p dbname=d":            "host=h user=u password=xxxxx dbname=d",
		"sqlite:/var/lib/oauthd/oauthd.db":             "sqlite:/var/lib/oauthd/oauthd.db",
		"postgres://u@h/db?password=p&sslmode=disable": "postgres://u@h/db?password=xxxxx&sslmode=disable",
	} {
		if got := app.MaskDSN(in); got != want {
			t.Errorf("MaskDSN(%q) = %q; want %q", in, got, want)
		}
	}
}

// yamlKeys lists the dotted keys of the leaves of a YAML document.
func yamlKeys(t *testing.T, b []byte) map[string]bool {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := prefix+n.Content[i].Value, n.Content[i+1]
			if v.Kind == yaml.MappingNode && k != "ui.scope_descriptions" {
				walk(k+".", v)
				continue
			}
			keys[k] = true
		}
	}
	walk("", doc.Content[0])
	return keys
}

// docs/oauthd.example.yaml parses, has every key, and shows the defaults.
func TestExampleConfig(t *testing.T) {
	b, err := os.ReadFile("../../docs/oauthd.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.ParseYAML("oauthd.example.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	keys := yamlKeys(t, b)
	for _, k := range app.Keys() {
		if !keys[k] {
			t.Errorf("docs/oauthd.example.yaml lacks %s", k)
		}
	}
	var got, want bytes.Buffer
	c.WriteYAML(&got)
	d := app.Default()
	d.WriteYAML(&want)
	if got.String() != want.String() {
		t.Errorf("the example's values differ from the defaults:\n%s\nwant\n%s", got.String(), want.String())
	}
}

// The README documents every environment variable.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range app.EnvNames() {
		if !bytes.Contains(b, []byte(n)) {
			t.Errorf("README.md does not mention %s", n)
		}
	}
}

// The container image's configuration parses, keeps the metrics off the
// public port, and leaves the issuer to OAUTHD_ISSUER.
func TestContainerConfig(t *testing.T) {
	b, err := os.ReadFile("../../deploy/container.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := app.ParseYAML("container.yaml", b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8000" || c.DB != "/data/oauthd.db" || c.LogFormat != "json" || c.MetricsAddr != ":9090" {
		t.Errorf("container config: addr %s, db %s, log %s, metrics.addr %s", c.Addr, c.DB, c.LogFormat, c.MetricsAddr)
	}
	// It has no issuer, and listens on every interface: serve requires
	// one (OAUTHD_ISSUER), not a localhost default.
	if err := c.CheckDeployment(); c.Issuer != "" || err == nil || !strings.Contains(err.Error(), "config: issuer: not set") {
		t.Errorf("container config: issuer %q, CheckDeployment %v; want no issuer, and it required", c.Issuer, err)
	}
}

// Any file either parses or is refused with an error; it never panics.
func FuzzParseYAML(f *testing.F) {
	if b, err := os.ReadFile("../../docs/oauthd.example.yaml"); err == nil {
		f.Add(b)
	}
	f.Add([]byte("lifetimes:\n  access_token_ttl: 5m\ntrusted_proxies: [10.0.0.0/8]\n"))
	f.Add([]byte("ui: {scope_descriptions: {a: b}}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := app.ParseYAML("fuzz.yaml", b)
		if err != nil && !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("error without the config: prefix: %v", err)
		}
		if err == nil {
			var out bytes.Buffer
			if werr := c.WriteYAML(&out); werr != nil {
				t.Errorf("WriteYAML: %v", werr)
			}
		}
	})
}

// The key encryption key comes from the file or the environment, never a
// flag, and config print masks it.
func TestKeyEncryptionKey(t *testing.T) {
	const kek = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	c, err := load(t, map[string]string{"OAUTHD_KEY_ENCRYPTION_KEY": kek, "OAUTHD_KEY_ROTATION_PERIOD": "48h"})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Provider.KeyEncryptionKey) != 32 || c.Provider.KeyRotationPeriod != 48*time.Hour {
		t.Fatalf("key %d bytes, rotation %s", len(c.Provider.KeyEncryptionKey), c.Provider.KeyRotationPeriod)
	}
	var out bytes.Buffer
	c.WriteYAML(&out)
	if strings.Contains(out.String(), kek) || !strings.Contains(out.String(), "encryption_key: '***'") {
		t.Errorf("config print does not mask the key:\n%s", out.String())
	}
	if _, err := load(t, nil, "--key-encryption-key", kek); err == nil {
		t.Error("the key was accepted as a flag")
	}
	_, err = load(t, map[string]string{"OAUTHD_CONFIG": writeFile(t, "key:\n  encryption_key: c2hvcnQ=\n")})
	if err == nil || !strings.Contains(err.Error(), "key.encryption_key: is 5 bytes; want 32") {
		t.Errorf("short key: %v", err)
	}
	_, err = load(t, nil, "--key-rotation-period", "30m")
	if err == nil || !strings.Contains(err.Error(), "config: key.rotation_period: must be at least 1h") {
		t.Errorf("short rotation: %v", err)
	}
}

// A value out of range names the file and line that set it.
func TestConfigRangeErrorNamesTheLine(t *testing.T) {
	file := filepath.Join(t.TempDir(), "oauthd.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:0\ngc:\n  batch_size: 0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := app.Load(func(k string) string {
		if k == "OAUTHD_CONFIG" {
			return file
		}
		return ""
	}, nil)
	if err == nil || !strings.Contains(err.Error(), "config: gc.batch_size: must be between 1 and 100000 (set by "+file+":3)") {
		t.Errorf("error %v; want one naming %s:3", err, file)
	}
}

// OAUTHD_ variables that name no setting are reported (a typo would
// otherwise be ignored); settings, their short names, OAUTHD_CONFIG, the
// key encryption key and the tests' own variables are not.
func TestUnknownEnv(t *testing.T) {
	got := app.UnknownEnv([]string{"OAUTHD_GC_BATCHSIZE=5", "OAUTHD_GC_BATCH_SIZE=5", "OAUTHD_CONFIG=x", "OAUTHD_KEY_ENCRYPTION_KEY=k",
		"OAUTHD_PRODUCT_NAME=n", "OAUTHD_TEST_POSTGRES_DSN=d", "HOME=/root", "OAUTHD_ISSUR=https://x"})
	if want := []string{"OAUTHD_GC_BATCHSIZE", "OAUTHD_ISSUR"}; !slices.Equal(got, want) {
		t.Errorf("UnknownEnv = %v; want %v", got, want)
	}
}

// A key=value connection string is PostgreSQL: it is not taken for the name
// of a new SQLite file (which would hold its password in its name).
func TestKeyValueDSNIsPostgres(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	const dsn = "host=127.0.0.1 port=1 user=oauthd password=S3cr3tPW dbname=oauthd sslmode=disable connect_timeout=2"
	_, err := app.OpenStore(t.Context(), dsn, true)
	if err == nil {
		t.Fatal("OpenStore succeeded on a closed port")
	}
	if !strings.Contains(err.Error(), "pgstore") || strings.Contains(err.Error(), "S3cr3tPW") {
		t.Errorf("error %q; want a PostgreSQL connection error without the password", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files created: %v", entries)
	}
}

// A YAML alias used as a key (*name) is refused: YAML reads it as the
// anchored node's value, the configuration had read its name, so
// "&addr issuer: ...\n*addr: ..." set addr behind the "set twice" check.
func TestParseYAMLAliasKey(t *testing.T) {
	_, err := app.ParseYAML("oauthd.yaml", []byte("&addr issuer: https://a.example\n*addr: \":9000\"\n"))
	if err == nil || !strings.Contains(err.Error(), "alias") || !strings.Contains(err.Error(), "oauthd.yaml:2") {
		t.Errorf("an alias as a key: %v; want a refusal naming line 2", err)
	}
}
