package pgstore

import (
	"net/url"
	"regexp"
	"strings"
)

// IsDSN reports whether s is a PostgreSQL URL (postgres:// or
// postgresql://), the form oauthd's --db flag takes.
func IsDSN(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// kvPassword matches the password of a key=value connection string, quoted
// or not.
var kvPassword = regexp.MustCompile(`(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^\s]*)`)

// RedactDSN returns the DSN with its password replaced by xxxxx, for logs
// and messages: in the user information of a URL, in a password query
// parameter, or in a key=value connection string. A URL that does not parse
// is replaced as a whole.
func RedactDSN(dsn string) string {
	if !IsDSN(dsn) {
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
	if IsDSN(dsn) {
		_, rest, _ := strings.Cut(dsn, "://")
		authority, _, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			if _, p, ok := strings.Cut(authority[:i], ":"); ok {
				add(p)
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
			p = strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(p[1 : len(p)-1])
		}
		add(p)
	}
	return pw
}

// scrub removes every password of dsn from text.
func scrub(text, dsn string) string {
	for _, p := range passwords(dsn) {
		text = strings.ReplaceAll(text, p, "xxxxx")
	}
	return text
}
