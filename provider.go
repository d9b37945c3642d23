package oauthd

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/oauthd/oauthd/internal/secret"
)

// Endpoint paths. The token endpoint answers at both TokenPath and
// TokenizePath (the path of the walkthrough oauthd started from).
const (
	AuthorizePath = "/oauth/authorize"
	TokenPath     = "/oauth/token"
	TokenizePath  = "/oauth/tokenize"
	LoginPath     = "/oauth/login"
	ConsentPath   = "/oauth/consent"
	LogoutPath    = "/oauth/logout"
	// IntrospectPath is the token introspection endpoint (RFC 7662).
	IntrospectPath = "/oauth/introspect"
	// RevokePath is the token revocation endpoint (RFC 7009).
	RevokePath = "/oauth/revoke"
	// UserinfoPath is the OpenID Connect userinfo endpoint.
	UserinfoPath = "/oauth/userinfo"
	// JWKSPath publishes the public signing keys (RFC 7517).
	JWKSPath = "/oauth/jwks"
	// OAuthMetadataPath is the RFC 8414 authorization server metadata.
	OAuthMetadataPath = "/.well-known/oauth-authorization-server"
	// OIDCDiscoveryPath is the OpenID Connect Discovery document.
	OIDCDiscoveryPath = "/.well-known/openid-configuration"
)

// Cookie names. With an https issuer they get the __Host- prefix (RFC
// 6265bis §4.1.3.2): the browser then takes them only from this host, over
// https, for the whole host, so neither a sibling subdomain nor a plain-http
// answer forged on the network can plant or shadow them.
const (
	sessionCookieName   = "oauthd_session"
	browserCookieName   = "oauthd_browser"
	loginNameCookieName = "oauthd_login_name"
	hostCookiePrefix    = "__Host-"
)

// contentSecurityPolicy is sent with every response. There is no
// form-action directive: the consent form's answer redirects to the
// client's (possibly private-use scheme) redirect URI.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' https: data:; frame-ancestors 'none'; base-uri 'none'"

// Provider is the protocol engine: an http.Handler serving every endpoint.
type Provider struct {
	cfg   Config
	store Storage
	mux   *http.ServeMux
	// exact are the handlers of the fixed paths mux serves (every
	// endpoint but the static files and "/"), looked up by the request's
	// path before mux: the same handler mux would choose, without its
	// pattern matching.
	exact   map[string]http.HandlerFunc
	secrets *secret.Cache
	clients *clientCache
	keys    *KeyManager
	// pending is the budget of stored pending authorization requests
	// (Config.PendingRequestBudget); nil without one.
	pendingBudget *pendingBudget
	// pendingWarned is when the budget's refusals were last logged;
	// invalidLogged when an invalid client registration last was.
	pendingWarned, invalidLogged atomic.Int64
	// outageLogged is when a "storage unavailable" line was last logged;
	// outageSkipped counts the lines left out since (see logErr).
	outageLogged, outageSkipped atomic.Int64
	// throttleLogged is when an "attempt throttled" line was last
	// logged; throttleSkipped counts those left out since.
	throttleLogged, throttleSkipped atomic.Int64
	log                             *slog.Logger
	secure                          bool // cookies get the Secure attribute
	// hsts is secure on a host that is not localhost or a loopback
	// address: HSTS holds for a host whatever the port (RFC 6797 §8.3),
	// and pinning localhost to https would break every other development
	// server on it (IP literals are ignored by browsers anyway, §8.1).
	hsts bool
	// issuerOrigin is the issuer's scheme://host[:port] (see crossOrigin).
	issuerOrigin string

	// sessionCookie, browserCookie and loginNameCookie are the cookies'
	// names: see sessionCookieName.
	sessionCookie, browserCookie, loginNameCookie string
	// deviceCookie is the device cookie's name (see device.go).
	deviceCookie string

	obs     Observer
	limiter Limiter

	// redeemer is store when it redeems a code and stores the code's
	// tokens in one write; nil otherwise.
	redeemer CodeRedeemer
	// rotator is store when it looks up and rotates a refresh token in
	// one write; nil otherwise.
	rotator RefreshRotator

	// prefixWarned logs once that the Provider is mounted under a path
	// prefix (see strippedPrefix).
	prefixWarned sync.Once
}

