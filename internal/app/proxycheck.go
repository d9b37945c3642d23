package app

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// maxWarnedPeers bounds the peers proxyCheck remembers having warned
// about; past it, it warns about no new peer (a client cannot fill the
// memory, nor the log, by sending the headers from many addresses).
const maxWarnedPeers = 16

// proxyCheck serves next, and logs a warning when the requests show that
// the configuration does not fit the reverse proxy in front of oauthd. It
// only reads the headers for those warnings: the client IP is the
// Provider's (oauthd.ClientIP), and every URL comes from the issuer.
//
//   - A peer that is not in trusted_proxies sends X-Forwarded-For,
//     Forwarded or X-Real-IP: the header is ignored, so every client behind
//     that peer has its address in the log and one count in the per-IP
//     rate limits (login_ip, and client with its client_id), and one
//     client's failures lock all of them out. One warning per peer, for at
//     most maxWarnedPeers peers.
//   - A trusted proxy sends Forwarded or X-Real-IP but no X-Forwarded-For,
//     the only header oauthd reads: the same, one warning per peer.
//   - A request carries X-Forwarded-Proto with another scheme than the
//     issuer's, or X-Forwarded-Host with another host: clients are sent to
//     the issuer's URLs, not to those they used. One warning per process.
type proxyCheck struct {
	next    http.Handler
	log     *slog.Logger
	trusted []netip.Prefix
	issuer  string
	// scheme is the issuer's scheme, host its host name in lower case
	// and port its port (the scheme's default if it names none).
	scheme, host, port string

	issuerWarned atomic.Bool
	peersDone    atomic.Bool // maxWarnedPeers peers warned about: no more checks
	mu           sync.Mutex
	peers        map[netip.Addr]bool // the peers warned about
}

func newProxyCheck(next http.Handler, log *slog.Logger, issuer string, trusted []netip.Prefix) *proxyCheck {
	c := &proxyCheck{next: next, log: log, trusted: trusted, issuer: strings.TrimSuffix(issuer, "/"), peers: map[netip.Addr]bool{}}
	if u, err := url.Parse(issuer); err == nil {
		c.scheme, c.host, c.port = u.Scheme, strings.ToLower(u.Hostname()), u.Port()
		if c.port == "" {
			c.port = defaultPort(u.Scheme)
		}
	} else {
		c.issuerWarned.Store(true) // no issuer to compare with (never so after oauthd.New)
	}
	return c
}

func defaultPort(scheme string) string {
	if scheme == "https" {
		return "443"
	}
	return "80"
}

func (c *proxyCheck) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := r.Header
	// Direct lookups of the canonical names: no allocation for the usual
	// request, which has none of these headers.
	if !c.peersDone.Load() {
		if _, xff := h["X-Forwarded-For"]; xff {
			c.checkPeer(r, "X-Forwarded-For", true)
		} else if _, ok := h["Forwarded"]; ok {
			c.checkPeer(r, "Forwarded", false)
		} else if _, ok := h["X-Real-Ip"]; ok {
			c.checkPeer(r, "X-Real-IP", false)
		}
	}
	if !c.issuerWarned.Load() {
		_, proto := h["X-Forwarded-Proto"]
		_, host := h["X-Forwarded-Host"]
		if proto || host {
			// Only from an address a proxy of this server can have: a
			// client on the internet could otherwise spend the one
			// warning with a made-up header.
			if peer, ok := peerAddr(r.RemoteAddr); ok && c.maybeProxy(peer) {
				c.checkForwarded(r)
			}
		}
	}
	c.next.ServeHTTP(w, r)
}

