// Package load drives an HTTP server with many keep-alive connections for
// a bounded time and measures it: requests per second, latency quantiles,
// answers by status, and the server process's memory and CPU when it runs
// on this machine. `oauthd bench` is built on it.
//
// Like wrk, each connection is one goroutine sending one request at a
// time on one TCP connection, through a small HTTP/1.1 client that parses
// responses without allocating, so that the load generator takes as
// little as possible of the CPU it shares with the server.
//
// A Scenario says what one connection does: Worker prepares the
// connection's state (untimed), and Worker.Iterate does one unit of work,
// one or more requests, which the runner repeats until the time is up.
package load

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// MaxDuration caps Options.Duration.
const MaxDuration = 5 * time.Minute

// Options configure Run.
type Options struct {
	// Targets are the servers' host:port addresses; connection i goes to
	// Targets[i % len(Targets)].
	Targets []string
	// Host is the Host header; default each target's address.
	Host string
	// Connections is the number of concurrent connections; default 64.
	Connections int
	// Duration is how long the timed part runs; default 10 s, at most
	// MaxDuration.
	Duration time.Duration
	// Timeout bounds each request; default 10 s.
	Timeout time.Duration
	// Progress shows the run as it goes (see Progress); nil for none.
	Progress *Progress
	// Label prefixes the progress line.
	Label string
	// PID is a process on this machine whose memory and CPU time are
	// reported (the server); 0 for none.
	PID int
	// PIDs are the processes of a server of several nodes, one per
	// target (Targets[i] is served by PIDs[i]): each one's memory and CPU
	// time are reported (Result.Nodes) and their sum (Result.Server).
	// When set, PID is ignored.
	PIDs []int
	// Alive, when set, is called every 100 ms during the timed part; an
	// error (the server exited) ends the run at once and Run returns it.
	Alive func() error
	// SetupConcurrency bounds how many Worker calls run at once; default 8.
	SetupConcurrency int
}

// A Scenario is what each connection does.
type Scenario interface {
	// Name names the scenario in reports.
	Name() string
	// Worker prepares connection i before the timed part; requests made
	// through c here are not counted.
	Worker(i int, c *Client) (Worker, error)
}

// A Worker is one connection's state.
type Worker interface {
	// Iterate does one unit of work through c. An error means the unit
	// failed a check (requests are counted by Client.Do whatever the
	// outcome); ErrExhausted stops this connection.
	Iterate(c *Client) error
}

// A SetupReporter is a Scenario that says how the preparation of its
// connections goes (codes minted so far, say): Run shows it on the
// progress line every second while it prepares them.
type SetupReporter interface {
	SetupStatus() string
}

// ErrExhausted is returned by Worker.Iterate when the connection has no
// more work (pre-minted codes ran out, say); the run ends when every
// connection is exhausted or the time is up.
var ErrExhausted = errors.New("load: no more work")

// ErrStopped is returned by Client.Do once the run is over.
var ErrStopped = errors.New("load: the run is over")

// Client sends requests on one connection and records them.
type Client struct {
	conn    *conn
	st      *workerStats
	stopped *atomic.Bool
	// ctx is the run's: a worker's preparation (minting codes through
	// the pages, one request after another) ends when it is done
	// (Ctrl-C), not only once the timed part is over.
	ctx      context.Context
	counting bool
	trace    *Trace // when recording
	// recording is true for the connection of Record: its worker makes
	// what one iteration needs, no more.
	recording bool
	// inflight is when the request in progress was sent (Unix ns), 0
	// when none is: the run reports the requests still unanswered at
	// its end.
	inflight atomic.Int64
}

// Recording tells whether c is the connection of Record, FixedRequests or
// a recording of one iteration: a Worker prepared on it needs what one
// iteration takes, no more.
func (c *Client) Recording() bool { return c.recording }

