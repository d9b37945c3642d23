package bench

import (
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oauthd/oauthd/internal/load"
)

// Machine describes where a run ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model,omitempty"`
	Memory     string `json:"memory,omitempty"`
	Go         string `json:"go"`
	OS         string `json:"os"`
}

// ThisMachine describes this machine.
func ThisMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for l := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(v), "%d", &kb)
				m.Memory = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
				break
			}
		}
	}
	return m
}

func (m Machine) String() string {
	s := fmt.Sprintf("%d CPUs", m.CPUs)
	if m.CPUModel != "" {
		s += " (" + m.CPUModel + ")"
	}
	if m.Memory != "" {
		s += ", " + m.Memory
	}
	return s + ", " + m.Go + " " + m.OS
}

// Report is the outcome of `oauthd bench`.
type Report struct {
	Scenario    string        `json:"scenario"`
	Connections int           `json:"connections"`
	Duration    time.Duration `json:"duration_ns"`
	// Rounds is how many times each was run (alternating); the results
	// are the totals.
	Rounds int `json:"rounds"`
	// Interrupted is true when the bench was stopped (Ctrl-C) before the
	// RoundsAsked rounds were run: the report has the Rounds completed.
	Interrupted bool    `json:"interrupted,omitempty"`
	RoundsAsked int     `json:"rounds_asked,omitempty"`
	Server      string  `json:"server"`
	Machine     Machine `json:"machine"`
	// ServerInBench is true when the server ran in the bench's process
	// (--inprocess): its CPU time includes the load generator's.
	ServerInBench bool `json:"server_in_bench_process,omitempty"`
	// LoadGenerator is what sent the requests: GoGenerator, or wrk with
	// its version and threads (see load.Wrk.String). Rates measured by
	// the two are not comparable: wrk takes less of the CPUs the server
	// shares with it.
	LoadGenerator string `json:"load_generator"`
	// Codes is how many codes the code scenario had for all the rounds,
	// and CodesHow how they were made ("seeded", "minted over HTTP
	// before each round").
	Codes    int    `json:"codes,omitempty"`
	CodesHow string `json:"codes_how,omitempty"`
	// Runs are the measured runs: oauthd, then the bare handler when
	// there is a baseline.
	OAuthd *load.Result `json:"oauthd"`
	Bare   *load.Result `json:"bare,omitempty"`
	// EndedEarly are the rounds whose oauthd run ended before its
	// duration because the pre-minted credentials ran out.
	EndedEarly []EarlyEnd `json:"ended_early,omitempty"`
	// Ratio is the oauthd / bare ratio of the rates of the rounds that
	// ran their whole duration (0 when none did), RatioRounds those
	// rounds (numbered from 1), and RoundRatios the ratio of each round.
	Ratio       float64   `json:"ratio,omitempty"`
	RatioRounds []int     `json:"ratio_rounds,omitempty"`
	RoundRatios []float64 `json:"round_ratios,omitempty"`
	// Nodes are the server's nodes (--nodes, or several --url): each
	// one's requests and process.
	Nodes []Node `json:"nodes,omitempty"`
	// RSSNote qualifies the RSS start, when it is read right after a
	// preparation that used more memory than the run.
	RSSNote string `json:"rss_note,omitempty"`
}

// EarlyEnd is a round that ran out of pre-minted credentials.
type EarlyEnd struct {
	Round int           `json:"round"`
	After time.Duration `json:"after_ns"`
}

// Node is one node of a server of several.
type Node struct {
	Addr     string          `json:"addr"`
	Requests int64           `json:"requests"`
	Process  *load.ProcStats `json:"process,omitempty"`
}

// GoGenerator names the load generator of package load (load.Run).
const GoGenerator = "oauthd's Go generator (internal/load), a goroutine per connection"

// SetBare adds the baseline run and the ratio.
func (r *Report) SetBare(b *load.Result) {
	r.Bare = b
	if b != nil && b.RPS > 0 {
		r.Ratio = r.OAuthd.RPS / b.RPS
	}
}

