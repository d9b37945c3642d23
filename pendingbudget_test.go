package oauthd_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
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

// TestPendingRequestBudget: anyone can make the server store authorization
// requests; one network's unanswered requests past a 64th of
// Config.PendingRequestBudget are answered temporarily_unavailable at the
// client's redirect URI (RFC 6749 §4.1.2.1), with iss (RFC 9207); a
// request answered by signing in is credited back, and the window moves on.
func TestPendingRequestBudget(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, func(c *oauthd.Config) {
		c.PendingRequestBudget = 64 * 16 << 10 // 16 KiB for one network
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	b := e.browser()
	big := strings.Repeat("s", 3000) // a large state: about 3.5 KB stored
	stored, refused := 0, 0
	var refusal *url.URL
	var first *response
	for range 20 {
		r := b.get(e.authorizeURL("state", big))
		loc, err := url.Parse(r.location())
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasPrefix(r.location(), oauthd.LoginPath):
			if stored++; first == nil {
				first = r
			}
		case strings.HasPrefix(r.location(), redirectURI):
			refused++
			refusal = loc
		default:
			t.Fatalf("authorize: %d %s", r.status, r.location())
		}
	}
	if stored == 0 || refused == 0 || stored > 5 {
		t.Fatalf("%d stored, %d refused; want at most 16 KiB (4 requests of 3.5 KB) stored, the rest refused", stored, refused)
	}
	q := refusal.Query()
	if q.Get("error") != oauthd.ErrorTemporarilyUnavailable || q.Get("state") != big || q.Get("iss") != e.issuer {
		t.Errorf("refusal %s; want error=temporarily_unavailable with the request's state and iss", refusal)
	}
	if n := strings.Count(logs.String(), "pending request budget is spent"); n != 1 {
		t.Errorf("%d log lines about the budget for %d refusals; want 1 (at most one a minute)", n, refused)
	}
	// Signing in answers a stored request: it no longer counts.
	r := b.login(e, b.follow(e, first), "admin", "admin")
	if r = b.decide(e, b.follow(e, r), "approve"); !strings.HasPrefix(r.location(), redirectURI) || !strings.Contains(r.location(), "code=") {
		t.Fatalf("sign-in: %d %s", r.status, r.location())
	}
	if r := b.get(e.authorizeURL("state", big)); strings.HasPrefix(r.location(), redirectURI) {
		t.Errorf("after a stored request was answered: %d %s; want it credited back and the request stored", r.status, r.location())
	}
	// A window later, the budget is back.
	e.clock.Add(time.Hour)
	if r := b.get(e.authorizeURL("state", big)); strings.HasPrefix(r.location(), redirectURI) {
		t.Errorf("an hour later: %d %s; want the request stored", r.status, r.location())
	}
}

// TestPendingRequestBudgetDefault: the default budget (256 MiB) never gets
// in the way of ordinary sign-ins, and a negative one is no budget.
func TestPendingRequestBudgetDefault(t *testing.T) {
	for _, budget := range []int64{0, -1} {
		e := newEnv(t, func(c *oauthd.Config) { c.PendingRequestBudget = budget })
		b := e.browser()
		for range 50 {
			if r := b.get(e.authorizeURL()); !strings.HasPrefix(r.location(), oauthd.LoginPath) {
				t.Fatalf("budget %d: %d %s; want the login page", budget, r.status, r.location())
			}
		}
	}
}

// TestRequestLogPathBounded: a client chooses the path of a request to an
// unknown page; the request log line keeps 256 bytes of it and its length.
func TestRequestLogPathBounded(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, func(c *oauthd.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	path := "/" + strings.Repeat("A", 30000)
	req, _ := http.NewRequestWithContext(context.Background(), "GET", e.url(path), nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d; want 404", res.StatusCode)
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "msg=request ") {
			line = l
		}
	}
	if line == "" {
		t.Fatalf("no request line in %q", logs.String())
	}
	if len(line) > 600 || !strings.Contains(line, "...(30001 bytes)") {
		t.Errorf("request line of %d bytes: %.400s; want the path cut to 256 bytes with its length", len(line), line)
	}
}

// TestRequestLogNamesTheErrorCode: the request line of an error answer
// names its code (an operator matching a client's failure to its cause
// needs it); a success's line has none.
func TestRequestLogNamesTheErrorCode(t *testing.T) {
	var logs syncBuffer
	e := newEnv(t, func(c *oauthd.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	lastLine := func() string {
		t.Helper()
		var line string
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "msg=request ") {
				line = l
			}
		}
		return line
	}
	for _, tc := range []struct {
		name, auth string
		form       url.Values
		status     int
		want       string
	}{
		{"RFC 6749 §5.2 invalid_client", basic(clientID, "wrong"), form("grant_type", "authorization_code", "code", "x"), 401, " error=invalid_client"},
		{"RFC 6749 §5.2 invalid_grant", basic(clientID, clientSecret), form("grant_type", "authorization_code", "code", "x", "redirect_uri", "https://www.example.com/redirect"), 400, " error=invalid_grant"},
		{"RFC 6749 §5.2 unsupported_grant_type", basic(clientID, clientSecret), form("grant_type", "urn:example:nothing"), 400, " error=unsupported_grant_type"},
	} {
		if r := e.token(tc.auth, tc.form); r.status != tc.status {
			t.Fatalf("%s: status %d; want %d", tc.name, r.status, tc.status)
		}
		if line := lastLine(); !strings.Contains(line, tc.want) {
			t.Errorf("%s: request line %q; want %q", tc.name, line, tc.want)
		}
	}
	res, err := http.Get(e.url(oauthd.OIDCDiscoveryPath))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if line := lastLine(); !strings.Contains(line, "status=200") || strings.Contains(line, " error=") {
		t.Errorf("discovery's request line %q; want status=200 and no error", line)
	}
}
