package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/oauthd/oauthd/internal/app"
)

// errUsage means the flags were wrong; the flag package already said why.
var errUsage = errors.New("usage")

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

// parse parses flags and positional arguments in any order.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
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
	db := new(string)
	explicit := false
	fromFile := func(path string) {
		cfg, err := app.ReadFile(path)
		if err != nil {
			*db = badConfig + err.Error()
			return
		}
		*db = cfg.DB
	}
	*db = e.getenv("OAUTHD_DB")
	if *db != "" {
		explicit = true
	} else if path := e.getenv("OAUTHD_CONFIG"); path != "" {
		fromFile(path)
	} else {
		*db = "oauthd.db"
	}
	fs.Func("db", "SQLite file path or postgres:// DSN (env OAUTHD_DB)", func(v string) error {
		*db, explicit = v, true
		return nil
	})
	fs.Func("config", "YAML configuration file whose db key to use (env OAUTHD_CONFIG)", func(path string) error {
		if !explicit {
			fromFile(path)
		}
		return nil
	})
	return db
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
	fs.SetOutput(e.stderr)
	return fs
}

func wantArgs(pos []string, n int, what string) error {
	if len(pos) != n {
		return fmt.Errorf("expected %s", what)
	}
	return nil
}
