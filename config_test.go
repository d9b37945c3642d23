package oauthd_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// ptrObserver is an Observer with pointer methods, given as a nil pointer.
type ptrObserver struct{ oauthd.NopObserver }

func (*ptrObserver) LoginFailed() {}

// partialObserver embeds NopObserver as a pointer: the common slip that
// leaves it nil, so every method it does not override panics.
type partialObserver struct {
	*oauthd.NopObserver
	n int
}

func (o *partialObserver) TokenIssued(string) { o.n++ }

// embeddedObserver embeds an Observer interface, left nil.
type embeddedObserver struct{ oauthd.Observer }

// valueObserver embeds NopObserver as a value, as Observer's doc says.
type valueObserver struct {
	oauthd.NopObserver
	n int
}

func (o *valueObserver) TokenIssued(string) { o.n++ }

// New refuses, naming the field, what would otherwise panic or fail at
// request time, or misbehave in silence.
func TestNewRefusesConfig(t *testing.T) {
	const issuer = "https://auth.example.com"
	kek := make([]byte, 32)
	rand.Read(kek)
	for _, tc := range []struct {
		name   string
		change func(c *oauthd.Config)
		want   string // "" for accepted
	}{
		{"observer_typed_nil", func(c *oauthd.Config) { c.Observer = (*ptrObserver)(nil) }, "Config.Observer is a nil *oauthd_test.ptrObserver"},
		{"observer_embeds_nil_NopObserver", func(c *oauthd.Config) { c.Observer = &partialObserver{} }, "embeds a nil *oauthd.NopObserver"},
		{"observer_embeds_nil_interface", func(c *oauthd.Config) { c.Observer = embeddedObserver{} }, "embeds a nil oauthd.Observer"},
		{"observer_embeds_NopObserver_value", func(c *oauthd.Config) { c.Observer = &valueObserver{} }, ""},
		{"observer_embeds_set_NopObserver", func(c *oauthd.Config) { c.Observer = &partialObserver{NopObserver: &oauthd.NopObserver{}} }, ""},
		{"limiter_typed_nil", func(c *oauthd.Config) { c.Limiter = (*oauthd.MemoryLimiter)(nil) }, "Config.Limiter is a nil *oauthd.MemoryLimiter"},
		{"limiter_zero_MemoryLimiter", func(c *oauthd.Config) { c.Limiter = &oauthd.MemoryLimiter{} }, "zero MemoryLimiter"},
		{"limiter_NewMemoryLimiter", func(c *oauthd.Config) { c.Limiter = oauthd.NewMemoryLimiter(10) }, ""},
		{"secret_cache_size_negative", func(c *oauthd.Config) { c.SecretCacheSize = -5 }, "Config.SecretCacheSize -5 must not be negative"},
		{"key_encryption_key_all_zero", func(c *oauthd.Config) { c.KeyEncryptionKey = make([]byte, 32) }, "Config.KeyEncryptionKey is 32 zero bytes"},
		{"key_encryption_key_random", func(c *oauthd.Config) { c.KeyEncryptionKey = kek }, ""},
		{"now_zero_time", func(c *oauthd.Config) { c.Now = func() time.Time { return time.Time{} } }, "Config.Now returned 0001-01-01T00:00:00Z, before 1970"},
		{"now_before_1970", func(c *oauthd.Config) {
			c.Now = func() time.Time { return time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }
		}, "before 1970"},
		{"now_fake_clock", func(c *oauthd.Config) {
			c.Now = func() time.Time { return time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC) }
		}, ""},
		{"OIDCDiscovery_4.3/issuer_trailing_slash", func(c *oauthd.Config) { c.Issuer = "https://auth.example.com/" }, `ends with /: write it without, "https://auth.example.com"`},
		{"OIDCDiscovery_4.3/issuer_loopback_trailing_slash", func(c *oauthd.Config) { c.Issuer = "http://127.0.0.1:19422/" }, "ends with /"},
		{"RFC3986_3.2.2/issuer_localhost_upper_case", func(c *oauthd.Config) { c.Issuer = "HTTP://LOCALHOST:19422" }, ""},
		{"issuer_unparsable_with_user_information", func(c *oauthd.Config) { c.Issuer = "https://admin:hunt%zz@auth.example.com" }, `issuer "https://…@auth.example.com" is not an absolute URL`},
		{"RFC8414_2/issuer_with_user_information", func(c *oauthd.Config) { c.Issuer = "https://admin:hunter2@auth.example.com" }, `issuer "https://auth.example.com" has user information`},
		{"issuer_http_not_loopback", func(c *oauthd.Config) { c.Issuer = "http://auth.example.com" }, "not localhost or a loopback address"},
		{"login_url_backslash", func(c *oauthd.Config) { c.LoginURL = `/\evil.example/login` }, "backslash"},
		{"login_url_backslash_absolute", func(c *oauthd.Config) { c.LoginURL = `https://auth.example.com/\evil.example/login` }, "backslash"},
		{"login_url_tab", func(c *oauthd.Config) { c.LoginURL = "/\t/evil.example/login" }, "control character"},
		{"login_url_newline", func(c *oauthd.Config) { c.LoginURL = "/login\r\nSet-Cookie: x=y" }, "control character"},
		{"login_url_authorize_endpoint", func(c *oauthd.Config) { c.LoginURL = oauthd.AuthorizePath }, "under /oauth/, which the Provider serves"},
		{"login_url_built_in_login", func(c *oauthd.Config) { c.LoginURL = oauthd.LoginPath + "?x=1" }, "under /oauth/"},
		{"login_url_oauth", func(c *oauthd.Config) { c.LoginURL = "/oauth" }, "under /oauth/"},
		{"login_url_dot_segments", func(c *oauthd.Config) { c.LoginURL = "/app/../oauth/authorize" }, "under /oauth/"},
		{"login_url_percent_encoded", func(c *oauthd.Config) { c.LoginURL = "/%6Fauth/authorize" }, "under /oauth/"},
		{"login_url_well_known", func(c *oauthd.Config) { c.LoginURL = oauthd.OIDCDiscoveryPath }, "under /.well-known/"},
		{"login_url_static", func(c *oauthd.Config) { c.LoginURL = oauthd.StaticPath + "login.html" }, "under /static/"},
		{"login_url_absolute_endpoint", func(c *oauthd.Config) { c.LoginURL = "https://auth.example.com/oauth/consent" }, "under /oauth/"},
		{"login_url_path", func(c *oauthd.Config) { c.LoginURL = "/login" }, ""},
		{"login_url_like_oauth", func(c *oauthd.Config) { c.LoginURL = "/oauthx/login" }, ""},
		{"login_url_root", func(c *oauthd.Config) { c.LoginURL = "/" }, ""},
		{"login_url_absolute", func(c *oauthd.Config) { c.LoginURL = "https://auth.example.com/login?tenant=a" }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oauthd.Config{Issuer: issuer, Pages: fakePages{}}
			tc.change(&cfg)
			_, err := oauthd.New(cfg, memstore.New())
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("New: %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("New: %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// The issuer is used as configured: New neither trims nor lowers it.
func TestIssuerAsConfigured(t *testing.T) {
	const issuer = "HTTP://LOCALHOST:19422"
	p, err := oauthd.New(oauthd.Config{Issuer: issuer, Pages: fakePages{}}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	if p.Issuer() != issuer {
		t.Errorf("Issuer() = %q; want %q", p.Issuer(), issuer)
	}
	if err := oauthd.ValidateRedirectURI("http://LOCALHOST:9000/cb"); err != nil {
		t.Errorf("ValidateRedirectURI of an http localhost URI in upper case: %v", err)
	}
}

// panicObserver panics in the methods the test picks.
type panicObserver struct {
	oauthd.NopObserver
	served, issued bool
}

func (o *panicObserver) RequestServed(string, string, int, time.Duration) {
	if o.served {
		panic("observer broken")
	}
}

func (o *panicObserver) TokenIssued(string) {
	if o.issued {
		panic("observer broken")
	}
}

// A panic of the Observer does not drop the connection, nor change the
// answer: the tokens are sent (an Observer hook runs once they are stored:
// a 500 would make the client's retry of a code a replay), and the panic
// is logged with its stack.
func TestObserverPanicAnswered(t *testing.T) {
	for _, tc := range []struct {
		name   string
		obs    *panicObserver
		status int
	}{
		{"RequestServed_after_the_answer", &panicObserver{served: true}, http.StatusOK},
		{"TokenIssued_before_the_answer", &panicObserver{issued: true}, http.StatusOK},
		{"both", &panicObserver{served: true, issued: true}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs lockedBuffer
			store := memstore.New()
			if err := store.CreateClient(t.Context(), &oauthd.Client{ID: "service", SecretHash: hash(t, "s3cret"),
				GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}}); err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewUnstartedServer(nil)
			p, err := oauthd.New(oauthd.Config{Issuer: "http://" + srv.Listener.Addr().String(), Pages: fakePages{}, Observer: tc.obs,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))}, store)
			if err != nil {
				t.Fatal(err)
			}
			srv.Config.Handler = p
			srv.Start()
			defer srv.Close()
			req, _ := http.NewRequest("POST", srv.URL+oauthd.TokenPath, strings.NewReader("grant_type=client_credentials"))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("service", "s3cret")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("the connection was dropped: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != tc.status {
				t.Errorf("status %d %s; want %d", res.StatusCode, body, tc.status)
			}
			if tc.status == http.StatusOK && !bytes.Contains(body, []byte(`"access_token"`)) {
				t.Errorf("body %s; want the token response", body)
			}
			if !strings.Contains(logs.String(), "observer broken") || !strings.Contains(logs.String(), "stack=") {
				t.Errorf("the panic is not logged with its stack:\n%s", logs.String())
			}
			if strings.Contains(logs.String(), "s3cret") {
				t.Errorf("the log has the client secret:\n%s", logs.String())
			}
		})
	}
}

