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
	h["Content-Length"] = contentLength(len(b))
	w.WriteHeader(status)
	w.Write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		jsonBufs.Put(bp)
	}
}

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
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

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

// jsonObject appends the members of one JSON object.
type jsonObject struct {
	b     []byte
	first bool
}

func newJSONObject(b []byte) jsonObject { return jsonObject{b: append(b, '{'), first: true} }

func (o *jsonObject) key(k string) {
	if !o.first {
		o.b = append(o.b, ',')
	}
	o.first = false
	o.b = append(o.b, '"')
	o.b = append(o.b, k...) // keys are constants that need no escaping
	o.b = append(o.b, '"', ':')
}

func (o *jsonObject) str(k, v string) {
	o.key(k)
	o.b = appendJSONString(o.b, v)
}

// strOmitEmpty is str for a field tagged omitempty.
func (o *jsonObject) strOmitEmpty(k, v string) {
	if v != "" {
		o.str(k, v)
	}
}

func (o *jsonObject) int(k string, v int64) {
	o.key(k)
	o.b = strconv.AppendInt(o.b, v, 10)
}

func (o *jsonObject) intOmitEmpty(k string, v int64) {
	if v != 0 {
		o.int(k, v)
	}
}

func (o *jsonObject) bool(k string, v bool) {
	o.key(k)
	o.b = strconv.AppendBool(o.b, v)
}

func (o *jsonObject) end() []byte { return append(o.b, '}') }

// appendJSON appends r as encoding/json marshals it.
func (r *TokenResponse) appendJSON(b []byte) []byte {
	o := newJSONObject(b)
	o.str("access_token", r.AccessToken)
	o.str("token_type", r.TokenType)
	o.int("expires_in", r.ExpiresIn)
	o.strOmitEmpty("refresh_token", r.RefreshToken)
	o.intOmitEmpty("refresh_token_expires_in", r.RefreshTokenExpiresIn)
	o.strOmitEmpty("scope", r.Scope)
	o.strOmitEmpty("id_token", r.IDToken)
	return o.end()
}

// appendJSON appends in as encoding/json marshals it.
func (in *introspection) appendJSON(b []byte) []byte {
	o := newJSONObject(b)
	o.bool("active", in.Active)
	o.strOmitEmpty("scope", in.Scope)
	o.strOmitEmpty("client_id", in.ClientID)
	o.strOmitEmpty("username", in.Username)
	o.strOmitEmpty("token_type", in.TokenType)
	o.intOmitEmpty("exp", in.Exp)
	o.intOmitEmpty("iat", in.Iat)
	o.strOmitEmpty("sub", in.Sub)
	o.strOmitEmpty("aud", in.Aud)
	o.strOmitEmpty("iss", in.Iss)
	return o.end()
}