// checkPeer warns, once per peer, when the request's peer is not a trusted
// proxy (and so header, which names a client, is ignored), or is one but
// sent header instead of X-Forwarded-For (xff false). The header's value
// is never logged: a client may write anything there.
func (c *proxyCheck) checkPeer(r *http.Request, header string, xff bool) {
	peer, ok := peerAddr(r.RemoteAddr)
	if !ok {
		return
	}
	trusted := false
	for _, p := range c.trusted {
		if p.Contains(peer) {
			trusted = true
			break
		}
	}
	if trusted && xff {
		return // as it should be
	}
	if !trusted && !c.maybeProxy(peer) {
		// A client on the internet sending the header itself: not a
		// proxy of this server, and not to be named as one.
		return
	}
	c.mu.Lock()
	if c.peers[peer] || len(c.peers) >= maxWarnedPeers {
		c.mu.Unlock()
		return
	}
	c.peers[peer] = true
	if len(c.peers) >= maxWarnedPeers {
		c.peersDone.Store(true)
	}
	c.mu.Unlock()
	if trusted {
		c.log.Warn(fmt.Sprintf("request from the trusted proxy %s carries %s but no X-Forwarded-For, the only header oauthd reads: every client behind it shares one rate-limit count (rate_limit.login_ip, rate_limit.client); make the proxy set X-Forwarded-For",
			peer, header), "peer", peer.String())
		return
	}
	c.log.Warn(fmt.Sprintf("request from %s carries %s, which is ignored: %s is not in trusted_proxies; if it is your reverse proxy, every client behind it shares one rate-limit count (rate_limit.login_ip, rate_limit.client) and one client's failures lock out all: add it to trusted_proxies",
		peer, header, peer), "peer", peer.String())
}

// maybeProxy reports whether peer can be a reverse proxy of this server:
// a trusted proxy, or an address of a private network (loopback, RFC 1918,
// IPv6 unique local, link-local), where proxies of a server stand.
func (c *proxyCheck) maybeProxy(peer netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return peer.IsLoopback() || peer.IsPrivate() || peer.IsLinkLocalUnicast()
}

// peerAddr is the IP address of a request's RemoteAddr, IPv4-mapped
// addresses as IPv4.
func peerAddr(remote string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// checkForwarded warns, once per process, when X-Forwarded-Proto or
// X-Forwarded-Host say the request reached the proxy at another scheme or
// host than the issuer's. A value that is not a scheme or a host name is
// ignored (and never logged).
func (c *proxyCheck) checkForwarded(r *http.Request) {
	proto := strings.ToLower(firstField(r.Header.Get("X-Forwarded-Proto")))
	if proto != "http" && proto != "https" {
		proto = ""
	}
	host := firstField(r.Header.Get("X-Forwarded-Host"))
	if !plausibleHost(host) {
		host = ""
	}
	scheme := proto
	if scheme == "" {
		scheme = c.scheme
	}
	mismatch := proto != "" && proto != c.scheme
	if host != "" {
		name, port := host, defaultPort(scheme)
		if h, p, err := net.SplitHostPort(host); err == nil {
			name, port = h, p
		} else {
			name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		}
		mismatch = mismatch || !strings.EqualFold(name, c.host) || port != c.port
	}
	if !mismatch || !c.issuerWarned.CompareAndSwap(false, true) {
		return
	}
	if host != "" {
		c.log.Warn(fmt.Sprintf("requests arrive as %s://%s (X-Forwarded-Proto/Host) but the issuer is %s: set issuer to the URL clients use",
			scheme, host, c.issuer))
		return
	}
	c.log.Warn(fmt.Sprintf("requests arrive over %s (X-Forwarded-Proto) but the issuer is %s: set issuer to the URL clients use", proto, c.issuer))
}

// firstField is the first of a header's comma-separated values (the one a
// chain of proxies got from the client), trimmed.
func firstField(v string) string {
	v, _, _ = strings.Cut(v, ",")
	return strings.TrimSpace(v)
}

// plausibleHost reports whether s can be a host[:port] as a proxy writes
// it: a name or an address of letters, digits, '.', '-', ':', '[' and ']',
// at most 262 bytes. Anything else is not compared, nor logged.
func plausibleHost(s string) bool {
	if s == "" || len(s) > 262 {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == ':' || b == '[' || b == ']') {
			return false
		}
	}
	return true
}