// SetRounds sets the results of the rounds, oauthd's and the bare
// handler's (none, or one per round): their totals, the rounds that ended
// early, each round's ratio, and the ratio of the rounds that ran their
// whole duration (on both sides), the only ones comparable: a round that
// ran out of codes ran for less, part of it with fewer connections. That
// ratio is the total rate of those rounds over the bare handler's in the
// same rounds, so it lies within their ratios.
func (r *Report) SetRounds(runs, bare []*load.Result) {
	r.Rounds = len(runs)
	r.OAuthd = load.Merge(runs...)
	r.EndedEarly, r.RoundRatios, r.RatioRounds, r.Ratio, r.Bare = nil, nil, nil, 0, nil
	for i, x := range runs {
		if x.Exhausted {
			r.EndedEarly = append(r.EndedEarly, EarlyEnd{Round: i + 1, After: x.Duration})
		}
	}
	if len(bare) != len(runs) {
		return
	}
	r.Bare = load.Merge(bare...)
	var co, cb []*load.Result
	for i := range runs {
		ratio := 0.0
		if bare[i].RPS > 0 {
			ratio = runs[i].RPS / bare[i].RPS
		}
		r.RoundRatios = append(r.RoundRatios, ratio)
		if !runs[i].Exhausted && !bare[i].Exhausted && bare[i].RPS > 0 {
			co, cb = append(co, runs[i]), append(cb, bare[i])
			r.RatioRounds = append(r.RatioRounds, i+1)
		}
	}
	if len(co) > 0 {
		r.Ratio = load.Merge(co...).RPS / load.Merge(cb...).RPS
	}
}

