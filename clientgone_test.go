package oauthd_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// slowStore holds CreateTokens until the request's context ends, then fails
// with the context's error, as sqlitestore does for a caller that went away.
type slowStore struct {
	oauthd.Storage
	entered chan struct{}
}

func (s *slowStore) CreateTokens(ctx context.Context, toks ...*oauthd.Token) error {
	close(s.entered)
	<-ctx.Done()
	return fmt.Errorf("store: %w", ctx.Err())
}

// slowEnv is a test env whose store holds CreateTokens (see slowStore),
// logging at INFO into the buffer returned.
func slowEnv(t *testing.T) (*testEnv, *slowStore, *lockedBuffer) {
	logs := &lockedBuffer{}
	slow := &slowStore{entered: make(chan struct{})}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { slow.Storage = s; return slow }, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	return e, slow, logs
}

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

// A client that hangs up while its tokens are being stored is not a server
// failure: it is logged at INFO, never as an internal error at ERROR.
func TestClientGoneIsNotAnInternalError(t *testing.T) {
	e, slow, logs := slowEnv(t)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url(oauthd.TokenPath),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic("service", "service-secret"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the token request never reached the store")
	}
	cancel() // the client hangs up
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "request ended before it was answered") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the request that went away; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); strings.Contains(out, "level=ERROR") {
		t.Errorf("a client hanging up was logged as an error:\n%s", out)
	}
	// The request line says 499 (client closed request), not a 500 that
	// no client saw.
	for !strings.Contains(logs.String(), "msg=request") {
		if time.Now().After(deadline) {
			t.Fatalf("no request line; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); !strings.Contains(out, "status=499") || strings.Contains(out, "status=500") {
		t.Errorf("request line of the request that went away:\n%s\nwant status=499", out)
	}
}

// A request the server itself ends (its base context cancelled with a
// cause, as oauthd serve does when its shutdown timeout passes) while the
// client is still connected is answered 503 temporarily_unavailable with
// Retry-After, which the client may try again (RFC 9110 §15.6.4), not
// with 499, a status of the log for a client that went away.
func TestServerEndedRequestIs503(t *testing.T) {
	e, slow, logs := slowEnv(t)
	ctx, cancel := context.WithCancelCause(t.Context())
	req := httptest.NewRequestWithContext(ctx, "POST", oauthd.TokenPath, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic("service", "service-secret"))
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.p.ServeHTTP(rec, req)
	}()
	select {
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the token request never reached the store")
	}
	cancel(errors.New("shutdown timeout passed"))
	<-done
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), `"temporarily_unavailable"`) {
		t.Errorf("answer %d Retry-After %q %s; want 503 temporarily_unavailable with Retry-After", rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
	}
	if out := logs.String(); !strings.Contains(out, "request ended by the server") || strings.Contains(out, "level=ERROR") {
		t.Errorf("logs:\n%s\nwant the request ended by the server at INFO, no ERROR", out)
	}
}

// A client deleted and registered again under the same client_id gets
// nothing people gave the earlier one: its tokens are inactive and refused,
// its unredeemed codes refused, its remembered consent asked again.
func TestClientRegisteredAgainGetsNothingOfTheEarlierOne(t *testing.T) {
	// No client cache: the token endpoint sees the new registration at
	// once (with it, within Config.ClientCacheTTL).
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	b := e.browser()
	tok, _ := e.codeFlow(t, b, true) // signs in and remembers consent
	code := e.authorizeExpectLogin(t, b, e.oidcURL(), false).Query().Get("code")
	if code == "" {
		t.Fatal("no second code")
	}
	at, rt := tok.str("access_token"), tok.str("refresh_token")
	e.registerAgain(t, oidcClientID)

	if r := e.introspect(oidcAuth, "token", at); r.page["active"] != false {
		t.Errorf("RFC7662_2.2/earlier_registrations_token: %s; want inactive", r.body)
	}
	if r := e.userinfo(t, at); r.status != http.StatusUnauthorized {
		t.Errorf("RFC6750_3.1/earlier_registrations_token at userinfo: %d %s; want 401", r.status, r.body)
	}
	if r := e.token(oidcAuth, form("grant_type", "refresh_token", "refresh_token", rt)); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("RFC6749_6/earlier_registrations_refresh_token: %d %s; want 400 invalid_grant", r.status, r.body)
	}
	if r := e.token(oidcAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", oidcRedirectURI)); r.status != 400 || r.str("error") != "invalid_grant" {
		t.Errorf("RFC6749_4.1.3/earlier_registrations_code: %d %s; want 400 invalid_grant", r.status, r.body)
	}
	e.authError(t, b.get(e.oidcURL("prompt", "none")), "consent_required")
	// The client registered again works for itself.
	e.codeFlow(t, b, false)
}