// New returns a Provider serving cfg.Issuer from store.
func New(cfg Config, store Storage) (*Provider, error) {
	if isNil(store) {
		// A typed nil too: what "store, _ := sqlitestore.Open(...)" leaves
		// when the store cannot be opened.
		return nil, errors.New("oauthd: a Storage is required")
	}
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	p := &Provider{
		cfg:     cfg,
		store:   store,
		mux:     http.NewServeMux(),
		exact:   map[string]http.HandlerFunc{},
		secrets: secret.NewCache(cfg.SecretCacheSize),
		clients: newClientCache(cfg.ClientCacheTTL, cfg.SecretCacheSize),
		log:     cfg.Logger,
		secure:  strings.HasPrefix(strings.ToLower(cfg.Issuer), "https://"), // schemes are case-insensitive (RFC 3986 §3.1)
		obs:     cfg.Observer,
		limiter: cfg.Limiter,
	}
	p.hsts = p.secure && !loopbackIssuer(cfg.Issuer)
	p.pendingBudget = newPendingBudget(cfg.PendingRequestBudget, cfg.AuthRequestTTL)
	if u, err := url.Parse(cfg.Issuer); err == nil {
		p.issuerOrigin = u.Scheme + "://" + u.Host
	}
	p.sessionCookie, p.browserCookie, p.loginNameCookie = sessionCookieName, browserCookieName, loginNameCookieName
	p.deviceCookie = deviceCookieName
	if p.secure {
		p.deviceCookie = "__Secure-" + deviceCookieName
		// The login name's cookie is for the login page's path only:
		// __Secure-, as __Host- requires Path=/.
		p.sessionCookie, p.browserCookie, p.loginNameCookie = hostCookiePrefix+sessionCookieName, hostCookiePrefix+browserCookieName, "__Secure-"+loginNameCookieName
	}
	p.redeemer, _ = store.(CodeRedeemer)
	p.rotator, _ = store.(RefreshRotator)
	p.keys = newKeyManager(&p.cfg, store)
	if cfg.EnablePasswordGrant {
		p.log.Warn("the resource owner password credentials grant is enabled; OAuth 2.1 removes it, prefer the authorization code flow")
	}
	if cfg.EnableImplicitGrant {
		p.log.Warn("the implicit grant is enabled; OAuth 2.1 removes it, prefer the authorization code flow with PKCE")
	}
	p.routes()
	return p, nil
}

// Issuer is the issuer identifier the Provider serves.
func (p *Provider) Issuer() string { return p.cfg.Issuer }

// Store is the Provider's storage.
func (p *Provider) Store() Storage { return p.store }

// Route returns the pattern of the endpoint that serves r, such as
// "/oauth/token", "/static/" or "/" (which also answers unknown paths with
// 404): a label of bounded cardinality for metrics, unlike the path.
func (p *Provider) Route(r *http.Request) string {
	if _, ok := p.exactRoute(r); ok {
		return r.URL.Path
	}
	_, pattern := p.mux.Handler(r)
	return pattern
}

// exactRoute is the handler of an endpoint's path, looked up in a map
// rather than by the mux's pattern matching. A path written with escapes
// (RawPath set) is left to the mux, which tells an encoded slash from a
// slash: /oauth%2Ftoken is not /oauth/token (RFC 3986 §2.2), and a proxy
// rule that keeps /oauth/introspect private must not be passed by it.
func (p *Provider) exactRoute(r *http.Request) (http.HandlerFunc, bool) {
	if r.URL.RawPath != "" {
		return nil, false
	}
	h, ok := p.exact[r.URL.Path]
	return h, ok
}