// Do sends r and returns the response, valid until the next Do. A
// response is returned whatever its status; err is a connection failure
// (the client dials again on the next Do) or ErrStopped.
func (c *Client) Do(r *Request) (*Response, error) {
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	if !c.counting && c.ctx != nil && c.ctx.Err() != nil {
		return nil, c.ctx.Err() // preparing, and the run was cancelled
	}
	t0 := time.Now()
	c.inflight.Store(t0.UnixNano())
	resp, err := c.conn.do(r)
	d := time.Since(t0)
	c.inflight.Store(0)
	if c.stopped.Load() {
		return nil, ErrStopped // finished after the end: not counted
	}
	if c.counting {
		c.st.record(resp, err, d)
	}
	if c.trace != nil && err == nil {
		c.trace.record(r, resp)
	}
	return resp, err
}

// workerStats are one connection's counts. Only its goroutine writes them;
// the progress line reads the atomics.
type workerStats struct {
	requests   atomic.Int64
	errors     atomic.Int64
	answers    atomic.Int64 // answered requests (any status)
	iterations int64
	status     map[int]int64
	netErrors  map[string]int64
	failures   map[string]int64
	hist       histogram
}

func newWorkerStats() *workerStats {
	return &workerStats{status: map[int]int64{}, netErrors: map[string]int64{}, failures: map[string]int64{}}
}

func (s *workerStats) record(resp *Response, err error, d time.Duration) {
	s.requests.Add(1)
	if err != nil {
		s.errors.Add(1)
		s.netErrors[classify(err)]++
		return
	}
	s.answers.Add(1)
	s.status[resp.Status]++
	if resp.Status >= 400 {
		s.errors.Add(1)
	}
	s.hist.record(d)
}

// classify names a connection error for the report.
func classify(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, errConnClosed):
		return "closed by server"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "closed mid-response"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other: " + err.Error()
}

// ProcStats describe the server process during a run.
type ProcStats struct {
	PID int `json:"pid"`
	// RSS is the resident set size in bytes at the start, the highest
	// seen (sampled every second) and at the end.
	RSSStart int64 `json:"rss_start_bytes"`
	RSSPeak  int64 `json:"rss_peak_bytes"`
	RSSEnd   int64 `json:"rss_end_bytes"`
	// CPU is the user and system CPU time the process used during the
	// timed part.
	CPU time.Duration `json:"cpu_ns"`
	// Written and WriteCalls are the bytes the process wrote and its
	// write calls during the timed part (wchar and syscw of
	// /proc/PID/io): to files (a database's journal and its copies back
	// into the database) and to sockets (the answers) alike; 0 where
	// /proc/PID/io cannot be read.
	Written    int64 `json:"written_bytes"`
	WriteCalls int64 `json:"write_calls"`
	// Exited is true when the process was gone at the end of the
	// measurement: the figures are those last read while it ran.
	Exited bool `json:"exited,omitempty"`
}

// add adds o's figures to p's, as a later run of the same process does
// (start kept, peak the highest, end the later one, CPU time and writes
// added up).
func (p *ProcStats) add(o *ProcStats) {
	p.RSSPeak = max(p.RSSPeak, o.RSSPeak)
	p.RSSEnd = o.RSSEnd
	p.CPU += o.CPU
	p.Written += o.Written
	p.WriteCalls += o.WriteCalls
	p.Exited = p.Exited || o.Exited
}

