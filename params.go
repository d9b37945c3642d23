package oauthd

import (
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

// DefaultMaxBodyBytes bounds the body of every form the server reads.
const DefaultMaxBodyBytes = 64 << 10

// params are the parameters of one request. Every parameter the engine
// reads may appear at most once (RFC 6749 §3.1, §3.2); unknown parameters
// are ignored, whatever their bytes (§3.1: the server MUST ignore them). A
// parameter the engine reads must be valid text (validText): get refuses
// one that is not, naming it, and first takes it for omitted.
//
// A request has a handful of parameters: they are kept in a slice, in the
// order sent, and looked up by scanning it, which costs one allocation and
// no hashing where a map costs three. A query of more than maxParams
// parameters is parsed by url.ParseQuery into many instead, so that a
// lookup never scans thousands of names.
type params struct {
	list []param
	many url.Values // when set, list is unused
}

// param is one name=value pair of a query or form body.
type param struct{ name, value string }

// get returns the value of a parameter, "" when absent, and an
// invalid_request error when it was sent more than once or is not valid
// text. A parameter sent without a value counts as omitted (RFC 6749
// §3.1), also beside one with a value.
func (p params) get(name string) (string, *Error) {
	v, found := "", false
	if p.many != nil {
		for _, x := range p.many[name] {
			if x == "" {
				continue
			}
			if found {
				return "", errRepeated(name)
			}
			v, found = x, true
		}
	} else {
		for i := range p.list {
			if p.list[i].name == name && p.list[i].value != "" {
				if found {
					return "", errRepeated(name)
				}
				v, found = p.list[i].value, true
			}
		}
	}
	if found && !validText(v) {
		return "", errNotText(name)
	}
	return v, nil
}

func errNotText(name string) *Error {
	return errorf(ErrorInvalidRequest, "parameter%s is not valid UTF-8 text or has control characters", quoted(name))
}

// allText reports whether every name and value is valid text.
func (p params) allText() bool {
	for k, vs := range p.many {
		if !validText(k) {
			return false
		}
		for _, v := range vs {
			if !validText(v) {
				return false
			}
		}
	}
	for _, kv := range p.list {
		if !validText(kv.name) || !validText(kv.value) {
			return false
		}
	}
	return true
}

func errRepeated(name string) *Error {
	return errorf(ErrorInvalidRequest, "parameter %s is repeated", name)
}

// has reports whether the parameter was sent (even empty).
func (p params) has(name string) bool {
	if p.many != nil {
		_, ok := p.many[name]
		return ok
	}
	for i := range p.list {
		if p.list[i].name == name {
			return true
		}
	}
	return false
}

// sent reports whether the parameter was sent with a value: one sent
// only empty counts as omitted (RFC 6749 §3.1).
func (p params) sent(name string) bool {
	if p.many != nil {
		return slices.ContainsFunc(p.many[name], func(v string) bool { return v != "" })
	}
	for i := range p.list {
		if p.list[i].name == name && p.list[i].value != "" {
			return true
		}
	}
	return false
}

// first returns the first value of a parameter that is not empty, ""
// when there is none: an empty value counts as omitted, as for get, and
// so does a value that is not valid text.
func (p params) first(name string) string {
	if p.many != nil {
		for _, v := range p.many[name] {
			if v != "" && validText(v) {
				return v
			}
		}
		return ""
	}
	for i := range p.list {
		if p.list[i].name == name && p.list[i].value != "" && validText(p.list[i].value) {
			return p.list[i].value
		}
	}
	return ""
}

// parseQuery parses a URL query string strictly: invalid percent-encoding
// is invalid_request. Names and values that are not valid text (invalid
// UTF-8, NUL) are kept: get refuses them when the engine reads them, and
// unknown parameters are ignored whatever they hold.
func parseQuery(q string) (params, *Error) {
	n := strings.Count(q, "&") + 1
	if n > maxParamsAtAll {
		return params{}, errorf(ErrorInvalidRequest, "the request has too many parameters")
	}
	if n > maxParams {
		// url.ParseQuery's own limit on the number of parameters applies.
		v, err := url.ParseQuery(q)
		if err != nil {
			return params{}, errNotURLEncoded()
		}
		return params{many: v}, nil
	}
	// The loop of url.ParseQuery, with the same splitting and unescaping,
	// into one slice.
	list := make([]param, 0, n)
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		if strings.Contains(kv, ";") {
			return params{}, errNotURLEncoded()
		}
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return params{}, errNotURLEncoded()
		}
		if v, err = url.QueryUnescape(v); err != nil {
			return params{}, errNotURLEncoded()
		}
		list = append(list, param{k, v})
	}
	return params{list: list}, nil
}

