package oauthd

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// countingClients is a ClientStore that counts its reads.
type countingClients struct {
	ClientStore
	clients map[string]*Client
	reads   int
	fail    error
}

func (s *countingClients) Client(ctx context.Context, id string) (*Client, error) {
	s.reads++
	if s.fail != nil {
		return nil, s.fail
	}
	c, ok := s.clients[id]
	if !ok {
		return nil, ErrNotFound
	}
	return c, nil
}

func TestClientCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	store := &countingClients{clients: map[string]*Client{"a": {ID: "a"}}}
	cc := newClientCache(time.Second, 3)
	cc.now = func() time.Time { return now }

	get := func(id string) (*Client, bool, error) {
		t.Helper()
		return cc.get(ctx, store, id)
	}
	if c, cached, err := get("a"); err != nil || cached || c.ID != "a" || store.reads != 1 {
		t.Fatalf("first get: %v %v %v, %d reads", c, cached, err, store.reads)
	}
	if _, cached, _ := get("a"); !cached || store.reads != 1 {
		t.Errorf("second get within the TTL: cached %v, %d reads; want cached, 1 read", cached, store.reads)
	}
	// A changed client is seen once the TTL is over.
	store.clients["a"] = &Client{ID: "a", Name: "changed"}
	now = now.Add(999 * time.Millisecond)
	if c, _, _ := get("a"); c.Name != "" {
		t.Errorf("within the TTL got %q; want the cached client", c.Name)
	}
	now = now.Add(time.Millisecond)
	if c, cached, _ := get("a"); cached || c.Name != "changed" {
		t.Errorf("after the TTL: cached %v name %q; want a fresh read of the changed client", cached, c.Name)
	}
	// A deleted client is not found once the TTL is over, and stays so.
	delete(store.clients, "a")
	now = now.Add(time.Second)
	if _, _, err := get("a"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted client: %v; want ErrNotFound", err)
	}
	// Unknown clients and errors are never cached.
	reads := store.reads
	get("nobody")
	get("nobody")
	if store.reads != reads+2 {
		t.Errorf("unknown client read %d times; want 2", store.reads-reads)
	}
	store.clients["b"] = &Client{ID: "b"}
	get("b")
	store.fail = errors.New("disk on fire")
	now = now.Add(time.Second)
	if _, _, err := get("b"); err == nil {
		t.Error("store error hidden")
	}
	store.fail = nil
	reads = store.reads
	if _, cached, _ := get("b"); cached || store.reads != reads+1 {
		t.Error("an entry survived a store error")
	}
	// load always reads the store.
	if _, cached, _ := cc.load(ctx, store, "b"); cached || store.reads != reads+2 {
		t.Error("load did not read the store")
	}
	// The cache holds at most max entries.
	for i := range 10 {
		id := fmt.Sprint("c", i)
		store.clients[id] = &Client{ID: id}
		get(id)
	}
	if n := len(cc.entries); n > 3 {
		t.Errorf("%d entries; want at most 3", n)
	}
}

func TestClientCacheOff(t *testing.T) {
	store := &countingClients{clients: map[string]*Client{"a": {ID: "a"}}}
	cc := newClientCache(-1, 0)
	for range 3 {
		if _, cached, err := cc.get(context.Background(), store, "a"); cached || err != nil {
			t.Fatal(cached, err)
		}
	}
	if store.reads != 3 || len(cc.entries) != 0 {
		t.Errorf("%d reads, %d entries; want 3 and 0", store.reads, len(cc.entries))
	}
}

// blockingClients is a ClientStore whose reads wait for release.
type blockingClients struct {
	countingClients
	mu      sync.Mutex
	release chan struct{}
}

func (s *blockingClients) Client(ctx context.Context, id string) (*Client, error) {
	<-s.release
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countingClients.Client(ctx, id)
}

// When an entry expires under load, one request reads the store and the
// others wait for its answer.
func TestClientCacheSharesLoads(t *testing.T) {
	store := &blockingClients{countingClients: countingClients{clients: map[string]*Client{"a": {ID: "a"}}}, release: make(chan struct{})}
	cc := newClientCache(time.Second, 0)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if c, _, err := cc.get(context.Background(), store, "a"); err != nil || c.ID != "a" {
				t.Errorf("get: %v %v", c, err)
			}
		})
	}
	waitLoading(cc)
	time.Sleep(10 * time.Millisecond) // let the others reach the wait
	close(store.release)
	wg.Wait()
	if store.reads != 1 {
		t.Errorf("%d store reads for 20 concurrent gets; want 1", store.reads)
	}
	// Once the entry expires, the requests that come while one of them
	// reads the store again get the expired entry (for one more ttl).
	now := time.Now().Add(1500 * time.Millisecond)
	cc.now = func() time.Time { return now }
	store.release = make(chan struct{})
	store.clients["a"] = &Client{ID: "a", Name: "changed"}
	reloaded := make(chan *Client)
	go func() {
		c, _, _ := cc.get(context.Background(), store, "a")
		reloaded <- c
	}()
	waitLoading(cc)
	if c, cached, err := cc.get(context.Background(), store, "a"); err != nil || !cached || c.Name != "" {
		t.Errorf("during the reload: %+v cached %v err %v; want the expired entry", c, cached, err)
	}
	close(store.release)
	if c := <-reloaded; c.Name != "changed" {
		t.Errorf("the reload got %+v", c)
	}
	if c, _, _ := cc.get(context.Background(), store, "a"); c.Name != "changed" {
		t.Errorf("after the reload: %+v", c)
	}
}

