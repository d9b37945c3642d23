package oauthd

// Fuzz targets for the parsers and matchers of the protocol engine. Each
// checks properties against an independent reference, not just "does not
// panic". Seed corpora live in testdata/fuzz/FuzzXxx; docs/fuzzing.md has
// the long-run commands.

import (
	"encoding/base64"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseQuery: parseQuery never panics, accepts exactly what
// url.ParseQuery accepts and returns the same values; get refuses a value
// that is not text (invalid UTF-8, control characters), first skips it.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{strings.Repeat("&", 1000), "", "a=1&b=2", "a=1&a=2", "x=%ff", "x=%00", "x=%zz", "x=a%20b+c", "state=%3Cscript%3E", "=&&=", "a;b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		ps, err := parseQuery(q)
		if strings.Count(q, "&")+1 > maxParamsAtAll {
			// Refused whatever url.ParseQuery makes of it: a bound of
			// parseQuery's own.
			if err == nil {
				t.Fatalf("parseQuery accepted %d parameters; want at most %d", strings.Count(q, "&")+1, maxParamsAtAll)
			}
			return
		}
		got := ps.values()
		want, werr := url.ParseQuery(q)
		if werr != nil {
			if err == nil {
				t.Fatalf("parseQuery(%q) accepted what url.ParseQuery refuses: %v", q, werr)
			}
			return
		}
		// Text or not, what url.ParseQuery accepts is accepted: an
		// unknown parameter is ignored whatever it holds (RFC 6749 §3.1).
		if err != nil {
			t.Fatalf("parseQuery(%q) error = %v; url.ParseQuery accepts it", q, err)
		}
		clean := true
		for k, vs := range want {
			clean = clean && textRef(k)
			for _, v := range vs {
				clean = clean && textRef(v)
			}
		}
		if ps.allText() != clean {
			t.Fatalf("parseQuery(%q).allText() = %v; want %v", q, !clean, clean)
		}
		if len(got) != len(want) {
			t.Fatalf("parseQuery(%q) = %v; want %v", q, got, want)
		}
		for k, vs := range want {
			if !slices.Equal(got[k], vs) {
				t.Fatalf("parseQuery(%q)[%q] = %q; want %q", q, k, got[k], vs)
			}
			// RFC 6749 §3.1: an empty value counts as omitted; a value
			// the engine reads must be text.
			nonEmpty := slices.DeleteFunc(slices.Clone(vs), func(v string) bool { return v == "" })
			v, e := ps.get(k)
			wantErr := len(nonEmpty) > 1 || (len(nonEmpty) == 1 && !textRef(nonEmpty[0]))
			if wantErr != (e != nil) || (e == nil && len(nonEmpty) == 1 && v != nonEmpty[0]) || (len(nonEmpty) == 0 && v != "") {
				t.Fatalf("get(%q) = %q, %v with values %q; a repeated parameter or one that is not text must be invalid_request, an empty one counts as omitted", k, v, e, vs)
			}
			if e != nil && (e.Code != ErrorInvalidRequest || e.HTTPStatus() != http.StatusBadRequest) {
				t.Fatalf("get(%q) error %s %d; want invalid_request 400", k, e.Code, e.HTTPStatus())
			}
			firstText := ""
			for _, v := range nonEmpty {
				if textRef(v) {
					firstText = v
					break
				}
			}
			if !ps.has(k) || ps.first(k) != firstText {
				t.Fatalf("has(%q) = %v, first = %q with values %q", k, ps.has(k), ps.first(k), vs)
			}
		}
		if _, sent := want["\x00absent"]; !sent {
			if v, e := ps.get("\x00absent"); v != "" || e != nil || ps.has("\x00absent") || ps.first("\x00absent") != "" {
				t.Fatalf("an absent parameter: get = %q, %v; has = %v", v, e, ps.has("\x00absent"))
			}
		}
	})
}

// textRef is validText written differently: UTF-8 and no C0 control other
// than tab, CR and LF.
func textRef(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\r' && r != '\n' {
			return false
		}
	}
	return true
}

// FuzzParseForm: the form reader never panics, refuses other content types
// and bodies over the limit (413), and otherwise agrees with parseQuery.
func FuzzParseForm(f *testing.F) {
	f.Add("application/x-www-form-urlencoded", "grant_type=client_credentials&scope=read")
	f.Add("application/x-www-form-urlencoded; charset=UTF-8", "a=%ff")
	f.Add("application/json", `{"a":1}`)
	f.Add("", "a=1")
	f.Add("application/x-www-form-urlencoded", strings.Repeat("a", 300))
	f.Fuzz(func(t *testing.T, ct, body string) {
		// The body's length known (as net/http checks it), unknown
		// (chunked), or claimed too short, which only a caller other than
		// net/http can do: the limit holds in each case.
		for _, length := range []int64{int64(len(body)), -1, int64(min(len(body), 8))} {
			checkParseForm(t, ct, body, length)
		}
	})
}

