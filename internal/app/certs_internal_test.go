package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// certSpec is what makeCert puts in a self-signed certificate.
type certSpec struct {
	cn                  string
	dns                 []string
	ips                 []string
	notBefore, notAfter time.Time
}

// makeCert returns a self-signed ECDSA certificate of spec.
func makeCert(t *testing.T, spec certSpec) (*x509.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: spec.cn},
		NotBefore: spec.notBefore, NotAfter: spec.notAfter, DNSNames: spec.dns,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, ip := range spec.ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return leaf, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// writeCertFiles writes a certificate of spec and its key (with keyMode)
// into dir, and returns their paths.
func writeCertFiles(t *testing.T, dir string, spec certSpec, keyMode os.FileMode) (string, string) {
	t.Helper()
	_, certPEM, keyPEM := makeCert(t, spec)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(keyFile, keyMode); err != nil { // whatever the umask
		t.Fatal(err)
	}
	return certFile, keyFile
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}

// certFindings reports an expired or not yet valid certificate as
// unusable, warns of one that expires within 14 days and of one none of
// whose names matches the issuer's host.
func TestCertFindings(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	valid := func(s certSpec) certSpec {
		if s.notBefore.IsZero() {
			s.notBefore = now.Add(-24 * time.Hour)
		}
		if s.notAfter.IsZero() {
			s.notAfter = now.Add(90 * 24 * time.Hour)
		}
		return s
	}
	for _, tt := range []struct {
		name     string
		spec     certSpec
		host     string
		unusable string // the unusable finding's message start, or ""
		warning  string // a warning's message start, or ""
	}{
		{"valid certificate naming the host is fine", valid(certSpec{dns: []string{"auth.example.com"}}), "auth.example.com", "", ""},
		{"wildcard name matches", valid(certSpec{dns: []string{"*.example.com"}}), "auth.example.com", "", ""},
		{"IP address name matches an IP issuer", valid(certSpec{ips: []string{"127.0.0.1"}}), "127.0.0.1", "", ""},
		{"no issuer host skips the name check", valid(certSpec{dns: []string{"other.example.com"}}), "", "", ""},
		{"expired certificate is unusable", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(-90 * 24 * time.Hour), notAfter: now.Add(-time.Hour)},
			"auth.example.com", "the TLS certificate expired at 2026-06-01T11:00:00Z (not_after): clients refuse it; renew it", ""},
		{"certificate not yet valid is unusable", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(time.Hour), notAfter: now.Add(90 * 24 * time.Hour)},
			"auth.example.com", "the TLS certificate is not valid before 2026-06-01T13:00:00Z (not_before): clients refuse it until then", ""},
		{"certificate expiring within 14 days is warned about", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(-80 * 24 * time.Hour), notAfter: now.Add(13 * 24 * time.Hour)},
			"auth.example.com", "", "the TLS certificate expires at 2026-06-14T12:00:00Z (not_after), in less than 14 days: renew it"},
		{"certificate expiring in 15 days is fine", certSpec{dns: []string{"auth.example.com"}, notBefore: now.Add(-80 * 24 * time.Hour), notAfter: now.Add(15 * 24 * time.Hour)},
			"auth.example.com", "", ""},
		{"no name matching the issuer's host is warned about", valid(certSpec{dns: []string{"localhost", "auth.test"}, ips: []string{"127.0.0.1"}}), "auth.example.com",
			"", "no name of the TLS certificate (localhost, auth.test, 127.0.0.1) matches the issuer's host auth.example.com: clients refuse it for this issuer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			leaf, _, _ := makeCert(t, tt.spec)
			var unusable, warnings []string
			for _, f := range certFindings(leaf, now, tt.host) {
				if f.unusable {
					unusable = append(unusable, f.msg)
				} else {
					warnings = append(warnings, f.msg)
				}
			}
			check := func(what string, got []string, want string) {
				switch {
				case want == "" && len(got) != 0:
					t.Errorf("%s %q; want none", what, got)
				case want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], want)):
					t.Errorf("%s %q; want one starting %q", what, got, want)
				}
			}
			check("unusable", unusable, tt.unusable)
			check("warnings", warnings, tt.warning)
		})
	}
}

