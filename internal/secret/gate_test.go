package secret

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitingIs waits until g has n live waiters.
func waitingIs(t *testing.T, g *gate, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		w := g.waiting
		g.mu.Unlock()
		if w == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters; want %d", w, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// busyGate returns a gate of one slot, already held (so every check
// queues), with the given bounds, and a log of the checks started on it,
// each of which gives its slot back as soon as it gets it.
func busyGate(t *testing.T, maxWaiting, perKey int) (*gate, *grantLog, *sync.WaitGroup, chan struct{}) {
	t.Helper()
	g := newGate(1, maxWaiting, perKey)
	if err := g.acquire(context.Background(), "x", true); err != nil {
		t.Fatal(err)
	}
	hold := make(chan struct{})
	close(hold)
	return g, &grantLog{errs: map[string]error{}}, &sync.WaitGroup{}, hold
}

// queued starts a check of key that waits on g and reports on got, in the
// order the slots are handed out, its name (or its error).
type grantLog struct {
	mu    sync.Mutex
	order []string
	errs  map[string]error
}

func (l *grantLog) start(t *testing.T, g *gate, ctx context.Context, name, key string, bounded bool, hold chan struct{}, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := g.acquire(ctx, key, bounded)
		l.mu.Lock()
		if err != nil {
			l.errs[name] = err
			l.mu.Unlock()
			return
		}
		l.order = append(l.order, name)
		l.mu.Unlock()
		<-hold
		g.release()
	}()
}

// TestGateTakesKeysInTurn: one network's many queued checks delay another
// network's one by a turn, not by all of them.
func TestGateTakesKeysInTurn(t *testing.T) {
	g, l, wg, hold := busyGate(t, 100, 10)
	for i, name := range []string{"a1", "a2", "a3", "a4"} {
		l.start(t, g, context.Background(), name, "a", true, hold, wg)
		waitingIs(t, g, i+1)
	}
	l.start(t, g, context.Background(), "b1", "b", true, hold, wg)
	waitingIs(t, g, 5)
	g.release()
	wg.Wait()
	want := []string{"a1", "b1", "a2", "a3", "a4"}
	if len(l.order) != len(want) {
		t.Fatalf("granted %v; want %v", l.order, want)
	}
	for i := range want {
		if l.order[i] != want[i] {
			t.Fatalf("granted %v; want %v (keys in turn)", l.order, want)
		}
	}
	if g.free != 1 || g.waiting != 0 || len(g.ring) != 0 || len(g.queues) != 0 || len(g.live) != 0 {
		t.Errorf("gate not back to idle: free %d waiting %d ring %v", g.free, g.waiting, g.ring)
	}
}

// TestGateBounded: a key may queue perKey checks and the queue maxWaiting;
// a full queue makes room for a key that has none by refusing the last
// waiter of the key with the most; checks without a key are never refused.
func TestGateBounded(t *testing.T) {
	g, l, wg, hold := busyGate(t, 4, 2)
	l.start(t, g, context.Background(), "a1", "a", true, hold, wg)
	waitingIs(t, g, 1)
	l.start(t, g, context.Background(), "a2", "a", true, hold, wg)
	waitingIs(t, g, 2)
	if err := g.acquire(context.Background(), "a", true); !errors.Is(err, ErrBusy) {
		t.Fatalf("a third check of one key: %v; want ErrBusy (per-key bound)", err)
	}
	l.start(t, g, context.Background(), "b1", "b", true, hold, wg)
	waitingIs(t, g, 3)
	l.start(t, g, context.Background(), "c1", "c", true, hold, wg)
	waitingIs(t, g, 4)
	// Full. A new key takes the place of a2, the last of the key with the most.
	l.start(t, g, context.Background(), "d1", "d", true, hold, wg)
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		err, ok := l.errs["a2"]
		l.mu.Unlock()
		if ok {
			if !errors.Is(err, ErrBusy) {
				t.Errorf("a2: %v; want ErrBusy (evicted for a new key)", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a2 was not refused to make room for d1")
		}
		time.Sleep(time.Millisecond)
	}
	waitingIs(t, g, 4)
	// Full, and every key has one: a new key is refused.
	if err := g.acquire(context.Background(), "e", true); !errors.Is(err, ErrBusy) {
		t.Fatalf("a new key with every key at one waiter: %v; want ErrBusy", err)
	}
	// A check without a key (the CLI's) waits however full the queue.
	l.start(t, g, context.Background(), "cli", "", false, hold, wg)
	waitingIs(t, g, 5)
	g.release()
	wg.Wait()
	if got := len(l.order); got != 5 {
		t.Errorf("granted %v; want a1, b1, c1, d1 and cli", l.order)
	}
}

// TestGateAbandoned: a check whose client went away leaves the queue and
// never runs; the slot goes to the next.
func TestGateAbandoned(t *testing.T) {
	g, l, wg, hold := busyGate(t, 10, 10)
	ctx, cancel := context.WithCancel(context.Background())
	l.start(t, g, ctx, "gone", "a", true, hold, wg)
	waitingIs(t, g, 1)
	l.start(t, g, context.Background(), "next", "a", true, hold, wg)
	waitingIs(t, g, 2)
	cancel()
	waitingIs(t, g, 1)
	g.release()
	wg.Wait()
	if len(l.order) != 1 || l.order[0] != "next" || !errors.Is(l.errs["gone"], context.Canceled) {
		t.Errorf("granted %v, errors %v; want only next, and gone canceled", l.order, l.errs)
	}
	if err := g.acquire(ctx, "a", true); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire with an ended context: %v; want context.Canceled", err)
	}
}

