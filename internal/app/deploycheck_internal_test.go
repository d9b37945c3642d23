package app

import (
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestListensEverywhere(t *testing.T) {
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{":8000", true},
		{"0.0.0.0:8000", true},
		{"[::]:8000", true},
		{"[0:0:0:0:0:0:0:0]:8000", true},
		{"localhost:8000", false},
		{"127.0.0.1:8000", false},
		{"[::1]:8000", false},
		{"10.1.2.3:8000", false},
		{"auth.example.com:443", false},
	} {
		if got := listensEverywhere(tt.addr); got != tt.want {
			t.Errorf("listensEverywhere(%q) = %v; want %v", tt.addr, got, tt.want)
		}
	}
}

// Without issuer, an addr on every interface is refused (its default
// would be localhost, which remote clients cannot use), naming what to
// set; so is an http default off loopback. A loopback addr, TLS on an
// address, or an issuer pass.
func TestCheckDefaultIssuer(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    Config
		wantEr string // "" for no error
	}{
		{"no host without issuer is refused", Config{Addr: ":8000"},
			`config: issuer: not set, and addr ":8000" listens on every interface, so there is no default: set issuer (OAUTHD_ISSUER or --issuer) to the URL clients use, or to http://localhost:8000 for a try on this machine`},
		{"0.0.0.0 without issuer is refused", Config{Addr: "0.0.0.0:8000"}, `addr "0.0.0.0:8000" listens on every interface`},
		{"[::] without issuer is refused", Config{Addr: "[::]:8000"}, `addr "[::]:8000" listens on every interface`},
		{"every interface with TLS without issuer is refused", Config{Addr: ":443", TLSCertFile: "c", TLSKeyFile: "k"}, "or to https://localhost:443 for a try on this machine"},
		{"every interface with issuer passes", Config{Addr: ":8000", Issuer: "https://auth.example.com"}, ""},
		{"loopback without issuer passes", Config{Addr: "127.0.0.1:8000"}, ""},
		{"localhost without issuer passes", Config{Addr: "localhost:8000"}, ""},
		{"http off loopback without issuer is refused", Config{Addr: "10.1.2.3:8000"}, `config: issuer: not set, and the default from addr "10.1.2.3:8000" is refused`},
		{"TLS off loopback without issuer passes", Config{Addr: "10.1.2.3:8443", TLSCertFile: "c", TLSKeyFile: "k"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.checkDefaultIssuer()
			switch {
			case tt.wantEr == "" && err != nil:
				t.Errorf("error %v; want none", err)
			case tt.wantEr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantEr)):
				t.Errorf("error %v; want one with %q", err, tt.wantEr)
			}
		})
	}
}

// serve (Open) refuses an addr on every interface without issuer before
// it listens or opens anything.
func TestOpenRefusesEveryInterfaceWithoutIssuer(t *testing.T) {
	_, err := open(t.Context(), Config{Addr: "0.0.0.0:0"}, newFakeStore(), &logBuf{})
	if err == nil || !strings.HasPrefix(err.Error(), `config: issuer: not set, and addr "0.0.0.0:0" listens on every interface`) {
		t.Errorf("error %v; want the issuer is required", err)
	}
}

// A trusted_proxies prefix that covers every address, or a large public
// part of them, lets clients choose their IP: it is warned about; private
// ranges and single addresses are not.
func TestBroadProxyPrefix(t *testing.T) {
	for _, tt := range []struct {
		prefix string
		want   string // "" for not broad
	}{
		{"0.0.0.0/0", "every IPv4 address"},
		{"::/0", "every IPv6 address"},
		{"0.0.0.0/1", "a large part of the public IPv4 addresses"},
		{"8.0.0.0/7", "a large part of the public IPv4 addresses"},
		{"2000::/3", "a large part of the public IPv6 addresses"},
		{"2001::/15", "a large part of the public IPv6 addresses"},
		{"10.0.0.0/8", ""},
		{"0.0.0.0/8", ""},
		{"172.16.0.0/12", ""},
		{"127.0.0.1/32", ""},
		{"fc00::/7", ""},
		{"fd00::/8", ""},
		{"fe80::/10", ""},
		{"2001:db8::/32", ""},
		{"::1/128", ""},
	} {
		what, broad := broadProxyPrefix(netip.MustParsePrefix(tt.prefix))
		if broad != (tt.want != "") || what != tt.want {
			t.Errorf("broadProxyPrefix(%s) = %q, %v; want %q", tt.prefix, what, broad, tt.want)
		}
	}
}