// Result is what a run measured.
type Result struct {
	Scenario    string        `json:"scenario"`
	Label       string        `json:"label,omitempty"`
	Connections int           `json:"connections"`
	Duration    time.Duration `json:"duration_ns"`
	// Requests are the requests answered (with any status) or failed at
	// the connection level during the timed part.
	Requests   int64   `json:"requests"`
	RPS        float64 `json:"requests_per_second"`
	Iterations int64   `json:"iterations"`
	IPS        float64 `json:"iterations_per_second"`
	// Latency quantiles of answered requests.
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	Max  time.Duration `json:"max_ns"`
	Mean time.Duration `json:"mean_ns"`
	// Status counts answers by HTTP status.
	Status map[int]int64 `json:"status"`
	// NetErrors counts connection-level failures by kind.
	NetErrors map[string]int64 `json:"net_errors,omitempty"`
	// Errors is answers with a status of 400 or more plus NetErrors.
	Errors int64 `json:"errors"`
	// Failures counts iterations that failed a check, by reason.
	Failures map[string]int64 `json:"failures,omitempty"`
	// Exhausted is true when the run ended early because every
	// connection ran out of work (pre-minted codes, say): Duration is
	// then shorter than the run asked for.
	Exhausted bool `json:"exhausted,omitempty"`
	// Interrupted is true when the run was canceled before its end.
	Interrupted bool `json:"interrupted,omitempty"`
	// Unanswered is the number of requests still waiting for their
	// answer two seconds after the end of the run (then given up), and
	// OldestUnanswered how long the oldest of them had waited at the
	// end; they are counted in Requests, Errors and NetErrors.
	Unanswered       int64         `json:"unanswered,omitempty"`
	OldestUnanswered time.Duration `json:"oldest_unanswered_ns,omitempty"`
	// Silence is the longest time the server answered no request during
	// the run (measured every 100 ms; at least 2 s, else 0), and
	// SilenceFrom when it began, from the start of the run.
	Silence     time.Duration `json:"silence_ns,omitempty"`
	SilenceFrom time.Duration `json:"silence_from_ns,omitempty"`
	// Server is the server's process, or the sum of its nodes' (RSS
	// too: the memory of all of them) with Options.PIDs.
	Server *ProcStats `json:"server,omitempty"`
	// Nodes are each node's process with Options.PIDs, in their order.
	Nodes []*ProcStats `json:"nodes,omitempty"`
	// ByTarget counts the requests sent to each target when there are
	// several (connection i goes to Targets[i % len(Targets)]).
	ByTarget map[string]int64 `json:"requests_by_target,omitempty"`

	hist *histogram // for Merge
}

// Merge combines the results of several runs of one scenario into one, as
// if they were one run as long as all of them: counts add up, rates are
// over the total duration, quantiles are those of all the requests. The
// server's RSS start is the first run's, its peak the highest and its end
// the last run's; CPU time adds up.
func Merge(rs ...*Result) *Result {
	if len(rs) == 0 {
		return nil
	}
	m := &Result{Scenario: rs[0].Scenario, Label: rs[0].Label, Connections: rs[0].Connections,
		Status: map[int]int64{}, NetErrors: map[string]int64{}, Failures: map[string]int64{}, hist: new(histogram)}
	// A result measured by wrk (Wrk.Run) has no histogram, only wrk's
	// quantiles: with one of those among rs, the merged quantiles are the
	// runs' quantiles weighted by their requests, and the max the highest.
	// That is not the quantile of all the requests (it is when the runs
	// have the same distribution, as rounds of one scenario should).
	var weighted int64
	var p50, p90, p99, mean float64
	for _, r := range rs {
		if r.hist == nil {
			m.hist = nil
		}
		weighted += r.Requests
		n := float64(r.Requests)
		p50, p90, p99, mean = p50+n*float64(r.P50), p90+n*float64(r.P90), p99+n*float64(r.P99), mean+n*float64(r.Mean)
		m.Max = max(m.Max, r.Max)
	}
	for _, r := range rs {
		m.Duration += r.Duration
		m.Requests += r.Requests
		m.Iterations += r.Iterations
		m.Errors += r.Errors
		m.Exhausted = m.Exhausted || r.Exhausted
		m.Interrupted = m.Interrupted || r.Interrupted
		m.Unanswered += r.Unanswered
		m.OldestUnanswered = max(m.OldestUnanswered, r.OldestUnanswered)
		if r.Silence > m.Silence {
			m.Silence, m.SilenceFrom = r.Silence, m.Duration-r.Duration+r.SilenceFrom
		}
		for k, v := range r.ByTarget {
			if m.ByTarget == nil {
				m.ByTarget = map[string]int64{}
			}
			m.ByTarget[k] += v
		}
		for k, v := range r.Status {
			m.Status[k] += v
		}
		for k, v := range r.NetErrors {
			m.NetErrors[k] += v
		}
		for k, v := range r.Failures {
			m.Failures[k] += v
		}
		if m.hist != nil {
			m.hist.merge(r.hist)
		}
		if s := r.Server; s != nil {
			if m.Server == nil {
				m.Server = &ProcStats{PID: s.PID, RSSStart: s.RSSStart}
			}
			m.Server.add(s)
		}
		for i, s := range r.Nodes {
			if i == len(m.Nodes) {
				m.Nodes = append(m.Nodes, &ProcStats{PID: s.PID, RSSStart: s.RSSStart})
			}
			m.Nodes[i].add(s)
		}
	}
	m.summarize()
	if m.hist == nil && weighted > 0 {
		w := float64(weighted)
		m.P50, m.P90, m.P99 = time.Duration(p50/w), time.Duration(p90/w), time.Duration(p99/w)
		m.Mean = time.Duration(mean / w)
	}
	return m
}

