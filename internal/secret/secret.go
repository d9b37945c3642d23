// Package secret hashes and verifies client secrets and user passwords with
// a slow KDF (argon2id; bcrypt hashes are verified too), and keeps a small
// cache of recently verified secrets so the token endpoint pays the KDF once
// per client secret rather than once per request.
package secret

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
)

// Params are argon2id parameters. The defaults follow the OWASP password
// storage guidance (19 MiB, 2 iterations, 1 lane).
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultParams are used by Hash.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// ErrMalformed means a stored hash is not in a format this package knows.
var ErrMalformed = errors.New("secret: malformed hash")

// kdfRuns counts the KDF computations of the process.
var kdfRuns atomic.Uint64

// KDFRuns reports how many times the slow KDF (argon2id or bcrypt) has
// run in this process. Tests use it to check, by counting work rather than
// timing it, that rejecting an unknown user or client runs the KDF exactly
// as often as rejecting a wrong password or secret.
func KDFRuns() uint64 { return kdfRuns.Load() }

// Hash returns the argon2id hash of s in the PHC string format
// ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
func Hash(s string) (string, error) { return HashWith(s, DefaultParams) }

// HashWith is Hash with explicit parameters.
func HashWith(s string, p Params) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("secret: %w", err)
	}
	g := kdf.Load()
	if err := g.acquire(context.Background(), "", false); err != nil {
		return "", fmt.Errorf("secret: %w", err) // not for a check without a key: never
	}
	kdfRuns.Add(1)
	key := argon2.IDKey([]byte(s), salt, p.Time, p.Memory, p.Threads, 32)
	g.release()
	releaseSoon()
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether s matches the hash, in constant time with respect
// to s. An empty or malformed hash never matches. It waits for a KDF slot
// as long as it takes; servers use VerifyContext.
func Verify(hash, s string) bool {
	ok, _ := verifyIn(context.Background(), "", false, hash, s)
	return ok
}

// VerifyContext is Verify for a request: the check waits for a KDF slot in
// turn with the other checks of its key (the client's network; see gate),
// and is not run, with ctx's error, if ctx ends first (the client hung up),
// or with ErrBusy if too many checks are waiting already.
func VerifyContext(ctx context.Context, key, hash, s string) (bool, error) {
	return verifyIn(ctx, key, true, hash, s)
}

func verifyIn(ctx context.Context, key string, bounded bool, hash, s string) (bool, error) {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		p, salt, want, err := parseArgon2(hash)
		if err != nil {
			return false, nil
		}
		g := kdf.Load()
		if err := g.acquire(ctx, key, bounded); err != nil {
			return false, err
		}
		kdfRuns.Add(1)
		got := argon2.IDKey([]byte(s), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
		g.release()
		releaseSoon()
		return subtle.ConstantTimeCompare(got, want) == 1, nil
	case strings.HasPrefix(hash, "$2a$"), strings.HasPrefix(hash, "$2b$"), strings.HasPrefix(hash, "$2y$"):
		if !wellFormedBcrypt(hash) {
			return false, nil
		}
		g := kdf.Load()
		if err := g.acquire(ctx, key, bounded); err != nil {
			return false, err
		}
		kdfRuns.Add(1)
		err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(s))
		g.release()
		return err == nil, nil
	}
	return false, nil
}

// maxBcryptCost is the highest bcrypt cost Verify runs: 2^16 rounds take
// some seconds, 64 times the default cost's. x/crypto/bcrypt accepts costs
// up to 31, whose one run takes a day: a stored hash of such a cost (or a
// malformed one it reads so) would hold a KDF slot for hours at every
// sign-in of its user, and every other password and secret check waits
// for a slot.
const maxBcryptCost = 16

// wellFormedBcrypt reports whether hash is "$2a$", "$2b$" or "$2y$", a
// two-digit cost from bcrypt.MinCost to maxBcryptCost, "$", and the 53
// characters of bcrypt's base64 (salt and hash).
func wellFormedBcrypt(hash string) bool {
	if len(hash) != 60 || hash[6] != '$' || hash[4] < '0' || hash[4] > '9' || hash[5] < '0' || hash[5] > '9' {
		return false
	}
	if cost := int(hash[4]-'0')*10 + int(hash[5]-'0'); cost < bcrypt.MinCost || cost > maxBcryptCost {
		return false
	}
	for i := 7; i < len(hash); i++ {
		c := hash[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '/') {
			return false
		}
	}
	return true
}

