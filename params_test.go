package oauthd

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// Concurrent requests each get their own parameters: form bodies are read
// into pooled buffers, and no request may see (or keep) bytes of another
// request's body, which would hand one client's code or token to another.
func TestParseFormConcurrentBodiesStayApart(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 300 {
				want := fmt.Sprintf("%02d-%04d-%s", g, i, strings.Repeat("x", (g*i)%700))
				r := httptest.NewRequest("POST", "/oauth/token", strings.NewReader("grant_type=authorization_code&code="+want))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				ps, e := parseForm(httptest.NewRecorder(), r, DefaultMaxBodyBytes)
				if e != nil {
					t.Error(e)
					return
				}
				// Read after other goroutines have reused the buffers.
				for range 3 {
					if got, _ := ps.get("code"); got != want {
						t.Errorf("code = %q; want %q", got, want)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// values is the parameters as url.ParseQuery returns them.
func (p params) values() url.Values {
	if p.many != nil {
		return p.many
	}
	v := url.Values{}
	for _, kv := range p.list {
		v[kv.name] = append(v[kv.name], kv.value)
	}
	return v
}

// Both forms of params, the list of a usual query and the map of one with
// more than maxParams parameters, answer get, has and first alike: a
// repeated parameter is an error for get, and first takes the first value.
func TestParamsLookups(t *testing.T) {
	for _, extra := range []int{0, maxParams} {
		q := "a=1&b=&c=x&c=y&d=%20"
		for i := range extra {
			q += fmt.Sprintf("&z%d=%d", i, i)
		}
		ps, e := parseQuery(q)
		if e != nil {
			t.Fatal(e)
		}
		if (ps.many != nil) != (extra > 0) {
			t.Fatalf("%d extra parameters: many = %v", extra, ps.many != nil)
		}
		for _, c := range []struct {
			name, get string
			repeated  bool
			has       bool
			first     string
		}{
			{"a", "1", false, true, "1"},
			{"b", "", false, true, ""},
			{"c", "", true, true, "x"},
			{"d", " ", false, true, " "},
			{"e", "", false, false, ""},
		} {
			v, e := ps.get(c.name)
			if v != c.get || (e != nil) != c.repeated || ps.has(c.name) != c.has || ps.first(c.name) != c.first {
				t.Errorf("%d extra, %s: get = %q, %v; has = %v; first = %q", extra, c.name, v, e, ps.has(c.name), ps.first(c.name))
			}
			if e != nil && (e.Code != ErrorInvalidRequest || e.Description != "parameter c is repeated") {
				t.Errorf("repeated: %s %q", e.Code, e.Description)
			}
		}
	}
}

// headerValue answers as Header.Get for canonical keys.
func TestHeaderValue(t *testing.T) {
	h := http.Header{}
	h.Add("content-type", "a")
	h.Add("Content-Type", "b")
	h.Set("Authorization", "")
	for _, k := range []string{"Content-Type", "Authorization", "X-Absent"} {
		if got, want := headerValue(h, k), h.Get(k); got != want {
			t.Errorf("headerValue(%s) = %q; Get = %q", k, got, want)
		}
	}
}
