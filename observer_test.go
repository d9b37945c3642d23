package oauthd_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

type servedObserver struct {
	oauthd.NopObserver
	mu     sync.Mutex
	served []served
}

type served struct {
	route, method string
	status        int
	d             time.Duration
}

func (o *servedObserver) RequestServed(route, method string, status int, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.served = append(o.served, served{route, method, status, d})
}

// The Observer hears of every request the Provider answers, once, with
// the endpoint's route (bounded: "other" for paths nobody serves), the
// method, the status written and a duration.
func TestObserverRequestServed(t *testing.T) {
	o := &servedObserver{}
	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: fakePages{}, Observer: o}, memstore.New())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		method, path string
		want         served
	}{
		{"POST", oauthd.TokenPath, served{route: oauthd.TokenPath, method: "POST", status: http.StatusUnauthorized}},
		{"GET", oauthd.TokenPath, served{route: oauthd.TokenPath, method: "GET", status: http.StatusMethodNotAllowed}},
		{"GET", oauthd.JWKSPath, served{route: oauthd.JWKSPath, method: "GET", status: http.StatusOK}},
		{"GET", "/no/such/path/" + strings.Repeat("x", 10), served{route: "other", method: "GET", status: http.StatusNotFound}},
		{"GET", "/", served{route: "/", method: "GET", status: http.StatusSeeOther}},
	} {
		o.served = nil
		r := httptest.NewRequest(tc.method, tc.path, strings.NewReader(""))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if len(o.served) != 1 {
			t.Fatalf("%s %s: RequestServed called %d times; want once", tc.method, tc.path, len(o.served))
		}
		got := o.served[0]
		if got.route != tc.want.route || got.method != tc.want.method || got.status != w.Code || got.status != tc.want.status || got.d < 0 {
			t.Errorf("%s %s: RequestServed(%q, %q, %d, %v); want (%q, %q, %d, >= 0) (answered %d)", tc.method, tc.path,
				got.route, got.method, got.status, got.d, tc.want.route, tc.want.method, tc.want.status, w.Code)
		}
	}
}