// releasing is set while a return of memory to the OS is scheduled;
// lastKDF is when the last KDF run ended (unix nanoseconds).
var (
	releasing atomic.Bool
	lastKDF   atomic.Int64
)

// releaseSoon returns the memory of finished KDF runs to the operating
// system once no KDF has run for releaseDelay. Each argon2id run allocates
// Params.Memory (19 MiB by default) that is garbage as soon as it ends; the
// Go runtime would hand it back only slowly, so a server that checked one
// password would keep tens of megabytes it no longer uses. While logins
// keep coming the memory is kept for the next run (returning it would only
// make each run fault it back in); a burst costs one collection at its end.
func releaseSoon() {
	lastKDF.Store(time.Now().UnixNano())
	if releasing.CompareAndSwap(false, true) {
		time.AfterFunc(releaseDelay, releaseIfIdle)
	}
}

func releaseIfIdle() {
	if idle := time.Duration(time.Now().UnixNano() - lastKDF.Load()); idle < releaseDelay {
		time.AfterFunc(releaseDelay-idle, releaseIfIdle)
		return
	}
	debug.FreeOSMemory()
	releasing.Store(false)
	// A run that ended meanwhile found releasing set: schedule for it.
	if time.Duration(time.Now().UnixNano()-lastKDF.Load()) < releaseDelay && releasing.CompareAndSwap(false, true) {
		time.AfterFunc(releaseDelay, releaseIfIdle)
	}
}

const releaseDelay = 250 * time.Millisecond

var (
	dummyOnce sync.Once
	dummyHash string
)

// VerifyDummy does the work of Verify against a hash nobody knows the
// secret of, so that an unknown user or client takes as long to reject as a
// wrong password. It always returns false.
func VerifyDummy(s string) bool {
	VerifyDummyContext(context.Background(), "", s)
	return false
}

// VerifyDummyContext is VerifyDummy for a request, as VerifyContext is
// Verify: it waits, is refused and gives up exactly as a real check would,
// and returns the same errors.
func VerifyDummyContext(ctx context.Context, key, s string) error {
	dummyOnce.Do(func() {
		// A random salt and a random key in the format Hash writes, with
		// DefaultParams: checking a secret against it costs what a real
		// hash costs, and no secret matches it. Made without running the
		// KDF, so that making it never waits for a slot.
		var salt [16]byte
		var sum [32]byte
		rand.Read(salt[:]) // never fails (crypto/rand panics on a broken system)
		rand.Read(sum[:])
		b64 := base64.RawStdEncoding
		p := DefaultParams
		dummyHash = fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt[:]), b64.EncodeToString(sum[:]))
	})
	_, err := verifyIn(ctx, key, true, dummyHash, s)
	return err
}

// parseArgon2 splits a PHC-format argon2id hash into its parameters, salt and key.
func parseArgon2(hash string) (Params, []byte, []byte, error) {
	// $argon2id$v=19$m=19456,t=2,p=1$salt$key
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, ErrMalformed
	}
	var p Params
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return Params{}, nil, nil, ErrMalformed
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return Params{}, nil, nil, ErrMalformed
		}
		switch k {
		case "m":
			p.Memory = uint32(n)
		case "t":
			p.Time = uint32(n)
		case "p":
			if n > 255 {
				return Params{}, nil, nil, ErrMalformed
			}
			p.Threads = uint8(n)
		default:
			return Params{}, nil, nil, ErrMalformed
		}
	}
	// Refuse parameters that would let a stored hash exhaust the machine.
	if p.Memory < 8 || p.Memory > 1<<18 || p.Time < 1 || p.Time > 16 || p.Threads < 1 {
		return Params{}, nil, nil, ErrMalformed
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, ErrMalformed
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return Params{}, nil, nil, ErrMalformed
	}
	return p, salt, key, nil
}

// Cache remembers secrets that verified recently, so that the slow KDF is
// paid once per (id, secret, stored hash) rather than on every request. A
// failure is never cached; an entry is only used while the stored hash is
// the one it was verified against, so changing a secret invalidates it. The
// cache holds SHA-256 digests of secrets, never the secrets. Concurrent
// verifications of the same secret against the same hash share one KDF
// computation (a burst of connections that all start with an uncached
// secret costs one KDF run, not one each). It is safe for concurrent use.
type Cache struct {
	mu      sync.RWMutex // a hit only reads
	max     int
	entries map[string]cacheEntry
	flights map[flightKey]*flight
}

