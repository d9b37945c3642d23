package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
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

	"golang.org/x/term"

	"github.com/oauthd/oauthd"
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
--client-secret. The flags of a server the bench starts (--db, --nodes,
--inprocess, --users, --log-level, --startup) are refused with --url; the
code scenario mints its --codes through the login and consent pages
before each round.

If the server exits during the run, the bench stops and fails; requests
still unanswered at the end are reported and counted as errors. Ctrl-C
stops it with status 130, reporting the rounds completed, if any.

--startup times 'oauthd serve' from exec to its first HTTP answer: on a
new temporary database with the demo data ('serve --demo'), or on the
existing --db, which it serves without --demo: the demo's public client
and user are never written to a database the bench did not create.

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

	set map[string]bool // the flags given

	wrkGen    *load.Wrk // with --wrk
	wrkMarker string    // what every good answer contains
}

func cmdBench(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("bench", e)
	fs.Usage = func() { fmt.Fprint(fs.Output(), benchUsage); fs.PrintDefaults() }
	var f benchFlags
	fs.StringVar(&f.scenario, "scenario", "client_credentials", "what each connection does: "+strings.Join(bench.Scenarios, ", "))
	fs.IntVar(&f.connections, "connections", 64, "concurrent keep-alive connections (at most 10000)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "length of each timed run (more than 0, at most 5m)")
	fs.BoolVar(&f.baseline, "baseline", false, "also run a bare net/http handler doing the same HTTP work, and print the ratio")
	fs.IntVar(&f.rounds, "rounds", 1, "run oauthd (then the bare handler) this many times, alternating, and report the totals (at most 20)")
	fs.StringVar(&f.urls, "url", "", "a running server (several, comma-separated, share the connections); default: start one")
	fs.IntVar(&f.pid, "pid", 0, "with --url: the server's process id, to report its memory and CPU")
	fs.StringVar(&f.db, "db", "", "without --url: the database of the server started (SQLite path or postgres:// DSN); default a new temporary SQLite file")
	fs.IntVar(&f.nodes, "nodes", 1, "without --url: how many 'oauthd serve' processes to start on the database (PostgreSQL scale-out; at most 8)")
	fs.BoolVar(&f.inprocess, "inprocess", false, "without --url: run the server in this process rather than as a child 'oauthd serve'")
	fs.StringVar(&f.logLevel, "log-level", "warn", "without --url: the server's log level (info logs a line per request)")
	fs.IntVar(&f.users, "users", 1000, "without --url: the users the pre-minted codes and tokens belong to, in turn")
	fs.IntVar(&f.codes, "codes", 0, "code scenario: codes to pre-mint for all the rounds, shared out among them (default per second of --duration and round: 30000 on SQLite, 4000 on PostgreSQL; with --url, where they are minted over HTTP before each round, three times what the server redeems in a short run beforehand)")
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
	fs.BoolVar(&f.startup, "startup", false, "measure how long 'oauthd serve' takes to answer HTTP on an existing database (--db, served without --demo; default a new one with the demo data), and exit")
	fs.IntVar(&f.startupRuns, "startup-runs", 10, "with --startup: how many starts to time (1 to 1000)")
	// Internal: the bare handler of the baseline, as a child process.
	fs.StringVar(&f.serveBare, "serve-bare", "", "internal: serve the baseline's bare handler on this recorded trace (the child process of --baseline)")
	fs.StringVar(&f.bareAddr, "addr", "127.0.0.1:0", "internal: with --serve-bare, the listen address")
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	// The server's log, the children's stderr and the progress line
	// share e.stderr from several goroutines.
	be := *e
	be.stderr = &syncWriter{w: e.stderr}
	prog := newProgress(e, be.stderr)
	e = &be
	if f.serveBare != "" {
		return serveBare(ctx, f.serveBare, f.bareAddr)
	}
	if err := f.check(); err != nil {
		return err
	}
	var err error
	if f.startup {
		err = benchStartup(ctx, &f, e)
	} else {
		err = runBench(ctx, &f, e, prog)
	}
	// The error goes on a line of its own, not after a progress line
	// left open on the terminal.
	prog.Break()
	if err != nil && ctx.Err() != nil {
		// Ctrl-C (or SIGTERM): whatever failed on the way out, say it
		// once, with the status a shell gives a process SIGINT ended.
		return errInterrupted
	}
	return err
}

// check refuses the flags that contradict each other or mean nothing in
// the run asked for, rather than ignoring them.
func (f *benchFlags) check() error {
	only := func(when string, names ...string) error {
		for _, n := range names {
			if f.set[n] {
				return fmt.Errorf("--%s means nothing %s", n, when)
			}
		}
		return nil
	}
	if f.startup {
		if f.urls != "" {
			return errors.New("--startup starts servers itself: not with --url")
		}
		if f.startupRuns < 1 || f.startupRuns > 1000 {
			return errors.New("--startup-runs must be between 1 and 1000")
		}
		for _, n := range []string{"scenario", "connections", "duration", "baseline", "rounds", "pid", "nodes", "inprocess", "users", "codes", "wrk",
			"cpuprofile", "memprofile", "trace", "client-id", "client-secret", "username", "password", "redirect-uri", "scope"} {
			if f.set[n] {
				return fmt.Errorf("--%s means nothing with --startup, which only times 'oauthd serve' from exec to its first answer", n)
			}
		}
		return nil
	}
	if f.set["startup-runs"] {
		return errors.New("--startup-runs goes with --startup")
	}
	if f.urls != "" {
		for _, n := range []string{"db", "nodes", "inprocess", "users", "log-level"} {
			if f.set[n] {
				return fmt.Errorf("--%s is for the server the bench starts: not with --url (a running server has its own)", n)
			}
		}
		if f.pid < 0 {
			return errors.New("--pid must be a process id")
		}
		if f.set["pid"] && !load.Running(f.pid) {
			return fmt.Errorf("--pid %d: no such process is running on this machine", f.pid)
		}
		if f.set["pid"] && strings.Contains(f.urls, ",") {
			// One process's CPU and memory would be reported as the
			// nodes' together.
			return errors.New("--pid names one process: with several --url, leave it out (the report then has no server figures), or bench one server at a time")
		}
	} else if err := only("without --url (the bench seeds its own server, with a client and user of its own)",
		"pid", "client-id", "client-secret", "username", "password", "redirect-uri", "scope"); err != nil {
		return err
	}
	if f.codes < 0 {
		return errors.New("--codes must not be negative")
	}
	if f.set["codes"] && f.scenario != "code" {
		return fmt.Errorf("--codes is for --scenario code: %s mints no codes beforehand", f.scenario)
	}
	if f.duration <= 0 || f.duration > load.MaxDuration {
		return fmt.Errorf("--duration must be more than 0 and at most %s", load.MaxDuration)
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
	return nil
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
	// pids are the processes serving addrs, one per address (none for
	// --url without --pid).
	pids []int
	desc string
	stop func()
	// exited tells, when the server can be watched, why it is no longer
	// running, or nil while it runs.
	exited func() *goneError
	// inBench is true when the server runs in this process (--inprocess).
	inBench bool
}

// goneError is a server process that exited, and why.
type goneError struct {
	what string // "the server", "the bare handler"
	pid  int
	why  error
}

func (g *goneError) Error() string {
	return fmt.Sprintf("%s (pid %d) exited: %v", g.what, g.pid, g.why)
}

// check says when the server has exited: "the server (pid N) exited
// during the run: signal: killed".
func (s *server) check(during string) error {
	if s == nil || s.exited == nil {
		return nil
	}
	if g := s.exited(); g != nil {
		return fmt.Errorf("%s (pid %d) exited during %s: %v", g.what, g.pid, during, g.why)
	}
	return nil
}

// failed explains err, a failure of the run or of its preparation: when
// the server has exited, that is the cause. A child that has just died
// takes a moment to be reaped.
func (s *server) failed(during string, err error) error {
	if s == nil || s.exited == nil {
		return err
	}
	for range 25 {
		if gerr := s.check(during); gerr != nil {
			return gerr
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// newProgress is the progress line on e.stderr: rewritten in place,
// fitted to the terminal's width, when standard error is a terminal; a
// plain line every 5 seconds and at the end of each run otherwise.
func newProgress(e *env, stderr io.Writer) *load.Progress {
	p := &load.Progress{W: stderr, Interval: 5 * time.Second}
	if f, ok := e.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		p.Width = func() int {
			w, _, err := term.GetSize(fd)
			if err != nil {
				return 80
			}
			return w
		}
	}
	return p
}

func runBench(ctx context.Context, f *benchFlags, e *env, prog *load.Progress) error {
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
	codes := 0 // the code scenario's codes, over all the rounds
	if f.urls != "" {
		var err error
		if srv, err = remote(f); err != nil {
			return err
		}
		params = &bench.Params{ClientID: f.clientID, ClientSecret: f.clientSecret, RedirectURI: f.redirect,
			Scope: f.scope, Username: f.username, Password: f.password}
		if f.scenario == "code" && f.codes > 0 {
			// Minted over HTTP before each round, every connection its
			// share: --codes for all the rounds, like the seeded ones.
			params.CodesPerConn = max(1, (f.codes/f.rounds+f.connections-1)/f.connections)
			codes = params.CodesPerConn * f.connections * f.rounds // what is minted: each connection its whole share
		}
	} else {
		var err error
		srv, params, codes, err = startLocal(ctx, f, e, prog)
		if err != nil {
			return err
		}
	}
	defer srv.stop()
	// The seeded codes are shared out among the rounds: a round cannot
	// take another's, and one that runs out is flagged (not compared).
	var codePools []*bench.Pool
	if params.Codes != nil {
		codePools = params.Codes.Split(f.rounds)
	}
	scenario := func(round int) (load.Scenario, error) {
		p := *params
		if codePools != nil {
			p.Codes = codePools[round]
		}
		return bench.NewScenario(f.scenario, &p)
	}
	scn, err := scenario(0)
	if err != nil {
		return err
	}
	opts := load.Options{Targets: srv.addrs, Connections: f.connections, Duration: f.duration, PIDs: srv.pids, Progress: prog,
		Alive: func() error { return srv.check("the run") }}
	if f.urls != "" && f.scenario == "code" {
		// Every connection mints its codes at once: signing in once,
		// then two requests a code.
		opts.SetupConcurrency = min(f.connections, 32)
	}

	// One iteration first: it checks the scenario works before the timed
	// part, warms the server (the first use of the client secret pays
	// the slow hash; later ones hit the verified-secret cache), and
	// records the requests the baseline replays.
	fmt.Fprintf(e.stderr, "preparing %d connections for %s...\n", f.connections, f.scenario)
	tr, err := load.Record(ctx, scn, opts)
	if err != nil {
		return srv.failed("the preparation", remoteHint(f, err))
	}
	for _, addr := range opts.Targets[1:] { // warm the other nodes too
		o := opts
		o.Targets = []string{addr}
		if _, err := load.Record(ctx, scn, o); err != nil {
			return srv.failed("the preparation", remoteHint(f, err))
		}
	}
	if f.urls != "" && f.scenario == "code" && f.codes == 0 {
		// Minting a code over HTTP (the authorization request, the
		// consent) costs the server several times what redeeming it
		// does: rather than minting for the fastest rate of any server,
		// measure this one's and mint three times what it redeems in a
		// round (a short run starts slower than a long one goes on).
		if codes, err = calibrateCodes(ctx, f, params, opts); err != nil {
			return srv.failed("the preparation", err)
		}
		params.CodesPerConn = max(1, (codes/f.rounds+f.connections-1)/f.connections)
		fmt.Fprintf(e.stderr, "minting %d codes over HTTP before each round: three times what the server redeemed in %s at the rate of a short run beforehand (--codes sets the total)\n", params.CodesPerConn*f.connections, f.duration)
		codes = params.CodesPerConn * f.connections * f.rounds
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
	// spreads whatever else the machine does over both. A round cut
	// short by Ctrl-C is left out: only whole rounds are reported.
	var runs, bareRuns []*load.Result
	interrupted := false
	for round := range f.rounds {
		if ctx.Err() != nil {
			interrupted = true
			break
		}
		o := opts
		if f.rounds > 1 {
			o.Label = fmt.Sprintf("oauthd %d/%d", round+1, f.rounds)
		}
		// A scenario per round: the round's share of the seeded codes,
		// or as many codes minted as calibrateCodes asked for.
		rscn, err := scenario(round)
		if err != nil {
			return err
		}
		var res *load.Result
		if f.wrkGen != nil {
			// wrk replays what the connections would send: their requests,
			// recorded (one iteration each, untimed) after preparing them
			// as load.Run does; introspect's connections each take a
			// token of their own.
			reqs, err := load.FixedRequests(ctx, rscn, o)
			if err != nil {
				return srv.failed("the preparation", err)
			}
			res, err = f.wrkGen.Run(ctx, f.scenario, &load.WrkScript{Requests: reqs, Marker: f.wrkMarker}, o)
			if err != nil {
				return srv.failed("the run", err)
			}
		} else if res, err = load.Run(ctx, rscn, o); err != nil {
			return srv.failed("the run", err)
		}
		if ctx.Err() != nil || res.Interrupted {
			interrupted = true
			break
		}
		if bare == nil {
			runs = append(runs, res)
			continue
		}
		o.Targets, o.PIDs, o.Label = []string{bare.addrs[0]}, bare.pids, strings.Replace(o.Label, "oauthd", "bare", 1)
		o.Alive = func() error { return bare.check("the run") }
		var bres *load.Result
		if f.wrkGen != nil {
			// The recorded requests, with their step for the bare handler,
			// as load.Replay sends them.
			bres, err = f.wrkGen.Run(ctx, f.scenario, &load.WrkScript{Requests: load.ReplayRequests(tr), Marker: f.wrkMarker}, o)
		} else {
			bres, err = load.Run(ctx, load.Replay(f.scenario, tr), o)
		}
		if err != nil {
			return bare.failed("the run", err)
		}
		if ctx.Err() != nil || bres.Interrupted {
			interrupted = true
			break
		}
		runs, bareRuns = append(runs, res), append(bareRuns, bres)
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
		if interrupted {
			return errInterrupted
		}
		return ctx.Err()
	}
	rep := &bench.Report{Scenario: f.scenario, Connections: f.connections, Duration: f.duration, Server: srv.desc,
		Machine: bench.ThisMachine(), LoadGenerator: bench.GoGenerator, ServerInBench: srv.inBench, Codes: codes}
	if f.wrkGen != nil {
		rep.LoadGenerator = f.wrkGen.String()
	}
	if f.scenario == "code" {
		rep.CodesHow = "seeded"
		if f.urls != "" {
			rep.CodesHow = "minted over HTTP before the rounds"
		}
	}
	if interrupted {
		rep.Interrupted, rep.RoundsAsked = true, f.rounds
	}
	rep.SetRounds(runs, bareRuns)
	if len(srv.addrs) > 1 {
		rep.SetNodes(srv.addrs)
	}
	if signsInFirst(f) {
		rep.RSSNote = "RSS start is read as the timed part starts, right after the connections signed in: it includes the memory of their password checks (argon2id), which the server returns to the system during the run"
	}
	if f.jsonOut {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		rep.Print(e.stdout)
	}
	if interrupted {
		return errInterrupted
	}
	return nil
}

// calibrateCodes estimates how many codes the code scenario needs with
// --url for all the rounds: it mints 40 codes per connection, redeems
// them at full speed (untimed, unreported), and returns three times what
// that rate redeems in --duration, per round, and at least 40 per
// connection.
func calibrateCodes(ctx context.Context, f *benchFlags, params *bench.Params, opts load.Options) (int, error) {
	const perConn = 40
	p := *params
	p.CodesPerConn = perConn
	scn, err := bench.NewScenario("code", &p)
	if err != nil {
		return 0, err
	}
	opts.Progress, opts.Label = nil, "calibration"
	res, err := load.Run(ctx, scn, opts)
	if err != nil {
		return 0, err
	}
	if res.Errors > 0 || len(res.Failures) > 0 {
		return 0, fmt.Errorf("redeeming codes before the run: %d errors (%s)", res.Errors, res.StatusSummary())
	}
	rate := float64(res.Iterations) / max(res.Duration.Seconds(), 1e-3)
	perRound := max(int(3*rate*f.duration.Seconds()), perConn*f.connections)
	return perRound * f.rounds, nil
}

// signsInFirst tells whether the connections sign in (a password check
// with argon2id) while they are prepared, just before the timed part.
func signsInFirst(f *benchFlags) bool {
	return f.scenario == "mixed" || (f.urls != "" && f.scenario != "client_credentials" && f.scenario != "flow")
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
	s := &server{stop: func() {}}
	for _, raw := range strings.Split(f.urls, ",") {
		raw = strings.TrimSpace(raw)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return nil, fmt.Errorf("--url %q: want http://host:port (the load engine speaks plain HTTP/1.1)", raw)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("--url %q: give the server's root, http://%s: the scenarios' requests go to its own paths (/oauth/token, /oauth/authorize...), and a server under a path prefix is not supported", raw, u.Host)
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
		// Its figures go with the first URL: --pid names one process.
		s.pids = []int{f.pid}
		pid := f.pid
		s.exited = func() *goneError {
			if load.Running(pid) {
				return nil
			}
			return &goneError{"the server", pid, errors.New("it no longer runs")}
		}
	}
	return s, nil
}

// Codes seeded per second of --duration and round when --codes is not
// given: above the fastest redemption rates measured on 2 vCPUs (22,800 a
// second on SQLite; 1,300–2,200 on PostgreSQL, whose every code is a
// commit to seed too).
const (
	sqliteCodesPerSecond   = 30000
	postgresCodesPerSecond = 4000
)

// startLocal seeds a database and starts 'oauthd serve' on it. It returns
// the code scenario's codes.
func startLocal(ctx context.Context, f *benchFlags, e *env, prog *load.Progress) (*server, *bench.Params, int, error) {
	cleanup := func() {}
	db := f.db
	if db == "" {
		dir, err := os.MkdirTemp("", "oauthd-bench-")
		if err != nil {
			return nil, nil, 0, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		db = filepath.Join(dir, "bench.db")
	}
	fail := func(err error) (*server, *bench.Params, int, error) {
		cleanup()
		return nil, nil, 0, err
	}
	isPG := pgstore.IsDSN(db)
	so := bench.SeedOptions{Users: f.users}
	switch f.scenario {
	case "code":
		so.Codes = f.codes
		if so.Codes <= 0 {
			perSecond := sqliteCodesPerSecond
			if isPG {
				perSecond = postgresCodesPerSecond
			}
			so.Codes = int(float64(perSecond) * f.duration.Seconds() * float64(f.rounds))
		}
		// One more for the recording of the first iteration, and each
		// round its share.
		so.Codes = max(so.Codes, f.rounds) + 1
	case "refresh":
		so.RefreshTokens = (2*f.connections)*f.rounds + 1
	case "introspect":
		so.AccessTokens = f.connections*f.rounds + 1
	}
	t0 := time.Now()
	what := "seeding " + app.MaskDSN(db)
	prog.Update(what + "...")
	so.Progress = func(s string) { prog.Update(what + ": " + s) }
	var store oauthd.Storage
	var err error
	if isPG {
		// Many connections at once: every code is a commit of its own,
		// and PostgreSQL flushes concurrent commits together.
		store, err = pgstore.Open(ctx, db, pgstore.Options{MaxConns: 32})
	} else {
		store, err = app.OpenStore(ctx, db, true)
	}
	if err != nil {
		prog.Break()
		return fail(err)
	}
	params, err := bench.Seed(ctx, store, so)
	if cerr := store.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		prog.Break()
		return fail(err)
	}
	prog.Final(fmt.Sprintf("%s: %s in %s", what, so.Summary(), time.Since(t0).Round(time.Millisecond)))
	storeDesc := "SQLite " + db
	if isPG {
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
		return &server{addrs: []string{m.Addr()}, pids: []int{os.Getpid()}, inBench: true,
			desc: "oauthd in this process, " + storeDesc, stop: func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				m.Shutdown(sctx)
				<-done
				cleanup()
			}}, params, so.Codes - 1, nil
	}
	// --nodes servers on the one database, the connections spread over
	// them in turn; each one's memory and CPU are reported.
	all := &server{}
	var stops []func()
	var exits []func() *goneError
	all.stop = func() {
		for _, stop := range stops {
			stop()
		}
		cleanup()
	}
	for i := range f.nodes {
		args := []string{"serve", "--log-level", f.logLevel}
		if manyLogins {
			args = append(args, "--rate-limit-login-account-max-failures", strconv.Itoa(loginLimit),
				"--rate-limit-login-ip-max-failures", strconv.Itoa(loginLimit))
		}
		what := "the server"
		if f.nodes > 1 {
			what = fmt.Sprintf("the server's node %d", i+1)
		}
		s, err := startChild(ctx, e, what, serveEnv(db), args...)
		if err != nil {
			all.stop()
			return nil, nil, 0, err
		}
		all.pids = append(all.pids, s.pids...)
		all.addrs = append(all.addrs, s.addrs...)
		stops = append(stops, s.stop)
		exits = append(exits, s.exited)
	}
	all.exited = func() *goneError {
		for _, x := range exits {
			if g := x(); g != nil {
				return g
			}
		}
		return nil
	}
	all.desc = fmt.Sprintf("'oauthd serve' (child process %d), %s", all.pids[0], storeDesc)
	if f.nodes > 1 {
		pids := make([]string, len(all.pids))
		for i, p := range all.pids {
			pids[i] = strconv.Itoa(p)
		}
		all.desc = fmt.Sprintf("%d 'oauthd serve' nodes on one database (child processes %s), %s", f.nodes, strings.Join(pids, ", "), storeDesc)
	}
	return all, params, so.Codes - 1, nil
}

// serveEnv is the environment of an 'oauthd serve' child on db: the
// database goes in OAUTHD_DB rather than on the command line, where a
// PostgreSQL DSN's password would show in ps to every user of the machine
// (a process's environment is readable by its owner only).
func serveEnv(db string) []string {
	return append(os.Environ(), "OAUTHD_DB="+db)
}

// startChild runs this program with args and --addr 127.0.0.1:PORT, in
// the environment env (nil: this process's), and waits until it answers
// HTTP. what names it in errors ("the server").
func startChild(ctx context.Context, e *env, what string, env []string, args ...string) (*server, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, append(args, "--addr", addr)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = io.Discard, e.stderr
	// No server left behind if the bench is killed, and none stopped by
	// the terminal's Ctrl-C, which goes to the bench alone: it stops its
	// children itself, after the run.
	cmd.SysProcAttr = load.ChildAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pid := cmd.Process.Pid
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	exited := func() *goneError {
		select {
		case <-done:
			why := waitErr
			if why == nil {
				why = errors.New("exit status 0")
			}
			return &goneError{what, pid, why}
		default:
			return nil
		}
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		load.Continue(cmd.Process) // a stopped (SIGSTOP) server holds the SIGTERM until it runs
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	if _, err := waitReady(ctx, addr, exited); err != nil {
		stop()
		return nil, fmt.Errorf("%s did not start: %w", what, err)
	}
	return &server{addrs: []string{addr}, pids: []int{pid}, stop: stop, exited: exited}, nil
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
func waitReady(ctx context.Context, addr string, exited func() *goneError) (time.Time, error) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if g := exited(); g != nil {
			return time.Time{}, fmt.Errorf("it exited: %v", g.why)
		}
		if err := ctx.Err(); err != nil {
			return time.Time{}, err
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
		return &server{addrs: []string{ln.Addr().String()}, pids: []int{os.Getpid()}, inBench: true, stop: func() { hs.Close() }}, nil
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
	return startChild(ctx, e, "the bare handler", nil, "bench", "--serve-bare", tmp.Name())
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
// an existing database: a new one with the demo data, or --db, served
// without --demo (the demo's client and user, whose secrets are public,
// must not be planted in a database the bench did not create).
func benchStartup(ctx context.Context, f *benchFlags, e *env) error {
	db := f.db
	args := []string{"serve", "--log-level", f.logLevel}
	what := "'oauthd serve' on the existing database --db"
	if db == "" {
		dir, err := os.MkdirTemp("", "oauthd-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		db = filepath.Join(dir, "bench.db")
		args = append(args, "--demo")
		what = "'oauthd serve --demo' on an existing database"
		// Create it as a first start does, with the demo data.
		s, err := startChild(ctx, e, "oauthd serve", serveEnv(db), args...)
		if err != nil {
			return err
		}
		s.stop()
	} else if !pgstore.IsDSN(db) {
		path := strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "file:")
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("--startup --db %s: %w: --startup times the start on an existing database (without --db, on a new one it creates)", db, err)
		}
	}
	var times []time.Duration
	for range f.startupRuns {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		t0 := time.Now()
		s, err := startChild(ctx, e, "oauthd serve", serveEnv(db), args...)
		if err != nil {
			return err
		}
		times = append(times, time.Since(t0))
		s.stop()
	}
	slices.Sort(times)
	if f.jsonOut {
		return json.NewEncoder(e.stdout).Encode(map[string]any{"runs": len(times), "min_ns": times[0],
			"median_ns": times[len(times)/2], "max_ns": times[len(times)-1], "demo": f.db == "", "machine": bench.ThisMachine()})
	}
	fmt.Fprintf(e.stdout, "%s, from exec to the first HTTP answer, %d runs:\n", what, len(times))
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