func checkParseForm(t *testing.T, ct, body string, length int64) {
	const max = 256
	r := httptest.NewRequest("POST", "/oauth/token", strings.NewReader(body))
	r.ContentLength = length
	r.Header.Set("Content-Type", ct)
	w := httptest.NewRecorder()
	ps, err := parseForm(w, r, max)
	if err != nil {
		if err.Code != ErrorInvalidRequest {
			t.Fatalf("parseForm error code %s; want invalid_request", err.Code)
		}
		if err.HTTPStatus() == http.StatusRequestEntityTooLarge && len(body) <= max {
			t.Fatalf("413 for a %d-byte body under the %d limit", len(body), max)
		}
		return
	}
	if len(body) > max {
		t.Fatalf("a %d-byte body over the %d limit was accepted", len(body), max)
	}
	want, qerr := parseQuery(body)
	if qerr != nil || !maps.EqualFunc(want.values(), ps.values(), slices.Equal) {
		t.Fatalf("parseForm(%q) = %v; parseQuery = %v, %v", body, ps, want, qerr)
	}
}

// FuzzParseBasicAuth: never panics; what it accepts is valid text; and any
// pair of valid texts survives encoding as RFC 6749 §2.3.1 says
// (form-urlencode, join with ":", base64).
func FuzzParseBasicAuth(f *testing.F) {
	f.Add("Basic dGVzdF9jbGllbnQ6cGFzc3dvcmQ=", "test_client", "password")
	f.Add("basic YTpi", "a:b c", "s%e:cret")
	f.Add("Basic !!!", "", "")
	f.Add("Bearer x", "id\x00", "sec")
	f.Add("Basic "+base64.StdEncoding.EncodeToString([]byte("%zz:x")), "é", "\xff")
	f.Fuzz(func(t *testing.T, header, id, sec string) {
		gid, gsec, ok := ParseBasicAuth(header)
		if ok && (!validText(gid) || !validText(gsec)) {
			t.Fatalf("ParseBasicAuth(%q) accepted %q:%q with control characters or invalid UTF-8", header, gid, gsec)
		}
		if !ok && (gid != "" || gsec != "") {
			t.Fatalf("ParseBasicAuth(%q) failed but returned %q:%q", header, gid, gsec)
		}
		h := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(sec)))
		gid, gsec, ok = ParseBasicAuth(h)
		want := validText(id) && validText(sec)
		if ok != want || (ok && (gid != id || gsec != sec)) {
			t.Fatalf("ParseBasicAuth(encode(%q, %q)) = %q, %q, %v; want the same back: %v", id, sec, gid, gsec, ok, want)
		}
	})
}

// FuzzMatchRedirectURI checks MatchRedirectURI differentially against byte
// equality: for a registered URI that is not a loopback IP literal the
// result must be requested == registered; for a loopback one it must be
// equality once the port is removed from both (RFC 9700 §4.1.3, RFC 8252
// §7.3).
func FuzzMatchRedirectURI(f *testing.F) {
	for _, s := range [][2]string{
		{"https://www.example.com/redirect", "https://www.example.com/redirect"},
		{"https://www.example.com/redirect", "https://www.example.com/redirect/"},
		{"https://www.example.com/redirect", "https://WWW.example.com/redirect"},
		{"https://www.example.com/redirect", "https://www.example.com/redirect?x=1"},
		{"https://www.example.com/redirect", "https://www.example.com/redirect#f"},
		{"https://www.example.com/redirect", "https://www.example.com@evil.example/redirect"},
		{"https://www.example.com/redirect", "https://www.example.com/redirect/../redirect"},
		{"https://www.example.com/redirect", "https://www.example.com/%72edirect"},
		{"http://localhost/cb", "http://localhost.evil.example/cb"},
		{"http://localhost/cb", "http://localhost:8080/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51004/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:51004/cb?x=1"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:0/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:65535/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:65536/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:0080/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1:80@evil.example/cb"},
		{"http://127.0.0.1/cb", "http://127.0.0.1.evil.example/cb"},
		{"http://127.0.0.1/cb?a=b", "http://127.0.0.1:9/cb?a=b"},
		{"http://127.0.0.1/a%20b", "http://127.0.0.1:9/a b"},
		{"http://[::1]/cb", "http://[::1]:8080/cb"},
		{"http://[::1]/cb", "http://[::1]:8080/cb#x"},
		{"com.example.app:/cb", "com.example.app:/cb"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, registered, requested string) {
		got := MatchRedirectURI([]string{registered}, requested)
		want := requested != "" && requested == registered
		if !want {
			r, rok := withoutLoopbackPort(registered)
			q, qok := withoutLoopbackPort(requested)
			want = rok && qok && r == q
		}
		if got != want {
			t.Fatalf("MatchRedirectURI([%q], %q) = %v; want %v", registered, requested, got, want)
		}
		// Adding more registered URIs never loses a match.
		if got && !MatchRedirectURI([]string{"https://unrelated.example/cb", registered}, requested) {
			t.Fatalf("match lost with a second registered URI")
		}
	})
}

// withoutLoopbackPort is the reference for RFC 8252 §7.3: s is an http URI
// on the loopback IP literal 127.0.0.1 or [::1], with an optional decimal
// port, no user information and no fragment; it returns s without the
// port.
func withoutLoopbackPort(s string) (string, bool) {
	for _, prefix := range []string{"http://127.0.0.1", "http://[::1]"} {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok {
			continue
		}
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			n := 0
			for n < len(p) && p[n] >= '0' && p[n] <= '9' {
				n++
			}
			// A port 1-65535 without leading zeros (RFC 8252 §7.3 lets
			// it vary, not leave the ports a browser can reach).
			if port, err := strconv.Atoi(p[:n]); n == 0 || err != nil || port < 1 || port > 65535 || p[0] == '0' {
				return "", false
			}
			rest = p[n:]
		}
		if rest != "" && rest[0] != '/' && rest[0] != '?' {
			return "", false
		}
		if strings.ContainsAny(rest, "#") {
			return "", false
		}
		if _, err := url.Parse(s); err != nil {
			return "", false
		}
		return prefix + rest, true
	}
	return "", false
}

