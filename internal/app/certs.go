package app

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the TLS certificate of tls.cert_file and
// tls.key_file, and loads them again when either file changes (checked at
// most every 10 seconds, at a handshake), so that a renewed certificate
// needs no restart. A pair that fails to load is logged and the previous
// one kept.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu              sync.Mutex
	cert            *tls.Certificate
	certMod, keyMod time.Time
	checked         time.Time
	checkEvery      time.Duration
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	c := &certReloader{certFile: certFile, keyFile: keyFile, log: log, checkEvery: 10 * time.Second}
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
	c.cert, c.certMod, c.keyMod, c.checked = &cert, certMod, keyMod, time.Now()
	return nil
}

// GetCertificate is tls.Config.GetCertificate.
func (c *certReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.checked) >= c.checkEvery {
		c.checked = time.Now()
		if !modTime(c.certFile).Equal(c.certMod) || !modTime(c.keyFile).Equal(c.keyMod) {
			if err := c.load(); err != nil {
				c.log.Error("reloading the TLS certificate; keeping the previous one", "cert_file", c.certFile, "error", err.Error())
			} else {
				c.log.Info("reloaded the TLS certificate", "cert_file", c.certFile)
			}
		}
	}
	return c.cert, nil
}
