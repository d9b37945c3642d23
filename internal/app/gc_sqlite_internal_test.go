package app

import (
	"context"
	"database/sql"
	"io"
	"path/filepath"
	"testing"
	"time"
)

// openSQLite opens a server on a SQLite database at path, closed when the
// test ends.
func openSQLite(t *testing.T, path string, cfg Config) *Main {
	t.Helper()
	ctx := context.Background()
	store, err := OpenStore(ctx, path, true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr, cfg.LogLevel = "127.0.0.1:0", "error"
	m, err := open(ctx, cfg, store, io.Discard)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(m.closeEarly)
	return m
}

// countRows counts the rows of table in the SQLite database at path.
func countRows(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM ` + table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// On SQLite, a backlog of expired pending requests larger than the 50,000
// a run of earlier versions stopped at is worked off by one run (some
// 100,000 records a second, rests included), or by a few when the machine
// is slow (the race detector on a loaded 2-CPU machine took 6): a run
// stops only when a batch comes back short or gcRunBudget has passed, and
// each run deletes some. How many runs it takes is the machine's speed,
// not a property of the code: the bound is only there to end the test.
func TestCollectGarbageDrainsASQLiteBacklog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oauthd.db")
	m := openSQLite(t, path, Config{GCBatchSize: 500})
	const backlog = 60_000
	db, err := sql.Open("sqlite", "file:"+path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_, err = db.Exec(`INSERT INTO auth_requests (id, data, expires_at)
		WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		SELECT 'req-' || i, '{"id":"req-' || i || '","client_id":"c","state":"x"}', 1000 FROM n`, backlog)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	total, runs := 0, 0
	start := time.Now()
	for more := true; more; {
		if runs++; runs > 20 {
			t.Fatalf("%d deleted in %d runs; want %d", total, runs-1, backlog)
		}
		began := time.Now()
		n, backlogLeft, err := m.collect(ctx, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); backlogLeft && took < gcRunBudget-time.Second {
			t.Errorf("a run deleted %d in %v and stopped with a backlog; want it to go on for %v", n, took, gcRunBudget)
		}
		if n == 0 && backlogLeft {
			t.Fatalf("run %d deleted nothing and stopped with a backlog", runs)
		}
		total += n
		more = backlogLeft
	}
	t.Logf("%d deleted in %d runs, %v", total, runs, time.Since(start))
	if total != backlog {
		t.Errorf("deleted %d; want %d", total, backlog)
	}
	if n := countRows(t, path, "auth_requests"); n != 0 {
		t.Errorf("%d pending requests left; want none", n)
	}
}
