package oauthd_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

// sharedKeyStores open the stores of the nodes of one cluster, all on one
// empty database: one memstore all nodes share; two sqlitestore Stores on
// one file, as two processes on one host have; two pgstore Stores on one
// schema (skipped without OAUTHD_TEST_POSTGRES_DSN, see internal/pgtest).
var sharedKeyStores = []struct {
	name string
	open func(t *testing.T) []oauthd.KeyStore
}{
	{"memstore", func(t *testing.T) []oauthd.KeyStore {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return []oauthd.KeyStore{s}
	}},
	{"sqlite file opened twice", func(t *testing.T) []oauthd.KeyStore {
		path := filepath.Join(t.TempDir(), "keys.db")
		return openTwice(t, func() (closingKeyStore, error) { return sqlitestore.Open(t.Context(), path, sqlitestore.Options{}) })
	}},
	{"postgres schema opened twice", func(t *testing.T) []oauthd.KeyStore {
		dsn, _ := pgtest.Schema(t)
		return openTwice(t, func() (closingKeyStore, error) { return pgstore.Open(t.Context(), dsn, pgstore.Options{}) })
	}},
}

// closingKeyStore is a KeyStore that is closed when the test ends.
type closingKeyStore interface {
	oauthd.KeyStore
	Close() error
}

// openTwice opens two stores on one database, as two nodes do.
func openTwice(t *testing.T, open func() (closingKeyStore, error)) []oauthd.KeyStore {
	t.Helper()
	var out []oauthd.KeyStore
	for range 2 {
		s, err := open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

// keyClock is the nodes' shared fake time: it does not move during a test,
// so no node re-reads the keys on its own and each one signs and publishes
// what it cached when it started.
func keyClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 678_901_234, time.UTC)} }

