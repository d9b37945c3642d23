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
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/sqlitestore"
	"github.com/oauthd/oauthd/ui"
)

// Config is the oauthd binary's configuration. Load reads it from a YAML
// file, the environment and flags (see the settings in config.go); tests
// build it directly, and Open fills the zero fields with the defaults.
type Config struct {
	// Issuer is the public URL of the server; default http://<Addr>, or
	// https://<Addr> with TLS. It is required when Addr listens on every
	// interface (no host, 0.0.0.0 or ::). It never comes from a request.
	Issuer string
	// Addr is the listen address; default localhost:8000.
	Addr string
	// DB is a SQLite file path (default oauthd.db) or a PostgreSQL URL
	// (postgres:// or postgresql://; see package pgstore).
	DB string
	// NoMigrate leaves the database schema alone at start-up; Open then
	// fails unless the schema is current (run oauthd migrate first).
	NoMigrate bool
	// Demo seeds the walkthrough's demo client and user if absent.
	Demo bool
	// LogFormat is "text" (default) or "json"; LogLevel is debug, info
	// (default), warn or error.
	LogFormat, LogLevel string
	// TLSCertFile and TLSKeyFile, both set, make the server serve HTTPS
	// itself (TLS 1.2 with ECDHE AEAD cipher suites, or TLS 1.3). The
	// files are read again when they change, so a renewed certificate
	// needs no restart.
	TLSCertFile, TLSKeyFile string
	// ShutdownTimeout is how long a graceful shutdown waits for in-flight
	// requests; default 20 seconds.
	ShutdownTimeout time.Duration
	// GCInterval is how often expired records are deleted; default 1 minute.
	GCInterval time.Duration
	// GCBatchSize is how many records of each kind one DeleteExpired call
	// removes; default 500. A run repeats batches until one comes back
	// short, for at most 5 seconds; a run that leaves a backlog is
	// followed by the next a second later, not GCInterval later.
	GCBatchSize int
	// MetricsDisabled turns off /metrics (config key metrics.enabled).
	MetricsDisabled bool
	// MetricsAddr, when set, serves /metrics, /healthz and /readyz on this
	// address instead of the main one.
	MetricsAddr string
	// Provider is passed to oauthd.New; Issuer, Pages and Logger are set
	// from the fields above, and Observer when it is nil.
	Provider oauthd.Config
	// UI is passed to ui.New.
	UI ui.Options

	// maxFailures are the rate limits' max_failures as the configuration
	// file, environment or flags gave them, by key: Provider keeps a 0
	// (off) as the library's -1, so Validate looks here to refuse a
	// negative value rather than take it for "off".
	maxFailures map[string]int
	// src is where Load found each key (a file:line, an environment
	// variable, a flag), for the errors of Validate and CheckDeployment.
	src map[string]string
}

// Defaults fills the zero fields with their defaults.
func (c *Config) Defaults() {
	str := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	str(&c.Addr, "localhost:8000")
	str(&c.DB, "oauthd.db")
	str(&c.LogFormat, "text")
	str(&c.LogLevel, "info")
	dur(&c.ShutdownTimeout, 20*time.Second)
	dur(&c.GCInterval, time.Minute)
	if c.GCBatchSize == 0 {
		c.GCBatchSize = 500
	}
	// The library's defaults, spelled out so config print shows them.
	p := &c.Provider
	dur(&p.AccessTokenTTL, time.Hour)
	dur(&p.RefreshTokenTTL, 30*24*time.Hour)
	dur(&p.CodeTTL, 5*time.Minute)
	dur(&p.AuthRequestTTL, 30*time.Minute)
	dur(&p.SessionTTL, 24*time.Hour)
	dur(&p.IDTokenTTL, time.Hour)
	dur(&p.KeyRotationPeriod, 30*24*time.Hour)
	dur(&p.KeyRefreshInterval, time.Minute)
	limit := func(l *oauthd.RateLimit, d oauthd.RateLimit) {
		if l.MaxFailures == 0 {
			l.MaxFailures = d.MaxFailures
		}
		dur(&l.Window, d.Window)
		dur(&l.Lockout, d.Lockout)
		dur(&l.MaxLockout, max(d.MaxLockout, l.Lockout))
	}
	limit(&p.LoginLimit, oauthd.DefaultLoginLimit)
	limit(&p.LoginIPLimit, oauthd.DefaultLoginIPLimit)
	limit(&p.ClientLimit, oauthd.DefaultClientLimit)
	str(&c.UI.ProductName, "oauthd")
	str(&c.UI.DefaultLocale, "en")
}

