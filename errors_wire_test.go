package oauthd

import "testing"

// RFC 6749 §5.2 (and §4.1.2.1, §4.2.2.1): error_description is limited to
// %x20-21 / %x23-5B / %x5D-7E.
func TestWireDescription(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"RFC6749_5.2/plain_text_unchanged", "client authentication failed", "client authentication failed"},
		{"RFC6749_5.2/double_quote", `grant_type "x" is not supported`, `grant_type 'x' is not supported`},
		{"RFC6749_5.2/backslash", `a\b`, `a/b`},
		{"RFC6749_5.2/section_sign", "see RFC 7636 §4.2", "see RFC 7636 section 4.2"},
		{"RFC6749_5.2/section_sign_space", "see § 4.2", "see section 4.2"},
		{"RFC6749_5.2/non_ascii", "é — ok", "? ? ok"},
		{"RFC6749_5.2/controls", "a\tb\nc\x00d\x7f", "a b c?d?"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := wireDescription(c.in); got != c.want {
				t.Errorf("wireDescription(%q) = %q; want %q", c.in, got, c.want)
			}
		})
	}
}

func FuzzWireDescription(f *testing.F) {
	f.Add(`grant_type "x" §4 é\`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, c := range []byte(wireDescription(s)) {
			if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
				t.Fatalf("wireDescription(%q) keeps byte %#02x", s, c)
			}
		}
	})
}

// A request value is repeated in a description only when it is a
// registered protocol value: a token of letters and underscores can spell a
// message too (RFC 6749 §4.1.2.1: error_description is for the developer,
// and a client may show it).
func TestQuoted(t *testing.T) {
	for in, want := range map[string]string{
		"web_message": " 'web_message'",
		"token":       " 'token'",
		"urn:ietf:params:oauth:grant-type:device_code": " 'urn:ietf:params:oauth:grant-type:device_code'",
		"":            "",
		"Call us now": "",
		"Your_account-is-locked_call-1-800-555-0199_now": "",
		"Session-expired_log-in-at-evil-example-com":     "",
		"Support:https://evil.example/help":              "",
		"Verify-now.evil.example":                        "",
		"urn:example:grant.v1":                           "",
		"<img>":                                          "",
		"é":                                              "",
		"x":                                              "",
	} {
		if got := quoted(in); got != want {
			t.Errorf("quoted(%q) = %q; want %q", in, got, want)
		}
	}
}
