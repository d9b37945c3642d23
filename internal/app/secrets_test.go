package app_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/htmlform"
	"github.com/oauthd/oauthd/internal/secret"
)

// leakLog is a log destination for concurrent handlers.
type leakLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *leakLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *leakLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// leakExchange is one request and the answer it got, as the client saw them.
type leakExchange struct {
	method, path string
	status       int
	header       http.Header
	body         string
}

// leakRecorder is an http.RoundTripper that keeps every exchange.
type leakRecorder struct {
	mu  sync.Mutex
	all []leakExchange
}

func (rec *leakRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	res.Body = io.NopCloser(bytes.NewReader(b))
	rec.mu.Lock()
	rec.all = append(rec.all, leakExchange{req.Method, req.URL.Path, res.StatusCode, res.Header.Clone(), string(b)})
	rec.mu.Unlock()
	return res, nil
}

// TestSecretsNeverLogged runs every flow against the real server wiring,
// logging at debug level in both formats, and looks for every password,
// client secret, code, code verifier, token, ID token and cookie value
// issued or sent (raw, URL-encoded, JSON-escaped and inside a Basic
// header) in every log line and in every error answer: zero hits.
// Successful answers may of course carry what they issue (a code in the
// redirect to the client, tokens in a token response, a cookie in
// Set-Cookie); nothing else may.
func TestSecretsNeverLogged(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) { secretsNeverLogged(t, format) })
	}
}