// issuerFor is the default issuer for a listen address.
func issuerFor(addr string, tls bool) string {
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	if port == "" {
		return scheme + host
	}
	return scheme + net.JoinHostPort(host, port)
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
// URL (package pgstore), or else a SQLite file path (sqlite: and file:
// prefixes allowed). With migrate it brings the schema up to date; without,
// it fails unless the schema is already current.
func OpenStore(ctx context.Context, dsn string, migrate bool) (oauthd.Storage, error) {
	s, err := openStore(ctx, dsn, migrate)
	if err != nil {
		return nil, err
	}
	if !migrate {
		if err := checkSchema(ctx, s); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

func openStore(ctx context.Context, dsn string, migrate bool) (oauthd.Storage, error) {
	if pgstore.IsDSN(dsn) {
		return pgstore.Open(ctx, dsn, pgstore.Options{NoMigrate: !migrate})
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if !migrate {
		// Without migrating, a new database would be an empty file that
		// no schema ever comes to: create nothing.
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no database at %s, and none is created without migrating (automatic migration is off: run `oauthd migrate` first to create it, or start without --no-migrate)", path)
		}
	}
	return sqlitestore.Open(ctx, path, sqlitestore.Options{NoMigrate: !migrate})
}

// SchemaVersion returns the schema version of the database dsn names as
// it is, without migrating it (0 for an empty database).
func SchemaVersion(ctx context.Context, dsn string) (int, error) {
	s, err := openStore(ctx, dsn, false)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	v, ok := s.(interface {
		SchemaVersion(context.Context) (int, error)
	})
	if !ok {
		return 0, fmt.Errorf("the store of %s has no schema version", MaskDSN(dsn))
	}
	return v.SchemaVersion(ctx)
}

// checkSchema fails unless the store's schema is the version this program
// needs. A store opened without migrating fails every operation with its
// ErrSchemaVersion until then; one lookup finds out.
func checkSchema(ctx context.Context, s oauthd.Storage) error {
	_, err := s.Client(ctx, "")
	switch {
	case err == nil || errors.Is(err, oauthd.ErrNotFound):
		return nil
	case (errors.Is(err, sqlitestore.ErrSchemaVersion) || errors.Is(err, pgstore.ErrSchemaVersion)) && strings.Contains(err.Error(), "newer than this program"):
		// Migrating cannot help: this binary is older than the database.
		return fmt.Errorf("%w (run the oauthd release that migrated it, or a newer one; going back to an older schema is not supported)", err)
	case errors.Is(err, sqlitestore.ErrSchemaVersion) || errors.Is(err, pgstore.ErrSchemaVersion):
		return fmt.Errorf("%w (automatic migration is off: run `oauthd migrate` first, or start without --no-migrate)", err)
	}
	return err
}

// Main is a running oauthd server.
type Main struct {
	Config   Config
	Store    oauthd.Storage
	Provider *oauthd.Provider
	Logger   *slog.Logger
	// Metrics are the server's Prometheus metrics.
	Metrics *Metrics

	counted       oauthd.Storage // Store, its failures counted in the metrics
	ln, metricsLn net.Listener
	handler       http.Handler // the main listener's
	certs         *certReloader
	server        *http.Server
	metricsServer *http.Server
	draining      atomic.Bool

	// base is every request's parent context; ending it (when a
	// shutdown's timeout passes, with the cause errShutdownCut) makes the
	// requests still running give up their store calls, so that closing
	// the store does not wait for them.
	base       context.Context
	cancelBase context.CancelCauseFunc
	// cut is set when Shutdown ended the requests still running: their
	// log lines and metrics then say 503, not 499 (see cutLog).
	cut atomic.Bool

	// gcClock is the time of the garbage collection; gcLog its state for
	// the log. Both are used by the collectGarbage goroutine only.
	gcClock gcClock
	gcLog   gcLog

	mu       sync.Mutex // guards the fields below, set by Serve and Shutdown
	shutdown bool
	stopGC   context.CancelFunc
	gcDone   chan struct{}
}

// Open validates the configuration, binds the listen addresses, opens the
// store and checks it answers, seeds the demo data when asked and builds
// the Provider; Serve then serves. It fails fast, naming the problem, when
// the configuration is invalid, an address is taken or the store is
// unreachable. With port 0 a free port is chosen, and the default issuer
// uses it.
func Open(ctx context.Context, cfg Config, logOut io.Writer) (*Main, error) {
	return open(ctx, cfg, nil, logOut)
}

// open is Open with an optional store to use instead of opening cfg.DB.
func open(ctx context.Context, cfg Config, store oauthd.Storage, logOut io.Writer) (*Main, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, cfg.withSource(err)
	}
	if err := cfg.checkDefaultIssuer(); err != nil {
		return nil, cfg.withSource(err)
	}
	log, err := NewLogger(cfg.LogFormat, cfg.LogLevel, logOut)
	if err != nil {
		return nil, err
	}
	m := &Main{Config: cfg, Metrics: NewMetrics(), gcClock: realClock}
	log = slog.New(cutLog{log.Handler(), &m.cut})
	m.Logger, m.Metrics.cut, m.Metrics.storeWrites.log = log, &m.cut, log
	m.base, m.cancelBase = context.WithCancelCause(context.Background())
	opened := false
	defer func() {
		if !opened {
			m.closeEarly()
		}
	}()
	if cfg.TLSCertFile != "" {
		if m.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log); err != nil {
			return nil, err
		}
		m.Metrics.registerTLS()
		m.certs.notAfter = m.Metrics.tlsNotAfter
	}
	if m.ln, err = net.Listen("tcp", cfg.Addr); err != nil {
		return nil, fmt.Errorf("listening on %s (addr): %w", cfg.Addr, err)
	}
	if cfg.MetricsAddr != "" {
		if m.metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			return nil, fmt.Errorf("listening on %s (metrics.addr): %w", cfg.MetricsAddr, err)
		}
	}
	if cfg.Issuer == "" {
		_, port, _ := net.SplitHostPort(m.ln.Addr().String())
		host, _, _ := net.SplitHostPort(cfg.Addr)
		cfg.Issuer = issuerFor(net.JoinHostPort(host, port), cfg.TLSCertFile != "")
		m.Config.Issuer = cfg.Issuer
	}
	for _, w := range cfg.configWarnings() {
		log.Warn(w.String())
	}
	if m.certs != nil {
		m.certs.issuerHost = m.Config.issuerHost()
		m.certs.report("serving the TLS certificate")
	}
	if store == nil {
		// A SQLite file that is not there yet is created: said before the
		// signing keys the new database gets are.
		path, isFile := sqliteFile(cfg.DB)
		isFile = isFile && !pgstore.IsDSN(cfg.DB) // a DSN is no path, and may hold a password
		if isFile {
			_, err := os.Stat(path)
			isFile = errors.Is(err, fs.ErrNotExist)
		}
		if store, err = OpenStore(ctx, cfg.DB, !cfg.NoMigrate); err != nil {
			return nil, fmt.Errorf("opening the store %s (db): %w", MaskDSN(cfg.DB), err)
		}
		if isFile {
			log.Info("created a new database", "path", path)
		}
	}
	m.Store = store
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := store.Ping(pctx); err != nil {
		return nil, fmt.Errorf("the store %s (db) is unreachable: %w", MaskDSN(cfg.DB), err)
	}
	if cfg.Demo {
		if err := SeedDemo(ctx, store); err != nil {
			return nil, fmt.Errorf("seeding the demo data: %w", err)
		}
	}
	uiOpts := cfg.UI
	if uiOpts.Logger == nil {
		uiOpts.Logger = log
	}
	pages, err := ui.New(uiOpts)
	if err != nil {
		return nil, err
	}
	pc := cfg.Provider
	pc.Issuer, pc.Pages, pc.Logger = cfg.Issuer, pages, log
	if pc.UILocales == nil {
		pc.UILocales = ui.Locales()
	}
	if pc.Observer == nil {
		pc.Observer = m.Metrics
	}
	m.counted = m.Metrics.instrument(store)
	if m.Provider, err = oauthd.New(pc, m.counted); err != nil {
		return nil, err
	}
	// The signing keys are made on the first start; a wrong key
	// encryption key stops the server here rather than at the first login.
	if err := m.Provider.Keys().Ensure(ctx); err != nil {
		return nil, fmt.Errorf("signing keys (key.encryption_key?): %w", err)
	}
	// The Provider, counted and timed through the Observer (Metrics),
	// behind the warnings about a proxy the configuration does not fit.
	m.handler = newProxyCheck(m.Provider, log, cfg.Issuer, cfg.Provider.TrustedProxies)
	if cfg.MetricsAddr == "" {
		ops := http.NewServeMux()
		m.opsRoutes(ops)
		m.handler = opsFirst{ops: ops, next: m.handler, paths: m.opsPaths()}
	}
	m.server = m.newServer(m.handler)
	if m.certs != nil {
		m.server.TLSConfig = tlsConfig(m.certs)
		m.server.ErrorLog = newServerLog(m.Logger, m.Metrics.tlsHandshakeErrors)
	}
	if m.metricsLn != nil {
		ops := http.NewServeMux()
		m.opsRoutes(ops)
		m.metricsServer = m.newServer(ops)
	}
	opened = true
	return m, nil
}