// TestVerifyContextEnded: a check for a client that went away does not run
// the KDF.
func TestVerifyContextEnded(t *testing.T) {
	h, _ := HashWith("s", fast)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := KDFRuns()
	if ok, err := VerifyContext(ctx, "k", h, "s"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyContext: %v %v; want false, context.Canceled", ok, err)
	}
	if err := VerifyDummyContext(ctx, "k", "s"); !errors.Is(err, context.Canceled) {
		t.Errorf("VerifyDummyContext: %v; want context.Canceled", err)
	}
	c := NewCache(4)
	if ok, err := c.VerifyContext(ctx, "k", "id", h, "s"); ok || !errors.Is(err, context.Canceled) {
		t.Errorf("Cache.VerifyContext: %v %v; want false, context.Canceled", ok, err)
	}
	if KDFRuns() != before {
		t.Errorf("the KDF ran %d times for clients that were gone", KDFRuns()-before)
	}
	if ok, err := VerifyContext(context.Background(), "k", h, "s"); !ok || err != nil {
		t.Errorf("VerifyContext(right secret) = %v %v", ok, err)
	}
	if ok, err := c.VerifyContext(context.Background(), "k", "id", h, "s"); !ok || err != nil || c.Len() != 1 {
		t.Errorf("Cache.VerifyContext(right secret) = %v %v, %d cached", ok, err, c.Len())
	}
}

// TestCacheFlightLeaderGone: when the request running a shared check goes
// away before the KDF ran, a request waiting on it runs the check itself
// rather than take the other's cancellation as its answer.
func TestCacheFlightLeaderGone(t *testing.T) {
	h, _ := HashWith("s", fast)
	started, release := make(chan struct{}, 4), make(chan struct{})
	var calls int
	var mu sync.Mutex
	verifyFn = func(ctx context.Context, key string, bounded bool, hash, s string) (bool, error) {
		mu.Lock()
		calls++
		first := calls == 1
		mu.Unlock()
		if first {
			started <- struct{}{}
			<-release
			return false, context.Canceled // its client went away while it waited
		}
		return verifyIn(ctx, key, bounded, hash, s)
	}
	defer func() { verifyFn = verifyIn }()
	c := NewCache(4)
	go c.VerifyContext(context.Background(), "k", "id", h, "s")
	<-started
	done := make(chan bool)
	go func() {
		ok, err := c.VerifyContext(context.Background(), "k", "id", h, "s")
		done <- ok && err == nil
	}()
	time.Sleep(20 * time.Millisecond) // the second waits on the first's flight
	close(release)
	if !<-done {
		t.Error("the waiting check took the gone leader's cancellation as its answer")
	}
}

// TestGateNeverEvictsUnbounded: a check without a key (the library's
// HashSecret, Verify) is never refused to make room, however full the
// queue, and the slots stay as many as the gate has.
func TestGateNeverEvictsUnbounded(t *testing.T) {
	g, l, wg, hold := busyGate(t, 2, 2)
	l.start(t, g, context.Background(), "u1", "", false, hold, wg)
	waitingIs(t, g, 1)
	l.start(t, g, context.Background(), "u2", "", false, hold, wg)
	waitingIs(t, g, 2)
	if err := g.acquire(context.Background(), "new", true); !errors.Is(err, ErrBusy) {
		t.Errorf("a new key with the queue full of keyless checks: %v; want ErrBusy, not an eviction", err)
	}
	g.release()
	wg.Wait()
	if len(l.order) != 2 || len(l.errs) != 0 {
		t.Errorf("granted %v, errors %v; want both keyless checks run", l.order, l.errs)
	}
	if g.free != 1 {
		t.Errorf("%d free slots after all released; want 1", g.free)
	}
}

// TestGateForgetsKeys: a key whose waiters were all served, withdrawn or
// evicted leaves nothing behind (a flood of networks must not grow the
// gate's maps).
func TestGateForgetsKeys(t *testing.T) {
	g, l, wg, hold := busyGate(t, 10, 10)
	l.start(t, g, context.Background(), "k1", "k", true, hold, wg)
	waitingIs(t, g, 1)
	ctx, cancel := context.WithCancel(context.Background())
	l.start(t, g, ctx, "k2", "k", true, hold, wg)
	waitingIs(t, g, 2)
	cancel()
	waitingIs(t, g, 1)
	g.release()
	wg.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.queues) != 0 || len(g.live) != 0 || len(g.ring) != 0 || g.waiting != 0 || g.free != 1 {
		t.Errorf("gate after every waiter left: queues %v live %v ring %v waiting %d free %d; want empty", g.queues, g.live, g.ring, g.waiting, g.free)
	}
}