// SetNodes sets the nodes from the oauthd results, addrs being the
// targets in the order of the processes measured.
func (r *Report) SetNodes(addrs []string) {
	r.Nodes = nil
	for i, a := range addrs {
		n := Node{Addr: a, Requests: r.OAuthd.ByTarget[a]}
		if i < len(r.OAuthd.Nodes) {
			n.Process = r.OAuthd.Nodes[i]
		}
		r.Nodes = append(r.Nodes, n)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func mb(b int64) string { return fmt.Sprintf("%.1f", float64(b)/1e6) }

// Print writes the report as text.
func (r *Report) Print(w io.Writer) {
	rounds := ""
	if r.Rounds > 1 || r.Interrupted {
		rounds = fmt.Sprintf(" × %d rounds (alternating; totals)", r.Rounds)
	}
	fmt.Fprintf(w, "scenario %s: %d connections, %s%s; server: %s\n", r.Scenario, r.Connections, r.Duration, rounds, r.Server)
	if r.Interrupted {
		fmt.Fprintf(w, "INTERRUPTED: only the %d complete rounds of the %d asked are reported; the round cut short is left out\n", r.Rounds, r.RoundsAsked)
	}
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	gen := r.LoadGenerator
	if gen == "" {
		gen = GoGenerator
	}
	fmt.Fprintf(w, "load generator: %s\n\n", gen)
	cpuHead, rssHead := "server CPU/req", "server RSS start/peak/end"
	if r.ServerInBench {
		cpuHead = "server+generator CPU/req"
	}
	if len(r.Nodes) > 1 {
		cpuHead = fmt.Sprintf("server CPU/req (%d nodes)", len(r.Nodes))
		rssHead = fmt.Sprintf("RSS start/peak/end (sum of %d nodes)", len(r.Nodes))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\treq/s\tp50\tp90\tp99\tmax\terrors\t5xx\t%s\tserver writes/req\t%s\t\n", cpuHead, rssHead)
	row := func(name string, res *load.Result) {
		cpu, writes, rss := "-", "-", "-"
		if s := res.Server; s != nil {
			if res.Requests > 0 {
				cpu = fmt.Sprintf("%.0fµs", float64(s.CPU.Microseconds())/float64(res.Requests))
				if s.WriteCalls > 0 {
					writes = fmt.Sprintf("%.1f KB, %.1f calls", float64(s.Written)/1e3/float64(res.Requests), float64(s.WriteCalls)/float64(res.Requests))
				}
			}
			rss = fmt.Sprintf("%s/%s/%s MB", mb(s.RSSStart), mb(s.RSSPeak), mb(s.RSSEnd))
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", name, res.RPS, ms(res.P50), ms(res.P90), ms(res.P99), ms(res.Max),
			res.Errors, res.ServerErrors(), cpu, writes, rss)
	}
	row("oauthd", r.OAuthd)
	if r.Bare != nil {
		row("bare net/http", r.Bare)
	}
	tw.Flush()
	if r.ServerInBench {
		fmt.Fprintln(w, "(--inprocess: the server's CPU time is the bench process's, load generator included)")
	}
	if r.RSSNote != "" {
		fmt.Fprintf(w, "(%s)\n", r.RSSNote)
	}
	if len(r.Nodes) > 1 {
		fmt.Fprintf(w, "\nnodes (the connections go to them in turn):\n")
		for i, n := range r.Nodes {
			share := 0.0
			if r.OAuthd.Requests > 0 {
				share = 100 * float64(n.Requests) / float64(r.OAuthd.Requests)
			}
			fmt.Fprintf(w, "  node %d %s: %d requests (%.0f%%)", i+1, n.Addr, n.Requests, share)
			if p := n.Process; p != nil {
				per := "-"
				if n.Requests > 0 {
					per = fmt.Sprintf("%.0fµs", float64(p.CPU.Microseconds())/float64(n.Requests))
				}
				fmt.Fprintf(w, ", pid %d: CPU %.2fs (%s per request of its own), RSS start/peak/end %s/%s/%s MB", p.PID, p.CPU.Seconds(), per,
					mb(p.RSSStart), mb(p.RSSPeak), mb(p.RSSEnd))
			}
			fmt.Fprintln(w)
		}
	}
	if r.Bare != nil {
		fmt.Fprint(w, "\nratio oauthd/bare: ")
		switch {
		case len(r.RatioRounds) == 0:
			fmt.Fprint(w, "none: no round ran its whole duration (see below)")
		case len(r.RatioRounds) < r.Rounds:
			fmt.Fprintf(w, "%.2f, of the rounds that ran their whole duration (%s)", r.Ratio, roundList(r.RatioRounds))
		default:
			fmt.Fprintf(w, "%.2f", r.Ratio)
		}
		if len(r.RoundRatios) > 1 {
			fmt.Fprint(w, " (rounds:")
			for i, x := range r.RoundRatios {
				if slices.ContainsFunc(r.EndedEarly, func(e EarlyEnd) bool { return e.Round == i+1 }) {
					fmt.Fprintf(w, " %.2f ran out", x)
				} else {
					fmt.Fprintf(w, " %.2f", x)
				}
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	runs := []*load.Result{r.OAuthd}
	if r.Bare != nil {
		runs = append(runs, r.Bare)
	}
	for i, res := range runs {
		name := []string{"oauthd", "bare"}[i]
		fmt.Fprintf(w, "%-7s %d requests, %d iterations (%.0f/s) in %s; answers: %s\n", name+":", res.Requests, res.Iterations, res.IPS,
			res.Duration.Round(time.Millisecond), res.StatusSummary())
		if i == 0 {
			for _, e := range r.EndedEarly {
				fmt.Fprintf(w, "        ENDED EARLY%s after %.1fs of %s: the pre-minted %s ran out%s\n", r.roundName(e.Round), e.After.Seconds(), r.Duration,
					r.credentials(), r.advice())
			}
		}
		if res.Unanswered > 0 {
			fmt.Fprintf(w, "        %d requests unanswered at the end, the oldest waiting %.1fs (counted as errors)\n", res.Unanswered, res.OldestUnanswered.Seconds())
		}
		if res.Silence > 0 {
			fmt.Fprintf(w, "        the server answered nothing for %.1fs, from %.1fs into the run: stopped, frozen or stalled\n", res.Silence.Seconds(), res.SilenceFrom.Seconds())
		}
		for _, k := range slices.Sorted(maps.Keys(res.Failures)) {
			fmt.Fprintf(w, "        %d iterations failed: %s\n", res.Failures[k], k)
		}
	}
}

func (r *Report) roundName(n int) string {
	if r.Rounds <= 1 && r.RoundsAsked <= 1 {
		return ""
	}
	return fmt.Sprintf(" in round %d", n)
}

// credentials names what the scenario pre-mints.
func (r *Report) credentials() string {
	switch r.Scenario {
	case "code":
		return "codes"
	case "refresh":
		return "refresh tokens"
	case "introspect":
		return "access tokens"
	}
	return "credentials"
}

// advice is what to do about a run that ran out.
func (r *Report) advice() string {
	if r.Scenario != "code" || r.Codes == 0 {
		return ""
	}
	rounds := max(r.Rounds, r.RoundsAsked, 1)
	return fmt.Sprintf(" (%d %s for %d round(s), %d each: raise --codes)", r.Codes, r.CodesHow, rounds, r.Codes/rounds)
}

func roundList(rs []int) string {
	s := make([]string, len(rs))
	for i, x := range rs {
		s[i] = fmt.Sprint(x)
	}
	if len(s) == 1 {
		return "round " + s[0]
	}
	return "rounds " + strings.Join(s, ", ")
}
