package oauthd_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
)

// settle gives a request started in a goroutine the time to reach the KDF
// queue (the gate has no public view of its waiters).
func settle() { time.Sleep(50 * time.Millisecond) }

// TestKDFQueueFull: when more password and secret checks wait for the slow
// KDF than the server lets wait, a sign-in or a client authentication is
// answered at once with 503 and Retry-After (the login page's error, the
// token endpoint's temporarily_unavailable), not queued behind minutes of
// work; nothing is counted against the account or the client, and the
// checks already waiting still run.
func TestKDFQueueFull(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	lp := e.loginPage(b)
	f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"admin"}}

	restore := secret.ReplaceGateForTest(1, 1, 1)
	defer restore()
	release := secret.HoldSlotForTest() // a long check holds the only slot

	first := make(chan *response, 1)
	go func() {
		// Waits for the slot: the one place in the queue.
		status, h, err := postLogin(b.c, e.url(oauthd.LoginPath), f)
		if err != nil {
			t.Error(err)
		}
		first <- &response{status: status, header: h}
	}()
	settle()

	before := secret.KDFRuns()
	r := b.post(e.url(oauthd.LoginPath), f)
	if r.status != http.StatusServiceUnavailable || r.pageKind() != "error" || r.str("Code") != oauthd.ErrorTemporarilyUnavailable {
		t.Errorf("sign-in with the queue full: %d %s %s; want 503 and the temporarily_unavailable page", r.status, r.pageKind(), r.body)
	}
	if got := r.header.Get("Retry-After"); got != "2" {
		t.Errorf("Retry-After %q; want 2", got)
	}
	tr := e.token(basic(clientID, "not-the-secret"), form("grant_type", "client_credentials"))
	if tr.status != http.StatusServiceUnavailable || tr.str("error") != oauthd.ErrorTemporarilyUnavailable || tr.header.Get("Retry-After") != "2" {
		t.Errorf("client authentication with the queue full: %d %s %q; want 503 temporarily_unavailable with Retry-After 2", tr.status, tr.body, tr.header.Get("Retry-After"))
	}
	tr = e.token(basic("no-such-client", "x"), form("grant_type", "client_credentials"))
	if tr.status != http.StatusServiceUnavailable {
		t.Errorf("an unknown client with the queue full: %d %s; want 503, as a known one (the same work, the same answer)", tr.status, tr.body)
	}
	if n := secret.KDFRuns() - before; n != 0 {
		t.Errorf("%d KDF runs for refused checks; want 0", n)
	}

	release()
	select {
	case r := <-first:
		if r.status != http.StatusSeeOther || !strings.HasPrefix(r.header.Get("Location"), oauthd.ConsentPath) {
			t.Errorf("the waiting sign-in: %d %s; want 303 to consent once the slot was free", r.status, r.header.Get("Location"))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting sign-in never ran")
	}
	// The refusals counted nothing: the client's right secret works.
	tr = e.token(basic(clientID, clientSecret), form("grant_type", "authorization_code", "code", "x", "redirect_uri", redirectURI))
	if tr.status == http.StatusTooManyRequests || tr.status == http.StatusServiceUnavailable || tr.str("error") == oauthd.ErrorInvalidClient {
		t.Errorf("the right secret after the refusals: %d %s; want it to authenticate (invalid_grant for the made-up code)", tr.status, tr.body)
	}
}

// TestKDFClientGone: a sign-in whose browser gives up while its password
// check waits for the KDF leaves the queue; its check never runs.
func TestKDFClientGone(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	lp := e.loginPage(b)
	f := url.Values{"request": {lp.str("AuthReqID")}, "csrf": {lp.str("CSRF")}, "username": {"admin"}, "password": {"wrong"}}

	restore := secret.ReplaceGateForTest(1, 10, 10)
	defer restore()
	release := secret.HoldSlotForTest()
	before := secret.KDFRuns()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url(oauthd.LoginPath), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if res, err := b.c.Do(req); err == nil {
		res.Body.Close()
		t.Fatalf("the sign-in was answered (%d) while the only KDF slot was held", res.StatusCode)
	}
	settle()
	release()
	settle()
	if n := secret.KDFRuns() - before; n != 0 {
		t.Errorf("%d KDF runs after the browser gave up; want 0", n)
	}
}
