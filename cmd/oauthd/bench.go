package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/bench"
	"github.com/oauthd/oauthd/internal/load"
	"github.com/oauthd/oauthd/pgstore"
)

const benchUsage = `usage: oauthd bench [flags]

Drives an oauthd server over HTTP with --connections keep-alive
connections for --duration and prints requests per second, latency
quantiles, answers by status and the server's memory and CPU.

Without --url it starts a server itself: 'oauthd serve' as a child
process (or in this process with --inprocess) on a new SQLite file (or
--db), with a client, --users users and the codes and tokens the
scenario needs, which belong to the users in turn, created beforehand
(hashes only, as the server stores them).

With --url it drives a running server as --client-id/--client-secret,
signing in as --username/--password: the demo's test_client and admin by
default, which serve every scenario but client_credentials (test_client
may not use that grant): for it, create a client with 'oauthd client
create --grant client_credentials' and pass its --client-id and
--client-secret.

With --baseline it then runs a bare net/http handler that does the same
HTTP work (same requests, same parsing of the form body, same response
headers and bodies, byte for byte) with no OAuth logic, and prints the
ratio oauthd / bare of the same run on the same machine.

Scenarios: client_credentials, code, refresh, introspect, flow, mixed
(see docs/benchmarks.md).

With --wrk the timed runs are wrk's (github.com/wg/wrk, the generator of
the reference figures, which takes less CPU per request than the Go one)
rather than the built-in generator's; everything else is the same. wrk
replays fixed requests, so only client_credentials and introspect can be
driven with it: codes and refresh tokens are single use.

	oauthd bench --scenario client_credentials --baseline
	oauthd bench --scenario code --connections 64 --duration 10s --baseline
	oauthd bench --url http://127.0.0.1:8000 --pid $(pidof oauthd) --scenario refresh
	oauthd bench --wrk --scenario client_credentials --baseline   # timed with wrk
	oauthd bench --startup                  # how long 'oauthd serve' takes to answer

Flags:
`

type benchFlags struct {
	scenario, urls, db, logLevel                                string
	connections, codes, users, pid, startupRuns, rounds, nodes  int
	duration                                                    time.Duration
	baseline, jsonOut, inprocess, startup                       bool
	clientID, clientSecret, username, password, redirect, scope string
	serveBare, bareAddr, cpuProfile, memProfile, traceFile      string
	wrk                                                         bool
	wrkPath                                                     string
	wrkThreads                                                  int

	wrkGen    *load.Wrk // with --wrk
	wrkMarker string    // what every good answer contains
}