// At start and at every reload, serve logs the certificate's subject,
// DNS names and not_after, warns of an expired one or one that does not
// name the issuer's host, and sets oauthd_tls_certificate_not_after_seconds;
// a private key its group or others can read is warned about at start.
func TestCertReportedAtStartAndReload(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	good := certSpec{cn: "first", dns: []string{"localhost"}, ips: []string{"127.0.0.1"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(60 * 24 * time.Hour).Truncate(time.Second)}
	certFile, keyFile := writeCertFiles(t, dir, good, 0o640)
	var logs logBuf
	m, err := open(t.Context(), Config{Addr: "127.0.0.1:0", LogFormat: "json", TLSCertFile: certFile, TLSKeyFile: keyFile}, newFakeStore(), &logs)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, m)
	var start *logRecord
	for _, r := range logs.records(t) {
		if r.Msg == "serving the TLS certificate" {
			start = &r
		}
	}
	if start == nil || start.Level != "INFO" || start.Subject != "first" || strings.Join(start.DNSNames, ",") != "localhost" ||
		start.NotAfter != good.notAfter.UTC().Format(time.RFC3339) {
		t.Errorf("start-up certificate record %+v; want INFO with subject first, dns_names [localhost], not_after %s", start, good.notAfter.UTC().Format(time.RFC3339))
	}
	ws := logs.warnings(t)
	if len(ws) != 1 || ws[0] != "config: tls.key_file: "+keyFile+" is readable by its group or by others (mode 0640): make it readable by the server's user only (chmod 600)" {
		t.Errorf("start-up warnings %q; want only the key file's", ws)
	}
	if got := gaugeValue(m.Metrics.tlsNotAfter); got != float64(good.notAfter.Unix()) {
		t.Errorf("oauthd_tls_certificate_not_after_seconds %v; want %d", got, good.notAfter.Unix())
	}

	// A renewal onto an expired certificate for another host.
	time.Sleep(10 * time.Millisecond) // a later modification time
	expired := certSpec{cn: "second", dns: []string{"auth.test"}, notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour).Truncate(time.Second)}
	writeCertFiles(t, dir, expired, 0o600)
	m.certs.mu.Lock()
	m.certs.checkEvery = 0
	m.certs.mu.Unlock()
	c := &tls.Config{InsecureSkipVerify: true}
	if conn, err := tls.Dial("tcp", m.Addr(), c); err == nil {
		conn.Close()
	}
	var reload *logRecord
	for _, r := range logs.records(t) {
		if r.Msg == "reloaded the TLS certificate" {
			reload = &r
		}
	}
	if reload == nil || reload.Subject != "second" || strings.Join(reload.DNSNames, ",") != "auth.test" {
		t.Errorf("reload record %+v; want subject second, dns_names [auth.test]", reload)
	}
	ws = logs.warnings(t)[1:]
	wantWarnings := []string{
		"the TLS certificate expired at " + expired.notAfter.UTC().Format(time.RFC3339) + " (not_after): clients refuse it; renew it",
		"no name of the TLS certificate (auth.test) matches the issuer's host 127.0.0.1: clients refuse it for this issuer",
	}
	if strings.Join(ws, "\n") != strings.Join(wantWarnings, "\n") {
		t.Errorf("reload warnings %q; want %q", ws, wantWarnings)
	}
	if got := gaugeValue(m.Metrics.tlsNotAfter); got != float64(expired.notAfter.Unix()) {
		t.Errorf("oauthd_tls_certificate_not_after_seconds after reload %v; want %d", got, expired.notAfter.Unix())
	}
}

// Without TLS the TLS metrics are not exported; with it they are.
func TestTLSMetricsOnlyWithTLS(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certFile, keyFile := writeCertFiles(t, dir, certSpec{ips: []string{"127.0.0.1"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(30 * 24 * time.Hour)}, 0o600)
	for _, tt := range []struct {
		name string
		cfg  Config
		want bool
	}{
		{"plain HTTP has no TLS metrics", Config{}, false},
		{"TLS has the TLS metrics", Config{TLSCertFile: certFile, TLSKeyFile: keyFile}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := openFake(t, tt.cfg, newFakeStore())
			t.Cleanup(func() { m.Shutdown(t.Context()) })
			families, err := m.Metrics.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, f := range families {
				got[f.GetName()] = true
			}
			for _, name := range []string{"oauthd_tls_certificate_not_after_seconds", "oauthd_tls_handshake_errors_total"} {
				if got[name] != tt.want {
					t.Errorf("%s exported: %v; want %v", name, got[name], tt.want)
				}
			}
		})
	}
}

