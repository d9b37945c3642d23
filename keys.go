package oauthd

import (
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// ID token signing algorithms (RFC 7518 §3.1, RFC 8037 §3.1). RS256 is the
// default, as OpenID Connect requires (OIDC Core §15.1); "none" is never
// used.
const (
	AlgRS256 = "RS256"
	AlgES256 = "ES256"
	AlgEdDSA = "EdDSA"
)

// SigningAlgorithms are the algorithms the Provider keeps keys for and
// signs ID tokens with, the default first.
func SigningAlgorithms() []string { return []string{AlgRS256, AlgES256, AlgEdDSA} }

// rsaKeyBits is the size of generated RSA keys (RFC 7518 §3.3: at least 2048).
const rsaKeyBits = 2048

// jwksMaxAge is how long clients and caches may keep the JWKS.
const jwksMaxAge = 5 * time.Minute

// keyExpiryMargin keeps a retired key published a little longer than the
// last ID token it signed lives, for clocks that run slow.
const keyExpiryMargin = 5 * time.Minute

// encryptedKeyPrefix starts a private key encrypted at rest with
// Config.KeyEncryptionKey; a key stored in clear is JWK JSON and starts
// with "{".
const encryptedKeyPrefix = "oauthd-kek-v1:"

// Key states, as KeyInfo.State reports them.
const (
	// KeyNext is published in the JWKS but does not sign yet.
	KeyNext = "next"
	// KeySigning signs new ID tokens (the newest key whose NotBefore has
	// passed, for its algorithm).
	KeySigning = "signing"
	// KeyPublished no longer signs but stays in the JWKS until the ID
	// tokens it signed have expired.
	KeyPublished = "published"
	// KeyExpired is out of the JWKS and waits to be deleted.
	KeyExpired = "expired"
)

// ErrNoKeyEncryptionKey means a stored signing key is encrypted at rest
// and Config.KeyEncryptionKey is not set. KeyManager.Describe lists the
// keys without it.
var ErrNoKeyEncryptionKey = errors.New("no key encryption key is configured")

// KeyInfo describes a signing key without its private part.
type KeyInfo struct {
	ID        string
	Algorithm string
	// State is KeyNext, KeySigning, KeyPublished or KeyExpired.
	State     string
	NotBefore time.Time
	RetireAt  time.Time
	ExpiresAt time.Time
	CreatedAt time.Time
	// Encrypted reports whether the private key is encrypted at rest.
	Encrypted bool
}

// KeyManager keeps the ID token signing keys. Keys live in the KeyStore, so
// every node of a cluster shares them; each node caches them in memory and
// re-reads them every Config.KeyRefreshInterval, so a key created by one
// node is seen by all.
//
// Rotation follows a schedule with overlap: each algorithm's key signs for
// Config.KeyRotationPeriod; its successor is created and published in the
// JWKS well before it signs anything (a quarter of a period, at most 7
// days), and a key that stopped signing stays in the JWKS until every ID
// token it signed has expired. Whichever node first notices that a
// successor is due creates it; the successor's ID is derived from its
// algorithm and start time, so two nodes racing create one key. The first
// key of an algorithm is stored only if no node stored one meanwhile, when
// the KeyStore is a SigningKeyBootstrapper, so nodes started together on an
// empty store sign with one key too.
type KeyManager struct {
	store   KeyStore
	boot    SigningKeyBootstrapper // store, if it is one
	kek     []byte
	now     func() time.Time
	period  time.Duration
	refresh time.Duration
	idTTL   time.Duration
	log     *slog.Logger

	mu       sync.Mutex
	loadedAt time.Time
	// readAt is when the store was last read; retryAt, while it cannot
	// be, when it is tried again (see load).
	readAt, retryAt time.Time
	keys            []*loadedKey          // every stored key, ordered by NotBefore
	parsed          map[string]*loadedKey // decrypted keys by ID, reused across reloads
}

// loadedKey is a stored key with its private JWK decoded.
type loadedKey struct {
	meta      SigningKey
	jwk       jose.JSONWebKey
	encrypted bool
	// broken says why the key could not be decoded (encrypted at rest and
	// this node has no or another key encryption key, a damaged record):
	// it neither signs nor is published here, but counts in the schedule,
	// so that this node makes no key in its place.
	broken error
	// seenAt is when this manager first read the key, by its own clock.
	seenAt time.Time
}

// NewKeyManager returns a key manager for the store, configured by the
// key fields of cfg (KeyEncryptionKey, KeyRotationPeriod,
// KeyRefreshInterval, IDTokenTTL, Now, Logger), for programs such as the
// oauthd CLI that manage keys without serving. A Provider has its own, see
// Provider.Keys.
func NewKeyManager(cfg Config, store KeyStore) (*KeyManager, error) {
	if store == nil {
		return nil, errors.New("oauthd: a KeyStore is required")
	}
	if err := cfg.keyDefaults(); err != nil {
		return nil, err
	}
	return newKeyManager(&cfg, store), nil
}

func newKeyManager(cfg *Config, store KeyStore) *KeyManager {
	boot, _ := store.(SigningKeyBootstrapper)
	return &KeyManager{store: store, boot: boot, kek: cfg.KeyEncryptionKey, now: cfg.Now, period: cfg.KeyRotationPeriod,
		refresh: cfg.KeyRefreshInterval, idTTL: cfg.IDTokenTTL, log: cfg.Logger, parsed: map[string]*loadedKey{}}
}

// Keys is the Provider's signing key manager.
func (p *Provider) Keys() *KeyManager { return p.keys }

// lead is how long before it signs a successor key is published.
func (m *KeyManager) lead() time.Duration { return min(m.period/4, 7*24*time.Hour) }

// rotateDelay is how long a key made by Rotate waits before it signs: long
// enough for every node to re-read the keys and every client's cached JWKS
// to expire. The nodes' refresh interval is taken at its largest allowed
// value, not this process's: the CLI's `keys rotate` does not know the
// servers' configuration, and a server refreshing less often than it
// thinks would sign with a key clients cannot have seen yet.
func (m *KeyManager) rotateDelay() time.Duration { return maxKeyRefreshInterval + jwksMaxAge }

// maxKeyRefreshInterval is the largest Config.KeyRefreshInterval.
const maxKeyRefreshInterval = 5 * time.Minute

// Ensure loads the keys, creating a key for every algorithm that has none
// and the successors that are due. A server calls it at start so a broken
// store or a wrong KeyEncryptionKey stops it early; the Provider also calls
// it lazily.
func (m *KeyManager) Ensure(ctx context.Context) error {
	_, err := m.loadUsable(ctx)
	return err
}

// loadUsable is load, forced, failing when a stored key cannot be used
// here: at start, or before adding keys, that is a configuration error
// (no or another key encryption key), said at once; a running node keeps
// serving with the other keys (see read).
func (m *KeyManager) loadUsable(ctx context.Context) ([]*loadedKey, error) {
	keys, err := m.load(ctx, true)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if k.broken != nil {
			return nil, k.broken
		}
	}
	return keys, nil
}