// getKeyed gives the client with its rate limit key, from the cache or the
// store, with or without caching, and no client for an unknown id.
func TestClientCacheGetKeyed(t *testing.T) {
	long := string(make([]byte, 100)) // hashed into the key
	store := &countingClients{clients: map[string]*Client{"a": {ID: "a"}, long: {ID: long}}}
	for _, ttl := range []time.Duration{time.Minute, 0} {
		cc := newClientCache(ttl, 3)
		for range 2 { // a read of the store, then (with a TTL) the cache
			for _, id := range []string{"a", long} {
				c, key, err := cc.getKeyed(context.Background(), store, id)
				if err != nil || c.ID != id || key != limitKey("client", id) || key != clientLimitKey(id) {
					t.Errorf("ttl %v: getKeyed(%.8q) = %v, %q, %v", ttl, id, c, key, err)
				}
			}
		}
		if c, key, err := cc.getKeyed(context.Background(), store, "nobody"); c != nil || key != "" || !errors.Is(err, ErrNotFound) {
			t.Errorf("ttl %v: unknown client: %v, %q, %v", ttl, c, key, err)
		}
	}
}

// Past one more ttl, the expired entry no longer stands while the store is
// read again (a database slow to answer): the requests wait for the read,
// and a changed client (a rotated secret) is what they get.
func TestClientCacheStaleEntryBounded(t *testing.T) {
	store := &blockingClients{countingClients: countingClients{clients: map[string]*Client{"a": {ID: "a"}}}, release: make(chan struct{})}
	close(store.release)
	cc := newClientCache(time.Second, 0)
	if _, _, err := cc.get(context.Background(), store, "a"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().Add(2500 * time.Millisecond)
	cc.now = func() time.Time { return now }
	store.release = make(chan struct{})
	store.clients["a"] = &Client{ID: "a", Name: "changed"}
	go cc.get(context.Background(), store, "a") // the read, held by the store
	waitLoading(cc)
	got := make(chan *Client, 1)
	go func() {
		c, _, _ := cc.get(context.Background(), store, "a")
		got <- c
	}()
	select {
	case c := <-got:
		t.Fatalf("during a slow read, 1.5 s past the entry's expiry: %+v; want the request to wait for the read", c)
	case <-time.After(50 * time.Millisecond):
	}
	close(store.release)
	if c := <-got; c.Name != "changed" {
		t.Errorf("after the read: %+v; want the changed client", c)
	}
}

// snapshotClients answers with the client as it was when the read began,
// after release: a read that a slow database answers late.
type snapshotClients struct {
	ClientStore
	c       *Client
	started chan struct{}
	release chan struct{}
}

func (s *snapshotClients) Client(ctx context.Context, id string) (*Client, error) {
	c := s.c
	close(s.started)
	<-s.release
	return c, nil
}

// An entry's ttl runs from the start of its read: a client read just
// before its secret was rotated, by a read the database answered 5 s
// later, had been used for a ttl after that.
func TestClientCacheTTLFromReadStart(t *testing.T) {
	t0 := time.Now()
	var mu sync.Mutex
	now := t0
	cc := newClientCache(time.Second, 0)
	cc.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(v time.Time) { mu.Lock(); now = v; mu.Unlock() }
	store := &snapshotClients{c: &Client{ID: "a", Name: "old"}, started: make(chan struct{}), release: make(chan struct{})}
	done := make(chan struct{})
	go func() { cc.get(context.Background(), store, "a"); close(done) }()
	<-store.started
	setNow(t0.Add(5 * time.Second)) // the read is answered 5 s after it began
	close(store.release)
	<-done
	cc.mu.RLock()
	e, ok := cc.entries["a"]
	cc.mu.RUnlock()
	if ok && e.expires.After(t0.Add(time.Second)) {
		t.Errorf("the entry of a read begun at t0 expires at t0+%v; want t0+1s at the latest", e.expires.Sub(t0))
	}
}

// waitLoading returns once a read of the store is in progress in cc.
func waitLoading(cc *clientCache) {
	for {
		cc.mu.RLock()
		n := len(cc.loads)
		cc.mu.RUnlock()
		if n == 1 {
			return
		}
		runtime.Gosched()
	}
}
