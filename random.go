package oauthd

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
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
	var r [16]byte
	rand.Read(r[:])
	var b [16 + 22]byte
	putTimeHex(b[:16], time.Now())
	base64.RawURLEncoding.Encode(b[16:], r[:])
	return string(b[:])
}

// putTimeHex writes t in nanoseconds as 16 lower-case hex digits into b.
func putTimeHex(b []byte, t time.Time) {
	const digits = "0123456789abcdef"
	n := uint64(t.UnixNano())
	for i := 15; i >= 0; i-- {
		b[i] = digits[n&0xf]
		n >>= 4
	}
}

// NewCredential returns a new authorization code, access token or refresh
// token: the current time in nanoseconds as 16 hex digits, a dot, and 256
// random bits (base64url): 60 characters. The time prefix is not secret
// (iat and the expiry say as much); it makes HashToken of successive
// credentials grow like the clock, so that a store's index of hashes takes
// each new one at its end instead of at a random place: in a B-tree store
// that is one page write fewer for every code and token issued, and recent
// credentials, the ones in use, share pages.
func NewCredential() string {
	// Built on the stack: the string is the only allocation.
	var b credential
	putCredential(&b)
	return string(b[:])
}

// credential is the bytes of a NewCredential.
type credential [17 + 43]byte

// putCredential writes a new credential (see NewCredential) into b.
func putCredential(b *credential) {
	var r [32]byte
	rand.Read(r[:]) // never fails (crypto/rand panics on a broken system)
	putTimeHex(b[:16], time.Now())
	b[16] = '.'
	base64.RawURLEncoding.Encode(b[17:], r[:])
}

// HashToken is what stores keep instead of a code, token or session id:
// base64url(SHA-256(token)), after the time prefix of a NewCredential
// (16 hex digits and a dot), kept as it is.
func HashToken(token string) string {
	// The token's bytes are only read: no copy of them is needed.
	sum := sha256.Sum256(readOnlyBytes(token))
	// Built in one buffer on the stack: the string is the only allocation.
	var b [17 + 43]byte
	n := 0
	if p, ok := timePrefix(token); ok {
		n = copy(b[:], p)
	}
	base64.RawURLEncoding.Encode(b[n:], sum[:])
	return string(b[:n+43])
}

// timePrefix returns the "16 hex digits and a dot" prefix of a
// NewCredential.
func timePrefix(token string) (string, bool) {
	if len(token) < 18 || token[16] != '.' {
		return "", false
	}
	for i := range 16 {
		if c := token[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return token[:17], true
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
