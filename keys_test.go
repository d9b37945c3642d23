package oauthd

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Hooks for the external tests of KeyManager (keys_bootstrap_test.go).
// They read what the manager has cached, as the ID token and JWKS code
// do, so a test sees the key a node would really sign with and publish.

// SigningKeyIDForTest is the ID of the key that signs alg's ID tokens now:
// the kid an ID token signed now would name.
func (m *KeyManager) SigningKeyIDForTest(ctx context.Context, alg string) (string, error) {
	k, err := m.signingKey(ctx, alg)
	if err != nil {
		return "", err
	}
	return k.meta.ID, nil
}

// PublishedKeyIDsForTest are the IDs of the keys in the JWKS now.
func (m *KeyManager) PublishedKeyIDsForTest(ctx context.Context) ([]string, error) {
	keys, err := m.publicKeys(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.KeyID
	}
	return ids, nil
}

// testKeyManager is a key manager on a new keyStore whose clock the test
// moves: ID tokens live 1h, keys sign for 30 days.
func testKeyManager(t *testing.T) (*KeyManager, *keyStore, func(time.Duration), func() time.Time) {
	t.Helper()
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	store := &keyStore{}
	m, err := NewKeyManager(Config{Now: clock, IDTokenTTL: time.Hour, KeyRotationPeriod: 720 * time.Hour}, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m, store, tick, clock
}

// keysOf is the keys of alg in List's order.
func keysOf(t *testing.T, m *KeyManager, alg string) []KeyInfo {
	t.Helper()
	all, err := m.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []KeyInfo
	for _, k := range all {
		if k.Algorithm == alg {
			out = append(out, k)
		}
	}
	return out
}

// An algorithm named twice in one rotation gets one new key.
func TestRotateRepeatedAlgorithmOnce(t *testing.T) {
	m, _, _, _ := testKeyManager(t)
	rotated, err := m.Rotate(t.Context(), AlgRS256, AlgES256, AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	if len(rotated) != 2 || rotated[0].Algorithm == rotated[1].Algorithm {
		t.Errorf("Rotate(RS256, ES256, RS256) = %+v; want one RS256 and one ES256 key", rotated)
	}
	if ks := keysOf(t, m, AlgRS256); len(ks) != 2 {
		t.Errorf("RS256 keys after the rotation: %+v; want the first one and one next", ks)
	}
}

// Two rotations in a row: the key the second replaced while it was still
// next signs only until the second's key starts, and leaves the JWKS once
// the ID tokens it signed have expired, not at its scheduled end 30 days
// later. The key a rotation replaces after it signed keeps its scheduled
// end.
func TestRotateTwiceInARowEndsTheReplacedNextKey(t *testing.T) {
	m, _, tick, now := testKeyManager(t)
	ctx := t.Context()
	first := keysOf(t, m, AlgRS256)[0]
	r1, err := m.Rotate(ctx, AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	tick(time.Minute)
	r2, err := m.Rotate(ctx, AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	a, b := r1[0], r2[0]
	byID := map[string]KeyInfo{}
	for _, k := range keysOf(t, m, AlgRS256) {
		byID[k.ID] = k
	}
	wantEnd := b.NotBefore.Add(time.Hour + keyExpiryMargin)
	if got := byID[a.ID].ExpiresAt; !got.Equal(wantEnd) {
		t.Errorf("the key replaced while next is published until %v; want %v (the next key's start + 1h + margin)", got, wantEnd)
	}
	if got, want := byID[first.ID].ExpiresAt, first.ExpiresAt; !got.Equal(want) {
		t.Errorf("the key replaced while signing is published until %v; want its scheduled end %v", got, want)
	}
	if got, want := byID[b.ID].ExpiresAt, b.ExpiresAt; !got.Equal(want) {
		t.Errorf("the second rotation's key is published until %v; want its scheduled end %v", got, want)
	}
	published := func(kid string) bool {
		t.Helper()
		ids, err := m.PublishedKeyIDsForTest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ids, kid)
	}
	signer := func() string {
		t.Helper()
		kid, err := m.SigningKeyIDForTest(ctx, AlgRS256)
		if err != nil {
			t.Fatal(err)
		}
		return kid
	}
	// a signs from its start until b's, then b signs.
	tick(a.NotBefore.Sub(now()))
	if kid := signer(); kid != a.ID {
		t.Errorf("at the first rotation's start %s signs; want %s", kid, a.ID)
	}
	tick(b.NotBefore.Sub(now()))
	if kid := signer(); kid != b.ID {
		t.Errorf("at the second rotation's start %s signs; want %s", kid, b.ID)
	}
	// a is published while an ID token it signed may live, then not.
	tick(wantEnd.Sub(now()) - time.Second)
	if !published(a.ID) {
		t.Errorf("the replaced key left the JWKS before its last ID token expired")
	}
	tick(time.Second)
	if published(a.ID) {
		t.Errorf("the replaced key is still in the JWKS after its last ID token expired")
	}
	if !published(first.ID) || !published(b.ID) {
		t.Errorf("the first key or the new one left the JWKS")
	}
	if st := keysOf(t, m, AlgRS256); len(st) != 3 || st[1].State != KeyExpired {
		t.Errorf("keys %+v; want the replaced key expired", st)
	}
}

// Rotations far enough apart that the first's key signed when the second
// came: the first's key keeps its scheduled end, as any replaced key does.
func TestRotateLaterKeepsTheScheduledEnd(t *testing.T) {
	m, _, tick, _ := testKeyManager(t)
	r1, err := m.Rotate(t.Context(), AlgES256)
	if err != nil {
		t.Fatal(err)
	}
	tick(15 * time.Minute)
	if _, err := m.Rotate(t.Context(), AlgES256); err != nil {
		t.Fatal(err)
	}
	for _, k := range keysOf(t, m, AlgES256) {
		if k.ID == r1[0].ID && !k.ExpiresAt.Equal(r1[0].ExpiresAt) {
			t.Errorf("the first rotation's key is published until %v; want its scheduled end %v", k.ExpiresAt, r1[0].ExpiresAt)
		}
	}
}

// Two rotations in a row from a machine whose clock is 15 minutes slow:
// the second key's start, by that clock, is already past when it is
// stored, and a node signs with the first one until it next reads the
// keys. The first key stays published until the last ID token the node
// signed with it has expired, by the node's own clock (when it first read
// the second key), whatever the rotating machine's clock said.
func TestRotateTwiceFromASlowClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	nodeClock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	cliClock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now.Add(-15 * time.Minute) }
	tick := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	store := &keyStore{}
	cfg := Config{IDTokenTTL: time.Hour, KeyRotationPeriod: 720 * time.Hour, KeyRefreshInterval: maxKeyRefreshInterval}
	cfg.Now = nodeClock
	node, err := NewKeyManager(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = cliClock
	cli, err := NewKeyManager(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := node.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	tick(24 * time.Hour) // the first keys have signed for a day
	r1, err := cli.Rotate(ctx, AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	tick(time.Second)
	if _, err := node.List(ctx); err != nil { // the node reads the first rotation's key
		t.Fatal(err)
	}
	a := r1[0].ID
	if kid, err := node.SigningKeyIDForTest(ctx, AlgRS256); err != nil || kid != a {
		t.Fatalf("the node signs with %s (%v); want the first rotation's %s (its start is past by the node's clock)", kid, err, a)
	}
	tick(time.Minute)
	if _, err := cli.Rotate(ctx, AlgRS256); err != nil {
		t.Fatal(err)
	}
	// Until its next read of the keys the node goes on signing with a.
	var lastSigned time.Time
	for range 10 {
		kid, err := node.SigningKeyIDForTest(ctx, AlgRS256)
		if err != nil {
			t.Fatal(err)
		}
		if kid != a {
			break
		}
		lastSigned = nodeClock()
		tick(30 * time.Second)
	}
	if lastSigned.IsZero() {
		t.Fatal("the node never signed with the first key after the second rotation")
	}
	// Every ID token the node signed with a lives until lastSigned + 1h:
	// a must be in the JWKS until then.
	tick(lastSigned.Add(time.Hour).Sub(nodeClock()))
	ids, err := node.PublishedKeyIDsForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(ids, a) {
		t.Errorf("the first key left the JWKS while an ID token it signed at %v was alive (now %v)", lastSigned, nodeClock())
	}
}

// A key this node cannot decode (made by a node, or `oauthd keys rotate`,
// with a key encryption key this one lacks) is left out of signing and
// of the JWKS; the node keeps serving with the other keys instead of
// failing every JWKS request and every ID token. Its start (Ensure) still
// fails, saying why.
func TestKeyOfAnotherEncryptionKeyLeftOut(t *testing.T) {
	m, store, tick, clock := testKeyManager(t)
	ctx := t.Context()
	kek := make([]byte, 32)
	for i := range kek {
		kek[i] = byte(i + 1)
	}
	other, err := NewKeyManager(Config{Now: clock, IDTokenTTL: time.Hour, KeyRotationPeriod: 720 * time.Hour, KeyEncryptionKey: kek}, store)
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := other.Rotate(ctx, AlgES256)
	if err != nil || len(rotated) != 1 || !rotated[0].Encrypted {
		t.Fatalf("Rotate with a key encryption key: %+v, %v; want one encrypted key", rotated, err)
	}
	encrypted := rotated[0].ID
	before, err := m.PublishedKeyIDsForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tick(2 * time.Minute) // past the refresh interval: m reads the new key
	published, err := m.PublishedKeyIDsForTest(ctx)
	if err != nil {
		t.Fatalf("JWKS with a key this node cannot decode: %v; want the other keys", err)
	}
	if slices.Contains(published, encrypted) || len(published) != len(before) {
		t.Errorf("published %v; want the %d keys from before, without %s", published, len(before), encrypted)
	}
	if err := m.Ensure(ctx); err == nil || !errors.Is(err, ErrNoKeyEncryptionKey) {
		t.Errorf("Ensure: %v; want ErrNoKeyEncryptionKey, a start refused with the reason", err)
	}
	tick(rotated[0].NotBefore.Sub(clock()) + time.Minute) // the encrypted key is due to sign
	if _, err := m.SigningKeyIDForTest(ctx, AlgES256); err == nil || !strings.Contains(err.Error(), encrypted) {
		t.Errorf("ES256 signing on this node: %v; want an error naming %s", err, encrypted)
	}
	if _, err := m.SigningKeyIDForTest(ctx, AlgRS256); err != nil {
		t.Errorf("RS256 signing on this node: %v; want the RS256 key", err)
	}
	if id, err := other.SigningKeyIDForTest(ctx, AlgES256); err != nil || id != encrypted {
		t.Errorf("ES256 signing on the node with the encryption key: %q, %v; want %s", id, err, encrypted)
	}
}

// failingKeyStore is a keyStore whose reads fail while fail is set.
type failingKeyStore struct {
	*keyStore
	fail  atomic.Bool
	reads atomic.Int64
}

func (s *failingKeyStore) SigningKeys(ctx context.Context) ([]*SigningKey, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return nil, fmt.Errorf("store down: %w", ErrUnavailable)
	}
	return s.keyStore.SigningKeys(ctx)
}

// During a store outage the keys read before still sign and stay in the
// JWKS (relying parties with a cold cache can verify ID tokens issued
// already; an ID token owed for a code used up is still signed); the
// store is read again once it is back.
func TestKeysServedDuringStoreOutage(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tick := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	store := &failingKeyStore{keyStore: &keyStore{}}
	m, err := NewKeyManager(Config{Now: clock}, store)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := m.Ensure(ctx); err != nil {
		t.Fatal(err)
	}
	want, err := m.PublishedKeyIDsForTest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	store.fail.Store(true)
	tick(2 * time.Minute)
	if got, err := m.PublishedKeyIDsForTest(ctx); err != nil || !slices.Equal(got, want) {
		t.Errorf("JWKS during the outage: %v, %v; want %v", got, err, want)
	}
	if _, err := m.SigningKeyIDForTest(ctx, AlgRS256); err != nil {
		t.Errorf("signing during the outage: %v; want the key read before", err)
	}
	// Unknown kids (anyone can send one in an id_token_hint) do not
	// make the node read the failing store again and again.
	before := store.reads.Load()
	for range 50 {
		if k, err := m.verificationKey(ctx, "no-such-kid"); k != nil || err != nil {
			t.Fatalf("verificationKey(unknown): %v, %v", k, err)
		}
	}
	if n := store.reads.Load() - before; n > 1 {
		t.Errorf("%d store reads for 50 unknown kids during the outage; want at most 1 (a retry every %s)", n, staleKeysRetry)
	}
	// Past staleSigningLimit the node publishes but no longer signs: a
	// second rotation it cannot see may have replaced its key.
	tick(staleSigningLimit)
	if got, err := m.PublishedKeyIDsForTest(ctx); err != nil || !slices.Equal(got, want) {
		t.Errorf("JWKS %s into the outage: %v, %v; want %v", 2*time.Minute+staleSigningLimit, got, err, want)
	}
	if _, err := m.SigningKeyIDForTest(ctx, AlgRS256); !errors.Is(err, ErrUnavailable) {
		t.Errorf("signing %s into the outage: %v; want ErrUnavailable", 2*time.Minute+staleSigningLimit, err)
	}
	if err := m.Ensure(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ensure during the outage: %v; want the store's error (a start needs the store)", err)
	}
	// Back: a key made meanwhile by another node is seen within seconds.
	store.fail.Store(false)
	if err := store.CreateSigningKey(ctx, mustNewKey(t, m, AlgEdDSA, clock().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	tick(staleKeysRetry)
	if got, _ := m.PublishedKeyIDsForTest(ctx); len(got) != len(want)+1 {
		t.Errorf("after the outage: %d keys published; want %d (the new one read)", len(got), len(want)+1)
	}
	if _, err := m.SigningKeyIDForTest(ctx, AlgRS256); err != nil {
		t.Errorf("signing after the outage: %v", err)
	}
}

func mustNewKey(t *testing.T, m *KeyManager, alg string, nb time.Time) *SigningKey {
	t.Helper()
	k, err := m.newKey(alg, nb, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}
