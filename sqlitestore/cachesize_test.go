package sqlitestore

import (
	"path/filepath"
	"testing"
)

// Every connection's page cache is bounded below SQLite's 2 MB default
// (issue 8's memory target): the read connections and the checkpointer's
// at readerCacheKiB, the writer's at writerCacheKiB.
func TestConnectionPageCachesAreBounded(t *testing.T) {
	ctx := t.Context()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "c.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(name string, got, want int) {
		t.Helper()
		if got != -want {
			t.Errorf("%s: PRAGMA cache_size = %d; want %d (KiB)", name, got, -want)
		}
	}
	// Every read connection of the pool, held at once so each is a new one.
	for i := range readConns {
		conn, err := s.rdb.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var n int
		if err := conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		check("read connection "+string(rune('1'+i)), n, readerCacheKiB)
	}
	var n int
	if err := s.ckpt.db.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	check("checkpointer", n, readerCacheKiB)
	if err := s.w.conn.QueryRowContext(ctx, `PRAGMA cache_size`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	check("writer", n, writerCacheKiB)
}
