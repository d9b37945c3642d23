package bench_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/bench"
	"github.com/oauthd/oauthd/internal/load"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/memstore"
)

// serve runs what `oauthd serve` runs, on a fresh SQLite file; seed, when
// set, fills the store before the server starts.
func serve(t *testing.T, demo bool, seed func(*app.Main)) string {
	t.Helper()
	cfg := app.Config{Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "oauthd.db"), Demo: demo, LogLevel: "error"}
	m, err := app.Open(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if seed != nil {
		seed(m)
	}
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		m.Shutdown(ctx)
		<-done
	})
	return m.Addr()
}

var fast = secret.Params{Memory: 64, Time: 1, Threads: 1}

func check(t *testing.T, res *load.Result) {
	t.Helper()
	if res.Iterations == 0 || res.Errors != 0 || len(res.Failures) != 0 {
		t.Errorf("%s: %d iterations, %d errors (%s), failures %v", res.Scenario, res.Iterations, res.Errors, res.StatusSummary(), res.Failures)
	}
}

// Every scenario runs without an error against a seeded server, and its
// recorded iteration replays against the bare handler.
func TestScenariosSeeded(t *testing.T) {
	for _, name := range bench.Scenarios {
		t.Run(name, func(t *testing.T) {
			var params *bench.Params
			addr := serve(t, false, func(m *app.Main) {
				var err error
				params, err = bench.Seed(context.Background(), m.Store, bench.SeedOptions{Codes: 2000, RefreshTokens: 7, AccessTokens: 3, Users: 5, Params: &fast})
				if err != nil {
					t.Fatal(err)
				}
			})
			scn, err := bench.NewScenario(name, params)
			if err != nil {
				t.Fatal(err)
			}
			opts := load.Options{Targets: []string{addr}, Connections: 2, Duration: 300 * time.Millisecond}
			tr, err := load.Record(context.Background(), scn, opts)
			if err != nil {
				t.Fatal(err)
			}
			res, err := load.Run(context.Background(), scn, opts)
			if err != nil {
				t.Fatal(err)
			}
			check(t, res)
			wantPerIteration := map[string]int{"client_credentials": 1, "code": 1, "refresh": 1, "introspect": 1, "flow": 6, "mixed": 10}[name]
			if len(tr) != wantPerIteration {
				t.Errorf("one iteration sent %d requests; want %d", len(tr), wantPerIteration)
			}
		})
	}
}

