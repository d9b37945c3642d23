package pgstore_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/pgtest"
	"github.com/oauthd/oauthd/pgstore"
)

// The benchmarks mirror sqlitestore's. They need OAUTHD_TEST_POSTGRES_DSN
// and run on a schema of their own:
//
//	OAUTHD_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable \
//		go test -run '^$' -bench . ./pgstore/

// benchStore opens a store on a fresh schema for a benchmark.
func benchStore(b *testing.B) *pgstore.Store {
	b.Helper()
	dsn, _ := pgtest.Schema(b)
	s, err := pgstore.Open(b.Context(), dsn, pgstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

func benchToken(hash, kind string, now time.Time) *oauthd.Token {
	return &oauthd.Token{Hash: hash, Kind: kind, GrantID: "g", ClientID: "c", Subject: "u", Scopes: []string{"openid", "email"},
		IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

func benchCode(hash string, now time.Time) *oauthd.AuthCode {
	return &oauthd.AuthCode{Hash: hash, GrantID: "g-" + hash, ClientID: "c", Subject: "u", RedirectURI: "https://app.example/cb",
		Scopes: []string{"openid", "email"}, CodeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", CodeChallengeMethod: "S256",
		IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
}

// BenchmarkCreateTokens measures storing an access and a refresh token,
// one call at a time.
func BenchmarkCreateTokens(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	i := 0
	for b.Loop() {
		i++
		if err := s.CreateTokens(b.Context(), benchToken(fmt.Sprint("at-", i), oauthd.AccessToken, now), benchToken(fmt.Sprint("rt-", i), oauthd.RefreshToken, now)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteParallel measures concurrent CreateTokens calls, like
// sqlitestore's benchmark of the same name.
func BenchmarkWriteParallel(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			err := s.CreateTokens(b.Context(), benchToken(fmt.Sprint("at-", i), oauthd.AccessToken, now), benchToken(fmt.Sprint("rt-", i), oauthd.RefreshToken, now))
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkToken measures one token lookup at a time.
func BenchmarkToken(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	if err := s.CreateTokens(b.Context(), benchToken("h", oauthd.AccessToken, now)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.Token(b.Context(), "h"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenParallel measures concurrent token lookups.
func BenchmarkTokenParallel(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	if err := s.CreateTokens(b.Context(), benchToken("h", oauthd.AccessToken, now)); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Token(b.Context(), "h"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkConsumeAuthCode measures redeeming codes, one at a time; the
// codes are stored before the timer starts.
func BenchmarkConsumeAuthCode(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	codes := seedCodes(b, s, b.N, now)
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.ConsumeAuthCode(b.Context(), codes[i], now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkConsumeAuthCodeParallel measures concurrent redemptions of
// distinct codes.
func BenchmarkConsumeAuthCodeParallel(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	codes := seedCodes(b, s, b.N, now)
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.ConsumeAuthCode(b.Context(), codes[n.Add(1)-1], now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func seedCodes(b *testing.B, s *pgstore.Store, n int, now time.Time) []string {
	b.Helper()
	codes := make([]string, n)
	for i := range codes {
		codes[i] = fmt.Sprint("code-", i)
		if err := s.CreateAuthCode(b.Context(), benchCode(codes[i], now)); err != nil {
			b.Fatal(err)
		}
	}
	return codes
}

// BenchmarkRotateRefreshToken measures concurrent refreshes of distinct
// refresh tokens: each rotates one token and stores an access and a
// refresh token, in one transaction.
func BenchmarkRotateRefreshToken(b *testing.B) {
	s := benchStore(b)
	now := time.Now()
	for i := 0; i < b.N; i += 500 {
		var toks []*oauthd.Token
		for j := i; j < min(i+500, b.N); j++ {
			toks = append(toks, benchToken(fmt.Sprint("rt-", j), oauthd.RefreshToken, now))
		}
		if err := s.CreateTokens(b.Context(), toks...); err != nil {
			b.Fatal(err)
		}
	}
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) - 1
			_, err := s.RotateRefreshToken(b.Context(), fmt.Sprint("rt-", i), now, []byte("sealed successor"),
				benchToken(fmt.Sprint("next-at-", i), oauthd.AccessToken, now), benchToken(fmt.Sprint("next-rt-", i), oauthd.RefreshToken, now))
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPing measures a round trip to the server through the pool: the
// floor under every other benchmark.
func BenchmarkPing(b *testing.B) {
	s := benchStore(b)
	for b.Loop() {
		if err := s.Ping(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
