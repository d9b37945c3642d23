package oauthd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
)

// RandomToken returns a new 256-bit random value, base64url-encoded (43
// characters). Codes, tokens, session ids and request ids are made with it.
func RandomToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on a broken system)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken is what stores keep instead of a code, token or session id:
// base64url(SHA-256(token)).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// mac is base64url(HMAC-SHA256(SHA-256(key), parts joined by NUL)). The
// key is hashed first because HMAC pads a short key with zero bytes: the
// keys "k" and "k\x00" would give the same MAC.
func mac(key string, parts ...string) string {
	k := sha256.Sum256([]byte(key))
	h := hmac.New(sha256.New, k[:])
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
