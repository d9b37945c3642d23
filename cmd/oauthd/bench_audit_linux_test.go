package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// waitFor waits until s() contains want, for at most d.
func waitFor(t *testing.T, s func() string, want string, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); !strings.Contains(s(), want); {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %v:\n%s", want, d, s())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// serveChild is the 'oauthd serve' child of this test process, and its
// command line (NUL-separated), or 0 while there is none.
func serveChild() (int, []byte) {
	for _, kid := range children(os.Getpid()) {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(kid) + "/cmdline")
		if args := strings.Split(string(cmdline), "\x00"); len(args) > 1 && args[1] == "serve" {
			return kid, cmdline
		}
	}
	return 0, nil
}

// A server killed during the run stops the bench at once with an error
// that says so: no report, no ratio, no negative CPU. The child got its
// database in its environment, not on its command line (where ps shows
// a PostgreSQL DSN's password to everyone).
func TestBenchServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	t.Setenv("OAUTHD_TEST_AS_MAIN", "1")
	db := filepath.Join(t.TempDir(), "secret-name.db")
	var out bytes.Buffer
	errb := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"bench", "--scenario", "client_credentials", "--connections", "2", "--duration", "1m",
			"--baseline", "--db", db}, &env{stdout: &out, stderr: errb, getenv: os.Getenv})
	}()
	waitFor(t, errb.String, "preparing", 60*time.Second)
	// The recording, the bare handler's start, then the timed run (on a
	// slow machine the kill may come during the preparation: the message
	// says so, and the test takes either).
	time.Sleep(2500 * time.Millisecond)
	serve, cmdline := serveChild()
	if serve == 0 {
		t.Fatal("no 'serve' child found")
	}
	if bytes.Contains(cmdline, []byte("secret-name")) || bytes.Contains(cmdline, []byte("--db")) {
		t.Errorf("the database is on the server's command line: %q", cmdline)
	}
	environ, _ := os.ReadFile("/proc/" + strconv.Itoa(serve) + "/environ")
	if !bytes.Contains(environ, []byte("OAUTHD_DB="+db)) {
		t.Errorf("no OAUTHD_DB=%s in the server's environment", db)
	}
	syscall.Kill(serve, syscall.SIGKILL)
	select {
	case code := <-done:
		want := "the server (pid " + strconv.Itoa(serve) + ") exited during the "
		if errs := errb.String(); code != 1 || !strings.Contains(errs, want) || !strings.Contains(errs, ": signal: killed") {
			t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and %q ...: signal: killed", code, errs, want)
		}
		if out.Len() != 0 {
			t.Errorf("a report after the server died:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the bench goes on 20 s after its server was killed")
	}
}

// Ctrl-C sends SIGINT to the terminal's whole foreground process group:
// the bench says "interrupted" once and exits 130; its servers, in their
// own group, do not stop under it (no "connection refused"); a round cut
// short is left out, and no ratio comes from it.
func TestBenchInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	for _, tc := range []struct {
		after    string // the progress line after which Ctrl-C comes
		complete int    // the rounds complete by then
	}{
		{"oauthd 1/3", 0}, // during the bare handler's first run
		{"bare   1/3", 1}, // during the second round
	} {
		t.Run(strconv.Itoa(tc.complete), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "bench", "--scenario", "client_credentials", "--connections", "2", "--duration", "2s",
				"--rounds", "3", "--baseline")
			cmd.Env = append(os.Environ(), "OAUTHD_TEST_AS_MAIN=1", "TMPDIR="+t.TempDir())
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // a terminal's foreground group of its own
			var out bytes.Buffer
			errb := &lockedBuffer{}
			cmd.Stdout, cmd.Stderr = &out, errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			waitFor(t, errb.String, tc.after, 60*time.Second)
			time.Sleep(300 * time.Millisecond)
			syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) // the whole group, as a terminal does
			err := cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Errorf("bench after Ctrl-C: %v; want exit status 130", err)
			}
			errs := errb.String()
			if strings.Count(errs, "interrupted") != 1 || strings.Contains(errs, "refused") {
				t.Errorf("stderr:\n%s\nwant \"interrupted\" once, no refused connection", errs)
			}
			o := out.String()
			if tc.complete == 0 {
				if o != "" {
					t.Errorf("a report with no round complete:\n%s", o)
				}
				return
			}
			if !strings.Contains(o, "INTERRUPTED: only the 1 complete rounds of the 3 asked") || !strings.Contains(o, "ratio oauthd/bare: ") ||
				strings.Contains(o, "(rounds:") || strings.Contains(o, "errors  5xx") && strings.Contains(o, "refused") {
				t.Errorf("report:\n%s", o)
			}
		})
	}
}