func (p *Provider) routes() {
	for path, h := range map[string]http.HandlerFunc{
		AuthorizePath:     p.methods(p.handleAuthorize, "GET", "POST"),
		TokenPath:         browserCallable(p.apiMethods(p.handleToken, "POST"), "POST"),
		TokenizePath:      browserCallable(p.apiMethods(p.handleToken, "POST"), "POST"),
		IntrospectPath:    p.apiMethods(p.handleIntrospect, "POST"),
		RevokePath:        browserCallable(p.apiMethods(p.handleRevoke, "POST"), "POST"),
		LoginPath:         p.methods(p.handleLogin, "GET", "POST"),
		ConsentPath:       p.methods(p.handleConsent, "GET", "POST"),
		LogoutPath:        p.methods(p.handleLogout, "GET", "POST"),
		UserinfoPath:      anyOrigin(p.apiMethods(p.handleUserinfo, "GET", "POST", "OPTIONS")),
		JWKSPath:          browserCallable(p.apiMethods(p.handleJWKS, "GET"), "GET"),
		OIDCDiscoveryPath: browserCallable(p.apiMethods(p.handleDiscovery, "GET"), "GET"),
		OAuthMetadataPath: browserCallable(p.apiMethods(p.handleDiscovery, "GET"), "GET"),
	} {
		p.mux.HandleFunc(path, h)
		p.exact[path] = h
	}
	if h := p.cfg.Pages.Static(); h != nil { // Pages without static files may return nil
		p.mux.Handle(StaticPath, h)
	}
	p.mux.HandleFunc("/", p.handleHome)
}

type ctxKey int

const requestKey ctxKey = 0

// requestState is what the Provider keeps for each request, in one
// allocation: the context it gives the request (carrying the request id
// and client IP), the status-recording ResponseWriter, the request id's
// bytes and the value of the X-Request-Id header.
type requestState struct {
	context.Context
	id    string // see RequestID; its bytes are idBuf
	ip    string // see ClientIP
	idHdr [1]string
	sw    statusWriter
	idBuf [16]byte // written once, before id is made; never changed after
	// errCode is the error code of the answer (an OAuth error, a page's),
	// for the request line: why a 400 or 401 was sent, without a client's
	// log at hand. Codes are oauthd's own words, never a client's input.
	errCode string
}

// Value answers requestKey with the state itself and delegates every other
// key, so the cancellation and values of the parent context work as
// through context.WithValue.
func (s *requestState) Value(key any) any {
	if key == requestKey {
		return s
	}
	return s.Context.Value(key)
}

// RequestID returns the id the Provider gave the request (it is in every
// log line and on error pages).
func RequestID(ctx context.Context) string {
	if rs, ok := ctx.Value(requestKey).(*requestState); ok {
		return rs.id
	}
	return ""
}

// newRequestID writes a new request id, 16 hex digits, into b and returns
// it as a string that shares b's memory: b must never change after. Request
// ids only tell requests apart in logs; they guard nothing, so they come
// from the runtime's fast per-thread generator (math/rand/v2, seeded from
// the OS) rather than a crypto/rand system call.
func newRequestID(b *[16]byte) string {
	var raw [8]byte
	u := rand.Uint64()
	for i := range raw {
		raw[i] = byte(u >> (8 * i))
	}
	hex.Encode(b[:], raw[:])
	return unsafe.String(&b[0], len(b))
}

// The security headers every response gets. Their values are shared,
// one-element slices set straight into the header map, which saves an
// allocation each per request; net/http only reads them, and a handler
// that adds a value gets a new slice from append (len == cap).
var (
	hdrNosniff  = []string{"nosniff"}
	hdrDeny     = []string{"DENY"}
	hdrNoRef    = []string{"no-referrer"}
	hdrCSP      = []string{contentSecurityPolicy}
	hdrNoStore  = []string{"no-store"}
	hdrNoCache  = []string{"no-cache"}
	hdrHSTS     = []string{"max-age=31536000"}
	hdrJSONType = []string{"application/json;charset=UTF-8"}
)

