package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// oneRequest is a scenario sending the same request and checking nothing
// but that an answer came.
type oneRequest struct {
	req   *Request
	check func(*Response) error
}

func (s *oneRequest) Name() string { return "one" }
func (s *oneRequest) Worker(int, *Client) (Worker, error) {
	return s, nil
}
func (s *oneRequest) Iterate(c *Client) error {
	resp, err := c.Do(s.req)
	if err != nil {
		return err
	}
	if s.check != nil {
		return s.check(resp)
	}
	return nil
}

func serve(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func run(t *testing.T, addr string, scn Scenario, opts Options) *Result {
	t.Helper()
	opts.Targets = []string{addr}
	if opts.Connections == 0 {
		opts.Connections = 4
	}
	if opts.Duration == 0 {
		opts.Duration = 300 * time.Millisecond
	}
	res, err := Run(context.Background(), scn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCountsByStatus(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch n.Add(1) % 4 {
		case 0:
			w.WriteHeader(500)
			io.WriteString(w, `{"error":"server_error"}`)
		case 1:
			w.WriteHeader(400)
		default:
			io.WriteString(w, `{"ok":true}`)
		}
	})
	res := run(t, addr, &oneRequest{req: NewRequest("POST", "/x", "a=b")}, Options{})
	served := n.Load()
	if res.Requests == 0 || res.Requests > served {
		t.Fatalf("requests %d; the server answered %d", res.Requests, served)
	}
	var sum int64
	for _, c := range res.Status {
		sum += c
	}
	if sum != res.Requests {
		t.Errorf("status counts sum to %d; requests %d", sum, res.Requests)
	}
	if res.Status[500] == 0 || res.Status[400] == 0 || res.Status[200] == 0 {
		t.Errorf("status %v; want 200, 400 and 500", res.Status)
	}
	if got, want := res.Errors, res.Status[400]+res.Status[500]; got != want {
		t.Errorf("errors %d; want %d (400s and 500s)", got, want)
	}
	if got, want := res.ServerErrors(), res.Status[500]; got != want {
		t.Errorf("server errors %d; want %d", got, want)
	}
	if len(res.NetErrors) != 0 {
		t.Errorf("net errors %v; want none", res.NetErrors)
	}
	if res.RPS <= 0 || res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("rps %v p50 %v p99 %v max %v", res.RPS, res.P50, res.P99, res.Max)
	}
	if !strings.Contains(res.StatusSummary(), "500: ") {
		t.Errorf("summary %q", res.StatusSummary())
	}
}

func TestStopsAtDuration(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(30 * time.Millisecond)
	})
	t0 := time.Now()
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 400 * time.Millisecond})
	took := time.Since(t0)
	if took > 2*time.Second {
		t.Errorf("the run took %v; want about 400ms", took)
	}
	if res.Duration < 390*time.Millisecond || res.Duration > 450*time.Millisecond {
		t.Errorf("duration %v; want 400ms", res.Duration)
	}
	// 4 connections, 30 ms a request: at most 14 each in 400 ms (fewer
	// on a busy machine).
	if res.Requests < 1 || res.Requests > 4*14 {
		t.Errorf("requests %d; want some, at most 56", res.Requests)
	}
}

// A server that never answers cannot hold the run past its duration, and
// the requests cut short are reported as unanswered, and counted as errors.
func TestHungServer(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
	})
	defer close(release)
	t0 := time.Now()
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 200 * time.Millisecond})
	if took := time.Since(t0); took > 4*time.Second { // 200 ms, then at most 2 s of grace
		t.Errorf("the run took %v", took)
	}
	// Unanswered requests are errors, not throughput: no request was
	// answered, so none counts in req/s.
	if res.Requests != 0 || res.RPS != 0 || res.Errors != 4 || res.Unanswered != 4 || res.Iterations != 0 || len(res.Status) != 0 {
		t.Errorf("requests %d (%.0f/s) errors %d unanswered %d iterations %d answers %v; want 0 requests, 4 unanswered counted as errors", res.Requests, res.RPS, res.Errors, res.Unanswered, res.Iterations, res.Status)
	}
}

// A server that drops connections: the drops are counted as connection
// errors and the client dials again.
func TestServerClosesConnections(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%3 == 0 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				c.Close()
			}
			return
		}
		io.WriteString(w, "ok")
	})
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{})
	if res.Status[200] == 0 {
		t.Fatalf("no 200 answers: %v %v", res.Status, res.NetErrors)
	}
	if res.NetErrors["closed by server"] == 0 {
		t.Errorf("net errors %v; want closed by server", res.NetErrors)
	}
	if got, want := res.Errors, res.NetErrors["closed by server"]; got != want {
		t.Errorf("errors %d; want %d", got, want)
	}
	if got := res.Status[200] + res.NetErrors["closed by server"]; got != res.Requests {
		t.Errorf("200s + drops = %d; requests %d", got, res.Requests)
	}
}

