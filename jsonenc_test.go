package oauthd

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// awkward are strings encoding/json escapes: quotes, backslashes, control
// characters, HTML-sensitive characters, non-ASCII, invalid UTF-8, U+2028.
var awkward = []string{"", "plain", `a"b`, `a\b`, "line\nbreak\ttab\r\b\f", "\x00\x01\x1f\x7f", "<script>&amp;",
	"héllo wörld", "日本語", "\xff\xfe bad utf-8", "\u2028\u2029", "openid profile email offline_access", "https://issuer.example/"}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The token endpoint's body (RFC 6749 §5.1) and the introspection body
// (RFC 7662 §2.2) are written without reflection: byte for byte what
// encoding/json writes, omitempty fields included.
func TestJSONEncodersMatchEncodingJSON(t *testing.T) {
	for _, s := range awkward {
		for _, n := range []int64{0, 1, 3600, -5, 1 << 40} {
			tr := TokenResponse{AccessToken: s, TokenType: "Bearer", ExpiresIn: n, RefreshToken: s, RefreshTokenExpiresIn: n, Scope: s, IDToken: s}
			if got, want := string(tr.appendJSON(nil)), mustMarshal(t, tr); got != want {
				t.Errorf("TokenResponse:\n got %s\nwant %s", got, want)
			}
			in := introspection{Active: n != 0, Scope: s, ClientID: s, Username: s, TokenType: s, Exp: n, Iat: n, Sub: s, Aud: s, Iss: s}
			if got, want := string(in.appendJSON(nil)), mustMarshal(t, in); got != want {
				t.Errorf("introspection:\n got %s\nwant %s", got, want)
			}
		}
	}
	// Every mix of empty and set members, for the commas.
	pick := func(mask, bit int, s string) string {
		if mask&(1<<bit) != 0 {
			return s
		}
		return ""
	}
	num := func(mask, bit int) int64 {
		if mask&(1<<bit) != 0 {
			return 42
		}
		return 0
	}
	for m := range 1 << 10 {
		tr := TokenResponse{AccessToken: pick(m, 0, "at"), TokenType: pick(m, 1, "Bearer"), ExpiresIn: num(m, 2), RefreshToken: pick(m, 3, "rt"),
			RefreshTokenExpiresIn: num(m, 4), Scope: pick(m, 5, "a b"), IDToken: pick(m, 6, "x.y.z")}
		if got, want := string(tr.appendJSON(nil)), mustMarshal(t, tr); got != want {
			t.Errorf("TokenResponse:\n got %s\nwant %s", got, want)
		}
		in := introspection{Active: m&1 != 0, Scope: pick(m, 1, "a"), ClientID: pick(m, 2, "c"), Username: pick(m, 3, "u"), TokenType: pick(m, 4, "Bearer"),
			Exp: num(m, 5), Iat: num(m, 6), Sub: pick(m, 7, "s"), Aud: pick(m, 8, "aud"), Iss: pick(m, 9, "https://i")}
		if got, want := string(in.appendJSON(nil)), mustMarshal(t, in); got != want {
			t.Errorf("introspection:\n got %s\nwant %s", got, want)
		}
	}
	if got, want := string(appendInactive(nil)), mustMarshal(t, introspection{}); got != want {
		t.Errorf("inactive: got %s, want %s", got, want)
	}
}

func FuzzJSONString(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("appendJSONString(%q) = %s; want %s", s, got[1:], want)
		}
	})
}

// contentLength gives the decimal length as a one-element slice with no
// room to append into (it may be shared between responses), the same for
// every call, including concurrent first calls.
func TestContentLength(t *testing.T) {
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for _, n := range []int{0, 1, 99, 100, 1234, len(contentLengths) - 1, len(contentLengths), 70000} {
				v := contentLength(n)
				if len(v) != 1 || cap(v) != 1 || v[0] != strconv.Itoa(n) {
					t.Errorf("contentLength(%d) = %q (cap %d)", n, v, cap(v))
				}
				if w := contentLength(n); w[0] != v[0] {
					t.Errorf("contentLength(%d) = %q, then %q", n, v, w)
				}
			}
		})
	}
	wg.Wait()
	// A header that gets a second value does not change the shared one.
	h := http.Header{"Content-Length": contentLength(42)}
	h.Add("Content-Length", "43")
	if v := contentLength(42); len(v) != 1 || v[0] != "42" {
		t.Fatalf("after Add: %q", v)
	}
}

// Every JSON answer carries a Content-Length, never chunked transfer coding,
// whether net/http computes it (bodies up to autoContentLength bytes, kept
// in its buffer until the handler returns) or writeJSONBody sets it.
func TestJSONBodyContentLength(t *testing.T) {
	var size atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(size.Load())
		writeJSONBody(w, http.StatusOK, func(b []byte) []byte {
			// A JSON string of n-3 bytes: with its quotes and the
			// newline, the body is n bytes.
			b = append(b, '"')
			b = append(b, strings.Repeat("a", n-3)...)
			return append(b, '"')
		})
	}))
	defer srv.Close()
	for _, n := range []int{3, 100, autoContentLength - 1, autoContentLength, autoContentLength + 1, 3 * autoContentLength, 70000} {
		size.Store(int64(n))
		res, err := http.Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(body) != n || res.ContentLength != int64(n) || len(res.TransferEncoding) != 0 {
			t.Errorf("body of %d bytes: read %d, Content-Length %d, Transfer-Encoding %v; want %d, %d, none",
				n, len(body), res.ContentLength, res.TransferEncoding, n, n)
		}
	}
}
