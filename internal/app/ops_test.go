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
		`oauthd_store_errors_total{op="CreateTokens"}`:                                    "0",
		`oauthd_store_errors_total{op="RedeemAuthCode"}`:                                  "0",
		`oauthd_store_errors_total{op="Ping"}`:                                            "0",
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

// Every flow, logged at debug level in JSON and in text, leaves no
// password, client secret, code, code verifier, token, ID token, cookie or
// Basic header in the log, raw, URL-encoded or JSON-escaped, and no error
// answer carries one either; each request has one line with its request id
// and client IP (from X-Forwarded-For only when the peer is a trusted
// proxy).
func TestNoSecretsInLogs(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) { noSecretsInLogs(t, format) })
	}
}

func noSecretsInLogs(t *testing.T, format string) {
	const (
		password      = "Tr0ub4dor correct/horse&=é+%"
		wrongPassword = "wr0ng-pa55word guess/&="
		clientSecret  = "s3cr3t-client-value-xyz"
		basicSecret   = "s3cr3t:basic/&=+ value"
		wrongSecret   = "wr0ng-client-secret-1a2b3c"
	)
	var logs syncBuffer
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "oauthd.db"), LogLevel: "debug", LogFormat: format}
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
	// Every answer the clients get is recorded, for the check of the
	// error answers.
	rec := &leakRecorder{}
	hc := &http.Client{Transport: rec, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
	person := func() *person {
		p := newPerson(t)
		p.c.Transport = rec
		return p
	}
	uh, _ := secret.Hash(password)
	ch, _ := secret.Hash(clientSecret)
	bh, _ := secret.Hash(basicSecret)
	if err := m.Store.CreateUser(ctx, &oauthd.User{ID: app.NewUserID(), Username: "carol", PasswordHash: uh}); err != nil {
		t.Fatal(err)
	}
	all := []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials, oauthd.GrantPassword}
	for _, c := range []*oauthd.Client{
		{ID: "logtest", SecretHash: ch, RedirectURIs: []string{app.DemoRedirectURI}, GrantTypes: all, Scopes: []string{"openid", "email"}, TokenEndpointAuthMethod: oauthd.AuthMethodPost},
		{ID: "logbasic", SecretHash: bh, RedirectURIs: []string{app.DemoRedirectURI}, GrantTypes: all, Scopes: []string{"openid", "email"}, TokenEndpointAuthMethod: oauthd.AuthMethodBasic},
		{ID: "logpublic", Public: true, TokenEndpointAuthMethod: oauthd.AuthMethodNone, RedirectURIs: []string{"http://127.0.0.1/cb"},
			GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"}},
	} {
		if err := m.Store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	iss := "http://" + m.Addr()
	secrets := []string{password, wrongPassword, clientSecret, basicSecret, wrongSecret,
		basicAuth("logbasic", basicSecret), basicAuth("logbasic", wrongSecret), basicAuth("logpublic", wrongSecret)}

	conf := &oauth2.Config{ClientID: "logtest", ClientSecret: clientSecret, RedirectURL: app.DemoRedirectURI, Scopes: []string{"openid", "email"},
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth/authorize", TokenURL: iss + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	verifier := oauth2.GenerateVerifier()
	secrets = append(secrets, verifier)
	authURL := conf.AuthCodeURL("st4te-value", oauth2.S256ChallengeOption(verifier))
	person().walk(authURL, app.DemoRedirectURI, "carol", wrongPassword, "approve")
	person().walk(authURL, app.DemoRedirectURI, "nobody", password, "approve")
	p := person()
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
	// call sends a request through the recording client.
	call := func(method, path, auth string, form url.Values) map[string]any {
		t.Helper()
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		req, _ := http.NewRequest(method, iss+path, body)
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var v map[string]any
		json.NewDecoder(res.Body).Decode(&v)
		return v
	}
	// userinfo with the access token (and, wrongly, with the refresh
	// token), and RP-initiated logout with the ID token.
	call("GET", "/oauth/userinfo", "Bearer "+tok.AccessToken, nil)
	call("GET", "/oauth/userinfo", "Bearer "+tok.RefreshToken, nil)
	call("POST", "/oauth/userinfo", "Bearer "+tok.AccessToken, url.Values{"access_token": {tok.AccessToken}})
	call("GET", "/oauth/logout?id_token_hint="+idToken, "", nil)
	old := *tok
	tok.Expiry = time.Now().Add(-time.Minute)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, fresh.AccessToken, fresh.RefreshToken)
	// The replayed code with a wrong verifier, introspection, revocation,
	// the password grant, client credentials and a wrong client secret.
	wrongVerifier := oauth2.GenerateVerifier()
	secrets = append(secrets, wrongVerifier)
	conf.Exchange(ctx, code, oauth2.VerifierOption(wrongVerifier))
	post := func(path string, form url.Values) map[string]any {
		req, _ := http.NewRequest("POST", iss+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", "203.0.113.9")
		res, err := hc.Do(req)
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
	call("GET", "/oauth/login?username=carol&password="+url.QueryEscape(password), "", nil)

	// A refresh token reused after rotation (revokes its grant), the
	// password grant failing, and every kind of failed client
	// authentication, through Basic too.
	call("POST", "/oauth/token", "", with("grant_type", "refresh_token", "refresh_token", old.RefreshToken))
	call("POST", "/oauth/token", "", with("grant_type", "password", "username", "carol", "password", wrongPassword))
	call("POST", "/oauth/token", "", with("grant_type", "password", "username", "nobody", "password", password))
	bc := call("POST", "/oauth/token", basicAuth("logbasic", basicSecret), url.Values{"grant_type": {"client_credentials"}})
	if s, _ := bc["access_token"].(string); s == "" {
		t.Fatalf("no token with Basic: %v", bc)
	} else {
		secrets = append(secrets, s)
	}
	call("POST", "/oauth/token", basicAuth("logbasic", wrongSecret), url.Values{"grant_type": {"client_credentials"}})
	call("POST", "/oauth/token", basicAuth("nobody", basicSecret), url.Values{"grant_type": {"client_credentials"}})
	call("POST", "/oauth/token", basicAuth("logpublic", wrongSecret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	call("POST", "/oauth/token", basicAuth("logbasic", basicSecret), url.Values{"grant_type": {"client_credentials"}, "client_secret": {basicSecret}})
	call("POST", "/oauth/introspect", basicAuth("logbasic", wrongSecret), url.Values{"token": {tok.AccessToken}})
	call("POST", "/oauth/revoke", basicAuth("logbasic", wrongSecret), url.Values{"token": {tok.RefreshToken}})
	call("POST", "/oauth/token?client_secret="+url.QueryEscape(clientSecret)+"&password="+url.QueryEscape(password), "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"logtest"}})
	req, _ := http.NewRequest("POST", iss+"/oauth/token", strings.NewReader("client_id=logtest&client_secret="+url.QueryEscape(clientSecret)+"&grant_type=%ff"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err := hc.Do(req); err == nil {
		res.Body.Close()
	}
	// A public client with a wrong verifier, and a login form posted with
	// a forged CSRF token.
	pv := oauth2.GenerateVerifier()
	secrets = append(secrets, pv)
	pub := &oauth2.Config{ClientID: "logpublic", RedirectURL: "http://127.0.0.1:4321/cb", Scopes: []string{"email"},
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth/authorize", TokenURL: iss + "/oauth/token", AuthStyle: oauth2.AuthStyleInParams}}
	loc, err = p.walk(pub.AuthCodeURL("s", oauth2.S256ChallengeOption(pv)), "http://127.0.0.1:4321/cb", "carol", password, "approve")
	if err != nil {
		t.Fatal(err)
	}
	pcode := mustParse(loc).Query().Get("code")
	secrets = append(secrets, pcode)
	pub.Exchange(ctx, pcode, oauth2.VerifierOption(wrongVerifier))
	call("POST", "/oauth/login", "", url.Values{"username": {"carol"}, "password": {password}, "csrf": {"forged"}})

	m.Shutdown(context.Background())
	out := logs.String()
	needles := secretForms(secrets)
	for _, l := range strings.Split(out, "\n") {
		for _, s := range needles {
			if strings.Contains(l, s) {
				t.Errorf("a log line holds the secret %q: %s", s, l)
			}
		}
	}
	if strings.Contains(out, "st4te-value") {
		t.Error("the log holds a query string")
	}
	checkAnswers(t, rec, needles, app.DemoRedirectURI, "http://127.0.0.1:4321/cb")
	n, fromProxy := 0, 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec map[string]any
		switch format {
		case "json":
			if err := json.Unmarshal([]byte(l), &rec); err != nil {
				t.Fatalf("not a JSON log line: %s", l)
			}
		case "text":
			if !strings.Contains(l, "msg=request ") {
				continue
			}
			rec = map[string]any{"msg": "request"}
			for _, f := range strings.Fields(l) {
				if k, v, ok := strings.Cut(f, "="); ok && (k == "request_id" || k == "ip") {
					rec[k] = v
				}
			}
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
	if n < 40 || fromProxy != 5 {
		t.Errorf("%d request lines, %d with the forwarded client IP; want at least 40 and 5", n, fromProxy)
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
		{"postgres password hidden", app.Config{Addr: "127.0.0.1:0", DB: "postgres://u:hunter2@127.0.0.1:1/x"}, "postgres://u:xxxxx@127.0.0.1:1/x"},
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