// ServeHTTP serves every endpoint of the Provider.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p == nil || p.store == nil {
		// A Provider not made by New: say so rather than panic.
		http.Error(w, "oauthd: this Provider was not created with oauthd.New", http.StatusInternalServerError)
		return
	}
	// The request line is logged at info, and the Observer is told how
	// long the request took: when neither wants it, the clock is not read.
	logged := p.log.Enabled(r.Context(), slog.LevelInfo)
	_, nop := p.obs.(NopObserver)
	var start time.Time
	if logged || !nop {
		start = p.cfg.Now()
	}
	// The request id's bytes are in the state's own allocation.
	rs := &requestState{Context: r.Context(), ip: clientIP(r, p.cfg.TrustedProxies), sw: statusWriter{ResponseWriter: w}}
	id, ip := newRequestID(&rs.idBuf), rs.ip
	rs.id, rs.idHdr[0] = id, id
	r = r.WithContext(rs)
	h := w.Header()
	h["X-Request-Id"] = rs.idHdr[:]
	p.securityHeaders(h, !strings.HasPrefix(r.URL.Path, StaticPath))
	sw := &rs.sw
	defer func() {
		v := recover()
		if v == http.ErrAbortHandler {
			// The handler aborts the answer on purpose (net/http's way):
			// not a failure, and net/http must see it to drop the
			// connection, after the request line below.
			defer panic(v)
		} else if v != nil {
			p.log.Error("panic serving request", "request_id", id, "path", logPath(r.URL.Path), "panic", v, "stack", string(debug.Stack()))
			if sw.status == 0 {
				p.answerPanic(sw, r)
			}
		}
		// Nothing below may panic: net/http would drop the connection,
		// and with it the answer written above (a 500 for a panic).
		// The request line is built only when it is logged: a disabled
		// level costs nothing. The path only: queries and bodies carry
		// codes, tokens and passwords.
		if !logged && nop {
			return
		}
		d := p.cfg.Now().Sub(start)
		if logged {
			attrs := [7]slog.Attr{slog.String("request_id", id), slog.String("method", logMethod(r.Method)),
				slog.String("path", logPath(r.URL.Path)), slog.Int("status", sw.code()),
				slog.Float64("duration_ms", float64(d.Microseconds())/1000), slog.String("ip", ip)}
			n := 6
			if rs.errCode != "" {
				attrs[n], n = slog.String("error", rs.errCode), n+1
			}
			p.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs[:n]...)
		}
		if !nop {
			route := p.Route(r)
			if route == "" || (route == "/" && r.URL.Path != "/") {
				route = "other"
			}
			p.requestServed(id, route, r.Method, sw.code(), d)
		}
	}()
	if strippedPrefix(r) {
		p.prefixWarned.Do(func() {
			p.log.Warn("oauthd is mounted under a path prefix (http.StripPrefix): it serves only at the root of the issuer's host, and answers such requests 404", "request_id", id)
		})
		p.errorPage(sw, r, &Error{Code: PageNotFound, Status: http.StatusNotFound,
			Description: "oauthd serves at the root of its host: it was mounted under a path prefix (http.StripPrefix), where the addresses it gives would not lead back to it"})
		return
	}
	if len(r.TransferEncoding) > 0 {
		// RFC 9112 §6.1: a request with Transfer-Encoding may have had a
		// Content-Length too, which net/http drops unseen, and a server
		// MUST close the connection after answering such a request (a
		// proxy that framed it by Content-Length would read the rest as
		// another request). OAuth clients seldom send chunked bodies.
		sw.Header().Set("Connection", "close")
	}
	if h, ok := p.exactRoute(r); ok {
		h(sw, r)
		return
	}
	p.mux.ServeHTTP(sw, r)
}

// answerPanic answers a request whose handler panicked: the error page
// for the pages a browser shows, the JSON error for the others. A page
// that panics again (a broken Pages implementation) falls back to a plain
// 500, so the connection still gets an answer.
func (p *Provider) answerPanic(sw *statusWriter, r *http.Request) {
	e := serverError(errors.New("panic"))
	switch p.Route(r) {
	case AuthorizePath, LoginPath, ConsentPath, LogoutPath, "/":
	default:
		p.writeJSONError(sw, r, e)
		return
	}
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("panic rendering the error page", "request_id", RequestID(r.Context()), "panic", v)
			if sw.status == 0 {
				http.Error(sw, "500 internal server error", http.StatusInternalServerError)
			}
		}
	}()
	p.errorPage(sw, r, e)
}