// opsRoutes adds /healthz, /readyz and, unless disabled, /metrics.
func (m *Main) opsRoutes(mux *http.ServeMux) {
	mux.Handle("GET /healthz", opsHeaders(http.HandlerFunc(m.healthz)))
	mux.Handle("GET /readyz", opsHeaders(http.HandlerFunc(m.readyz)))
	if !m.Config.MetricsDisabled {
		mux.Handle("GET /metrics", opsHeaders(m.Metrics.Handler()))
	}
}

// opsHeaders sets what every answer of the ops paths carries: plain text
// that no browser is to sniff into something else, and that no cache keeps
// (a probe must see the state now).
func opsHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// opsPaths are the paths opsRoutes serves.
func (m *Main) opsPaths() map[string]bool {
	p := map[string]bool{"/healthz": true, "/readyz": true}
	if !m.Config.MetricsDisabled {
		p["/metrics"] = true
	}
	return p
}

// opsFirst serves GET and HEAD of the ops paths with ops, answers their
// other methods with 405 and Allow, as the metrics listener's own mux does,
// and serves everything else with next: a map lookup instead of a mux's
// pattern matching on every request.
type opsFirst struct {
	ops   http.Handler
	next  http.Handler
	paths map[string]bool
}

func (h opsFirst) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.paths[r.URL.Path] {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			h.ops.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	h.next.ServeHTTP(w, r)
}

