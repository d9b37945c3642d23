package oauthd

import "testing"

// The bodies the token and introspection endpoints write most.
func BenchmarkAppendJSON(b *testing.B) {
	resp := &TokenResponse{AccessToken: NewCredential(), TokenType: "Bearer", ExpiresIn: 3600, RefreshToken: NewCredential(),
		RefreshTokenExpiresIn: 86400, Scope: "openid profile email offline_access"}
	in := &introspection{Active: true, Scope: "read write", ClientID: "svc", TokenType: "Bearer", Exp: 1798765432, Iat: 1798761832,
		Iss: "https://auth.example.com"}
	buf := make([]byte, 0, 1024)
	b.Run("token", func(b *testing.B) {
		for b.Loop() {
			buf = resp.appendJSON(buf[:0])
		}
	})
	b.Run("introspection", func(b *testing.B) {
		for b.Loop() {
			buf = in.appendJSON(buf[:0])
		}
	})
}
