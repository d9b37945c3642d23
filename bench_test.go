package oauthd_test

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

// The hot paths of the token and introspection endpoints, through
// Provider.ServeHTTP with no network, on each store. They run in parallel
// (16 goroutines per CPU), as a server's requests do, so that the SQLite
// store's group commit is measured as it is used. The client secret is
// hashed with the production argon2id parameters: after the first request
// the verified-secret cache answers. `oauthd bench` measures the same over
// real HTTP.

const benchSecret = "bench-secret-0123456789"

var benchStores = []struct {
	name string
	open func(b *testing.B) oauthd.Storage
}{
	{"memstore", func(b *testing.B) oauthd.Storage { return memstore.New() }},
	{"sqlite", func(b *testing.B) oauthd.Storage {
		s, err := sqlitestore.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), sqlitestore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
}

type benchEnv struct {
	p     *oauthd.Provider
	store oauthd.Storage
	basic string
}

func newBenchEnv(b *testing.B, store oauthd.Storage) *benchEnv {
	b.Helper()
	// The client rate limit counts attempts in progress against its 20
	// failures; requests sharing one secret's KDF run take none, and a
	// cached secret takes none, but the limit is raised anyway so that a
	// slow machine cannot turn a benchmark into 429s. It is raised, not
	// turned off, so that its cost is measured.
	p, err := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: fakePages{},
		ClientLimit: oauthd.RateLimit{MaxFailures: 1000}}, store)
	if err != nil {
		b.Fatal(err)
	}
	h, err := secret.Hash(benchSecret)
	if err != nil {
		b.Fatal(err)
	}
	err = store.CreateClient(context.Background(), &oauthd.Client{ID: "svc", SecretHash: h, RedirectURIs: []string{redirectURI},
		GrantTypes: []string{oauthd.GrantClientCredentials, oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken},
		Scopes:     []string{"read", "write"}})
	if err != nil {
		b.Fatal(err)
	}
	// The user the benchmarks' codes and tokens belong to: the token
	// endpoint refuses a grant whose user no longer exists.
	now := time.Now()
	if err := store.CreateUser(context.Background(), &oauthd.User{ID: "u1", Username: "alice", CreatedAt: now, UpdatedAt: now}); err != nil {
		b.Fatal(err)
	}
	return &benchEnv{p: p, store: store, basic: "Basic " + base64.StdEncoding.EncodeToString([]byte("svc:"+benchSecret))}
}

// post serves one form POST and fails the benchmark unless it is 200.
func (e *benchEnv) post(b *testing.B, path, form string) {
	r := httptest.NewRequest("POST", path, strings.NewReader(form))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Authorization", e.basic)
	w := httptest.NewRecorder()
	e.p.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		b.Errorf("%s: %d %s", path, w.Code, w.Body)
	}
}

// runParallel runs body b.N times over 16 goroutines per CPU. Besides
// ns/op it reports cpu-ns/op, the CPU time the process used (every
// goroutine: the store's writer, the GC) per operation, which other
// programs sharing the machine disturb much less than the wall clock.
func runParallel(b *testing.B, body func(i int64)) {
	var n atomic.Int64
	b.SetParallelism(16)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body(n.Add(1) - 1)
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

// reportBatch reports the SQLite store's average group commit size.
func reportBatch(b *testing.B, store oauthd.Storage, before sqlitestore.WriteStats) {
	if s, ok := store.(*sqlitestore.Store); ok {
		ws := s.WriteStats()
		if n := ws.Transactions - before.Transactions; n > 0 {
			b.ReportMetric(float64(ws.Writes-before.Writes)/float64(n), "writes/txn")
		}
	}
}

func writeStats(store oauthd.Storage) sqlitestore.WriteStats {
	if s, ok := store.(*sqlitestore.Store); ok {
		return s.WriteStats()
	}
	return sqlitestore.WriteStats{}
}

// cpuTime is the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			e := newBenchEnv(b, st.open(b))
			e.post(b, oauthd.TokenPath, "grant_type=client_credentials") // pays the KDF once
			ws := writeStats(e.store)
			runParallel(b, func(int64) { e.post(b, oauthd.TokenPath, "grant_type=client_credentials") })
			reportBatch(b, e.store, ws)
		})
	}
}

// mintCodes stores n authorization codes with PKCE and returns them.
func mintCodes(b *testing.B, store oauthd.Storage, n int, challenge string) []string {
	b.Helper()
	codes := make([]string, n)
	now := time.Now()
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				codes[i] = oauthd.NewCredential()
				err := store.CreateAuthCode(context.Background(), &oauthd.AuthCode{Hash: oauthd.HashToken(codes[i]), GrantID: oauthd.RandomToken(),
					ClientID: "svc", Subject: "u1", RedirectURI: redirectURI, Scopes: []string{"read"}, CodeChallenge: challenge,
					CodeChallengeMethod: "S256", AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return codes
}

func BenchmarkCodeRedemption(b *testing.B) {
	const verifier = "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
	challenge := oauthd.S256Challenge(verifier)
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			e := newBenchEnv(b, st.open(b))
			codes := mintCodes(b, e.store, b.N+1, challenge)
			form := func(code string) string {
				return "grant_type=authorization_code&code=" + code + "&redirect_uri=" + url.QueryEscape(redirectURI) + "&code_verifier=" + verifier
			}
			e.post(b, oauthd.TokenPath, form(codes[b.N]))
			ws := writeStats(e.store)
			runParallel(b, func(i int64) { e.post(b, oauthd.TokenPath, form(codes[i])) })
			reportBatch(b, e.store, ws)
		})
	}
}

