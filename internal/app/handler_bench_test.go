package app_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	loadgen "github.com/oauthd/oauthd/internal/load"
	"github.com/oauthd/oauthd/internal/secret"
)

// BenchmarkHandler serves requests through the very handler `oauthd serve`
// listens with (metrics middleware, Provider, SQLite store), with no
// network, one at a time, next to load.BareHandler (the bare handler of
// `oauthd bench --baseline`) answering the same request with the recorded
// answer. The difference of the two is what the OAuth server adds to a
// request's CPU time, without the noise of a load test.
func BenchmarkHandler(b *testing.B) {
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(b.TempDir(), "oauthd.db"), LogLevel: "warn"}
	m, err := app.Open(context.Background(), cfg, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { m.Shutdown(context.Background()) })
	h := m.Handler()
	const id, sec = "svc", "bench-secret-0123456789"
	sh, err := secret.Hash(sec)
	if err != nil {
		b.Fatal(err)
	}
	if err := m.Store.CreateClient(context.Background(), &oauthd.Client{ID: id, SecretHash: sh,
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}}); err != nil {
		b.Fatal(err)
	}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+sec))

	// An access token of client_credentials to introspect.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, formRequest(oauthd.TokenPath, "grant_type=client_credentials", basic))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tok); err != nil || tok.AccessToken == "" {
		b.Fatalf("token: %d %s", w.Code, w.Body)
	}

	for _, sc := range []struct{ name, path, form string }{
		{"introspect", oauthd.IntrospectPath, "token=" + tok.AccessToken},
		{"client_credentials", oauthd.TokenPath, "grant_type=client_credentials"},
	} {
		// Record oauthd's answer for the bare handler.
		w := httptest.NewRecorder()
		h.ServeHTTP(w, formRequest(sc.path, sc.form, basic))
		if w.Code != http.StatusOK {
			b.Fatalf("%s: %d %s", sc.name, w.Code, w.Body)
		}
		x := loadgen.Exchange{Method: "POST", Path: sc.path, Status: w.Code, RespBody: w.Body.Bytes()}
		for k, vs := range w.Header() {
			for _, v := range vs {
				x.RespHeader = append(x.RespHeader, loadgen.Field{Name: k, Value: v})
			}
		}
		bare := loadgen.BareHandler(loadgen.Trace{x})
		for _, srv := range []struct {
			name string
			h    http.Handler
		}{{"oauthd", h}, {"bare", bare}} {
			b.Run(sc.name+"/"+srv.name, func(b *testing.B) {
				tmpl := formRequest(sc.path, sc.form, basic)
				body := strings.NewReader(sc.form)
				rw := &benchWriter{h: http.Header{}}
				b.ReportAllocs()
				for b.Loop() {
					body.Reset(sc.form)
					r := *tmpl
					r.Body = io.NopCloser(body)
					clear(rw.h)
					rw.status = 0
					srv.h.ServeHTTP(rw, &r)
					if rw.status != http.StatusOK {
						b.Fatalf("%d", rw.status)
					}
				}
			})
		}
	}
}

func formRequest(path, form, basic string) *http.Request {
	r := httptest.NewRequest("POST", path, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", basic)
	r.RemoteAddr = "127.0.0.1:40000"
	return r
}

// benchWriter is a ResponseWriter that keeps nothing but the status.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header { return w.h }
func (w *benchWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *benchWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(b), nil
}
