package oauthd_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// downStore fails its reads of clients and tokens and its token writes with what a store returns when its database
// cannot be reached, while down is set.
type downStore struct {
	oauthd.Storage
	down        atomic.Bool
	err         error
	clientReads atomic.Int32
}

func (s *downStore) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	s.clientReads.Add(1)
	if s.down.Load() {
		return nil, s.err
	}
	return s.Storage.Client(ctx, id)
}

func (s *downStore) CreateTokens(ctx context.Context, toks ...*oauthd.Token) error {
	if s.down.Load() {
		return s.err
	}
	return s.Storage.CreateTokens(ctx, toks...)
}

func (s *downStore) Token(ctx context.Context, hash string) (*oauthd.Token, error) {
	if s.down.Load() {
		return nil, s.err
	}
	return s.Storage.Token(ctx, hash)
}

// A store that cannot reach its database (oauthd.ErrUnavailable, or a
// network error of a store that does not know the sentinel) is answered
// with 503 temporarily_unavailable and Retry-After, not 500 server_error:
// clients and load balancers try again (RFC 6749 §4.1.2.1, RFC 9110
// §15.6.4). Other store failures stay 500.
func TestStoreUnavailableIs503(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}
	for _, tc := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"ErrUnavailable", fmt.Errorf("pgstore: read client: %w: %w", oauthd.ErrUnavailable, refused), 503, "temporarily_unavailable"},
		{"net.OpError", fmt.Errorf("mystore: %w", refused), 503, "temporarily_unavailable"},
		{"other failure", errors.New("mystore: corrupt record"), 500, "server_error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ds := &downStore{err: tc.err}
			var logs lockedBuffer
			e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { ds.Storage = s; return ds }, func(c *oauthd.Config) {
				c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			at := e.token(serviceAuth, url.Values{"grant_type": {"client_credentials"}}).str("access_token")
			ds.down.Store(true)
			check := func(what string, r *response) {
				t.Helper()
				if r.status != tc.status || (r.str("error") != "" && r.str("error") != tc.code) {
					t.Errorf("%s: %d %s; want %d %s", what, r.status, r.body, tc.status, tc.code)
				}
				if got := r.header.Get("Retry-After"); (tc.status == 503) != (got != "") {
					t.Errorf("%s: Retry-After %q with status %d", what, got, r.status)
				}
			}
			check("token", e.token(serviceAuth, url.Values{"grant_type": {"client_credentials"}}))
			check("introspect", e.postForm(oauthd.IntrospectPath, serviceAuth, url.Values{"token": {at}}))
			req, _ := http.NewRequest(http.MethodGet, e.url(oauthd.UserinfoPath), nil)
			req.Header.Set("Authorization", "Bearer "+at)
			check("userinfo", do(t, http.DefaultClient, req))
			page := e.browser().get(e.authorizeURL())
			if page.status != tc.status {
				t.Errorf("authorize: %d; want an error page with %d", page.status, tc.status)
			}
			// An outage is a warning (storage unavailable), not an
			// internal error: alerts on ERROR lines mean a broken server.
			out := logs.String()
			if tc.status == 503 && (strings.Contains(out, "level=ERROR") || !strings.Contains(out, `level=WARN msg="storage unavailable"`)) {
				t.Errorf("logs of an outage:\n%s\nwant WARN storage unavailable, no ERROR", out)
			}
			if tc.status == 500 && !strings.Contains(out, `level=ERROR msg="internal error"`) {
				t.Errorf("logs of a store failure:\n%s\nwant ERROR internal error", out)
			}
			// Revocation answers any store failure 503 (RFC 7009 §2.2.1:
			// the client keeps the token and tries again), but logs only
			// an outage as one: a broken store is an ERROR.
			if r := e.postForm(oauthd.RevokePath, serviceAuth, url.Values{"token": {at}}); r.status != 503 || r.header.Get("Retry-After") == "" {
				t.Errorf("revoke: %d %s, Retry-After %q; want 503 with Retry-After", r.status, r.body, r.header.Get("Retry-After"))
			}
			if out := logs.String(); tc.status == 500 && strings.Contains(out, "storage unavailable") {
				t.Errorf("logs of a store failure at revocation:\n%s\nwant no storage unavailable", out)
			}
		})
	}
}

