package app

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
)

// logBuf collects a logger's JSON records; safe for concurrent use.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// logRecord is one JSON log record, with the attributes the tests read.
type logRecord struct {
	Level, Msg string
	Status     int
	Reason     string
	Peer       string
	Subject    string
	DNSNames   []string `json:"dns_names"`
	NotAfter   string   `json:"not_after"`
	Error      string
	raw        string
}

// records parses the JSON records of b, failing on a line that is not one.
func (b *logBuf) records(t *testing.T) []logRecord {
	t.Helper()
	var recs []logRecord
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON record: %q", line)
		}
		r.raw = line
		recs = append(recs, r)
	}
	return recs
}

// warnings are the messages of b's WARN records.
func (b *logBuf) warnings(t *testing.T) []string {
	var ws []string
	for _, r := range b.records(t) {
		if r.Level == "WARN" {
			ws = append(ws, r.Msg)
		}
	}
	return ws
}

func jsonLogger(b *logBuf) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

// A request from a peer outside trusted_proxies that carries a forwarding
// header is warned about once per peer, naming the peer and never the
// header's value; a trusted proxy that sends X-Forwarded-For is not, but
// one that sends only a header oauthd does not read is.
func TestProxyCheckPeers(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tt := range []struct {
		name    string
		remote  string
		trusted []netip.Prefix
		header  string
		want    string // the warning's start; "" for none
	}{
		{"untrusted peer with X-Forwarded-For is warned about", "172.16.0.7:4711", nil, "X-Forwarded-For",
			"request from 172.16.0.7 carries X-Forwarded-For, which is ignored: 172.16.0.7 is not in trusted_proxies; if it is your reverse proxy, every client behind it shares one rate-limit count (rate_limit.login_ip, rate_limit.client)"},
		{"peer outside the trusted prefixes is warned about", "192.168.1.7:4711", proxies, "X-Forwarded-For", "request from 192.168.1.7 carries X-Forwarded-For, which is ignored"},
		{"untrusted peer with Forwarded is warned about", "127.0.0.1:4711", nil, "Forwarded", "request from 127.0.0.1 carries Forwarded, which is ignored"},
		{"untrusted peer with X-Real-IP is warned about", "[fd00::1]:4711", nil, "X-Real-IP", "request from fd00::1 carries X-Real-IP, which is ignored"},
		{"a client on the internet sending X-Forwarded-For is no proxy to name", "192.0.2.7:4711", nil, "X-Forwarded-For", ""},
		{"a client on the internet sending Forwarded is no proxy to name", "[2001:db8::1]:4711", nil, "Forwarded", ""},
		{"trusted proxy with X-Forwarded-For is fine", "10.1.2.3:4711", proxies, "X-Forwarded-For", ""},
		{"IPv4-mapped trusted proxy is fine", "[::ffff:10.1.2.3]:4711", proxies, "X-Forwarded-For", ""},
		{"trusted proxy with only X-Real-IP is warned about", "10.1.2.3:4711", proxies, "X-Real-IP",
			"request from the trusted proxy 10.1.2.3 carries X-Real-IP but no X-Forwarded-For, the only header oauthd reads"},
		{"request without forwarding headers is fine", "192.0.2.7:4711", nil, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuf
			c := newProxyCheck(okHandler, jsonLogger(&logs), "https://auth.example.com", tt.trusted)
			for range 3 {
				r := httptest.NewRequest("GET", "/", nil)
				r.RemoteAddr = tt.remote
				if tt.header != "" {
					r.Header.Set(tt.header, "203.0.113.99-secret-value")
				}
				w := httptest.NewRecorder()
				c.ServeHTTP(w, r)
				if w.Code != http.StatusNoContent {
					t.Fatalf("status %d; want the next handler's 204", w.Code)
				}
			}
			ws := logs.warnings(t)
			switch {
			case tt.want == "" && len(ws) != 0:
				t.Errorf("warnings %q; want none", ws)
			case tt.want != "" && (len(ws) != 1 || !strings.HasPrefix(ws[0], tt.want)):
				t.Errorf("warnings %q; want one starting %q", ws, tt.want)
			}
			if strings.Contains(logs.String(), "secret-value") {
				t.Errorf("the header's value is in the log: %s", logs.String())
			}
		})
	}
}

// At most maxWarnedPeers peers are warned about, each once, also when
// their requests come in parallel: a client cannot fill the log or the
// memory by sending the header from many addresses.
func TestProxyCheckPeersBounded(t *testing.T) {
	var logs logBuf
	c := newProxyCheck(okHandler, jsonLogger(&logs), "https://auth.example.com", nil)
	for round := range 2 {
		var wg sync.WaitGroup
		for i := range maxWarnedPeers + 4 {
			wg.Go(func() {
				r := httptest.NewRequest("GET", "/", nil)
				r.RemoteAddr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 2, byte(i + 1)}), 4711).String()
				r.Header.Set("X-Forwarded-For", "203.0.113.1")
				c.ServeHTTP(httptest.NewRecorder(), r)
			})
		}
		wg.Wait()
		if got := len(logs.warnings(t)); got != maxWarnedPeers {
			t.Errorf("round %d: %d warnings; want %d", round, got, maxWarnedPeers)
		}
	}
	if len(c.peers) != maxWarnedPeers {
		t.Errorf("%d peers remembered; want %d", len(c.peers), maxWarnedPeers)
	}
}

