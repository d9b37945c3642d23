package app_test

import (
	"strings"
	"testing"
)

// A file of several YAML documents is refused, naming the line of the
// second: everything after the first (unknown keys too) used to be
// ignored. An empty document after the first (a trailing ---) is allowed.
func TestConfigSeveralDocumentsRefused(t *testing.T) {
	for _, tt := range []struct {
		file string
		want string // "" for no error
	}{
		{"addr: 127.0.0.1:1\n---\nlifetimes:\n  acess_token_ttl: 1h\n", "oauthd.yaml:2: a second YAML document (after ---): the file must be one document; put every key in the first"},
		{"addr: 127.0.0.1:1\n\n--- \naddr: 127.0.0.1:2\n", "oauthd.yaml:3: a second YAML document"},
		{"addr: 127.0.0.1:1\n---\n---\nlog:\n  level: debug\n", "oauthd.yaml:3: a second YAML document"},
		{"addr: 127.0.0.1:1\n---\n[\n", "oauthd.yaml: yaml: line 3"},
		{"addr: 127.0.0.1:1\n---\n", ""},
		{"addr: 127.0.0.1:1\n---\n# nothing more\n", ""},
		{"---\naddr: 127.0.0.1:1\n", ""},
		{"addr: 127.0.0.1:1\n...\n", ""},
	} {
		path := writeFile(t, tt.file)
		c, err := load(t, map[string]string{"OAUTHD_CONFIG": path})
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%q: %v", tt.file, err)
		case tt.want == "" && c.Addr != "127.0.0.1:1":
			t.Errorf("%q: addr %s", tt.file, c.Addr)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), "config: "+strings.TrimSuffix(path, "oauthd.yaml")+tt.want)):
			t.Errorf("%q: error %v; want %q", tt.file, err, tt.want)
		}
	}
}