// recoverObserver, deferred around a call of an Observer method, logs a
// panic of the Observer, with its stack, and lets it go no further: it
// must not turn an answer the Provider has decided on, with tokens already
// stored, into a 500 (the client's retry of a code would then be taken for
// a replay).
func (p *Provider) recoverObserver(hook string) {
	if v := recover(); v != nil {
		p.log.Error("panic in Config.Observer's "+hook, "panic", v, "stack", string(debug.Stack()))
	}
}

func (p *Provider) tokenIssued(grant string) {
	defer p.recoverObserver("TokenIssued")
	p.obs.TokenIssued(grant)
}

func (p *Provider) loginFailed() {
	defer p.recoverObserver("LoginFailed")
	p.obs.LoginFailed()
}

func (p *Provider) throttled(limit string) {
	defer p.recoverObserver("Throttled")
	p.obs.Throttled(limit)
}

// requestServed tells the Observer about an answered request. A panic of
// the Observer is logged and goes no further: the answer is written, and
// net/http would drop the connection before sending it.
func (p *Provider) requestServed(id, route, method string, status int, d time.Duration) {
	defer func() {
		if v := recover(); v != nil {
			p.log.Error("panic in Config.Observer's RequestServed", "request_id", id, "panic", v, "stack", string(debug.Stack()))
		}
	}()
	p.obs.RequestServed(route, method, status, d)
}

// strippedPrefix reports whether r reached the Provider with the start of
// its path removed, as http.StripPrefix does: the path the client sent
// (RequestURI) ends with r.URL.Path but is longer. The Provider serves at
// fixed paths from the root of its host (see Config.Issuer): under a
// prefix, discovery would advertise endpoints that are not there, and
// its redirects and cookies would miss it.
func strippedPrefix(r *http.Request) bool {
	ru := r.RequestURI
	if ru == "" || ru[0] != '/' || r.URL.Path == "" {
		return false
	}
	if rest, ok := strings.CutPrefix(ru, r.URL.Path); ok && (rest == "" || rest[0] == '?') {
		return false // the common case, without parsing
	}
	u, err := url.ParseRequestURI(ru)
	return err == nil && len(u.Path) > len(r.URL.Path) && strings.HasSuffix(u.Path, r.URL.Path)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	if code == StatusClientClosedRequest {
		// 499 is for the log and the metrics: a client that half-closed
		// its connection may still read the answer, which must carry a
		// status of HTTP's (RFC 9110 §15): its request was incomplete.
		code = http.StatusBadRequest
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) code() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// methods answers methods other than allowed with 405 and an Allow header:
// JSON for API endpoints, an error page for pages.
// browserCallable lets browser applications of any origin call an
// endpoint that takes the methods (CORS): a single-page app, a public
// client, reads the discovery document and the JWKS, redeems its code and
// refreshes and revokes its tokens from its own origin. The answer to a
// request with an Origin carries Access-Control-Allow-Origin: *, and a
// preflight (OPTIONS with an Origin) is answered. Any origin is safe for
// these endpoints: the documents are public, and the token and revocation
// endpoints authenticate the client by what the request carries (its
// secret, PKCE, the token), never by the browser's cookies, and "*" lets
// no browser send those.
//
// The answer so depends on whether the request had an Origin: it says
// so (Vary: Origin, Fetch standard §3.2.5), so that no cache hands one
// kind of request the other's answer. The public documents carry
// Access-Control-Allow-Origin whatever the request (publicCache), and
// drop it.
func browserCallable(h http.HandlerFunc, methods string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Vary"] = hdrVaryOrigin
		if _, ok := r.Header["Origin"]; ok {
			w.Header().Set("Access-Control-Allow-Origin", "*")
			w.Header()["Access-Control-Expose-Headers"] = hdrExposed
			if r.Method == http.MethodOptions {
				answerPreflight(w, methods)
				return
			}
		}
		h(w, r)
	}
}

// anyOrigin lets a browser application of any origin read every answer of
// h, its errors (a 405 included) as well as its results: userinfo, which
// takes a bearer token, never a cookie.
func anyOrigin(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header()["Access-Control-Expose-Headers"] = hdrExposed
		h(w, r)
	}
}

