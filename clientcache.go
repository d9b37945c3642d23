package oauthd

import (
	"context"
	"errors"
	"sync"
	"time"
)

// clientCache keeps clients read from the store for a short time, so that
// the token, introspection and revocation endpoints, which authenticate a
// client on every request, do not read and decode it from the store every
// time. Only clients that exist are kept (an unknown client_id is looked up
// every time, so a new client works at once and nobody can fill the cache
// with names that do not exist); an entry is used for at most ttl (and,
// past it, while one request reads the client again, up to another ttl),
// so a client deleted
// or changed in the store, by `oauthd client` or by another node, stops
// working with its old settings within ttl and a store read. A client whose
// authentication fails is looked up again before the failure is answered
// (see authenticateClient), so a new secret works at once.
//
// The cached *Client is shared by concurrent requests: like every Client
// the engine gets from the store, it is never modified.
type clientCache struct {
	ttl time.Duration // <= 0: no caching
	max int
	now func() time.Time // the wall clock; tests replace it

	mu      sync.RWMutex
	entries map[string]clientEntry
	loads   map[string]*clientLoad // reads of the store in progress
}

// clientLoad is a read of one client from the store that concurrent
// requests share: when an entry expires under load, one request reads the
// store while the others keep using the expired entry (or, when there was
// none, wait for the read), rather than all reading at once.
type clientLoad struct {
	done chan struct{}
	c    *Client
	err  error
}

type clientEntry struct {
	c       *Client
	expires time.Time
	key     string // the client's rate limit key, limitKey("client", id)
}

func newClientCache(ttl time.Duration, max int) *clientCache {
	if max <= 0 {
		max = 1024
	}
	return &clientCache{ttl: ttl, max: max, now: time.Now, entries: make(map[string]clientEntry), loads: make(map[string]*clientLoad)}
}

// get returns the client from the cache when it was read less than ttl ago,
// else from the store; cached reports which.
func (cc *clientCache) get(ctx context.Context, store ClientStore, id string) (c *Client, cached bool, err error) {
	if cc.ttl <= 0 {
		c, err = found(store.Client(ctx, id))
		return c, false, err
	}
	now := cc.now()
	cc.mu.RLock()
	e, ok := cc.entries[id]
	cc.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.c, true, nil
	}
	cc.mu.Lock()
	if l, loading := cc.loads[id]; loading {
		cc.mu.Unlock()
		if ok && now.Before(e.expires.Add(cc.ttl)) {
			// Another request is reading the client again: until it
			// has, the entry that just expired stands, for one more
			// ttl at most. Past that (a database slow to answer), the
			// request waits for the read: a secret rotated or a client
			// deleted in the store must not keep working for as long
			// as the database is slow.
			return e.c, true, nil
		}
		select {
		case <-l.done:
			if l.err != nil && ctx.Err() == nil && isContextErr(l.err) {
				// The reading request ended, not the store: this one
				// reads for itself rather than fail with another's
				// cancellation.
				c, _, err = cc.load(ctx, store, id)
				return c, false, err
			}
			return l.c, false, l.err
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	l := &clientLoad{done: make(chan struct{})}
	cc.loads[id] = l
	cc.mu.Unlock()
	l.c, _, l.err = cc.load(ctx, store, id)
	cc.mu.Lock()
	delete(cc.loads, id)
	cc.mu.Unlock()
	close(l.done)
	return l.c, false, l.err
}

// getKeyed is get for a client that authenticates without an attempt (see
// knownClient), with its rate limit key, made once per cache entry rather
// than on every request.
func (cc *clientCache) getKeyed(ctx context.Context, store ClientStore, id string) (c *Client, key string, err error) {
	if cc.ttl > 0 {
		now := cc.now()
		cc.mu.RLock()
		e, ok := cc.entries[id]
		cc.mu.RUnlock()
		if ok && now.Before(e.expires) {
			return e.c, e.key, nil
		}
	}
	c, _, err = cc.get(ctx, store, id)
	if err != nil {
		return nil, "", err
	}
	return c, clientLimitKey(id), nil
}

// load reads the client from the store and caches it; a client that is
// not found (or an error) drops the entry.
func (cc *clientCache) load(ctx context.Context, store ClientStore, id string) (*Client, bool, error) {
	// The entry's ttl runs from the start of the read: a read that a slow
	// store answered late is no newer than when it began.
	start := cc.now()
	c, err := found(store.Client(ctx, id))
	if cc.ttl <= 0 {
		return c, false, err
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if err != nil {
		if !isContextErr(err) { // a request that went away says nothing of the client
			delete(cc.entries, id)
		}
		return nil, false, err
	}
	if _, ok := cc.entries[id]; !ok && len(cc.entries) >= cc.max {
		now := cc.now()
		for k, e := range cc.entries { // drop the expired, or else one at random
			if !now.Before(e.expires) {
				delete(cc.entries, k)
			}
		}
		if len(cc.entries) >= cc.max {
			for k := range cc.entries {
				delete(cc.entries, k)
				break
			}
		}
	}
	cc.entries[id] = clientEntry{c: c, expires: start.Add(cc.ttl), key: clientLimitKey(id)}
	return c, false, nil
}

// isContextErr reports whether err is the end of the caller's context
// (canceled, or past the caller's deadline) rather than the store's answer
// (a store that gave up on its database says ErrUnavailable).
func isContextErr(err error) bool {
	return (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && !errors.Is(err, ErrUnavailable)
}
