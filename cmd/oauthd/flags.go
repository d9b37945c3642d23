package main

import (
	"errors"
	"flag"
	"fmt"
	"strings"
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

// dbFlag adds --db with its environment default.
func dbFlag(fs *flag.FlagSet, e *env) *string {
	def := e.getenv("OAUTHD_DB")
	if def == "" {
		def = "oauthd.db"
	}
	return fs.String("db", def, "SQLite file path or postgres:// DSN (env OAUTHD_DB)")
}

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
