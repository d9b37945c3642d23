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
	// Progress receives a progress line every second (rewritten with \r);
	// nil for none.
	Progress io.Writer
	// Label prefixes the progress line.
	Label string
	// PID is a process on this machine whose memory and CPU time are
	// reported (the server); 0 for none.
	PID int
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

// ErrExhausted is returned by Worker.Iterate when the connection has no
// more work (pre-minted codes ran out, say); the run ends when every
// connection is exhausted or the time is up.
var ErrExhausted = errors.New("load: no more work")

// ErrStopped is returned by Client.Do once the run is over.
var ErrStopped = errors.New("load: the run is over")

// Client sends requests on one connection and records them.
type Client struct {
	conn     *conn
	st       *workerStats
	stopped  *atomic.Bool
	counting bool
	trace    *Trace // when recording
}

// Do sends r and returns the response, valid until the next Do. A
// response is returned whatever its status; err is a connection failure
// (the client dials again on the next Do) or ErrStopped.
func (c *Client) Do(r *Request) (*Response, error) {
	if c.stopped.Load() {
		return nil, ErrStopped
	}
	t0 := time.Now()
	resp, err := c.conn.do(r)
	d := time.Since(t0)
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
	// connection ran out of work.
	Exhausted bool       `json:"exhausted,omitempty"`
	Server    *ProcStats `json:"server,omitempty"`

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
			m.Server.RSSPeak = max(m.Server.RSSPeak, s.RSSPeak)
			m.Server.RSSEnd = s.RSSEnd
			m.Server.CPU += s.CPU
			m.Server.Written += s.Written
			m.Server.WriteCalls += s.WriteCalls
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
		clients[i] = &Client{conn: newConn(addr, host, opts.Timeout), st: newWorkerStats(), stopped: &stopped}
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
	wg.Wait()
	if setupErr != nil {
		return nil, setupErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{Scenario: scn.Name(), Label: opts.Label, Connections: opts.Connections}
	var watch *ProcWatch
	if opts.PID > 0 {
		watch = WatchProc(opts.PID)
	}

	// The timed part.
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
				if stopped.Load() {
					return
				}
				switch {
				case err == nil:
					c.st.iterations++
				case errors.Is(err, ErrExhausted):
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

	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	timer := time.NewTimer(opts.Duration)
	defer timer.Stop()
	var end time.Time
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
			break loop
		case now := <-ticker.C:
			if opts.Progress != nil {
				progress(opts, res, clients, now.Sub(start))
			}
		}
	}
	stopped.Store(true)
	if watch != nil {
		res.Server = watch.Stop()
	}
	// Let the requests in flight finish (their answers do not count), so
	// the server does not see clients vanish mid-request; then cut those
	// still waiting.
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Second):
		for _, c := range clients {
			c.conn.abort()
		}
		<-finished
	}
	if opts.Progress != nil {
		progress(opts, res, clients, end.Sub(start))
		fmt.Fprintln(opts.Progress)
	}

	res.Duration = end.Sub(start)
	if end.After(deadline) {
		res.Duration = opts.Duration
	}
	h := new(histogram)
	res.hist = h
	res.Status, res.NetErrors, res.Failures = map[int]int64{}, map[string]int64{}, map[string]int64{}
	for _, c := range clients {
		st := c.st
		res.Requests += st.requests.Load()
		res.Errors += st.errors.Load()
		res.Iterations += st.iterations
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
	res.summarize()
	return res, nil
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

func progress(opts Options, res *Result, clients []*Client, elapsed time.Duration) {
	var n, errs int64
	for _, c := range clients {
		n += c.st.requests.Load()
		errs += c.st.errors.Load()
	}
	line := fmt.Sprintf("%s %4.0fs/%.0fs  %9d req  %8.0f req/s  %d errors", opts.Label,
		elapsed.Seconds(), opts.Duration.Seconds(), n, float64(n)/max(elapsed.Seconds(), 1e-3), errs)
	if opts.PID > 0 {
		line += fmt.Sprintf("  server RSS %.1f MB", float64(RSS(opts.PID))/1e6)
	}
	fmt.Fprintf(opts.Progress, "\r%-100s", strings.TrimSpace(line))
}

// ProcWatch measures a process on this machine during a timed part: its
// RSS at the start, every second (for the peak) and at the end, and the
// CPU time it used in between. Run and Wrk.Run report the server with it.
type ProcWatch struct {
	pid  int
	cpu0 time.Duration
	io0  IOStats
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	st   ProcStats
}

// WatchProc starts measuring process pid; Stop ends it.
func WatchProc(pid int) *ProcWatch {
	w := &ProcWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	w.st = ProcStats{PID: pid, RSSStart: RSS(pid)}
	w.st.RSSPeak = w.st.RSSStart
	w.cpu0, w.io0 = CPUTime(pid), ReadIO(pid)
	go func() {
		defer close(w.done)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-t.C:
				rss := RSS(pid)
				w.mu.Lock()
				w.st.RSSPeak = max(w.st.RSSPeak, rss)
				w.mu.Unlock()
			}
		}
	}()
	return w
}

// Stop ends the measurement and returns it; call it once.
func (w *ProcWatch) Stop() *ProcStats {
	cpu, io := CPUTime(w.pid)-w.cpu0, ReadIO(w.pid)
	rss := RSS(w.pid)
	close(w.stop)
	<-w.done
	st := w.st
	st.CPU, st.RSSEnd = cpu, rss
	st.RSSPeak = max(st.RSSPeak, rss)
	if io.ok && w.io0.ok {
		st.Written, st.WriteCalls = io.Written-w.io0.Written, io.WriteCalls-w.io0.WriteCalls
	}
	return &st
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
