package oauthd

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
)

// The token and introspection endpoints answer the bulk of an
// authorization server's requests. Their bodies are written here without
// reflection, into pooled buffers, byte for byte as encoding/json writes
// them (TestJSONEncodersMatchEncodingJSON, FuzzJSONString).

var jsonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeJSONBody answers with the JSON object that appendBody appends, and
// a trailing newline as json.Encoder writes.
func writeJSONBody(w http.ResponseWriter, status int, appendBody func([]byte) []byte) {
	bp := jsonBufs.Get().(*[]byte)
	b := append(appendBody((*bp)[:0]), '\n')
	h := w.Header()
	h["Content-Type"] = hdrJSONType
	if len(b) > autoContentLength {
		h["Content-Length"] = contentLength(len(b))
	}
	w.WriteHeader(status)
	w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		jsonBufs.Put(bp)
	}
}

// autoContentLength is the longest body net/http keeps in its buffer until
// the handler returns, and then sends with a Content-Length it computes
// itself (its bufferBeforeChunkingSize). A longer one is written as it
// comes, chunked unless the handler set a Content-Length, which
// writeJSONBody then does. Below it the header is left to net/http: the
// response's header map then has eight entries, not nine, and stays in
// one group of Go's maps instead of growing into a table, as does the copy
// net/http makes of it (about 1 µs and 1 KiB a response).
const autoContentLength = 2048

// contentLengths are Content-Length header values, made the first time a
// body of that length is written and then shared, like hdrJSONType: net/http
// only reads them, and the slices have len == cap, so an append copies.
var contentLengths [4096]atomic.Pointer[[]string]

// contentLength is the Content-Length header value for n bytes.
func contentLength(n int) []string {
	if n >= len(contentLengths) {
		return []string{strconv.Itoa(n)}
	}
	if v := contentLengths[n].Load(); v != nil {
		return *v
	}
	v := []string{strconv.Itoa(n)}
	contentLengths[n].Store(&v)
	return v
}

// jsonSafe reports whether encoding/json writes s as it is, between quotes.
func jsonSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		if !jsonSafeByte[s[i]] {
			return false
		}
	}
	return true
}

// jsonSafeByte tells the bytes encoding/json writes as they are in a
// string: printable ASCII but for '"', '\\' and the HTML-sensitive '<', '>'
// and '&'.
var jsonSafeByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s as a JSON string, escaped as encoding/json
// escapes it.
func appendJSONString(b []byte, s string) []byte {
	if jsonSafe(s) {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // a string always marshals
	return append(b, q...)
}

// The bodies below are appended member by member, each key with its
// punctuation as one constant: the first member of each is always present,
// so every later one starts with its comma.

// appendStrMember appends a string member whose key part is `,"key":`.
func appendStrMember(b []byte, key, v string) []byte {
	return appendJSONString(append(b, key...), v)
}

// appendIntMember appends an integer member whose key part is `,"key":`.
func appendIntMember(b []byte, key string, v int64) []byte {
	return strconv.AppendInt(append(b, key...), v, 10)
}

// appendJSON appends r as encoding/json marshals it.
func (r *TokenResponse) appendJSON(b []byte) []byte {
	b = appendStrMember(b, `{"access_token":`, r.AccessToken)
	b = appendStrMember(b, `,"token_type":`, r.TokenType)
	b = appendIntMember(b, `,"expires_in":`, r.ExpiresIn)
	if r.RefreshToken != "" {
		b = appendStrMember(b, `,"refresh_token":`, r.RefreshToken)
	}
	if r.RefreshTokenExpiresIn != 0 {
		b = appendIntMember(b, `,"refresh_token_expires_in":`, r.RefreshTokenExpiresIn)
	}
	if r.Scope != "" {
		b = appendStrMember(b, `,"scope":`, r.Scope)
	}
	if r.IDToken != "" {
		b = appendStrMember(b, `,"id_token":`, r.IDToken)
	}
	return append(b, '}')
}

// appendJSON appends in as encoding/json marshals it.
func (in *introspection) appendJSON(b []byte) []byte {
	if in.Active {
		b = append(b, `{"active":true`...)
	} else {
		b = append(b, `{"active":false`...)
	}
	for _, m := range [...]struct{ key, v string }{
		{`,"scope":`, in.Scope}, {`,"client_id":`, in.ClientID}, {`,"username":`, in.Username}, {`,"token_type":`, in.TokenType},
	} {
		if m.v != "" {
			b = appendStrMember(b, m.key, m.v)
		}
	}
	if in.Exp != 0 {
		b = appendIntMember(b, `,"exp":`, in.Exp)
	}
	if in.Iat != 0 {
		b = appendIntMember(b, `,"iat":`, in.Iat)
	}
	for _, m := range [...]struct{ key, v string }{{`,"sub":`, in.Sub}, {`,"aud":`, in.Aud}, {`,"iss":`, in.Iss}} {
		if m.v != "" {
			b = appendStrMember(b, m.key, m.v)
		}
	}
	return append(b, '}')
}