func cmdBench(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("bench", e)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchUsage); fs.PrintDefaults() }
	var f benchFlags
	fs.StringVar(&f.scenario, "scenario", "client_credentials", "what each connection does: "+strings.Join(bench.Scenarios, ", "))
	fs.IntVar(&f.connections, "connections", 64, "concurrent keep-alive connections")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "length of each timed run (at most 5m)")
	fs.BoolVar(&f.baseline, "baseline", false, "also run a bare net/http handler doing the same HTTP work, and print the ratio")
	fs.IntVar(&f.rounds, "rounds", 1, "run oauthd (then the bare handler) this many times, alternating, and report the totals")
	fs.StringVar(&f.urls, "url", "", "a running server (several, comma-separated, share the connections); default: start one")
	fs.IntVar(&f.pid, "pid", 0, "with --url: the server's process id, to report its memory and CPU")
	fs.StringVar(&f.db, "db", "", "without --url: the database of the server started (SQLite path or postgres:// DSN); default a new temporary SQLite file")
	fs.IntVar(&f.nodes, "nodes", 1, "without --url: how many 'oauthd serve' processes to start on the database (PostgreSQL scale-out)")
	fs.BoolVar(&f.inprocess, "inprocess", false, "without --url: run the server in this process rather than as a child 'oauthd serve'")
	fs.StringVar(&f.logLevel, "log-level", "warn", "without --url: the server's log level (info logs a line per request)")
	fs.IntVar(&f.users, "users", 1000, "without --url: the users the pre-minted codes and tokens belong to, in turn")
	fs.IntVar(&f.codes, "codes", 0, "code scenario without --url: codes to pre-mint (default 30000 per second of --duration and round)")
	fs.BoolVar(&f.jsonOut, "json", false, "print the report as JSON")
	fs.StringVar(&f.clientID, "client-id", app.DemoClientID, "with --url: a confidential client (client_secret_basic)")
	fs.StringVar(&f.clientSecret, "client-secret", app.DemoClientSecret, "with --url: its secret")
	fs.StringVar(&f.redirect, "redirect-uri", app.DemoRedirectURI, "with --url: its redirect URI")
	fs.StringVar(&f.scope, "scope", "email", "with --url: the scope to ask for")
	fs.StringVar(&f.username, "username", app.DemoUsername, "with --url: a user to sign in as")
	fs.StringVar(&f.password, "password", app.DemoPassword, "with --url: the user's password")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "with --inprocess: write a CPU profile of the timed oauthd run (server and load generator) to this file")
	fs.StringVar(&f.traceFile, "trace", "", "with --inprocess: write an execution trace of the timed oauthd run to this file (go tool trace; keep --duration short)")
	fs.StringVar(&f.memProfile, "memprofile", "", "with --inprocess: write an allocation profile of the bench process (seeding, server and load generator) to this file")
	fs.BoolVar(&f.wrk, "wrk", false, "time the runs with wrk instead of the Go load generator (client_credentials and introspect only)")
	fs.StringVar(&f.wrkPath, "wrk-path", "wrk", "with --wrk: the wrk binary")
	fs.IntVar(&f.wrkThreads, "wrk-threads", 2, "with --wrk: wrk's threads (-t); --connections must be a multiple of it")
	fs.BoolVar(&f.startup, "startup", false, "measure how long 'oauthd serve' takes to answer HTTP on an existing database, and exit")
	fs.IntVar(&f.startupRuns, "startup-runs", 10, "with --startup: how many starts to time")
	// Internal: the bare handler of the baseline, as a child process.
	fs.StringVar(&f.serveBare, "serve-bare", "", "internal: serve the baseline's bare handler on this recorded trace (the child process of --baseline)")
	fs.StringVar(&f.bareAddr, "addr", "127.0.0.1:0", "internal: with --serve-bare, the listen address")
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	// The server's log, the children's stderr and the progress line
	// share e.stderr from several goroutines.
	be := *e
	be.stderr = &syncWriter{w: e.stderr}
	e = &be
	if f.serveBare != "" {
		return serveBare(ctx, f.serveBare, f.bareAddr)
	}
	if f.startup {
		return benchStartup(ctx, &f, e)
	}
	if f.duration <= 0 || f.duration > load.MaxDuration {
		return fmt.Errorf("--duration must be between 0 and %s", load.MaxDuration)
	}
	if f.nodes < 1 || f.nodes > 8 || (f.nodes > 1 && f.inprocess) {
		return errors.New("--nodes must be between 1 and 8, and 1 with --inprocess")
	}
	if f.rounds < 1 || f.rounds > 20 {
		return errors.New("--rounds must be between 1 and 20")
	}
	if f.users < 1 || f.users > 1_000_000 {
		return errors.New("--users must be between 1 and 1000000")
	}
	if f.connections < 1 || f.connections > 10000 {
		return errors.New("--connections must be between 1 and 10000")
	}
	if !slices.Contains(bench.Scenarios, f.scenario) {
		return fmt.Errorf("--scenario %q: use one of %s", f.scenario, strings.Join(bench.Scenarios, ", "))
	}
	if f.wrk {
		if err := f.findWrk(); err != nil {
			return err
		}
	}
	return runBench(ctx, &f, e)
}

