package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// The tests of oauthd.SigningKeyBootstrapper, which a store may implement;
// they skip a store that does not.
var bootstrapTests = []test{
	{"StoresTheKeyWhenNoneSigns", testBootstrapStores},
	{"ConcurrentCallsStoreOneKey", testBootstrapRace},
	{"ConcurrentCallsStoreOneKeyPerAlgorithm", testBootstrapRaceAlgorithms},
	{"KeyOfAnotherAlgorithmDoesNotBlock", testBootstrapOtherAlgorithm},
	{"OnlyAKeyNotRetiredBlocks", testBootstrapWindow},
	{"TakenIDIsAlreadyExists", testBootstrapDuplicateID},
	{"BootstrapCancelled", testBootstrapCancelled},
}

// bootstrapper returns the store as a SigningKeyBootstrapper, or skips the
// test.
func bootstrapper(t *testing.T, s oauthd.Storage) oauthd.SigningKeyBootstrapper {
	t.Helper()
	b, ok := s.(oauthd.SigningKeyBootstrapper)
	if !ok {
		t.Skip("the store is not an oauthd.SigningKeyBootstrapper")
	}
	return b
}

// firstKey is a key of alg as a KeyManager makes the first one: it signs
// from now for 30 days.
func firstKey(id, alg string, now time.Time) *oauthd.SigningKey {
	k := fullKey(id, now)
	k.Algorithm = alg
	return k
}