func secretsNeverLogged(t *testing.T, format string) {
	const (
		password      = "Pa55 w0rd/&=é+%-correct-horse"
		wrongPassword = "wr0ng pa55/&=guess"
		basicSecret   = "s3cr3t:basic/&=+ value"
		postSecret    = "s3cr3t-post-value-9f8e7d"
		wrongSecret   = "wr0ng-client-secret-1a2b3c"
	)
	var logs leakLog
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "oauthd.db"), LogLevel: "debug", LogFormat: format}
	cfg.Provider.EnablePasswordGrant = true
	m, err := app.Open(context.Background(), cfg, &logs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			m.Shutdown(context.Background())
			<-done
		}
	}
	defer stop()

	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	uh, _ := secret.Hash(password)
	bh, _ := secret.Hash(basicSecret)
	ph, _ := secret.Hash(postSecret)
	must(m.Store.CreateUser(ctx, &oauthd.User{ID: app.NewUserID(), Username: "carol", PasswordHash: uh, Claims: map[string]any{"email": "carol@example.com"}}))
	all := []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials, oauthd.GrantPassword}
	must(m.Store.CreateClient(ctx, &oauthd.Client{ID: "leak_basic", SecretHash: bh, RedirectURIs: []string{app.DemoRedirectURI},
		PostLogoutRedirectURIs: []string{"https://www.example.com/bye"},
		GrantTypes:             all, Scopes: []string{"openid", "email"}, TokenEndpointAuthMethod: oauthd.AuthMethodBasic}))
	must(m.Store.CreateClient(ctx, &oauthd.Client{ID: "leak_post", SecretHash: ph, RedirectURIs: []string{app.DemoRedirectURI},
		GrantTypes: all, Scopes: []string{"email"}, TokenEndpointAuthMethod: oauthd.AuthMethodPost}))
	must(m.Store.CreateClient(ctx, &oauthd.Client{ID: "leak_public", Public: true, TokenEndpointAuthMethod: oauthd.AuthMethodNone,
		RedirectURIs: []string{"http://127.0.0.1/cb"}, GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}, Scopes: []string{"email"}}))
	iss := "http://" + m.Addr()
	rec := &leakRecorder{}
	hc := &http.Client{Transport: rec, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	secrets := []string{password, wrongPassword, basicSecret, postSecret, wrongSecret}
	keep := func(vs ...string) {
		for _, v := range vs {
			if v == "" {
				t.Fatal("a flow issued nothing")
			}
			secrets = append(secrets, v)
		}
	}
	basicAuth := func(id, sec string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
	}
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
	str := func(v map[string]any, k string) string { s, _ := v[k].(string); return s }
	bAuth := basicAuth("leak_basic", basicSecret)
	keep(bAuth, basicAuth("leak_basic", wrongSecret), basicAuth("leak_public", wrongSecret))
	person := func() *person {
		p := newPerson(t)
		p.c.Transport = rec
		return p
	}

	// The code flow with PKCE and openid, a failed login first.
	verifier := oauthd.RandomToken() + "-v"
	keep(verifier)
	authURL := iss + oauthd.AuthorizePath + "?" + url.Values{"client_id": {"leak_basic"}, "redirect_uri": {app.DemoRedirectURI},
		"response_type": {"code"}, "scope": {"openid email"}, "state": {"st"}, "nonce": {"nn"},
		"code_challenge": {oauthd.S256Challenge(verifier)}, "code_challenge_method": {"S256"}}.Encode()
	if _, err := person().walk(authURL, app.DemoRedirectURI, "carol", wrongPassword, "approve"); err == nil {
		t.Fatal("a wrong password signed in")
	}
	person().walk(authURL, app.DemoRedirectURI, "nobody", password, "approve")
	carol := person()
	loc, err := carol.walk(authURL, app.DemoRedirectURI, "carol", password, "approve")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range carol.c.Jar.Cookies(mustParse(iss)) {
		keep(c.Value)
	}
	code := mustParse(loc).Query().Get("code")
	keep(code)
	wrongVerifier := oauthd.RandomToken() + "-w"
	keep(wrongVerifier)
	tok := call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.DemoRedirectURI}, "code_verifier": {verifier}})
	at, rt, idt := str(tok, "access_token"), str(tok, "refresh_token"), str(tok, "id_token")
	keep(at, rt, idt)
	// The replayed code (revokes the grant) with the wrong verifier.
	call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {app.DemoRedirectURI}, "code_verifier": {wrongVerifier}})

	// A second grant: userinfo, refresh, refresh replay, introspection, revocation.
	loc, err = carol.walk(authURL, app.DemoRedirectURI, "carol", password, "approve")
	if err != nil {
		t.Fatal(err)
	}
	code2 := mustParse(loc).Query().Get("code")
	keep(code2)
	tok = call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"authorization_code"}, "code": {code2}, "redirect_uri": {app.DemoRedirectURI}, "code_verifier": {verifier}})
	at2, rt2 := str(tok, "access_token"), str(tok, "refresh_token")
	keep(at2, rt2, str(tok, "id_token"))
	if ui := call("GET", oauthd.UserinfoPath, "Bearer "+at2, nil); str(ui, "sub") == "" {
		t.Fatalf("userinfo: %v", ui)
	}
	call("GET", oauthd.UserinfoPath, "Bearer "+rt2, nil)
	call("POST", oauthd.UserinfoPath, "Bearer "+at2, url.Values{"access_token": {at2}})
	tok = call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}, "scope": {"openid email admin"}})
	tok = call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}})
	at3, rt3 := str(tok, "access_token"), str(tok, "refresh_token")
	keep(at3, rt3)
	call("POST", oauthd.IntrospectPath, bAuth, url.Values{"token": {at3}})
	call("POST", oauthd.IntrospectPath, basicAuth("leak_post", postSecret), url.Values{"token": {rt3}})
	call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt2}}) // replay: revokes
	call("POST", oauthd.RevokePath, bAuth, url.Values{"token": {at3}})
	call("POST", oauthd.RevokePath, bAuth, url.Values{"token": {rt3}, "token_type_hint": {"refresh_token"}})
	call("POST", oauthd.RevokePath, basicAuth("leak_post", postSecret), url.Values{"token": {at2}})

	// client_credentials (Basic and client_secret_post), the password
	// grant, and every kind of failed client authentication.
	cc := call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"client_credentials"}})
	cc2 := call("POST", oauthd.TokenPath, "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"leak_post"}, "client_secret": {postSecret}})
	pw := call("POST", oauthd.TokenPath, "", url.Values{"grant_type": {"password"}, "client_id": {"leak_post"}, "client_secret": {postSecret},
		"username": {"carol"}, "password": {password}})
	keep(str(cc, "access_token"), str(cc2, "access_token"), str(pw, "access_token"), str(pw, "refresh_token"))
	call("POST", oauthd.TokenPath, "", url.Values{"grant_type": {"password"}, "client_id": {"leak_post"}, "client_secret": {postSecret}, "username": {"carol"}, "password": {wrongPassword}})
	call("POST", oauthd.TokenPath, "", url.Values{"grant_type": {"password"}, "client_id": {"leak_post"}, "client_secret": {postSecret}, "username": {"nobody"}, "password": {password}})
	call("POST", oauthd.TokenPath, basicAuth("leak_basic", wrongSecret), url.Values{"grant_type": {"client_credentials"}})
	call("POST", oauthd.TokenPath, "", url.Values{"grant_type": {"client_credentials"}, "client_id": {"leak_post"}, "client_secret": {wrongSecret}})
	call("POST", oauthd.TokenPath, basicAuth("nobody", basicSecret), url.Values{"grant_type": {"client_credentials"}})
	call("POST", oauthd.TokenPath, basicAuth("leak_public", wrongSecret), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	call("POST", oauthd.TokenPath, bAuth, url.Values{"grant_type": {"client_credentials"}, "client_secret": {basicSecret}})
	call("POST", oauthd.IntrospectPath, basicAuth("leak_basic", wrongSecret), url.Values{"token": {at}})
	call("POST", oauthd.RevokePath, basicAuth("leak_basic", wrongSecret), url.Values{"token": {rt}})
	call("POST", oauthd.TokenPath+"?client_secret="+url.QueryEscape(postSecret)+"&password="+url.QueryEscape(password), "",
		url.Values{"grant_type": {"client_credentials"}, "client_id": {"leak_post"}})
	req, _ := http.NewRequest("POST", iss+oauthd.TokenPath, strings.NewReader("client_id=leak_post&client_secret="+url.QueryEscape(postSecret)+"&grant_type=%ff"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err := hc.Do(req); err == nil {
		res.Body.Close()
	}

	// The public client with PKCE, and a wrong verifier.
	pv := oauthd.RandomToken()
	keep(pv)
	pubURL := iss + oauthd.AuthorizePath + "?" + url.Values{"client_id": {"leak_public"}, "redirect_uri": {"http://127.0.0.1:4321/cb"},
		"response_type": {"code"}, "scope": {"email"}, "state": {"s"}, "code_challenge": {oauthd.S256Challenge(pv)}, "code_challenge_method": {"S256"}}.Encode()
	loc, err = carol.walk(pubURL, "http://127.0.0.1:4321/cb", "carol", password, "approve")
	if err != nil {
		t.Fatal(err)
	}
	pcode := mustParse(loc).Query().Get("code")
	keep(pcode)
	call("POST", oauthd.TokenPath, "", url.Values{"grant_type": {"authorization_code"}, "client_id": {"leak_public"}, "code": {pcode},
		"redirect_uri": {"http://127.0.0.1:4321/cb"}, "code_verifier": {wrongVerifier}})

	// A password in a login URL, a login form posted with a wrong CSRF
	// token, and signing out.
	call("GET", oauthd.LoginPath+"?username=carol&password="+url.QueryEscape(password), "", nil)
	call("POST", oauthd.LoginPath, "", url.Values{"username": {"carol"}, "password": {password}, "csrf": {"forged"}})
	res, err := carol.c.Get(iss + oauthd.LogoutPath + "?client_id=leak_basic&post_logout_redirect_uri=" + url.QueryEscape("https://www.example.com/bye") + "&id_token_hint=" + idt)
	if err != nil {
		t.Fatal(err)
	}
	forms, _ := htmlform.Parse(res.Body)
	res.Body.Close()
	if len(forms) == 0 {
		t.Fatal("no sign-out form")
	}
	f := forms[0]
	btn := f.Button("sign out")
	if btn == nil && len(f.Buttons) > 0 {
		btn = &f.Buttons[0]
	}
	res, err = carol.c.PostForm(iss+f.Action, f.Values(btn, nil))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Errorf("sign-out confirmation: %d", res.StatusCode)
	}
	stop()

	// Every form a secret may take in a log line or an answer.
	var needles []string
	for _, s := range secrets {
		js, _ := json.Marshal(s)
		needles = append(needles, s, url.QueryEscape(s), url.PathEscape(s), strings.Trim(string(js), `"`))
	}
	out := logs.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 60 {
		t.Errorf("only %d log lines: the flows did not run", len(lines))
	}
	for _, l := range lines {
		for _, s := range needles {
			if strings.Contains(l, s) {
				t.Errorf("a log line holds the secret %q: %s", s, l)
			}
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	checked := 0
	for _, x := range rec.all {
		// What a successful answer is for: the code in the redirect to
		// the client, the tokens of a 200 token answer, cookies.
		h := x.header.Clone()
		h.Del("Set-Cookie")
		if loc := h.Get("Location"); strings.HasPrefix(loc, app.DemoRedirectURI+"?") || strings.HasPrefix(loc, "http://127.0.0.1:4321/cb?") {
			h.Del("Location")
		}
		text := ""
		if x.status >= 300 || x.path != oauthd.TokenPath {
			text = x.body
		}
		for k, vs := range h {
			text += "\n" + k + ": " + strings.Join(vs, ", ")
		}
		checked++
		for _, s := range needles {
			if strings.Contains(text, s) {
				t.Errorf("the %d answer to %s %s holds the secret %q", x.status, x.method, x.path, s)
			}
		}
	}
	if checked < 50 {
		t.Errorf("only %d answers checked", checked)
	}
}
