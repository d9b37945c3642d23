package sqlitestore

import (
	"database/sql"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/oauthd/oauthd"
)

// BenchmarkWriterBatch measures the writer alone: batches of writes handed
// straight to runTx on the benchmark's goroutine, without the callers and
// the channel, so that ns/write and cpu-ns/write are the writer's cost of a
// write (its statements, its share of BEGIN and COMMIT). "cc" writes are a
// client_credentials token each (of no grant, as the server issues them); "code" writes are a code redemption each
// (the code's UPDATE and two token inserts; in a batch, the batch's codes
// are consumed together and its tokens inserted together).
func BenchmarkWriterBatch(b *testing.B) {
	for _, kind := range []string{"cc", "code"} {
		for _, size := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/batch=%d", kind, size), func(b *testing.B) {
				benchWriterBatch(b, kind, size)
			})
		}
	}
}

func benchWriterBatch(b *testing.B, kind string, size int) {
	ctx := b.Context()
	s, err := Open(ctx, b.TempDir()+"/bench.db", Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	st, err := s.ready(ctx)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	var codes []string
	if kind == "code" {
		// The codes go in with batches of maxBatch writes, then a
		// checkpoint: the timed part starts with a short WAL, as it
		// would a minute into a server's life, rather than with b.N
		// one-write transactions for the checkpointer to copy while
		// it runs.
		codes = make([]string, b.N)
		var ops []*writeOp
		for i := range codes {
			codes[i] = oauthd.HashToken(oauthd.NewCredential())
			c := &oauthd.AuthCode{Hash: codes[i], GrantID: oauthd.NewGrantID(), ClientID: "svc", Subject: "u1",
				RedirectURI: "https://svc.example/cb", Scopes: []string{"read"}, CodeChallenge: oauthd.RandomToken(), CodeChallengeMethod: "S256",
				AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
			ops = append(ops, &writeOp{ctx: ctx, fn: func(x *txn) error {
				_, err := x.exec(st.createAuthCode, c.Hash, c.GrantID, c.ClientID, c.Subject, c.RedirectURI, joinScopes(c.Scopes),
					c.CodeChallenge, c.CodeChallengeMethod, c.Nonce, c.Claims, unixMS(c.AuthTime), unixMS(c.IssuedAt), unixMS(c.ExpiresAt))
				return err
			}})
			if len(ops) == maxBatch || i == len(codes)-1 {
				for _, err := range s.w.runTx(ops) {
					if err != nil {
						b.Fatal(err)
					}
				}
				ops = ops[:0]
			}
		}
		onWriteConn(b, s, func(c *sql.Conn) error {
			_, err := c.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
			return err
		})
	}
	usedAt := unixMS(now)
	// redeem is the code a "code" write consumes (see txn.readClaims).
	redeem := func(i int) *claim {
		if kind == "cc" {
			return nil
		}
		return &claim{st: st, hash: codes[i], usedAt: usedAt}
	}
	write := func(i int) func(*txn) error {
		if kind == "cc" {
			args := [][]any{tokenArgs(&oauthd.Token{Hash: oauthd.HashToken(oauthd.NewCredential()), Kind: oauthd.AccessToken,
				ClientID: "svc", Scopes: []string{"read"}, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})}
			return func(x *txn) error { return createTokens(st, x, args) }
		}
		hash := codes[i]
		return func(x *txn) error {
			c, err := consumeCode(st, x, usedAt, hash)
			if err != nil {
				return err
			}
			args := [][]any{
				tokenArgs(&oauthd.Token{Hash: oauthd.HashToken(oauthd.NewCredential()), Kind: oauthd.AccessToken, GrantID: c.GrantID,
					ClientID: c.ClientID, Subject: c.Subject, Scopes: c.Scopes, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}),
				tokenArgs(&oauthd.Token{Hash: oauthd.HashToken(oauthd.NewCredential()), Kind: oauthd.RefreshToken, GrantID: c.GrantID,
					ClientID: c.ClientID, Subject: c.Subject, Scopes: c.Scopes, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour)}),
			}
			return createTokens(st, x, args)
		}
	}
	ops := make([]*writeOp, 0, size)
	cpu0, w0 := cpuTime(), writtenBytes()
	b.ResetTimer()
	for i := 0; i < b.N; {
		ops = ops[:0]
		for ; len(ops) < size && i < b.N; i++ {
			ops = append(ops, &writeOp{ctx: ctx, fn: write(i), claim: redeem(i)})
		}
		for _, err := range s.w.runTx(ops) {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(writtenBytes()-w0)/float64(b.N), "written-B/op")
}

// writtenBytes is what this process has written to files and sockets so
// far (wchar of /proc/self/io): in the benchmark, the WAL and the
// checkpoints.
func writtenBytes() int64 {
	data, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

// cpuTime is the user and system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
