package oauthd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"unsafe"
)

// PKCE code challenge methods (RFC 7636 §4.2).
const (
	PKCES256  = "S256"
	PKCEPlain = "plain"
)

// ValidPKCEValue reports whether s is a valid code_verifier or
// code_challenge: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" /
// "." / "_" / "~" (RFC 7636 §4.1, §4.2).
func ValidPKCEValue(s string) bool {
	if len(s) < 43 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// S256Challenge is BASE64URL(SHA256(verifier)) (RFC 7636 §4.2).
func S256Challenge(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// verifyPKCE checks a code_verifier against the challenge of the
// authorization request in constant time (RFC 7636 §4.6).
func verifyPKCE(method, challenge, verifier string) bool {
	v := newPKCEProof(verifier)
	return v.matches(method, challenge)
}

// pkceProof is a code_verifier with its S256 value, computed on the stack
// before a code redemption's write, so that the check inside the write
// (see codeRedemption) is a comparison.
type pkceProof struct {
	verifier string
	valid    bool // ValidPKCEValue(verifier)
	s256     [43]byte
}

func newPKCEProof(verifier string) pkceProof {
	v := pkceProof{verifier: verifier, valid: ValidPKCEValue(verifier)}
	if v.valid {
		sum := sha256.Sum256(readOnlyBytes(verifier))
		base64.RawURLEncoding.Encode(v.s256[:], sum[:])
	}
	return v
}

// matches reports, in constant time, whether the verifier answers the
// challenge made with method (RFC 7636 §4.6); a missing method is S256's.
func (v *pkceProof) matches(method, challenge string) bool {
	if !v.valid {
		return false
	}
	switch method {
	case PKCES256, "":
		return subtle.ConstantTimeCompare(v.s256[:], readOnlyBytes(challenge)) == 1
	case PKCEPlain:
		return subtle.ConstantTimeCompare(readOnlyBytes(v.verifier), readOnlyBytes(challenge)) == 1
	}
	return false
}

// readOnlyBytes is the bytes of s without a copy, for functions that only
// read them and keep nothing: writing to them would change the string.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
