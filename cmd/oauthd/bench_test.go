package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMain lets the test binary act as the oauthd binary, for the child
// processes `oauthd bench` starts (it execs itself).
func TestMain(m *testing.M) {
	if os.Getenv("OAUTHD_TEST_AS_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

func runBenchCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"bench"}, args...), &env{stdout: &out, stderr: &errb, getenv: os.Getenv})
	return out.String(), errb.String(), code
}

// `oauthd bench --inprocess --baseline` runs oauthd, then the bare handler,
// and prints both with their ratio.
func TestBenchCommand(t *testing.T) {
	out, errs, code := runBenchCmd(t, "--inprocess", "--scenario", "client_credentials", "--connections", "2", "--duration", "300ms", "--baseline", "--rounds", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"scenario client_credentials: 2 connections, 300ms × 2 rounds", "oauthd", "bare net/http", "ratio oauthd/bare: ", "(rounds: ", "answers: 200: "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "req/s") {
		t.Errorf("no progress line on stderr: %q", errs)
	}
}

// Without --inprocess the server and the bare handler are child
// processes, whose memory and CPU are reported.
func TestBenchCommandChild(t *testing.T) {
	t.Setenv("OAUTHD_TEST_AS_MAIN", "1")
	out, errs, code := runBenchCmd(t, "--scenario", "code", "--connections", "2", "--duration", "300ms", "--codes", "3000", "--baseline", "--nodes", "2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"2 'oauthd serve' nodes on one database", "ratio oauthd/bare: ", " MB", "server CPU/req (2 nodes)",
		"RSS start/peak/end (sum of 2 nodes)", "node 1 127.0.0.1:", "node 2 127.0.0.1:", "per request of its own"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, errs, code = runBenchCmd(t, "--startup", "--startup-runs", "2")
	if code != 0 || !strings.Contains(out, "median") {
		t.Errorf("--startup: exit %d: %s %s", code, out, errs)
	}
}

func TestBenchCommandJSON(t *testing.T) {
	out, errs, code := runBenchCmd(t, "--inprocess", "--scenario", "introspect", "--connections", "2", "--duration", "300ms", "--json", "--baseline")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		Scenario string
		Bare     struct{ Label string }
		InBench  bool `json:"server_in_bench_process"`
		OAuthd   struct {
			Requests int64
			Errors   int64
			Status   map[string]int64
			Server   struct {
				RSSPeak int64 `json:"rss_peak_bytes"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if rep.Bare.Label != "bare" || !rep.InBench {
		t.Errorf("bare label %q, server in the bench process %v; want \"bare\", true", rep.Bare.Label, rep.InBench)
	}
	if rep.Scenario != "introspect" || rep.OAuthd.Requests == 0 || rep.OAuthd.Errors != 0 || rep.OAuthd.Status["200"] != rep.OAuthd.Requests || rep.OAuthd.Server.RSSPeak == 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestBenchCommandFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "nope"},
		{"--duration", "10m"},
		{"--connections", "0"},
		{"--url", "https://example.com"},
		{"--cpuprofile", "cpu.prof"},
		{"--memprofile", "mem.prof"},
		{"--trace", "trace.out"},
	} {
		if _, _, code := runBenchCmd(t, args...); code == 0 {
			t.Errorf("bench %v succeeded", args)
		}
	}
}

// Flags that mean nothing in the run asked for are refused with the
// reason, not ignored; so are impossible values.
func TestBenchCommandFlagsRefused(t *testing.T) {
	const url = "http://127.0.0.1:19499"
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "0"}, "--duration must be more than 0 and at most 5m0s"},
		{[]string{"--url", url, "--inprocess"}, "--inprocess is for the server the bench starts: not with --url"},
		{[]string{"--url", url, "--db", "x.db"}, "--db is for the server the bench starts"},
		{[]string{"--url", url, "--nodes", "2"}, "--nodes is for the server the bench starts"},
		{[]string{"--url", url, "--users", "5"}, "--users is for the server the bench starts"},
		{[]string{"--url", url, "--startup"}, "--startup starts servers itself: not with --url"},
		{[]string{"--url", url + "/oauth"}, "give the server's root, http://127.0.0.1:19499"},
		{[]string{"--url", url, "--pid", "-3"}, "--pid must be a process id"},
		{[]string{"--url", url, "--pid", "999999999"}, "--pid 999999999: no such process"},
		{[]string{"--url", url + "," + url, "--pid", strconv.Itoa(os.Getpid())}, "--pid names one process: with several --url, leave it out"},
		{[]string{"--pid", strconv.Itoa(os.Getpid())}, "--pid means nothing without --url"},
		{[]string{"--client-id", "x"}, "--client-id means nothing without --url"},
		{[]string{"--scenario", "code", "--codes", "-1"}, "--codes must not be negative"},
		{[]string{"--codes", "100"}, "--codes is for --scenario code"},
		{[]string{"--startup", "--startup-runs", "0"}, "--startup-runs must be between 1 and 1000"},
		{[]string{"--startup-runs", "3"}, "--startup-runs goes with --startup"},
		{[]string{"--startup", "--scenario", "code"}, "--scenario means nothing with --startup"},
	} {
		_, errs, code := runBenchCmd(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("bench %v: exit %d, %q; want %q", tc.args, code, errs, tc.want)
		}
	}
	var out bytes.Buffer
	run(context.Background(), []string{"bench", "--help"}, &env{stdout: &out, stderr: &out, getenv: os.Getenv})
	for _, want := range []string{"(at most 10000)", "without --demo", "more than 0, at most 5m"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("bench --help lacks %q", want)
		}
	}
}

// --startup on an existing --db serves it without --demo: the demo's
// client and user (public credentials) are not planted in it. On a
// database that does not exist it refuses.
func TestBenchStartupDBNoDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes")
	}
	t.Setenv("OAUTHD_TEST_AS_MAIN", "1")
	db := filepath.Join(t.TempDir(), "users.db")
	if code, out, errs := oauthdEnv(t, nil, "migrate", "--db", db); code != 0 {
		t.Fatalf("migrate: %d %s %s", code, out, errs)
	}
	out, errs, code := runBenchCmd(t, "--startup", "--startup-runs", "1", "--db", db)
	if code != 0 || !strings.Contains(out, "'oauthd serve' on the existing database --db") {
		t.Fatalf("bench --startup --db: exit %d: %s %s", code, out, errs)
	}
	if code, out, errs := oauthdEnv(t, nil, "client", "list", "--db", db); code != 0 || strings.Contains(out, "test_client") {
		t.Errorf("client list after bench --startup --db: %d %q %s; want no demo client", code, out, errs)
	}
	if code, out, errs := oauthdEnv(t, nil, "user", "list", "--db", db); code != 0 || strings.Contains(out, "admin") {
		t.Errorf("user list after bench --startup --db: %d %q %s; want no demo user", code, out, errs)
	}
	if _, errs, code := runBenchCmd(t, "--startup", "--db", filepath.Join(t.TempDir(), "none.db")); code == 0 || !strings.Contains(errs, "existing database") {
		t.Errorf("--startup on a database that does not exist: exit %d %s", code, errs)
	}
}

// --cpuprofile and --memprofile (with --inprocess) write pprof profiles:
// gzipped protocol buffers that go tool pprof reads; --trace writes an
// execution trace for go tool trace.
func TestBenchCommandProfiles(t *testing.T) {
	dir := t.TempDir()
	cpu, mem, tr := filepath.Join(dir, "cpu.prof"), filepath.Join(dir, "mem.prof"), filepath.Join(dir, "trace.out")
	_, errs, code := runBenchCmd(t, "--inprocess", "--scenario", "introspect", "--connections", "2", "--duration", "300ms",
		"--cpuprofile", cpu, "--memprofile", mem, "--trace", tr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, f := range []string{cpu, mem} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) < 100 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("%s: %d bytes, not a gzipped profile", filepath.Base(f), len(b))
		}
	}
	if b, err := os.ReadFile(tr); err != nil {
		t.Fatal(err)
	} else if !bytes.HasPrefix(b, []byte("go 1.")) || len(b) < 1000 {
		t.Errorf("trace: %d bytes starting %q, not an execution trace", len(b), b[:min(len(b), 16)])
	}
}

func needWrk(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not in PATH")
	}
}

// --wrk times the runs with wrk, against the child 'oauthd serve' and the
// child bare handler, and says so.
func TestBenchCommandWrk(t *testing.T) {
	needWrk(t)
	t.Setenv("OAUTHD_TEST_AS_MAIN", "1")
	out, errs, code := runBenchCmd(t, "--wrk", "--scenario", "client_credentials", "--connections", "4", "--duration", "1s", "--baseline")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	for _, want := range []string{"load generator: wrk 4.", ", 2 threads", "ratio oauthd/bare: ", "oauthd: ", "bare: ", "answers: 200: ", " MB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "failed") || strings.Contains(out, "errors:") {
		t.Errorf("failures:\n%s", out)
	}
	if !strings.Contains(errs, "(wrk)") {
		t.Errorf("no progress line on stderr: %q", errs)
	}
}

// introspect with wrk: every connection's token is sent, and every answer
// says active.
func TestBenchCommandWrkIntrospectJSON(t *testing.T) {
	needWrk(t)
	out, errs, code := runBenchCmd(t, "--wrk", "--wrk-threads", "1", "--inprocess", "--scenario", "introspect", "--connections", "3", "--duration", "1s", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var rep struct {
		LoadGenerator string `json:"load_generator"`
		OAuthd        struct {
			Requests   int64
			Iterations int64
			Errors     int64
			Failures   map[string]int64
			Status     map[string]int64
			P99        int64 `json:"p99_ns"`
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(rep.LoadGenerator, "wrk ") || !strings.HasSuffix(rep.LoadGenerator, ", 1 threads") || rep.OAuthd.Requests == 0 ||
		rep.OAuthd.Errors != 0 || len(rep.OAuthd.Failures) != 0 || rep.OAuthd.Iterations != rep.OAuthd.Requests ||
		rep.OAuthd.Status["200"] != rep.OAuthd.Requests || rep.OAuthd.P99 <= 0 {
		t.Errorf("report %+v", rep)
	}
}

func TestBenchCommandWrkFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "code"}, "authorization codes, which are single use"},
		{[]string{"--scenario", "refresh"}, "refresh tokens, which are single use"},
		{[]string{"--scenario", "flow"}, "wrk sends the same requests again and again"},
		{[]string{"--scenario", "mixed"}, "only client_credentials and introspect"},
		{[]string{"--nodes", "2"}, "--wrk drives one server"},
		{[]string{"--duration", "1500ms"}, "whole seconds"},
		{[]string{"--connections", "3"}, "multiple of the threads"},
		{[]string{"--wrk-threads", "0"}, "--wrk-threads"},
		{[]string{"--wrk-path", filepath.Join(t.TempDir(), "wrk")}, "--wrk-path"},
	} {
		_, errs, code := runBenchCmd(t, append([]string{"--wrk"}, tc.args...)...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("bench --wrk %v: exit %d, %q; want %q", tc.args, code, errs, tc.want)
		}
	}
	t.Setenv("PATH", t.TempDir())
	if _, errs, code := runBenchCmd(t, "--wrk"); code == 0 || !strings.Contains(errs, "--wrk needs wrk in PATH: apt-get install wrk") {
		t.Errorf("without wrk: exit %d, %q", code, errs)
	}
}