// Connection: close answers and chunked bodies are read correctly and are
// not errors.
func TestConnectionCloseAndChunked(t *testing.T) {
	var n atomic.Int64
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		switch n.Add(1) % 3 {
		case 0:
			w.Header().Set("Connection", "close")
			io.WriteString(w, "hello world")
		case 1:
			io.WriteString(w, "hello ")
			http.NewResponseController(w).Flush() // chunked
			io.WriteString(w, "world")
		default:
			io.WriteString(w, "hello world")
		}
	})
	check := func(r *Response) error {
		if string(r.Body) != "hello world" {
			return fmt.Errorf("body %q", r.Body)
		}
		return nil
	}
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", ""), check: check}, Options{})
	if res.Errors != 0 || len(res.Failures) != 0 {
		t.Errorf("errors %d failures %v net %v", res.Errors, res.Failures, res.NetErrors)
	}
	// A request under way when the run ends is answered and counted
	// without finishing its iteration: at most one per connection.
	if res.Iterations < 30 || res.Requests < res.Iterations || res.Requests-res.Iterations > int64(res.Connections) {
		t.Errorf("iterations %d requests %d connections %d", res.Iterations, res.Requests, res.Connections)
	}
}

// A server that is down: connection refused is counted and the run still
// ends on time.
func TestServerDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 200 * time.Millisecond})
	if res.NetErrors["connection refused"] == 0 || res.Errors != res.Requests {
		t.Errorf("net errors %v errors %d requests %d", res.NetErrors, res.Errors, res.Requests)
	}
}

type limited struct {
	left atomic.Int64
	req  *Request
}

func (s *limited) Name() string                        { return "limited" }
func (s *limited) Worker(int, *Client) (Worker, error) { return s, nil }
func (s *limited) Iterate(c *Client) error {
	if s.left.Add(-1) < 0 {
		return ErrExhausted
	}
	_, err := c.Do(s.req)
	return err
}

func TestExhausted(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	s := &limited{req: NewRequest("GET", "/", "")}
	s.left.Store(50)
	res := run(t, addr, s, Options{Duration: 10 * time.Second})
	if !res.Exhausted || res.Iterations != 50 || res.Requests != 50 {
		t.Errorf("exhausted %v iterations %d requests %d; want true, 50, 50", res.Exhausted, res.Iterations, res.Requests)
	}
	if res.Duration > 5*time.Second {
		t.Errorf("duration %v", res.Duration)
	}
}

type failing struct{}

func (failing) Name() string { return "failing" }
func (failing) Worker(i int, c *Client) (Worker, error) {
	return nil, errors.New("no credentials")
}

func TestWorkerSetupFails(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	_, err := Run(context.Background(), failing{}, Options{Targets: []string{addr}, Connections: 3, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "no credentials") {
		t.Errorf("err %v", err)
	}
}

// On a terminal the progress line is rewritten in place, cut to the
// terminal's width, and ended once.
func TestProgressLineTerminal(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	var out bytes.Buffer
	p := &Progress{W: &out, Width: func() int { return 60 }}
	run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 1100 * time.Millisecond, Progress: p, Label: "test", PID: os.Getpid()})
	s := out.String()
	if !strings.HasPrefix(s, "\rtest ") || !strings.Contains(s, "req/s") || !strings.HasSuffix(s, "\n") || strings.Count(s, "\n") != 1 {
		t.Errorf("progress %q", s)
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\r")[1:] {
		if n := len([]rune(l)); n != 59 {
			t.Errorf("line of %d columns on a terminal of 60: %q", n, l)
		}
	}
}

// Anywhere else it is a line now and then and one at the end, each ended
// with a newline, with no carriage return and no padding, and the last
// one once.
func TestProgressLineLog(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	var out bytes.Buffer
	p := &Progress{W: &out, Interval: time.Second}
	run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 2500 * time.Millisecond, Progress: p, Label: "test", PID: os.Getpid()})
	s := out.String()
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	if strings.Contains(s, "\r") || !strings.HasSuffix(s, "\n") || len(lines) < 2 || !strings.Contains(s, "RSS") {
		t.Fatalf("progress %q", s)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, "test ") || strings.HasSuffix(l, " ") {
			t.Errorf("line %q", l)
		}
		if i > 0 && l == lines[i-1] {
			t.Errorf("line %q twice", l)
		}
	}
	if !strings.Contains(lines[len(lines)-1], "s/2s") {
		t.Errorf("last line %q; want the end of the run", lines[len(lines)-1])
	}
}