// TLS 1.2 is served with the ECDHE AEAD cipher suites only (Mozilla
// "intermediate"): not the CBC ones, nor TLS 1.1. A failed handshake is a
// debug line, not a warning, and is counted.
func TestTLSPolicy(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	certFile, keyFile := writeCertFiles(t, dir, certSpec{ips: []string{"127.0.0.1"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(30 * 24 * time.Hour)}, 0o600)
	var logs logBuf
	m, err := open(t.Context(), Config{Addr: "127.0.0.1:0", LogFormat: "json", LogLevel: "debug", TLSCertFile: certFile, TLSKeyFile: keyFile}, newFakeStore(), &logs)
	if err != nil {
		t.Fatal(err)
	}
	serve(t, m)
	refused := 0
	for _, tt := range []struct {
		name    string
		version uint16
		suite   uint16 // 0: the client's defaults
		ok      bool
	}{
		{"TLS 1.3 is accepted", tls.VersionTLS13, 0, true},
		{"TLS 1.2 ECDHE AES-128-GCM is accepted", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"TLS 1.2 ECDHE AES-256-GCM is accepted", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true},
		{"TLS 1.2 ECDHE ChaCha20-Poly1305 is accepted", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"TLS 1.2 ECDHE AES-128-CBC-SHA is refused", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"TLS 1.2 ECDHE AES-256-CBC-SHA is refused", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{"TLS 1.1 is refused", tls.VersionTLS11, 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &tls.Config{InsecureSkipVerify: true, MinVersion: tt.version, MaxVersion: tt.version}
			if tt.suite != 0 {
				c.CipherSuites = []uint16{tt.suite}
			}
			conn, err := tls.Dial("tcp", m.Addr(), c)
			if err == nil {
				st := conn.ConnectionState()
				conn.Close()
				if tt.suite != 0 && st.CipherSuite != tt.suite {
					t.Errorf("negotiated %s; want %s", tls.CipherSuiteName(st.CipherSuite), tls.CipherSuiteName(tt.suite))
				}
			}
			if (err == nil) != tt.ok {
				t.Errorf("handshake error %v; want success %v", err, tt.ok)
			}
			if !tt.ok {
				refused++
			}
		})
	}
	// Plain HTTP on the TLS port is a failed handshake too.
	if res, err := http.Get("http://" + m.Addr() + "/healthz"); err == nil {
		res.Body.Close()
	}
	refused++
	// The server counts and logs a handshake after the client saw it
	// fail (the count first, then the line).
	debugRecords := func() int {
		n := 0
		for _, r := range logs.records(t) {
			if r.Msg == "TLS handshake failed" && r.Level == "DEBUG" && r.Error != "" {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(5 * time.Second)
	for (counterValue(m.Metrics.tlsHandshakeErrors) < float64(refused) || debugRecords() < refused) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := counterValue(m.Metrics.tlsHandshakeErrors); got != float64(refused) {
		t.Errorf("oauthd_tls_handshake_errors_total %v; want %d", got, refused)
	}
	for _, r := range logs.records(t) {
		if strings.Contains(r.raw, "handshake") && r.Level != "DEBUG" {
			t.Errorf("a handshake record at %s: %s", r.Level, r.raw)
		}
	}
	if debug := debugRecords(); debug != refused {
		t.Errorf("%d debug records of failed handshakes; want %d", debug, refused)
	}
}

// What net/http logs besides handshakes stays a warning.
func TestServerLogOtherErrorsWarn(t *testing.T) {
	var logs logBuf
	l := newServerLog(jsonLogger(&logs), nil)
	l.Printf("http: superfluous response.WriteHeader call")
	l.Printf("http: TLS handshake error from 192.0.2.1:4711: EOF")
	recs := logs.records(t)
	if len(recs) != 2 || recs[0].Level != "WARN" || recs[0].Msg != "http: superfluous response.WriteHeader call" ||
		recs[1].Level != "DEBUG" || recs[1].Msg != "TLS handshake failed" || recs[1].Peer != "192.0.2.1:4711" || recs[1].Error != "EOF" {
		t.Errorf("records %+v; want the WriteHeader one at WARN, the handshake one at DEBUG", recs)
	}
}

// The README's metrics table names every oauthd_ metric, the TLS ones
// too.
func TestREADMEListsEveryMetric(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	m.registerTLS()
	m.RequestServed("/oauth/token", "POST", 200, time.Millisecond) // the vectors have no series before
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		if name := f.GetName(); strings.HasPrefix(name, "oauthd_") {
			n++
			if !strings.Contains(string(b), "| `"+name+"`") && !strings.Contains(string(b), ", `"+name+"` |") {
				t.Errorf("README's metrics table lacks %s", name)
			}
		}
	}
	if n < 10 {
		t.Errorf("%d oauthd_ metrics gathered; want every one of them (at least 10)", n)
	}
}

// A renewed pair is loaded, and the not_after gauge set, without any new
// connection (a load balancer that keeps its connections open): the
// alert on the gauge must not fire after a successful renewal.
func TestCertReloadedWithoutHandshake(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	first := certSpec{cn: "first", dns: []string{"localhost"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(20 * 24 * time.Hour).Truncate(time.Second)}
	certFile, keyFile := writeCertFiles(t, dir, first, 0o600)
	c, err := newCertReloader(certFile, keyFile, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "not_after"})
	c.notAfter = g
	c.checkEvery = 20 * time.Millisecond
	c.report("serving")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go c.watch(ctx)
	time.Sleep(30 * time.Millisecond) // a later modification time
	renewed := certSpec{cn: "renewed", dns: []string{"localhost"}, notBefore: now.Add(-time.Hour), notAfter: now.Add(90 * 24 * time.Hour).Truncate(time.Second)}
	writeCertFiles(t, dir, renewed, 0o600)
	deadline := time.Now().Add(5 * time.Second)
	for gaugeValue(g) != float64(renewed.notAfter.Unix()) {
		if time.Now().After(deadline) {
			t.Fatalf("not_after gauge %v 5 s after the renewal, with no handshake; want %d", gaugeValue(g), renewed.notAfter.Unix())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