// serve logs the configuration's warnings at start: a trusted_proxies
// prefix that covers every address.
func TestOpenWarnsOfBroadTrustedProxies(t *testing.T) {
	var logs logBuf
	cfg := Config{Addr: "127.0.0.1:0", LogFormat: "json"}
	cfg.Provider.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("0.0.0.0/0")}
	m, err := open(t.Context(), cfg, newFakeStore(), &logs)
	if err != nil {
		t.Fatal(err)
	}
	m.Shutdown(t.Context())
	want := "config: trusted_proxies: 0.0.0.0/0 covers every IPv4 address: any client can then choose the IP it is logged and rate-limited as, by sending X-Forwarded-For; list only the reverse proxies' addresses"
	if ws := logs.warnings(t); len(ws) != 1 || ws[0] != want {
		t.Errorf("warnings %q; want %q", ws, want)
	}
}

// A TLS private key its group or others can read is warned about.
func TestKeyFileWarning(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no permission bits")
	}
	now := time.Now()
	for _, tt := range []struct {
		name string
		mode os.FileMode
		want bool
	}{
		{"key readable by its owner only is fine", 0o600, false},
		{"key read-only for its owner is fine", 0o400, false},
		{"key readable by its group is warned about", 0o640, true},
		{"key readable by all is warned about", 0o644, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			certFile, keyFile := writeCertFiles(t, t.TempDir(), certSpec{ips: []string{"127.0.0.1"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(60 * 24 * time.Hour)}, tt.mode)
			c := Config{Addr: "127.0.0.1:8443", TLSCertFile: certFile, TLSKeyFile: keyFile}
			ws := c.configWarnings()
			if got := len(ws) == 1 && ws[0].Key == "tls.key_file" && strings.Contains(ws[0].Msg, keyFile+" is readable by its group or by others"); got != tt.want {
				t.Errorf("warnings %v; want the key file's: %v", ws, tt.want)
			}
		})
	}
}

// config check refuses a certificate that has expired or is not valid
// yet, and warns of one that expires within 14 days or does not name the
// issuer's host.
// An issuer written other than in its usual form (a default port, capital
// letters in the scheme or host) is warned of: clients compare issuers
// byte for byte (OIDC Discovery §4.3), most with the usual form.
func TestUnusualIssuerFormWarned(t *testing.T) {
	for issuer, want := range map[string]string{
		"https://auth.example.com:443":  "write it https://auth.example.com,",
		"https://AUTH.example.com":      "write it https://auth.example.com,",
		"HTTP://localhost:80":           "write it http://localhost,",
		"https://auth.example.com":      "",
		"https://auth.example.com:8443": "",
		"http://127.0.0.1:8000":         "",
	} {
		c := Config{Issuer: issuer, Addr: "127.0.0.1:8000", DB: filepath.Join(t.TempDir(), "o.db")}
		var got []string
		for _, w := range c.DeploymentWarnings(time.Now()) {
			if w.Key == "issuer" {
				got = append(got, w.Msg)
			}
		}
		switch {
		case want == "" && len(got) != 0:
			t.Errorf("%s: warnings %q; want none", issuer, got)
		case want != "" && (len(got) != 1 || !strings.Contains(got[0], want)):
			t.Errorf("%s: warnings %q; want one with %q", issuer, got, want)
		}
	}
}

// ID tokens that live longer than a key stays published past its expiry
// are warned of.
func TestLongIDTokenTTLWarned(t *testing.T) {
	c := Config{Issuer: "https://auth.example.com", Addr: "127.0.0.1:8443", DB: filepath.Join(t.TempDir(), "o.db")}
	c.Provider.IDTokenTTL = time.Hour
	for _, w := range c.DeploymentWarnings(time.Now()) {
		if w.Key == "lifetimes.id_token_ttl" {
			t.Errorf("an hour warned of: %v", w)
		}
	}
	c.Provider.IDTokenTTL = 10000 * time.Hour
	var found bool
	for _, w := range c.DeploymentWarnings(time.Now()) {
		found = found || w.Key == "lifetimes.id_token_ttl"
	}
	if !found {
		t.Error("10000h ID tokens not warned of")
	}
}

