package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/oauthd/oauthd/internal/app"
)

// What the README's Logs section says is logged: one "request" record for
// every request the endpoints, pages and static files answer (unknown
// paths too), none for /healthz, /readyz and /metrics (on addr or on
// metrics.addr), and none at all above the info level.
func TestRequestLogLines(t *testing.T) {
	for _, tt := range []struct {
		level       string
		metricsAddr string
		want        []string
	}{
		{"info", "", []string{"GET /.well-known/openid-configuration", "GET /static/oauthd.css", "GET /nosuch", "POST /oauth/token"}},
		{"info", "127.0.0.1:0", []string{"GET /.well-known/openid-configuration", "GET /static/oauthd.css", "GET /nosuch", "POST /oauth/token"}},
		{"warn", "", nil},
	} {
		var logs syncBuffer
		cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "o.db"), LogFormat: "json", LogLevel: tt.level, MetricsAddr: tt.metricsAddr}
		m, err := app.Open(context.Background(), cfg, &logs)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Serve() }()
		base, ops := "http://"+m.Addr(), "http://"+m.Addr()
		if tt.metricsAddr != "" {
			ops = "http://" + m.MetricsAddr()
		}
		for _, r := range []struct{ method, url string }{
			{"GET", ops + "/healthz"}, {"HEAD", ops + "/healthz"}, {"GET", ops + "/readyz"}, {"GET", ops + "/metrics"}, {"POST", ops + "/healthz"},
			{"GET", base + "/.well-known/openid-configuration"}, {"GET", base + "/static/oauthd.css"}, {"GET", base + "/nosuch"},
			{"POST", base + "/oauth/token"},
		} {
			req, _ := http.NewRequest(r.method, r.url, nil)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		m.Shutdown(context.Background())
		<-done
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			if line == "" {
				continue
			}
			var rec struct{ Msg, Method, Path, Request_ID, IP string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			if rec.Msg == "request" {
				if rec.Request_ID == "" || rec.IP == "" {
					t.Errorf("request record without request_id or ip: %s", line)
				}
				got = append(got, rec.Method+" "+rec.Path)
			}
		}
		// A request's line may be written after its answer reached the
		// client, so after the next request's: the order is not asserted.
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tt.want))
		if !slices.Equal(got, want) {
			t.Errorf("level %s, metrics.addr %q: logged %q; want %q", tt.level, tt.metricsAddr, got, tt.want)
		}
	}
}

// The README says which requests are logged, not "every request".
func TestREADMELogsSaysWhatIsLogged(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, logs, _ := bytes.Cut(b, []byte("### Logs\n"))
	logs, _, _ = bytes.Cut(logs, []byte("\n### "))
	s := string(logs)
	if strings.Contains(s, "Every request has one line") {
		t.Error(`README's Logs section says "Every request has one line"`)
	}
	for _, want := range []string{"`/healthz`, `/readyz` and `/metrics` are not logged", "`log.level` `warn`", "`duration_ms`"} {
		if !strings.Contains(s, want) {
			t.Errorf("README's Logs section lacks %q", want)
		}
	}
}
