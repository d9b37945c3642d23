package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The request line of a request the server cut at shutdown says 503 and
// reason=shutdown; a request whose client went away still says 499, and
// nothing changes before the server cuts.
func TestCutLog(t *testing.T) {
	cutCtx, cancel := context.WithCancelCause(context.Background())
	cancel(errShutdownCut)
	goneCtx, cancel2 := context.WithCancel(context.Background())
	cancel2()
	for _, tt := range []struct {
		name       string
		cut        bool
		ctx        context.Context
		status     int
		wantStatus int
		wantReason string
	}{
		{"request cut at shutdown is 503 with reason=shutdown", true, cutCtx, 499, 503, "shutdown"},
		{"request cut at shutdown keeps another status", true, cutCtx, 200, 200, "shutdown"},
		{"request whose client went away stays 499", true, goneCtx, 499, 499, ""},
		{"request of a live context is unchanged", true, context.Background(), 499, 499, ""},
		{"nothing changes before the server cuts", false, cutCtx, 499, 499, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs logBuf
			var cut atomic.Bool
			cut.Store(tt.cut)
			log := slog.New(cutLog{slog.NewJSONHandler(&logs, nil), &cut}).With("request_id", "r1")
			log.LogAttrs(tt.ctx, slog.LevelInfo, "request", slog.String("path", "/oauth/token"), slog.Int("status", tt.status))
			recs := logs.records(t)
			if len(recs) != 1 {
				t.Fatalf("%d records; want 1", len(recs))
			}
			if r := recs[0]; r.Status != tt.wantStatus || r.Reason != tt.wantReason || !strings.Contains(r.raw, `"request_id":"r1"`) || !strings.Contains(r.raw, `"path":"/oauth/token"`) {
				t.Errorf("record %s; want status %d, reason %q, request_id and path kept", r.raw, tt.wantStatus, tt.wantReason)
			}
		})
	}
}

// A request still running when shutdown_timeout passes is logged and
// counted as 503 with reason=shutdown: the server ended it, no client went
// away.
func TestShutdownCutRequestIs503(t *testing.T) {
	s := newFakeStore()
	var logs logBuf
	m, err := open(t.Context(), Config{Addr: "127.0.0.1:0", LogFormat: "json"}, s, &logs)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	hang := make(chan struct{})
	s.mu.Lock()
	s.clientHang = hang
	s.mu.Unlock()
	answer := make(chan string, 1)
	go func() {
		res, err := http.PostForm("http://"+m.Addr()+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"x"}, "client_secret": {"y"}})
		if err != nil {
			answer <- err.Error()
			return
		}
		res.Body.Close()
		answer <- fmt.Sprintf("%d Retry-After %s", res.StatusCode, res.Header.Get("Retry-After"))
	}()
	<-hang // the request waits on the store
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := m.Shutdown(ctx); err == nil {
		t.Error("Shutdown: nil; want the timeout's error")
	}
	<-done
	var line *logRecord
	deadline := time.Now().Add(5 * time.Second)
	for line == nil && time.Now().Before(deadline) {
		for _, r := range logs.records(t) {
			if r.Msg == "request" {
				line = &r
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if line == nil || line.Status != 503 || line.Reason != "shutdown" {
		t.Errorf("request line %+v; want status 503, reason shutdown", line)
	}
	// The client, still connected, gets the 503 with Retry-After before
	// its connection closes: it may try again elsewhere.
	if got := <-answer; !strings.HasPrefix(got, "503 Retry-After ") || got == "503 Retry-After " {
		t.Errorf("the client got %q; want 503 with Retry-After", got)
	}
	lines := map[string]float64{}
	for _, code := range []string{"499", "503"} {
		lines[code] = counterValue(m.Metrics.requests.WithLabelValues("/oauth/token", "POST", code))
	}
	if lines["503"] != 1 || lines["499"] != 0 {
		t.Errorf("oauthd_http_requests_total of /oauth/token: 503 %v, 499 %v; want 1 and 0", lines["503"], lines["499"])
	}
}
