package oauthd_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
)

// A browser application (a public client on its own origin) can call the
// token and revocation endpoints: CORS preflights are answered and answers
// to requests with an Origin, errors too, may be read by any origin. The
// answers carry nothing for requests without an Origin, and introspection,
// for resource servers, stays closed to browsers.
func TestTokenEndpointsCORS(t *testing.T) {
	e := newEnv(t)
	do := func(method, path, origin string, body url.Values, auth string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, e.url(path), strings.NewReader(body.Encode()))
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	cc := url.Values{"grant_type": {"client_credentials"}}
	for _, path := range []string{oauthd.TokenPath, oauthd.TokenizePath, oauthd.RevokePath} {
		t.Run("Fetch_CORS_preflight"+path, func(t *testing.T) {
			res := do(http.MethodOptions, path, "https://spa.example", nil, "")
			h := res.Header
			if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" ||
				!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
				!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
				t.Errorf("preflight: %d %v", res.StatusCode, h)
			}
		})
	}
	// The public documents too: a browser application that reads them
	// with a custom header (or a library that sends one) is preflighted.
	for _, path := range []string{oauthd.OIDCDiscoveryPath, oauthd.OAuthMetadataPath, oauthd.JWKSPath} {
		t.Run("Fetch_CORS_preflight"+path, func(t *testing.T) {
			res := do(http.MethodOptions, path, "https://spa.example", nil, "")
			h := res.Header
			if res.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Access-Control-Allow-Methods") != "GET" {
				t.Errorf("preflight: %d %v", res.StatusCode, h)
			}
			if res := do(http.MethodGet, path, "https://spa.example", nil, ""); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Errorf("GET: %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
			}
		})
	}
	t.Run("Fetch_CORS/token_answer_readable", func(t *testing.T) {
		if res := do(http.MethodPost, oauthd.TokenPath, "https://spa.example", cc, basic("service", "service-secret")); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("token: %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("Fetch_CORS/error_readable", func(t *testing.T) {
		res := do(http.MethodPost, oauthd.TokenPath, "https://spa.example", cc, basic("service", "wrong"))
		if res.StatusCode != 401 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("token error: %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
		// Retry-After (429) and WWW-Authenticate are not CORS-safelisted:
		// exposed, so the application can read them.
		if exp := res.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(exp, "Retry-After") || !strings.Contains(exp, "WWW-Authenticate") {
			t.Errorf("token error: Access-Control-Expose-Headers %q; want Retry-After and WWW-Authenticate", exp)
		}
	})
	t.Run("Fetch_CORS/userinfo_challenge_readable", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, e.url(oauthd.UserinfoPath), nil)
		req.Header.Set("Origin", "https://spa.example")
		req.Header.Set("Authorization", "Bearer nope")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 || !strings.Contains(res.Header.Get("Access-Control-Expose-Headers"), "WWW-Authenticate") {
			t.Errorf("userinfo 401: Access-Control-Expose-Headers %q; want WWW-Authenticate (RFC 6750 §3)", res.Header.Get("Access-Control-Expose-Headers"))
		}
	})
	t.Run("Fetch_CORS/revocation_readable", func(t *testing.T) {
		if res := do(http.MethodPost, oauthd.RevokePath, "https://spa.example", url.Values{"token": {"x"}}, seedAuth); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("revoke: %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("no_Origin_no_CORS_headers", func(t *testing.T) {
		if res := do(http.MethodPost, oauthd.TokenPath, "", cc, basic("service", "service-secret")); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("token without Origin: %d, Access-Control-Allow-Origin %q", res.StatusCode, res.Header.Get("Access-Control-Allow-Origin"))
		}
		if res := do(http.MethodOptions, oauthd.TokenPath, "", nil, ""); res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("OPTIONS without Origin: %d; want 405", res.StatusCode)
		}
	})
	// Fetch §3.2.5: an answer whose CORS headers depend on the Origin
	// says so, with or without one; the public documents, which carry
	// them whatever the request, do not vary.
	t.Run("Fetch_3.2.5/Vary_Origin", func(t *testing.T) {
		for _, origin := range []string{"", "https://spa.example"} {
			for _, path := range []string{oauthd.TokenPath, oauthd.RevokePath} {
				if res := do(http.MethodPost, path, origin, cc, basic("service", "service-secret")); res.Header.Get("Vary") != "Origin" {
					t.Errorf("%s with Origin %q: Vary %q; want Origin", path, origin, res.Header.Values("Vary"))
				}
			}
			for _, path := range []string{oauthd.OIDCDiscoveryPath, oauthd.JWKSPath} {
				res := do(http.MethodGet, path, origin, nil, "")
				if v := res.Header.Values("Vary"); len(v) != 0 || res.Header.Get("Access-Control-Allow-Origin") != "*" {
					t.Errorf("%s with Origin %q: Vary %q, Access-Control-Allow-Origin %q; want no Vary and *", path, origin, v, res.Header.Get("Access-Control-Allow-Origin"))
				}
			}
		}
	})
	t.Run("introspection_not_for_browsers", func(t *testing.T) {
		if res := do(http.MethodOptions, oauthd.IntrospectPath, "https://spa.example", nil, ""); res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("introspection preflight: %d %v", res.StatusCode, res.Header)
		}
	})
}
