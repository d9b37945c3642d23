package sqlitestore

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthd/oauthd"
)

// DefaultCacheSize is how many tokens (and a quarter as many users) the read
// cache of a Store keeps when Options.CacheSize is zero.
const DefaultCacheSize = 4096

// readCache keeps tokens and users read from the database, so that the
// lookups of every introspection, userinfo and revocation request do not
// each cost a read transaction and a row decode.
//
// A cached record is never staler than the database as this process sees
// it: every write of this Store that removes or changes a token or a user
// drops the records it touches after its commit and before it returns, and
// a record read from the database is cached only if no such write committed
// meanwhile (gen). Writes of other processes on the same file (the oauthd
// CLI, another server) are seen through PRAGMA data_version on the writer's
// connection, which the writer checks every foreignCheckInterval, between
// its transactions: any commit it did not make empties the cache. The
// writer may be held up (a transaction waiting for the write lock another
// process holds, a slow fsync), so the cache answers only while its last
// check is recent (stale): past that, lookups read the database, which
// has every commit. Misses are never cached, so a new token or user is
// found at once.
type readCache struct {
	// stale is set when the writer's last successful check of other
	// processes' commits is more than staleAfter old (and before the
	// first): the cache does not answer then. staleTimer sets it.
	stale      atomic.Bool
	staleTimer *time.Timer

	mu       sync.RWMutex
	gen      uint64 // bumped by every invalidation
	tokens   map[string]*oauthd.Token
	users    map[string]*oauthd.User
	maxToks  int
	maxUsers int
}

// newReadCache returns a cache of at most size tokens and size/4 users, or
// nil (no caching) when size is negative.
func newReadCache(size int) *readCache {
	if size < 0 {
		return nil
	}
	if size == 0 {
		size = DefaultCacheSize
	}
	c := &readCache{
		tokens:   make(map[string]*oauthd.Token),
		users:    make(map[string]*oauthd.User),
		maxToks:  size,
		maxUsers: max(1, size/4),
	}
	c.stale.Store(true) // until the writer's first check
	return c
}

// generation returns the invalidation count, read before a database lookup
// whose result may be cached.
func (c *readCache) generation() uint64 {
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

func (c *readCache) token(hash string) (*oauthd.Token, bool) {
	if c == nil {
		return nil, false
	}
	return cacheGet(c, c.tokens, hash, cloneToken)
}

// putToken caches t, read when the generation was gen, unless an
// invalidation happened since.
func (c *readCache) putToken(gen uint64, t *oauthd.Token) {
	if c != nil {
		cachePut(c, c.tokens, c.maxToks, gen, t.Hash, cloneToken(t))
	}
}

func (c *readCache) user(id string) (*oauthd.User, bool) {
	if c == nil {
		return nil, false
	}
	return cacheGet(c, c.users, id, cloneUser)
}

// putUser caches u, read when the generation was gen, unless an
// invalidation happened since.
func (c *readCache) putUser(gen uint64, u *oauthd.User) {
	if c != nil {
		cachePut(c, c.users, c.maxUsers, gen, u.ID, cloneUser(u))
	}
}

// staleAfter is how long after the writer's last check of other
// processes' commits the cache still answers: a few of its intervals, so
// that a check due but late on a loaded machine does not empty the cache's
// use, while a writer held up for longer (waiting for another process's
// write lock, up to the busy timeout) does not leave another process's
// revocation unseen.
const staleAfter = 3 * foreignCheckInterval

// epoch is the origin of monotonic.
var epoch = time.Now()

// monotonic returns the time since epoch on the monotonic clock.
func monotonic() time.Duration { return time.Since(epoch) }

// checked records that a check of other processes' commits found none the
// cache has not been emptied of: the cache answers for staleAfter more
// (a timer, so that a lookup reads a flag rather than the clock). It is
// called by one goroutine at a time (the writer's).
func (c *readCache) checked() {
	c.stale.Store(false)
	if c.staleTimer == nil {
		c.staleTimer = time.AfterFunc(staleAfter, func() { c.stale.Store(true) })
		return
	}
	c.staleTimer.Reset(staleAfter)
}

// stop stops the timer of checked.
func (c *readCache) stop() {
	if c != nil && c.staleTimer != nil {
		c.staleTimer.Stop()
	}
}

// cacheGet returns a copy of the entry of m with the key, unless the cache
// is stale.
func cacheGet[V any](c *readCache, m map[string]V, key string, clone func(V) V) (V, bool) {
	if c.stale.Load() {
		var zero V
		return zero, false
	}
	c.mu.RLock()
	v, ok := m[key]
	c.mu.RUnlock()
	if !ok {
		return v, false
	}
	return clone(v), true
}

// cachePut stores v, a copy read when the generation was gen, in m (of at
// most size entries) unless an invalidation happened since.
func cachePut[V any](c *readCache, m map[string]V, size int, gen uint64, key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(m) >= size {
		evictOne(m)
	}
	m[key] = v
}

// evictOne drops an arbitrary entry (map iteration starts at a random
// place): cheap, and good enough for a cache of hot records.
func evictOne[V any](m map[string]V) {
	for k := range m {
		delete(m, k)
		return
	}
}

// dropTokens forgets the tokens for which match is true.
func (c *readCache) dropTokens(match func(*oauthd.Token) bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	maps.DeleteFunc(c.tokens, func(_ string, t *oauthd.Token) bool { return match(t) })
}

// dropToken forgets the token with the hash.
func (c *readCache) dropToken(hash string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.tokens, hash)
}

// dropUser forgets the user with the ID.
func (c *readCache) dropUser(id string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.users, id)
}

// clear forgets everything.
func (c *readCache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	clear(c.tokens)
	clear(c.users)
}

// cloneToken copies t, so that neither the cache nor its callers see the
// other's changes.
func cloneToken(t *oauthd.Token) *oauthd.Token {
	c := *t
	c.Scopes = slices.Clone(t.Scopes)
	c.Successor = slices.Clone(t.Successor)
	return &c
}

func cloneUser(u *oauthd.User) *oauthd.User {
	c := *u
	if u.Claims != nil {
		c.Claims = cloneValue(u.Claims).(map[string]any)
	}
	return &c
}

// cloneValue deep-copies a value decoded from JSON.
func cloneValue(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(v))
		for k, e := range v {
			m[k] = cloneValue(e)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, e := range v {
			s[i] = cloneValue(e)
		}
		return s
	default:
		return v
	}
}
