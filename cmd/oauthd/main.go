// Command oauthd is the oauthd authorization server: `oauthd serve` runs
// it, and the client, user and migrate commands manage its database.
//
//	oauthd serve --demo            # the walkthrough's demo client and user
//	oauthd client create --redirect-uri https://app.example.com/cb --scope "openid email"
//	oauthd user add alice
//
// Run `oauthd help` for every command and flag.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		// The first signal starts a graceful shutdown; a second one
		// (Ctrl-C again) stops the process at once, as the signal's
		// default action does.
		<-sigs
		cancel()
		second := <-sigs
		signal.Reset(second)
		if p, err := os.FindProcess(os.Getpid()); err == nil {
			p.Signal(second)
		}
		// Still here: the signal was ignored when the process started (a
		// background job of a shell without job control ignores SIGINT),
		// and Reset brought that back. Exit as a shell reports a process
		// the signal ended.
		time.Sleep(100 * time.Millisecond)
		if n, ok := second.(syscall.Signal); ok {
			os.Exit(128 + int(n))
		}
		os.Exit(1)
	}()
	os.Exit(run(ctx, os.Args[1:], &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, environ: os.Environ}))
}

// env is the outside world of a command, so tests can run commands.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	environ        func() []string // the NAME=value list, for warnings about unknown OAUTHD_ names; may be nil
	// ready, when set, is called with the listen address once serve listens.
	ready func(addr string)
}

const usage = `oauthd — an OAuth 2.1 and OpenID Connect authorization server

Usage:
  oauthd serve [--config FILE] [--demo] [--addr localhost:8000] [--db oauthd.db] [--issuer URL] [--no-migrate] [...]
  oauthd config print|check [--config FILE] [serve flags]
  oauthd client create [--id ID] [--secret S] [--redirect-uri URI...] [--scope "a b"] [--grant TYPE...] [--public]
  oauthd client update ID [flags] [--rotate-secret] | list [--json] | show ID [--json] | delete ID
  oauthd user add NAME [--password-stdin] [--claim k=v...] | list [--json] | delete NAME | passwd NAME [--password-stdin]
  oauthd user claims NAME [--claim k=v...] [--unset k...]
  oauthd keys list [--json] | rotate [--alg RS256|ES256|EdDSA]
  oauthd grants list USER [--json] | revoke USER CLIENT_ID
  oauthd migrate
  oauthd backup NEW_FILE
  oauthd bench [--scenario client_credentials|code|refresh|introspect|flow|mixed] [--baseline] [--url URL]
  oauthd version

Every command takes --db (env OAUTHD_DB; default oauthd.db in the current
directory): a SQLite file path or a PostgreSQL URL
(postgres://user:password@host:5432/dbname); or --config FILE (env
OAUTHD_CONFIG), a YAML file whose db key is used. Every command but serve
--no-migrate brings the database schema up to date first. serve reads every
setting from the defaults, then the file, then OAUTHD_* variables, then
flags; 'oauthd serve --help' lists them, 'oauthd config print' shows the
result.
Run 'oauthd COMMAND --help' for a command's flags.
`

func run(ctx context.Context, args []string, e *env) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return 2
	}
	switch args[0] {
	case "client", "clients", "user", "users", "keys", "key", "grants", "grant", "consents", "migrate", "backup":
		// serve logs these warnings, and config check prints them.
		for _, name := range unknownEnv(e) {
			fmt.Fprintf(e.stderr, "oauthd: warning: the environment variable %s names no setting; it is ignored\n", name)
		}
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], e)
	case "client", "clients":
		err = cmdClient(ctx, args[1:], e)
	case "user", "users":
		err = cmdUser(ctx, args[1:], e)
	case "keys", "key":
		err = cmdKeys(ctx, args[1:], e)
	case "grants", "grant", "consents":
		err = cmdGrants(ctx, args[1:], e)
	case "migrate":
		err = cmdMigrate(ctx, args[1:], e)
	case "backup":
		err = cmdBackup(ctx, args[1:], e)
	case "bench":
		err = cmdBench(ctx, args[1:], e)
	case "config":
		err = cmdConfig(ctx, args[1:], e)
	case "version", "--version":
		err = cmdVersion(args[1:], e)
	case "help", "-h", "--help":
		if len(args) > 1 && !isHelp(args[1]) {
			// oauthd help client create: the help of that command.
			return run(ctx, append(slices.Clone(args[1:]), "--help"), e)
		}
		fmt.Fprint(e.stdout, usage)
	default:
		if strings.HasPrefix(args[0], "-") {
			fmt.Fprintf(e.stderr, "oauthd: give a command before flags: %s\nRun 'oauthd help' for usage.\n", strings.Join(commands, ", "))
			return 2
		}
		fmt.Fprintf(e.stderr, "oauthd: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch err {
	case errUsage:
		return 2
	case errHelp:
		return 0
	case errInterrupted:
		fmt.Fprintln(e.stderr, "oauthd: interrupted")
		return 130 // as a shell reports a process SIGINT ended
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "oauthd: %s\n", errorMessage(err))
		return 1
	}
	return 0
}

// commands are the commands of run, for the message about a flag given
// before one.
var commands = []string{"serve", "config", "client", "user", "keys", "grants", "migrate", "backup", "bench", "version", "help"}

// errorMessage is the text of a command's error without the "oauthd: "
// the library's errors start with, at the start or after a wrapping
// context: run prints it once, before the whole message.
func errorMessage(err error) string {
	msg := err.Error()
	for {
		m, ok := strings.CutPrefix(msg, "oauthd: ")
		if !ok {
			break
		}
		msg = m
	}
	for strings.Contains(msg, ": oauthd: ") {
		msg = strings.ReplaceAll(msg, ": oauthd: ", ": ")
	}
	return oneLine(msg)
}

// oneLine puts a message of several lines (pgx's error for each address a
// PostgreSQL host resolves to, one a line) on one, the lines joined with
// "; ": every error is one line.
func oneLine(msg string) string {
	if !strings.ContainsAny(msg, "\r\n") {
		return msg
	}
	var parts []string
	for _, l := range strings.FieldsFunc(msg, func(r rune) bool { return r == '\n' || r == '\r' }) {
		if l = strings.TrimSpace(l); l != "" {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// cmdVersion prints the version; it takes no arguments.
func cmdVersion(args []string, e *env) error {
	fs := newFlagSet("version", e)
	fs.Usage = func() { fmt.Fprint(fs.Output(), "usage: oauthd version\n\nPrints the version of oauthd.\n") }
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "oauthd", versionString(version, readBuildInfo))
	return nil
}

// version is set at build time (-ldflags "-X main.version=v1.2.3", as the
// Dockerfile does).
var version = "dev"

var readBuildInfo = debug.ReadBuildInfo

// versionString is v, or, for a build that did not set it, what Go
// recorded of the build: the module version of a `go install
// ...@version`, else the commit the binary was built from (with "+dirty"
// for uncommitted changes); "dev" when neither is known.
func versionString(v string, info func() (*debug.BuildInfo, bool)) string {
	if v != "dev" {
		return v
	}
	bi, ok := info()
	if !ok {
		return v
	}
	if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
		return mv
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if modified == "true" {
		rev += "+dirty"
	}
	return "dev-" + rev
}
