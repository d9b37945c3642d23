package oauthd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"
)

// Storage errors. Stores return these (possibly wrapped) so the engine can
// tell a missing record from a failure.
var (
	// ErrNotFound means the record does not exist (or has been removed).
	ErrNotFound = errors.New("oauthd: not found")
	// ErrAlreadyExists means a record with the same key exists.
	ErrAlreadyExists = errors.New("oauthd: already exists")
	// ErrAlreadyUsed means a single-use record (authorization code, refresh
	// token) was consumed before. Stores return it together with the record
	// so the engine can revoke what the first use issued.
	ErrAlreadyUsed = errors.New("oauthd: already used")
	// ErrUnavailable means the store cannot reach its database for now
	// (connection refused or lost, a lock or statement timeout): the
	// request may succeed if tried again. The Provider answers it, and any
	// *net.OpError a store returns, with 503 temporarily_unavailable and
	// Retry-After instead of 500 server_error.
	ErrUnavailable = errors.New("oauthd: storage unavailable")
)

// unavailableRetry is the Retry-After of an answer to ErrUnavailable.
const unavailableRetry = 5 * time.Second

// Error codes from RFC 6749 §4.1.2.1, §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1
// and OpenID Connect Core §3.1.2.6.
const (
	ErrorInvalidRequest           = "invalid_request"
	ErrorInvalidClient            = "invalid_client"
	ErrorInvalidGrant             = "invalid_grant"
	ErrorUnauthorizedClient       = "unauthorized_client"
	ErrorUnsupportedGrantType     = "unsupported_grant_type"
	ErrorUnsupportedResponseType  = "unsupported_response_type"
	ErrorInvalidScope             = "invalid_scope"
	ErrorAccessDenied             = "access_denied"
	ErrorServerError              = "server_error"
	ErrorTemporarilyUnavailable   = "temporarily_unavailable"
	ErrorInvalidToken             = "invalid_token"
	ErrorInsufficientScope        = "insufficient_scope"
	ErrorUnsupportedTokenType     = "unsupported_token_type"
	ErrorLoginRequired            = "login_required"
	ErrorConsentRequired          = "consent_required"
	ErrorInteractionRequired      = "interaction_required"
	ErrorAccountSelectionRequired = "account_selection_required"
	ErrorRequestNotSupported      = "request_not_supported"
	ErrorRequestURINotSupported   = "request_uri_not_supported"
	ErrorInvalidRequestURI        = "invalid_request_uri"
	ErrorInvalidRequestObject     = "invalid_request_object"
	// The device authorization grant's (RFC 8628 §3.5), which the
	// Provider does not serve (yet): never sent.
	ErrorSlowDown             = "slow_down"
	ErrorAuthorizationPending = "authorization_pending"
	ErrorExpiredToken         = "expired_token"
)

// Error is the one error type of the protocol engine. Code and Description
// are sent to the client (Description must never hold a secret); Err is the
// internal cause, logged by the server and never sent.
type Error struct {
	// Code is the RFC 6749 error code, e.g. "invalid_request".
	Code string
	// Description is a human-readable text that is safe to show to anyone.
	Description string
	// Status is the HTTP status for JSON answers; zero means 400.
	Status int
	// Err is the internal cause. It is logged, never sent.
	Err error
	// RetryAfter, when positive, is sent as the Retry-After header of a
	// 429 or 503 answer.
	RetryAfter time.Duration
}

// NewError returns an Error with the code and description.
func NewError(code, description string) *Error {
	return &Error{Code: code, Description: description}
}

func (e *Error) Error() string {
	s := "oauthd: " + e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// HTTPStatus is the status an error is answered with as JSON.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case ErrorInvalidClient, ErrorInvalidToken:
		return http.StatusUnauthorized
	case ErrorInsufficientScope, ErrorAccessDenied:
		return http.StatusForbidden
	case ErrorServerError:
		return http.StatusInternalServerError
	case ErrorTemporarilyUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadRequest
}

