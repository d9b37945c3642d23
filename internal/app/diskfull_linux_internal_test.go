package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// The end to end of a full disk on SQLite (the audit's F2): a flood of
// pending requests fills the disk; sign-ins would answer 503, and /readyz
// says so too, although the store answers pings. Once an operator has
// freed as much space as the -wal file takes, the garbage collection
// deletes the expired requests and the node is ready again. It needs a
// small tmpfs of its own, so root; it is skipped elsewhere.
func TestReadyzOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", dir).Run(); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	// Space the operator frees later: half the disk.
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "old-logs"), make([]byte, int64(st.Bavail)*st.Bsize/2), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "oauthd.db")
	m := openSQLite(t, path, Config{GCBatchSize: 500})
	ready := func() (int, string) {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := ready(); code != 200 {
		t.Fatalf("/readyz: %d %q; want 200", code, body)
	}

	ctx := context.Background()
	now := time.Now()
	later := now.Add(time.Hour) // when the requests have expired
	pad := strings.Repeat("<", 8<<10)
	var created int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; i < 100_000; i++ {
				r := &oauthd.AuthRequest{ID: fmt.Sprintf("r-%d-%d", g, i), ClientID: "c", State: pad, CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
				if err := m.counted.CreateAuthRequest(ctx, r); err != nil {
					if _, refused := writeRefused(err); !refused {
						t.Errorf("CreateAuthRequest: %v; want a full disk", err)
					}
					return
				}
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	const full = "database full or read-only: writes are failing (disk full)\n"
	if code, body := ready(); code != 503 || body != full {
		t.Errorf("/readyz on the full disk: %d %q; want 503 %q", code, body, full)
	}
	if err := m.counted.Ping(ctx); err != nil {
		t.Errorf("Ping on the full disk: %v; want the store to answer", err)
	}
	if _, _, err := m.collect(ctx, later); err != nil {
		t.Logf("garbage collection on the full disk: %v", err)
		if code, _ := ready(); code != 503 {
			t.Errorf("/readyz after a failed garbage collection: %d; want 503", code)
		}
	}

	// The operator frees space.
	if err := os.Remove(filepath.Join(dir, "old-logs")); err != nil {
		t.Fatal(err)
	}
	// (On the full disk the collection may have deleted some in small
	// batches before it failed: the rows left say what counts.)
	for more := true; more; {
		_, backlog, err := m.collect(ctx, later)
		if err != nil {
			t.Fatalf("garbage collection after space was freed: %v", err)
		}
		more = backlog
	}
	if code, body := ready(); code != 200 {
		t.Errorf("/readyz after the garbage collection: %d %q; want 200", code, body)
	}
	if err := m.counted.CreateAuthRequest(ctx, &oauthd.AuthRequest{ID: "after", ClientID: "c", CreatedAt: now, ExpiresAt: later}); err != nil {
		t.Errorf("CreateAuthRequest after the garbage collection: %v", err)
	}
	if n := countRows(t, path, "auth_requests"); created == 0 || n != 1 {
		t.Errorf("%d rows left of %d expired requests and one new; want the expired ones deleted, 1 row left", n, created)
	}
	if code, _ := ready(); code != http.StatusOK {
		t.Errorf("/readyz at the end: %d", code)
	}
}
