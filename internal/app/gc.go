package app

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/oauthd/oauthd"
)

// The garbage collection of expired records: every gc.interval, batches
// of gc.batch_size records of each kind (one DeleteExpired call each)
// until a batch comes back short.
//
// A flood of pending authorization requests can leave hundreds of
// thousands of expired records. A run therefore goes on while its batches
// come back full, for up to gcRunBudget, resting between two batches as
// long as the last one took, so that the server's own writes (which on
// SQLite share one writer with the deletes) get at least half of the
// store's time; a run that stops with a backlog left is followed by the
// next one gcBacklogDelay later, not a whole interval later. On SQLite,
// where a batch of 500 takes a few milliseconds, a run deletes some
// 100,000 small pending requests a second, 25,000 of the largest (12 KB);
// the 100 batches a run of earlier versions stopped at were 50,000 a
// minute.
const (
	gcRunBudget    = 5 * time.Second
	gcBacklogDelay = time.Second
	// gcRetryDelay is when a run that failed is tried again (gc.interval
	// if shorter): within writeFailureWindow, so that a node whose
	// database stays full keeps answering /readyz with 503 even when no
	// request reaches it, and soon after an operator has freed space.
	gcRetryDelay = 10 * time.Second
	// gcMinBatch is the smallest batch a run falls back to when the
	// database refuses its deletes (a full disk): a smaller commit may
	// fit in the room left at the end of the SQLite -wal file.
	gcMinBatch = 10
	// gcLogEvery is how often a garbage collection that keeps failing is
	// logged again, with the count of failures since the last line.
	gcLogEvery = 10 * time.Minute
)

// gcClock is the time as the garbage collection sees it; tests replace it.
type gcClock struct {
	now func() time.Time
	// sleep waits for d, or until ctx ends; it reports whether it waited
	// for d.
	sleep func(ctx context.Context, d time.Duration) bool
}

var realClock = gcClock{now: time.Now, sleep: sleep}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// gcLog is what the garbage collection remembers for the log: a failure
// is logged when a series of them begins and then every gcLogEvery, and
// the end of a series and of a backlog are logged too.
type gcLog struct {
	failures     int       // failed runs in a row
	failedSince  time.Time // when the first of them failed
	unlogged     int       // failed runs since the last line
	loggedAt     time.Time // of the last line
	backlogRuns  int       // runs in a row that stopped with a backlog left
	backlogTotal int       // the records they deleted
}

// CollectGarbage deletes records that expired before now, in batches of
// Config.GCBatchSize, until a batch comes back short or gcRunBudget has
// passed; it returns how many it deleted. Every node may run it at the
// same time: each batch is one idempotent store call.
func (m *Main) CollectGarbage(ctx context.Context, now time.Time) (int, error) {
	n, _, err := m.collect(ctx, now)
	return n, err
}

// collect is CollectGarbage; backlog says that the run stopped with full
// batches still coming.
func (m *Main) collect(ctx context.Context, now time.Time) (deleted int, backlog bool, err error) {
	clock := m.gcClock
	start := clock.now()
	batch := m.Config.GCBatchSize
	for {
		began := clock.now()
		n, err := m.counted.DeleteExpired(ctx, now, batch)
		deleted += n
		m.Metrics.gcDeleted.Add(float64(n))
		if err != nil {
			if _, refused := writeRefused(err); refused && batch > gcMinBatch && ctx.Err() == nil {
				batch = max(batch/8, gcMinBatch)
				continue
			}
			return deleted, false, err
		}
		if n < batch {
			return deleted, false, nil
		}
		took := clock.now().Sub(began)
		if clock.now().Sub(start)+took >= gcRunBudget {
			return deleted, true, nil
		}
		if !clock.sleep(ctx, max(took, time.Millisecond)) {
			return deleted, true, ctx.Err()
		}
	}
}

// collectGarbage runs the garbage collection every GCInterval, the first
// time after a random part of it, so that nodes started together do not
// all collect at once; a run that left a backlog or failed is followed by
// the next sooner (gcBacklogDelay, gcRetryDelay).
func (m *Main) collectGarbage(ctx context.Context) {
	defer close(m.gcDone)
	interval := m.Config.GCInterval
	wait := rand.N(interval)
	for {
		if !m.gcClock.sleep(ctx, wait) {
			return
		}
		m.Metrics.gcRuns.Inc()
		n, backlog, err := m.collect(ctx, m.gcClock.now())
		if ctx.Err() != nil {
			return
		}
		wait = interval
		switch {
		case err != nil:
			m.gcFailed(err, n)
			wait = min(interval, gcRetryDelay)
		case backlog:
			m.gcSucceeded(n, true)
			wait = min(interval, gcBacklogDelay)
		default:
			m.gcSucceeded(n, false)
		}
	}
}

// gcFailed counts a failed run and logs it when a series of failures
// begins, then once every gcLogEvery with the count since the last line:
// a database that stays full (or down) fails every run, and an ERROR line
// a run would bury the rest of the log.
func (m *Main) gcFailed(err error, deleted int) {
	m.Metrics.gcFailures.Inc()
	g, now := &m.gcLog, m.gcClock.now()
	g.failures++
	g.unlogged++
	// A database that cannot be reached or used for now is WARN, as for
	// requests (the README's "what is logged"); anything else is ERROR.
	level := slog.LevelError
	if errors.Is(err, oauthd.ErrUnavailable) {
		level = slog.LevelWarn
	}
	switch {
	case g.failures == 1:
		g.failedSince = now
		m.Logger.Log(context.Background(), level, "deleting expired records", "error", err.Error(), "deleted", deleted)
	case now.Sub(g.loggedAt) >= gcLogEvery:
		m.Logger.Log(context.Background(), level, "deleting expired records still fails", "error", err.Error(), "failures", g.unlogged,
			"failing_for", now.Sub(g.failedSince).Round(time.Second).String())
	default:
		return
	}
	g.unlogged, g.loggedAt = 0, now
}

// gcSucceeded ends a series of failures and logs its end, and logs a
// backlog when it begins and once worked off.
func (m *Main) gcSucceeded(deleted int, backlog bool) {
	g := &m.gcLog
	if g.failures > 0 {
		m.Logger.Info("deleting expired records works again", "failures", g.failures,
			"failed_for", m.gcClock.now().Sub(g.failedSince).Round(time.Second).String())
		g.failures, g.unlogged = 0, 0
	}
	switch {
	case backlog:
		if g.backlogRuns == 0 {
			m.Logger.Info("a backlog of expired records: collecting again every second until it is worked off", "deleted", deleted)
		}
		g.backlogRuns++
		g.backlogTotal += deleted
	case g.backlogRuns > 0:
		m.Logger.Info("the backlog of expired records is worked off", "deleted", g.backlogTotal+deleted, "runs", g.backlogRuns+1)
		g.backlogRuns, g.backlogTotal = 0, 0
	case deleted > 0:
		m.Logger.Debug("deleted expired records", "count", deleted)
	}
}
