package oauthd

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Config configures a Provider. The zero value of every field but Issuer
// and Pages is a sane, secure default.
type Config struct {
	// Issuer is the server's issuer identifier (RFC 8414 §2): an https URL
	// without path, query or fragment (http is accepted for localhost and
	// loopback addresses): the Provider serves its endpoints at fixed
	// paths under it (/oauth/..., /.well-known/...), so it is mounted at
	// the root of its host, not under a path prefix (a request that
	// reaches it through http.StripPrefix is answered 404, saying so). It
	// is used exactly as written, and clients compare it byte for byte
	// (OIDC Discovery §4.3): New refuses one that ends with a slash. It is
	// never derived from the request's Host header.
	Issuer string
	// Pages renders login, consent and error pages (see package ui).
	Pages Pages
	// LoginURL, when set, hands the person to the embedding program's own
	// login and consent pages instead of the built-in ones: the
	// authorization endpoint redirects to LoginURL?request=ID, and the
	// program answers with Provider.PendingRequest, then Approve or Deny.
	// It is a path or a URL on the issuer's origin, without backslashes
	// or control characters (browsers read "/\host" as "//host"), and not
	// a path the Provider serves (/oauth/..., /.well-known/...,
	// /static/...: the browser would loop). The built-in login,
	// consent and home pages are then off (404): the program's login is
	// the only way in. oauthd keeps no session of its own then, so
	// prompt=none is always answered login_required, and ID tokens carry
	// no amr claim (oauthd does not know how the program authenticated
	// the person).
	LoginURL string
	// Logger receives one line per request and every internal error; it
	// never receives a secret, token, code or password. Default: discard.
	Logger *slog.Logger
	// Now is the clock; default time.Now. Tests inject a fake one. New
	// reads it once and refuses a clock that says a time before 1970 (a
	// fake clock left at the zero time): stores refuse such times.
	Now func() time.Time
	// Observer is told about issued tokens, failed logins and throttled
	// attempts and every request answered, for metrics; default: nobody.
	// New refuses a nil pointer, and an Observer that embeds one (a
	// *NopObserver left nil: embed NopObserver as a value). A panic in
	// RequestServed is logged, and the answer is still sent.
	Observer Observer

	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// is believed: a request from one of them is taken to come from the
	// address the header names (see ClientIP). It is used for the log
	// lines and the per-IP login limit only; the issuer never comes from a
	// request. Default: none, the peer address is the client.
	TrustedProxies []netip.Prefix
	// Limiter counts failed attempts for LoginLimit, LoginIPLimit and
	// ClientLimit; default a MemoryLimiter of this Provider. With several
	// nodes each has its own counts unless they share a Limiter backed by
	// shared storage, so a client may make up to N times the attempts.
	// New refuses a nil pointer, one that embeds a nil pointer, and a
	// zero MemoryLimiter (make one with NewMemoryLimiter).
	Limiter Limiter
	// LoginLimit throttles failed logins per account (username), at the
	// login form and the password grant; the zero value is
	// DefaultLoginLimit (5 failures in 15 minutes lock the account out
	// for 1 minute, doubling up to 1 hour).
	LoginLimit RateLimit
	// LoginIPLimit throttles failed logins per client IP (per /64 for
	// IPv6); the zero value is DefaultLoginIPLimit (50 failures in 15
	// minutes).
	LoginIPLimit RateLimit
	// ClientLimit throttles failed client authentications per client_id
	// and client IP network (every unknown client_id from one network
	// counting as one) at the token, introspection and revocation
	// endpoints; the zero value is DefaultClientLimit (20 failures in a
	// minute lock that client out from that network for 10 seconds,
	// doubling up to 5 minutes).
	ClientLimit RateLimit

	// AccessTokenTTL is the lifetime of access tokens; default 1 hour.
	AccessTokenTTL time.Duration
	// RefreshTokenTTL is the lifetime of each refresh token; default 30 days.
	// A refresh of a confidential client's grant gives a successor that
	// lives this long again (the grant ends after this long unused); a
	// public client's successor expires when its predecessor would have
	// (OAuth 2.0 for Browser-Based Apps: rotation does not extend a public
	// client's grant), so its grant lives this long from the first token.
	RefreshTokenTTL time.Duration
	// RefreshTokenMaxLifetime, when set, ends every grant this long after
	// the person authenticated for it, however often it is refreshed: no
	// refresh token of the grant expires later. 0 (the default): no limit
	// beyond RefreshTokenTTL's.
	RefreshTokenMaxLifetime time.Duration
	// CodeTTL is the lifetime of authorization codes; default 5 minutes,
	// at most 10 minutes (RFC 6749 §4.1.2).
	CodeTTL time.Duration
	// AuthRequestTTL is how long a person has to log in and decide; default
	// 30 minutes.
	AuthRequestTTL time.Duration
	// SessionTTL is how long a login lasts; default 24 hours.
	SessionTTL time.Duration

	// AllowPlainPKCE accepts code_challenge_method=plain (RFC 7636 §4.2);
	// off by default, as OAuth 2.1 recommends S256.
	AllowPlainPKCE bool
	// EnablePasswordGrant turns on the resource owner password credentials
	// grant (RFC 6749 §4.3) for clients that also list it. Off by default.
	EnablePasswordGrant bool
	// EnableImplicitGrant turns on the response types that return tokens
	// from the authorization endpoint: token (RFC 6749 §4.2) and the OpenID
	// Connect implicit and hybrid types id_token, id_token token,
	// code id_token, code token and code id_token token (OIDC Core §3.2,
	// §3.3). A client also needs the implicit grant in GrantTypes and, for
	// the OpenID Connect types, the type listed in ResponseTypes. Off by
	// default.
	EnableImplicitGrant bool
	// RefreshGracePeriod lets a client that retries a refresh within this
	// time get the same successor tokens instead of having the whole grant
	// revoked as a replay. Default 0 (any reuse revokes).
	RefreshGracePeriod time.Duration
	// MaxBodyBytes bounds every request body; default 64 KiB.
	MaxBodyBytes int64
	// PendingRequestBudget bounds the bytes of the authorization requests
	// this node stores and nobody has answered yet, per AuthRequestTTL
	// (anyone can send them, and each is kept until answered or expired);
	// default DefaultPendingRequestBudget (256 MiB), negative for no bound.
	// Past it a request is answered temporarily_unavailable, and so is one
	// of a network (an IPv4 address, an IPv6 /56) with more than a 64th of
	// it unanswered (a 256th while more than half of it is spent).
	PendingRequestBudget int64
	// SecretCacheSize bounds the cache of verified client secrets, and
	// that of clients; default 1024. It must not be negative.
	SecretCacheSize int
	// ClientCacheTTL is how long the token, introspection and revocation
	// endpoints reuse a client they read from the store; default 1 second,
	// negative for no cache. A client deleted or changed in the store (by
	// `oauthd client` or another node) keeps its old settings for at most
	// this long from the start of the read that cached it (twice this long
	// while the store is slow to answer a reload); a new client, or a new
	// secret, works at once.
	ClientCacheTTL time.Duration

	// IDTokenTTL is the lifetime of ID tokens (OIDC Core §2); default 1 hour.
	IDTokenTTL time.Duration
	// KeyEncryptionKey, when set, encrypts the private signing keys at rest
	// with AES-256-GCM; it must be 32 random bytes (crypto/rand; 32 zero
	// bytes are refused, as a key never filled in). Keys stored in clear before it
	// was set are still read. Default: keys are stored in clear.
	KeyEncryptionKey []byte
	// KeyRotationPeriod is how long each signing key signs before its
	// successor takes over; default 30 days, at least one hour. The
	// successor is published in the JWKS a quarter of a period (at most 7
	// days) before it signs anything, and a retired key stays published
	// until every ID token it signed has expired.
	KeyRotationPeriod time.Duration
	// KeyRefreshInterval is how often a node re-reads the signing keys from
	// the store, so every node sees a rotation made by another; default 1
	// minute, at most 5 minutes.
	KeyRefreshInterval time.Duration
	// UILocales are the languages the pages are available in, advertised
	// as ui_locales_supported (OIDC Discovery §3); package ui's Locales
	// gives them. Default: not advertised.
	UILocales []string
}

