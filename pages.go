package oauthd

import (
	"net/http"
	"time"
)

// Pages renders the HTML a person sees. Package ui implements it with
// html/template; a program can bring its own.
//
// The Provider sets the security headers (Content-Security-Policy,
// X-Frame-Options, Referrer-Policy, X-Content-Type-Options, Cache-Control)
// before it calls a method. Each method writes the status in its page data
// and the body; it must escape everything it shows.
type Pages interface {
	Login(w http.ResponseWriter, r *http.Request, p *LoginPage)
	Consent(w http.ResponseWriter, r *http.Request, p *ConsentPage)
	Error(w http.ResponseWriter, r *http.Request, p *ErrorPage)
	// FormPost renders a page that submits Params to Action by POST
	// without a click (OAuth 2.0 Form Post Response Mode). It must work
	// under a CSP without inline script (a static script, and a button in
	// <noscript>).
	FormPost(w http.ResponseWriter, r *http.Request, p *FormPostPage)
	// Home is the landing page of a signed-in person with no pending request.
	Home(w http.ResponseWriter, r *http.Request, p *HomePage)
	// Logout asks a person to confirm signing out, or says they are signed out.
	Logout(w http.ResponseWriter, r *http.Request, p *LogoutPage)
	// Static serves the pages' CSS, images and scripts; the Provider mounts
	// it at StaticPath. Pages without such files may return nil.
	Static() http.Handler
}

// StaticPath is where the Provider mounts Pages.Static.
const StaticPath = "/static/"

// Page is what every page has.
type Page struct {
	// Status is the HTTP status to answer with.
	Status int
	// Locales are the person's preferred languages, most preferred first
	// (from ui_locales, then Accept-Language).
	Locales []string
	// RequestID identifies the HTTP request in the server's logs.
	RequestID string
}

// LoginPage is the login form. It posts Username, Password, RequestID and
// CSRF (form fields "username", "password", "request", "csrf") to Action.
type LoginPage struct {
	Page
	Action    string
	AuthReqID string
	CSRF      string
	// Username pre-fills the form (login_hint, or the last attempt).
	Username string
	// Error is a message key: "invalid_credentials" or "too_many_attempts".
	Error string
	// RetryAfter is, with too_many_attempts, how long until the form is
	// checked again (the Retry-After of the answer).
	RetryAfter time.Duration
	// Client is the application the person is signing in to; may be nil.
	Client *Client
	// SignedIn is the person already signed in on this browser, if any
	// (they asked to switch accounts, or the request asks to sign in
	// again): signing in replaces their session, and SignOutURL (the
	// sign-out page) ends it for someone who leaves instead.
	SignedIn   *User
	SignOutURL string
}

// ConsentPage asks the person to approve or deny a client's request. The
// form posts "request", "csrf", "remember" (checkbox, unticked by default)
// and "action" = "approve" or "deny" to Action.
type ConsentPage struct {
	Page
	Action    string
	AuthReqID string
	CSRF      string
	Client    *Client
	User      *User
	Scopes    []string
	// Remember says the page may offer to remember the approval (a
	// "remember" field in the form, unticked by default). It is false for
	// a public client answered at a loopback or private-use-scheme
	// redirect URI, whose identity cannot be assured: the Provider asks
	// each time and ignores a "remember" sent for it (RFC 8252 §8.6).
	Remember bool
	// SwitchUserURL leads to the login form of this request ("not you?"):
	// whoever signs in there replaces the signed-in person's session; until
	// then that session stays.
	SwitchUserURL string
}

// Error page codes, in addition to the OAuth error codes.
const (
	PageUnknownClient      = "unknown_client"
	PageInvalidRedirectURI = "invalid_redirect_uri"
	PageRequestExpired     = "request_expired"
	// PageCookiesRequired: the sign-in or consent page was opened by a
	// browser that did not send back the cookie set when the request
	// began: cookies blocked for the site, or another browser.
	PageCookiesRequired = "cookies_required"
	// PageOutdated: a consent form sent after another sign-in on the
	// browser (another tab), which it no longer speaks for: the page is
	// to be loaded again.
	PageOutdated         = "page_outdated"
	PageNotFound         = "not_found"
	PageMethodNotAllowed = "method_not_allowed"
	PageBadRequest       = "bad_request"
	PageServerError      = "server_error"
	PageTooManyRequests  = "too_many_requests"
)

// ErrorPage tells a person what went wrong when the client cannot be told
// by redirect.
type ErrorPage struct {
	Page
	// Code is one of the Page* codes or an OAuth error code.
	Code string
	// Description is safe to show; it never holds a secret.
	Description string
}

// FormPostPage submits Params to Action by POST (response_mode=form_post).
type FormPostPage struct {
	Page
	Action string
	Params []Param
	// Relay is set when the page posts a request back to the server
	// itself (an authorization or logout request POSTed from another site
	// without the server's cookies) rather than a response to a client:
	// the page should say "continuing", not "returning to the application".
	Relay bool
}

// Param is one form field of a FormPostPage, kept in order.
type Param struct{ Name, Value string }

// HomePage greets a signed-in person ("Hello, admin").
type HomePage struct {
	Page
	User *User
	// LogoutAction and CSRF make the sign-out form (POST, field "csrf").
	LogoutAction string
	CSRF         string
}

// LogoutPage asks to confirm signing out (RP-initiated logout), or, when
// SignedOut is true, says the person is signed out.
type LogoutPage struct {
	Page
	Action string
	CSRF   string
	// Client asked for the logout; may be nil.
	Client *Client
	// Hidden are fields to post back with the confirmation.
	Hidden    []Param
	SignedOut bool
	User      *User
}