var hdrVaryOrigin = []string{"Origin"}

// hdrExposed lets a browser application read the answer headers that
// carry its errors: WWW-Authenticate (RFC 6750 §3) and Retry-After (a 429
// or 503), which are not CORS-safelisted.
var hdrExposed = []string{"WWW-Authenticate, Retry-After"}

// answerPreflight answers a CORS preflight for an endpoint that takes the
// methods, an Authorization header and a form or JSON body; the caller has
// set Access-Control-Allow-Origin.
func answerPreflight(w http.ResponseWriter, methods string) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", methods)
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// securityHeaders sets the headers of every answer: no sniffing, no
// framing, no referrer, the CSP, HSTS for an https issuer, and (noStore)
// no caching.
func (p *Provider) securityHeaders(h http.Header, noStore bool) {
	h["X-Content-Type-Options"] = hdrNosniff
	h["X-Frame-Options"] = hdrDeny
	h["Referrer-Policy"] = hdrNoRef
	h["Content-Security-Policy"] = hdrCSP
	if p.hsts {
		// An https issuer: browsers keep to https for this host for a
		// year (RFC 6797), so no plain-http answer, which a network
		// attacker could forge to plant cookies, is ever asked for. Not
		// includeSubDomains: the issuer's parent domain is not ours.
		h["Strict-Transport-Security"] = hdrHSTS
	}
	if noStore {
		h["Cache-Control"] = hdrNoStore
		h["Pragma"] = hdrNoCache
	}
}

// methods answers a request whose method is not allowed with 405 and an
// error page: for the endpoints people open in a browser.
func (p *Provider) methods(h http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return p.allowMethods(h, false, allowed)
}

// apiMethods answers a request whose method is not allowed with 405 and a
// JSON error (invalid_request): for the endpoints programs call.
func (p *Provider) apiMethods(h http.HandlerFunc, allowed ...string) http.HandlerFunc {
	return p.allowMethods(h, true, allowed)
}

func (p *Provider) allowMethods(h http.HandlerFunc, api bool, allowed []string) http.HandlerFunc {
	// Allow lists every method served (RFC 9110 §10.2.1): HEAD with GET.
	listed := slices.Clone(allowed)
	if i := slices.Index(listed, "GET"); i >= 0 && !slices.Contains(listed, "HEAD") {
		listed = slices.Insert(listed, i+1, "HEAD")
	}
	allow := strings.Join(listed, ", ")
	var desc string
	if api {
		shown := slices.DeleteFunc(slices.Clone(allowed), func(m string) bool { return m == "OPTIONS" })
		desc = "this endpoint accepts only " + strings.Join(shown, " and ")
	}
	return func(w http.ResponseWriter, r *http.Request) {
		for _, m := range allowed {
			if r.Method == m || (m == "GET" && r.Method == "HEAD") {
				h(w, r)
				return
			}
		}
		w.Header().Set("Allow", allow)
		if api {
			p.writeJSONError(w, r, &Error{Code: ErrorInvalidRequest, Description: desc, Status: http.StatusMethodNotAllowed})
			return
		}
		p.errorPage(w, r, &Error{Code: PageMethodNotAllowed, Status: http.StatusMethodNotAllowed})
	}
}

func (p *Provider) now() time.Time { return p.cfg.Now() }

