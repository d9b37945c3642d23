package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/ui"
)

// A Warning is about a setting that serve accepts but that is likely a
// mistake: serve logs it at start, and `oauthd config check` prints it.
type Warning struct {
	Key string // the configuration key it is about
	Msg string
}

func (w Warning) String() string { return "config: " + w.Key + ": " + w.Msg }

// listensEverywhere reports whether a listen address has no host or a
// wildcard one (0.0.0.0, ::): the server listens on every interface.
func listensEverywhere(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsUnspecified()
}

// ListensEverywhere reports whether addr has no host or a wildcard one,
// so that the server listens on every interface: issuer then has no
// default, and serve refuses to start without it.
func (c *Config) ListensEverywhere() bool { return listensEverywhere(c.Addr) }

// checkDefaultIssuer fails when issuer is not set and serve could not
// derive it from addr: addr listens on every interface (the default would
// be http(s)://localhost:PORT, which remote clients cannot use, and which
// would pass for a loopback issuer), or the derived issuer is refused
// (http on an address that is not loopback).
func (c *Config) checkDefaultIssuer() error {
	if c.Issuer != "" {
		return nil
	}
	def := issuerFor(c.Addr, c.TLSCertFile != "")
	if listensEverywhere(c.Addr) {
		return &keyError{"issuer", fmt.Sprintf("not set, and addr %q listens on every interface, so there is no default: set issuer (OAUTHD_ISSUER or --issuer) to the URL clients use, or to %s for a try on this machine",
			c.Addr, def)}
	}
	if err := oauthd.ValidateIssuer(def); err != nil {
		return &keyError{"issuer", fmt.Sprintf("not set, and the default from addr %q is refused: %s; set issuer to the public https URL, or serve TLS (tls.cert_file)",
			c.Addr, strings.TrimPrefix(err.Error(), "oauthd: "))}
	}
	return nil
}

// issuerHost is the host name of the issuer serve would use ("" if none).
func (c *Config) issuerHost() string {
	iss := c.Issuer
	if iss == "" {
		iss = issuerFor(c.Addr, c.TLSCertFile != "")
	}
	u, err := url.Parse(iss)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// privateIPv6 are the IPv6 ranges shorter than /16 that are not public:
// unique local and link-local addresses.
var privateIPv6 = []netip.Prefix{netip.MustParsePrefix("fc00::/7"), netip.MustParsePrefix("fe80::/10")}

// broadProxyPrefix says what a trusted_proxies prefix covers when it is so
// wide that clients, not only proxies, are in it: the whole address space
// (/0), or a big part of the public one (IPv4 shorter than /8, IPv6 shorter
// than /16, except the private IPv6 ranges).
func broadProxyPrefix(p netip.Prefix) (string, bool) {
	family := "IPv4"
	if p.Addr().Is6() {
		family = "IPv6"
	}
	switch {
	case p.Bits() == 0:
		return "every " + family + " address", true
	case p.Addr().Is4() && p.Bits() < 8:
		return "a large part of the public IPv4 addresses", true
	case p.Addr().Is6() && p.Bits() < 16:
		for _, q := range privateIPv6 {
			if p.Bits() >= q.Bits() && q.Contains(p.Addr()) {
				return "", false
			}
		}
		return "a large part of the public IPv6 addresses", true
	}
	return "", false
}

// configWarnings are the warnings about the settings themselves, which
// serve logs at start: a trusted_proxies prefix that lets clients choose
// their IP, and a TLS private key that its group or others can read.
func (c *Config) configWarnings() []Warning {
	var ws []Warning
	for _, p := range c.Provider.TrustedProxies {
		if what, ok := broadProxyPrefix(p); ok {
			ws = append(ws, Warning{"trusted_proxies", fmt.Sprintf("%s covers %s: any client can then choose the IP it is logged and rate-limited as, by sending X-Forwarded-For; list only the reverse proxies' addresses",
				p, what)})
		}
	}
	if u, err := url.Parse(c.Issuer); err == nil && u.Host != "" {
		canon := *u
		canon.Scheme, canon.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		if p := canon.Port(); (canon.Scheme == "https" && p == "443") || (canon.Scheme == "http" && p == "80") {
			canon.Host = canon.Hostname()
			if strings.Contains(canon.Host, ":") {
				canon.Host = "[" + canon.Host + "]"
			}
		}
		if s := canon.String(); s != c.Issuer {
			ws = append(ws, Warning{"issuer", fmt.Sprintf("%s is used as written, and clients compare it byte for byte with what they are configured with and what discovery says: write it %s, as most clients and libraries will", c.Issuer, s)})
		}
	}
	if c.Provider.IDTokenTTL > oauthd.SigningKeyRetention {
		ws = append(ws, Warning{"lifetimes.id_token_ttl", fmt.Sprintf("%s is longer than the %s a signing key stays published past the expiry it was made with: if ID tokens lived shorter before, those signed by keys made then stop verifying before they expire; ID tokens are meant to be short-lived (minutes to hours)",
			c.Provider.IDTokenTTL, oauthd.SigningKeyRetention)})
	}
	if c.TLSCertFile != "" && strings.HasPrefix(strings.ToLower(c.Issuer), "http://") {
		ws = append(ws, Warning{"issuer", fmt.Sprintf("%s is an http URL while tls.cert_file makes the server answer https only: discovery, redirects and the tokens' iss name http URLs nobody can reach; write the issuer with https://", c.Issuer)})
	}
	for _, k := range slices.Sorted(maps.Keys(c.UI.ScopeDescriptions)) {
		if _, tag, ok := strings.Cut(k, "#"); ok && !slices.Contains(ui.Locales(), tag) {
			ws = append(ws, Warning{"ui.scope_descriptions", fmt.Sprintf("%s: the pages have no language %q (they are in %s): as a description in that language, it is never shown",
				k, tag, strings.Join(ui.Locales(), ", "))})
		}
	}
	if c.TLSKeyFile != "" {
		if mode, exposed := keyFileExposed(c.TLSKeyFile); exposed {
			ws = append(ws, Warning{"tls.key_file", fmt.Sprintf("%s is readable by its group or by others (mode %04o): make it readable by the server's user only (chmod 600)",
				c.TLSKeyFile, mode)})
		}
	}
	return ws
}

// DeploymentWarnings are what `oauthd config check` warns of, besides
// the errors of CheckDeployment: the warnings serve logs at start about the
// settings, and about the TLS certificate (it expires within 14 days, or
// no name of it matches the issuer's host) at now.
func (c *Config) DeploymentWarnings(now time.Time) []Warning {
	ws := c.configWarnings()
	if leaf := c.certificate(); leaf != nil {
		for _, f := range certFindings(leaf, now, c.issuerHost()) {
			if !f.unusable {
				ws = append(ws, Warning{"tls.cert_file", c.TLSCertFile + ": " + f.msg})
			}
		}
	}
	return ws
}

// certificate is the leaf certificate of tls.cert_file, or nil if there is
// none or it does not load (Validate says why).
func (c *Config) certificate() *x509.Certificate {
	if c.TLSCertFile == "" {
		return nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil
		}
	}
	return cert.Leaf
}
