package oauthd

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/oauthd/oauthd/internal/secret"
)

// ParseBasicAuth decodes an HTTP Basic Authorization header whose user and
// password are form-urlencoded client credentials (RFC 6749 §2.3.1). ok is
// false when the header is not Basic or is malformed.
func ParseBasicAuth(header string) (id, secret string, ok bool) {
	const prefix = "basic "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", "", false
	}
	enc := strings.TrimSpace(header[len(prefix):])
	// Decoded on the stack when it fits (it does for any usual client id
	// and secret): one string allocation, shared by the id and secret.
	var buf [256]byte
	raw := buf[:]
	if n := base64.StdEncoding.DecodedLen(len(enc)); n > len(buf) {
		raw = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(raw, []byte(enc))
	if err != nil {
		return "", "", false
	}
	u, pw, found := strings.Cut(string(raw[:n]), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(u); err != nil {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(pw); err != nil {
		return "", "", false
	}
	if !validText(id) || !validText(secret) {
		return "", "", false
	}
	return id, secret, true
}

var errClientAuth = &Error{Code: ErrorInvalidClient, Description: "client authentication failed", Status: http.StatusUnauthorized}

// authenticateClient identifies and authenticates the client of a token,
// introspection or revocation request: client_secret_basic,
// client_secret_post, or client_id alone for public clients (RFC 6749
// §2.3.1, §3.2.1). Every failure is the same 401 invalid_client, and an
// unknown client costs the same work as a wrong secret.
func (p *Provider) authenticateClient(r *http.Request, ps params) (*Client, *Error) {
	formID, e := ps.get("client_id")
	if e != nil {
		return nil, e
	}
	formSecret, e := ps.get("client_secret")
	if e != nil {
		return nil, e
	}
	id, sec := formID, formSecret
	viaBasic := false
	if len(r.Header["Authorization"]) > 1 {
		// One credential per request (RFC 6749 §2.3): which of two
		// headers counts would be a guess.
		return nil, errorf(ErrorInvalidRequest, "the request has more than one Authorization header")
	}
	if h := headerValue(r.Header, "Authorization"); h != "" {
		bid, bsec, ok := ParseBasicAuth(h)
		if !ok {
			return nil, errClientAuth
		}
		if formSecret != "" { // an empty one counts as omitted (RFC 6749 §3.1)
			return nil, errorf(ErrorInvalidRequest, "use one client authentication method, not Basic and client_secret together")
		}
		if formID != "" && formID != bid {
			return nil, errorf(ErrorInvalidRequest, "client_id differs from the Basic credentials")
		}
		id, sec, viaBasic = bid, bsec, true
	}
	if id == "" {
		return nil, errClientAuth
	}
	// A request that guesses nothing takes no attempt: a public client
	// (it has no secret to guess) or a secret already verified for this
	// client. Any number of those may run at once; a lockout still holds.
	if c, ok, e := p.knownClient(r, id, sec, viaBasic, ps); ok || e != nil {
		return c, e
	}
	// The same secret is being verified for another request (a burst of
	// requests of a client whose secret is not cached yet, as when a node
	// has just started): wait for that KDF run instead of taking an
	// attempt, and ask again. It is one guess, counted once: if it failed,
	// this request goes the slow way below and is counted too.
	if p.awaitVerification(r, id, sec) {
		if c, ok, e := p.knownClient(r, id, sec, viaBasic, ps); ok || e != nil {
			return c, e
		}
	}
	// The attempt is reserved before the secret is checked, so concurrent
	// guesses cannot overrun ClientLimit.
	_, _, lerr := p.clients.get(r.Context(), p.store, id)
	known := !errors.Is(lerr, ErrNotFound)
	keys := []limitedKey{p.clientKey(r, id, known)}
	if known {
		keys = append(keys, p.clientCeilingKey(id))
	}
	a, wait, err := p.reserve(r, keys...)
	if err != nil {
		return nil, serverError(err)
	}
	if wait > 0 {
		return nil, tooManyAttempts(wait)
	}
	c, e := p.verifyClient(r, id, sec, viaBasic, ps)
	switch {
	case e == nil:
		a.end(r.Context(), true)
	case e == errClientAuth:
		a.end(r.Context(), false)
	default:
		a.done(r.Context(), Released)
	}
	return c, e
}

// knownClient authenticates, without a KDF run and without taking an
// attempt, a public client (or refuses it, if the request sends a secret)
// and a confidential client whose secret is in the verified-secret cache.
// ok false with a nil error means the caller must go the slow way.
func (p *Provider) knownClient(r *http.Request, id, sec string, viaBasic bool, ps params) (*Client, bool, *Error) {
	c, key, err := p.clients.getKeyed(r.Context(), p.store, id)
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil // the slow path answers it, at a known client's cost
	} else if err != nil {
		// The store failed (its database is unreachable): answered at
		// once, not asked again three times on the slow path, each time
		// waiting out the store's timeout.
		return nil, false, serverError(err)
	}
	if c.Public {
		// A public client has no secret to guess: a request that sends
		// one is refused without counting as a guess, and no lockout
		// applies to it. Were wrong secrets counted, any web page could
		// lock the people of a network out of a public client with a
		// few cross-site form POSTs carrying client_secret=x.
		if ok, _ := p.clientProves(r, c, sec, viaBasic, ps); !ok {
			return nil, false, errClientAuth
		}
		return c, true, nil
	}
	if sec == "" || !p.secrets.Known(c.ID, c.SecretHash, sec) {
		return nil, false, nil
	}
	k := p.clientKeyed(r, key)
	if lc, ok := p.limiter.(LockoutChecker); ok && k.lim.Enabled() {
		wait, err := lc.LockedOut(r.Context(), k.key, k.lim, p.now())
		if err != nil {
			return nil, false, serverError(err)
		}
		if wait > 0 {
			// Counted as the reserving path counts a refusal.
			p.throttled(k.name)
			return nil, false, tooManyAttempts(wait)
		}
	} else if k.lim.Enabled() {
		return nil, false, nil // the limiter can only reserve
	}
	return c, true, nil
}

// awaitVerification waits for a verification of sec as the secret of the
// confidential client id that another request is running, and reports
// whether there was one.
func (p *Provider) awaitVerification(r *http.Request, id, sec string) bool {
	if sec == "" {
		return false
	}
	c, _, err := p.clients.getKeyed(r.Context(), p.store, id)
	if err != nil || c.Public {
		return false
	}
	return p.secrets.Wait(c.ID, c.SecretHash, sec)
}

// verifyClient checks the credentials of the client id. The client comes
// from a short-lived cache (see clientCache); if it fails to authenticate,
// it is read again from the store before the failure is answered: its
// secret may just have changed.
func (p *Provider) verifyClient(r *http.Request, id, sec string, viaBasic bool, ps params) (*Client, *Error) {
	c, cached, err := p.clients.get(r.Context(), p.store, id)
	for {
		if errors.Is(err, ErrNotFound) {
			// The work a known client costs: one KDF run for a secret,
			// none without one (see clientProves).
			if sec != "" {
				if err := secret.VerifyDummyContext(r.Context(), kdfKey(r), sec); err != nil {
					return nil, p.kdfError(err)
				}
			}
			return nil, errClientAuth
		} else if err != nil {
			return nil, serverError(err)
		}
		if ok, err := p.clientProves(r, c, sec, viaBasic, ps); err != nil {
			return nil, p.kdfError(err)
		} else if ok {
			return c, nil
		}
		if !cached {
			return nil, errClientAuth
		}
		prev := c
		c, cached, err = p.clients.load(r.Context(), p.store, id)
		if err == nil && c.SecretHash == prev.SecretHash && c.Public == prev.Public {
			// The same credentials: checking again would only run the
			// KDF twice for a wrong secret.
			return nil, errClientAuth
		}
	}
}

// clientProves reports whether the credentials authenticate c. The error
// is that of a secret check that did not run (see kdfError).
func (p *Provider) clientProves(r *http.Request, c *Client, sec string, viaBasic bool, ps params) (bool, error) {
	if c.Public {
		// A public client proves nothing but its id; it must not send a
		// secret (an empty Basic password is what many libraries send).
		return sec == "", nil
	}
	if sec == "" {
		return false, nil
	}
	return p.secrets.VerifyContext(r.Context(), kdfKey(r), c.ID, c.SecretHash, sec)
}

// kdfKey is the key a request's password or secret check waits for the
// KDF under (see secret.VerifyContext): its client's network (see
// networkKey), so that the checks of one network, however many, take turns
// with those of every other.
func kdfKey(r *http.Request) string { return networkKey(ClientIP(r.Context())) }

// kdfBusyRetry is the Retry-After of a check refused because too many
// were waiting for the KDF.
const kdfBusyRetry = 2 * time.Second

// kdfError is the answer to a password or secret check that did not run:
// 503 with Retry-After when too many checks were waiting (the person or
// client tries again in a moment, not minutes later behind a flood), or the
// request's own end (the client hung up: logged as 499).
func (p *Provider) kdfError(err error) *Error {
	if errors.Is(err, secret.ErrBusy) {
		p.throttled(LimitKDFQueue)
		return &Error{Code: ErrorTemporarilyUnavailable, Description: "the server is busy checking other passwords and secrets; try again in a moment",
			Status: http.StatusServiceUnavailable, RetryAfter: kdfBusyRetry}
	}
	return serverError(err)
}