// A token request whose client cannot be read (the database is down) is
// answered after one read, not four: each read may wait out the store's
// timeout, and each loads a database that is trying to recover.
func TestStoreUnavailableReadsTheClientOnce(t *testing.T) {
	ds := &downStore{err: fmt.Errorf("pgstore: read client: %w", oauthd.ErrUnavailable)}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { ds.Storage = s; return ds },
		func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	ds.down.Store(true)
	for _, path := range []string{oauthd.TokenPath, oauthd.IntrospectPath, oauthd.RevokePath} {
		ds.clientReads.Store(0)
		r := e.postForm(path, serviceAuth, url.Values{"grant_type": {"client_credentials"}, "token": {"x"}})
		if r.status != http.StatusServiceUnavailable {
			t.Errorf("%s: %d %s; want 503", path, r.status, r.body)
		}
		if n := ds.clientReads.Load(); n != 1 {
			t.Errorf("%s: the client was read %d times; want once", path, n)
		}
	}
}

// flakyUsers fails its first failures reads of a user with ErrUnavailable,
// as a database does while a table is locked or it restarts.
type flakyUsers struct {
	oauthd.Storage
	failures atomic.Int32
}

func (s *flakyUsers) User(ctx context.Context, id string) (*oauthd.User, error) {
	if s.failures.Add(-1) >= 0 {
		return nil, fmt.Errorf("pgstore: read user: %w: lock timeout", oauthd.ErrUnavailable)
	}
	return s.Storage.User(ctx, id)
}

// Once the store has consumed a code or rotated a refresh token, the user
// read that follows is tried again while the store is unavailable for a
// moment: answered 503 instead, the client's retry was a replay (the code
// already used, the refresh token already rotated) and revoked the grant.
func TestUserReadAfterTheWriteIsRetried(t *testing.T) {
	fs := &flakyUsers{}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { fs.Storage = s; return fs })
	code := e.code()
	fs.failures.Store(2)
	r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI))
	if r.status != http.StatusOK {
		t.Fatalf("code exchange while the user read failed twice: %d %s; want 200", r.status, r.body)
	}
	fs.failures.Store(2)
	f := e.token(seedAuth, form("grant_type", "refresh_token", "refresh_token", r.str("refresh_token")))
	if f.status != http.StatusOK {
		t.Fatalf("refresh while the user read failed twice: %d %s; want 200", f.status, f.body)
	}
	if i := e.introspect(seedAuth, "token", f.str("access_token")); i.str("active") != "true" && !strings.Contains(i.body, `"active":true`) {
		t.Errorf("the refreshed access token: %s; want active", i.body)
	}
}

// An outage under load logs one "storage unavailable" line a second at
// most, then says how many it left out: 200 failed requests had made 200
// lines (138 MB of log in a 30 s outage of a loaded server).
func TestStorageUnavailableLogIsSampled(t *testing.T) {
	ds := &downStore{err: fmt.Errorf("pgstore: read client: %w", oauthd.ErrUnavailable)}
	var logs lockedBuffer
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { ds.Storage = s; return ds }, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.ClientCacheTTL = -1
	})
	ds.down.Store(true)
	for range 200 {
		if r := e.token(serviceAuth, url.Values{"grant_type": {"client_credentials"}}); r.status != http.StatusServiceUnavailable {
			t.Fatalf("token: %d; want 503", r.status)
		}
	}
	if n := strings.Count(logs.String(), `msg="storage unavailable"`); n < 1 || n > 3 {
		t.Errorf("%d storage unavailable lines for 200 failed requests in well under 3 s; want 1 to 3", n)
	}
	// The outage ends: the count of the lines left out is logged all the
	// same, within a second.
	ds.down.Store(false)
	time.Sleep(1500 * time.Millisecond)
	if !strings.Contains(logs.String(), "left_out=") {
		t.Errorf("logs:\n%s\nwant the count of the lines left out", logs.String())
	}
}