// List describes every stored key, ordered by NotBefore, after creating
// the keys that are due, as a server would (Ensure).
func (m *KeyManager) List(ctx context.Context) ([]KeyInfo, error) {
	keys, err := m.loadUsable(ctx)
	if err != nil {
		return nil, err
	}
	return m.describe(keys), nil
}

// Describe describes every stored key, ordered by NotBefore, from the
// store's records alone: it neither decrypts nor checks the private keys,
// and creates none, so it needs no KeyEncryptionKey (for listing the
// keys of a database whose keys are encrypted, on a machine that does
// not hold the encryption key).
func (m *KeyManager) Describe(ctx context.Context) ([]KeyInfo, error) {
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauthd: reading signing keys: %w", err)
	}
	keys := make([]*loadedKey, 0, len(stored))
	for _, sk := range stored {
		meta := *sk
		meta.Private = nil
		keys = append(keys, &loadedKey{meta: meta, encrypted: strings.HasPrefix(string(sk.Private), encryptedKeyPrefix), seenAt: m.now()})
	}
	slices.SortStableFunc(keys, func(a, b *loadedKey) int { return a.meta.NotBefore.Compare(b.meta.NotBefore) })
	return m.describe(keys), nil
}

// describe gives each key its state at m.now.
func (m *KeyManager) describe(keys []*loadedKey) []KeyInfo {
	now := m.now()
	signing := map[string]bool{}
	for _, alg := range SigningAlgorithms() {
		if k := activeKey(keys, alg, now); k != nil {
			signing[k.meta.ID] = true
		}
	}
	out := make([]KeyInfo, 0, len(keys))
	for _, k := range keys {
		st := KeyPublished
		switch {
		case signing[k.meta.ID]:
			st = KeySigning
		case !m.publishedUntil(k, keys).IsZero() && !now.Before(m.publishedUntil(k, keys)):
			st = KeyExpired
		case now.Before(k.meta.NotBefore):
			st = KeyNext
		}
		out = append(out, KeyInfo{ID: k.meta.ID, Algorithm: k.meta.Algorithm, State: st, NotBefore: k.meta.NotBefore,
			RetireAt: k.meta.RetireAt, ExpiresAt: m.publishedUntil(k, keys), CreatedAt: k.meta.CreatedAt, Encrypted: k.encrypted})
	}
	return out
}