func (c *Config) setDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&c.AccessTokenTTL, time.Hour)
	def(&c.RefreshTokenTTL, 30*24*time.Hour)
	def(&c.CodeTTL, 5*time.Minute)
	def(&c.AuthRequestTTL, 30*time.Minute)
	def(&c.SessionTTL, 24*time.Hour)
	def(&c.ClientCacheTTL, time.Second)
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.PendingRequestBudget == 0 {
		c.PendingRequestBudget = DefaultPendingRequestBudget
	}
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("oauthd: Config.MaxBodyBytes %d must not be negative (0 is the default, %d)", c.MaxBodyBytes, DefaultMaxBodyBytes)
	}
	if err := c.checkLoginURL(); err != nil {
		return err
	}
	if c.SecretCacheSize < 0 {
		return fmt.Errorf("oauthd: Config.SecretCacheSize %d must not be negative (0 is the default, 1024)", c.SecretCacheSize)
	}
	if err := c.keyDefaults(); err != nil {
		return err
	}
	if c.CodeTTL > 10*time.Minute {
		return fmt.Errorf("oauthd: Config.CodeTTL %s is longer than 10 minutes (RFC 6749 §4.1.2)", c.CodeTTL)
	}
	for name, d := range map[string]time.Duration{"AccessTokenTTL": c.AccessTokenTTL, "RefreshTokenTTL": c.RefreshTokenTTL,
		"CodeTTL": c.CodeTTL, "AuthRequestTTL": c.AuthRequestTTL, "SessionTTL": c.SessionTTL} {
		if d < time.Second {
			return fmt.Errorf("oauthd: Config.%s %s must be at least one second", name, d)
		}
	}
	if c.RefreshGracePeriod < 0 {
		return fmt.Errorf("oauthd: Config.RefreshGracePeriod must not be negative")
	}
	if c.RefreshTokenMaxLifetime < 0 || (c.RefreshTokenMaxLifetime > 0 && c.RefreshTokenMaxLifetime < time.Minute) {
		return fmt.Errorf("oauthd: Config.RefreshTokenMaxLifetime %s must be 0 (no limit) or at least one minute", c.RefreshTokenMaxLifetime)
	}
	if err := c.setLimitDefaults(); err != nil {
		return err
	}
	if isNil(c.Pages) {
		// A typed nil too: what "pages, _ := ui.New(...)" leaves when
		// ui.New fails.
		return fmt.Errorf("oauthd: Config.Pages is required (ui.New gives the default pages)")
	}
	if now := c.Now(); now.Before(time.Unix(0, 0)) {
		// Every store refuses such a time, and every sign-in would fail
		// with a misleading error (the client "registered again").
		return fmt.Errorf("oauthd: Config.Now returned %s, before 1970: give a clock that says the time (a fake clock left at the zero time?)", now.Format(time.RFC3339))
	}
	if err := ValidateIssuer(c.Issuer); err != nil {
		return err
	}
	if strings.HasSuffix(c.Issuer, "/") {
		// Clients compare the issuer byte for byte with the one discovery
		// and the tokens name (OIDC Discovery §4.3, RFC 8414 §3.3): an
		// issuer trimmed here would differ from the one they were given.
		return fmt.Errorf("oauthd: issuer %q ends with /: write it without, %q, and configure clients with that", c.Issuer, strings.TrimRight(c.Issuer, "/"))
	}
	return nil
}

