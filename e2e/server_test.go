package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/secret"
)

// server is a running oauthd, the code of `oauthd serve --demo`, on a
// random port with a fresh SQLite file.
type server struct {
	*app.Main
	URL string
	log *syncBuffer
}

// The demo data and the signing keys are made once, in a template
// database that every server starts from: seeding hashes the demo secrets
// with argon2id and the first start generates RSA keys, which together
// cost seconds per server (more under the race detector). The template is
// made by app.Open itself, and the servers still run with Demo set, so
// SeedDemo and the key check run and find everything in place.
var (
	seedOnce sync.Once
	seedDir  string
	seedErr  error
)

func seedTemplate() {
	seedDir, seedErr = os.MkdirTemp("", "oauthd-e2e-seed-")
	if seedErr != nil {
		return
	}
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(seedDir, "oauthd.db"), Demo: true, LogLevel: "error"}
	m, err := app.Open(context.Background(), cfg, io.Discard)
	if err != nil {
		seedErr = err
		return
	}
	seedErr = m.Shutdown(context.Background())
}

// seededDB returns a fresh copy of the seeded template database.
func seededDB(t *testing.T) string {
	t.Helper()
	seedOnce.Do(seedTemplate)
	if seedErr != nil {
		t.Fatalf("seeding the template database: %v", seedErr)
	}
	dst := filepath.Join(t.TempDir(), "oauthd.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(filepath.Join(seedDir, "oauthd.db"+suffix))
		if errors.Is(err, fs.ErrNotExist) && suffix != "" {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// startServer starts oauthd; change, if given, edits the configuration
// first (theme, colours...).
func startServer(t *testing.T, change ...func(*app.Config)) *server {
	t.Helper()
	cfg := app.Config{Addr: "127.0.0.1:0", DB: seededDB(t), Demo: true, LogLevel: "info"}
	for _, f := range change {
		f(&cfg)
	}
	log := &syncBuffer{}
	m, err := app.Open(context.Background(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	return &server{Main: m, URL: "http://" + m.Addr(), log: log}
}

// authorizeURL is the walkthrough's authorization URL with extra
// parameters set (or replaced).
func (s *server) authorizeURL(extra ...string) string {
	u, _ := url.Parse(app.DemoAuthorizeURL(s.URL))
	q := u.Query()
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// addClient registers a confidential client with the given redirect URI
// and returns its id and secret.
func (s *server) addClient(t *testing.T, c *oauthd.Client) (id, sec string) {
	t.Helper()
	sec = "secret-" + c.ID
	// A cheap argon2id hash: these clients exist for one test, and the
	// token endpoint verifies it like any other.
	h, err := secret.HashWith(sec, secret.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	c.SecretHash = h
	if c.GrantTypes == nil {
		c.GrantTypes = []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = oauthd.AuthMethodBasic
	}
	c.CreatedAt = time.Now()
	if err := s.Store.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c.ID, sec
}

// logged reports whether the server's log has the text, waiting a little:
// the request line is written after the response has gone out.
func (s *server) logged(text string) bool {
	for range 100 {
		if strings.Contains(s.log.String(), text) {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// addUser creates a user (with a cheap argon2id hash; the login verifies
// it like any other).
func (s *server) addUser(t *testing.T, username, password string) {
	t.Helper()
	h, err := secret.HashWith(password, secret.Params{Memory: 64, Time: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.Store.CreateUser(context.Background(), &oauthd.User{ID: app.NewUserID(), Username: username, PasswordHash: h, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
}

// exchange redeems a code at the token endpoint with Basic authentication
// and reports the status and the access token.
func (s *server) exchange(t *testing.T, clientID, clientSecret, code, redirectURI string) (int, string) {
	t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirectURI}}
	req, _ := http.NewRequest(http.MethodPost, s.URL+oauthd.TokenPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(clientSecret))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	body := buf.String()
	const key = `"access_token":"`
	i := strings.Index(body, key)
	if i < 0 {
		return res.StatusCode, ""
	}
	rest := body[i+len(key):]
	return res.StatusCode, rest[:strings.IndexByte(rest, '"')]
}

// formRecorder is a client's redirect endpoint for response_mode=form_post:
// it records the forms POSTed to /cb.
type formRecorder struct {
	*httptest.Server
	forms chan url.Values
}

func newFormRecorder(t *testing.T) *formRecorder {
	fr := &formRecorder{forms: make(chan url.Values, 4)}
	fr.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/cb" || r.Method != http.MethodPost {
			http.Error(w, "want POST /cb", http.StatusBadRequest)
			return
		}
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fr.forms <- r.PostForm
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!doctype html><title>client</title><p id=received>received</p>"))
	}))
	t.Cleanup(fr.Close)
	return fr
}

// syncBuffer is a bytes.Buffer safe for the server's concurrent log writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