// Rotate creates a new key for each algorithm (every supported one when
// algs is empty; one named more than once counts once). A new key is
// published at once and starts signing after the time every node and
// every client cache needs to see it (Config.KeyRefreshInterval plus the
// JWKS cache lifetime); the keys it replaces stay published until the ID
// tokens they signed have expired.
func (m *KeyManager) Rotate(ctx context.Context, algs ...string) ([]KeyInfo, error) {
	if len(algs) == 0 {
		algs = SigningAlgorithms()
	}
	var uniq []string
	for _, a := range algs {
		if !slices.Contains(SigningAlgorithms(), a) {
			return nil, fmt.Errorf("oauthd: signing algorithm %q is not supported (use %s)", a, strings.Join(SigningAlgorithms(), ", "))
		}
		// An algorithm named twice gets one new key: two would start
		// together, and one of them would never sign.
		if !slices.Contains(uniq, a) {
			uniq = append(uniq, a)
		}
	}
	algs = uniq
	if _, err := m.loadUsable(ctx); err != nil {
		return nil, err
	}
	now := m.now()
	var ids []string
	for _, a := range algs {
		k, err := m.create(ctx, a, now.Add(m.rotateDelay()), "")
		if err != nil {
			return nil, err
		}
		ids = append(ids, k.ID)
	}
	m.mu.Lock()
	m.loadedAt = time.Time{}
	m.mu.Unlock()
	all, err := m.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []KeyInfo
	for _, k := range all {
		if slices.Contains(ids, k.ID) {
			out = append(out, k)
		}
	}
	return out, nil
}

// signingKey returns the key that signs for alg now.
func (m *KeyManager) signingKey(ctx context.Context, alg string) (*loadedKey, error) {
	keys, err := m.load(ctx, false)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	readAt := m.readAt
	m.mu.Unlock()
	if now := m.now(); !readAt.IsZero() && now.Sub(readAt) > staleSigningLimit {
		return nil, fmt.Errorf("oauthd: the signing keys could not be re-read from the store for %s: not signing with keys another node may have replaced: %w", now.Sub(readAt).Round(time.Second), ErrUnavailable)
	}
	if k := activeKey(keys, alg, m.now()); k != nil {
		return usable(k)
	}
	keys, err = m.load(ctx, true)
	if err != nil {
		return nil, err
	}
	if k := activeKey(keys, alg, m.now()); k != nil {
		return usable(k)
	}
	return nil, fmt.Errorf("oauthd: no signing key for %s", alg)
}

// usable returns the key, or why this node cannot sign with it.
func usable(k *loadedKey) (*loadedKey, error) {
	if k.broken != nil {
		return nil, fmt.Errorf("oauthd: the %s signing key %s cannot be used by this node: %w", k.meta.Algorithm, k.meta.ID, k.broken)
	}
	return k, nil
}

