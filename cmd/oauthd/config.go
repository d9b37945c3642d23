package main

import (
	"context"
	"fmt"
	"time"
)

// cmdConfig shows or checks the effective configuration: the same flags,
// file and environment as serve.
func cmdConfig(_ context.Context, args []string, e *env) error {
	if ok, err := groupHelp(args, e, "config", []string{"print", "check"}, "usage: oauthd config print|check [--config FILE] [serve flags]\nRun 'oauthd config SUBCOMMAND --help' for its flags.\n"); !ok {
		return err
	}
	switch args[0] {
	case "print", "show":
		cfg, err := loadConfig("config print", args[1:], e)
		if err != nil {
			return err
		}
		// The issuer serve would derive from addr; none (shown empty)
		// when addr listens on every interface, where serve requires one.
		if cfg.Issuer == "" && !cfg.ListensEverywhere() {
			cfg.Issuer = cfg.DefaultIssuer()
		}
		return cfg.WriteYAML(e.stdout)
	case "check", "validate":
		cfg, err := loadConfig("config check", args[1:], e)
		if err != nil {
			return err
		}
		if err := cfg.CheckDeployment(); err != nil {
			return err
		}
		for _, name := range unknownEnv(e) {
			fmt.Fprintf(e.stderr, "oauthd: warning: the environment variable %s names no setting; it is ignored\n", name)
		}
		for _, w := range cfg.DeploymentWarnings(time.Now()) {
			fmt.Fprintf(e.stderr, "oauthd: warning: %s\n", w)
		}
		fmt.Fprintln(e.stdout, "the configuration is valid")
		return nil
	}
	return unknownSubcommand(e, "config", args[0], []string{"print", "check"})
}
