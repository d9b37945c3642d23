package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io/fs"
	"log"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// certReloader serves the TLS certificate of tls.cert_file and
// tls.key_file, and loads them again when either file changes (checked
// every 10 seconds, and at a handshake 10 seconds after the last look), so
// that a renewed certificate
// needs no restart. A pair that fails to load is logged and the previous
// one kept. At start (report) and at every reload it logs the
// certificate's names and expiry, warns of what certFindings finds, and
// sets the not_after gauge.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	// issuerHost is the issuer's host name, which a name of the
	// certificate should match; "" skips that check.
	issuerHost string
	// notAfter is set to the certificate's not_after (Unix seconds).
	notAfter interface{ Set(float64) }
	now      func() time.Time

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
	checkEvery      time.Duration
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log, checkEvery: 10 * time.Second, now: time.Now}
	if err := c.load(); err != nil {
		if kerr := checkKeyPair(certFile, keyFile); kerr != nil {
			return nil, kerr // naming the file at fault
		}
		return nil, fmt.Errorf("config: tls.cert_file: %w", err)
	}
	return c, nil
}

func modTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}

func (c *certReloader) load() error {
	certMod, keyMod := modTime(c.certFile), modTime(c.keyFile)
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return err
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return err
		}
	}
	c.cert, c.certMod, c.keyMod, c.checked = &cert, certMod, keyMod, time.Now()
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) >= c.checkEvery {
		c.checkLocked()
	}
	return c.cert, nil
}

// watch checks the files every checkEvery until ctx ends, so that a
// renewed pair is loaded, logged and its not_after gauge set even when no
// new connection comes (a load balancer keeping its connections open):
// the gauge would keep the old expiry, and an alert on it fire after a
// successful renewal.
func (c *certReloader) watch(ctx context.Context) {
	c.mu.Lock()
	every := max(c.checkEvery, 10*time.Millisecond)
	c.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Every tick checks (a tick comes just under checkEvery after
			// the last look: the handshakes' throttle would skip every
			// other one).
			c.mu.Lock()
			c.checkLocked()
			c.mu.Unlock()
		}
	}
}

// checkLocked loads the pair again if either file changed since the last
// look.
func (c *certReloader) checkLocked() {
	c.checked = time.Now()
	if !modTime(c.certFile).Equal(c.certMod) || !modTime(c.keyFile).Equal(c.keyMod) {
		if err := c.load(); err != nil {
			c.log.Error("reloading the TLS certificate; keeping the previous one", "cert_file", c.certFile, "error", err.Error())
		} else {
			c.reportLocked("reloaded the TLS certificate")
		}
	}
}

// report logs the certificate being served (msg, then one warning per
// finding) and sets the not_after gauge.
func (c *certReloader) report(msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reportLocked(msg)
}

func (c *certReloader) reportLocked(msg string) {
	leaf := c.cert.Leaf
	c.log.Info(msg, "cert_file", c.certFile, "subject", leaf.Subject.CommonName, "dns_names", leaf.DNSNames,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	for _, f := range certFindings(leaf, c.now(), c.issuerHost) {
		c.log.Warn(f.msg, "cert_file", c.certFile)
	}
	if c.notAfter != nil {
		c.notAfter.Set(float64(leaf.NotAfter.Unix()))
	}
}

// certRenewWarning is how long before its not_after a certificate is
// reported as about to expire.
const certRenewWarning = 14 * 24 * time.Hour

// A certFinding is something wrong with a certificate: unusable (expired,
// not valid yet: clients refuse it) or worth a warning.
type certFinding struct {
	unusable bool
	msg      string
}

// certFindings checks a server certificate at now: that it is valid, does
// not expire within certRenewWarning, and names issuerHost (unless "").
func certFindings(leaf *x509.Certificate, now time.Time, issuerHost string) []certFinding {
	var fs []certFinding
	switch {
	case now.After(leaf.NotAfter):
		fs = append(fs, certFinding{true, fmt.Sprintf("the TLS certificate expired at %s (not_after): clients refuse it; renew it", leaf.NotAfter.UTC().Format(time.RFC3339))})
	case now.Before(leaf.NotBefore):
		fs = append(fs, certFinding{true, fmt.Sprintf("the TLS certificate is not valid before %s (not_before): clients refuse it until then; check the certificate and this machine's clock", leaf.NotBefore.UTC().Format(time.RFC3339))})
	case leaf.NotAfter.Sub(now) < certRenewWarning:
		fs = append(fs, certFinding{false, fmt.Sprintf("the TLS certificate expires at %s (not_after), in less than 14 days: renew it", leaf.NotAfter.UTC().Format(time.RFC3339))})
	}
	if issuerHost != "" && leaf.VerifyHostname(issuerHost) != nil {
		names := append(append([]string{}, leaf.DNSNames...), ipStrings(leaf)...)
		fs = append(fs, certFinding{false, fmt.Sprintf("no name of the TLS certificate (%s) matches the issuer's host %s: clients refuse it for this issuer",
			strings.Join(names, ", "), issuerHost)})
	}
	return fs
}

func ipStrings(leaf *x509.Certificate) []string {
	var s []string
	for _, ip := range leaf.IPAddresses {
		s = append(s, ip.String())
	}
	return s
}

// keyFileExposed reports whether a private key file is readable by its
// group or by others, and its permissions.
func keyFileExposed(path string) (fs.FileMode, bool) {
	if runtime.GOOS == "windows" {
		return 0, false // no such permission bits
	}
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return fi.Mode().Perm(), fi.Mode().Perm()&0o044 != 0
}

// tlsCipherSuites are the TLS 1.2 cipher suites oauthd accepts: ECDHE key
// exchange with an AEAD cipher (AES-GCM, ChaCha20-Poly1305), as Mozilla's
// "intermediate" configuration; not the CBC suites Go also enables by
// default. TLS 1.3's suites are not configurable, and are all AEAD.
var tlsCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsConfig is the TLS configuration of the main listener.
func tlsConfig(certs *certReloader) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: tlsCipherSuites, GetCertificate: certs.GetCertificate}
}

// serverLog is the ErrorLog of the http.Servers: a failed TLS handshake
// (a scanner, a client that does not trust the certificate, plain HTTP on
// the TLS port) is counted and logged at debug level, being frequent on a
// public port and no fault of the server; anything else net/http reports
// is a warning, as before.
type serverLog struct {
	log        *slog.Logger
	handshakes interface{ Inc() } // failed handshakes, or nil
}

// newServerLog is an http.Server's ErrorLog writing to l; handshakes, when
// not nil, counts the failed TLS handshakes.
func newServerLog(l *slog.Logger, handshakes interface{ Inc() }) *log.Logger {
	return log.New(serverLog{l, handshakes}, "", 0)
}

const handshakeErrorPrefix = "http: TLS handshake error from "

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSuffix(string(p), "\n")
	if rest, ok := strings.CutPrefix(msg, handshakeErrorPrefix); ok {
		if l.handshakes != nil {
			l.handshakes.Inc()
		}
		if l.log.Enabled(context.Background(), slog.LevelDebug) {
			peer, reason, _ := strings.Cut(rest, ": ")
			l.log.Debug("TLS handshake failed", "peer", peer, "error", reason)
		}
		return len(p), nil
	}
	l.log.Warn(msg)
	return len(p), nil
}