// publicKeys returns the public half of every key that is published now:
// the next keys, the signing keys and the retired keys whose ID tokens may
// still be alive.
func (m *KeyManager) publicKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	keys, err := m.load(ctx, false)
	if err != nil {
		return nil, err
	}
	now := m.now()
	out := make([]jose.JSONWebKey, 0, len(keys))
	for _, k := range keys {
		if until := m.publishedUntil(k, keys); k.broken != nil || (!until.IsZero() && !now.Before(until)) {
			continue
		}
		pub := k.jwk.Public()
		pub.Use = "sig"
		out = append(out, pub)
	}
	return out, nil
}

// publishedUntil is when the key leaves the JWKS (zero: never): its stored
// expiry, or later if this node's ID tokens live longer than the lifetime
// the key was made with (raised since): a key is published as long as an
// ID token it signed may be alive here, up to SigningKeyRetention past
// its stored expiry, until when stores keep it. A key that a second
// rotation replaced while it was still next (see replacedWhileNext)
// leaves earlier, once the ID tokens it signed meanwhile have expired.
func (m *KeyManager) publishedUntil(k *loadedKey, keys []*loadedKey) time.Time {
	until := k.meta.ExpiresAt
	if until.IsZero() || k.meta.RetireAt.IsZero() {
		return until
	}
	need := k.meta.RetireAt.Add(m.idTTL + keyExpiryMargin)
	if kept := until.Add(SigningKeyRetention); need.After(kept) {
		need = kept
	}
	if need.After(until) {
		until = need
	}
	if stop, ok := m.replacedWhileNext(k, keys); ok {
		// Its last ID token was signed before stop; it lives as long as
		// the key's own lifetime allows, or this node's, whichever is
		// longer, plus the margin for slow clocks.
		ttl := max(k.meta.ExpiresAt.Sub(k.meta.RetireAt), m.idTTL+keyExpiryMargin)
		if end := stop.Add(ttl); end.Before(until) {
			return end
		}
	}
	return until
}