func BenchmarkRefresh(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			e := newBenchEnv(b, st.open(b))
			now := time.Now()
			tokens := make([]string, b.N+1)
			for i := range tokens {
				tokens[i] = oauthd.NewCredential()
				if err := e.store.CreateTokens(context.Background(), &oauthd.Token{Hash: oauthd.HashToken(tokens[i]), Kind: oauthd.RefreshToken,
					GrantID: oauthd.RandomToken(), ClientID: "svc", Subject: "u1", Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					b.Fatal(err)
				}
			}
			e.post(b, oauthd.TokenPath, "grant_type=refresh_token&refresh_token="+tokens[b.N])
			ws := writeStats(e.store)
			runParallel(b, func(i int64) { e.post(b, oauthd.TokenPath, "grant_type=refresh_token&refresh_token="+tokens[i]) })
			reportBatch(b, e.store, ws)
		})
	}
}

func BenchmarkIntrospect(b *testing.B) {
	for _, st := range benchStores {
		b.Run(st.name, func(b *testing.B) {
			e := newBenchEnv(b, st.open(b))
			at := oauthd.NewCredential()
			now := time.Now()
			if err := e.store.CreateTokens(context.Background(), &oauthd.Token{Hash: oauthd.HashToken(at), Kind: oauthd.AccessToken,
				GrantID: "g", ClientID: "svc", Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				b.Fatal(err)
			}
			e.post(b, oauthd.IntrospectPath, "token="+at)
			runParallel(b, func(int64) { e.post(b, oauthd.IntrospectPath, "token="+at) })
		})
	}
}

// BenchmarkCodeRedemptionOIDC redeems codes of OpenID Connect requests
// (scope openid) on the in-memory store: each token response carries an
// ID token signed with the client's algorithm by the Provider's signer.
func BenchmarkCodeRedemptionOIDC(b *testing.B) {
	const verifier = "bench-verifier-0123456789abcdefghijklmnopqrstuvwxyz"
	for _, alg := range []string{oauthd.AlgRS256, oauthd.AlgES256, oauthd.AlgEdDSA} {
		b.Run(alg, func(b *testing.B) {
			store := memstore.New()
			e := newBenchEnv(b, store)
			ctx := context.Background()
			c, _ := store.Client(ctx, "svc")
			c.IDTokenSignedResponseAlg = alg
			c.Scopes = append(c.Scopes, oauthd.ScopeOpenID)
			if err := store.UpdateClient(ctx, c); err != nil {
				b.Fatal(err)
			}
			now := time.Now()
			codes := make([]string, b.N+1)
			for i := range codes {
				codes[i] = oauthd.NewCredential()
				if err := store.CreateAuthCode(ctx, &oauthd.AuthCode{Hash: oauthd.HashToken(codes[i]), GrantID: oauthd.NewGrantID(),
					ClientID: "svc", Subject: "u1", RedirectURI: redirectURI, Scopes: []string{oauthd.ScopeOpenID}, Nonce: "n-0S6_WzA2Mj",
					CodeChallenge: oauthd.S256Challenge(verifier), CodeChallengeMethod: "S256", AuthTime: now, IssuedAt: now,
					ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
					b.Fatal(err)
				}
			}
			form := func(code string) string {
				return "grant_type=authorization_code&code=" + code + "&redirect_uri=" + url.QueryEscape(redirectURI) + "&code_verifier=" + verifier
			}
			e.post(b, oauthd.TokenPath, form(codes[b.N])) // creates the signing keys
			runParallel(b, func(i int64) { e.post(b, oauthd.TokenPath, form(codes[i])) })
		})
	}
}

// BenchmarkIntrospectOverHTTP introspects through a real net/http server
// on loopback, one keep-alive connection, on the in-memory store: what
// net/http does with the answer (copying the header map, writing it,
// computing the Content-Length) is measured, which the benchmarks above,
// answering into a ResponseRecorder, leave out. allocs/op counts the
// client's allocations too.
func BenchmarkIntrospectOverHTTP(b *testing.B) {
	e := newBenchEnv(b, memstore.New())
	at := oauthd.NewCredential()
	now := time.Now()
	if err := e.store.CreateTokens(context.Background(), &oauthd.Token{Hash: oauthd.HashToken(at), Kind: oauthd.AccessToken,
		GrantID: "g", ClientID: "svc", Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(e.p)
	defer srv.Close()
	c := srv.Client()
	form := "token=" + at
	post := func() {
		r, _ := http.NewRequest("POST", srv.URL+oauthd.IntrospectPath, strings.NewReader(form))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Authorization", e.basic)
		res, err := c.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || res.ContentLength <= 0 {
			b.Fatalf("introspect: %d, Content-Length %d", res.StatusCode, res.ContentLength)
		}
	}
	post()
	b.ReportAllocs()
	for b.Loop() {
		post()
	}
}