// gateStore holds the first read of a client until the reading request
// ends, then fails with that request's context error, as pgstore does.
type gateStore struct {
	oauthd.Storage
	first   atomic.Bool
	entered chan struct{}
}

func (s *gateStore) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	if s.first.CompareAndSwap(false, true) {
		close(s.entered)
		<-ctx.Done()
		return nil, fmt.Errorf("store: %w", ctx.Err())
	}
	return s.Storage.Client(ctx, id)
}

// A request waiting on another's read of its client (the client cache
// reads each client once) is not failed when that other request's client
// hangs up: it reads for itself and is answered.
func TestClientGoneDoesNotFailTheOthers(t *testing.T) {
	gate := &gateStore{entered: make(chan struct{})}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { gate.Storage = s; return gate })
	post := func(ctx context.Context) (*http.Response, error) {
		req, _ := http.NewRequestWithContext(ctx, "POST", e.url(oauthd.TokenPath),
			strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", basic("service", "service-secret"))
		return http.DefaultClient.Do(req)
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		if res, err := post(ctx); err == nil {
			res.Body.Close()
		}
	}()
	<-gate.entered
	live := make(chan *http.Response, 1)
	go func() {
		res, err := post(t.Context())
		if err != nil {
			t.Error(err)
		}
		live <- res
	}()
	time.Sleep(100 * time.Millisecond) // the live request waits on the first one's read
	cancel()
	res := <-live
	if res == nil {
		return
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Errorf("the live request after another's client hung up: %d; want 200", res.StatusCode)
	}
}

// A consent remembered for an earlier client registered under the same
// client_id is not merged into the new client's when the person approves
// it for less (RFC 6749 §10.2: repeated authorizations only for the same
// client).
func TestConsentOfAnEarlierRegistrationIsNotMerged(t *testing.T) {
	e := newOIDCEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	b := e.browser()
	e.codeFlow(t, b, true, "scope", "openid email profile") // remembered
	e.registerAgain(t, oidcClientID)
	e.codeFlow(t, b, false, "scope", "openid") // approved and remembered for openid only
	e.authError(t, b.get(e.oidcURL("prompt", "none", "scope", "openid email profile")), "consent_required")
}

// A sign-in request outlives no change of its client's registration: a
// redirect URI removed, or the client registered again, while the person
// signs in ends the request on an error page, and no code goes to the
// URI (RFC 6749 §3.1.2.2, RFC 9700 §4.1).
func TestPendingRequestRecheckedAgainstTheClient(t *testing.T) {
	for _, change := range []string{"redirect_uri_removed", "registered_again", "scope_removed"} {
		t.Run(change, func(t *testing.T) {
			e := newOIDCEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
			ctx := t.Context()
			b := e.browser()
			r := b.follow(e, b.get(e.oidcURL("scope", "openid email")))
			if r.pageKind() != "login" {
				t.Fatalf("want the login page, got %s", r.pageKind())
			}
			c, err := e.store.Client(ctx, oidcClientID)
			if err != nil {
				t.Fatal(err)
			}
			switch change {
			case "redirect_uri_removed":
				c.RedirectURIs = []string{"https://good.example/cb"}
				err = e.store.UpdateClient(ctx, c)
			case "registered_again":
				e.registerAgain(t, oidcClientID)
			case "scope_removed":
				c.Scopes = []string{"openid"}
				err = e.store.UpdateClient(ctx, c)
			}
			if err != nil {
				t.Fatal(err)
			}
			r = b.login(e, r, "admin", "admin")
			for range 3 {
				if loc := r.location(); loc == "" || !strings.HasPrefix(loc, "/") {
					break
				}
				r = b.follow(e, r)
			}
			if loc := r.location(); strings.Contains(loc, "code=") || r.pageKind() == "consent" {
				t.Errorf("after the change: %d %s %s; want an error page, no code", r.status, r.pageKind(), loc)
			}
			if r.status < 400 {
				t.Errorf("after the change: status %d; want an error page", r.status)
			}
		})
	}
}