// replacedWhileNext reports when k stops signing for good if a later key
// of its algorithm was made while k was still next (two rotations in a
// row): that key starts within k's signing window, covers the rest of it,
// and was stored long enough before it starts (more than the longest key
// refresh interval) that every node has read it by then, so none signs
// with k past its start. Other keys replaced early, such as the key a
// single rotation replaces, keep their scheduled end.
func (m *KeyManager) replacedWhileNext(k *loadedKey, keys []*loadedKey) (time.Time, bool) {
	var stop time.Time
	for _, o := range keys {
		b := &o.meta
		if o == k || b.Algorithm != k.meta.Algorithm || b.CreatedAt.IsZero() ||
			!b.NotBefore.After(k.meta.NotBefore) || !b.NotBefore.Before(k.meta.RetireAt) || b.RetireAt.Before(k.meta.RetireAt) ||
			!b.CreatedAt.Before(k.meta.NotBefore) || b.NotBefore.Sub(b.CreatedAt) < maxKeyRefreshInterval {
			continue
		}
		// b's times are by the clock of whoever rotated, which may be
		// slow: k may sign on a node until that node has read b, at the
		// latest a refresh interval after this node first read it (b was
		// stored before then), by this node's clock. A restart reads it
		// anew, later, which only keeps k longer.
		end := b.NotBefore
		if !o.seenAt.IsZero() {
			end = later(end, o.seenAt.Add(maxKeyRefreshInterval))
		}
		if stop.IsZero() || end.Before(stop) {
			stop = end
		}
	}
	return stop, !stop.IsZero()
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// verificationKey returns the published public key with the ID. An unknown
// ID makes the manager re-read the store (at most every few seconds), in
// case another node just created it.
func (m *KeyManager) verificationKey(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	for attempt := 0; attempt < 2; attempt++ {
		keys, err := m.publicKeys(ctx)
		if err != nil {
			return nil, err
		}
		for i := range keys {
			if keys[i].KeyID == kid {
				return &keys[i], nil
			}
		}
		m.mu.Lock()
		// Not while the store cannot be read (load tries again at
		// retryAt): anyone can send an unknown kid.
		if now := m.now(); now.Sub(m.loadedAt) >= 5*time.Second && !now.Before(m.retryAt) {
			m.loadedAt = time.Time{}
		}
		m.mu.Unlock()
	}
	return nil, nil
}

// activeKey is the key of alg that signs at now: the newest whose signing
// window holds now (ties broken by ID, so every node picks the same one).
// When none does, but a key is due to sign, the one due first signs
// already: the first key of a deployment, made by a node whose clock (or
// whose moment of making it) was a little ahead of this one's, with which
// every node agrees rather than making its own (see bootstrap).
func activeKey(keys []*loadedKey, alg string, now time.Time) *loadedKey {
	var best, due *loadedKey
	for _, k := range keys {
		if k.meta.Algorithm != alg || !now.Before(k.meta.RetireAt) {
			continue
		}
		if now.Before(k.meta.NotBefore) {
			if due == nil || k.meta.NotBefore.Before(due.meta.NotBefore) ||
				(k.meta.NotBefore.Equal(due.meta.NotBefore) && k.meta.ID < due.meta.ID) {
				due = k
			}
			continue
		}
		if best == nil || k.meta.NotBefore.After(best.meta.NotBefore) ||
			(k.meta.NotBefore.Equal(best.meta.NotBefore) && k.meta.ID > best.meta.ID) {
			best = k
		}
	}
	if best == nil {
		return due
	}
	return best
}

// load returns the keys, re-reading the store when the cache is older than
// the refresh interval (or always, when force is set) and creating the keys
// that are missing or due.
func (m *KeyManager) load(ctx context.Context, force bool) ([]*loadedKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if !force && !m.loadedAt.IsZero() && now.Sub(m.loadedAt) < m.refresh && now.Sub(m.loadedAt) >= 0 {
		return m.keys, nil
	}
	keys, err := m.reload(ctx, now)
	if err != nil && !force && m.keys != nil {
		// The store cannot be read (an outage) or a due key not made: the
		// keys read before still sign and are published (the JWKS stays
		// up, an ID token owed for a code already used up is still
		// signed), and the store is tried again in a few seconds.
		if m.log != nil {
			m.log.Warn("signing keys not re-read; serving the keys read before", "error", err)
		}
		m.loadedAt = now.Add(-m.refresh + min(staleKeysRetry, m.refresh))
		m.retryAt = now.Add(min(staleKeysRetry, m.refresh))
		return m.keys, nil
	}
	if err == nil {
		m.readAt, m.retryAt = now, time.Time{}
	}
	return keys, err
}

// staleSigningLimit is how long after its last read of the store a node
// goes on signing with the keys it read: a second rotation meanwhile
// (see replacedWhileNext) may have replaced its key, which the other
// nodes then stop publishing once every node should have seen it
// (maxKeyRefreshInterval). Past it the node still publishes the keys it
// has but signs nothing.
const staleSigningLimit = maxKeyRefreshInterval

// staleKeysRetry is how soon a node that could not re-read its keys tries
// again.
const staleKeysRetry = 5 * time.Second

// reload is load's re-reading of the store, with m.mu held.
func (m *KeyManager) reload(ctx context.Context, now time.Time) ([]*loadedKey, error) {
	keys, err := m.read(ctx)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(keys, func(k *loadedKey) bool { return k.broken != nil }) {
		// A node that cannot use every stored key makes none: it would
		// make them without the key encryption key the others were made
		// with. The nodes that have it make them.
		m.keys, m.loadedAt = keys, now
		return keys, nil
	}
	created := false
	for _, alg := range SigningAlgorithms() {
		if activeKey(keys, alg, now) == nil {
			if err := m.bootstrap(ctx, alg, now); err != nil {
				return nil, err
			}
			created = true
			continue
		}
		var newest *loadedKey
		for _, k := range keys {
			if k.meta.Algorithm == alg && (newest == nil || !k.meta.NotBefore.Before(newest.meta.NotBefore)) {
				newest = k
			}
		}
		if !now.Before(newest.meta.RetireAt.Add(-m.lead())) {
			// The successor starts when the newest key retires; its ID is
			// derived from that, so nodes racing here make one key.
			nb := newest.meta.RetireAt
			if _, err := m.create(ctx, alg, nb, scheduledKeyID(alg, nb)); err != nil && !errors.Is(err, ErrAlreadyExists) {
				return nil, err
			}
			created = true
		}
	}
	if created {
		if keys, err = m.read(ctx); err != nil {
			return nil, err
		}
	}
	m.keys, m.loadedAt = keys, now
	return keys, nil
}

// read lists the stored keys and decodes the ones not seen before.
func (m *KeyManager) read(ctx context.Context) ([]*loadedKey, error) {
	stored, err := m.store.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("oauthd: reading signing keys: %w", err)
	}
	keys := make([]*loadedKey, 0, len(stored))
	seen := make(map[string]bool, len(stored))
	for _, sk := range stored {
		seen[sk.ID] = true
		if k, ok := m.parsed[sk.ID]; ok {
			keys = append(keys, k)
			continue
		}
		k, err := m.decode(sk)
		if err != nil {
			// One key this node cannot use does not stop it from serving
			// with the others (another node, or `oauthd keys rotate`, made
			// it with a key encryption key this node lacks): it is left
			// out of signing and the JWKS, and said once.
			meta := *sk
			meta.Private = nil
			k = &loadedKey{meta: meta, encrypted: strings.HasPrefix(string(sk.Private), encryptedKeyPrefix), broken: err}
			if m.log != nil {
				m.log.Error("signing key cannot be used by this node; it neither signs nor is published here", "kid", sk.ID, "alg", sk.Algorithm, "error", err)
			}
		}
		k.seenAt = m.now()
		m.parsed[sk.ID] = k
		keys = append(keys, k)
	}
	for id := range m.parsed {
		if !seen[id] {
			delete(m.parsed, id)
		}
	}
	return keys, nil
}

