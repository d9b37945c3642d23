package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// serve --demo on a database where test_client exists with another secret
// (SeedDemo leaves it alone): the text banner is followed by a note that
// its credentials fail for that client, where the banner's reader looks,
// not only in the log.
func TestServeDemoBannerNamesRecordsItDidNotSeed(t *testing.T) {
	db := filepath.Join(t.TempDir(), "o.db")
	if code, _, stderr := oauthdCmd(t, db, "", "client", "create", "--id", app.DemoClientID, "--secret", "not-the-demos-secret-1234",
		"--redirect-uri", "https://app.example.com/cb"); code != 0 {
		t.Fatalf("client create: exit %d: %s", code, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
	e := &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"serve", "--demo", "--addr", "127.0.0.1:0", "--db", db}, e) }()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), "NOT THE DEMO'S"); {
		select {
		case code := <-done:
			t.Fatalf("serve ended: exit %d: %s", code, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no note after the banner in 20 s: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve: exit %d: %s", code, errOut.String())
	}
	got := out.String()
	if i, j := strings.Index(got, "DEMO credentials"), strings.Index(got, "NOT THE DEMO'S: client test_client in this database"); i < 0 || j < i {
		t.Errorf("standard output %q; want the banner, then the note naming client test_client", got)
	}
	if strings.Contains(got, "user admin") {
		t.Errorf("standard output %q names user admin, which --demo seeded", got)
	}
}