// logErr logs the internal cause of an error, if any, and records its
// code for the request line.
func (p *Provider) logErr(r *http.Request, e *Error) {
	if rs, ok := r.Context().Value(requestKey).(*requestState); ok {
		rs.errCode = e.Code
	}
	if e.Err == nil {
		return
	}
	ctx := r.Context()
	if ctx.Err() != nil && (errors.Is(e.Err, context.Canceled) || errors.Is(e.Err, context.DeadlineExceeded)) {
		if cause := context.Cause(ctx); !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
			// The server ended the request, not the client: the server's
			// base context was cancelled with a cause (as oauthd serve
			// does when its shutdown timeout passes). The client may still
			// be connected and read the answer: 503 with Retry-After,
			// which it may try again (elsewhere), not a 4xx.
			p.log.Info("request ended by the server before it was answered", "request_id", RequestID(ctx), "path", logPath(r.URL.Path), "cause", cause.Error())
			e.Code, e.Status = ErrorTemporarilyUnavailable, http.StatusServiceUnavailable
			e.Description = "the server ended the request before it completed; try again"
			if e.RetryAfter <= 0 {
				e.RetryAfter = time.Second
			}
			return
		}
		// The client hung up before the answer: nothing failed on the
		// server's side. Nobody reads the answer; the log and the metrics
		// say 499, nginx's "client closed request", rather than a 5xx no
		// client saw.
		p.log.Info("request ended before it was answered", "request_id", RequestID(ctx), "path", logPath(r.URL.Path), "error", e.Err.Error())
		e.Status = StatusClientClosedRequest
		return
	}
	if e.Code == ErrorTemporarilyUnavailable && isOutage(e.Err) {
		// The store is out of reach for now (a database restarting, a
		// full disk, a lock held too long): the answer says so, 503 with
		// Retry-After, and nothing in the server is broken.
		// One line a second at most, with the count of those left out:
		// under load an outage failed thousands of requests a second,
		// each with its line (138 MB of log in a 30 s outage). Every
		// request still has its request line, status 503.
		now := time.Now().UnixNano()
		last := p.outageLogged.Load()
		if now-last < int64(time.Second) || !p.outageLogged.CompareAndSwap(last, now) {
			if p.outageSkipped.Add(1) == 1 {
				// The count is logged within a second even if no
				// other failure follows (an outage that ends).
				time.AfterFunc(time.Second, p.flushOutageLog)
			}
			return
		}
		attrs := []any{"request_id", RequestID(ctx), "path", logPath(r.URL.Path), "error", e.Err.Error()}
		if n := p.outageSkipped.Swap(0); n > 0 {
			attrs = append(attrs, "left_out", n)
		}
		p.log.Warn("storage unavailable", attrs...)
		return
	}
	p.log.Error("internal error", "request_id", RequestID(ctx), "path", logPath(r.URL.Path), "error", e.Err.Error())
}

// flushOutageLog logs the count of "storage unavailable" lines left out
// since the last one, if any are.
func (p *Provider) flushOutageLog() {
	if n := p.outageSkipped.Swap(0); n > 0 {
		p.outageLogged.Store(time.Now().UnixNano())
		p.log.Warn("storage unavailable", "left_out", n)
	}
}

// writeJSON writes v as JSON with the status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header()["Content-Type"] = hdrJSONType
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// writeJSONError answers an API request with the RFC 6749 §5.2 error body.
func (p *Provider) writeJSONError(w http.ResponseWriter, r *http.Request, e *Error) {
	p.logErr(r, e)
	if e.Code == ErrorInvalidClient {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauthd", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfter(e.RetryAfter))
	}
	body := map[string]string{"error": e.Code}
	if e.Description != "" {
		body["error_description"] = wireDescription(e.Description)
	}
	writeJSON(w, e.HTTPStatus(), body)
}

// errorPage shows a person an error that cannot be sent to a client.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, e *Error) {
	p.errorPageFor(w, r, e, nil)
}

// errorPageFor is errorPage for an error about the pending authorization
// request ar (nil if unknown): the page is in the language ar asked for,
// as its login and consent pages are.
func (p *Provider) errorPageFor(w http.ResponseWriter, r *http.Request, e *Error, ar *AuthRequest) {
	p.logErr(r, e)
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if e.Code == ErrorServerError {
		status = http.StatusInternalServerError
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", retryAfter(e.RetryAfter))
	}
	pg := p.page(r, status, ar)
	// An error about an authorization request (an unknown client, an
	// unregistered redirect_uri) is in the language the request asked
	// for, as its login and consent pages would have been.
	if r.URL.Path == AuthorizePath {
		if ps, perr := parseQuery(r.URL.RawQuery); perr == nil {
			if v, e := ps.get("ui_locales"); e == nil {
				pg.Locales = strings.Fields(v)
			}
		}
	}
	p.cfg.Pages.Error(w, r, &ErrorPage{Page: pg, Code: e.Code, Description: e.Description})
}

