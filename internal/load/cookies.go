package load

import (
	"maps"
	"net/http"
	"slices"
	"strings"
)

// Cookies is a minimal cookie jar for one server: it keeps the name and
// value of every cookie the server set (dropping those it expired) and
// sends them all back. Paths, domains and expiry times are not tracked: a
// load test talks to one server whose cookies all have Path=/.
type Cookies map[string]string

// Update takes the Set-Cookie fields of resp.
func (j Cookies) Update(resp *Response) {
	for _, f := range resp.Header {
		if !strings.EqualFold(string(f.Name), "Set-Cookie") {
			continue
		}
		c, err := http.ParseSetCookie(string(f.Value))
		if err != nil {
			continue
		}
		if c.MaxAge < 0 || c.Value == "" {
			delete(j, c.Name)
			continue
		}
		j[c.Name] = c.Value
	}
}

// Header is the Cookie header value, "" when the jar is empty.
func (j Cookies) Header() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(j)) {
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(j[k])
	}
	return b.String()
}