// FuzzValidateRedirectURI: never panics, and whatever it accepts for
// registration is an absolute URI without fragment, user information,
// spaces or controls; http only on loopback hosts; no script schemes.
func FuzzValidateRedirectURI(f *testing.F) {
	for _, s := range []string{"https://www.example.com/redirect", "http://127.0.0.1/cb", "http://[::1]:0/cb", "http://localhost/cb",
		"com.example.app:/cb", "javascript:alert(1)", "JaVaScRiPt://x/%0aalert(1)", "data:text/html,x", "http://evil.example/cb",
		"https://a@b/", "https:///x", "/relative", "https://x/#f", "myapp:/cb", "https://x/\x00", "https://x/ y", "http://127.0.0.1.evil.example/", "http://127.0.0.1:65536/cb", "https://x:99999999999999999999/cb", "http://LOCALHOST/cb",
		"https://x/cb?iss=https://evil.example", "https://x/cb?a=1&c%6fde=1", "https://x/cb?tenant=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidateRedirectURI(s) != nil {
			return
		}
		u, err := url.Parse(s)
		if err != nil || !u.IsAbs() || u.User != nil || strings.Contains(s, "#") || !utf8.ValidString(s) {
			t.Fatalf("ValidateRedirectURI accepted %q", s)
		}
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] == 0x7f {
				t.Fatalf("ValidateRedirectURI accepted %q with a space or control character", s)
			}
		}
		if p := u.Port(); p != "" {
			if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
				t.Fatalf("ValidateRedirectURI accepted %q, whose port no browser can reach", s)
			}
		}
		switch strings.ToLower(u.Scheme) {
		case "javascript", "data", "vbscript", "file":
			t.Fatalf("ValidateRedirectURI accepted the script scheme of %q", s)
		case "http":
			h := u.Hostname()
			if ip := net.ParseIP(h); !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) { // host names are case-insensitive
				t.Fatalf("ValidateRedirectURI accepted plain http on %q", h)
			}
		case "https":
			if u.Host == "" {
				t.Fatalf("ValidateRedirectURI accepted https without a host: %q", s)
			}
		default:
			if !strings.Contains(u.Scheme, ".") {
				t.Fatalf("ValidateRedirectURI accepted the private-use scheme %q without a dot", u.Scheme)
			}
		}
	})
}

