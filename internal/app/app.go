// Package app wires oauthd together the way the oauthd binary runs it: it
// opens the store named by a DSN, seeds the demo data, builds the Provider
// with the ui pages, and serves it. The CLI in cmd/oauthd and the
// end-to-end tests both use it, so the tests exercise exactly what
// `oauthd serve` runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
	"github.com/oauthd/oauthd/ui"
)

// Config is the oauthd binary's configuration.
type Config struct {
	// Issuer is the public URL of the server; default http://<Addr>.
	Issuer string
	// Addr is the listen address; default localhost:8000.
	Addr string
	// DB is a SQLite file path (default oauthd.db) or a postgres:// DSN.
	DB string
	// Demo seeds the walkthrough's demo client and user if absent.
	Demo bool
	// LogFormat is "text" (default) or "json"; LogLevel is debug, info
	// (default), warn or error.
	LogFormat, LogLevel string
	// GCInterval is how often expired records are deleted; default 1 minute.
	GCInterval time.Duration
	// Provider is passed to oauthd.New; Issuer, Pages and Logger are set
	// from the fields above.
	Provider oauthd.Config
	// UI is passed to ui.New.
	UI ui.Options
}

// Defaults fills the zero fields with their defaults.
func (c *Config) Defaults() {
	if c.Addr == "" {
		c.Addr = "localhost:8000"
	}
	if c.DB == "" {
		c.DB = "oauthd.db"
	}
	if c.GCInterval == 0 {
		c.GCInterval = time.Minute
	}
}

// issuerFor is the default issuer for a listen address.
func issuerFor(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	if port == "" {
		return "http://" + host
	}
	return "http://" + net.JoinHostPort(host, port)
}

// NewLogger returns the slog logger the config asks for, writing to w.
func NewLogger(format, level string, w io.Writer) (*slog.Logger, error) {
	var lv slog.Level
	if level != "" {
		if err := lv.UnmarshalText([]byte(level)); err != nil {
			return nil, fmt.Errorf("log level %q: use debug, info, warn or error", level)
		}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q: use text or json", format)
}

// OpenStore opens the store a DSN names: a postgres:// or postgresql://
// URL, or else a SQLite file path (sqlite: and file: prefixes allowed).
func OpenStore(ctx context.Context, dsn string, migrate bool) (oauthd.Storage, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("PostgreSQL is not available in this build")
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	s, err := sqlitestore.Open(ctx, path, sqlitestore.Options{NoMigrate: !migrate})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Main is a running oauthd server.
type Main struct {
	Config   Config
	Store    oauthd.Storage
	Provider *oauthd.Provider
	Logger   *slog.Logger

	ln     net.Listener
	server *http.Server
	stopGC context.CancelFunc
	gcDone chan struct{}
}

// Open binds the listen address, opens the store, seeds the demo data when
// asked and builds the Provider; Serve then serves. It fails fast, naming
// the problem, when the address is taken, the store is unreachable or the
// configuration is invalid. With port 0 a free port is chosen, and the
// default issuer uses it.
func Open(ctx context.Context, cfg Config, logOut io.Writer) (*Main, error) {
	cfg.Defaults()
	log, err := NewLogger(cfg.LogFormat, cfg.LogLevel, logOut)
	if err != nil {
		return nil, err
	}
	if cfg.Issuer != "" {
		if err := oauthd.ValidateIssuer(cfg.Issuer); err != nil {
			return nil, fmt.Errorf("issuer: %w", err)
		}
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Addr, err)
	}
	if cfg.Issuer == "" {
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		host, _, _ := net.SplitHostPort(cfg.Addr)
		cfg.Issuer = issuerFor(net.JoinHostPort(host, port))
	}
	store, err := OpenStore(ctx, cfg.DB, true)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("opening the store %s: %w", cfg.DB, err)
	}
	m := &Main{Config: cfg, Store: store, Logger: log, ln: ln}
	if cfg.Demo {
		if err := SeedDemo(ctx, store); err != nil {
			m.closeEarly()
			return nil, fmt.Errorf("seeding the demo data: %w", err)
		}
	}
	pages, err := ui.New(cfg.UI)
	if err != nil {
		m.closeEarly()
		return nil, err
	}
	pc := cfg.Provider
	pc.Issuer, pc.Pages, pc.Logger = cfg.Issuer, pages, log
	if pc.UILocales == nil {
		pc.UILocales = ui.Locales()
	}
	m.Provider, err = oauthd.New(pc, store)
	if err != nil {
		m.closeEarly()
		return nil, err
	}
	// The signing keys are made on the first start; a wrong key
	// encryption key stops the server here rather than at the first login.
	if err := m.Provider.Keys().Ensure(ctx); err != nil {
		m.closeEarly()
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	return m, nil
}

func (m *Main) closeEarly() {
	m.ln.Close()
	m.Store.Close()
}

// Addr is the address the server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Serve serves until Shutdown; it returns nil after a graceful shutdown.
func (m *Main) Serve() error {
	m.server = &http.Server{
		Handler:           m.Provider,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopGC, m.gcDone = cancel, make(chan struct{})
	go m.collectGarbage(ctx)
	err := m.server.Serve(m.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, lets in-flight requests finish
// (until ctx ends), and closes the store.
func (m *Main) Shutdown(ctx context.Context) error {
	var err error
	if m.server != nil {
		err = m.server.Shutdown(ctx)
	}
	if m.stopGC != nil {
		m.stopGC()
		<-m.gcDone
	}
	if cerr := m.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// collectGarbage deletes expired records in bounded batches on an interval.
func (m *Main) collectGarbage(ctx context.Context) {
	defer close(m.gcDone)
	t := time.NewTicker(m.Config.GCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for range 100 { // at most 100 batches per tick
			n, err := m.Store.DeleteExpired(ctx, time.Now(), 500)
			if err != nil {
				if ctx.Err() == nil {
					m.Logger.Error("deleting expired records", "error", err.Error())
				}
				break
			}
			if n > 0 {
				m.Logger.Debug("deleted expired records", "count", n)
			}
			if n < 500 {
				break
			}
		}
	}
}