// wireDescription is an error description as it may travel to a client:
// RFC 6749 allows error_description only the printable ASCII characters
// other than '"' and '\' (§4.1.2.1, §4.2.2.1, §5.2; RFC 6750 §3 the
// same in WWW-Authenticate). A double quote becomes a single one, a
// backslash a slash, "§" the word "section", white space a space, and any
// other character outside the set '?'.
func wireDescription(s string) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r == '§':
			b.WriteString("section ")
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	return strings.ReplaceAll(b.String(), "section  ", "section ")
}

// quoted is " 'v'" for a request value an error description may repeat,
// and "" for anything else. Only the registered values of OAuth and
// OpenID Connect (grant and response types, response modes, PKCE methods,
// prompt values, parameter names) are repeated: a description never
// carries a request's own words (a sentence, a phone number or an
// address, spelled with underscores or not) to the client's pages, where
// they could pass for the server's or the client's.
func quoted(v string) string {
	if !registeredValues[v] {
		return ""
	}
	return " '" + v + "'"
}

// registeredValues are the protocol values quoted repeats.
var registeredValues = func() map[string]bool {
	m := map[string]bool{}
	for _, v := range []string{
		// grant types (IANA OAuth registry, OpenID CIBA)
		"authorization_code", "refresh_token", "client_credentials", "password", "implicit",
		"urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:jwt-bearer",
		"urn:ietf:params:oauth:grant-type:saml2-bearer", "urn:ietf:params:oauth:grant-type:token-exchange",
		"urn:ietf:params:oauth:grant-type:uma-ticket", "urn:openid:params:grant-type:ciba",
		// response types, response modes, PKCE methods, prompt values
		"code", "token", "id_token", "none",
		"query", "fragment", "form_post", "web_message", "jwt", "query.jwt", "fragment.jwt", "form_post.jwt",
		"plain", "S256", "login", "consent", "select_account", "create",
		// parameter names
		"client_id", "client_secret", "redirect_uri", "scope", "state", "nonce", "code_verifier",
		"code_challenge", "code_challenge_method", "response_type", "response_mode", "grant_type",
		"username", "token_type_hint", "prompt", "max_age", "id_token_hint", "login_hint", "ui_locales",
		"claims_locales", "claims", "display", "acr_values", "request", "request_uri", "post_logout_redirect_uri",
		"client_assertion", "client_assertion_type", "audience", "resource", "logout_hint",
	} {
		m[v] = true
	}
	return m
}()

func errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// StatusClientClosedRequest is the status logged for a request whose
// client went away before it was answered (nginx's 499).
const StatusClientClosedRequest = 499

// serverError wraps an internal failure; its cause is logged, never sent.
// A store that cannot reach its database for now (ErrUnavailable, or a
// network error) is temporarily_unavailable: 503 with Retry-After, which
// tells clients and load balancers to try again rather than that the
// request was wrong or the server broken (RFC 6749 §4.1.2.1, RFC 9110
// §15.6.4).
func serverError(err error) *Error {
	if isOutage(err) {
		return &Error{Code: ErrorTemporarilyUnavailable, Description: "the server's database is unavailable or busy; try again shortly",
			Status: http.StatusServiceUnavailable, RetryAfter: unavailableRetry, Err: err}
	}
	return &Error{Code: ErrorServerError, Description: "the server could not complete the request", Status: http.StatusInternalServerError, Err: err}
}

// isOutage reports whether a store's error means its database is out of
// reach for now: ErrUnavailable, a network error, or a context error. A
// context error is this request's own when its context ended (then logErr
// answers 499: nobody reads it), or another's whose work this request
// waited on: a passing failure, worth trying again.
func isOutage(err error) bool {
	var op *net.OpError
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.As(err, &op)
}

// asError turns any error into an *Error, treating unknown ones as server errors.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return serverError(err)
}