func (p *Provider) page(r *http.Request, status int, ar *AuthRequest) Page {
	pg := Page{Status: status, RequestID: RequestID(r.Context())}
	if ar != nil {
		pg.Locales = ar.UILocales
	}
	return pg
}

// handleHome greets a signed-in person; every other unknown path is 404.
func (p *Provider) handleHome(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" || p.cfg.LoginURL != "" { // with LoginURL, the built-in pages are off
		p.errorPage(w, r, &Error{Code: PageNotFound, Status: http.StatusNotFound})
		return
	}
	if r.Method != "GET" && r.Method != "HEAD" {
		w.Header().Set("Allow", "GET, HEAD")
		p.errorPage(w, r, &Error{Code: PageMethodNotAllowed, Status: http.StatusMethodNotAllowed})
		return
	}
	sess, user, err := p.currentSession(r)
	if err != nil {
		p.errorPage(w, r, serverError(err))
		return
	}
	if sess == nil {
		http.Redirect(w, r, LoginPath, http.StatusSeeOther)
		return
	}
	browser := p.browser(w, r)
	p.cfg.Pages.Home(w, r, &HomePage{Page: p.page(r, http.StatusOK, nil), User: user, LogoutAction: LogoutPath, CSRF: csrfToken(browser, "logout", "")})
}

// maxLoggedPath is how much of a request's path a log line keeps.
const maxLoggedPath = 256

// logMethod is the request's method as logged: the methods of HTTP as
// they are, any other as "[N chars]". A method is any token of up to the
// header limit's length, so a broken or hostile client could put a token
// or a password there, which no log line may hold.
func logMethod(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE":
		return m
	}
	return "[" + strconv.Itoa(len(m)) + " chars]"
}

// logPath is the path as a request log line shows it: at most
// maxLoggedPath bytes (cut at a character boundary) and how long it was. A
// client chooses the path of a request to an unknown page: at full length,
// 32 KiB paths made a third of a gigabyte of log in ten seconds.
//
// A segment that looks like a credential (see credentialLike) is shown as
// "[N chars]": a token pasted into a path by mistake
// (/oauth/userinfo/<access token>) must not reach the log, where the
// README promises no token goes.
func logPath(path string) string {
	if strings.Contains(path, "/") && hasCredentialLike(path) {
		segs := strings.Split(path, "/")
		for i, s := range segs {
			if credentialLike(s) {
				segs[i] = "[" + strconv.Itoa(len(s)) + " chars]"
			}
		}
		path = strings.Join(segs, "/")
	}
	if len(path) <= maxLoggedPath {
		return path
	}
	cut := maxLoggedPath
	for cut > 0 && !utf8.RuneStart(path[cut]) {
		cut--
	}
	return path[:cut] + "...(" + strconv.Itoa(len(path)) + " bytes)"
}

func hasCredentialLike(path string) bool {
	for s := range strings.SplitSeq(path, "/") {
		if credentialLike(s) {
			return true
		}
	}
	return false
}

// credentialLike reports whether a path segment could hold a token, code
// or secret: a run of 20 characters or more of a token's alphabet
// (base64url, a JWT's dots, base64's + and =, hex) with both letters and
// digits, which random strings of that length have and the words of a
// route do not.
//
// The run of such characters is what counts, not the whole segment: a
// token pasted with "Bearer ", a "token:" or quotes around it is one too.
func credentialLike(s string) bool {
	if len(s) < 20 {
		return false
	}
	run, letter, digit := 0, false, false
	for i := 0; i <= len(s); i++ {
		c := byte(0)
		if i < len(s) {
			c = s[i]
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			letter = true
		case c >= '0' && c <= '9':
			digit = true
		case c == '-', c == '_', c == '.', c == '~', c == '+', c == '=', c == '%':
		default:
			if run >= 20 && letter && digit {
				return true
			}
			run, letter, digit = 0, false, false
			continue
		}
		run++
	}
	return false
}
