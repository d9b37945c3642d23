package oauthd

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP returns the address of the client that made the request, as
// the Provider determined it (see Config.TrustedProxies); it is in every
// request's log line and keys the per-IP login limit.
func ClientIP(ctx context.Context) string {
	if rs, ok := ctx.Value(requestKey).(*requestState); ok {
		return rs.ip
	}
	return ""
}

// clientIP is the peer's address, or, when the peer is a trusted proxy,
// the address it says it forwarded for: X-Forwarded-For is read from the
// right, skipping trusted proxies, and the first address that is not one
// is the client. A malformed entry stops the walk at the last trusted hop.
// Nothing else is taken from the proxy: the issuer, and so the scheme and
// host of every URL oauthd makes, always comes from the configuration.
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	peer, ok := parseAddr(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if !isTrusted(peer, trusted) {
		// The usual case, an IPv4 peer "a.b.c.d:port": netip accepts only
		// the canonical dotted form, so a host part that parses to the
		// peer is the answer already, with no string to build.
		if host, _, ok := strings.Cut(r.RemoteAddr, ":"); ok && peer.Is4() {
			if a, err := netip.ParseAddr(host); err == nil && a == peer {
				return host
			}
		}
		return peer.String()
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	ip := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseAddr(strings.TrimSpace(hops[i]))
		if !ok {
			break
		}
		ip = a
		if !isTrusted(a, trusted) {
			break
		}
	}
	return ip.String()
}

// parseAddr parses an IP address, with or without a port.
func parseAddr(s string) (netip.Addr, bool) {
	// With a port first: a request's RemoteAddr always has one, and a
	// failed parse costs an error allocation.
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		if a, err := netip.ParseAddr(s); err == nil {
			return a.Unmap().WithZone(""), true
		}
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