// X-Forwarded-Proto or X-Forwarded-Host that disagree with the issuer
// are warned about once per process, from any peer; values that are no
// scheme or host are neither compared nor logged.
func TestProxyCheckForwardedIssuer(t *testing.T) {
	for _, tt := range []struct {
		name        string
		issuer      string
		proto, host string
		want        string // the warning; "" for none
	}{
		{"same scheme is fine", "https://auth.example.com", "https", "", ""},
		{"other scheme is warned about", "http://127.0.0.1:19511", "https", "",
			"requests arrive over https (X-Forwarded-Proto) but the issuer is http://127.0.0.1:19511: set issuer to the URL clients use"},
		{"other host is warned about", "http://127.0.0.1:19511", "https", "auth.test:19510",
			"requests arrive as https://auth.test:19510 (X-Forwarded-Proto/Host) but the issuer is http://127.0.0.1:19511: set issuer to the URL clients use"},
		{"other host alone is warned about", "https://auth.example.com", "", "other.example.com",
			"requests arrive as https://other.example.com (X-Forwarded-Proto/Host) but the issuer is https://auth.example.com: set issuer to the URL clients use"},
		{"other port is warned about", "https://auth.test:19510", "https", "auth.test",
			"requests arrive as https://auth.test (X-Forwarded-Proto/Host) but the issuer is https://auth.test:19510: set issuer to the URL clients use"},
		{"default port written out is the same host", "https://auth.example.com", "https", "auth.example.com:443", ""},
		{"host in other case is the same host", "https://auth.example.com", "https", "Auth.Example.COM", ""},
		{"IPv6 host in brackets is the same host", "http://[::1]:8000", "http", "[::1]:8000", ""},
		{"first of a list is the client's", "https://auth.example.com", "https, http", "auth.example.com, proxy.internal", ""},
		{"scheme that is none is ignored", "https://auth.example.com", "gopher\"x", "", ""},
		{"host that is none is ignored", "https://auth.example.com", "", "evil.example.com/<script>", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuf
			c := newProxyCheck(okHandler, jsonLogger(&logs), tt.issuer, nil)
			for range 3 {
				r := httptest.NewRequest("GET", "/", nil)
				r.RemoteAddr = "10.0.0.2:4711" // a proxy's address
				if tt.proto != "" {
					r.Header.Set("X-Forwarded-Proto", tt.proto)
				}
				if tt.host != "" {
					r.Header.Set("X-Forwarded-Host", tt.host)
				}
				c.ServeHTTP(httptest.NewRecorder(), r)
			}
			ws := logs.warnings(t)
			switch {
			case tt.want == "" && len(ws) != 0:
				t.Errorf("warnings %q; want none", ws)
			case tt.want != "" && (len(ws) != 1 || ws[0] != tt.want):
				t.Errorf("warnings %q; want once %q", ws, tt.want)
			}
			for _, v := range []string{"gopher", "script"} {
				if strings.Contains(logs.String(), v) {
					t.Errorf("a header value that is no scheme or host is in the log: %s", logs.String())
				}
			}
		})
	}
}

// The main listener's handler has the proxy checks: a request through it
// with the headers of a proxy oauthd does not trust gets the warnings.
func TestMainHandlerChecksProxies(t *testing.T) {
	var logs logBuf
	m, err := open(t.Context(), Config{Addr: "127.0.0.1:0", LogFormat: "json"}, newFakeStore(), &logs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown(t.Context()) })
	r := httptest.NewRequest("GET", "/.well-known/openid-configuration", nil)
	r.RemoteAddr = "127.0.0.1:4711"
	r.Header.Set("X-Forwarded-For", "203.0.113.1")
	r.Header.Set("X-Forwarded-Proto", "https")
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("discovery: %d", w.Code)
	}
	ws := strings.Join(logs.warnings(t), "\n")
	for _, want := range []string{"request from 127.0.0.1 carries X-Forwarded-For, which is ignored", "requests arrive over https (X-Forwarded-Proto) but the issuer is http://127.0.0.1:"} {
		if !strings.Contains(ws, want) {
			t.Errorf("warnings %q; want one with %q", ws, want)
		}
	}
}

// A client on the internet cannot spend the one issuer warning with a
// made-up X-Forwarded-Proto: only a possible proxy's headers are compared.
func TestProxyCheckForwardedFromClientIgnored(t *testing.T) {
	var logs logBuf
	c := newProxyCheck(okHandler, jsonLogger(&logs), "http://127.0.0.1:19511", nil)
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "192.0.2.50:4711"
	r.Header.Set("X-Forwarded-Proto", "https")
	c.ServeHTTP(httptest.NewRecorder(), r)
	if ws := logs.warnings(t); len(ws) != 0 {
		t.Fatalf("warnings %q for a client's header; want none", ws)
	}
	r = httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "10.0.0.2:4711"
	r.Header.Set("X-Forwarded-Proto", "https")
	c.ServeHTTP(httptest.NewRecorder(), r)
	if ws := logs.warnings(t); len(ws) != 1 {
		t.Errorf("warnings %q after the proxy's request; want the issuer warning", ws)
	}
}