// decode turns a stored key into a usable one, decrypting it if needed.
func (m *KeyManager) decode(sk *SigningKey) (*loadedKey, error) {
	raw := sk.Private
	encrypted := strings.HasPrefix(string(raw), encryptedKeyPrefix)
	if encrypted {
		if len(m.kek) == 0 {
			return nil, fmt.Errorf("oauthd: signing key %s is encrypted at rest but %w", sk.ID, ErrNoKeyEncryptionKey)
		}
		var err error
		if raw, err = openKey(m.kek, sk.ID, raw); err != nil {
			return nil, fmt.Errorf("oauthd: signing key %s cannot be decrypted: the key encryption key is wrong or the record is damaged", sk.ID)
		}
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(raw, &jwk); err != nil || jwk.IsPublic() || !jwk.Valid() {
		return nil, fmt.Errorf("oauthd: signing key %s is not a valid private JWK", sk.ID)
	}
	if jwk.KeyID != sk.ID || jwk.Algorithm != sk.Algorithm {
		return nil, fmt.Errorf("oauthd: signing key %s does not match its record (kid or alg differ)", sk.ID)
	}
	meta := *sk
	meta.Private = nil
	return &loadedKey{meta: meta, jwk: jwk, encrypted: encrypted}, nil
}

// bootstrap stores a key for alg that signs from now, when the manager
// found none that signs now. With a store that is a
// SigningKeyBootstrapper, the key is stored only if no other node stored
// one meanwhile: nodes started together on an empty store so agree on
// one first key, which load then reads back, whichever node made it.
// Other stores get the key with CreateSigningKey, and racing nodes may
// each store one until the next refresh shows them the newest.
//
// The store refuses the key while any key of alg has not retired, one
// due to sign later included: a node whose clock lags the winner's, or
// that took its time after the winner's, finds the winner's key not
// signing yet at its own now, and activeKey signs with it all the same.
func (m *KeyManager) bootstrap(ctx context.Context, alg string, now time.Time) error {
	if m.boot == nil {
		_, err := m.create(ctx, alg, now, "")
		return err
	}
	sk, err := m.newKey(alg, now, "")
	if err != nil {
		return err
	}
	// Making an RSA key takes a while: the key signs from when it is
	// stored, not from when this load began.
	if t := m.now(); t.After(now) {
		now = t
		sk.NotBefore, sk.RetireAt, sk.ExpiresAt = t, t.Add(m.period), t.Add(m.period+m.idTTL+keyExpiryMargin)
	}
	err = m.boot.CreateSigningKeyIfNoneActive(ctx, sk, now)
	switch {
	case errors.Is(err, ErrAlreadyExists):
		m.log.Debug("signing key not created: another node created one first", "alg", alg)
		return nil
	case err != nil:
		return fmt.Errorf("oauthd: storing a new signing key: %w", err)
	}
	m.log.Info("signing key created", "kid", sk.ID, "alg", alg, "not_before", sk.NotBefore, "retire_at", sk.RetireAt)
	return nil
}

// create generates a key for alg that signs from nb, and stores it; id is
// random when empty.
func (m *KeyManager) create(ctx context.Context, alg string, nb time.Time, id string) (*SigningKey, error) {
	sk, err := m.newKey(alg, nb, id)
	if err != nil {
		return nil, err
	}
	if err := m.store.CreateSigningKey(ctx, sk); err != nil {
		return nil, fmt.Errorf("oauthd: storing a new signing key: %w", err)
	}
	m.log.Info("signing key created", "kid", sk.ID, "alg", alg, "not_before", nb, "retire_at", sk.RetireAt)
	return sk, nil
}

// newKey generates a key for alg that signs from nb, sealed with the key
// encryption key if there is one; id is random when empty.
func (m *KeyManager) newKey(alg string, nb time.Time, id string) (*SigningKey, error) {
	if id == "" {
		b := make([]byte, 16)
		rand.Read(b)
		id = base64.RawURLEncoding.EncodeToString(b)
	}
	priv, err := generateKey(alg)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: priv, KeyID: id, Algorithm: alg, Use: "sig"}
	raw, err := json.Marshal(jwk)
	if err != nil {
		return nil, fmt.Errorf("oauthd: encoding a new signing key: %w", err)
	}
	if len(m.kek) > 0 {
		raw = sealKey(m.kek, id, raw)
	}
	retire := nb.Add(m.period)
	return &SigningKey{ID: id, Algorithm: alg, Private: raw, NotBefore: nb, RetireAt: retire,
		ExpiresAt: retire.Add(m.idTTL + keyExpiryMargin), CreatedAt: m.now()}, nil
}

