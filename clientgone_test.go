package oauthd_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// slowStore holds CreateTokens until the request's context ends, then fails
// with the context's error, as sqlitestore does for a caller that went away.
type slowStore struct {
	oauthd.Storage
	entered chan struct{}
}

func (s *slowStore) CreateTokens(ctx context.Context, toks ...*oauthd.Token) error {
	close(s.entered)
	<-ctx.Done()
	return fmt.Errorf("store: %w", ctx.Err())
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A client that hangs up while its tokens are being stored is not a server
// failure: it is logged at INFO, never as an internal error at ERROR.
func TestClientGoneIsNotAnInternalError(t *testing.T) {
	var logs lockedBuffer
	slow := &slowStore{entered: make(chan struct{})}
	e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage { slow.Storage = s; return slow }, func(c *oauthd.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", e.url(oauthd.TokenPath),
		strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basic("service", "service-secret"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	select {
	case <-slow.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the token request never reached the store")
	}
	cancel() // the client hangs up
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "request ended before it was answered") {
		if time.Now().After(deadline) {
			t.Fatalf("no log line for the request that went away; logs:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if out := logs.String(); strings.Contains(out, "level=ERROR") {
		t.Errorf("a client hanging up was logged as an error:\n%s", out)
	}
}