// checkLoginURL checks Config.LoginURL: a path, or a URL on the issuer's
// origin, that a browser reads as this server's and that is not one of
// the Provider's own paths.
func (c *Config) checkLoginURL() error {
	if c.LoginURL == "" {
		return nil
	}
	if strings.ContainsFunc(c.LoginURL, func(r rune) bool { return r == '\\' || r <= ' ' || r == 0x7f }) {
		// Browsers read a backslash as a slash in http(s) URLs (WHATWG
		// URL): "/\evil.example/login" is "//evil.example/login",
		// another host, where Go's url package sees a path.
		return fmt.Errorf("oauthd: Config.LoginURL %q has a backslash, a space or a control character", c.LoginURL)
	}
	u, err := url.Parse(c.LoginURL)
	if err != nil || (u.Host == "" && !strings.HasPrefix(u.Path, "/")) || strings.HasPrefix(u.Path, "//") || u.Fragment != "" {
		return fmt.Errorf("oauthd: Config.LoginURL %q is not an absolute URL or a path starting with /", c.LoginURL)
	}
	if u.Host != "" {
		// PendingRequest needs the browser cookie oauthd sets for the
		// issuer's host: a login page on another origin never has it.
		iss, err := url.Parse(c.Issuer)
		if u.Scheme == "" || err != nil || !strings.EqualFold(u.Scheme, iss.Scheme) || !strings.EqualFold(u.Host, iss.Host) {
			return fmt.Errorf("oauthd: Config.LoginURL %q is not on the issuer's origin (%s): the login page must be served by the same host, or be a path", c.LoginURL, c.Issuer)
		}
	}
	// The path as the browser asks for it: with "." and ".." segments
	// resolved, and percent-escapes decoded (u.Path is), as net/http's
	// mux routes it.
	clean := path.Clean("/" + u.Path)
	for _, own := range []string{"/oauth/", "/.well-known/", StaticPath} {
		if strings.HasPrefix(clean+"/", own) {
			return fmt.Errorf("oauthd: Config.LoginURL %q is under %s, which the Provider serves: the authorization endpoint would send the browser back to itself; serve your login page at a path of your own, such as /login", c.LoginURL, own)
		}
	}
	return nil
}

