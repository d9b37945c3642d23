package oauthd_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkIDTokenSign signs a typical ID token with each algorithm an
// oauthd client may choose (Client.IDTokenSignedResponseAlg), with go-jose
// as the OpenID Connect provider does. RS256 costs about 30 times EdDSA.
func BenchmarkIDTokenSign(b *testing.B) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": "https://auth.example.com", "sub": "3f2c7e1a-0000-4000-8000-000000000001", "aud": "test_client",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "auth_time": now.Unix(), "nonce": "n-0S6_WzA2Mj",
		"at_hash": "77QmUPtjPfzWtF2AnpK9RQ", "email": "admin@example.com", "email_verified": true,
	})
	for _, k := range []struct {
		alg jose.SignatureAlgorithm
		key any
	}{{jose.RS256, rsaKey}, {jose.ES256, ecKey}, {jose.EdDSA, edKey}} {
		b.Run(string(k.alg), func(b *testing.B) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: "k1"}},
				(&jose.SignerOptions{}).WithType("JWT"))
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				jws, err := signer.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