// FuzzParseScope: every token obeys the RFC 6749 §3.3 charset, none is
// empty or repeated, ok is false exactly when a token has a character
// outside the set, and JoinScope(ParseScope(s)) parses back to the same
// slice.
func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"", "email", "openid email profile", "  email  email ", `em"ail`, `a\b`, "é", "a\tb", "a\x00", "!#[]~"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseScope(s)
		wantOK := true
		for _, tok := range strings.Split(s, " ") {
			for _, c := range []byte(tok) {
				if !(c == 0x21 || c >= 0x23 && c <= 0x5B || c >= 0x5D && c <= 0x7E) {
					wantOK = false
				}
			}
		}
		if ok != wantOK {
			t.Fatalf("ParseScope(%q) ok = %v; want %v", s, ok, wantOK)
		}
		if !ok {
			if got != nil {
				t.Fatalf("ParseScope(%q) failed but returned %q", s, got)
			}
			return
		}
		seen := map[string]bool{}
		for _, tok := range got {
			if tok == "" || seen[tok] || strings.Contains(tok, " ") {
				t.Fatalf("ParseScope(%q) = %q: empty, repeated or spaced token", s, got)
			}
			seen[tok] = true
			if !strings.Contains(" "+s+" ", " "+tok+" ") {
				t.Fatalf("ParseScope(%q) made up the token %q", s, tok)
			}
		}
		again, ok2 := ParseScope(JoinScope(got))
		if !ok2 || !slices.Equal(again, got) {
			t.Fatalf("ParseScope(JoinScope(%q)) = %q, %v; want the same slice", got, again, ok2)
		}
		if !subset(got, got) || (len(got) > 0 && subset(got, got[1:])) {
			t.Fatalf("subset is wrong for %q", got)
		}
	})
}

// FuzzValidPKCEValue checks the RFC 7636 §4.1 ABNF (43*128unreserved) and
// that S256 verification accepts exactly the verifier its challenge was
// made from.
func FuzzValidPKCEValue(f *testing.F) {
	f.Add(strings.Repeat("a", 43), strings.Repeat("b", 43))
	f.Add(strings.Repeat("a", 42), strings.Repeat("a", 129))
	f.Add("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
	f.Add(strings.Repeat("~", 43)+"+", strings.Repeat("é", 30))
	f.Fuzz(func(t *testing.T, v, other string) {
		want := len(v) >= 43 && len(v) <= 128
		for _, c := range []byte(v) {
			if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", rune(c)) {
				want = false
			}
		}
		if got := ValidPKCEValue(v); got != want {
			t.Fatalf("ValidPKCEValue(%q) = %v; want %v", v, got, want)
		}
		ch := S256Challenge(v)
		if !ValidPKCEValue(ch) || len(ch) != 43 {
			t.Fatalf("S256Challenge(%q) = %q is not a valid 43-character challenge", v, ch)
		}
		if got := verifyPKCE(PKCES256, ch, v); got != want {
			t.Fatalf("verifyPKCE(S256, S256(v), v) = %v for v=%q; want %v", got, v, want)
		}
		if other != v && verifyPKCE(PKCES256, ch, other) {
			t.Fatalf("verifyPKCE accepted %q for the challenge of %q", other, v)
		}
		if other != v && verifyPKCE(PKCEPlain, v, other) {
			t.Fatalf("plain verifyPKCE accepted %q for %q", other, v)
		}
		if verifyPKCE("S512", ch, v) || verifyPKCE(PKCES256, v, v) && ch != v {
			t.Fatalf("verifyPKCE accepted an unknown method or a plain value as S256")
		}
	})
}

// FuzzCSRF: checkCSRF never panics with arbitrary cookie values and form
// tokens, never accepts a token made for another cookie, purpose or
// request, and accepts the token made for the browser's own cookie.
func FuzzCSRF(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB", "req", "x")
	f.Add("", "", "", "")
	f.Add("a;b", "a", "login", "\x00")
	f.Add(`"quoted"`, "quoted", "consent", "csrf")
	f.Fuzz(func(t *testing.T, cookie, other, id, got string) {
		r := httptest.NewRequest("POST", "/oauth/login", nil)
		r.Header.Set("Cookie", browserCookieName+"="+cookie)
		parsed := ""
		if c, err := r.Cookie(browserCookieName); err == nil {
			parsed = c.Value
		}
		for _, purpose := range []string{"login", "consent", "logout"} {
			if checkCSRFCookie(r, browserCookieName, got, purpose, id) && (parsed == "" || got != csrfToken(parsed, purpose, id)) {
				t.Fatalf("checkCSRF accepted %q for cookie %q", got, cookie)
			}
			if other != parsed && checkCSRFCookie(r, browserCookieName, csrfToken(other, purpose, id), purpose, id) {
				t.Fatalf("a token made for cookie %q was accepted with cookie %q", other, parsed)
			}
			if checkCSRFCookie(r, browserCookieName, csrfToken(parsed, purpose, id+"x"), purpose, id) {
				t.Fatalf("a token made for another request was accepted")
			}
			if want := parsed != ""; checkCSRFCookie(r, browserCookieName, csrfToken(parsed, purpose, id), purpose, id) != want {
				t.Fatalf("the browser's own token for cookie %q: accepted = %v; want %v", parsed, !want, want)
			}
		}
		if checkCSRFCookie(r, browserCookieName, csrfToken(parsed, "login", id), "consent", id) {
			t.Fatalf("a login token was accepted by the consent form")
		}
	})
}
