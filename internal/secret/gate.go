package secret

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrBusy means a check was not run because too many were already waiting
// for the KDF: the caller answers "busy, try again" at once rather than
// keep the person waiting behind minutes of other work.
var ErrBusy = errors.New("secret: too many password and secret checks waiting")

// A gate hands out the KDF slots: at most slots computations run at once
// (each argon2id run holds Params.Memory, and one per CPU already uses every
// CPU). Callers that find every slot taken wait in a queue that is
//
//   - fair: the waiters are grouped by a key (the client's network), and a
//     freed slot goes to the keys in turn, so a network that queues a
//     thousand checks delays another network's one by one turn, not by a
//     thousand checks;
//   - bounded: at most maxWaiting wait in all, at most perKey of one key;
//     beyond that a check is refused with ErrBusy at once (when the queue is
//     full, a key with no waiter yet takes the place of the last waiter of
//     the key with the most, so a flood from a few networks cannot keep
//     others out);
//   - abandoned with its caller: a check whose context ends while it waits
//     (the client hung up) leaves the queue and never runs.
//
// Checks without a key (the CLI's hashing, the library's context-free
// Verify) wait in turn with the others but are never refused.
type gate struct {
	mu         sync.Mutex
	free       int // slots not held
	maxWaiting int
	perKey     int
	waiting    int                  // live waiters, all keys
	queues     map[string][]*waiter // FIFO per key (may hold removed waiters)
	live       map[string]int       // live waiters per key
	ring       []string             // keys with live waiters, in turn order
}

// A waiter is one check waiting for a slot. Its fields are guarded by
// gate.mu.
type waiter struct {
	ready   chan struct{} // closed when the slot is handed over or the waiter is evicted
	granted bool          // the slot is this waiter's
	evicted bool          // removed to make room: answer ErrBusy
	gone    bool          // no longer in the queue (granted, evicted or withdrawn)
	bounded bool          // may be refused (a check without a key never is)
}

func newGate(slots, maxWaiting, perKey int) *gate {
	return &gate{free: slots, maxWaiting: maxWaiting, perKey: perKey, queues: map[string][]*waiter{}, live: map[string]int{}}
}

// kdf is the process's gate: one slot per CPU; up to 64 checks waiting per
// CPU, at least 128 (a few seconds of argon2id work), half of them at most
// from any one key (a network behind one address, such as a company's NAT
// or a load test on loopback, may sign many people in at once).
var kdf atomic.Pointer[gate]

func init() {
	waiting := max(128, 64*runtime.GOMAXPROCS(0))
	kdf.Store(newGate(runtime.GOMAXPROCS(0), waiting, waiting/2))
}

// acquire takes a slot for a check of key, waiting if need be. bounded
// checks may be refused with ErrBusy; every check returns ctx's error if
// ctx ends before it gets a slot. A nil error means the caller holds a slot
// and must release it.
func (g *gate) acquire(ctx context.Context, key string, bounded bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	if g.free > 0 && g.waiting == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	if bounded {
		if g.live[key] >= g.perKey {
			g.mu.Unlock()
			return ErrBusy
		}
		if g.waiting >= g.maxWaiting && !g.evictFor(key) {
			g.mu.Unlock()
			return ErrBusy
		}
	}
	w := &waiter{ready: make(chan struct{}), bounded: bounded}
	g.enqueue(key, w)
	g.mu.Unlock()

	select {
	case <-w.ready:
	case <-ctx.Done():
		g.mu.Lock()
		if w.granted {
			// The slot came as the context ended: pass it on.
			g.mu.Unlock()
			g.release()
			return ctx.Err()
		}
		if !w.gone {
			g.remove(key, w)
		}
		g.mu.Unlock()
		return ctx.Err()
	}
	g.mu.Lock()
	granted := w.granted
	g.mu.Unlock()
	if !granted {
		return ErrBusy
	}
	return nil
}

// release gives a slot back: to the next waiter in turn, if any.
func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for len(g.ring) > 0 {
		key := g.ring[0]
		g.ring = g.ring[1:]
		w := g.popLive(key)
		if w == nil {
			continue
		}
		if g.live[key] > 0 {
			g.ring = append(g.ring, key) // its next waiter waits for the next turn
		}
		w.granted = true
		close(w.ready)
		return
	}
	g.free++
}

// enqueue adds w at the end of key's queue; a key without live waiters
// joins the end of the ring. g.mu is held.
func (g *gate) enqueue(key string, w *waiter) {
	if g.live[key] == 0 {
		g.ring = append(g.ring, key)
	}
	g.queues[key] = append(g.queues[key], w)
	g.live[key]++
	g.waiting++
}

// popLive removes and returns the first live waiter of key (nil if none),
// dropping removed ones on the way. g.mu is held.
func (g *gate) popLive(key string) *waiter {
	q := g.queues[key]
	for len(q) > 0 {
		w := q[0]
		q[0] = nil
		q = q[1:]
		if !w.gone {
			w.gone = true
			g.countOut(key)
			if g.live[key] == 0 {
				q = nil // what is left was withdrawn or evicted
			}
			g.setQueue(key, q)
			return w
		}
	}
	g.setQueue(key, q)
	return nil
}

// remove takes w out of key's queue (withdrawn or evicted). g.mu is held.
func (g *gate) remove(key string, w *waiter) {
	w.gone = true
	g.countOut(key)
	if g.live[key] == 0 {
		g.setQueue(key, nil)
		for i, k := range g.ring {
			if k == key {
				g.ring = append(g.ring[:i], g.ring[i+1:]...)
				break
			}
		}
	}
}

func (g *gate) countOut(key string) {
	g.waiting--
	if g.live[key]--; g.live[key] == 0 {
		delete(g.live, key)
	}
}

func (g *gate) setQueue(key string, q []*waiter) {
	if len(q) == 0 {
		delete(g.queues, key)
		return
	}
	g.queues[key] = q
}

// evictFor makes room in a full queue for a waiter of key: if key has no
// waiter yet, the last refusable waiter of the key with the most (at least
// two) is refused. It reports whether there is room now. g.mu is held.
func (g *gate) evictFor(key string) bool {
	if g.live[key] > 0 {
		return false
	}
	var top string
	most := 1
	for k, n := range g.live {
		if n > most && k != "" {
			top, most = k, n
		}
	}
	if most < 2 {
		return false
	}
	q := g.queues[top]
	for i := len(q) - 1; i >= 0; i-- {
		if w := q[i]; !w.gone && w.bounded {
			w.evicted = true
			g.remove(top, w)
			close(w.ready)
			return true
		}
	}
	return false
}