// scheduledKeyID is the ID of the scheduled successor key for alg that
// starts at nb: the same on every node.
func scheduledKeyID(alg string, nb time.Time) string {
	sum := sha256.Sum256([]byte("oauthd scheduled signing key\x00" + alg + "\x00" + nb.UTC().Format(time.RFC3339Nano)))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}

// generateKey makes a new private key for alg with crypto/rand.
func generateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case AlgRS256:
		return rsa.GenerateKey(rand.Reader, rsaKeyBits)
	case AlgES256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgEdDSA:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("oauthd: signing algorithm %q is not supported", alg)
}

// sealKey encrypts a private JWK with AES-256-GCM under kek; the key ID is
// the additional data, so a record cannot be moved to another ID.
func sealKey(kek []byte, id string, plain []byte) []byte {
	gcm := newGCM(kek)
	nonce := make([]byte, gcm.NonceSize())
	rand.Read(nonce)
	ct := gcm.Seal(nonce, nonce, plain, []byte("oauthd signing key\x00"+id))
	return []byte(encryptedKeyPrefix + base64.RawURLEncoding.EncodeToString(ct))
}

func openKey(kek []byte, id string, sealed []byte) ([]byte, error) {
	ct, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(string(sealed), encryptedKeyPrefix))
	if err != nil {
		return nil, err
	}
	gcm := newGCM(kek)
	if len(ct) < gcm.NonceSize() {
		return nil, errors.New("ciphertext too short")
	}
	return gcm.Open(nil, ct[:gcm.NonceSize()], ct[gcm.NonceSize():], []byte("oauthd signing key\x00"+id))
}

// newGCM returns AES-GCM for a 32-byte key (checked by Config).
func newGCM(key []byte) cipher.AEAD {
	blk, err := aes.NewCipher(key)
	if err != nil {
		panic("oauthd: key encryption key: " + err.Error())
	}
	gcm, err := cipher.NewGCM(blk)
	if err != nil {
		panic("oauthd: key encryption key: " + err.Error())
	}
	return gcm
}
