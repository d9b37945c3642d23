package app

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// refusingStore is a fakeStore whose CreateAuthRequest fails with err
// while err is set, as a store on a full disk does.
type refusingStore struct {
	*fakeStore
	mu  sync.Mutex
	err error
}

func (s *refusingStore) refuse(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

func (s *refusingStore) CreateAuthRequest(ctx context.Context, r *oauthd.AuthRequest) error {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.fakeStore.CreateAuthRequest(ctx, r)
}

func authRequest(id string) *oauthd.AuthRequest {
	now := time.Now()
	return &oauthd.AuthRequest{ID: id, ClientID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
}

// /readyz answers 503, with the reason, while the store's database refuses
// writes (a full disk, a read-only database), although it answers pings:
// from a refused write until a write succeeds, or writeFailureWindow
// after the last refusal. Other failures, and a garbage collection that
// deleted nothing, change nothing.
func TestReadyzWhenWritesAreRefused(t *testing.T) {
	s := &refusingStore{fakeStore: newFakeStore()}
	m, err := open(context.Background(), Config{Addr: "127.0.0.1:0", LogLevel: "error"}, s, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.closeEarly)
	clock := newFakeClock()
	m.Metrics.storeWrites.now = clock.now
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	ready := func(wantStatus int, wantBody string) {
		t.Helper()
		st, body := readyz()
		if st != wantStatus || body != wantBody {
			t.Errorf("/readyz: %d %q; want %d %q", st, body, wantStatus, wantBody)
		}
		want := 0.0
		if wantStatus != http.StatusOK {
			want = 1
		}
		if got := metricValue(t, m, "oauthd_store_writes_refused"); got != want {
			t.Errorf("oauthd_store_writes_refused %v; want %v", got, want)
		}
	}
	const refusedBody = "database full or read-only: writes are failing (disk full)\n"
	ctx := context.Background()
	ready(200, "ok\n")

	// Failures that are not refusals.
	s.refuse(errors.New("boom"))
	m.counted.CreateAuthRequest(ctx, authRequest("a"))
	s.refuse(oauthd.ErrUnavailable)
	m.counted.CreateAuthRequest(ctx, authRequest("a"))
	ready(200, "ok\n")

	s.refuse(errDiskFull)
	if err := m.counted.CreateAuthRequest(ctx, authRequest("a")); !errors.Is(err, errDiskFull) {
		t.Fatalf("CreateAuthRequest: %v", err)
	}
	ready(503, refusedBody)
	// Answers of the protocol, a garbage collection that deleted nothing
	// and reads say nothing of writes.
	m.counted.DeleteAuthRequest(ctx, "nonesuch") // not found
	m.counted.DeleteExpired(ctx, time.Now(), 10) // nothing expired
	m.counted.Client(ctx, "c")
	ready(503, refusedBody)

	// A write that succeeds clears it.
	s.refuse(nil)
	if err := m.counted.CreateAuthRequest(ctx, authRequest("b")); err != nil {
		t.Fatal(err)
	}
	ready(200, "ok\n")

	// So does a garbage collection that deleted something.
	s.refuse(errDiskFull)
	m.counted.CreateAuthRequest(ctx, authRequest("c"))
	ready(503, refusedBody)
	s.fakeStore.mu.Lock()
	s.fakeStore.expired = 3
	s.fakeStore.mu.Unlock()
	if n, err := m.counted.DeleteExpired(ctx, time.Now(), 10); n != 3 || err != nil {
		t.Fatalf("DeleteExpired = %d, %v", n, err)
	}
	ready(200, "ok\n")

	// And the time: a refusal writeFailureWindow ago, with nothing
	// since, no longer counts.
	m.counted.CreateAuthRequest(ctx, authRequest("d"))
	clock.advance(writeFailureWindow - time.Second)
	ready(503, refusedBody)
	clock.advance(2 * time.Second)
	ready(200, "ok\n")

	// /readyz says the store is unreachable first.
	m.counted.CreateAuthRequest(ctx, authRequest("e"))
	s.fakeStore.mu.Lock()
	s.fakeStore.pingErr = errors.New("connection refused")
	s.fakeStore.mu.Unlock()
	if st, body := readyz(); st != 503 || body != "store unreachable\n" {
		t.Errorf("/readyz with the store down: %d %q; want 503 store unreachable", st, body)
	}
}

// metricValue reads the value of the gauge without labels name.
func metricValue(t *testing.T, m *Main, name string) float64 {
	t.Helper()
	mfs, err := m.Metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The change of state is logged once, not at every refused write or
// probe.
func TestWriteRefusalsLoggedOnce(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := &writeHealth{now: time.Now, log: slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &mu}, nil))}
	for range 5 {
		h.refused(errDiskFull)
		h.failing()
	}
	h.succeeded()
	h.succeeded()
	mu.Lock()
	log := buf.String()
	mu.Unlock()
	if strings.Count(log, "level=WARN") != 1 || strings.Count(log, "level=INFO") != 1 || !strings.Contains(log, `reason="disk full"`) {
		t.Errorf("log:\n%s\nwant one WARN line with the reason, and one INFO line", log)
	}
}
