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
	Rounds  int     `json:"rounds"`
	Server  string  `json:"server"`
	Machine Machine `json:"machine"`
	// LoadGenerator is what sent the requests: GoGenerator, or wrk with
	// its version and threads (see load.Wrk.String). Rates measured by
	// the two are not comparable: wrk takes less of the CPUs the server
	// shares with it.
	LoadGenerator string `json:"load_generator"`
	// Runs are the measured runs: oauthd, then the bare handler when
	// there is a baseline.
	OAuthd *load.Result `json:"oauthd"`
	Bare   *load.Result `json:"bare,omitempty"`
	// Ratio is OAuthd.RPS / Bare.RPS; RoundRatios are those of each round.
	Ratio       float64   `json:"ratio,omitempty"`
	RoundRatios []float64 `json:"round_ratios,omitempty"`
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

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

// Print writes the report as text.
func (r *Report) Print(w io.Writer) {
	rounds := ""
	if r.Rounds > 1 {
		rounds = fmt.Sprintf(" × %d rounds (alternating; totals)", r.Rounds)
	}
	fmt.Fprintf(w, "scenario %s: %d connections, %s%s; server: %s\n", r.Scenario, r.Connections, r.Duration, rounds, r.Server)
	fmt.Fprintf(w, "machine: %s\n", r.Machine)
	gen := r.LoadGenerator
	if gen == "" {
		gen = GoGenerator
	}
	fmt.Fprintf(w, "load generator: %s\n\n", gen)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "\treq/s\tp50\tp90\tp99\tmax\terrors\t5xx\tserver CPU/req\tserver writes/req\tserver RSS start/peak/end\t")
	row := func(name string, res *load.Result) {
		cpu, writes, rss := "-", "-", "-"
		if s := res.Server; s != nil {
			if res.Requests > 0 {
				cpu = fmt.Sprintf("%.0fµs", float64(s.CPU.Microseconds())/float64(res.Requests))
				if s.WriteCalls > 0 {
					writes = fmt.Sprintf("%.1f KB, %.1f calls", float64(s.Written)/1e3/float64(res.Requests), float64(s.WriteCalls)/float64(res.Requests))
				}
			}
			rss = fmt.Sprintf("%.1f/%.1f/%.1f MB", float64(s.RSSStart)/1e6, float64(s.RSSPeak)/1e6, float64(s.RSSEnd)/1e6)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t\n", name, res.RPS, ms(res.P50), ms(res.P90), ms(res.P99), ms(res.Max),
			res.Errors, res.ServerErrors(), cpu, writes, rss)
	}
	row("oauthd", r.OAuthd)
	if r.Bare != nil {
		row("bare net/http", r.Bare)
	}
	tw.Flush()
	if r.Bare != nil {
		fmt.Fprintf(w, "\nratio oauthd/bare: %.2f", r.Ratio)
		if len(r.RoundRatios) > 1 {
			fmt.Fprint(w, " (rounds:")
			for _, x := range r.RoundRatios {
				fmt.Fprintf(w, " %.2f", x)
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
		if res.Exhausted {
			fmt.Fprintf(w, "        ended early: the pre-minted credentials ran out (raise --codes)\n")
		}
		for _, k := range slices.Sorted(maps.Keys(res.Failures)) {
			fmt.Fprintf(w, "        %d iterations failed: %s\n", res.Failures[k], k)
		}
	}
}
