package oauthd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// RateLimit says how many failed attempts a key (an account, a client IP,
// a client) may make before it is locked out, and for how long.
//
// Failures are counted in a window that starts at the first failure. When
// MaxFailures failures fall within Window, the key is locked out for
// Lockout; every further lockout lasts twice as long as the one before, up
// to MaxLockout. A key with no failure for Window after its last failure
// or lockout starts afresh, and so does an account after a successful
// login. While a key is locked out its credentials are not even checked,
// so a correct password does not sign in.
type RateLimit struct {
	// MaxFailures is how many failures are allowed within Window. Zero
	// means the default of the Config field; a negative value turns the
	// limit off.
	MaxFailures int
	// Window is how long failures are counted from the first one.
	Window time.Duration
	// Lockout is how long the first lockout lasts.
	Lockout time.Duration
	// MaxLockout bounds the doubling lockouts.
	MaxLockout time.Duration
}

// Default rate limits (see Config.LoginLimit, LoginIPLimit and ClientLimit).
var (
	DefaultLoginLimit   = RateLimit{MaxFailures: 5, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	DefaultLoginIPLimit = RateLimit{MaxFailures: 50, Window: 15 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour}
	DefaultClientLimit  = RateLimit{MaxFailures: 20, Window: time.Minute, Lockout: 10 * time.Second, MaxLockout: 5 * time.Minute}
)

// Enabled reports whether the limit counts anything.
func (l RateLimit) Enabled() bool { return l.MaxFailures > 0 }

// withDefaults fills the zero fields of l from def and checks the result;
// name is the Config field, for the error.
func (l RateLimit) withDefaults(name string, def RateLimit) (RateLimit, error) {
	if l.MaxFailures == 0 {
		l.MaxFailures = def.MaxFailures
	}
	if l.Window == 0 {
		l.Window = def.Window
	}
	if l.Lockout == 0 {
		l.Lockout = def.Lockout
	}
	if l.MaxLockout == 0 {
		l.MaxLockout = max(def.MaxLockout, l.Lockout)
	}
	if !l.Enabled() {
		return l, nil
	}
	switch {
	case l.Window < time.Second:
		return l, fmt.Errorf("oauthd: Config.%s.Window %s must be at least one second", name, l.Window)
	case l.Lockout < time.Second:
		return l, fmt.Errorf("oauthd: Config.%s.Lockout %s must be at least one second", name, l.Lockout)
	case l.MaxLockout < l.Lockout:
		return l, fmt.Errorf("oauthd: Config.%s.MaxLockout %s must not be shorter than Lockout %s", name, l.MaxLockout, l.Lockout)
	}
	return l, nil
}

// lockout is the length of the n-th lockout (n ≥ 1): Lockout doubled n-1
// times, at most MaxLockout.
func (l RateLimit) lockout(n int) time.Duration {
	d := l.Lockout
	for i := 1; i < n && d < l.MaxLockout; i++ {
		if d > math.MaxInt64/2 {
			return l.MaxLockout
		}
		d *= 2
	}
	return min(d, l.MaxLockout)
}

// Outcome is how an attempt a Limiter allowed ended.
type Outcome int

const (
	// Failed means the credential was wrong: the attempt counts as a failure.
	Failed Outcome = iota + 1
	// Succeeded means the credential was right and proves the key's owner
	// (an account, a client): the key's failures and lockouts are forgotten.
	Succeeded
	// Released means the attempt does not count either way: the key is a
	// client IP whose attempt succeeded (one good login from a shared
	// address must not wipe the failures of others), or the check could not
	// be made.
	Released
)

// Limiter counts failed attempts per key and refuses attempts on a key
// that had too many. The keys are opaque strings the Provider makes, such
// as "user:<account id>", "device:<a device cookie's ID>" (a browser's
// own count for the account it signed in to, see the README's Rate
// limits), "ip:192.0.2.1", "client:app from 192.0.2.1"
// (a client's secret from one address, or IPv6 /64) and "client:app from anywhere"
// (from all of them); a Limiter must not depend on their form.
//
// An attempt is reserved before the credential is checked and counts
// against the limit until Done: so of any number of concurrent attempts on
// a key with MaxFailures m, at most m check a credential. Implementations
// must be safe for concurrent use and must not lose updates.
//
// The default, MemoryLimiter, keeps the counts in the memory of one
// process: with N nodes behind a load balancer a client can make up to N
// times the configured attempts. A Limiter backed by shared storage makes
// the limits global.
type Limiter interface {
	// Reserve takes an attempt on key under lim. It returns wait > 0,
	// how long to wait before trying again, when the key is locked out or
	// when its failures and attempts in progress already reach
	// lim.MaxFailures; the attempt is then not taken.
	Reserve(ctx context.Context, key string, lim RateLimit, now time.Time) (wait time.Duration, err error)
	// Done ends an attempt that Reserve took.
	Done(ctx context.Context, key string, lim RateLimit, now time.Time, o Outcome) error
}

// LockoutChecker is implemented by Limiters that can tell whether a key is
// locked out without taking an attempt. The engine uses it for a client
// whose secret is already known to be right (in the verified-secret
// cache): such a request guesses nothing, so it need not count against the
// limit, and any number of them may run at once; an active lockout is
// still honoured.
type LockoutChecker interface {
	LockedOut(ctx context.Context, key string, lim RateLimit, now time.Time) (wait time.Duration, err error)
}

// MemoryLimiter is a Limiter in the memory of one process. Its zero value
// is not usable; NewMemoryLimiter makes one.
type MemoryLimiter struct {
	mu      sync.Mutex
	keys    map[string]*limitState
	maxKeys int
	ops     int
}

type limitState struct {
	failures    int       // in the current window
	pending     int       // attempts reserved and not yet done
	first       time.Time // first failure of the current window
	last        time.Time // last failure
	lockedUntil time.Time
	lockouts    int           // lockouts since the key was last forgotten
	window      time.Duration // the limit's window, for sweeping
	max         int           // the limit's MaxFailures, for makeRoom
}

// NewMemoryLimiter returns a MemoryLimiter remembering at most maxKeys keys
// (100 000 when maxKeys ≤ 0). When it is full, keys that have been quiet
// for their window are forgotten first, then others that are not locked
// out, so memory stays bounded however many names an attacker tries.
func NewMemoryLimiter(maxKeys int) *MemoryLimiter {
	if maxKeys <= 0 {
		maxKeys = 100_000
	}
	return &MemoryLimiter{keys: make(map[string]*limitState), maxKeys: maxKeys}
}

// Reserve implements Limiter.
func (m *MemoryLimiter) Reserve(_ context.Context, key string, lim RateLimit, now time.Time) (time.Duration, error) {
	if !lim.Enabled() {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.keys[key]
	if s == nil {
		m.makeRoom(now)
		s = &limitState{}
		m.keys[key] = s
	}
	s.window, s.max = lim.Window, lim.MaxFailures
	s.age(now)
	if now.Before(s.lockedUntil) {
		return ceilSecond(s.lockedUntil.Sub(now)), nil
	}
	if s.failures+s.pending >= lim.MaxFailures {
		// The attempts in progress may all fail and lock the key out.
		return time.Second, nil
	}
	s.pending++
	return 0, nil
}

// LockedOut implements LockoutChecker.
func (m *MemoryLimiter) LockedOut(_ context.Context, key string, lim RateLimit, now time.Time) (time.Duration, error) {
	if !lim.Enabled() {
		return 0, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.keys[key]; s != nil && now.Before(s.lockedUntil) {
		return ceilSecond(s.lockedUntil.Sub(now)), nil
	}
	return 0, nil
}

// Done implements Limiter.
func (m *MemoryLimiter) Done(_ context.Context, key string, lim RateLimit, now time.Time, o Outcome) error {
	if !lim.Enabled() {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.keys[key]
	if s == nil || s.pending == 0 {
		return nil
	}
	s.pending--
	switch o {
	case Failed:
		s.age(now)
		if s.failures == 0 {
			s.first = now
		}
		s.failures++
		s.last = now
		if s.failures >= lim.MaxFailures {
			s.lockouts++
			s.lockedUntil = now.Add(lim.lockout(s.lockouts))
			s.failures, s.first = 0, time.Time{}
		}
	case Succeeded:
		s.failures, s.lockouts, s.first, s.last, s.lockedUntil = 0, 0, time.Time{}, time.Time{}, time.Time{}
	}
	if s.idle() {
		delete(m.keys, key)
	}
	return nil
}

// age ends the failure window once it is over, and forgets the lockouts
// once the key has been quiet for a window.
func (s *limitState) age(now time.Time) {
	if s.failures > 0 && now.Sub(s.first) >= s.window {
		s.failures, s.first = 0, time.Time{}
	}
	if s.quiet(now) {
		s.lockouts, s.lockedUntil, s.last = 0, time.Time{}, time.Time{}
	}
}

// quiet reports whether nothing has happened on the key for its window.
func (s *limitState) quiet(now time.Time) bool {
	t := s.last
	if s.lockedUntil.After(t) {
		t = s.lockedUntil
	}
	return s.pending == 0 && s.failures == 0 && now.Sub(t) >= s.window
}

func (s *limitState) idle() bool {
	return s.pending == 0 && s.failures == 0 && s.lockouts == 0 && s.lockedUntil.IsZero()
}

// makeRoom keeps the map under maxKeys: every 4096 operations, or when it
// is full, it forgets the quiet keys. If it is still full it forgets a
// sixteenth of the keys at once (so that a flood of new keys pays for a
// scan once every maxKeys/16 keys, not at every one), those furthest from
// their lockout first (the most failures still allowed; limits differ, 5
// for an account, 20 for a client): a key that is one failure short of its
// lockout is the last to be forgotten, so a flood of keys cannot wipe the
// count of an account under attack. Keys locked out go only when nothing
// else is left; keys with an attempt in progress never.
func (m *MemoryLimiter) makeRoom(now time.Time) {
	m.ops++
	if m.ops%4096 != 0 && len(m.keys) < m.maxKeys {
		return
	}
	for k, s := range m.keys {
		if s.pending == 0 && (s.idle() || s.quiet(now)) {
			delete(m.keys, k)
		}
	}
	if len(m.keys) < m.maxKeys {
		return
	}
	need := len(m.keys) - m.maxKeys + 1 + m.maxKeys/16
	// byFailures[n] counts the keys that may go with n failures short of
	// their limit's lockout fewer than the most allowed (bucket 0: the
	// furthest from a lockout, 63 or more failures allowed still; the
	// last: one failure short).
	var byFailures [64]int
	bucket := func(s *limitState) int {
		return len(byFailures) - 1 - min(max(s.max-s.failures-1, 0), len(byFailures)-1)
	}
	for _, s := range m.keys {
		if s.pending == 0 && !now.Before(s.lockedUntil) {
			byFailures[bucket(s)]++
		}
	}
	// Forget every key under limit failures, and keys with exactly limit
	// failures until enough are gone.
	limit, below := 0, 0
	for limit < len(byFailures)-1 && below+byFailures[limit] < need {
		below += byFailures[limit]
		limit++
	}
	atLimit := need - below
	for k, s := range m.keys {
		if s.pending != 0 || now.Before(s.lockedUntil) {
			continue
		}
		switch b := bucket(s); {
		case b < limit:
			delete(m.keys, k)
			need--
		case b == limit && atLimit > 0:
			delete(m.keys, k)
			atLimit--
			need--
		}
	}
	for k, s := range m.keys {
		if need <= 0 {
			return
		}
		if s.pending == 0 {
			delete(m.keys, k)
			need--
		}
	}
}

// Len is how many keys the limiter remembers.
func (m *MemoryLimiter) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.keys)
}

func ceilSecond(d time.Duration) time.Duration {
	if r := d % time.Second; r != 0 {
		d += time.Second - r
	}
	return max(d, time.Second)
}

// Names of the limits, as Observer.Throttled reports them.
const (
	LimitLoginAccount = "login_account"
	LimitLoginIP      = "login_ip"
	LimitClient       = "client"
	// LimitKDFQueue counts the password and secret checks refused because
	// too many were waiting for the slow KDF already (answered 503 with
	// Retry-After; see Config and the README's Rate limits).
	LimitKDFQueue = "kdf_queue"
)

// limitedKey is one key an attempt is counted on.
type limitedKey struct {
	name    string // LimitLoginAccount, ...
	key     string
	lim     RateLimit
	success Outcome // Succeeded or Released
}

// limitKey makes a limiter key of a kind and a value; long values are
// hashed, so keys stay small whatever a request sends.
func limitKey(kind, v string) string {
	if len(v) > 64 {
		sum := sha256.Sum256([]byte(v))
		v = "sha256:" + hex.EncodeToString(sum[:])
	}
	return kind + ":" + v
}

// accountKey is the per-account limit's key: the account the store found
// for the username (its ID: the store decides which spellings name it, so
// "Admin" counts against admin's account where the store matches case
// blindly, and against an account of its own where it does not), else
// the name as typed. (Not lowercased: failures of "ALICE", a name nobody
// has, would then lock "alice" only if alice did not exist, which tells
// who does.)
func (p *Provider) accountKey(username string, u *User) limitedKey {
	if u != nil {
		return limitedKey{LimitLoginAccount, limitKey("account", u.ID), p.cfg.LoginLimit, Succeeded}
	}
	return limitedKey{LimitLoginAccount, limitKey("user", username), p.cfg.LoginLimit, Succeeded}
}

func (p *Provider) ipKey(r *http.Request) limitedKey {
	return limitedKey{LimitLoginIP, limitKey("ip", ipNetwork(ClientIP(r.Context()))), p.cfg.LoginIPLimit, Released}
}

// ipSiteKeys are the keys of the IPv6 /48 around the client's /64, with
// siteFactor times the per-IP limit: whoever holds a /48 (a site's usual
// assignment: 65,536 /64s) would otherwise have that many times the
// per-IP guesses, and keep the password checks of everyone else waiting.
// None for an IPv4 client, whose address is the network.
func (p *Provider) ipSiteKeys(r *http.Request) []limitedKey {
	a, err := netip.ParseAddr(ClientIP(r.Context()))
	if err != nil || !a.Is6() || a.Is4In6() {
		return nil
	}
	lim := p.cfg.LoginIPLimit
	if lim.MaxFailures <= 0 {
		return nil
	}
	lim.MaxFailures *= siteFactor
	pfx, _ := a.Prefix(48)
	return []limitedKey{{LimitLoginIP, limitKey("ip", pfx.String()), lim, Released}}
}

// siteFactor is how many times the per-IP login limit an IPv6 /48 may
// reach in all.
const siteFactor = 16

// ipNetwork is what the per-IP limit counts: an IPv4 address, or the /64
// of an IPv6 address (one subscriber usually holds a whole /64).
func ipNetwork(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() {
		return ip
	}
	pfx, _ := a.Prefix(64)
	return pfx.String()
}

// clientKey is the key wrong secrets are counted on: a client_id from one
// client IP network (see ipNetwork), or, for a client_id no client has,
// every unknown client_id from that network together. Counted per client
// alone, anyone who knows a client_id (they are public, in every
// authorization URL) could keep that client locked out with a few wrong
// secrets a minute; this way a guesser locks out only itself, and names
// it makes up take one key per network, not one each.
func (p *Provider) clientKey(r *http.Request, id string, known bool) limitedKey {
	key := unknownClientLimitKey
	if known {
		key = clientLimitKey(id)
	}
	return p.clientKeyed(r, key)
}

// clientKeyed is clientKey with the client's part of the key made (see
// clientCache.getKeyed).
func (p *Provider) clientKeyed(r *http.Request, key string) limitedKey {
	return limitedKey{LimitClient, key + " from " + ipNetwork(ClientIP(r.Context())), p.cfg.ClientLimit, Succeeded}
}

// clientCeilingKey is the key every wrong secret of a known client is
// counted on too, from wherever it comes: clientCeiling times the client
// limit. Per network alone, whoever holds many networks (an IPv6 /48 is
// 65,536 /64s) would have that many times the guesses. The ceiling is
// checked only for secrets the server has not verified before: a client
// whose secret is cached keeps working through it (see knownClient), and a
// success does not reset it, only time does.
func (p *Provider) clientCeilingKey(id string) limitedKey {
	lim := p.cfg.ClientLimit
	if lim.MaxFailures > 0 {
		lim.MaxFailures *= clientCeiling
	}
	return limitedKey{LimitClient, clientLimitKey(id) + " from anywhere", lim, Released}
}

// clientCeiling is how many times the per-network client limit a client's
// wrong secrets from all networks together may reach.
const clientCeiling = 10

// clientLimitKey is the client's part of its rate limit keys.
func clientLimitKey(id string) string { return limitKey("client", id) }

// unknownClientLimitKey is clientLimitKey for every client_id that names
// no client.
const unknownClientLimitKey = "client?"

// attempt is an attempt reserved on some keys.
type attempt struct {
	p    *Provider
	keys []limitedKey
}

// reserve takes an attempt on every key. When one refuses, it gives back
// the ones taken and returns how long to wait.
func (p *Provider) reserve(r *http.Request, keys ...limitedKey) (*attempt, time.Duration, error) {
	ctx := r.Context()
	a := &attempt{p: p}
	for _, k := range keys {
		wait, err := p.limiter.Reserve(ctx, k.key, k.lim, p.now())
		if err == nil && wait > 0 {
			p.throttled(k.name)
			p.logThrottled(ctx, k.name, wait)
		}
		if err != nil || wait > 0 {
			a.done(ctx, Released)
			return nil, wait, err
		}
		a.keys = append(a.keys, k)
	}
	return a, 0, nil
}

// end ends the attempt on every key: when ok (the credential was right)
// each key gets its success outcome, else each counts a failure.
func (a *attempt) end(ctx context.Context, ok bool) {
	if ok {
		for _, k := range a.keys {
			a.report(ctx, k, k.success)
		}
		return
	}
	a.done(ctx, Failed)
}

// done ends the attempt on every key with the same outcome.
func (a *attempt) done(ctx context.Context, o Outcome) {
	for _, k := range a.keys {
		a.report(ctx, k, o)
	}
}

func (a *attempt) report(ctx context.Context, k limitedKey, o Outcome) {
	// A canceled request must still end its attempt, or the slot leaks.
	if err := a.p.limiter.Done(context.WithoutCancel(ctx), k.key, k.lim, a.p.now(), o); err != nil {
		a.p.log.Error("rate limiter", "request_id", RequestID(ctx), "error", err.Error())
	}
}

// tooManyAttempts is the JSON answer to a throttled request: 429 with
// Retry-After.
func tooManyAttempts(wait time.Duration) *Error {
	return &Error{Code: ErrorTemporarilyUnavailable, Description: "too many failed attempts; try again later",
		Status: http.StatusTooManyRequests, RetryAfter: wait}
}

// retryAfter formats a Retry-After header value (RFC 9110 §10.2.3).
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(int64(ceilSecond(d)/time.Second), 10)
}

// checkPasswordLimited is checkPassword behind the login limits: it
// reserves an attempt for the account and the client IP before the
// password is checked, and returns wait > 0 without checking anything
// when either is throttled. With fromBrowser (the login page), a valid
// device cookie for the account the username names puts the attempt on
// the cookie's own count instead of the account's (see device.go).
func (p *Provider) checkPasswordLimited(r *http.Request, username, password string, fromBrowser bool) (*User, time.Duration, error) {
	// The client's address first: a throttled address costs no store
	// read. Then the account the username names, which takes one.
	a, wait, err := p.reserve(r, append([]limitedKey{p.ipKey(r)}, p.ipSiteKeys(r)...)...)
	if err != nil || wait > 0 {
		return nil, wait, err
	}
	u, err := found(p.store.UserByUsername(r.Context(), username))
	if errors.Is(err, ErrNotFound) || username == "" {
		u = nil
	} else if err != nil {
		a.done(r.Context(), Released)
		return nil, 0, err
	}
	key := p.accountKey(username, u)
	if fromBrowser && u != nil {
		if dk, ok := p.device(r, u); ok {
			key = dk
		}
	}
	acct, wait, err := p.reserve(r, key)
	if err != nil || wait > 0 {
		a.done(r.Context(), Released)
		return nil, wait, err
	}
	a.keys = append(a.keys, acct.keys...)
	u, err = p.checkPassword(r, u, password)
	if err != nil {
		a.done(r.Context(), Released)
		return nil, 0, err
	}
	a.end(r.Context(), u != nil)
	if u == nil {
		p.loginFailed()
	}
	return u, 0, nil
}

// loginThrottled answers a login form posted while its account or IP is
// locked out: the login page again, with the too_many_attempts message,
// status 429 and Retry-After. The password was not checked.
func (p *Provider) loginThrottled(w http.ResponseWriter, r *http.Request, ar *AuthRequest, browser, id, username string, wait time.Duration) {
	var client *Client
	if ar != nil {
		if c, err := found(p.store.Client(r.Context(), ar.ClientID)); err == nil {
			client = c
		}
	}
	w.Header().Set("Retry-After", retryAfter(wait))
	p.cfg.Pages.Login(w, r, &LoginPage{Page: p.page(r, http.StatusTooManyRequests, ar), Action: LoginPath, AuthReqID: id,
		CSRF: csrfToken(browser, "login", id), Username: username, Error: "too_many_attempts", RetryAfter: wait, Client: client})
}

// logThrottled logs a throttled attempt: one line a second at most, with
// the count of those left out since (a flood of guesses made one line
// each, 79,000 in 12 s); the metrics count every one.
func (p *Provider) logThrottled(ctx context.Context, limit string, wait time.Duration) {
	now := time.Now().UnixNano()
	last := p.throttleLogged.Load()
	if now-last < int64(time.Second) || !p.throttleLogged.CompareAndSwap(last, now) {
		p.throttleSkipped.Add(1)
		return
	}
	attrs := []any{"request_id", RequestID(ctx), "limit", limit, "retry_after_s", int64(wait / time.Second)}
	if n := p.throttleSkipped.Swap(0); n > 0 {
		attrs = append(attrs, "left_out", n)
	}
	p.log.Info("attempt throttled", attrs...)
}
