package oauthd

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
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
	if !ValidPKCEValue(verifier) {
		return false
	}
	var got string
	switch method {
	case PKCES256, "":
		got = S256Challenge(verifier)
	case PKCEPlain:
		got = verifier
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
