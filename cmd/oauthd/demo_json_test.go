package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/internal/app"
)

// serve --demo with JSON logs writes nothing but JSON records: the demo
// banner is one of them (a warning, without the demo passwords), not text
// lines among them; with text logs the banner is text on standard output.
func TestServeDemoBannerJSON(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		ctx, cancel := context.WithCancel(context.Background())
		r := runCmd(ctx, nil, func(string) { cancel() }, "serve", "--demo", "--log-format", format,
			"--addr", "127.0.0.1:0", "--db", filepath.Join(t.TempDir(), "o.db"))
		cancel()
		if r.code != 0 {
			t.Fatalf("%s: exit %d: %s", format, r.code, r.stderr)
		}
		if format == "text" {
			if !strings.Contains(r.stdout, "oauthd is running with DEMO credentials") || !strings.Contains(r.stdout, "admin / admin") {
				t.Errorf("text: no banner on standard output: %q", r.stdout)
			}
			continue
		}
		if r.stdout != "" {
			t.Errorf("json: standard output %q; want nothing", r.stdout)
		}
		var banner map[string]any
		for _, line := range strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Errorf("json: a line that is not JSON: %q", line)
				continue
			}
			if msg, _ := rec["msg"].(string); strings.Contains(msg, "DEMO") {
				banner = rec
			}
		}
		if banner == nil {
			t.Fatalf("json: no demo record in %s", r.stderr)
		}
		if banner["level"] != "WARN" || banner["user"] != app.DemoUsername || !strings.Contains(banner["walkthrough_url"].(string), "client_id=test_client") ||
			!strings.HasSuffix(banner["discovery_url"].(string), "/.well-known/openid-configuration") {
			t.Errorf("json: demo record %v", banner)
		}
		if strings.Contains(r.stderr, app.DemoOIDCClientSecret) || strings.Contains(r.stderr, `"`+app.DemoClientSecret+`"`) {
			t.Errorf("json: a demo secret is in the log: %s", r.stderr)
		}
	}
}
