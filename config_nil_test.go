package oauthd_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/ui"
)

// New refuses what a program that dropped an error would pass it: a typed
// nil Pages (ui.New failed) or Storage (the store did not open), a
// negative MaxBodyBytes, a LoginURL that is not a URL; and takes Pages
// without static files.
func TestNewRefusesBrokenConfig(t *testing.T) {
	const issuer = "https://auth.example.com"
	pages, err := ui.New(ui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var nilPages *ui.Pages
	var nilStore *memstore.Store
	for _, tc := range []struct {
		name  string
		cfg   oauthd.Config
		store oauthd.Storage
		want  string
	}{
		{"typed nil Pages", oauthd.Config{Issuer: issuer, Pages: nilPages}, memstore.New(), "Config.Pages is required"},
		{"typed nil Storage", oauthd.Config{Issuer: issuer, Pages: pages}, nilStore, "a Storage is required"},
		{"negative MaxBodyBytes", oauthd.Config{Issuer: issuer, Pages: pages, MaxBodyBytes: -1}, memstore.New(), "MaxBodyBytes"},
		{"LoginURL not a URL", oauthd.Config{Issuer: issuer, Pages: pages, LoginURL: "::not a url"}, memstore.New(), "LoginURL"},
		{"LoginURL relative", oauthd.Config{Issuer: issuer, Pages: pages, LoginURL: "login"}, memstore.New(), "LoginURL"},
		{"LoginURL on another host", oauthd.Config{Issuer: issuer, Pages: pages, LoginURL: "https://elsewhere.example/login"}, memstore.New(), "LoginURL"},
		{"LoginURL scheme-relative", oauthd.Config{Issuer: issuer, Pages: pages, LoginURL: "//elsewhere.example/login"}, memstore.New(), "LoginURL"},
	} {
		if _, err := oauthd.New(tc.cfg, tc.store); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: New: %v; want an error about %s", tc.name, err, tc.want)
		}
	}
	if _, err := oauthd.New(oauthd.Config{Issuer: issuer, Pages: noStatic{pages}}, memstore.New()); err != nil {
		t.Errorf("Pages whose Static is nil: %v", err)
	}
}

type noStatic struct{ *ui.Pages }

func (noStatic) Static() http.Handler { return nil }

// A LoginURL with a query of its own gets the request id added to it.
func TestLoginURLWithQuery(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.LoginURL = "/my-login?tenant=a" })
	r := e.browser().get(e.authorizeURL())
	if !strings.HasPrefix(r.location(), "/my-login?tenant=a&request=") {
		t.Errorf("redirect %q; want /my-login?tenant=a&request=ID", r.location())
	}
}

// A Provider not made by New answers 500 with the reason, not a panic.
func TestZeroProviderServes(t *testing.T) {
	for _, p := range []*oauthd.Provider{nil, new(oauthd.Provider)} {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "oauthd.New") {
			t.Errorf("zero Provider: %d %q; want 500 naming oauthd.New", rec.Code, rec.Body.String())
		}
	}
}