type cacheEntry struct {
	hash   string
	digest [32]byte
}

// flightKey names one verification: who, against which stored hash, with
// which secret (by digest).
type flightKey struct {
	id, hash string
	digest   [32]byte
}

// flight is a verification in progress; ok and err are set before done is
// closed.
type flight struct {
	done chan struct{}
	ok   bool
	err  error // the check did not run: the leader's context ended, or ErrBusy
}

// verifyFn is the KDF check; tests count its calls.
var verifyFn = verifyIn

// NewCache returns a cache of at most max entries (1024 if max <= 0).
func NewCache(max int) *Cache {
	if max <= 0 {
		max = 1024
	}
	return &Cache{max: max, entries: make(map[string]cacheEntry), flights: make(map[flightKey]*flight)}
}

// Verify is Verify(hash, s) for the holder of id, answered from the cache
// when the same secret was verified against the same hash before.
func (c *Cache) Verify(id, hash, s string) bool {
	ok, _ := c.verify(context.Background(), "", false, id, hash, s)
	return ok
}

// VerifyContext is Verify for a request, with the waiting, refusing and
// giving up of VerifyContext (the package function): a secret found in
// the cache is answered at once, whatever the queue.
func (c *Cache) VerifyContext(ctx context.Context, key, id, hash, s string) (bool, error) {
	return c.verify(ctx, key, true, id, hash, s)
}

func (c *Cache) verify(ctx context.Context, key string, bounded bool, id, hash, s string) (bool, error) {
	if hash == "" {
		return false, nil
	}
	d := sha256.Sum256([]byte(s))
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	if ok && e.hash == hash && subtle.ConstantTimeCompare(e.digest[:], d[:]) == 1 {
		return true, nil
	}
	k := flightKey{id, hash, d}
	for {
		c.mu.Lock()
		if e, ok := c.entries[id]; ok && e.hash == hash && subtle.ConstantTimeCompare(e.digest[:], d[:]) == 1 {
			c.mu.Unlock() // verified while this request waited for the lock
			return true, nil
		}
		f, ok := c.flights[k]
		if !ok {
			break
		}
		// The same check is running: wait for its outcome rather than
		// run the KDF again. Only callers with the same secret share it.
		c.mu.Unlock()
		select {
		case <-f.done:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		if f.err == nil || errors.Is(f.err, ErrBusy) {
			return f.ok, f.err
		}
		// Its caller went away before it ran: run it for this one.
	}
	f := &flight{done: make(chan struct{})}
	c.flights[k] = f
	c.mu.Unlock()

	f.ok, f.err = verifyFn(ctx, key, bounded, hash, s)

	c.mu.Lock()
	delete(c.flights, k)
	if f.ok {
		if _, ok := c.entries[id]; !ok && len(c.entries) >= c.max {
			for k := range c.entries { // evict an arbitrary entry (map order is random)
				delete(c.entries, k)
				break
			}
		}
		c.entries[id] = cacheEntry{hash: hash, digest: d}
	}
	c.mu.Unlock()
	close(f.done)
	return f.ok, f.err
}

// Wait waits for a verification of s against hash for id that is in
// progress (a Verify running the KDF), if there is one, and reports whether
// there was. After it returns true, Known answers with that verification's
// outcome; a secret that did not verify is still not known.
func (c *Cache) Wait(id, hash, s string) bool {
	if hash == "" {
		return false
	}
	k := flightKey{id, hash, sha256.Sum256([]byte(s))}
	c.mu.RLock()
	f, ok := c.flights[k]
	c.mu.RUnlock()
	if !ok {
		return false
	}
	<-f.done
	return true
}

// Known reports whether s is the secret last verified for id against
// hash, without running the KDF. It is never true for a secret that did
// not verify.
func (c *Cache) Known(id, hash, s string) bool {
	if hash == "" {
		return false
	}
	d := sha256.Sum256([]byte(s))
	c.mu.RLock()
	e, ok := c.entries[id]
	c.mu.RUnlock()
	return ok && e.hash == hash && subtle.ConstantTimeCompare(e.digest[:], d[:]) == 1
}

// Forget drops the entry of id (after its secret changed or it was deleted).
func (c *Cache) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// Len reports how many entries the cache holds.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
