package oauthd_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// freshLoginPage opens an authorization request with prompt=login in b,
// so the login page shows whether or not b is signed in.
func (e *testEnv) freshLoginPage(b *browser) *response {
	e.t.Helper()
	r := b.follow(e, b.get(e.authorizeURL("prompt", "login")))
	if r.pageKind() != "login" {
		e.t.Fatalf("want the login page, got %d %s", r.status, r.body)
	}
	return r
}

// The login page shown to a browser with someone signed in names them and
// the sign-out page; to one without, neither.
func TestLoginPageSaysWhoIsSignedIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := e.freshLoginPage(b)
	if r.page["SignedIn"] != nil || r.str("SignOutURL") != "" {
		t.Errorf("login page of a browser signed in as nobody: SignedIn %v, SignOutURL %q; want neither", r.page["SignedIn"], r.str("SignOutURL"))
	}
	if r := b.login(e, r, "admin", "admin"); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", r.status)
	}
	r = e.freshLoginPage(b)
	who, _ := r.page["SignedIn"].(map[string]any)
	if who["username"] != "admin" || r.str("SignOutURL") != oauthd.LogoutPath {
		t.Errorf("login page of a signed-in browser: SignedIn %v, SignOutURL %q; want admin and %s", r.page["SignedIn"], r.str("SignOutURL"), oauthd.LogoutPath)
	}
}

// deviceCookie returns the device cookie a response sets, or nil.
func deviceCookie(r *response) *http.Cookie {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == "oauthd_device" {
			return c
		}
	}
	return nil
}

