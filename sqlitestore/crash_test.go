package sqlitestore_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
)

// crashWriterEnv makes the test binary the crashing writer of
// TestAcknowledgedWritesSurviveKill: it writes tokens from many goroutines
// into the database the variable names, and prints the hash of each one
// the store acknowledged, until it is killed.
const crashWriterEnv = "OAUTHD_SQLITESTORE_CRASH_WRITER"

func TestMain(m *testing.M) {
	if path := os.Getenv(crashWriterEnv); path != "" {
		crashWriter(path)
		return
	}
	os.Exit(m.Run())
}

func crashWriter(path string) {
	s, err := sqlitestore.Open(context.Background(), path, sqlitestore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	var mu sync.Mutex
	now := time.Now()
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				h := fmt.Sprintf("g%d-%d", g, i)
				err := s.CreateTokens(context.Background(), &oauthd.Token{Hash: h, Kind: oauthd.AccessToken, GrantID: h,
					ClientID: "c", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(out, h) // acknowledged
				out.Flush()
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// A write the store acknowledged is in the database after the process is
// killed (SIGKILL) in the middle of group commits: the store answers only
// after COMMIT, and a committed WAL transaction survives the process.
// (Power loss is another matter: with Synchronous NORMAL, the last
// transactions may be lost, never the file.)
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	s, err := sqlitestore.Open(t.Context(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashWriterEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		acked = append(acked, sc.Text())
		if len(acked) == 3000 {
			cmd.Process.Kill()
			break
		}
	}
	for sc.Scan() { // what was acknowledged before the kill landed
		acked = append(acked, sc.Text())
	}
	cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("the writer acknowledged only %d writes", len(acked))
	}
	s, err = sqlitestore.Open(t.Context(), path, sqlitestore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lost := 0
	for _, h := range acked {
		if _, err := s.Token(t.Context(), h); err != nil {
			lost++
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged writes lost after the kill", lost, len(acked))
	}
}