// Against a running server with only the demo data, the scenarios mint
// what they need through the pages.
func TestScenariosDemoServer(t *testing.T) {
	addr := serve(t, true, nil)
	for _, name := range []string{"code", "refresh", "introspect", "mixed"} {
		t.Run(name, func(t *testing.T) {
			scn, err := bench.NewScenario(name, &bench.Params{ClientID: app.DemoClientID, ClientSecret: app.DemoClientSecret,
				RedirectURI: app.DemoRedirectURI, Scope: "email", Username: app.DemoUsername, Password: app.DemoPassword, CodesPerConn: 20})
			if err != nil {
				t.Fatal(err)
			}
			// A second, not less: on a loaded machine (the race detector,
			// the other packages' tests) one iteration can take longer
			// than 200 ms, and a run without one fails. The code scenario
			// ends sooner, when its 40 codes run out.
			res, err := load.Run(context.Background(), scn, load.Options{Targets: []string{addr}, Connections: 2, Duration: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			check(t, res)
		})
	}
}

// The code scenario ends when its codes run out, and says so.
func TestCodesRunOut(t *testing.T) {
	var params *bench.Params
	addr := serve(t, false, func(m *app.Main) {
		var err error
		if params, err = bench.Seed(context.Background(), m.Store, bench.SeedOptions{Codes: 30, Params: &fast}); err != nil {
			t.Fatal(err)
		}
	})
	scn, _ := bench.NewScenario("code", params)
	res, err := load.Run(context.Background(), scn, load.Options{Targets: []string{addr}, Connections: 4, Duration: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Exhausted || res.Iterations != 30 || res.Errors != 0 {
		t.Errorf("exhausted %v, %d iterations, %d errors; want true, 30, 0", res.Exhausted, res.Iterations, res.Errors)
	}
}

// A wrong password stops the preparation with a clear error.
func TestWrongCredentials(t *testing.T) {
	addr := serve(t, true, nil)
	scn, _ := bench.NewScenario("refresh", &bench.Params{ClientID: app.DemoClientID, ClientSecret: app.DemoClientSecret,
		RedirectURI: app.DemoRedirectURI, Username: app.DemoUsername, Password: "wrong"})
	_, err := load.Run(context.Background(), scn, load.Options{Targets: []string{addr}, Connections: 1, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "wrong username or password") {
		t.Errorf("err %v", err)
	}
}

func TestUnknownScenario(t *testing.T) {
	if _, err := bench.NewScenario("nope", &bench.Params{}); err == nil {
		t.Error("unknown scenario accepted")
	}
}

// The scenarios wrk can drive are those whose requests can be replayed:
// client_credentials sends one request on every connection, introspect
// one per connection (each has its own token); the others say why not.
func TestFixedRequests(t *testing.T) {
	var params *bench.Params
	addr := serve(t, false, func(m *app.Main) {
		var err error
		if params, err = bench.Seed(context.Background(), m.Store, bench.SeedOptions{AccessTokens: 3, Params: &fast}); err != nil {
			t.Fatal(err)
		}
	})
	for name, want := range map[string]int{"client_credentials": 1, "introspect": 3} {
		marker, err := bench.FixedMarker(name)
		if err != nil || marker == "" {
			t.Fatalf("%s: %q, %v", name, marker, err)
		}
		scn, _ := bench.NewScenario(name, params)
		reqs, err := load.FixedRequests(context.Background(), scn, load.Options{Targets: []string{addr}, Connections: 3})
		if err != nil {
			t.Fatal(err)
		}
		if len(reqs) != want {
			t.Errorf("%s: %d distinct requests; want %d", name, len(reqs), want)
		}
	}
	for _, name := range []string{"code", "refresh", "flow", "mixed"} {
		if _, err := bench.FixedMarker(name); err == nil || !strings.Contains(err.Error(), "single use") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := bench.FixedMarker("nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
}

// With Users, the pre-minted codes and tokens belong to that many users in
// turn, users that exist (so that a scenario's tokens are spread as a
// server's are); seeding the same store again reuses them.
func TestSeedSpreadsUsers(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	for round := range 2 {
		params, err := bench.Seed(ctx, store, bench.SeedOptions{Codes: 6, RefreshTokens: 3, Users: 3, Params: &fast})
		if err != nil {
			t.Fatal(err)
		}
		subjects := map[string]int{}
		for {
			code, ok := params.Codes.Next()
			if !ok {
				break
			}
			c, err := store.ConsumeAuthCode(ctx, oauthd.HashToken(code), time.Now())
			if err != nil {
				t.Fatal(err)
			}
			subjects[c.Subject]++
		}
		for {
			rt, ok := params.RefreshTokens.Next()
			if !ok {
				break
			}
			tok, err := store.Token(ctx, oauthd.HashToken(rt))
			if err != nil {
				t.Fatal(err)
			}
			subjects[tok.Subject]++
		}
		if len(subjects) != 3 {
			t.Fatalf("round %d: the codes and tokens belong to %d users (%v); want 3", round, len(subjects), subjects)
		}
		for id, n := range subjects {
			if _, err := store.User(ctx, id); err != nil {
				t.Errorf("round %d: subject %s: %v", round, id, err)
			}
			if n != 3 {
				t.Errorf("round %d: subject %s has %d of the 9 items; want 3", round, id, n)
			}
		}
		users, err := store.Users(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 3 {
			t.Errorf("round %d: %d users stored; want 3", round, len(users))
		}
	}
}