// registerAgain deletes the client and, an hour later, registers it again
// under its client_id, as another application.
func (e *testEnv) registerAgain(t *testing.T, id string) {
	t.Helper()
	ctx := t.Context()
	old, err := e.store.Client(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteClient(ctx, id); err != nil {
		t.Fatal(err)
	}
	e.tick(time.Hour)
	again := *old
	again.CreatedAt = e.clock.Now()
	if err := e.store.CreateClient(ctx, &again); err != nil {
		t.Fatal(err)
	}
}

// A client that goes away while sending its body (fewer bytes than its
// Content-Length, then the connection closed) is logged 499, client closed
// request, not 400: nothing was wrong with a request nobody finished; one
// too slow for the server's read timeout gets 408 (RFC 9110 §15.5.9).
func TestClientGoneMidBody(t *testing.T) {
	var logs lockedBuffer
	e := newEnv(t, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: %s\r\nContent-Length: 3000\r\n\r\ngrant_type=client_credentials&x=aaaa",
		oauthd.TokenPath, basic("service", "service-secret"))
	time.Sleep(50 * time.Millisecond)
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "msg=request") {
		if time.Now().After(deadline) {
			t.Fatalf("no request line; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); !strings.Contains(out, "status=499") {
		t.Errorf("request line of the request whose client went away mid-body:\n%s\nwant status=499", out)
	}

	// Too slow: the server's read timeout ends the body.
	p, err := oauthd.New(oauthd.Config{Issuer: "http://127.0.0.1", Pages: fakePages{}}, e.store)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(p)
	srv.Config.ReadTimeout = 200 * time.Millisecond
	srv.Start()
	defer srv.Close()
	conn, err = net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nAuthorization: %s\r\nContent-Length: 3000\r\n\r\ngrant_type=client_credentials&x=aaaa",
		oauthd.TokenPath, basic("service", "service-secret"))
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestTimeout {
		t.Errorf("body slower than the read timeout: %d; want 408", res.StatusCode)
	}
}

// panicStore panics in Client with what it is given.
type panicStore struct {
	oauthd.Storage
	with atomic.Pointer[any]
}

func (s *panicStore) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	if v := s.with.Load(); v != nil {
		panic(*v)
	}
	return s.Storage.Client(ctx, id)
}

// A panic while serving a page is answered with the error page (not a JSON
// body in a browser), at the API endpoints with the JSON error, and logged
// with its stack; a handler that aborts with http.ErrAbortHandler, the
// standard way to drop a connection, is let through to net/http, not
// logged as a failure.
func TestPanicAnswers(t *testing.T) {
	var logs lockedBuffer
	ps := &panicStore{}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { ps.Storage = s; return ps }, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		c.ClientCacheTTL = -1
	})
	var broken any = "store broken"
	ps.with.Store(&broken)
	r := e.browser().get(e.authorizeURL())
	if r.status != http.StatusInternalServerError || r.str("Code") != oauthd.ErrorServerError {
		t.Errorf("authorize: %d %s; want the 500 error page", r.status, r.body)
	}
	tok := e.token(basic("service", "service-secret"), form("grant_type", "client_credentials"))
	if tok.status != http.StatusInternalServerError || !strings.Contains(tok.body, `"server_error"`) {
		t.Errorf("token: %d %s; want the 500 JSON error", tok.status, tok.body)
	}
	if out := logs.String(); !strings.Contains(out, "panic serving request") || !strings.Contains(out, "stack=") {
		t.Errorf("the panic is not logged with its stack:\n%s", out)
	}

	logs.mu.Lock()
	logs.b.Reset()
	logs.mu.Unlock()
	var abort any = http.ErrAbortHandler
	ps.with.Store(&abort)
	res, err := http.Get(e.authorizeURL())
	if err == nil {
		res.Body.Close()
		t.Errorf("an aborted handler answered %d; want the connection dropped", res.StatusCode)
	}
	if out := logs.String(); strings.Contains(out, "panic serving request") {
		t.Errorf("an aborted handler was logged as a panic:\n%s", out)
	}
}