// maxParams is the most parameters parseQuery splits itself; longer
// queries go to url.ParseQuery, whose limit (GODEBUG urlmaxqueryparams)
// then applies.
const maxParams = 100

// maxParamsAtAll is the most parameters (or "&" separators) a query or form
// may have; no OAuth or OpenID Connect request needs a hundredth of it.
const maxParamsAtAll = 1000

// errNotURLEncoded is a new error each time: callers may change it.
func errNotURLEncoded() *Error {
	return errorf(ErrorInvalidRequest, "the parameters are not correctly URL-encoded")
}

// validText reports whether s is UTF-8 without NUL or other C0 controls
// except tab, CR and LF.
func validText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			return false
		}
	}
	return true
}

const formType = "application/x-www-form-urlencoded"

// headerValue is h.Get(key) for a key already in canonical form, without
// canonicalizing it again: the first value, "" when absent.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// parseForm reads an application/x-www-form-urlencoded POST body of at most
// max bytes. A body that is too large is answered 413; another content
// type is invalid_request.
func parseForm(w http.ResponseWriter, r *http.Request, max int64) (params, *Error) {
	ct, typed := r.Header["Content-Type"]
	if !typed && r.ContentLength == 0 {
		// No body and no type (a client posting an empty form, as
		// Python's requests does with data={}): no parameters, so the
		// answer names the one missing rather than the media type.
		return params{}, nil
	}
	if len(ct) == 0 || !strings.EqualFold(ct[0], formType) { // the usual case, without parsing
		mt, _, err := mime.ParseMediaType(headerValue(r.Header, "Content-Type"))
		if err != nil || mt != formType {
			return params{}, errorf(ErrorInvalidRequest, "the request body must be application/x-www-form-urlencoded")
		}
	}
	if ce := headerValue(r.Header, "Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		// RFC 9110 §15.5.16: an unsupported content coding is 415. The
		// body would otherwise be parsed compressed, and refused for what
		// it seems to say.
		w.Header().Set("Accept-Encoding", "identity")
		return params{}, &Error{Code: ErrorInvalidRequest, Description: "the request body must not be compressed (Content-Encoding)", Status: http.StatusUnsupportedMediaType}
	}
	if r.ContentLength > max {
		// Refused unread: reading it would have net/http answer a client
		// waiting on "Expect: 100-continue" with 100 Continue, and the
		// client would still be sending the body when the connection is
		// closed, losing the 413 to a reset. The connection is closed
		// after the answer rather than the body read: net/http would
		// still try to read up to 256 KiB of it before closing, which a
		// client waiting for 100 Continue never sends, holding the
		// connection until the read timeout; a read deadline already
		// passed ends that at once (the answer is written all the same).
		w.Header().Set("Connection", "close")
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
		return params{}, errBodyTooLargeAnswer()
	}
	rd := r.Body
	if r.ContentLength < 0 {
		// Unknown length: MaxBytesReader also has the connection closed
		// after the answer rather than the rest read. A body whose
		// length net/http checks needs no wrapper: readAll stops at max.
		rd = http.MaxBytesReader(w, r.Body, max)
	}
	bp := bodyBufs.Get().(*[]byte)
	b, err := readAll((*bp)[:0], rd, max)
	// The parameters are parsed from a copy, made before the buffer goes
	// back to the pool: another request may take it at once.
	body := string(b)
	if cap(b) <= 64<<10 {
		*bp = b
		bodyBufs.Put(bp)
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || err == errBodyTooLarge {
			return params{}, errBodyTooLargeAnswer()
		}
		e := errorf(ErrorInvalidRequest, "the request body could not be read")
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			// The server's read timeout: the client was too slow
			// sending it (RFC 9110 §15.5.9).
			e.Status = http.StatusRequestTimeout
			w.Header().Set("Connection", "close")
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed):
			// The client went away before sending all of it: nobody
			// reads the answer; logged and counted as 499.
			e.Status = StatusClientClosedRequest
		}
		return params{}, e
	}
	return parseQuery(body)
}

// errBodyTooLargeAnswer is the answer to a form body over the limit.
func errBodyTooLargeAnswer() *Error {
	return &Error{Code: ErrorInvalidRequest, Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
}

// bodyBufs are the buffers form bodies are read into.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// readAll is io.ReadAll into b, failing with errBodyTooLarge past max
// bytes.
func readAll(b []byte, r io.Reader, max int64) ([]byte, error) {
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > max {
			return b, errBodyTooLarge
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
	}
}

var errBodyTooLarge = errors.New("request body too large")
