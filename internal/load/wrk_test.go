package load

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The files in testdata/wrk are the output of wrk 4.1.0 against small
// servers: a fast one (µs), one taking 2 ms with a 500 every tenth answer,
// one taking over a second that closes some connections and lets others
// time out, and one answering nothing within the run.
func TestParseWrk(t *testing.T) {
	ms := func(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }
	for _, tc := range []struct {
		file                      string
		requests                  int64
		rps                       float64
		runtime                   time.Duration
		mean, max, p50, p90, p99  time.Duration
		non2xx, read, timeout     int64
		wantRes200, wantResErrors int64
	}{
		{"us.txt", 27701, 25195.28, ms(1100), ms(0.60317), ms(11.36), ms(0.240), ms(1.61), ms(4.86), 0, 0, 0, 27701, 0},
		{"ms_non2xx.txt", 2728, 2722.69, ms(1000), ms(2.92), ms(11.72), ms(2.83), ms(3.29), ms(5.05), 272, 0, 0, 2728 - 272, 272},
		{"s_socket_errors.txt", 9, 2.99, ms(3010), ms(1100), ms(1100), ms(1100), ms(1100), ms(1100), 9, 4, 2, 0, 9 + 4 + 2},
		{"no_requests.txt", 0, 0, ms(1010), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	} {
		t.Run(tc.file, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", "wrk", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			o, err := ParseWrk(b)
			if err != nil {
				t.Fatal(err)
			}
			if o.Requests != tc.requests || o.RPS != tc.rps || o.Runtime != tc.runtime || o.Mean != tc.mean || o.Max != tc.max ||
				o.Quantiles[50] != tc.p50 || o.Quantiles[90] != tc.p90 || o.Quantiles[99] != tc.p99 || o.Quantiles[75] == 0 && tc.requests > 0 ||
				o.Non2xx != tc.non2xx || o.Read != tc.read || o.Timeout != tc.timeout || o.Connect != 0 || o.Write != 0 || o.Checked {
				t.Errorf("parsed %+v", o)
			}
			res := o.result("x", "", Options{Connections: 8})
			if res.Requests != tc.requests || res.Status[200] != tc.wantRes200 || res.Errors != tc.wantResErrors ||
				res.P50 != tc.p50 || res.P99 != tc.p99 || res.Max != tc.max {
				t.Errorf("result %+v", res)
			}
			if tc.read > 0 && (res.NetErrors["socket read errors"] != tc.read || res.NetErrors["timeouts"] != tc.timeout) {
				t.Errorf("net errors %v", res.NetErrors)
			}
			// The rate stays wrk's, though Duration is what Merge uses.
			if tc.rps > 0 {
				if d := res.RPS/tc.rps - 1; d > 1e-6 || d < -1e-6 {
					t.Errorf("rps %v, wrk said %v", res.RPS, tc.rps)
				}
			} else if res.Duration != tc.runtime || res.RPS != 0 {
				t.Errorf("duration %v rps %v", res.Duration, res.RPS)
			}
		})
	}
}

func TestParseWrkCheckLine(t *testing.T) {
	b, _ := os.ReadFile(filepath.Join("testdata", "wrk", "ms_non2xx.txt"))
	out := string(b) + wrkLinePrefix + " answers=2728 missing_marker=300 status=200:2456,500:272\n"
	o, err := ParseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	res := o.result("client_credentials", `"access_token"`, Options{})
	if !o.Checked || res.Status[200] != 2456 || res.Status[500] != 272 || res.ServerErrors() != 272 ||
		res.Failures[`answer without "access_token"`] != 300 || res.Iterations != 2728-300 || res.Errors != 272 {
		t.Errorf("result %+v", res)
	}
}

