package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

// errUsage means the flags were wrong; the flag package already said why.
var errUsage = errors.New("usage")

// errInterrupted is the error of a command Ctrl-C stopped before it
// changed anything (a password prompt): exit status 130.
var errInterrupted = errors.New("interrupted")

// errHelp means the command printed the help it was asked for (-h,
// --help): the command exits 0.
var errHelp = errors.New("help")

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// groupHelp handles the arguments of a command that has subcommands
// (oauthd client ...) when they name none: with no arguments it prints
// usage to standard error (errUsage); asked for help, to standard output
// (errHelp); given a flag first, it says that the subcommand comes first
// (errUsage). ok is true when args[0] may be a subcommand.
func groupHelp(args []string, e *env, group string, subs []string, usage string) (ok bool, err error) {
	switch {
	case len(args) == 0:
		fmt.Fprint(e.stderr, usage)
		return false, errUsage
	case isHelp(args[0]):
		fmt.Fprint(e.stdout, usage)
		return false, errHelp
	case strings.HasPrefix(args[0], "-"):
		fmt.Fprintf(e.stderr, "oauthd %s: give a subcommand before flags: %s\n", group, strings.Join(subs, ", "))
		return false, errUsage
	}
	return true, nil
}

// unknownSubcommand says that sub is none of the group's subcommands.
func unknownSubcommand(e *env, group, sub string, subs []string) error {
	fmt.Fprintf(e.stderr, "oauthd %s: unknown subcommand %q (%s)\n", group, sub, strings.Join(subs, ", "))
	return errUsage
}

// cliOutput is a flag set's output: standard error, but standard output
// when help was asked for, so that 'oauthd serve --help | less' works.
type cliOutput struct {
	stdout, stderr io.Writer
	help           bool
}

func (o *cliOutput) Write(p []byte) (int, error) {
	if o.help {
		return o.stdout.Write(p)
	}
	return o.stderr.Write(p)
}

// listFlag is a repeatable flag; each value may also hold several items
// separated by commas or spaces.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, " ") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !slices.Contains(*l, s) { // a value given twice is kept once
			*l = append(*l, s)
		}
	}
	return nil
}

// uriFlag is a repeatable flag that takes one URI per value
// (--redirect-uri), whole: a comma may be part of a URI. Several URIs
// joined by commas are refused, and so is a value with whitespace, rather
// than split:
// "https://app.example/cb https://app.example/cb2" is a mistake for two
// --redirect-uri, and "not a url" is not three URIs.
type uriFlag struct {
	name string    // the flag's, for the error
	uris *[]string // where the values go
}

func (f *uriFlag) String() string {
	if f.uris == nil {
		return ""
	}
	return strings.Join(*f.uris, " ")
}

func (f *uriFlag) Set(v string) error {
	if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
		return fmt.Errorf("a URI has no spaces: to give several, repeat --%s for each", f.name)
	}
	if parts := strings.Split(v, ","); len(parts) > 1 && !slices.ContainsFunc(parts, func(p string) bool {
		u, err := url.Parse(p)
		return err != nil || !u.IsAbs()
	}) {
		// Commas may be part of a URI (a query's "a=1,2"), so the value is
		// kept whole, but several URIs joined by commas are refused
		// rather than registered as one.
		return fmt.Errorf("%q looks like several URIs joined by commas: give one per flag, repeating --%s for each (percent-encode a comma that is part of the URI as %%2C)", v, f.name)
	}
	if strings.HasSuffix(v, ",") {
		return fmt.Errorf("%q ends with a comma: give one URI per flag, repeating --%s for each", v, f.name)
	}
	if v != "" && !slices.Contains(*f.uris, v) {
		*f.uris = append(*f.uris, v)
	}
	return nil
}

// valuesFlag is a repeatable flag whose values are kept whole, spaces
// included (--claim "name=Ada Lovelace").
type valuesFlag []string