// Every request counted was answered before the end, and so was every
// iteration of one request: the two counts agree.
func TestRequestsMatchIterations(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) { time.Sleep(time.Millisecond) })
	for range 3 {
		res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Connections: 16})
		if res.Requests == 0 || res.Requests != res.Iterations || res.Unanswered != 0 {
			t.Errorf("%d requests, %d iterations, %d unanswered; want as many iterations as requests", res.Requests, res.Iterations, res.Unanswered)
		}
	}
}

// A server that exits during the run ends it at once with Alive's error.
func TestServerGone(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	var calls atomic.Int64
	gone := errors.New("the server (pid 1) exited during the run: signal: killed")
	t0 := time.Now()
	res, err := Run(context.Background(), &oneRequest{req: NewRequest("GET", "/", "")}, Options{Targets: []string{addr}, Connections: 2,
		Duration: time.Minute, Alive: func() error {
			if calls.Add(1) > 3 {
				return gone
			}
			return nil
		}})
	if err != gone || res != nil {
		t.Errorf("Run: %v, %v; want %v", res, err, gone)
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("the run went on for %v after the server was gone", d)
	}
}

// A server that stops answering (SIGSTOP, a deadlock) is not error-free:
// the requests still waiting at the end are reported, counted as errors,
// and so is the time it answered nothing.
func TestFrozenServer(t *testing.T) {
	freeze := make(chan struct{})
	var n atomic.Int64
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) > 20 {
			<-freeze
		}
	})
	defer close(freeze)
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Connections: 3, Duration: 2500 * time.Millisecond})
	if res.Unanswered != 3 || res.NetErrors["unanswered at the end"] != 3 || res.Errors < 3 || res.OldestUnanswered <= 0 {
		t.Errorf("unanswered %d (oldest %v), errors %d (%s); want 3 unanswered, counted as errors", res.Unanswered, res.OldestUnanswered, res.Errors, res.StatusSummary())
	}
	if res.Silence < 2*time.Second {
		t.Errorf("silence %v; want the time the server answered nothing", res.Silence)
	}
}

// A process that exits while it is watched keeps the figures last read:
// no negative CPU time, no RSS of 0.
func TestWatchExited(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	w := WatchProc(cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	st, nodes := w.Stop()
	if !st.Exited || st.CPU < 0 || st.RSSEnd <= 0 || st.Written < 0 || nodes != nil {
		t.Errorf("stats of an exited process: %+v", st)
	}
	if Running(cmd.Process.Pid) {
		t.Error("Running: true for an exited process")
	}
	if !Running(os.Getpid()) {
		t.Error("Running: false for this process")
	}
}

func TestProcStats(t *testing.T) {
	if RSS(os.Getpid()) <= 0 {
		t.Error("RSS of this process is not positive")
	}
	if RSS(-1) != 0 || CPUTime(-1) != 0 {
		t.Error("stats of no process")
	}
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	if CPUTime(os.Getpid()) <= 0 {
		t.Error("CPU time of this process is not positive")
	}
	if st := ReadIO(-1); st.Written != 0 || st.WriteCalls != 0 {
		t.Errorf("ReadIO of no process = %+v", st)
	}
	before := ReadIO(os.Getpid())
	if !before.ok {
		t.Skip("no /proc/self/io here")
	}
	f, err := os.Create(t.TempDir() + "/w")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for range 3 {
		if _, err := f.Write(make([]byte, 10_000)); err != nil {
			t.Fatal(err)
		}
	}
	after := ReadIO(os.Getpid())
	if d := after.Written - before.Written; d < 30_000 {
		t.Errorf("ReadIO counted %d bytes written for 30,000", d)
	}
	if d := after.WriteCalls - before.WriteCalls; d < 3 {
		t.Errorf("ReadIO counted %d write calls for 3", d)
	}
}

// A recorded trace replayed against the bare handler gets the same
// answers, byte for byte.
func TestRecordReplayBare(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Thing", "1")
		if r.URL.Path == "/a" {
			w.WriteHeader(201)
			fmt.Fprintf(w, `{"got":%q}`, body)
			return
		}
		http.Redirect(w, r, "/a", http.StatusSeeOther)
	})
	scn := &twoSteps{}
	tr, err := Record(context.Background(), scn, Options{Targets: []string{addr}})
	if err != nil {
		t.Fatal(err)
	}
	if len(tr) != 2 || tr[0].Status != 303 || tr[1].Status != 201 || string(tr[1].RespBody) != `{"got":"x=1"}` {
		t.Fatalf("trace %+v", tr)
	}
	bare := httptest.NewServer(BareHandler(tr))
	defer bare.Close()
	res := run(t, strings.TrimPrefix(bare.URL, "http://"), Replay("two", tr), Options{})
	// The last iteration of a connection may be cut between its steps.
	if d := res.Status[303] - res.Status[201]; len(res.Failures) != 0 || res.Status[303] == 0 || d < 0 || d > 4 {
		t.Errorf("replay: failures %v status %v", res.Failures, res.Status)
	}
	// The bare answer is the recorded one.
	req, _ := http.NewRequest("POST", bare.URL+"/a", strings.NewReader("x=1"))
	req.Header.Set(StepHeader, "1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || string(b) != `{"got":"x=1"}` || resp.Header.Get("X-Thing") != "1" {
		t.Errorf("bare answer %d %q %v", resp.StatusCode, b, resp.Header)
	}
}

