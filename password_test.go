package oauthd_test

import (
	"testing"
	"time"
)

// A password change ends the browser sessions signed in before it: the
// next authorization request shows the login page again, and the new
// password signs in (OWASP ASVS 3.3.3). A session signed in after the
// change is kept.
func TestPasswordChangeEndsSessions(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.authorizeExpectLogin(t, b, e.authorizeURL(), true)
	e.authorizeExpectLogin(t, b, e.authorizeURL(), false) // still signed in

	e.tick(time.Minute)
	u, err := e.store.User(t.Context(), e.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	u.PasswordChangedAt = e.clock.Now()
	if err := e.store.UpdateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	e.tick(time.Second)
	e.authorizeExpectLogin(t, b, e.authorizeURL(), true)  // signed out by the change
	e.authorizeExpectLogin(t, b, e.authorizeURL(), false) // the new session stands
}