func (l *valuesFlag) String() string { return strings.Join(*l, ", ") }
func (l *valuesFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// commaListFlag is a repeatable flag whose values may hold several items
// separated by commas, and whose items may contain spaces
// (--response-type "code id_token,code").
type commaListFlag []string

func (l *commaListFlag) String() string { return strings.Join(*l, ",") }
func (l *commaListFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// parse parses flags and positional arguments in any order, and checks
// that there are n positional arguments (described by what, e.g. "one
// username" or "no arguments"). A wrong flag, or too many or too few
// arguments, is reported in one line on standard error (errUsage);
// --help prints the command's usage on standard output (errHelp).
func parse(fs *flag.FlagSet, args []string, n int, what string) ([]string, error) {
	var pos []string
	var at []int // the index in args of each of pos
	rest := args
	for {
		if err := parseFlags(fs, rest); err != nil {
			return nil, err
		}
		i := len(args) - len(fs.Args())
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		if rest[0] == "--" {
			for j := range rest[1:] {
				pos, at = append(pos, rest[1+j]), append(at, i+1+j)
			}
			break
		}
		pos, at = append(pos, rest[0]), append(at, i)
		rest = rest[1:]
	}
	switch {
	case len(pos) > n:
		return nil, usageError(fs, "unexpected argument %q (%s)", pos[n], extraArgHint(fs, args, at[n], n, what))
	case len(pos) < n:
		return nil, usageError(fs, "expected %s", what)
	}
	return pos, nil
}

// parseFlags is fs.Parse, but a wrong flag is told in one line and a
// pointer to --help, not with the whole usage; asked for help (-h,
// --help), it prints the usage on standard output.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		if o, ok := out.(*cliOutput); ok {
			o.help = true
		}
		if usage != nil {
			usage()
		} else {
			fmt.Fprintf(out, "Usage of %s:\n", fs.Name())
			fs.PrintDefaults()
		}
		return errHelp
	case err != nil:
		usageError(fs, "%s", err)
		fmt.Fprintf(stderrOf(fs), "Run '%s --help' for usage.\n", fs.Name())
		return errUsage
	}
	return nil
}