// An http issuer beside a TLS certificate, which makes the server answer
// https only, is warned of: discovery and the tokens would name URLs
// nobody can reach.
func TestHTTPIssuerWithTLSWarned(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	certFile, keyFile := writeCertFiles(t, dir, certSpec{dns: []string{"localhost"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(60 * 24 * time.Hour)}, 0o600)
	c := Config{Issuer: "http://localhost:8443", Addr: "127.0.0.1:8443", DB: filepath.Join(dir, "o.db"), TLSCertFile: certFile, TLSKeyFile: keyFile}
	var found bool
	for _, w := range c.DeploymentWarnings(now) {
		found = found || strings.HasPrefix(w.String(), "config: issuer: http://localhost:8443 is an http URL while tls.cert_file")
	}
	if !found {
		t.Errorf("warnings %v; want one about the http issuer", c.DeploymentWarnings(now))
	}
	c.Issuer = "https://localhost:8443"
	for _, w := range c.DeploymentWarnings(now) {
		if strings.Contains(w.String(), "is an http URL") {
			t.Errorf("an https issuer warned of: %v", w)
		}
	}
}

func TestCheckDeploymentCertificate(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name    string
		spec    certSpec
		issuer  string
		wantErr string // "" for none
		warning string // "" for none
	}{
		{"valid certificate naming the host passes", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(60 * 24 * time.Hour)},
			"https://auth.example.com", "", ""},
		{"expired certificate is an error", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-time.Hour)},
			"https://auth.example.com", "the TLS certificate expired at", ""},
		{"certificate not yet valid is an error", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(time.Hour), notAfter: now.Add(48 * time.Hour)},
			"https://auth.example.com", "the TLS certificate is not valid before", ""},
		{"certificate expiring within 14 days is a warning", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(7 * 24 * time.Hour)},
			"https://auth.example.com", "", "in less than 14 days: renew it"},
		{"certificate for another host is a warning", certSpec{dns: []string{"other.example.com"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(60 * 24 * time.Hour)},
			"https://auth.example.com", "", "no name of the TLS certificate (other.example.com) matches the issuer's host auth.example.com"},
		{"certificate checked against the issuer derived from addr", certSpec{dns: []string{"localhost"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(60 * 24 * time.Hour)},
			"", "", "matches the issuer's host 127.0.0.1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			certFile, keyFile := writeCertFiles(t, dir, tt.spec, 0o600)
			c := Config{Issuer: tt.issuer, Addr: "127.0.0.1:8443", DB: filepath.Join(dir, "o.db"), TLSCertFile: certFile, TLSKeyFile: keyFile}
			err := c.checkDeployment(time.Now())
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v; want none", err)
			case tt.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), "config: tls.cert_file: "+certFile+": "+tt.wantErr)):
				t.Errorf("error %v; want config: tls.cert_file: %s: %s...", err, certFile, tt.wantErr)
			}
			var ws []string
			for _, w := range c.DeploymentWarnings(time.Now()) {
				ws = append(ws, w.String())
			}
			switch {
			case tt.warning == "" && len(ws) != 0:
				t.Errorf("warnings %q; want none", ws)
			case tt.warning != "" && (len(ws) != 1 || !strings.HasPrefix(ws[0], "config: tls.cert_file: "+certFile+": ") || !strings.Contains(ws[0], tt.warning)):
				t.Errorf("warnings %q; want one with %q", ws, tt.warning)
			}
		})
	}
}

// A scope description for a language the pages are not in is never shown:
// it is warned of; those for en and fr, and those without a tag, are not.
func TestScopeDescriptionLanguageWarned(t *testing.T) {
	c := Config{Addr: "127.0.0.1:8000"}
	c.UI.ScopeDescriptions = map[string]string{"calendar.read": "See", "calendar.read#fr": "Voir", "calendar.read#de": "Sehen", "email#en": "Mail"}
	var got []string
	for _, w := range c.configWarnings() {
		if w.Key == "ui.scope_descriptions" {
			got = append(got, w.Msg)
		}
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], `calendar.read#de: the pages have no language "de" (they are in en, fr)`) {
		t.Errorf("warnings %q; want one about calendar.read#de", got)
	}
}
