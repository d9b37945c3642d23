package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/oauthd/oauthd"
)

// fakeClock is a gcClock whose time passes only when the garbage
// collection sleeps or a test advances it.
type fakeClock struct {
	mu    sync.Mutex
	t     time.Time
	waits []time.Duration // every sleep, in order
	// stop, when set, ends the garbage collection's loop: a sleep for
	// which it returns true waits for the loop's context to end.
	stop func(d time.Duration) bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) clock() gcClock {
	return gcClock{now: c.now, sleep: func(ctx context.Context, d time.Duration) bool {
		c.mu.Lock()
		c.waits = append(c.waits, d)
		stop := c.stop != nil && c.stop(d)
		c.t = c.t.Add(d)
		c.mu.Unlock()
		if stop {
			<-ctx.Done()
			return false
		}
		return ctx.Err() == nil
	}}
}

// batchTime is how long a batch takes on the fake clock.
const batchTime = 10 * time.Millisecond

// openFakeGC opens a server on a fake store whose batches take batchTime
// of a fake clock.
func openFakeGC(t *testing.T, batch int) (*Main, *fakeStore, *fakeClock) {
	t.Helper()
	s := newFakeStore()
	m := openFake(t, Config{GCBatchSize: batch}, s)
	t.Cleanup(m.closeEarly)
	c := newFakeClock()
	m.gcClock = c.clock()
	s.onDelete = func(int) error {
		c.advance(batchTime)
		return nil
	}
	return m, s, c
}

// A backlog larger than the 100 batches (50,000 records of each kind) a
// run of earlier versions stopped at is worked off: a run goes on while
// its batches come back full, resting between two batches as long as the
// last one took, until gcRunBudget has passed, and the following runs
// finish the work.
func TestCollectGarbageDrainsABacklog(t *testing.T) {
	m, s, c := openFakeGC(t, 500)
	s.expired = 1_000_000
	n, backlog, err := m.collect(context.Background(), c.now())
	if err != nil || !backlog {
		t.Fatalf("collect = %d, %v, %v; want a backlog left", n, backlog, err)
	}
	// 10 ms a batch and 10 ms of rest after each: 250 batches in 5 s.
	const perRun = int(gcRunBudget/(2*batchTime)) * 500
	if n != perRun || n <= 100*500 {
		t.Errorf("the first run deleted %d; want %d, more than the old 50,000", n, perRun)
	}
	for i, d := range c.waits {
		if d != batchTime {
			t.Fatalf("rest %d between batches: %v; want as long as the batch took, %v", i, d, batchTime)
		}
	}
	runs := 1
	for backlog {
		if runs++; runs > 1_000_000/perRun+1 {
			t.Fatalf("%d runs, %d records left; want all deleted in %d", runs, s.expired, 1_000_000/perRun+1)
		}
		var k int
		if k, backlog, err = m.collect(context.Background(), c.now()); err != nil {
			t.Fatal(err)
		}
		n += k
	}
	if n != 1_000_000 || s.expired != 0 {
		t.Errorf("deleted %d in %d runs, %d left; want 1,000,000, none left", n, runs, s.expired)
	}
	if got := counterValue(m.Metrics.gcDeleted); got != 1_000_000 {
		t.Errorf("oauthd_gc_deleted_total %v; want 1000000", got)
	}
}

// A run that leaves a backlog is followed by the next gcBacklogDelay
// later, not gc.interval later, and the interval comes back once the
// backlog is worked off.
func TestCollectGarbageLoopComesBackSoonForABacklog(t *testing.T) {
	m, s, c := openFakeGC(t, 500)
	m.Config.GCInterval = time.Minute
	s.expired = 600_000
	drained := make(chan struct{})
	c.stop = func(d time.Duration) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		if d == time.Minute && s.expired == 0 {
			close(drained)
			return true
		}
		return false
	}
	runGCUntil(t, m, drained, "the backlog was not worked off")
	c.mu.Lock()
	defer c.mu.Unlock()
	var between []time.Duration // the waits between runs
	for _, d := range c.waits[1:] {
		if d != batchTime {
			between = append(between, d)
		}
	}
	// 125,000 a run: four runs with a backlog, a fifth finishes.
	want := []time.Duration{gcBacklogDelay, gcBacklogDelay, gcBacklogDelay, gcBacklogDelay, time.Minute}
	if fmt.Sprint(between) != fmt.Sprint(want) {
		t.Errorf("waits between runs %v; want %v", between, want)
	}
	if got := counterValue(m.Metrics.gcRuns); got != 5 {
		t.Errorf("oauthd_gc_runs_total %v; want 5", got)
	}
}

// errDiskFull is the error of a store whose database is on a full disk.
var errDiskFull = fmt.Errorf("pgstore: delete expired: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"})