// nilStore breaks the Storage contract: lookups return neither a record
// nor an error.
type nilStore struct{ oauthd.Storage }

func (nilStore) AuthRequest(context.Context, string) (*oauthd.AuthRequest, error) { return nil, nil }
func (nilStore) Token(context.Context, string) (*oauthd.Token, error)             { return nil, nil }

// A custom store that returns neither a record nor an error gets an error,
// not a panic: in the program's own handler (PendingRequest, which it
// calls outside the Provider's recovery) and at the endpoints.
func TestStoreReturningNeither(t *testing.T) {
	var logs lockedBuffer
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { return nilStore{s} }, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	r := httptest.NewRequest("GET", "/my-login", nil)
	if ar, err := e.p.PendingRequest(r, "some-id"); err == nil || ar != nil {
		t.Errorf("PendingRequest: %v, %v; want an error", ar, err)
	}
	in := e.introspect(basic("service", "service-secret"), "token", "whatever")
	if in.status != http.StatusInternalServerError || strings.Contains(logs.String(), "panic") {
		t.Errorf("introspect: %d %s; want a 500 and no panic:\n%s", in.status, in.body, logs.String())
	}
	if !strings.Contains(logs.String(), "neither a record nor an error") {
		t.Errorf("the broken store is not named in the log:\n%s", logs.String())
	}
}

// ctxStore records whether the writes that end access were given a
// context that cannot end (context.WithoutCancel).
type ctxStore struct {
	oauthd.Storage
	mu       sync.Mutex
	lasting  map[string]int
	canceled map[string]int
}

func (s *ctxStore) note(name string, ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Done() == nil {
		s.lasting[name]++
	} else {
		s.canceled[name]++
	}
}

func (s *ctxStore) RevokeGrant(ctx context.Context, id string, until time.Time) error {
	s.note("RevokeGrant", ctx)
	return s.Storage.RevokeGrant(ctx, id, until)
}

func (s *ctxStore) RevokeToken(ctx context.Context, hash string) error {
	s.note("RevokeToken", ctx)
	return s.Storage.RevokeToken(ctx, hash)
}

// The writes that end access (a revocation asked for at RFC 7009's
// endpoint, the grant revocation of a replayed code) run with a context
// that does not end when the client goes: a store drops the write of a
// caller gone before its commit, and a revocation must stand once asked.
func TestRevocationsOutliveTheRequest(t *testing.T) {
	cs := &ctxStore{lasting: map[string]int{}, canceled: map[string]int{}}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { cs.Storage = s; return cs })
	tok := e.tokens()
	if r := e.revoke(seedAuth, "token", tok.str("access_token")); r.status != http.StatusOK {
		t.Fatalf("revoke access token: %d %s", r.status, r.body)
	}
	if r := e.revoke(seedAuth, "token", tok.str("refresh_token")); r.status != http.StatusOK {
		t.Fatalf("revoke refresh token: %d %s", r.status, r.body)
	}
	code := e.code()
	if r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI)); r.status != http.StatusOK {
		t.Fatalf("redeem: %d %s", r.status, r.body)
	}
	if r := e.token(seedAuth, form("grant_type", "authorization_code", "code", code, "redirect_uri", redirectURI)); r.status != http.StatusBadRequest {
		t.Fatalf("replay: %d %s", r.status, r.body)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.lasting["RevokeToken"] != 1 || cs.lasting["RevokeGrant"] != 2 || len(cs.canceled) != 0 {
		t.Errorf("lasting %v, cancelable %v; want RevokeToken once and RevokeGrant twice (refresh token, replay), none cancelable", cs.lasting, cs.canceled)
	}
}