// isNil reports whether v is nil or an interface holding a nil pointer,
// map, slice, func or channel.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// nilEmbedded names the type of a nil pointer or interface that v, a
// struct or a pointer to one, embeds (directly or through embedded
// structs), or returns "": the methods promoted from it panic when called.
func nilEmbedded(v any) string { return nilEmbeddedValue(reflect.ValueOf(v), 0) }

func nilEmbeddedValue(rv reflect.Value, depth int) string {
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Struct || depth > 8 {
		return ""
	}
	for i := range rv.NumField() {
		if !rv.Type().Field(i).Anonymous {
			continue
		}
		switch fv := rv.Field(i); fv.Kind() {
		case reflect.Pointer, reflect.Interface:
			if fv.IsNil() {
				return fv.Type().String()
			}
			if s := nilEmbeddedValue(fv.Elem(), depth+1); s != "" {
				return s
			}
		case reflect.Struct:
			if s := nilEmbeddedValue(fv, depth+1); s != "" {
				return s
			}
		}
	}
	return ""
}

// keyDefaults fills and checks the fields the signing keys depend on.
func (c *Config) keyDefaults() error {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	for _, d := range []struct {
		p *time.Duration
		v time.Duration
	}{{&c.IDTokenTTL, time.Hour}, {&c.KeyRotationPeriod, 30 * 24 * time.Hour}, {&c.KeyRefreshInterval, time.Minute}} {
		if *d.p == 0 {
			*d.p = d.v
		}
	}
	if c.IDTokenTTL < time.Second {
		return fmt.Errorf("oauthd: Config.IDTokenTTL %s must be at least one second", c.IDTokenTTL)
	}
	if c.KeyRotationPeriod < time.Hour {
		return fmt.Errorf("oauthd: Config.KeyRotationPeriod %s must be at least one hour", c.KeyRotationPeriod)
	}
	if c.KeyRefreshInterval < time.Second || c.KeyRefreshInterval > maxKeyRefreshInterval {
		return fmt.Errorf("oauthd: Config.KeyRefreshInterval %s must be between one second and 5 minutes", c.KeyRefreshInterval)
	}
	if n := len(c.KeyEncryptionKey); n != 0 && n != 32 {
		return fmt.Errorf("oauthd: Config.KeyEncryptionKey must be 32 bytes (AES-256), not %d", n)
	}
	if len(c.KeyEncryptionKey) == 32 && !slices.ContainsFunc(c.KeyEncryptionKey, func(b byte) bool { return b != 0 }) {
		// A key never filled in (make([]byte, 32)): it would encrypt
		// the private keys with a key anyone can guess.
		return fmt.Errorf("oauthd: Config.KeyEncryptionKey is 32 zero bytes: fill it from crypto/rand (openssl rand -base64 32)")
	}
	return nil
}

