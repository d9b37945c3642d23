package sqlitestore_test

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/sqlitestore"
)

// BenchmarkWriteParallel measures concurrent writes, which the writer
// commits in groups.
func BenchmarkWriteParallel(b *testing.B) {
	s, err := sqlitestore.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			err := s.CreateTokens(b.Context(),
				&oauthd.Token{Hash: fmt.Sprint("at-", i), Kind: oauthd.AccessToken, GrantID: "g", IssuedAt: now, ExpiresAt: now.Add(time.Hour)},
				&oauthd.Token{Hash: fmt.Sprint("rt-", i), Kind: oauthd.RefreshToken, GrantID: "g", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTokenParallel measures concurrent reads on the read pool.
func BenchmarkTokenParallel(b *testing.B) {
	s, err := sqlitestore.Open(b.Context(), filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	if err := s.CreateTokens(b.Context(), &oauthd.Token{Hash: "h", Kind: oauthd.AccessToken, GrantID: "g", Scopes: []string{"openid"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
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
