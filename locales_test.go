package oauthd_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/oauthd/oauthd"
)

// OIDC Core §3.1.2.1 ui_locales: an error about a pending request (a form
// not sent from this browser, an unknown decision) is in the language the
// request asked for, as its login and consent pages are.
func TestErrorPageOfARequestKeepsItsLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	r := b.follow(e, b.get(e.authorizeURL("ui_locales", "fr")))
	r = b.follow(e, b.login(e, r, "admin", "admin"))
	if r.pageKind() != "consent" {
		t.Fatalf("want the consent page: %d %s", r.status, r.body)
	}
	for name, f := range map[string]url.Values{
		"forged csrf":    {"request": {r.str("AuthReqID")}, "csrf": {"forged"}, "action": {"approve"}},
		"unknown action": {"request": {r.str("AuthReqID")}, "csrf": {r.str("CSRF")}, "action": {"maybe"}},
	} {
		er := b.post(e.url(oauthd.ConsentPath), f)
		if er.pageKind() != "error" || !localesAre(er, "fr") {
			t.Errorf("%s: %d %s; want the error page in fr", name, er.status, er.body)
		}
	}
}

// RP-Initiated Logout 1.0 §2 ui_locales: the signed-out page after the
// confirmation is in the language of the request too.
func TestSignedOutPageKeepsTheLogoutLanguage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	b.follow(e, b.login(e, b.follow(e, b.get(e.authorizeURL())), "admin", "admin"))
	r := b.get(e.url(oauthd.LogoutPath + "?ui_locales=fr"))
	if r.pageKind() != "logout" || !localesAre(r, "fr") {
		t.Fatalf("confirmation: %d %s; want the logout page in fr", r.status, r.body)
	}
	f := url.Values{"csrf": {r.str("CSRF")}, "action": {"logout"}}
	for _, h := range r.page["Hidden"].([]any) {
		m := h.(map[string]any)
		f.Set(m["Name"].(string), m["Value"].(string))
	}
	r = b.post(e.url(oauthd.LogoutPath), f)
	if r.status != http.StatusSeeOther {
		t.Fatalf("confirmation: %d %s; want 303 to the signed-out page", r.status, r.body)
	}
	r = b.follow(e, r)
	if r.status != http.StatusOK || r.page["SignedOut"] != true || !localesAre(r, "fr") {
		t.Errorf("signed out: %d %s; want the signed-out page in fr", r.status, r.body)
	}
}

func localesAre(r *response, want ...string) bool {
	got, _ := r.page["Locales"].([]any)
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
