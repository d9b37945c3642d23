package app_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/secret"
)

// metricLines returns the sample lines of /metrics.
func metricLines(t *testing.T, base string) map[string]string {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	lines := map[string]string{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		if i := strings.LastIndexByte(l, ' '); i > 0 {
			lines[l[:i]] = l[i+1:]
		}
	}
	return lines
}

// After the walkthrough's token request, /metrics counts it by endpoint
// pattern, method and code, times it, counts the token by grant, and
// counts unknown paths as "other".
func TestMetrics(t *testing.T) {
	m := start(t)
	iss := "http://" + m.Addr()
	loc, err := newPerson(t).walk(app.DemoAuthorizeURL(iss), app.DemoRedirectURI, "admin", "admin", "approve")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := tokenize(t, iss, url.Values{"grant_type": {"authorization_code"}, "code": {mustParse(loc).Query().Get("code")}, "redirect_uri": {app.DemoRedirectURI}}); st != 200 {
		t.Fatalf("tokenize: %d", st)
	}
	newPerson(t).walk(app.DemoAuthorizeURL(iss), app.DemoRedirectURI, "admin", "wrong", "approve")
	http.Get(iss + "/no/such/path?code=secret")

	lines := metricLines(t, iss)
	for k, want := range map[string]string{
		`oauthd_http_requests_total{code="200",endpoint="/oauth/tokenize",method="POST"}`: "1",
		`oauthd_http_request_duration_seconds_count{endpoint="/oauth/tokenize"}`:          "1",
		`oauthd_tokens_issued_total{grant="authorization_code"}`:                          "1",
		`oauthd_tokens_issued_total{grant="refresh_token"}`:                               "0",
		`oauthd_http_requests_total{code="404",endpoint="other",method="GET"}`:            "1",
		`oauthd_login_failures_total`:                                                     "1",
		`oauthd_rate_limited_total{limit="login_account"}`:                                "0",
		`oauthd_gc_deleted_total`:                                                         "0",
	} {
		if got, ok := lines[k]; !ok || got != want {
			t.Errorf("%s = %q (present %v); want %s", k, got, ok, want)
		}
	}
	if _, ok := lines[`oauthd_http_requests_total{code="303",endpoint="/oauth/authorize",method="GET"}`]; !ok {
		t.Error("no count for the authorize redirects")
	}
	for k := range lines {
		if strings.Contains(k, "/no/such/path") {
			t.Errorf("a raw path became a label: %s", k)
		}
	}
	if st, body := get(t, iss+"/healthz"); st != 200 || body != "ok\n" {
		t.Errorf("/healthz: %d %q", st, body)
	}
	if st, body := get(t, iss+"/readyz"); st != 200 || body != "ok\n" {
		t.Errorf("/readyz: %d %q", st, body)
	}
}

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// syncBuffer is a log destination for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Every flow, logged at debug level, leaves no password, client secret,
// code, code verifier, token or cookie in the log; each request has one
// line with its request id and client IP (from X-Forwarded-For only when
// the peer is a trusted proxy).
func TestNoSecretsInLogs(t *testing.T) {
	const (
		password      = "Tr0ub4dor-correct-horse"
		wrongPassword = "wr0ng-pa55word-guess"
		clientSecret  = "s3cr3t-client-value-xyz"
	)
	var logs syncBuffer
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "oauthd.db"), LogLevel: "debug", LogFormat: "json"}
	cfg.Provider.EnablePasswordGrant = true
	cfg.Provider.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	m, err := app.Open(context.Background(), cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	defer func() {
		m.Shutdown(context.Background())
		<-done
	}()
	ctx := context.Background()
	uh, _ := secret.Hash(password)
	ch, _ := secret.Hash(clientSecret)
	if err := m.Store.CreateUser(ctx, &oauthd.User{ID: app.NewUserID(), Username: "carol", PasswordHash: uh}); err != nil {
		t.Fatal(err)
	}
	if err := m.Store.CreateClient(ctx, &oauthd.Client{ID: "logtest", SecretHash: ch, RedirectURIs: []string{app.DemoRedirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials, oauthd.GrantPassword},
		Scopes:     []string{"openid", "email"}, TokenEndpointAuthMethod: oauthd.AuthMethodPost}); err != nil {
		t.Fatal(err)
	}
	iss := "http://" + m.Addr()
	secrets := []string{password, wrongPassword, clientSecret}

	conf := &oauth2.Config{ClientID: "logtest", ClientSecret: clientSecret, RedirectURL: app.DemoRedirectURI, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth/authorize", TokenURL: iss + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	secrets = append(secrets, verifier)
	authURL := conf.AuthCodeURL("st4te-value", oauth2.S256ChallengeOption(verifier))
	newPerson(t).walk(authURL, app.DemoRedirectURI, "carol", wrongPassword, "approve")
	p := newPerson(t)
	loc, err := p.walk(authURL, app.DemoRedirectURI, "carol", password, "approve")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(iss)
	for _, c := range p.c.Jar.Cookies(u) {
		secrets = append(secrets, c.Value)
	}
	code := mustParse(loc).Query().Get("code")
	secrets = append(secrets, code)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)
	if idToken == "" {
		t.Fatal("no id_token")
	}
	secrets = append(secrets, tok.AccessToken, tok.RefreshToken, idToken)
	// userinfo with the access token, and RP-initiated logout with the ID token.
	ureq, _ := http.NewRequest("GET", iss+"/oauth/userinfo", nil)
	ureq.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if res, err := http.DefaultClient.Do(ureq); err == nil {
		res.Body.Close()
	}
	http.Get(iss + "/oauth/logout?id_token_hint=" + idToken)
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, fresh.AccessToken, fresh.RefreshToken)
	// The replayed code, introspection, revocation, the password grant,
	// client credentials and a wrong client secret.
	conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	post := func(path string, form url.Values) map[string]any {
		req, _ := http.NewRequest("POST", iss+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		json.NewDecoder(res.Body).Decode(&v)
		return v
	}
	cred := url.Values{"client_id": {"logtest"}, "client_secret": {clientSecret}}
	with := func(kv ...string) url.Values {
		f := url.Values{}
		for k, v := range cred {
			f[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			f.Set(kv[i], kv[i+1])
		}
		return f
	}
	post("/oauth/introspect", with("token", fresh.AccessToken))
	post("/oauth/revoke", with("token", fresh.RefreshToken))
	pw := post("/oauth/token", with("grant_type", "password", "username", "carol", "password", password))
	cc := post("/oauth/token", with("grant_type", "client_credentials"))
	for _, v := range []map[string]any{pw, cc} {
		s, _ := v["access_token"].(string)
		if s == "" {
			t.Fatalf("no token: %v", v)
		}
		secrets = append(secrets, s)
	}
	post("/oauth/token", url.Values{"client_id": {"logtest"}, "client_secret": {"wrong-" + clientSecret}, "grant_type": {"client_credentials"}})
	http.Get(iss + "/oauth/login?username=carol&password=" + password)

	m.Shutdown(context.Background())
	out := logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the log holds a secret %q", s)
		}
	}
	if strings.Contains(out, "st4te-value") {
		t.Error("the log holds a query string")
	}
	n, fromProxy := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON log line: %s", l)
		}
		if rec["msg"] == "request" {
			n++
			if rec["request_id"] == "" || rec["ip"] == nil {
				t.Errorf("request line without request_id or ip: %s", l)
			}
			if rec["ip"] == "203.0.113.9" {
				fromProxy++
			}
		}
	}
	if n < 17 || fromProxy != 5 {
		t.Errorf("%d request lines, %d with the forwarded client IP; want at least 17 and 5", n, fromProxy)
	}
}

