package main

import (
	"context"
	"fmt"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

func cmdServe(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("serve", e)
	var cfg app.Config
	db := dbFlag(fs, e)
	fs.StringVar(&cfg.Addr, "addr", envOr(e, "OAUTHD_ADDR", "localhost:8000"), "listen address (env OAUTHD_ADDR)")
	fs.StringVar(&cfg.Issuer, "issuer", e.getenv("OAUTHD_ISSUER"), "public issuer URL (env OAUTHD_ISSUER; default http://<addr>)")
	fs.BoolVar(&cfg.Demo, "demo", false, "seed the walkthrough's demo clients test_client/password and oidc_client/oidc_secret and user admin/admin (not for production)")
	fs.StringVar(&cfg.LogFormat, "log-format", envOr(e, "OAUTHD_LOG_FORMAT", "text"), "log format: text or json (env OAUTHD_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", envOr(e, "OAUTHD_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env OAUTHD_LOG_LEVEL)")
	period := keyFlags(fs, e)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 0, "no arguments"); err != nil {
		return err
	}
	if err := keyConfig(e, *period, &cfg.Provider); err != nil {
		return err
	}
	cfg.DB = *db
	m, err := app.Open(ctx, cfg, e.stderr)
	if err != nil {
		return err
	}
	m.Logger.Info("oauthd is listening", "addr", m.Addr(), "issuer", m.Config.Issuer, "db", m.Config.DB)
	if cfg.Demo {
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
	m.Logger.Info("shutting down: finishing in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := m.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	return nil
}

func cmdMigrate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("migrate", e)
	db := dbFlag(fs, e)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	s, err := app.OpenStore(ctx, *db, true)
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Fprintln(e.stdout, "the database is up to date")
	return nil
}