func (m *Main) closeEarly() {
	m.cancelBase(nil)
	if m.ln != nil {
		m.ln.Close()
	}
	if m.metricsLn != nil {
		m.metricsLn.Close()
	}
	if m.Store != nil {
		m.Store.Close()
	}
}

// Addr is the address the server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// MetricsAddr is the address of the separate metrics listener, or "".
func (m *Main) MetricsAddr() string {
	if m.metricsLn == nil {
		return ""
	}
	return m.metricsLn.Addr().String()
}

// Handler is what the main listener serves: the Provider with metrics,
// and /healthz, /readyz and /metrics unless metrics.addr moves them.
func (m *Main) Handler() http.Handler { return m.handler }

// readTimeout is how long a request's headers and body may take to
// arrive. The write deadline is later: net/http sets it when the headers
// have been read, so a write timeout equal to the read timeout ran out as
// a body slower than the read timeout was answered 408, and the 408 was
// never sent (the client saw the connection closed). Variables for tests.
var (
	readTimeout  = 30 * time.Second
	writeTimeout = readTimeout + 10*time.Second
)

func (m *Main) newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		BaseContext:       func(net.Listener) context.Context { return m.base },
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          newServerLog(m.Logger, nil),
	}
}

// Serve serves until Shutdown; it returns nil after a graceful shutdown,
// and at once if Shutdown came first.
func (m *Main) Serve() error {
	m.mu.Lock()
	if m.shutdown {
		m.mu.Unlock()
		return nil
	}
	if m.metricsLn != nil {
		go func() {
			if err := m.metricsServer.Serve(m.metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				m.Logger.Error("metrics listener", "error", err.Error())
			}
		}()
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.stopGC, m.gcDone = cancel, make(chan struct{})
	go m.collectGarbage(ctx)
	if m.certs != nil {
		go m.certs.watch(ctx)
	}
	m.mu.Unlock()
	var err error
	if m.certs != nil {
		err = m.server.ServeTLS(m.ln, "", "")
	} else {
		err = m.server.Serve(m.ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, answers /readyz with 503, lets
// in-flight requests finish (until ctx ends, when the remaining
// connections are closed), stops the garbage collection and closes the
// store. It may come before, during or after Serve.
func (m *Main) Shutdown(ctx context.Context) error {
	m.draining.Store(true)
	m.mu.Lock()
	m.shutdown = true
	stopGC, gcDone := m.stopGC, m.gcDone
	m.mu.Unlock()
	err := m.server.Shutdown(ctx)
	if err != nil {
		// The timeout passed: the requests still running (a database
		// that does not answer) give up now, and their connections close.
		// Their log lines say 503 and reason=shutdown, not 499.
		m.cut.Store(true)
		m.cancelBase(errShutdownCut)
		// The requests ended give up their store calls and answer 503
		// with Retry-After: a moment for those answers to be written
		// before the connections close.
		grace, cancel := context.WithTimeout(context.Background(), shutdownAnswerGrace)
		m.server.Shutdown(grace)
		cancel()
		m.server.Close()
	}
	m.ln.Close() // in case Serve never ran
	if m.metricsServer != nil {
		if merr := m.metricsServer.Shutdown(ctx); merr != nil {
			m.metricsServer.Close()
		}
		m.metricsLn.Close()
	}
	if stopGC != nil {
		stopGC()
		<-gcDone
	}
	m.cancelBase(nil)
	if cerr := m.Store.Close(); err == nil {
		err = cerr
	}
	return err
}

// shutdownAnswerGrace is how long the requests ended at the shutdown
// timeout have to write their 503 before their connections close.
const shutdownAnswerGrace = time.Second

// healthz answers 200 while the process runs.
func (m *Main) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	io.WriteString(w, "ok\n")
}

// readyz answers 200 when the store answers a ping within 2 seconds and
// takes writes, and 503 when it does not answer, when its database
// refused a write within writeFailureWindow and none has succeeded since
// (a full disk, a read-only database), or while the server shuts down.
func (m *Main) readyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if m.draining.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "shutting down\n")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := m.counted.Ping(ctx); err != nil {
		m.Logger.Warn("readiness: the store does not answer", "error", err.Error())
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "store unreachable\n")
		return
	}
	// A database that answers but takes no writes fails every sign-in
	// and authorization: the node is not ready either. The change of
	// state is logged once (writeHealth), not every probe.
	if reason, failing := m.Metrics.storeWrites.failing(); failing {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, "database full or read-only: writes are failing ("+reason+")\n")
		return
	}
	io.WriteString(w, "ok\n")
}
