package oauthd_test

import (
	"strings"
	"testing"

	"github.com/oauthd/oauthd"
)

// HashSecret makes what a library user stores as SecretHash: argon2id, a
// new salt each time, accepted by the Provider's client authentication
// (ExampleNew authenticates a client with it).
func TestHashSecret(t *testing.T) {
	a, err := oauthd.HashSecret("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := oauthd.HashSecret("s3cret")
	if !strings.HasPrefix(a, "$argon2id$v=19$") || a == b || strings.Contains(a, "s3cret") {
		t.Errorf("HashSecret: %q and %q; want two salted argon2id hashes", a, b)
	}
}
