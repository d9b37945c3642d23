package bench_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/bench"
	"github.com/oauthd/oauthd/internal/load"
)

func result(requests int64, d time.Duration, exhausted bool) *load.Result {
	return &load.Result{Scenario: "code", Requests: requests, Iterations: requests, Duration: d, RPS: float64(requests) / d.Seconds(),
		Exhausted: exhausted, Status: map[int]int64{200: requests}}
}

// A round that ran out of codes is flagged and left out of the ratio,
// which is that of the complete rounds and lies within their ratios.
func TestReportRoundRanOut(t *testing.T) {
	r := &bench.Report{Scenario: "code", Connections: 64, Duration: 2 * time.Second, Codes: 5000, CodesHow: "seeded"}
	r.SetRounds([]*load.Result{result(4000, 2*time.Second, false), result(0, time.Millisecond, true)},
		[]*load.Result{result(20000, 2*time.Second, false), result(30000, 2*time.Second, false)})
	if r.Ratio != 0.2 || len(r.RatioRounds) != 1 || r.RatioRounds[0] != 1 || len(r.EndedEarly) != 1 || r.EndedEarly[0].Round != 2 {
		t.Errorf("ratio %v of rounds %v, ended early %v; want 0.2 of round 1, round 2 ended early", r.Ratio, r.RatioRounds, r.EndedEarly)
	}
	var out bytes.Buffer
	r.Print(&out)
	for _, want := range []string{"ratio oauthd/bare: 0.20, of the rounds that ran their whole duration (round 1) (rounds: 0.20 0.00 ran out)",
		"ENDED EARLY in round 2 after 0.0s of 2s: the pre-minted codes ran out (5000 seeded for 2 round(s), 2500 each: raise --codes)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := json.Marshal(r)
	if !bytes.Contains(b, []byte(`"ended_early":[{"round":2`)) || !bytes.Contains(b, []byte(`"ratio_rounds":[1]`)) {
		t.Errorf("JSON %s", b)
	}

	// Every round ran out: no ratio at all.
	r.SetRounds([]*load.Result{result(400, time.Second, true)}, []*load.Result{result(20000, 2*time.Second, false)})
	out.Reset()
	r.Print(&out)
	if r.Ratio != 0 || !strings.Contains(out.String(), "ratio oauthd/bare: none: no round ran its whole duration") {
		t.Errorf("ratio %v:\n%s", r.Ratio, out.String())
	}

	// Complete rounds: the ratio of the totals, between the rounds'.
	r.SetRounds([]*load.Result{result(4000, 2*time.Second, false), result(9000, 2*time.Second, false), result(5000, 2*time.Second, false)},
		[]*load.Result{result(20000, 2*time.Second, false), result(10000, 2*time.Second, false), result(40000, 2*time.Second, false)})
	lo, hi := 0.125, 0.9
	if r.Ratio < lo || r.Ratio > hi || len(r.RatioRounds) != 3 || len(r.EndedEarly) != 0 {
		t.Errorf("ratio %v (rounds %v); want within [%v, %v]", r.Ratio, r.RoundRatios, lo, hi)
	}
}

// With several nodes, each one's requests, CPU and RSS are reported, in
// the text and the JSON, and their sum in the table.
func TestReportNodes(t *testing.T) {
	res := result(3000, time.Second, false)
	res.ByTarget = map[string]int64{"127.0.0.1:1": 1000, "127.0.0.1:2": 2000}
	res.Nodes = []*load.ProcStats{{PID: 11, CPU: 300 * time.Millisecond, RSSStart: 20e6, RSSPeak: 30e6, RSSEnd: 25e6},
		{PID: 12, CPU: 500 * time.Millisecond, RSSStart: 21e6, RSSPeak: 31e6, RSSEnd: 26e6}}
	res.Server = &load.ProcStats{PID: 11, CPU: 800 * time.Millisecond, RSSStart: 41e6, RSSPeak: 61e6, RSSEnd: 51e6}
	r := &bench.Report{Scenario: "client_credentials", Connections: 4, Duration: time.Second}
	r.SetRounds([]*load.Result{res}, nil)
	r.SetNodes([]string{"127.0.0.1:1", "127.0.0.1:2"})
	var out bytes.Buffer
	r.Print(&out)
	for _, want := range []string{"server CPU/req (2 nodes)", "RSS start/peak/end (sum of 2 nodes)", "267µs", "41.0/61.0/51.0 MB",
		"node 1 127.0.0.1:1: 1000 requests (33%), pid 11: CPU 0.30s (300µs per request of its own), RSS start/peak/end 20.0/30.0/25.0 MB",
		"node 2 127.0.0.1:2: 2000 requests (67%), pid 12: CPU 0.50s (250µs per request of its own)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	b, _ := json.Marshal(r)
	var back struct {
		Nodes []struct {
			Addr     string
			Requests int64
			Process  struct {
				PID int
				CPU int64 `json:"cpu_ns"`
			}
		}
	}
	if err := json.Unmarshal(b, &back); err != nil || len(back.Nodes) != 2 || back.Nodes[1].Requests != 2000 || back.Nodes[1].Process.PID != 12 ||
		back.Nodes[1].Process.CPU != int64(500*time.Millisecond) {
		t.Errorf("JSON nodes %+v (%v): %s", back.Nodes, err, b)
	}
}

// The errors of the scenarios give an HTML error page's readable message,
// not its first 200 bytes of markup.
func TestPageMessage(t *testing.T) {
	addr := serve(t, true, nil)
	for _, tc := range []struct {
		q    url.Values
		want string
	}{
		{url.Values{"client_id": {"nope"}, "redirect_uri": {app.DemoRedirectURI}, "response_type": {"code"}}, "this application is not known. (no application is registered with this client_id; error code: unknown_client)"},
		{url.Values{"client_id": {app.DemoClientID}, "redirect_uri": {"https://evil.example/cb"}, "response_type": {"code"}}, "redirect"},
	} {
		resp, err := http.Get("http://" + addr + oauthd.AuthorizePath + "?" + tc.q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		msg := bench.PageMessage(resp.Header.Get("Content-Type"), body)
		if msg == "" || strings.ContainsAny(msg, "<>") || !strings.Contains(strings.ToLower(msg), tc.want) {
			t.Errorf("%d %s: message %q; want the page's text, about %q", resp.StatusCode, body, msg, tc.want)
		}
	}
	if m := bench.PageMessage("application/json", []byte(`{"error":"x"}`)); m != "" {
		t.Errorf("message of JSON: %q", m)
	}
}

// Against a running server the code scenario mints CodesPerConn codes per
// connection each time its connections are prepared (each round), and
// one only for the recording of an iteration: a run redeems exactly what
// was minted for it.
func TestCodesMintedPerRun(t *testing.T) {
	addr := serve(t, true, nil)
	scn, err := bench.NewScenario("code", &bench.Params{ClientID: app.DemoClientID, ClientSecret: app.DemoClientSecret,
		RedirectURI: app.DemoRedirectURI, Scope: "email", Username: app.DemoUsername, Password: app.DemoPassword, CodesPerConn: 5})
	if err != nil {
		t.Fatal(err)
	}
	opts := load.Options{Targets: []string{addr}, Connections: 2, Duration: 30 * time.Second}
	if _, err := load.Record(t.Context(), scn, opts); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		res, err := load.Run(t.Context(), scn, opts)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Exhausted || res.Iterations != 10 || res.Errors != 0 {
			t.Errorf("exhausted %v, %d iterations, %d errors; want the 10 codes minted for the run", res.Exhausted, res.Iterations, res.Errors)
		}
	}
}

func TestPoolSplit(t *testing.T) {
	p := bench.NewPool([]string{"a", "b", "c", "d", "e", "f", "g", "h"})
	p.Next()
	pools := p.Split(3)
	var got []string
	for _, q := range pools {
		var s []string
		for x, ok := q.Next(); ok; x, ok = q.Next() {
			s = append(s, x)
		}
		got = append(got, strings.Join(s, ""))
	}
	if strings.Join(got, " ") != "bcd ef gh" {
		t.Errorf("split: %q", got)
	}
}
