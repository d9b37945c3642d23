package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

// loadConfig parses the flags of serve and config, and loads the
// configuration: defaults < --config file < OAUTHD_* < flags.
func loadConfig(name string, args []string, e *env) (app.Config, error) {
	fs := newFlagSet(name, e)
	flags := app.Flags(fs)
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return app.Config{}, err
	}
	return app.Load(e.getenv, flags)
}

func cmdServe(ctx context.Context, args []string, e *env) error {
	cfg, err := loadConfig("serve", args, e)
	if err != nil {
		return err
	}
	path, newFile := sqlitePath(cfg.DB)
	if newFile {
		_, err := os.Stat(path)
		newFile = errors.Is(err, os.ErrNotExist)
	}
	// The schema version of a SQLite file before start-up, to say whether
	// it migrated the database (a long migration would otherwise pass
	// unexplained). Not on PostgreSQL: a database that does not answer
	// would cost its connect timeout twice (`oauthd migrate` says what it
	// did there).
	before := -1
	if _, isFile := sqlitePath(cfg.DB); isFile && !newFile && !cfg.NoMigrate {
		if v, err := app.SchemaVersion(ctx, cfg.DB); err == nil {
			before = v
		}
	}
	opened := time.Now()
	m, err := app.Open(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	// app.Open said it created a new database.
	if sv, ok := m.Store.(interface {
		SchemaVersion(context.Context) (int, error)
	}); ok && before >= 0 && !newFile {
		if after, err := sv.SchemaVersion(ctx); err == nil && after != before {
			m.Logger.Info("migrated the database schema", "from_version", before, "to_version", after,
				"duration_ms", time.Since(opened).Milliseconds())
		}
	}
	attrs := []any{"addr", m.Addr(), "issuer", strings.TrimSuffix(m.Config.Issuer, "/"), "db", app.MaskDSN(m.Config.DB), "tls", m.Config.TLSCertFile != ""}
	if a := m.MetricsAddr(); a != "" {
		attrs = append(attrs, "metrics_addr", a)
	}
	m.Logger.Info("oauthd is listening", attrs...)
	for _, name := range unknownEnv(e) {
		m.Logger.Warn("ignoring an environment variable that names no setting (see 'oauthd serve --help')", "name", name)
	}
	if !cfg.Demo {
		warnDemoLeftovers(ctx, m)
	}
	if cfg.Demo && m.Config.LogFormat == "json" {
		// Whoever asks for JSON logs reads the output with a program
		// (and a container or systemd mixes standard output into the
		// log): the banner is a log record too, without the demo
		// passwords, as no log line holds a password.
		m.Logger.Warn("running with the public DEMO credentials (see the README): never use --demo in production",
			"clients", []string{app.DemoClientID, app.DemoOIDCClientID}, "user", app.DemoUsername,
			"walkthrough_url", app.DemoAuthorizeURL(m.Config.Issuer), "discovery_url", m.Config.Issuer+oauthd.OIDCDiscoveryPath)
	} else if cfg.Demo {
		fmt.Fprintf(e.stdout, `
oauthd is running with DEMO credentials — never use them in production:
  client test_client / password (redirect https://www.example.com/redirect, scope email)
  client oidc_client / oidc_secret (OpenID Connect; redirect http://localhost:9000/callback, PKCE required)
  user   admin / admin

Open this in a browser to start the walkthrough:
  %s

OpenID Connect discovery: %s

`, app.DemoAuthorizeURL(m.Config.Issuer), m.Config.Issuer+oauthd.OIDCDiscoveryPath)
	}
	if cfg.Demo {
		// In the background: it runs the KDF for each record, and serving
		// need not wait for a warning. The banner's reader is told too.
		var banner io.Writer
		if m.Config.LogFormat != "json" {
			banner = e.stdout
		}
		ictx, icancel := context.WithCancel(ctx)
		var impostors sync.WaitGroup
		defer func() { icancel(); impostors.Wait() }()
		impostors.Go(func() { warnDemoImpostors(ictx, m, banner) })
	}
	if e.ready != nil {
		e.ready(m.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- m.Serve() }()
	select {
	case err := <-errc:
		m.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	m.Logger.Info("shutting down: finishing in-flight requests", "timeout", m.Config.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
	defer cancel()
	start := time.Now()
	if err := m.Shutdown(sctx); errors.Is(err, context.DeadlineExceeded) {
		// A request still running (or a client still sending its body)
		// when shutdown_timeout passed had its connection closed: the
		// server stopped as asked, so the exit is still 0.
		m.Logger.Warn("shutdown_timeout passed: closed the connections of the requests still in flight", "timeout", m.Config.ShutdownTimeout.String())
	} else if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	m.Logger.Info("stopped", "drain_ms", time.Since(start).Milliseconds())
	return nil
}

func cmdMigrate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("migrate", e)
	db := dbFlag(fs, e)
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	// The version before, to say what migrating did (0: a new database).
	before := 0
	if path, isFile := sqlitePath(*db); !isFile || fileExists(path) {
		if v, err := app.SchemaVersion(ctx, *db); err == nil {
			before = v
		}
	}
	s, err := createDB(ctx, *db, e)
	if err != nil {
		return err
	}
	defer s.Close()
	v, ok := s.(interface {
		SchemaVersion(context.Context) (int, error)
	})
	if !ok {
		fmt.Fprintln(e.stdout, "the database is up to date")
		return nil
	}
	n, err := v.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if n != before {
		// Another process may have migrated it meanwhile: what is said is
		// true either way.
		fmt.Fprintf(e.stdout, "the database %s is now at schema version %d (it was at %d)\n", app.MaskDSN(*db), n, before)
		return nil
	}
	fmt.Fprintf(e.stdout, "the database %s is up to date (schema version %d)\n", app.MaskDSN(*db), n)
	return nil
}

// envBool reads a boolean environment variable: empty is false.
func envBool(e *env, name string) (bool, error) {
	v := e.getenv(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: use 1 or 0 (true or false)", name, v)
	}
	return b, nil
}

// unknownEnv lists the OAUTHD_ variables of the environment that name no
// setting (app.UnknownEnv).
func unknownEnv(e *env) []string {
	if e.environ == nil {
		return nil
	}
	return app.UnknownEnv(e.environ())
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// warnDemoImpostors warns when --demo found records of its names that it
// did not seed (SeedDemo leaves existing records alone): the banner's
// credentials fail for them. The warning is logged, and written after the
// banner to banner if not nil.
func warnDemoImpostors(ctx context.Context, m *app.Main, banner io.Writer) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := app.DemoImpostors(ctx, m.Store)
	if len(names) == 0 {
		return
	}
	m.Logger.Warn("--demo left records of its names alone that it did not seed: the walkthrough's credentials fail for them (use another --db for the demo, or delete them)", "records", names)
	if banner != nil {
		fmt.Fprintf(banner, `NOT THE DEMO'S: %s in this database kept their own secret or password (--demo
does not overwrite records): the credentials above fail for them. Use another --db for the
demo, or delete them.

`, strings.Join(names, ", "))
	}
}

// warnDemoLeftovers warns when a server started without --demo serves a
// database that --demo seeded: the demo's client secrets and password are
// public, and dropping --demo does not remove them.
func warnDemoLeftovers(ctx context.Context, m *app.Main) {
	// A database slow to answer does not hold up serving for long.
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var clients []string
	for _, id := range []string{app.DemoClientID, app.DemoOIDCClientID} {
		if _, err := m.Store.Client(ctx, id); err == nil {
			clients = append(clients, id)
		}
	}
	if len(clients) == 0 {
		return
	}
	args := []any{"clients", clients}
	remove := "oauthd client delete " + strings.Join(clients, ", oauthd client delete ")
	if _, err := m.Store.UserByUsername(ctx, app.DemoUsername); err == nil {
		args = append(args, "user", app.DemoUsername)
		remove += ", oauthd user delete " + app.DemoUsername
	}
	m.Logger.Warn("this database holds the records --demo seeded, whose credentials are public; remove them before production ("+remove+")", args...)
}