// OWASP's device cookies: anyone who knows a username can lock its
// account out of the login form with wrong passwords, but a browser that
// signed in to the account before keeps signing in; its own failures are
// counted on its own (one count whatever the cookie's spelling), and a
// cookie that is forged, for another account, from before a password
// change or expired counts for nothing.
func TestDeviceCookieOutlastsAccountLockout(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	if err := e.store.CreateUser(ctx, &oauthd.User{ID: "bob-id", Username: "bob", PasswordHash: hash(t, "bob-password")}); err != nil {
		t.Fatal(err)
	}
	max := oauthd.DefaultLoginLimit.MaxFailures
	// lockOut makes the account's failures reach the limit from a browser
	// of the attacker's, which has no device cookie.
	lockOut := func(user string) {
		t.Helper()
		attacker := e.browser()
		for i := range max {
			if r := attacker.login(e, e.freshLoginPage(attacker), user, "wrong"); r.status != http.StatusSeeOther {
				t.Fatalf("attacker's guess %d: %d; want 303 invalid_credentials", i+1, r.status)
			}
		}
		if r := attacker.login(e, e.freshLoginPage(attacker), user, "wrong"); r.status != http.StatusTooManyRequests {
			t.Fatalf("attacker past the limit: %d; want 429", r.status)
		}
	}
	signIn := func(b *browser, user, pass string) int {
		t.Helper()
		return b.login(e, e.freshLoginPage(b), user, pass).status
	}

	owner := e.browser()
	r := owner.login(e, e.freshLoginPage(owner), "admin", "admin")
	dc := deviceCookie(r)
	if r.status != http.StatusSeeOther || dc == nil {
		t.Fatalf("sign-in: %d, device cookie %v; want 303 and a device cookie", r.status, dc)
	}
	if dc.Path != oauthd.LoginPath || !dc.HttpOnly || dc.MaxAge < 30*24*3600 || dc.SameSite != http.SameSiteLaxMode {
		t.Errorf("device cookie %+v; want Path=%s, HttpOnly, SameSite=Lax, months of Max-Age", dc, oauthd.LoginPath)
	}
	if _, err := e.p.ParseIDTokenHint(ctx, dc.Value); err == nil {
		t.Error("the device cookie was taken for an id_token_hint")
	}

	lockOut("admin")
	if s := signIn(e.browser(), "admin", "admin"); s != http.StatusTooManyRequests {
		t.Errorf("right password from a new browser during the lockout: %d; want 429", s)
	}
	if s := signIn(owner, "admin", "admin"); s != http.StatusSeeOther {
		t.Errorf("right password from the owner's browser during the lockout: %d; want 303 (signed in)", s)
	}

	// A forged cookie, and the owner's cookie for another account, are
	// counted against the account as any browser.
	forged := e.browser()
	u, _ := url.Parse(e.url(oauthd.LoginPath))
	tampered := []byte(dc.Value)
	tampered[len(tampered)-2] ^= 'A' ^ 'B'
	forged.c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_device", Value: string(tampered), Path: oauthd.LoginPath}})
	if s := signIn(forged, "admin", "admin"); s != http.StatusTooManyRequests {
		t.Errorf("right password with a forged device cookie during the lockout: %d; want 429", s)
	}
	lockOut("bob")
	if s := signIn(owner, "bob", "bob-password"); s != http.StatusTooManyRequests {
		t.Errorf("bob's password from admin's device during bob's lockout: %d; want 429", s)
	}

	// The owner's browser has its own count: its wrong passwords lock it,
	// not the account for others (the account is locked already here;
	// after its lockout a new browser signs in while the owner's browser
	// is still locked).
	owner2 := e.browser()
	if s := signIn(owner2, "admin", "admin"); s != http.StatusTooManyRequests {
		t.Fatalf("new browser: %d; want 429 (account still locked)", s)
	}
	for i := range max {
		if s := signIn(owner, "admin", "wrong"); s != http.StatusSeeOther {
			t.Fatalf("owner's wrong password %d: %d; want 303 invalid_credentials", i+1, s)
		}
	}
	if s := signIn(owner, "admin", "admin"); s != http.StatusTooManyRequests {
		t.Errorf("owner's browser past its own limit: %d; want 429", s)
	}
	e.clock.Add(time.Minute) // the account's first lockout ends; the owner's browser's too
	if s := signIn(owner2, "admin", "admin"); s != http.StatusSeeOther {
		t.Errorf("new browser after the account's lockout: %d; want 303", s)
	}

	// Other spellings of the same cookie (base64url's spare bits in the
	// signature's last character: the same signature) share its count.
	e.clock.Add(time.Hour) // every count and lockout so far is over
	lockOut("admin")
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, dc.Value[len(dc.Value)-1])
	for i := range max {
		v := dc.Value[:len(dc.Value)-1] + string(alphabet[last^(i%4)])
		b := e.browser()
		b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_device", Value: v, Path: oauthd.LoginPath}})
		if s := signIn(b, "admin", "wrong"); s != http.StatusSeeOther {
			t.Fatalf("wrong password %d with a respelt device cookie: %d; want 303 invalid_credentials", i+1, s)
		}
	}
	respelt := e.browser()
	respelt.c.Jar.SetCookies(u, []*http.Cookie{{Name: "oauthd_device", Value: dc.Value[:len(dc.Value)-1] + string(alphabet[last^3]), Path: oauthd.LoginPath}})
	if s := signIn(respelt, "admin", "admin"); s != http.StatusTooManyRequests {
		t.Errorf("a respelt device cookie past the cookie's limit: %d; want 429 (one count for every spelling)", s)
	}

	// A password change ends the cookies of the old password.
	e.clock.Add(time.Hour)
	if s := signIn(owner, "admin", "admin"); s != http.StatusSeeOther {
		t.Fatalf("owner after the lockouts: %d; want 303", s)
	}
	admin, err := e.store.UserByUsername(ctx, "admin")
	if err != nil {
		t.Fatal(err)
	}
	admin.PasswordHash = hash(t, "new-password")
	if err := e.store.UpdateUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	lockOut("admin")
	if s := signIn(owner, "admin", "new-password"); s != http.StatusTooManyRequests {
		t.Errorf("owner's device cookie from before the password change, during a lockout: %d; want 429", s)
	}

	// A sign-in with the new password gives a cookie that works again...
	e.clock.Add(time.Hour)
	if s := signIn(owner, "admin", "new-password"); s != http.StatusSeeOther {
		t.Fatalf("owner with the new password after the lockout: %d; want 303", s)
	}
	lockOut("admin")
	if s := signIn(owner, "admin", "new-password"); s != http.StatusSeeOther {
		t.Errorf("owner's new device cookie during a lockout: %d; want 303", s)
	}

	// ...until it expires.
	e.clock.Add(91 * 24 * time.Hour)
	lockOut("admin")
	if s := signIn(owner, "admin", "new-password"); s != http.StatusTooManyRequests {
		t.Errorf("owner's browser with a device cookie 91 days old during a lockout: %d; want 429", s)
	}
}