// findWrk checks that wrk can drive the run --wrk asks for, and finds it.
func (f *benchFlags) findWrk() error {
	marker, err := bench.FixedMarker(f.scenario)
	if err != nil {
		return fmt.Errorf("--wrk: %v: wrk sends the same requests again and again", err)
	}
	if f.nodes > 1 || strings.Contains(f.urls, ",") {
		return errors.New("--wrk drives one server: not with --nodes or several --url")
	}
	if f.wrkThreads < 1 || f.wrkThreads > 64 {
		return errors.New("--wrk-threads must be between 1 and 64")
	}
	if err := load.WrkCheck(f.duration, f.connections, f.wrkThreads); err != nil {
		return fmt.Errorf("--wrk: %v", err)
	}
	w, err := load.FindWrk(f.wrkPath, f.wrkThreads)
	if errors.Is(err, load.ErrNoWrk) {
		if f.wrkPath == "" || f.wrkPath == "wrk" {
			return errors.New("--wrk needs wrk in PATH: apt-get install wrk")
		}
		return fmt.Errorf("--wrk-path %s: %v", f.wrkPath, err)
	}
	if err != nil {
		return fmt.Errorf("--wrk: %v", err)
	}
	f.wrkGen, f.wrkMarker = w, marker
	return nil
}

// syncWriter serialises writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// server is a server under test and how to stop it.
type server struct {
	addrs []string
	pid   int
	desc  string
	stop  func()
	stops []func() // of each node
}

func runBench(ctx context.Context, f *benchFlags, e *env) error {
	if f.cpuProfile != "" && !f.inprocess {
		return errors.New("--cpuprofile needs --inprocess")
	}
	if f.traceFile != "" && !f.inprocess {
		return errors.New("--trace needs --inprocess")
	}
	if f.memProfile != "" {
		if !f.inprocess {
			return errors.New("--memprofile needs --inprocess")
		}
		// Set once, before the process allocates much: one sample per
		// 4 KiB allocated, so that small per-request allocations show.
		runtime.MemProfileRate = 4096
	}
	var params *bench.Params
	var srv *server
	if f.urls != "" {
		var err error
		if srv, err = remote(f); err != nil {
			return err
		}
		params = &bench.Params{ClientID: f.clientID, ClientSecret: f.clientSecret, RedirectURI: f.redirect,
			Scope: f.scope, Username: f.username, Password: f.password}
	} else {
		var err error
		srv, params, err = startLocal(ctx, f, e)
		if err != nil {
			return err
		}
	}
	defer srv.stop()
	scn, err := bench.NewScenario(f.scenario, params)
	if err != nil {
		return err
	}
	opts := load.Options{Targets: srv.addrs, Connections: f.connections, Duration: f.duration, PID: srv.pid, Progress: e.stderr}

	// One iteration first: it checks the scenario works before the timed
	// part, warms the server (the first use of the client secret pays
	// the slow hash; later ones hit the verified-secret cache), and
	// records the requests the baseline replays.
	fmt.Fprintf(e.stderr, "preparing %d connections for %s...\n", f.connections, f.scenario)
	tr, err := load.Record(ctx, scn, opts)
	if err != nil {
		return remoteHint(f, err)
	}
	for _, addr := range opts.Targets[1:] { // warm the other nodes too
		o := opts
		o.Targets = []string{addr}
		if _, err := load.Record(ctx, scn, o); err != nil {
			return remoteHint(f, err)
		}
	}
	// The recording verified the client secret with the slow KDF, whose
	// memory the server returns to the system a moment later; start the
	// timed part after that, so the RSS reported is the steady state's.
	time.Sleep(600 * time.Millisecond)
	opts.Label = "oauthd"
	if f.cpuProfile != "" {
		pf, err := os.Create(f.cpuProfile)
		if err != nil {
			return err
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return err
		}
	}
	if f.traceFile != "" {
		tf, err := os.Create(f.traceFile)
		if err != nil {
			return err
		}
		defer tf.Close()
		if err := trace.Start(tf); err != nil {
			return err
		}
	}
	var bare *server
	if f.baseline {
		if bare, err = startBare(ctx, f, e, tr); err != nil {
			return err
		}
		defer bare.stop()
	}
	// Each round runs oauthd, then the bare handler: alternating them
	// spreads whatever else the machine does over both.
	var runs, bareRuns []*load.Result
	var ratios []float64
	for round := range f.rounds {
		if ctx.Err() != nil {
			break
		}
		o := opts
		if f.rounds > 1 {
			o.Label = fmt.Sprintf("oauthd %d/%d", round+1, f.rounds)
		}
		var res *load.Result
		if f.wrkGen != nil {
			// wrk replays what the connections would send: their requests,
			// recorded (one iteration each, untimed) after preparing them
			// as load.Run does; introspect's connections each take a
			// token of their own.
			reqs, err := load.FixedRequests(ctx, scn, o)
			if err != nil {
				return err
			}
			res, err = f.wrkGen.Run(ctx, f.scenario, &load.WrkScript{Requests: reqs, Marker: f.wrkMarker}, o)
			if err != nil {
				return err
			}
		} else if res, err = load.Run(ctx, scn, o); err != nil {
			return err
		}
		runs = append(runs, res)
		if bare == nil || ctx.Err() != nil {
			continue
		}
		o.Targets, o.PID, o.Label = []string{bare.addrs[0]}, bare.pid, strings.Replace(o.Label, "oauthd", "bare  ", 1)
		var bres *load.Result
		if f.wrkGen != nil {
			// The recorded requests, with their step for the bare handler,
			// as load.Replay sends them.
			bres, err = f.wrkGen.Run(ctx, f.scenario, &load.WrkScript{Requests: load.ReplayRequests(tr), Marker: f.wrkMarker}, o)
		} else {
			bres, err = load.Run(ctx, load.Replay(f.scenario, tr), o)
		}
		if err != nil {
			return err
		}
		bareRuns = append(bareRuns, bres)
		ratios = append(ratios, res.RPS/bres.RPS)
	}
	if f.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if f.traceFile != "" {
		trace.Stop()
	}
	if f.memProfile != "" {
		if err := writeAllocs(f.memProfile); err != nil {
			return err
		}
	}
	if len(runs) == 0 {
		return ctx.Err()
	}
	rep := &bench.Report{Scenario: f.scenario, Connections: f.connections, Duration: f.duration, Rounds: len(runs), Server: srv.desc,
		Machine: bench.ThisMachine(), LoadGenerator: bench.GoGenerator, OAuthd: load.Merge(runs...)}
	if f.wrkGen != nil {
		rep.LoadGenerator = f.wrkGen.String()
	}
	if len(bareRuns) > 0 {
		rep.SetBare(load.Merge(bareRuns...))
		rep.RoundRatios = ratios
	}
	if f.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	rep.Print(e.stdout)
	return nil
}

