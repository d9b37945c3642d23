package oauthd

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// MatchRedirectURI reports whether requested is one of the registered
// redirect URIs. URIs are compared as exact strings (RFC 9700 §4.1.3),
// except that for a registered loopback IP redirect URI
// (http://127.0.0.1/... or http://[::1]/...) any port is accepted
// (RFC 8252 §7.3).
func MatchRedirectURI(registered []string, requested string) bool {
	if requested == "" {
		return false
	}
	for _, r := range registered {
		if r == requested {
			return true
		}
	}
	req, ok := loopback(requested)
	if !ok {
		return false
	}
	for _, r := range registered {
		if reg, ok := loopback(r); ok && reg == req {
			return true
		}
	}
	return false
}

// redirectAllowed reports whether uri is one of c's redirect URIs: an
// exact match, or for a public client (a native app, RFC 8252 §7.3, which
// takes a free port when it starts) a loopback IP URI on any port. A
// confidential client is a server-side application with a port of its
// own: its URIs match exactly (OIDC Core §3.1.2.1, RFC 9700 §4.1.3).
func redirectAllowed(c *Client, uri string) bool {
	if c.Public {
		return MatchRedirectURI(c.RedirectURIs, uri)
	}
	return uri != "" && slices.Contains(c.RedirectURIs, uri)
}

// loopback parses s as an http URI whose host is a loopback IP literal,
// with nothing but a scheme, host, optional port, path and query, and
// returns s without its port: two such URIs match when these strings are
// equal byte for byte.
func loopback(s string) (string, bool) {
	var prefix string
	switch {
	case strings.HasPrefix(s, "http://127.0.0.1"):
		prefix = "http://127.0.0.1"
	case strings.HasPrefix(s, "http://[::1]"):
		prefix = "http://[::1]"
	default:
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.RawFragment != "" ||
		strings.Contains(s, "#") || u.Opaque != "" {
		return "", false
	}
	h := u.Hostname()
	if h != "127.0.0.1" && h != "::1" {
		return "", false
	}
	rest := s[len(prefix):]
	if p := u.Port(); p != "" {
		for _, c := range p {
			if c < '0' || c > '9' {
				return "", false
			}
		}
		// A port a browser can redirect to: 1-65535, written without
		// leading zeros (":0080" is not the ":80" it would reach).
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 || p[0] == '0' {
			return "", false
		}
		if !strings.HasPrefix(rest, ":"+p) {
			return "", false
		}
		rest = rest[1+len(p):]
	} else if strings.HasSuffix(u.Host, ":") {
		return "", false
	}
	if rest != "" && rest[0] != '/' && rest[0] != '?' {
		return "", false
	}
	return prefix + rest, true
}

// ValidateRedirectURI checks a redirect URI for registration: an absolute
// URI without a fragment (RFC 6749 §3.1.2) or user information. Plain http
// is accepted only for loopback hosts and localhost (RFC 8252 §7.3,
// OAuth 2.1 §2.3.1); private-use schemes (com.example.app:/cb) are
// accepted for native apps.
func ValidateRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("oauthd: redirect URI %q is not a valid URI", s)
	}
	switch {
	case !u.IsAbs():
		return fmt.Errorf("oauthd: redirect URI %q is not absolute", s)
	case strings.Contains(s, "#"):
		return fmt.Errorf("oauthd: redirect URI %q has a fragment", s)
	case u.User != nil:
		return fmt.Errorf("oauthd: redirect URI %q has user information", s)
	case !validText(s) || strings.ContainsAny(s, " \t\r\n"):
		return fmt.Errorf("oauthd: redirect URI %q has spaces or control characters", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("oauthd: redirect URI %q has port %s; want 1-65535", s, p)
		}
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("oauthd: redirect URI %q has no host", s)
		}
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); !(strings.EqualFold(h, "localhost") || ip != nil && ip.IsLoopback()) {
			return fmt.Errorf("oauthd: redirect URI %q uses http on a host that is not loopback; use https", s)
		}
	case "javascript", "data", "vbscript", "file":
		return fmt.Errorf("oauthd: redirect URI %q has a forbidden scheme", s)
	default:
		// A private-use URI scheme of a native app (RFC 8252 §7.1).
		if !strings.Contains(u.Scheme, ".") {
			return fmt.Errorf("oauthd: redirect URI %q: a private-use scheme must be a reverse domain name (RFC 8252 §7.1)", s)
		}
	}
	return nil
}

// responseParams are the parameters the server's authorization answers
// add to a redirect URI's query (RFC 6749 §4.1.2, §4.1.2.1, RFC 9207; the
// implicit and hybrid answers' in a fragment, but a response_mode may put
// an error in the query). logoutParams are those a logout adds to a
// post-logout redirect URI (RP-Initiated Logout §3).
var (
	responseParams = []string{"code", "state", "iss", "error", "error_description", "error_uri", "scope",
		"access_token", "token_type", "expires_in", "id_token"}
	logoutParams = []string{"state"}
)

// answerParamInQuery returns the first parameter of a registered URI's
// query that is one of the names the server's answers add to it: the
// answer would carry it twice, and a client reading the first value (as
// most do) would take the registered one for the server's (a code, or an
// iss that defeats the mix-up defence of RFC 9207). Client.Validate
// refuses such a registration; a URI stored without it is still served.
func answerParamInQuery(q string, names []string) (string, bool) {
	for q != "" {
		var kv string
		kv, q, _ = strings.Cut(q, "&")
		name, _, _ := strings.Cut(kv, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if slices.Contains(names, name) {
			return name, true
		}
	}
	return "", false
}
