package secret

import "context"

// ReplaceGateForTest swaps the KDF gate for one with these limits, so that
// tests of the callers can fill it; restore puts the previous one back. Not
// for concurrent use with other tests that check secrets.
func ReplaceGateForTest(slots, maxWaiting, perKey int) (restore func()) {
	prev := kdf.Swap(newGate(slots, maxWaiting, perKey))
	return func() { kdf.Store(prev) }
}

// HoldSlotForTest takes a KDF slot without running the KDF, as a long
// check would; release gives it back.
func HoldSlotForTest() (release func()) {
	g := kdf.Load()
	g.acquire(context.Background(), "", false)
	return g.release
}