// remoteHint adds to the error of a scenario against --url what to do
// when the server answered unauthorized_client to client_credentials: the
// client (by default the demo's test_client, which has only the
// authorization_code and refresh_token grants) may not use that grant.
func remoteHint(f *benchFlags, err error) error {
	if f.urls == "" || f.scenario != "client_credentials" || !strings.Contains(err.Error(), "unauthorized_client") {
		return err
	}
	which := fmt.Sprintf("the client %q", f.clientID)
	if f.clientID == app.DemoClientID {
		which = fmt.Sprintf("the demo's %s (the default --client-id)", app.DemoClientID)
	}
	return fmt.Errorf("%w; %s may not use the client_credentials grant: create a client that may with 'oauthd client create --grant client_credentials' on the server's database and pass its --client-id and --client-secret, or bench this client with --scenario code, refresh, introspect, flow or mixed", err, which)
}

// remote is the servers of --url.
func remote(f *benchFlags) (*server, error) {
	s := &server{pid: f.pid, stop: func() {}}
	for _, raw := range strings.Split(f.urls, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("--url %q: want http://host:port (the load engine speaks plain HTTP/1.1)", raw)
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "80")
		}
		s.addrs = append(s.addrs, host)
	}
	s.desc = "running server at " + f.urls
	if f.pid > 0 {
		s.desc += fmt.Sprintf(" (pid %d)", f.pid)
	}
	return s, nil
}

