package oauthd

import "time"

// Observer is told about events only the protocol engine sees, so that a
// program can count them (package internal/app turns them into Prometheus
// metrics). Its methods are called on the request's goroutine: they must
// be quick and safe for concurrent use. Embed NopObserver to implement
// only some methods and keep compiling when methods are added.
type Observer interface {
	// TokenIssued is called for every successful token response, with its
	// grant type (authorization_code, refresh_token, client_credentials,
	// password), and with "implicit" when the authorization endpoint
	// returns an access token.
	TokenIssued(grant string)
	// LoginFailed is called for every wrong username or password, at the
	// login form and at the password grant.
	LoginFailed()
	// Throttled is called when a rate limit refuses an attempt; limit is
	// LimitLoginAccount, LimitLoginIP, LimitClient, LimitKDFQueue or
	// LimitPendingRequests.
	Throttled(limit string)
	// RequestServed is called once the Provider has answered a request,
	// with the endpoint's route pattern (see Provider.Route), or "other"
	// for a path no endpoint serves (answered 404), the method as sent,
	// the status code and the time taken. The route takes a bounded set
	// of values; the method does not.
	RequestServed(route, method string, status int, d time.Duration)
}

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

// TokenIssued does nothing.
func (NopObserver) TokenIssued(string) {}

// LoginFailed does nothing.
func (NopObserver) LoginFailed() {}

// Throttled does nothing.
func (NopObserver) Throttled(string) {}

// RequestServed does nothing.
func (NopObserver) RequestServed(string, string, int, time.Duration) {}
