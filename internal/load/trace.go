package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Exchange is one request of a recorded iteration and the answer it got.
type Exchange struct {
	Method string  `json:"method"`
	Path   string  `json:"path"`
	Header []Field `json:"header,omitempty"`
	Body   []byte  `json:"body,omitempty"`
	// Status, RespHeader and RespBody are the answer; RespHeader leaves
	// out the fields net/http writes itself (Date, Content-Length,
	// Transfer-Encoding, Connection).
	Status     int     `json:"status"`
	RespHeader []Field `json:"resp_header,omitempty"`
	RespBody   []byte  `json:"resp_body,omitempty"`
}

// A Trace is the requests of one iteration of a scenario, in order, with
// their answers. Replaying it against a BareHandler that answers with the
// recorded responses is the baseline: the same HTTP work, byte for byte,
// with no OAuth logic behind it.
type Trace []Exchange

// StepHeader tells a BareHandler which exchange of its trace a request is.
const StepHeader = "X-Load-Step"

// FixedRequests prepares opts.Connections connections of scn as Run does
// (opts.SetupConcurrency at a time), records one iteration of each, and
// returns the distinct requests they sent, in connection order. For a
// scenario whose every request is a fixed request, one that can be sent
// again and again (client_credentials; introspect, whose connections each
// have their own token), these are what an external load generator such
// as wrk replays. It fails if a preparation or an iteration fails.
func FixedRequests(ctx context.Context, scn Scenario, opts Options) ([]*Request, error) {
	if len(opts.Targets) == 0 {
		return nil, errors.New("load: no target")
	}
	if opts.Connections <= 0 {
		opts.Connections = 64
	}
	if opts.SetupConcurrency <= 0 {
		opts.SetupConcurrency = 8
	}
	o := opts
	traces := make([]Trace, opts.Connections)
	errs := make([]error, opts.Connections)
	sem := make(chan struct{}, opts.SetupConcurrency)
	var failed atomic.Bool
	var wg sync.WaitGroup
	for i := range opts.Connections {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if failed.Load() || ctx.Err() != nil {
				return
			}
			o := o
			o.Targets = []string{opts.Targets[i%len(opts.Targets)]}
			traces[i], errs[i] = recordOne(scn, i, o)
			if errs[i] != nil {
				failed.Store(true)
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("connection %d: %w", i, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var reqs []*Request
	seen := map[string]bool{}
	for _, tr := range traces {
		for _, x := range tr {
			k := fmt.Sprintf("%s %s\n%q\n%q", x.Method, x.Path, x.Header, x.Body)
			if !seen[k] {
				seen[k] = true
				reqs = append(reqs, &Request{Method: x.Method, Path: x.Path, Header: x.Header, Body: x.Body})
			}
		}
	}
	return reqs, nil
}

// Record prepares one connection of scn against opts.Targets[0], then
// runs one iteration and returns its requests and answers. It fails if
// the iteration fails.
func Record(ctx context.Context, scn Scenario, opts Options) (Trace, error) {
	if len(opts.Targets) == 0 {
		return nil, errors.New("load: no target")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return recordOne(scn, 0, opts)
}

// recordOne prepares connection i of scn against opts.Targets[0] and
// records one iteration.
func recordOne(scn Scenario, i int, opts Options) (Trace, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	host := opts.Host
	if host == "" {
		host = opts.Targets[0]
	}
	c := &Client{conn: newConn(opts.Targets[0], host, opts.Timeout), st: newWorkerStats(), stopped: new(atomic.Bool), recording: true}
	defer c.conn.close()
	w, err := scn.Worker(i, c)
	if err != nil {
		return nil, fmt.Errorf("load: preparing the recording: %w", err)
	}
	var tr Trace
	c.trace = &tr
	if err := w.Iterate(c); err != nil {
		return nil, fmt.Errorf("load: recording one iteration of %s: %w", scn.Name(), err)
	}
	if len(tr) == 0 {
		return nil, fmt.Errorf("load: one iteration of %s sent no request", scn.Name())
	}
	return tr, nil
}

// record appends r and its answer to the trace.
func (tr *Trace) record(r *Request, resp *Response) {
	x := Exchange{Method: r.Method, Path: r.Path, Header: append([]Field(nil), r.Header...),
		Body: bytes.Clone(r.Body), Status: resp.Status, RespBody: bytes.Clone(resp.Body)}
	for _, f := range resp.Header {
		switch strings.ToLower(string(f.Name)) {
		case "date", "content-length", "transfer-encoding", "connection":
			continue
		}
		x.RespHeader = append(x.RespHeader, Field{string(f.Name), string(f.Value)})
	}
	*tr = append(*tr, x)
}

// BareHandler answers each request of a replayed trace with the recorded
// answer, after doing the HTTP work every endpoint of an OAuth server does
// with a request: reading the body, parsing it as a form when it is one,
// and reading the Basic credentials. It has no OAuth logic and no store.
func BareHandler(tr Trace) http.Handler {
	type answer struct {
		status int
		header http.Header
		body   []byte
	}
	answers := make([]answer, len(tr))
	for i, x := range tr {
		h := http.Header{}
		for _, f := range x.RespHeader {
			h.Add(f.Name, f.Value)
		}
		answers[i] = answer{x.Status, h, x.RespBody}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			if _, err := url.ParseQuery(string(body)); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		r.BasicAuth()
		i, err := strconv.Atoi(r.Header.Get(StepHeader))
		if err != nil || i < 0 || i >= len(answers) {
			i = 0
		}
		a := answers[i]
		h := w.Header()
		for k, v := range a.header {
			h[k] = v
		}
		w.WriteHeader(a.status)
		w.Write(a.body)
	})
}

// Replay is the scenario that sends the requests of tr in order, each with
// its step number in StepHeader, and expects the recorded statuses: the
// client side of the baseline.
func Replay(name string, tr Trace) Scenario { return &replay{name: name, tr: tr} }

type replay struct {
	name string
	tr   Trace
}

func (s *replay) Name() string { return s.name }

func (s *replay) Worker(int, *Client) (Worker, error) {
	return &replayWorker{s.tr, ReplayRequests(s.tr)}, nil
}

// ReplayRequests are the requests of tr as Replay sends them: each with
// its step number in StepHeader, which tells BareHandler which recorded
// answer to give.
func ReplayRequests(tr Trace) []*Request {
	reqs := make([]*Request, len(tr))
	for i, x := range tr {
		r := &Request{Method: x.Method, Path: x.Path, Header: append([]Field(nil), x.Header...), Body: x.Body}
		r.Header = append(r.Header, Field{StepHeader, strconv.Itoa(i)})
		reqs[i] = r
	}
	return reqs
}

type replayWorker struct {
	tr   Trace
	reqs []*Request
}

func (w *replayWorker) Iterate(c *Client) error {
	for i, r := range w.reqs {
		resp, err := c.Do(r)
		if err != nil {
			return err
		}
		if resp.Status != w.tr[i].Status {
			return fmt.Errorf("step %d: status %d, recorded %d", i, resp.Status, w.tr[i].Status)
		}
	}
	return nil
}
