package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// children lists the processes whose parent is pid, from /proc.
func children(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var kids []int
	for _, f := range stats {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			kid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
			kids = append(kids, kid)
		}
	}
	return kids
}

// alive reports whether pid still runs (a zombie counts as ended).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(fields) > 0 && fields[0] != "Z"
}

// A bench killed outright (SIGKILL; SIGPIPE when its output is piped into
// head) takes its 'oauthd serve' child with it instead of leaving a
// server running.
func TestBenchKilledLeavesNoServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server process")
	}
	cmd := exec.Command(os.Args[0], "bench", "--scenario", "client_credentials", "--connections", "1", "--duration", "1m")
	// The bench's own clean-up never runs (it is killed): its temporary
	// directory goes into the test's, which the test removes.
	cmd.Env = append(os.Environ(), "OAUTHD_TEST_AS_MAIN=1", "TMPDIR="+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var kids []int
	for deadline := time.Now().Add(30 * time.Second); len(kids) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the bench started no child process within 30 s")
		}
		time.Sleep(50 * time.Millisecond)
		kids = children(cmd.Process.Pid)
	}
	// Let the child get past its start-up (it may still be exec'ing).
	time.Sleep(500 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for _, kid := range kids {
		deadline := time.Now().Add(20 * time.Second)
		for alive(kid) {
			if time.Now().After(deadline) {
				syscall.Kill(kid, syscall.SIGKILL)
				t.Fatalf("child %d still runs 20 s after the bench was killed", kid)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// The first SIGINT or SIGTERM drains the requests in flight for up to
// shutdown_timeout; a second one stops serve at once (Ctrl-C again).
func TestServeSecondSignalStopsAtOnce(t *testing.T) {
	cmd, addr := startServeProcess(t, nil, "--shutdown-timeout", "1m")
	secondSignalStops(t, cmd, addr, syscall.SIGTERM)
}

// A background job of a shell without job control starts with SIGINT
// ignored: Ctrl-C's signal still starts the graceful shutdown, and a
// second one still stops serve at once, with status 130.
func TestServeSecondSIGINTWhenStartedIgnored(t *testing.T) {
	// trap "" INT ignores SIGINT; exec keeps it ignored in serve.
	cmd, addr := startServeProcessUnder(t, nil, []string{"sh", "-c", `trap "" INT; exec "$0" "$@"`}, "--shutdown-timeout", "1m")
	var ee *exec.ExitError
	if err := secondSignalStops(t, cmd, addr, syscall.SIGINT); !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("serve after a second SIGINT: %v; want exit status 130", err)
	}
}

// secondSignalStops holds a request in flight (its body never arrives, so
// the graceful shutdown would wait the whole minute for it), sends sig
// twice, checks that serve waits after the first and stops at once after
// the second, and returns how it ended.
func secondSignalStops(t *testing.T, cmd *exec.Cmd, addr string, sig syscall.Signal) error {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /oauth/token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant", addr)
	time.Sleep(200 * time.Millisecond)
	cmd.Process.Signal(sig)
	time.Sleep(500 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		t.Fatalf("serve ended after the first %v (%v) with a request in flight; want it to wait for the request", sig, err)
	default:
	}
	cmd.Process.Signal(sig)
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("serve still running 10 s after a second %v; want it to stop at once", sig)
	}
	return nil
}

// SIGHUP (the terminal serve runs in was closed) shuts down gracefully, as
// SIGTERM does, rather than killing the process mid-request.
func TestServeSIGHUPGraceful(t *testing.T) {
	var stderr strings.Builder
	cmd, _ := startServeProcess(t, &stderr)
	cmd.Process.Signal(syscall.SIGHUP)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after SIGHUP: %v; want exit 0 (graceful)\n%s", err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "shutting down") {
			t.Errorf("no shutdown logged:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve still running 30 s after SIGHUP")
	}
}

// startServeProcess runs `oauthd serve --demo` with extra flags as a
// process of its own (this test binary as main), on a free port and a new
// database, and returns once it is ready; the process is killed at the
// end of the test if it still runs. Its standard error goes to stderr if
// not nil.
func startServeProcess(t *testing.T, stderr io.Writer, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	return startServeProcessUnder(t, stderr, nil, extra...)
}

// startServeProcessUnder is startServeProcess run by the command under
// (a shell that execs it, say), which gets this test binary and serve's
// arguments after its own.
func startServeProcessUnder(t *testing.T, stderr io.Writer, under []string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a server process")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := append([]string{os.Args[0], "serve", "--demo", "--addr", addr, "--db", filepath.Join(t.TempDir(), "o.db")}, extra...)
	args = append(slices.Clone(under), args...)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "OAUTHD_TEST_AS_MAIN=1")
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	awaitReadyz(t, addr)
	return cmd, addr
}

// awaitReadyz waits until the server at addr answers /readyz with 200.
func awaitReadyz(t *testing.T, addr string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve not ready within 30 s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
