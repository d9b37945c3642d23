package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

// errUsage means the flags were wrong; the flag package already said why.
var errUsage = errors.New("usage")

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
// (errHelp). ok is true when args[0] may be a subcommand.
func groupHelp(args []string, e *env, usage string) (ok bool, err error) {
	switch {
	case len(args) == 0:
		fmt.Fprint(e.stderr, usage)
		return false, errUsage
	case isHelp(args[0]):
		fmt.Fprint(e.stdout, usage)
		return false, errHelp
	}
	return true, nil
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
		*l = append(*l, s)
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

// parse parses flags and positional arguments in any order.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for _, a := range args {
		if a == "--" {
			break
		}
		if o, ok := fs.Output().(*cliOutput); ok && a != "help" && isHelp(a) {
			o.help = true
		}
	}
	for {
		if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
			return nil, errHelp
		} else if err != nil {
			return nil, errUsage
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
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
	fromFile := func(path string) {
		cfg, err := app.ReadFile(path)
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
		fromFile(path)
	}
	fs.Func("db", "SQLite file path or postgres:// DSN (env OAUTHD_DB)", func(v string) error {
		*db, explicit = v, true
		return nil
	})
	fs.Func("config", "YAML configuration `file` whose db key to use (env OAUTHD_CONFIG)", func(path string) error {
		fromFile(path)
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

func wantArgs(pos []string, n int, what string) error {
	if len(pos) != n {
		return fmt.Errorf("expected %s", what)
	}
	return nil
}

// openArgs parses a command's flags and its n positional arguments
// (described by what, for the error) and opens the database db names.
func openArgs(ctx context.Context, fs *flag.FlagSet, db *string, args []string, n int, what string) (oauthd.Storage, []string, error) {
	pos, err := parse(fs, args)
	if err != nil {
		return nil, nil, err
	}
	if err := wantArgs(pos, n, what); err != nil {
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
