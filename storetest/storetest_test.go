package storetest

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// naiveStore is memstore with the mistake the race tests are for: its
// single-use steps are a read and then a write, each atomic on its own
// (under a mutex: no data race for -race to see), but not together. In
// between it waits a moment (gap), as a store that reads and then writes
// over a connection to its database waits for the answer.
type naiveStore struct {
	oauthd.Storage
	mu       sync.Mutex
	codes    map[string]*oauthd.AuthCode
	tokens   map[string]*oauthd.Token
	requests map[string]bool
}

// gap is the naive store's wait between its read and its write: 100 µs,
// about a SQLite write's. With 1 µs the suite missed the naive store in
// 2 or 3 runs of 20 on a loaded 2-CPU machine (a go test ./... with other
// test binaries running beside it), failing the test below.
func gap() { time.Sleep(100 * time.Microsecond) }

func newNaiveStore() *naiveStore {
	return &naiveStore{Storage: memstore.New(), codes: map[string]*oauthd.AuthCode{}, tokens: map[string]*oauthd.Token{}, requests: map[string]bool{}}
}

func (n *naiveStore) CreateAuthCode(_ context.Context, c *oauthd.AuthCode) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	cp := *c
	n.codes[c.Hash] = &cp
	return nil
}

// readCode is the read of the naive steps.
func (n *naiveStore) readCode(hash string) (oauthd.AuthCode, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	c, ok := n.codes[hash]
	if !ok {
		return oauthd.AuthCode{}, false
	}
	return *c, true
}

func (n *naiveStore) ConsumeAuthCode(_ context.Context, hash string, now time.Time) (*oauthd.AuthCode, error) {
	c, ok := n.readCode(hash)
	if !ok {
		return nil, oauthd.ErrNotFound
	}
	if !c.UsedAt.IsZero() {
		return &c, oauthd.ErrAlreadyUsed
	}
	gap()
	n.mu.Lock()
	n.codes[hash].UsedAt = ms(now)
	n.mu.Unlock()
	c.UsedAt = ms(now)
	return &c, nil
}

func (n *naiveStore) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	c, ok := n.readCode(hash)
	if !ok {
		return nil, oauthd.ErrNotFound
	}
	if !c.UsedAt.IsZero() {
		return &c, oauthd.ErrAlreadyUsed
	}
	gap()
	toks, err := issue(&c)
	if err != nil {
		return &c, err
	}
	n.mu.Lock()
	n.codes[hash].UsedAt = ms(now)
	n.mu.Unlock()
	c.UsedAt = ms(now)
	return &c, n.CreateTokens(ctx, toks...)
}

func (n *naiveStore) CreateTokens(_ context.Context, toks ...*oauthd.Token) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range toks {
		cp := *t
		n.tokens[t.Hash] = &cp
	}
	return nil
}

func (n *naiveStore) Token(_ context.Context, hash string) (*oauthd.Token, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.tokens[hash]
	if !ok {
		return nil, oauthd.ErrNotFound
	}
	cp := *t
	return &cp, nil
}

func (n *naiveStore) RotateRefreshToken(ctx context.Context, hash string, now time.Time, successor []byte, next ...*oauthd.Token) (*oauthd.Token, error) {
	t, err := n.Token(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !t.RotatedAt.IsZero() {
		return t, oauthd.ErrAlreadyUsed
	}
	gap()
	n.mu.Lock()
	n.tokens[hash].RotatedAt, n.tokens[hash].Successor = ms(now), successor
	n.mu.Unlock()
	t.RotatedAt, t.Successor = ms(now), successor
	return t, n.CreateTokens(ctx, next...)
}

func (n *naiveStore) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	t, err := n.Token(ctx, hash)
	if err != nil {
		return nil, err
	}
	if !t.RotatedAt.IsZero() {
		return t, oauthd.ErrAlreadyUsed
	}
	gap()
	successor, next, err := rotate(t)
	if err != nil {
		return t, err
	}
	n.mu.Lock()
	n.tokens[hash].RotatedAt, n.tokens[hash].Successor = ms(now), successor
	n.mu.Unlock()
	t.RotatedAt, t.Successor = ms(now), successor
	return t, n.CreateTokens(ctx, next...)
}

func (n *naiveStore) CreateAuthRequest(_ context.Context, r *oauthd.AuthRequest) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.requests[r.ID] = true
	return nil
}

func (n *naiveStore) DeleteAuthRequest(_ context.Context, id string) error {
	n.mu.Lock()
	ok := n.requests[id]
	n.mu.Unlock()
	if !ok {
		return oauthd.ErrNotFound
	}
	gap()
	n.mu.Lock()
	delete(n.requests, id)
	n.mu.Unlock()
	return nil
}

// recorder is a testing.TB that records failures instead of reporting
// them: the suite's checks run against a store that must fail them.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	first  string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.failed {
		r.failed, r.first = true, strings.TrimSpace(fmt.Sprintf(format, args...))
	}
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// failure runs check on s with failures recorded, in a goroutine of its
// own (Fatalf ends it), and returns the first failure, or "".
func failure(t *testing.T, check func(testing.TB, oauthd.Storage), s oauthd.Storage) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r, s)
	}()
	<-done
	return r.first
}

// The race tests of the single-use steps catch a store whose step is a
// read followed by a write, with a short wait in between and no data
// race, in all but about one run of the suite in a thousand (the former
// tests, one round of 50 goroutines parked on a channel, let it pass in
// one run in ten to one in two); and pass memstore. Of 20 runs, one may
// miss.
func TestRaceTestsCatchReadThenWrite(t *testing.T) {
	const runs, missable = 20, 1
	for _, tc := range []struct {
		name  string
		check func(testing.TB, oauthd.Storage)
		want  []string // the failure names one of these
	}{
		{"ConsumeAuthCode", codeConsumeRace, []string{"ConsumeAuthCode succeeded in goroutines"}},
		{"RotateRefreshToken", tokenRotateRace, []string{"RotateRefreshToken succeeded in goroutines"}},
		{"RedeemAuthCode", redeemRace, []string{"RedeemAuthCode succeeded in goroutines", "called issue"}},
		{"RotateRefreshTokenFunc", rotateFuncRace, []string{"RotateRefreshTokenFunc succeeded in goroutines", "called rotate"}},
		{"DeleteAuthRequest", authRequestDeleteRace, []string{"DeleteAuthRequest succeeded in goroutines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missed := 0
			for run := range runs {
				got := failure(t, tc.check, newNaiveStore())
				switch {
				case got == "":
					missed++
				case !slices.ContainsFunc(tc.want, func(w string) bool { return strings.Contains(got, w) }):
					t.Errorf("run %d: first failure %q; want one naming %q", run, got, tc.want)
				}
			}
			if missed > missable {
				t.Errorf("a store whose %s is a read and then a write passed %d runs of %d; want at most %d", tc.name, missed, runs, missable)
			}
			if got := failure(t, tc.check, memstore.New()); got != "" {
				t.Errorf("memstore: %s", got)
			}
		})
	}
}
