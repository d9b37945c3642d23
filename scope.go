package oauthd

import (
	"slices"
	"strings"
)

// ParseScope splits a scope parameter into its scope tokens (RFC 6749
// §3.3): space-delimited, each of the characters %x21 / %x23-5B / %x5D-7E.
// Repeated tokens are dropped; order is kept. It returns false when a
// token has a character outside that set.
func ParseScope(s string) ([]string, bool) {
	var out []string
	// Past a few tokens, repeats are found in a set: a 64 KB scope of
	// 16,000 tokens cost 440 ms of CPU when each was compared with every
	// one before it.
	var seen map[string]bool
	for s != "" {
		var tok string
		tok, s, _ = strings.Cut(s, " ")
		if tok == "" {
			continue
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c < 0x21 || c == 0x22 || c == 0x5C || c > 0x7E {
				return nil, false
			}
		}
		switch {
		case seen != nil:
			if !seen[tok] {
				seen[tok] = true
				out = append(out, tok)
			}
		case !slices.Contains(out, tok):
			out = append(out, tok)
			if len(out) == 16 {
				seen = make(map[string]bool, 64)
				for _, t := range out {
					seen[t] = true
				}
			}
		}
	}
	return out, true
}

// JoinScope is the scope parameter for the tokens.
func JoinScope(scopes []string) string { return strings.Join(scopes, " ") }

// subset reports whether every scope in a is in b.
func subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}