// usageError tells a mistake in a command's arguments on standard error,
// in one line after the command's name, and returns errUsage (exit 2).
func usageError(fs *flag.FlagSet, format string, a ...any) error {
	fmt.Fprintf(stderrOf(fs), "%s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	return errUsage
}

// stderrOf is the standard error of a flag set made by newFlagSet.
func stderrOf(fs *flag.FlagSet) io.Writer {
	if o, ok := fs.Output().(*cliOutput); ok {
		return o.stderr
	}
	return fs.Output()
}

// extraArgHint explains an unexpected argument, args[i]: most often the
// second word of a flag's value that was not quoted (--scope email
// profile, --name Web App).
func extraArgHint(fs *flag.FlagSet, args []string, i, n int, what string) string {
	var f *flag.Flag
	var prev string
	if i >= 1 && strings.HasPrefix(args[i-1], "-") {
		if name, v, ok := strings.Cut(strings.TrimLeft(args[i-1], "-"), "="); ok {
			f, prev = fs.Lookup(name), v
		}
	}
	if f == nil && i >= 2 && strings.HasPrefix(args[i-2], "-") && !strings.HasPrefix(args[i-1], "-") {
		if g := fs.Lookup(strings.TrimLeft(args[i-2], "-")); g != nil && !isBoolFlag(g) {
			f, prev = g, args[i-1]
		}
	}
	takes := "it takes " + what
	if n == 0 {
		takes = "it takes no arguments"
	}
	if f == nil {
		return takes
	}
	joined := fmt.Sprintf("--%s %q", f.Name, prev+" "+args[i])
	switch f.Value.(type) {
	case *listFlag:
		return fmt.Sprintf("to give several values, repeat --%s or quote them as one: %s", f.Name, joined)
	case *uriFlag:
		return fmt.Sprintf("one URI per --%s: repeat it for several, e.g. --%s %s --%s %s", f.Name, f.Name, prev, f.Name, args[i])
	case *valuesFlag, *commaListFlag:
		return fmt.Sprintf("quote a value with spaces: %s; to give several values, repeat --%s", joined, f.Name)
	}
	return fmt.Sprintf("quote a value with spaces: %s", joined)
}

// isBoolFlag reports whether f takes no value (--public).
func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// dbFlag adds --db and --config: the database is --db, else OAUTHD_DB,
// else the db key of the configuration file (--config, else
// OAUTHD_CONFIG), else oauthd.db. Only the file's syntax and keys are
// checked, not its other values (a command managing clients need not
// read the TLS key). A file that cannot be read makes openDB fail.
func dbFlag(fs *flag.FlagSet, e *env) *string {
	db, _ := configFlags(fs, e)
	return db
}

// fileConfig is the configuration file a command was given, if any.
type fileConfig struct {
	cfg *app.Config // nil without a file, or when it could not be read
	err error       // why it could not be read
}

// configFlags is dbFlag that also returns the configuration file's
// settings, for commands that need more of them than db.
func configFlags(fs *flag.FlagSet, e *env) (*string, *fileConfig) {
	db := new(string)
	fc := &fileConfig{}
	explicit := false
	fromFile := func(path, from string) {
		cfg, err := app.ReadFileFrom(path, from)
		if err != nil {
			fc.cfg, fc.err = nil, err
			if !explicit {
				*db = badConfig + err.Error()
			}
			return
		}
		fc.cfg, fc.err = &cfg, nil
		if !explicit {
			*db = cfg.DB
		}
	}
	*db = e.getenv("OAUTHD_DB")
	explicit = *db != ""
	if !explicit {
		*db = "oauthd.db"
	}
	if path := e.getenv("OAUTHD_CONFIG"); path != "" {
		fromFile(path, "OAUTHD_CONFIG")
	}
	fs.Func("db", "SQLite file path or postgres:// DSN (env OAUTHD_DB)", func(v string) error {
		*db, explicit = v, true
		return nil
	})
	fs.Func("config", "YAML configuration `file` whose db key to use (env OAUTHD_CONFIG)", func(path string) error {
		fromFile(path, "--config")
		return nil
	})
	return db, fc
}

// badConfig starts the value of --db when the configuration file that was
// to name the database could not be read; openDB reports it.
const badConfig = "\x00bad config: "

func envOr(e *env, name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet("oauthd "+name, flag.ContinueOnError)
	fs.SetOutput(&cliOutput{stdout: e.stdout, stderr: e.stderr})
	return fs
}

// openArgs parses a command's flags and its n positional arguments
// (described by what, for the error) and opens the database db names.
func openArgs(ctx context.Context, fs *flag.FlagSet, db *string, args []string, n int, what string) (oauthd.Storage, []string, error) {
	pos, err := parse(fs, args, n, what)
	if err != nil {
		return nil, nil, err
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return nil, nil, err
	}
	return s, pos, nil
}

// findUser returns the user with the username, or an error naming it.
func findUser(ctx context.Context, s oauthd.Storage, username string) (*oauthd.User, error) {
	u, err := s.UserByUsername(ctx, username)
	if errors.Is(err, oauthd.ErrNotFound) {
		return nil, fmt.Errorf("no user %q", username)
	}
	return u, err
}

// findClient returns the client with the id, or an error naming it.
func findClient(ctx context.Context, s oauthd.Storage, id string) (*oauthd.Client, error) {
	c, err := s.Client(ctx, id)
	if errors.Is(err, oauthd.ErrNotFound) {
		return nil, fmt.Errorf("no client %q", id)
	}
	return c, err
}

// durationValue is a time.Duration flag whose error says what a duration
// looks like (flag's own says "parse error").
type durationValue time.Duration

func (d *durationValue) String() string { return time.Duration(*d).String() }
func (d *durationValue) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 90s, 15m or 24h", s)
	}
	*d = durationValue(v)
	return nil
}

// durationFlag defines a duration flag with a helpful error.
func durationFlag(fs *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = value
	fs.Var((*durationValue)(p), name, usage)
	return p
}