// startLocal seeds a database and starts 'oauthd serve' on it.
func startLocal(ctx context.Context, f *benchFlags, e *env) (*server, *bench.Params, error) {
	cleanup := func() {}
	db := f.db
	if db == "" {
		dir, err := os.MkdirTemp("", "oauthd-bench-")
		if err != nil {
			return nil, nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		db = filepath.Join(dir, "bench.db")
	}
	fail := func(err error) (*server, *bench.Params, error) {
		cleanup()
		return nil, nil, err
	}
	so := bench.SeedOptions{Users: f.users}
	switch f.scenario {
	case "code":
		so.Codes = f.codes
		if so.Codes <= 0 {
			so.Codes = int(30000 * f.duration.Seconds() * float64(f.rounds))
		}
	case "refresh":
		so.RefreshTokens = (2*f.connections)*f.rounds + 1
	case "introspect":
		so.AccessTokens = f.connections*f.rounds + 1
	}
	t0 := time.Now()
	fmt.Fprintf(e.stderr, "seeding %s...", app.MaskDSN(db))
	store, err := app.OpenStore(ctx, db, true)
	if err != nil {
		return fail(err)
	}
	params, err := bench.Seed(ctx, store, so)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	fmt.Fprintf(e.stderr, " %s\n", time.Since(t0).Round(time.Millisecond))
	storeDesc := "SQLite " + db
	if pgstore.IsDSN(db) {
		storeDesc = "PostgreSQL"
	}

	// The flow and mixed scenarios sign in as one user from one address
	// on every connection at once. The login limits count attempts in
	// progress against an account's and an address's allowance (5 and
	// 50), so for them the server stands for many people: the limits are
	// raised above the connections.
	manyLogins := f.scenario == "flow" || f.scenario == "mixed"
	loginLimit := max(1000, 2*f.connections)
	if manyLogins {
		storeDesc += fmt.Sprintf(", login rate limits raised to %d", loginLimit)
	}
	if f.inprocess {
		cfg := app.Config{Addr: "127.0.0.1:0", DB: db, LogLevel: f.logLevel}
		if manyLogins {
			cfg.Provider.LoginLimit.MaxFailures, cfg.Provider.LoginIPLimit.MaxFailures = loginLimit, loginLimit
		}
		m, err := app.Open(ctx, cfg, e.stderr)
		if err != nil {
			return fail(err)
		}
		done := make(chan error, 1)
		go func() { done <- m.Serve() }()
		return &server{addrs: []string{m.Addr()}, pid: os.Getpid(), desc: "oauthd in this process, " + storeDesc, stop: func() {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			m.Shutdown(sctx)
			<-done
			cleanup()
		}}, params, nil
	}
	// --nodes servers on the one database, the connections spread over
	// them; the first one's memory and CPU are reported.
	all := &server{}
	for range f.nodes {
		args := []string{"serve", "--db", db, "--log-level", f.logLevel}
		if manyLogins {
			args = append(args, "--rate-limit-login-account-max-failures", strconv.Itoa(loginLimit),
				"--rate-limit-login-ip-max-failures", strconv.Itoa(loginLimit))
		}
		s, err := startChild(ctx, e, "oauthd serve", args...)
		if err != nil {
			all.stopAll()
			return fail(err)
		}
		if all.pid == 0 {
			all.pid = s.pid
		}
		all.addrs = append(all.addrs, s.addrs...)
		all.stops = append(all.stops, s.stop)
	}
	all.stop = func() { all.stopAll(); cleanup() }
	all.desc = fmt.Sprintf("'oauthd serve' (child process %d), %s", all.pid, storeDesc)
	if f.nodes > 1 {
		all.desc = fmt.Sprintf("%d 'oauthd serve' nodes on one database (first: child process %d), %s", f.nodes, all.pid, storeDesc)
	}
	return all, params, nil
}

func (s *server) stopAll() {
	for _, stop := range s.stops {
		stop()
	}
}

// startChild runs this program with args and --addr 127.0.0.1:PORT and
// waits until it answers HTTP.
func startChild(ctx context.Context, e *env, what string, args ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append(args, "--addr", addr)...)
	cmd.Stdout, cmd.Stderr = io.Discard, e.stderr
	cmd.SysProcAttr = load.ChildAttr() // no server left behind if the bench is killed
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	if _, err := waitReady(ctx, addr, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%s did not start: %w", what, err)
	}
	return &server{addrs: []string{addr}, pid: cmd.Process.Pid, stop: stop}, nil
}