// Bad or cut output is an error naming what is wrong, never a panic.
func TestParseWrkBad(t *testing.T) {
	good, _ := os.ReadFile(filepath.Join("testdata", "wrk", "ms_non2xx.txt"))
	for _, tc := range []struct{ out, want string }{
		{"", `no "Latency" line`},
		{"unable to connect to 127.0.0.1:1 Connection refused\n", `no "Latency" line`},
		{strings.Replace(string(good), "2.83ms", "2.83xs", 1), `unknown unit "xs"`},
		{strings.Replace(string(good), "  11.72ms", "", 1), "Max: time \"93.00%\""},
		{strings.Replace(string(good), "  11.72ms   93.00%", "", 1), "want Avg, Stdev, Max"},
		{strings.Replace(string(good), "Requests/sec:   2722.69", "Requests/sec: lots", 1), "requests/sec line"},
		{strings.Replace(string(good), "     90%    3.29ms\n", "", 1), "no 90% line"},
		{strings.Replace(string(good), "2728 requests in", "2728 answers in", 1), `no "N requests in T" line`},
		{strings.Replace(string(good), "Non-2xx or 3xx responses: 272", "Non-2xx or 3xx responses: many", 1), "non-2xx line"},
		{string(good) + "  Socket errors: connect x\n", "socket errors line"},
		{string(good) + wrkLinePrefix + " answers=1\n", "missing_marker"},
		{string(good) + wrkLinePrefix + " answers=1 missing_marker=0 status=200\n", "STATUS:COUNT"},
	} {
		_, err := ParseWrk([]byte(tc.out))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v; want %q", err, tc.want)
		}
	}
	for i := range len(good) {
		ParseWrk(good[:i]) // no panic
	}
}

func TestParseWrkTime(t *testing.T) {
	for s, want := range map[string]time.Duration{"603.17us": 603170 * time.Nanosecond, "1.03ms": 1030 * time.Microsecond,
		"1.10s": 1100 * time.Millisecond, "1.50m": 90 * time.Second, "2.00h": 2 * time.Hour, "0.00us": 0} {
		if got, err := parseWrkTime(s); err != nil || got != want {
			t.Errorf("%s: %v, %v; want %v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "us", "1.2", "-1ms", "1..2ms", "nan%"} {
		if _, err := parseWrkTime(s); err == nil {
			t.Errorf("%q parsed", s)
		}
	}
}

// Merging wrk results: counts add up, quantiles are weighted by requests.
func TestMergeWrk(t *testing.T) {
	a := &Result{Requests: 100, Duration: time.Second, P50: 1 * time.Millisecond, P90: 2 * time.Millisecond, P99: 4 * time.Millisecond, Max: 9 * time.Millisecond, Status: map[int]int64{200: 100}}
	b := &Result{Requests: 300, Duration: time.Second, P50: 3 * time.Millisecond, P90: 4 * time.Millisecond, P99: 8 * time.Millisecond, Max: 5 * time.Millisecond, Status: map[int]int64{200: 300}}
	m := Merge(a, b)
	if m.Requests != 400 || m.RPS != 200 || m.Status[200] != 400 || m.P50 != 2500*time.Microsecond || m.P90 != 3500*time.Microsecond ||
		m.P99 != 7*time.Millisecond || m.Max != 9*time.Millisecond {
		t.Errorf("merged %+v", m)
	}
}

func TestLuaQuote(t *testing.T) {
	if got := luaQuote("a\"b\\c\r\n\x001é"); got != `"a\"b\\c\013\010\0001\195\169"` {
		t.Errorf("got %s", got)
	}
}

func TestWrkCheck(t *testing.T) {
	if err := WrkCheck(2*time.Second, 64, 2); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		d       time.Duration
		c, thrs int
	}{{1500 * time.Millisecond, 64, 2}, {0, 64, 2}, {time.Second, 63, 2}, {time.Second, 1, 2}, {time.Second, 4, 0}} {
		if err := WrkCheck(tc.d, tc.c, tc.thrs); err == nil {
			t.Errorf("%+v passed", tc)
		}
	}
}

func TestFindWrkMissing(t *testing.T) {
	if _, err := FindWrk(filepath.Join(t.TempDir(), "no-wrk"), 2); !errors.Is(err, ErrNoWrk) {
		t.Errorf("got %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := FindWrk("", 2); !errors.Is(err, ErrNoWrk) {
		t.Errorf("got %v", err)
	}
}

func needWrk(t *testing.T) *Wrk {
	t.Helper()
	if _, err := exec.LookPath("wrk"); err != nil {
		t.Skip("wrk is not in PATH")
	}
	w, err := FindWrk("", 2)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(w.String(), "wrk ") || !strings.HasSuffix(w.String(), ", 2 threads") {
		t.Errorf("String %q", w)
	}
	return w
}

// The script's requests reach the server as the Go client sends them, in
// turn, and the answers without the marker are counted.
func TestWrkScriptRequests(t *testing.T) {
	w := needWrk(t)
	var mu sync.Mutex
	seen := map[string]int{}
	var bad []string
	var addr string
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen[string(b)]++
		if r.Method != "POST" || r.URL.Path != "/oauth/introspect" || r.Header.Get("Authorization") != "Basic YTpi" ||
			r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" || r.ContentLength != int64(len(b)) ||
			r.Host != addr {
			bad = append(bad, r.Method+" "+r.URL.String()+" "+r.Header.Get("Authorization")+" "+r.Host)
		}
		mu.Unlock()
		if string(b) == "token=bad%22" {
			io.WriteString(rw, `{"active":false}`)
			return
		}
		io.WriteString(rw, `{"active":true,"scope":"email"}`)
	}))
	defer srv.Close()
	mu.Lock()
	addr = strings.TrimPrefix(srv.URL, "http://")
	mu.Unlock()
	var reqs []*Request
	for _, tok := range []string{"a", "b", "bad%22"} {
		reqs = append(reqs, NewRequest("POST", "/oauth/introspect", "token="+tok, "Authorization", "Basic YTpi"))
	}
	res, err := w.Run(context.Background(), "introspect", &WrkScript{Requests: reqs, Marker: `"active":true`},
		Options{Targets: []string{addr}, Connections: 4, Duration: time.Second, PID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d requests not as sent by the Go client, e.g. %s", len(bad), bad[0])
	}
	if len(seen) != 3 || seen["token=a"] == 0 || seen["token=b"] == 0 || seen["token=bad%22"] == 0 {
		t.Errorf("bodies seen %v", seen)
	}
	missing := res.Failures[`answer without "active":true`]
	if res.Requests == 0 || res.Status[200] != res.Requests || res.Errors != 0 || missing == 0 ||
		missing > res.Requests/3+8 || missing < res.Requests/3-8 || res.Iterations != res.Requests-missing {
		t.Errorf("result %+v (server saw %v)", res, seen)
	}
	if res.Server == nil || res.Server.RSSPeak == 0 || res.P50 <= 0 || res.P99 < res.P50 || res.Max < res.P99 {
		t.Errorf("result %+v server %+v", res, res.Server)
	}
}