// A server frozen by SIGSTOP (a debugger, an operator) does not hold the
// bench at its end: the SIGTERM that stops it is followed by SIGCONT, so
// it is not left pending for the 20 s the bench waits before SIGKILL.
func TestBenchFrozenServerStopsPromptly(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	t.Setenv("OAUTHD_TEST_AS_MAIN", "1")
	t.Setenv("TMPDIR", t.TempDir())
	var out bytes.Buffer
	errb := &lockedBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(context.Background(), []string{"bench", "--scenario", "client_credentials", "--connections", "2", "--duration", "3s"},
			&env{stdout: &out, stderr: errb, getenv: os.Getenv})
	}()
	waitFor(t, errb.String, "preparing", 60*time.Second)
	var serve int
	for deadline := time.Now().Add(30 * time.Second); serve == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no 'serve' child found")
		}
		serve, _ = serveChild()
	}
	time.Sleep(1500 * time.Millisecond) // into the timed run
	syscall.Kill(serve, syscall.SIGSTOP)
	defer syscall.Kill(serve, syscall.SIGKILL)
	select {
	case <-done:
		// The report (or an error, on a machine slow enough that the
		// freeze came before the run) is not what this test is about.
	case <-time.After(15 * time.Second): // the run's 3 s, 2 s for the unanswered, the stop: well under 20 s
		t.Fatalf("the bench still runs 15 s after its server froze:\n%s", errb.String())
	}
	if alive(serve) {
		t.Errorf("the frozen server %d still runs after the bench ended", serve)
	}
}

// Ctrl-C while the code scenario mints its codes through a running
// server's pages (--url) stops the minting: the bench exits 130 at once,
// not once every connection has minted its whole share.
func TestBenchInterruptedWhileMinting(t *testing.T) {
	_, addr := startServeProcess(t, nil)
	cmd := exec.Command(os.Args[0], "bench", "--url", "http://"+addr, "--scenario", "code", "--codes", "200000",
		"--connections", "4", "--duration", "2s")
	cmd.Env = append(os.Environ(), "OAUTHD_TEST_AS_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	errb := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = &out, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, errb.String, "codes minted", 60*time.Second)
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 130 {
			t.Errorf("bench after Ctrl-C while minting: %v; want exit status 130\n%s", err, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the bench still mints 10 s after Ctrl-C:\n%s", errb.String())
	}
}

// --codes with --url: each connection mints its whole share, rounded up,
// and the report says how many were minted, not how many were asked for.
func TestBenchURLCodesCountedAsMinted(t *testing.T) {
	_, addr := startServeProcess(t, nil)
	out, errs, code := runBenchCmd(t, "--url", "http://"+addr, "--scenario", "code", "--codes", "10", "--rounds", "2",
		"--connections", "4", "--duration", "2s", "--json")
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s", code, errs)
	}
	// 10 codes for 2 rounds of 4 connections: 2 a connection, 16 in all.
	if !strings.Contains(out, `"codes": 16`) {
		t.Errorf("report:\n%s\nwant \"codes\": 16 (what was minted)", out)
	}
}
