package oauthd

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// DefaultMaxBodyBytes bounds the body of every form the server reads.
const DefaultMaxBodyBytes = 64 << 10

// params are the parameters of one request. Every parameter the engine
// reads may appear at most once (RFC 6749 §3.1, §3.2); unknown parameters
// are ignored.
type params url.Values

// get returns the value of a parameter, "" when absent, and an
// invalid_request error when it was sent more than once.
func (p params) get(name string) (string, *Error) {
	v := p[name]
	switch len(v) {
	case 0:
		return "", nil
	case 1:
		return v[0], nil
	}
	return "", errorf(ErrorInvalidRequest, "parameter %s is repeated", name)
}

// has reports whether the parameter was sent (even empty).
func (p params) has(name string) bool { _, ok := p[name]; return ok }

// parseQuery parses a URL query string strictly: invalid percent-encoding,
// invalid UTF-8 and NUL bytes are invalid_request.
func parseQuery(q string) (params, *Error) {
	v, err := url.ParseQuery(q)
	if err != nil {
		return nil, errorf(ErrorInvalidRequest, "the parameters are not correctly URL-encoded")
	}
	for k, vs := range v {
		if !validText(k) {
			return nil, errorf(ErrorInvalidRequest, "a parameter name is not valid UTF-8 text")
		}
		for _, s := range vs {
			if !validText(s) {
				return nil, errorf(ErrorInvalidRequest, "parameter %s is not valid UTF-8 text", k)
			}
		}
	}
	return params(v), nil
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

// parseForm reads an application/x-www-form-urlencoded POST body of at most
// max bytes. A body that is too large is answered 413; another content
// type is invalid_request.
func parseForm(w http.ResponseWriter, r *http.Request, max int64) (params, *Error) {
	if ct := r.Header.Get("Content-Type"); !strings.EqualFold(ct, formType) { // the usual case, without parsing
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != formType {
			return nil, errorf(ErrorInvalidRequest, "the request body must be application/x-www-form-urlencoded")
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, &Error{Code: ErrorInvalidRequest, Description: "the request body is too large", Status: http.StatusRequestEntityTooLarge}
		}
		return nil, errorf(ErrorInvalidRequest, "the request body could not be read")
	}
	return parseQuery(string(b))
}