// ValidateIssuer checks an issuer identifier (RFC 8414 §2, OIDC Discovery
// §3): an absolute https URL with a host, no path (the Provider's
// endpoints are at fixed paths from the host's root), no query and no
// fragment; http is accepted for localhost and loopback addresses, for
// development. Scheme and host are case-insensitive (RFC 3986 §3.1,
// §3.2.2), and the issuer is used as written: clients must be configured
// with the same string, which they compare byte for byte.
func ValidateIssuer(s string) error {
	if s == "" {
		return fmt.Errorf("oauthd: Config.Issuer is required")
	}
	u, err := url.Parse(s)
	if err == nil && u.User != nil {
		// Not echoed: what is before the @ may be a password.
		u.User = nil
		return fmt.Errorf("oauthd: issuer %q has user information (a name or password before an @): an issuer has none", u.String())
	}
	if err != nil || u.Host == "" {
		return fmt.Errorf("oauthd: issuer %q is not an absolute URL with a host", withoutUserInfo(s))
	}
	if u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(s, "?#") {
		return fmt.Errorf("oauthd: issuer %q must not have a query or fragment", s)
	}
	if u.Path != "" && u.Path != "/" {
		// Every endpoint, page, redirect and cookie of the Provider is at
		// the root of its host: under a path, what discovery advertises
		// would not be served.
		return fmt.Errorf("oauthd: issuer %q has a path; oauthd serves at the root of its host (give it a host of its own, e.g. https://auth.example.com)", s)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopbackIssuer(s) {
			return fmt.Errorf("oauthd: issuer %q uses http on a host that is not localhost or a loopback address; use https", s)
		}
	default:
		return fmt.Errorf("oauthd: issuer %q must be an https URL", s)
	}
	return nil
}

func (c *Config) setLimitDefaults() error {
	if c.Observer == nil {
		c.Observer = NopObserver{}
	}
	if c.Limiter == nil {
		c.Limiter = NewMemoryLimiter(0)
	}
	// A nil pointer in an interface is not a nil interface: it would
	// panic (or fail every request) at the first call, far from here.
	for name, v := range map[string]any{"Observer": c.Observer, "Limiter": c.Limiter} {
		if isNil(v) {
			return fmt.Errorf("oauthd: Config.%s is a nil %T: leave it nil for the default, or give one that is not nil", name, v)
		}
		if f := nilEmbedded(v); f != "" {
			return fmt.Errorf("oauthd: Config.%s (%T) embeds a nil %s, whose methods would panic: embed a value (oauthd.NopObserver{}, not *oauthd.NopObserver) or set the field", name, v, f)
		}
	}
	if m, ok := c.Limiter.(*MemoryLimiter); ok && m.keys == nil {
		return fmt.Errorf("oauthd: Config.Limiter is a zero MemoryLimiter, which is not usable: make it with oauthd.NewMemoryLimiter")
	}
	var err error
	if c.LoginLimit, err = c.LoginLimit.withDefaults("LoginLimit", DefaultLoginLimit); err != nil {
		return err
	}
	if c.LoginIPLimit, err = c.LoginIPLimit.withDefaults("LoginIPLimit", DefaultLoginIPLimit); err != nil {
		return err
	}
	c.ClientLimit, err = c.ClientLimit.withDefaults("ClientLimit", DefaultClientLimit)
	return err
}

// loopbackIssuer reports whether the issuer's host is localhost or a
// loopback address.
func loopbackIssuer(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	h := u.Hostname()
	ip := net.ParseIP(h)
	return strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback()
}

// withoutUserInfo is s with what may be user information (between "://"
// and an "@" before the path) left out, for an error message about a URL
// that does not parse: a password must not be echoed.
func withoutUserInfo(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	authority, path := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		authority = "…@" + authority[i+1:]
	}
	return scheme + "://" + authority + path
}