// startNodes makes a KeyManager per store and starts them together (Ensure,
// as a server does when it starts), and fails the test if one fails.
func startNodes(t *testing.T, clk *clock, stores ...oauthd.KeyStore) []*oauthd.KeyManager {
	t.Helper()
	nodes := make([]*oauthd.KeyManager, len(stores))
	for i, s := range stores {
		m, err := oauthd.NewKeyManager(oauthd.Config{Now: clk.Now}, s)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = m
	}
	var (
		errs  = make([]error, len(nodes))
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for i, m := range nodes {
		wg.Go(func() {
			<-start
			errs[i] = m.Ensure(t.Context())
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Ensure: %v", i, err)
		}
	}
	return nodes
}

// checkOneSigningKey checks that every node signs each algorithm's ID
// tokens with the same key, and that every node's JWKS publishes it: a
// relying party behind a load balancer verifies an ID token of any node
// with the JWKS of any other (OIDC Core §10.1). It returns the kids.
func checkOneSigningKey(t *testing.T, nodes []*oauthd.KeyManager) map[string]string {
	t.Helper()
	ctx := t.Context()
	kids := map[string]string{}
	for _, alg := range oauthd.SigningAlgorithms() {
		for i, m := range nodes {
			kid, err := m.SigningKeyIDForTest(ctx, alg)
			if err != nil {
				t.Fatalf("node %d: signing key for %s: %v", i, alg, err)
			}
			if want, ok := kids[alg]; !ok {
				kids[alg] = kid
			} else if kid != want {
				t.Errorf("node %d signs %s ID tokens with key %s; node 0 with %s", i, alg, kid, want)
			}
		}
	}
	for i, m := range nodes {
		published, err := m.PublishedKeyIDsForTest(ctx)
		if err != nil {
			t.Fatalf("node %d: JWKS: %v", i, err)
		}
		for alg, kid := range kids {
			if !slices.Contains(published, kid) {
				t.Errorf("node %d's JWKS %v lacks the %s key %s that node 0 signs with", i, published, alg, kid)
			}
		}
	}
	return kids
}

// checkStoredKeys checks that the store holds exactly the keys kids names,
// one per algorithm.
func checkStoredKeys(t *testing.T, s oauthd.KeyStore, kids map[string]string) {
	t.Helper()
	keys, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string][]string{}
	for _, k := range keys {
		stored[k.Algorithm] = append(stored[k.Algorithm], k.ID)
	}
	for _, alg := range oauthd.SigningAlgorithms() {
		if got := stored[alg]; len(got) != 1 || got[0] != kids[alg] {
			t.Errorf("stored %s keys %v; want only %s", alg, got, kids[alg])
		}
	}
	if len(keys) != len(oauthd.SigningAlgorithms()) {
		t.Errorf("%d stored keys; want one per algorithm", len(keys))
	}
}

// Nodes started at the same moment on an empty database make one first
// key per algorithm between them, and each signs with it and publishes
// it, rather than each signing with a key of its own that the other nodes'
// JWKS lacks until their next refresh.
func TestNodesStartedTogetherSignWithOneKey(t *testing.T) {
	const nodes = 6
	for _, tc := range sharedKeyStores {
		t.Run(tc.name, func(t *testing.T) {
			shared := tc.open(t)
			stores := make([]oauthd.KeyStore, nodes)
			for i := range stores {
				stores[i] = shared[i%len(shared)]
			}
			kids := checkOneSigningKey(t, startNodes(t, keyClock(), stores...))
			checkStoredKeys(t, shared[0], kids)
		})
	}
}

// lateKeys is a memstore that hides its signing keys from the first read
// of them: what a node sees that reads the keys of an empty store just
// before another node stores the first ones.
type lateKeys struct {
	*memstore.Store
	seen atomic.Bool
}

func (s *lateKeys) SigningKeys(ctx context.Context) ([]*oauthd.SigningKey, error) {
	if !s.seen.Swap(true) {
		return nil, nil
	}
	return s.Store.SigningKeys(ctx)
}

// A node that finds no key, but loses the race to store the first one,
// signs with the key of the node that won and publishes it, and stores
// none of its own.
func TestLoserOfTheFirstKeySignsWithTheWinners(t *testing.T) {
	store := memstore.New()
	clk := keyClock()
	winner := startNodes(t, clk, store)
	loser := startNodes(t, clk, &lateKeys{Store: store})
	kids := checkOneSigningKey(t, append(winner, loser...))
	checkStoredKeys(t, store, kids)
}

// keysOnly is a KeyStore that is no SigningKeyBootstrapper, as a store
// that wraps another without passing the interface on.
type keysOnly struct{ oauthd.KeyStore }

// A KeyStore without CreateSigningKeyIfNoneActive still gets its first
// keys, stored with CreateSigningKey.
func TestFirstKeysWithoutBootstrapper(t *testing.T) {
	store := memstore.New()
	var ks oauthd.KeyStore = keysOnly{store}
	if _, ok := ks.(oauthd.SigningKeyBootstrapper); ok {
		t.Fatal("keysOnly is a SigningKeyBootstrapper")
	}
	node := startNodes(t, keyClock(), ks)
	kids := checkOneSigningKey(t, node)
	checkStoredKeys(t, store, kids)
	// A second node started later finds the keys and makes none.
	kids2 := checkOneSigningKey(t, append(node, startNodes(t, keyClock(), keysOnly{store})...))
	checkStoredKeys(t, store, kids2)
}

// A node whose clock lags the one that made the first keys (or that
// started a moment before it, and made its key after) finds those keys not
// signing yet at its own time: it signs with them all the same rather than
// making keys of its own (and the store would refuse them).
func TestNodeWithALaggingClockSignsWithTheFirstKeys(t *testing.T) {
	for _, st := range sharedKeyStores {
		t.Run(st.name, func(t *testing.T) {
			stores := st.open(t)
			ahead := keyClock()
			behind := &clock{t: ahead.t.Add(-2 * time.Second)}
			first := startNodes(t, ahead, stores[0])
			late := startNodes(t, behind, stores[len(stores)-1])
			checkStoredKeys(t, stores[0], checkOneSigningKey(t, append(first, late...)))
		})
	}
}

// A key stays in the JWKS as long as an ID token it signed may be alive on
// the node that publishes it: keys made where ID tokens lived 1h (an older
// configuration, or a CLI that did not see the server's) are published by
// a node whose ID tokens live 24h until their retirement plus 24h.
func TestKeyPublishedForTheLongestIDTokenLifetime(t *testing.T) {
	store := memstore.New()
	clk := keyClock()
	maker, err := oauthd.NewKeyManager(oauthd.Config{Now: clk.Now, IDTokenTTL: time.Hour, KeyRotationPeriod: 24 * time.Hour}, store)
	if err != nil {
		t.Fatal(err)
	}
	if err := maker.Ensure(t.Context()); err != nil {
		t.Fatal(err)
	}
	first, err := maker.SigningKeyIDForTest(t.Context(), oauthd.AlgRS256)
	if err != nil {
		t.Fatal(err)
	}
	server, err := oauthd.NewKeyManager(oauthd.Config{Now: clk.Now, IDTokenTTL: 24 * time.Hour, KeyRotationPeriod: 24 * time.Hour,
		KeyRefreshInterval: time.Second}, store)
	if err != nil {
		t.Fatal(err)
	}
	published := func(m *oauthd.KeyManager) bool {
		t.Helper()
		ids, err := m.PublishedKeyIDsForTest(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(ids, first)
	}
	// Past the key's retirement (a day) plus the maker's 1h and margin,
	// and past the server's garbage collection: the store keeps the key
	// (SigningKeyRetention).
	clk.Add(24*time.Hour + 2*time.Hour)
	if _, err := store.DeleteExpired(t.Context(), clk.Now(), 100); err != nil {
		t.Fatal(err)
	}
	if !published(server) {
		t.Errorf("key %s left the JWKS 2h after it retired; a node whose ID tokens live 24h must publish it until then", first)
	}
	keys, err := server.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == first && (k.State == oauthd.KeyExpired || k.ExpiresAt.Before(k.RetireAt.Add(24*time.Hour))) {
			t.Errorf("List: key %s %s until %v; want published until its retirement plus 24h", k.ID, k.State, k.ExpiresAt)
		}
	}
	clk.Add(23 * time.Hour)
	if published(server) {
		t.Errorf("key %s still in the JWKS 25h after it retired", first)
	}
}