// keyIDs are the IDs of the stored keys of alg, or of every key when alg
// is empty, sorted.
func keyIDs(t *testing.T, s oauthd.Storage, alg string) []string {
	t.Helper()
	keys, err := s.SigningKeys(t.Context())
	must(t, "SigningKeys", err)
	var ids []string
	for _, k := range keys {
		if alg == "" || k.Algorithm == alg {
			ids = append(ids, k.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// testBootstrapStores checks that a key is stored, as CreateSigningKey
// stores it, into an empty store and next to keys that do not block it.
func testBootstrapStores(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	ctx := t.Context()
	in := firstKey("first", "ES256", at(0))
	must(t, "CreateSigningKeyIfNoneActive(empty store)", b.CreateSigningKeyIfNoneActive(ctx, in, at(0)))
	got, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	if len(got) != 1 {
		t.Fatalf("SigningKeys = %d keys; want 1", len(got))
	}
	if g, w := normKey(got[0]), normKey(in); !reflect.DeepEqual(g, w) {
		t.Errorf("stored key = %+v; want %+v", g, w)
	}
}

// bootstrapRace calls CreateSigningKeyIfNoneActive from n goroutines per
// algorithm, started together, each with a key of its own that signs from
// now, and returns each call's error by algorithm, and the IDs of the keys.
func bootstrapRace(t *testing.T, b oauthd.SigningKeyBootstrapper, algs []string, n int) (errs map[string][]error, ids map[string][]string) {
	t.Helper()
	errs, ids = map[string][]error{}, map[string][]string{}
	for _, alg := range algs {
		errs[alg] = make([]error, n)
		for i := range n {
			ids[alg] = append(ids[alg], fmt.Sprintf("%s-node-%d", alg, i))
		}
	}
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
	)
	for _, alg := range algs {
		for i := range n {
			wg.Go(func() {
				<-start
				errs[alg][i] = b.CreateSigningKeyIfNoneActive(t.Context(), firstKey(ids[alg][i], alg, at(0)), at(0))
			})
		}
	}
	close(start)
	wg.Wait()
	return errs, ids
}

// oneStored checks the outcomes of concurrent CreateSigningKeyIfNoneActive
// calls for one algorithm: exactly one stored its key, every other got
// ErrAlreadyExists. It returns the index of the one that stored.
func oneStored(t *testing.T, alg string, errs []error) int {
	t.Helper()
	return oneWinnerLosing(t, "CreateSigningKeyIfNoneActive("+alg+")", errs, oauthd.ErrAlreadyExists)
}

// testBootstrapRace starts many nodes' first key for one algorithm at
// once: exactly one key is stored, the one of the call that succeeded.
func testBootstrapRace(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	const n = 16
	errs, ids := bootstrapRace(t, b, []string{"RS256"}, n)
	winner := oneStored(t, "RS256", errs["RS256"])
	if got, want := keyIDs(t, s, ""), []string{ids["RS256"][winner]}; !slices.Equal(got, want) {
		t.Errorf("stored keys %v; want only the winner's %v", got, want)
	}
}

// testBootstrapRaceAlgorithms races the first keys of three algorithms at
// once: one key is stored for each, a key of one algorithm blocking none
// of the others.
func testBootstrapRaceAlgorithms(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	const n = 8
	algs := []string{"RS256", "ES256", "EdDSA"}
	errs, ids := bootstrapRace(t, b, algs, n)
	for _, alg := range algs {
		winner := oneStored(t, alg, errs[alg])
		if got, want := keyIDs(t, s, alg), []string{ids[alg][winner]}; !slices.Equal(got, want) {
			t.Errorf("stored %s keys %v; want only the winner's %v", alg, got, want)
		}
	}
	if got := keyIDs(t, s, ""); len(got) != len(algs) {
		t.Errorf("stored keys %v; want one per algorithm", got)
	}
}

// testBootstrapOtherAlgorithm checks that a signing key of one algorithm
// does not keep the first key of another from being stored.
func testBootstrapOtherAlgorithm(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	ctx := t.Context()
	must(t, "CreateSigningKeyIfNoneActive(ES256)", b.CreateSigningKeyIfNoneActive(ctx, firstKey("es", "ES256", at(0)), at(0)))
	must(t, "CreateSigningKeyIfNoneActive(RS256) next to a signing ES256 key",
		b.CreateSigningKeyIfNoneActive(ctx, firstKey("rs", "RS256", at(0)), at(0)))
	wantErr(t, "CreateSigningKeyIfNoneActive(ES256) again",
		b.CreateSigningKeyIfNoneActive(ctx, firstKey("es-2", "ES256", at(time.Second)), at(time.Second)), oauthd.ErrAlreadyExists)
	if got, want := keyIDs(t, s, ""), []string{"es", "rs"}; !slices.Equal(got, want) {
		t.Errorf("stored keys %v; want %v", got, want)
	}
}

// testBootstrapWindow checks which stored key of the algorithm blocks a
// new one: one that has not retired at now (now < RetireAt), signing or
// due to, however it was stored. A retired key and a key without a
// RetireAt do not.
func testBootstrapWindow(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	const day = 24 * time.Hour
	now := at(0)
	cases := []struct {
		name      string
		notBefore time.Time
		retireAt  time.Time
		blocks    bool
	}{
		{"SigningSinceYesterday", at(-day), at(29 * day), true},
		{"SigningFromNow", now, at(30 * day), true},
		{"SigningWithoutNotBefore", time.Time{}, at(day), true},
		{"RetiredYesterday", at(-31 * day), at(-day), false},
		{"RetiresNow", at(-30 * day), now, false},
		{"NextSignsTomorrow", at(day), at(31 * day), true},
		{"NextSignsInAMillisecond", now.Add(time.Millisecond), at(30 * day), true},
		{"WithoutRetireAt", at(-day), time.Time{}, false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			// Each case uses an algorithm of its own in the one store.
			alg := fmt.Sprintf("ALG%d", i)
			old := firstKey("old-"+alg, alg, tc.notBefore)
			old.RetireAt, old.ExpiresAt, old.CreatedAt = tc.retireAt, at(90*day), at(-40*day)
			must(t, "CreateSigningKey", s.CreateSigningKey(ctx, old))
			err := b.CreateSigningKeyIfNoneActive(ctx, firstKey("new-"+alg, alg, now), now)
			want := []string{"new-" + alg, "old-" + alg}
			if tc.blocks {
				wantErr(t, "CreateSigningKeyIfNoneActive", err, oauthd.ErrAlreadyExists)
				want = want[1:]
			} else {
				must(t, "CreateSigningKeyIfNoneActive", err)
			}
			if got := keyIDs(t, s, alg); !slices.Equal(got, want) {
				t.Errorf("stored %s keys %v; want %v", alg, got, want)
			}
		})
	}
}

// testBootstrapDuplicateID checks that a taken ID is ErrAlreadyExists, as
// from CreateSigningKey, even when no key blocks the algorithm.
func testBootstrapDuplicateID(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	ctx := t.Context()
	retired := firstKey("k1", "ES256", at(-60*24*time.Hour))
	must(t, "CreateSigningKey", s.CreateSigningKey(ctx, retired))
	wantErr(t, "CreateSigningKeyIfNoneActive(taken ID)",
		b.CreateSigningKeyIfNoneActive(ctx, firstKey("k1", "RS256", at(0)), at(0)), oauthd.ErrAlreadyExists)
	got, err := s.SigningKeys(ctx)
	must(t, "SigningKeys", err)
	if len(got) != 1 || !reflect.DeepEqual(normKey(got[0]), normKey(retired)) {
		t.Errorf("SigningKeys after a taken ID = %+v; want only the first key", got)
	}
}

// testBootstrapCancelled checks that a cancelled context fails the call
// with an error that wraps context.Canceled, and stores nothing.
func testBootstrapCancelled(t *testing.T, s oauthd.Storage) {
	b := bootstrapper(t, s)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err := b.CreateSigningKeyIfNoneActive(ctx, firstKey("k1", "ES256", at(0)), at(0))
	wantErr(t, "CreateSigningKeyIfNoneActive with a cancelled context", err, context.Canceled)
	if got := keyIDs(t, s, ""); len(got) != 0 {
		t.Errorf("stored keys %v after a cancelled call; want none", got)
	}
}
