// Package storetest is the conformance suite every oauthd.Storage passes.
//
// A store's tests call Run with a function that returns a fresh, empty
// store and registers its cleanup:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) oauthd.Storage {
//			s := memstore.New()
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// Besides what the interfaces in package oauthd document, the suite pins
// down what they leave open, so that every store behaves alike:
//
//   - Times keep at least millisecond precision. The suite compares times
//     truncated to the millisecond; memstore and sqlitestore keep exactly
//     that.
//   - A nil and an empty slice (or map) are the same; a store may return
//     either.
//   - User claims round-trip as JSON: a store returns what encoding/json
//     decodes into a map[string]any (numbers come back as float64).
//   - Creating a record whose key is taken is ErrAlreadyExists for every
//     kind (auth requests, codes, tokens, sessions and signing keys too),
//     and CreateTokens stores all of its tokens or none.
//   - UpdateUser to a username another user has is ErrAlreadyExists.
//   - RotateRefreshToken returns the old token, now rotated, to the one call
//     that succeeds, and stores all of next or nothing at all.
//   - A store that is an oauthd.CodeRedeemer passes the RedeemAuthCode
//     group (which skips other stores): RedeemAuthCode returns the used
//     code to the one call that succeeds, as ConsumeAuthCode does, and
//     commits the code with all of its tokens or, when they cannot be
//     stored, nothing at all.
//   - A store that is an oauthd.RefreshRotator passes the
//     RotateRefreshTokenFunc group (which skips other stores): the one call
//     that rotates a token gets it back rotated; a refused rotation (rotate
//     returned an error) writes nothing; the rotation commits with all of
//     its tokens or, when they cannot be stored, nothing at all.
//   - A store that is an oauthd.SigningKeyBootstrapper passes the
//     CreateSigningKeyIfNoneActive group (which skips other stores): of
//     many concurrent calls for one algorithm exactly one stores its key;
//     only a key of the same algorithm whose signing window holds now
//     blocks one (a zero NotBefore is long past, a zero RetireAt past);
//     a taken ID is ErrAlreadyExists, as from CreateSigningKey.
//   - RevokeGrant and RevokeTokensOf succeed when nothing matches. A grant
//     revoked more than once stays revoked until the latest until. Tokens
//     that CreateTokens or RotateRefreshToken store for a revoked grant are
//     not found; whether they appear once the revocation is forgotten is
//     left open (memstore and sqlitestore never store them).
//   - A zero ExpiresAt (or a zero revocation until) never expires:
//     DeleteExpired keeps the record. DeleteExpired with a limit below one
//     removes nothing.
//   - A cancelled context makes every method fail with an error that wraps
//     context.Canceled, and a write refused that way has no effect.
//
// The race tests start their goroutines together, once every one of them
// is running, for several rounds, and check the outcome, never the
// timing; nothing in the suite sleeps. A store whose single-use step is a
// read and then a write, waiting for its database in between, fails them
// in almost every run. But no run proves atomicity: a read and a write a
// few nanoseconds apart (both in memory) can pass many runs, and only
// -race sees a data race. Run the suite with -race, and more than once
// (go test -race -count=10), when a store changes.
//
// The suite tests the methods of the store it is given. A wrapper that
// embeds a store with the optional methods (struct{ *memstore.Store })
// passes it while the Provider bypasses its overrides of the base methods
// (see oauthd.Storage on wrapping a store): the suite cannot tell.
package storetest

import (
	"testing"

	"github.com/oauthd/oauthd"
)

// Run runs the conformance suite. Each subtest gets a fresh, empty store from
// newStore, which registers the store's cleanup (Close) with t.
func Run(t *testing.T, newStore func(t *testing.T) oauthd.Storage) {
	t.Helper()
	groups := []struct {
		name  string
		tests []test
	}{
		{"Clients", clientTests},
		{"Users", userTests},
		{"AuthRequests", authRequestTests},
		{"AuthCodes", authCodeTests},
		{"RedeemAuthCode", redeemTests},
		{"Tokens", tokenTests},
		{"RotateRefreshTokenFunc", rotateFuncTests},
		{"Sessions", sessionTests},
		{"Consents", consentTests},
		{"SigningKeys", signingKeyTests},
		{"CreateSigningKeyIfNoneActive", bootstrapTests},
		{"DeleteExpired", expiryTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, newStore(t))
				})
			}
		})
	}
}

// test is one behaviour a store must have.
type test struct {
	name string
	run  func(t *testing.T, s oauthd.Storage)
}