type twoSteps struct{}

func (twoSteps) Name() string                        { return "two" }
func (twoSteps) Worker(int, *Client) (Worker, error) { return twoSteps{}, nil }
func (twoSteps) Iterate(c *Client) error {
	resp, err := c.Do(NewRequest("GET", "/", ""))
	if err != nil {
		return err
	}
	if resp.Status != 303 || resp.Get("location") != "/a" {
		return fmt.Errorf("step 1: %d %q", resp.Status, resp.Get("location"))
	}
	resp, err = c.Do(NewRequest("POST", "/a", "x=1"))
	if err != nil {
		return err
	}
	if resp.Status != 201 {
		return fmt.Errorf("step 2: %d", resp.Status)
	}
	return nil
}

func TestCookies(t *testing.T) {
	j := Cookies{}
	resp := &Response{Header: []HeaderField{
		{[]byte("Set-Cookie"), []byte("a=1; Path=/; HttpOnly")},
		{[]byte("set-cookie"), []byte("b=2; Path=/")},
		{[]byte("Content-Type"), []byte("text/html")},
	}}
	j.Update(resp)
	if got := j.Header(); got != "a=1; b=2" {
		t.Errorf("cookie header %q", got)
	}
	j.Update(&Response{Header: []HeaderField{{[]byte("Set-Cookie"), []byte("a=; Max-Age=0")}}})
	if got := j.Header(); got != "b=2" {
		t.Errorf("after expiry %q", got)
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, 1000 * time.Millisecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d > 0.04 || d < -0.04 {
			t.Errorf("quantile(%v) = %v; want %v ± 4%%", c.q, got, c.want)
		}
	}
	for us := int64(0); us < 1<<20; us = us*2 + 1 {
		if v := valueOf(bucketOf(us)); float64(v-us) > 0.04*float64(us)+1 || float64(us-v) > 0.04*float64(us)+1 {
			t.Errorf("bucket of %d µs is worth %d µs", us, v)
		}
	}
	var empty histogram
	if empty.quantile(0.5) != 0 || empty.mean() != 0 {
		t.Error("empty histogram")
	}
}

func TestMerge(t *testing.T) {
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) {})
	a := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 200 * time.Millisecond, PID: os.Getpid()})
	b := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Duration: 200 * time.Millisecond, PID: os.Getpid()})
	m := Merge(a, b)
	if m.Requests != a.Requests+b.Requests || m.Status[200] != a.Status[200]+b.Status[200] || m.Duration != a.Duration+b.Duration {
		t.Errorf("merged %+v from %+v and %+v", m, a, b)
	}
	if want := float64(m.Requests) / m.Duration.Seconds(); m.RPS != want {
		t.Errorf("rps %v; want %v", m.RPS, want)
	}
	if m.P99 < min(a.P99, b.P99) || m.P99 > max(a.P99, b.P99) || m.Max != max(a.Max, b.Max) {
		t.Errorf("p99 %v max %v from %v/%v and %v/%v", m.P99, m.Max, a.P99, a.Max, b.P99, b.Max)
	}
	if m.Server.CPU != a.Server.CPU+b.Server.CPU || m.Server.RSSStart != a.Server.RSSStart || m.Server.RSSEnd != b.Server.RSSEnd {
		t.Errorf("server %+v", m.Server)
	}
}

// A request the server does not answer in time is a timeout, not a
// connection the server closed.
func TestTimeoutNamed(t *testing.T) {
	release := make(chan struct{})
	addr := serve(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	res := run(t, addr, &oneRequest{req: NewRequest("GET", "/", "")}, Options{Connections: 1, Duration: 700 * time.Millisecond, Timeout: 200 * time.Millisecond})
	if res.NetErrors["timeout"] == 0 || res.NetErrors["closed by server"] != 0 {
		t.Errorf("net errors %v; want timeouts", res.NetErrors)
	}
	for reason := range res.Failures {
		if !strings.HasPrefix(reason, "timeout: no answer within 200ms") {
			t.Errorf("failure %q; want a timeout", reason)
		}
	}
}