// summarize sets the rates from the counts and, with a histogram, the
// quantiles.
func (r *Result) summarize() {
	secs := r.Duration.Seconds()
	if secs > 0 {
		r.RPS = float64(r.Requests) / secs
		r.IPS = float64(r.Iterations) / secs
	}
	h := r.hist
	if h == nil {
		return
	}
	r.P50, r.P90, r.P99 = h.quantile(0.50), h.quantile(0.90), h.quantile(0.99)
	r.Max, r.Mean = time.Duration(h.max)*time.Microsecond, h.mean()
}

// ServerErrors is the number of 5xx answers.
func (r *Result) ServerErrors() int64 {
	var n int64
	for s, c := range r.Status {
		if s >= 500 {
			n += c
		}
	}
	return n
}

// StatusSummary is the answers by status and the connection errors, e.g.
// "200: 1234, 400: 2, closed by server: 1".
func (r *Result) StatusSummary() string {
	var parts []string
	for _, s := range slices.Sorted(maps.Keys(r.Status)) {
		parts = append(parts, fmt.Sprintf("%d: %d", s, r.Status[s]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.NetErrors)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, r.NetErrors[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// defaults fills in the connections, duration and timeout left zero, and
// bounds the duration by MaxDuration.
func (o *Options) defaults() {
	if o.Connections <= 0 {
		o.Connections = 64
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	o.Duration = min(o.Duration, MaxDuration)
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
}

// Run prepares a worker per connection, then runs them for opts.Duration
// (or until every worker is exhausted) and returns the measurements. It
// fails if the preparation fails; failures during the timed part are
// counted, not returned. Canceling ctx ends the run early.
func Run(ctx context.Context, scn Scenario, opts Options) (*Result, error) {
	if len(opts.Targets) == 0 {
		return nil, errors.New("load: no target")
	}
	opts.defaults()
	if opts.SetupConcurrency <= 0 {
		opts.SetupConcurrency = 8
	}
	var stopped atomic.Bool
	clients := make([]*Client, opts.Connections)
	for i := range clients {
		addr := opts.Targets[i%len(opts.Targets)]
		host := opts.Host
		if host == "" {
			host = addr
		}
		clients[i] = &Client{conn: newConn(addr, host, opts.Timeout), st: newWorkerStats(), stopped: &stopped, ctx: ctx}
	}
	defer func() {
		for _, c := range clients {
			c.conn.close()
		}
	}()

	// Prepare the workers, a few at a time.
	workers := make([]Worker, len(clients))
	sem := make(chan struct{}, opts.SetupConcurrency)
	var setupErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			mu.Lock()
			failed := setupErr != nil
			mu.Unlock()
			if failed || ctx.Err() != nil {
				return
			}
			w, err := scn.Worker(i, c)
			mu.Lock()
			if err != nil && setupErr == nil {
				setupErr = fmt.Errorf("load: preparing connection %d: %w", i, err)
			}
			mu.Unlock()
			workers[i] = w
		})
	}
	if sr, ok := scn.(SetupReporter); ok && opts.Progress != nil {
		ready := make(chan struct{})
		go func() { wg.Wait(); close(ready) }()
		t := time.NewTicker(time.Second)
	wait:
		for {
			select {
			case <-ready:
				break wait
			case <-t.C:
				if st := sr.SetupStatus(); st != "" {
					opts.Progress.Update(label(opts.Label) + " preparing: " + st)
				}
			}
		}
		t.Stop()
	}
	wg.Wait()
	if setupErr != nil {
		return nil, setupErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{Scenario: scn.Name(), Label: opts.Label, Connections: opts.Connections}
	watch := WatchProcs(opts.pids())

	// The timed part.
	opts.Progress.Start()
	start := time.Now()
	deadline := start.Add(opts.Duration)
	var running atomic.Int64
	running.Store(int64(len(clients)))
	allDone := make(chan struct{})
	for i, c := range clients {
		c.counting = true
		wg.Go(func() {
			defer func() {
				if running.Add(-1) == 0 {
					close(allDone)
				}
			}()
			for !stopped.Load() {
				err := workers[i].Iterate(c)
				switch {
				case err == nil:
					// Every request of the iteration was answered before
					// the end (one answered later returns ErrStopped).
					c.st.iterations++
				case errors.Is(err, ErrStopped), errors.Is(err, ErrExhausted):
					return
				default:
					c.st.failures[failureReason(err)]++
					var ne *net.OpError
					if errors.As(err, &ne) && ne.Op == "dial" {
						time.Sleep(20 * time.Millisecond) // do not spin on a server that is down
					}
				}
			}
		})
	}

	// Every 100 ms: whether the server is still there, and whether it
	// still answers; every second, the progress line.
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	timer := time.NewTimer(opts.Duration)
	defer timer.Stop()
	var end time.Time
	var aliveErr error
	lastAnswers, lastAnswer, lastProgress := int64(0), start, start
	silence := func(now time.Time) {
		if d := now.Sub(lastAnswer); d >= 2*time.Second && d > res.Silence {
			res.Silence, res.SilenceFrom = d, lastAnswer.Sub(start)
		}
	}
loop:
	for {
		select {
		case <-timer.C:
			end = time.Now()
			break loop
		case <-allDone:
			end = time.Now()
			res.Exhausted = true
			break loop
		case <-ctx.Done():
			end = time.Now()
			res.Interrupted = true
			break loop
		case now := <-ticker.C:
			if opts.Alive != nil {
				if aliveErr = opts.Alive(); aliveErr != nil {
					end = now
					break loop
				}
			}
			if n := answers(clients); n != lastAnswers {
				silence(now)
				lastAnswers, lastAnswer = n, now
			}
			if now.Sub(lastProgress) >= time.Second {
				lastProgress = now
				opts.Progress.Update(progressLine(opts, clients, now.Sub(start), now.Sub(lastAnswer)))
			}
		}
	}
	stopped.Store(true)
	silence(end)
	var server *ProcStats
	var nodes []*ProcStats
	if watch != nil {
		server, nodes = watch.Stop()
	}
	// Let the requests in flight finish (their answers do not count), so
	// the server does not see clients vanish mid-request; then cut those
	// still waiting, which are reported: a server that stopped answering
	// (frozen, or overloaded beyond the timeout) must not look error-free.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	grace := 2 * time.Second
	if aliveErr != nil {
		grace = 0 // the server is gone: nothing will be answered
	}
	select {
	case <-finished:
	case <-time.After(grace):
		var oldest int64
		for _, c := range clients {
			if t := c.inflight.Load(); t != 0 && t < end.UnixNano() {
				res.Unanswered++
				if oldest == 0 || t < oldest {
					oldest = t
				}
			}
			c.conn.abort()
		}
		if oldest != 0 {
			res.OldestUnanswered = end.Sub(time.Unix(0, oldest))
		}
		<-finished
	}
	if aliveErr != nil {
		opts.Progress.Final(progressLine(opts, clients, end.Sub(start), 0))
		return nil, aliveErr
	}

	res.Duration = end.Sub(start)
	if end.After(deadline) {
		res.Duration = opts.Duration
	}
	h := new(histogram)
	res.hist = h
	res.Status, res.NetErrors, res.Failures = map[int]int64{}, map[string]int64{}, map[string]int64{}
	if len(opts.Targets) > 1 {
		res.ByTarget = map[string]int64{}
	}
	for i, c := range clients {
		st := c.st
		res.Requests += st.requests.Load()
		res.Errors += st.errors.Load()
		res.Iterations += st.iterations
		if res.ByTarget != nil {
			res.ByTarget[opts.Targets[i%len(opts.Targets)]] += st.requests.Load()
		}
		for k, v := range st.status {
			res.Status[k] += v
		}
		for k, v := range st.netErrors {
			res.NetErrors[k] += v
		}
		for k, v := range st.failures {
			res.Failures[k] += v
		}
		h.merge(&st.hist)
	}
	if res.Unanswered > 0 {
		// Errors, but not requests: a request never answered is no
		// throughput, nor a share of the server's CPU per request.
		res.Errors += res.Unanswered
		res.NetErrors["unanswered at the end"] += res.Unanswered
	}
	res.Server, res.Nodes = server, nodes
	res.summarize()
	opts.Progress.Final(progressLine(opts, clients, res.Duration, 0))
	return res, nil
}

// pids are the processes whose memory and CPU a run reports.
func (o *Options) pids() []int {
	if len(o.PIDs) > 0 {
		return o.PIDs
	}
	if o.PID > 0 {
		return []int{o.PID}
	}
	return nil
}

// answers is the number of answers the clients got so far.
func answers(clients []*Client) int64 {
	var n int64
	for _, c := range clients {
		n += c.st.answers.Load()
	}
	return n
}

// failureReason is the first line of an error, cut short, so that failures
// group by kind.
func failureReason(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}

// label is a progress line's label, its first word padded so that
// "oauthd 1/2" and "bare 1/2" line up.
func label(l string) string {
	name, rest, ok := strings.Cut(l, " ")
	if !ok {
		return fmt.Sprintf("%-6s", l)
	}
	return fmt.Sprintf("%-6s %s", name, rest)
}

// progressLine is the progress of a run elapsed into it; quiet is how
// long the server has answered nothing (said from 2 s on).
func progressLine(opts Options, clients []*Client, elapsed, quiet time.Duration) string {
	var n, errs int64
	for _, c := range clients {
		n += c.st.requests.Load()
		errs += c.st.errors.Load()
	}
	line := fmt.Sprintf("%s %4.0fs/%.0fs  %9d req  %8.0f req/s  %d errors", label(opts.Label),
		elapsed.Seconds(), opts.Duration.Seconds(), n, float64(n)/max(elapsed.Seconds(), 1e-3), errs)
	for _, pid := range opts.pids() {
		if rss := RSS(pid); rss > 0 {
			line += fmt.Sprintf("  server RSS %.1f MB", float64(rss)/1e6)
		}
	}
	if quiet >= 2*time.Second {
		line += fmt.Sprintf("  NO ANSWER for %.0f s", quiet.Seconds())
	}
	return strings.TrimSpace(line)
}

// ProcWatch measures processes on this machine during a timed part: their
// RSS at the start, every second (for the peak) and at the end, and the
// CPU time they used in between. Run and Wrk.Run report the server with
// it. A process that exits keeps the figures last read while it ran.
type ProcWatch struct {
	procs []*procWatch
	stop  chan struct{}
	done  chan struct{}
}

type procWatch struct {
	pid  int
	cpu0 time.Duration
	io0  IOStats
	mu   sync.Mutex
	st   ProcStats
	cpu  time.Duration // the last CPU time read
	io   IOStats       // the last write counters read
	gone bool
}

// WatchProc starts measuring process pid; Stop ends it.
func WatchProc(pid int) *ProcWatch { return WatchProcs([]int{pid}) }

// WatchProcs starts measuring the processes pids (nil for none: then it
// returns nil); Stop ends it.
func WatchProcs(pids []int) *ProcWatch {
	if len(pids) == 0 {
		return nil
	}
	w := &ProcWatch{stop: make(chan struct{}), done: make(chan struct{})}
	for _, pid := range pids {
		p := &procWatch{pid: pid}
		p.st = ProcStats{PID: pid, RSSStart: RSS(pid)}
		p.st.RSSPeak, p.st.RSSEnd = p.st.RSSStart, p.st.RSSStart
		p.cpu0, p.io0 = CPUTime(pid), ReadIO(pid)
		p.cpu, p.io = p.cpu0, p.io0
		w.procs = append(w.procs, p)
	}
	go func() {
		defer close(w.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				for _, p := range w.procs {
					p.sample()
				}
			}
		}
	}()
	return w
}

// sample reads the process's figures, unless it is gone.
func (p *procWatch) sample() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone {
		return
	}
	// RSS, CPU and I/O are read from three files: read the RSS last, and
	// keep the figures only if the process was still there then.
	cpu, iost := CPUTime(p.pid), ReadIO(p.pid)
	rss := RSS(p.pid)
	if rss == 0 || !Running(p.pid) {
		p.gone = true
		return
	}
	p.st.RSSPeak = max(p.st.RSSPeak, rss)
	p.st.RSSEnd = rss
	p.cpu = max(p.cpu, cpu)
	if iost.ok {
		p.io = iost
	}
}

// Stop ends the measurement and returns it: the sum of the processes
// (their RSS too), and each one's when there are several; call it once.
func (w *ProcWatch) Stop() (*ProcStats, []*ProcStats) {
	close(w.stop)
	<-w.done
	var sum *ProcStats
	var each []*ProcStats
	for _, p := range w.procs {
		p.sample()
		st := p.st
		st.CPU = max(0, p.cpu-p.cpu0)
		st.Exited = p.gone
		if p.io.ok && p.io0.ok {
			st.Written, st.WriteCalls = max(0, p.io.Written-p.io0.Written), max(0, p.io.WriteCalls-p.io0.WriteCalls)
		}
		each = append(each, &st)
		if sum == nil {
			s := st
			sum = &s
			continue
		}
		sum.RSSStart += st.RSSStart
		sum.RSSPeak += st.RSSPeak
		sum.RSSEnd += st.RSSEnd
		sum.CPU += st.CPU
		sum.Written += st.Written
		sum.WriteCalls += st.WriteCalls
		sum.Exited = sum.Exited || st.Exited
	}
	if len(each) == 1 {
		each = nil
	}
	return sum, each
}

// Running reports whether process pid exists and has not ended (a zombie,
// ended but not yet reaped by its parent, counts as ended).
func Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return false
		}
		// No /proc (not Linux): ask the kernel.
		return syscall.Kill(pid, 0) == nil || errors.Is(syscall.Kill(pid, 0), syscall.EPERM)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return true
	}
	f := strings.Fields(s[i+1:])
	return len(f) == 0 || (f[0] != "Z" && f[0] != "X")
}