// Mounted under a path prefix with http.StripPrefix, where discovery would
// advertise endpoints that are not there, the Provider answers 404 with
// the reason, and logs it once.
func TestStripPrefixMountRefused(t *testing.T) {
	var logs lockedBuffer
	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: fakePages{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/auth/", http.StripPrefix("/auth", p))
	mux.Handle("/oauth/", p)
	mux.Handle("/.well-known/", p)
	for _, path := range []string{"/auth" + oauthd.OIDCDiscoveryPath, "/auth" + oauthd.AuthorizePath + "?client_id=x", "/auth/", "/auth/oauth/a%20b"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "http.StripPrefix") || w.Header().Get("Location") != "" {
			t.Errorf("GET %s under StripPrefix: %d %s; want 404 saying why", path, w.Code, w.Body.String())
		}
	}
	if n := strings.Count(logs.String(), "mounted under a path prefix"); n != 1 {
		t.Errorf("logged %d times; want once:\n%s", n, logs.String())
	}
	// At the root, as documented, it serves.
	for _, path := range []string{oauthd.OIDCDiscoveryPath, "/oauth/jwks", "/oauth/a%20b"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if strings.Contains(w.Body.String(), "StripPrefix") {
			t.Errorf("GET %s at the root: %d %s", path, w.Code, w.Body.String())
		}
	}
}