// wrk against the bare handler: the replayed requests carry their step
// number, and the recorded answer comes back.
func TestWrkAgainstBareHandler(t *testing.T) {
	w := needWrk(t)
	tr := Trace{{Method: "POST", Path: "/oauth/token", Header: []Field{{"Content-Type", "application/x-www-form-urlencoded"}, {"Authorization", "Basic YTpi"}},
		Body: []byte("grant_type=client_credentials"), Status: 200, RespHeader: []Field{{"Content-Type", "application/json"}},
		RespBody: []byte(`{"access_token":"x","token_type":"Bearer"}`)}}
	bare := BareHandler(tr)
	var mu sync.Mutex
	steps := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		steps[r.Header.Get(StepHeader)]++
		mu.Unlock()
		bare.ServeHTTP(rw, r)
	}))
	defer srv.Close()
	res, err := w.Run(context.Background(), "client_credentials", &WrkScript{Requests: ReplayRequests(tr), Marker: `"access_token"`},
		Options{Targets: []string{strings.TrimPrefix(srv.URL, "http://")}, Connections: 2, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(steps) != 1 || steps["0"] == 0 {
		t.Errorf("steps seen %v", steps)
	}
	if res.Requests == 0 || res.Status[200] != res.Requests || len(res.Failures) != 0 || res.Iterations != res.Requests || res.Server != nil {
		t.Errorf("result %+v", res)
	}
}

// A server that is not there: wrk's error, with its words.
func TestWrkRefused(t *testing.T) {
	w := needWrk(t)
	ln := httptest.NewServer(http.NotFoundHandler())
	addr := strings.TrimPrefix(ln.URL, "http://")
	ln.Close()
	_, err := w.Run(context.Background(), "x", &WrkScript{Requests: []*Request{NewRequest("GET", "/", "")}},
		Options{Targets: []string{addr}, Connections: 2, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "unable to connect") {
		t.Errorf("got %v", err)
	}
}