// When the database refuses a batch for lack of room, the run tries
// smaller ones, which may fit in what room is left.
func TestCollectGarbageSmallerBatchesOnAFullDisk(t *testing.T) {
	m, s, _ := openFakeGC(t, 500)
	s.expired = 200
	s.onDelete = func(limit int) error {
		if limit > 100 {
			return errDiskFull
		}
		return nil
	}
	n, backlog, err := m.collect(context.Background(), time.Now())
	if err != nil || n != 200 || backlog {
		t.Fatalf("collect = %d, %v, %v; want 200 deleted", n, backlog, err)
	}
	if got := fmt.Sprint(s.limits); got != "[500 62 62 62 62]" {
		t.Errorf("batches %s; want [500 62 62 62 62]", got)
	}
	// When even the smallest batch is refused, the run fails.
	s.limits, s.expired = nil, 200
	s.onDelete = func(int) error { return errDiskFull }
	if _, _, err := m.collect(context.Background(), time.Now()); !errors.Is(err, errDiskFull) {
		t.Errorf("collect = %v; want the full disk's error", err)
	}
	if got := fmt.Sprint(s.limits); got != "[500 62 10]" {
		t.Errorf("batches %s; want [500 62 10]", got)
	}
}

// A garbage collection that keeps failing is logged as an ERROR when it
// begins to and then every gcLogEvery with the count of failures since the
// last line, not at every run; every failure is counted in
// oauthd_gc_failures_total, runs are retried within gcRetryDelay, and the
// end of the failures is logged.
func TestCollectGarbageFailureLogBacksOff(t *testing.T) {
	m, s, c := openFakeGC(t, 500)
	m.Config.GCInterval = time.Minute
	var buf bytes.Buffer
	var logMu sync.Mutex
	m.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &logMu}, nil))
	start := c.now()
	s.expired = 10
	s.onDelete = func(int) error {
		if c.now().Sub(start) < 35*time.Minute {
			return errDiskFull
		}
		return nil
	}
	done := make(chan struct{})
	c.stop = func(d time.Duration) bool {
		if c.t.Sub(start) > 36*time.Minute {
			close(done)
			return true
		}
		return false
	}
	runGCUntil(t, m, done, "the garbage collection did not run")

	logMu.Lock()
	log := buf.String()
	logMu.Unlock()
	lines := strings.Split(strings.TrimSpace(log), "\n")
	var errorLines []string
	for _, l := range lines {
		if strings.Contains(l, "level=ERROR") {
			errorLines = append(errorLines, l)
		}
	}
	failures := counterValue(m.Metrics.gcFailures)
	// Runs every gcRetryDelay for some 35 minutes: about 210 failures,
	// logged at the first, then at 10, 20 and 30 minutes.
	if failures < 35*60/10-5 || failures > 35*60/10+5 {
		t.Errorf("oauthd_gc_failures_total %v; want about %d (a retry every %v)", failures, 35*60/10, gcRetryDelay)
	}
	if len(errorLines) != 4 {
		t.Fatalf("%d ERROR lines for %v failures; want 4:\n%s", len(errorLines), failures, log)
	}
	if !strings.Contains(errorLines[0], `msg="deleting expired records"`) || !strings.Contains(errorLines[0], "53100") {
		t.Errorf("first line %s; want the error", errorLines[0])
	}
	for _, l := range errorLines[1:] {
		if !strings.Contains(l, "still fails") || !strings.Contains(l, "failures=60 ") {
			t.Errorf("line %s; want the 60 failures since the last line", l)
		}
	}
	if !strings.Contains(log, `level=INFO msg="deleting expired records works again"`) {
		t.Errorf("log %s; want the end of the failures", log)
	}
	if s.expired != 0 {
		t.Errorf("%d records left after the failures ended; want none", s.expired)
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// runGCUntil runs m's garbage collection loop until done is closed, then
// stops it; it fails with failure if that takes more than 10 s.
func runGCUntil(t *testing.T, m *Main, done <-chan struct{}, failure string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	m.gcDone = make(chan struct{})
	go m.collectGarbage(ctx)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		<-m.gcDone
		t.Fatal(failure)
	}
	cancel()
	<-m.gcDone
}

// A collection that fails because the database cannot be reached or used
// for now is logged at WARN, as requests that fail so are; another error
// at ERROR.
func TestCollectGarbageUnavailableIsWarn(t *testing.T) {
	for _, tc := range []struct {
		err   error
		level string
	}{
		{fmt.Errorf("pgstore: delete expired: %w: too many clients", oauthd.ErrUnavailable), "level=WARN"},
		{errDiskFull, "level=ERROR"},
	} {
		m, _, _ := openFakeGC(t, 500)
		var buf bytes.Buffer
		var logMu sync.Mutex
		m.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &buf, mu: &logMu}, nil))
		m.gcFailed(tc.err, 0)
		logMu.Lock()
		out := buf.String()
		logMu.Unlock()
		if !strings.Contains(out, tc.level) || !strings.Contains(out, `msg="deleting expired records"`) {
			t.Errorf("a failed collection (%v) logged %q; want %s", tc.err, out, tc.level)
		}
	}
}