// IOStats are a process's write counters so far (see ReadIO).
type IOStats struct {
	Written, WriteCalls int64
	ok                  bool
}

// ReadIO returns the bytes process pid has written and its write calls
// (wchar and syscw of /proc/PID/io), or zero values when the file cannot be
// read (another user's process, or not Linux).
func ReadIO(pid int) IOStats {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return IOStats{}
	}
	var st IOStats
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "wchar:"); ok {
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &st.Written)
			st.ok = err == nil
		} else if v, ok := strings.CutPrefix(l, "syscw:"); ok {
			fmt.Sscanf(strings.TrimSpace(v), "%d", &st.WriteCalls)
		}
	}
	return st
}

// RSS returns the resident set size of process pid in bytes (VmRSS in
// /proc/PID/status), or 0 if it cannot be read.
func RSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
			return kb * 1024
		}
	}
	return 0
}

// CPUTime returns the user plus system CPU time process pid has used
// (from /proc/PID/stat), or 0 if it cannot be read.
func CPUTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name is in parentheses and may hold spaces; the fields
	// after it start with the state (field 3); utime and stime are 14, 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	var ut, st int64
	fmt.Sscanf(f[11], "%d", &ut)
	fmt.Sscanf(f[12], "%d", &st)
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / ticks
}