// Start-up fails fast, naming the problem.
func TestOpenFailsFast(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	db := filepath.Join(t.TempDir(), "oauthd.db")
	tests := []struct {
		name string
		cfg  app.Config
		want string
	}{
		{"store unreachable", app.Config{Addr: "127.0.0.1:0", DB: "/nonexistent-dir/sub/oauthd.db"}, "opening the store /nonexistent-dir/sub/oauthd.db (db)"},
		{"bad config", app.Config{Addr: "127.0.0.1:0", DB: db, LogFormat: "xml"}, "config: log.format"},
		{"bad lifetime", app.Config{Addr: "127.0.0.1:0", DB: db, Provider: oauthd.Config{CodeTTL: time.Hour}}, "config: lifetimes.code_ttl"},
		{"address taken", app.Config{Addr: taken.Addr().String(), DB: db}, "listening on " + taken.Addr().String() + " (addr)"},
		{"postgres password hidden", app.Config{Addr: "127.0.0.1:0", DB: "postgres://u:hunter2@127.0.0.1:1/x"}, "postgres://u:***@127.0.0.1:1/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			m, err := app.Open(context.Background(), tt.cfg, io.Discard)
			if err == nil {
				m.Shutdown(context.Background())
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q; want it to contain %q", err, tt.want)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s to fail", d)
			}
		})
	}
	if _, err := os.Stat("/nonexistent-dir"); err == nil {
		t.Error("Open created the store's directory")
	}
}
