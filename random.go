package oauthd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// RandomToken returns a new 256-bit random value, base64url-encoded (43
// characters). Codes, tokens, session ids and request ids are made with it.
func RandomToken() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand panics on a broken system)
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewGrantID returns a new grant identifier: the current time in
// nanoseconds as 16 hex digits, then 128 random bits (base64url). Grant IDs
// never leave the server; starting them with the time makes them grow like
// the clock, so a store's index of grant IDs (used to revoke a grant's
// tokens at once) takes each new one at its end rather than at a random
// place: in a B-tree store that is one page write fewer per grant.
func NewGrantID() string {
	var b [16]byte
	rand.Read(b[:])
	t := uint64(time.Now().UnixNano())
	return strconv.FormatUint(t>>32|1<<32, 16)[1:] + strconv.FormatUint(t&0xffffffff|1<<32, 16)[1:] + base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken is what stores keep instead of a code, token or session id:
// base64url(SHA-256(token)).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// mac is base64url(HMAC-SHA256(key, parts joined by NUL)).
func mac(key string, parts ...string) string {
	h := hmac.New(sha256.New, []byte(key))
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}
