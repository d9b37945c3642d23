package pgstore

import (
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// IsDSN reports whether s names a PostgreSQL database: a URL (postgres://
// or postgresql://), a string starting with one of libpq's main connection
// keys and "=" ("host=db1 dbname=oauthd user=oauthd"), or any string made
// wholly of key=value pairs in libpq's syntax ("keepalives=1 host=db1",
// "search_path=auth pool_max_conns=8"): the forms oauthd's --db flag takes.
// Anything else is a SQLite file (a file whose name looks like key=value
// pairs is written with a directory: ./a=b.db).
func IsDSN(s string) bool {
	return isURL(s) || kvDSN.MatchString(s) || kvPairs.MatchString(s)
}

// kvPairs matches a string of key=value pairs only, values quoted ('a b')
// or not, with backslash escapes.
var kvPairs = regexp.MustCompile(`^\s*(?:[A-Za-z_][A-Za-z0-9_.]*\s*=\s*(?:'(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)\s*)+$`)

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// kvDSN matches the start of a key=value connection string.
var kvDSN = regexp.MustCompile(`^\s*(host|hostaddr|port|dbname|user|password|passfile|sslmode|sslrootcert|sslcert|sslkey|connect_timeout|application_name|target_session_attrs|service|options)\s*=`)

// kvPassword matches the password of a key=value connection string, quoted
// or not.
var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)*)`)

// RedactDSN returns the DSN with its password replaced by xxxxx, for logs
// and messages: in the user information of a URL, in a password query
// parameter, or in a key=value connection string. A URL that does not parse
// is replaced as a whole.
func RedactDSN(dsn string) string {
	if !isURL(dsn) {
		return kvPassword.ReplaceAllString(dsn, "${1}xxxxx")
	}
	u, err := url.Parse(dsn)
	if err != nil {
		scheme, _, _ := strings.Cut(dsn, "://")
		return scheme + "://(a URL that does not parse)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// passwords returns the passwords a DSN may hold, raw and decoded, so that
// scrub can remove them from text. It is best effort for DSNs that do not
// parse.
func passwords(dsn string) []string {
	var pw []string
	add := func(p string) {
		if p != "" {
			pw = append(pw, p)
			if d, err := url.PathUnescape(p); err == nil && d != p {
				pw = append(pw, d)
			}
			if d, err := url.QueryUnescape(p); err == nil && d != p {
				pw = append(pw, d)
			}
		}
	}
	if isURL(dsn) {
		_, rest, _ := strings.Cut(dsn, "://")
		authority, _, _ := strings.Cut(rest, "/")
		// A password with an "@" not percent-encoded: the URL parser
		// takes the last "@" to end the user information, pgx the first
		// (and the rest goes into its host, and into its errors).
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			if _, p, ok := strings.Cut(authority[:i], ":"); ok {
				add(p)
				// pgx's host then starts with the part after the
				// password's first "@".
				for _, part := range strings.Split(p, "@")[1:] {
					if len(part) >= 3 {
						add(part)
					}
				}
			}
		}
		if _, query, ok := strings.Cut(rest, "?"); ok {
			for _, kv := range strings.Split(query, "&") {
				if k, v, ok := strings.Cut(kv, "="); ok && k == "password" {
					add(v)
				}
			}
		}
	}
	for _, m := range kvPassword.FindAllStringSubmatch(dsn, -1) {
		p := m[2]
		if len(p) >= 2 && p[0] == '\'' {
			add(p)
			p = p[1 : len(p)-1]
		}
		add(p)
		add(unescapeKV(p)) // as libpq and pgx read it: \x is x
	}
	return pw
}

// unescapeKV is a key=value connection string's value without its
// backslash escapes.
func unescapeKV(v string) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// scrub removes every password of dsn from text, the longest first (a
// part of a password must not leave the rest of it behind).
func scrub(text, dsn string) string {
	pw := passwords(dsn)
	slices.SortStableFunc(pw, func(a, b string) int { return len(b) - len(a) })
	for _, p := range pw {
		text = strings.ReplaceAll(text, p, "xxxxx")
	}
	return text
}

// errUnencodedAt refuses a URL whose user information has an "@" not
// percent-encoded: the URL parser and pgx split it differently (the rest of
// the password would become pgx's host, and show in its errors).
var errUnencodedAt = errors.New(`pgstore: invalid DSN: the user and password hold an "@": percent-encode it as %40`)

// unencodedAt reports whether the authority of a postgres:// URL has more
// than one "@".
func unencodedAt(dsn string) bool {
	if !isURL(dsn) {
		return false
	}
	_, rest, _ := strings.Cut(dsn, "://")
	authority, _, _ := strings.Cut(rest, "/")
	authority, _, _ = strings.Cut(authority, "?")
	return strings.Count(authority, "@") > 1
}