// freeAddr returns a loopback address with a port nobody listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// waitReady polls addr until it answers an HTTP request, and returns when
// it first did.
func waitReady(ctx context.Context, addr string, exited <-chan error) (time.Time, error) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return time.Time{}, fmt.Errorf("it exited: %v", err)
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		default:
		}
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return time.Now(), nil
		}
		time.Sleep(time.Millisecond)
	}
	return time.Time{}, errors.New("no answer within 15s")
}

// startBare starts the bare handler of the baseline on the trace, the same
// way the oauthd server was started.
func startBare(ctx context.Context, f *benchFlags, e *env, tr load.Trace) (*server, error) {
	if f.inprocess || f.urls != "" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		hs := &http.Server{Handler: load.BareHandler(tr), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(ln)
		return &server{addrs: []string{ln.Addr().String()}, pid: os.Getpid(), stop: func() { hs.Close() }}, nil
	}
	b, err := json.Marshal(tr)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp("", "oauthd-bench-trace-*.json")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name()) // the child has read it once it answers
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	return startChild(ctx, e, "the bare handler", "bench", "--serve-bare", tmp.Name())
}

// serveBare is the child process of the baseline: the bare handler on a
// recorded trace, served with the same http.Server settings as 'oauthd
// serve', until SIGTERM.
func serveBare(ctx context.Context, traceFile, addr string) error {
	b, err := os.ReadFile(traceFile)
	if err != nil {
		return err
	}
	var tr load.Trace
	if err := json.Unmarshal(b, &tr); err != nil {
		return fmt.Errorf("%s: %w", traceFile, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: load.BareHandler(tr), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 32 << 10}
	go func() {
		<-ctx.Done()
		hs.Close()
	}()
	if err := hs.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// benchStartup times 'oauthd serve' from exec to its first HTTP answer on
// an existing database.
func benchStartup(ctx context.Context, f *benchFlags, e *env) error {
	db := f.db
	if db == "" {
		dir, err := os.MkdirTemp("", "oauthd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		db = filepath.Join(dir, "bench.db")
		// Create it as a first start does, with the demo data.
		s, err := startChild(ctx, e, "oauthd serve", "serve", "--db", db, "--demo", "--log-level", "warn")
		if err != nil {
			return err
		}
		s.stop()
	}
	var times []time.Duration
	for range max(f.startupRuns, 1) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 := time.Now()
		s, err := startChild(ctx, e, "oauthd serve", "serve", "--db", db, "--demo", "--log-level", "warn")
		if err != nil {
			return err
		}
		times = append(times, time.Since(t0))
		s.stop()
	}
	slices.Sort(times)
	if f.jsonOut {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"runs": len(times), "min_ns": times[0],
			"median_ns": times[len(times)/2], "max_ns": times[len(times)-1], "machine": bench.ThisMachine()})
	}
	fmt.Fprintf(e.stdout, "'oauthd serve --demo' on an existing database, from exec to the first HTTP answer, %d runs:\n", len(times))
	fmt.Fprintf(e.stdout, "min %s  median %s  max %s\nmachine: %s\n", times[0].Round(100*time.Microsecond),
		times[len(times)/2].Round(100*time.Microsecond), times[len(times)-1].Round(100*time.Microsecond), bench.ThisMachine())
	return nil
}

// writeAllocs writes the allocation profile of the process (bytes and
// objects allocated, by call stack) to path.
func writeAllocs(path string) error {
	pf, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(pf, 0); err != nil {
		pf.Close()
		return err
	}
	return pf.Close()
}
