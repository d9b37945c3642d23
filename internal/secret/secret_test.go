package secret

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

var fast = Params{Memory: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h, err := Hash("password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("Hash = %q; want argon2id PHC string with default params", h)
	}
	if strings.Contains(h, "password") {
		t.Error("hash contains the secret")
	}
	if !Verify(h, "password") {
		t.Error("Verify(right secret) = false")
	}
	if Verify(h, "passwore") {
		t.Error("Verify(wrong secret) = true")
	}
	h2, _ := Hash("password")
	if h == h2 {
		t.Error("two hashes of one secret are equal; salt missing")
	}
}

func TestVerifyBcrypt(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte("admin"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(string(b), "admin") || Verify(string(b), "nimda") {
		t.Error("bcrypt verification wrong")
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, h := range []string{
		"", "password", "$argon2id$", "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=18$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=64,t=1,p=1$!!!$a2V5a2V5a2V5a2V5a2V5",
	} {
		if Verify(h, "") || Verify(h, "password") {
			t.Errorf("Verify(%q) = true; want false", h)
		}
	}
}

func TestVerifyDummy(t *testing.T) {
	if VerifyDummy("anything") {
		t.Error("VerifyDummy = true")
	}
}

func TestCache(t *testing.T) {
	h, _ := HashWith("s3cret", fast)
	c := NewCache(2)
	if c.Verify("a", h, "wrong") || c.Len() != 0 {
		t.Fatal("a failure was cached or accepted")
	}
	if !c.Verify("a", h, "s3cret") || c.Len() != 1 {
		t.Fatal("right secret not accepted and cached")
	}
	if c.Verify("a", h, "wrong") {
		t.Error("cached entry accepted a wrong secret")
	}
	// The secret changed: the old one must no longer pass.
	h2, _ := HashWith("new", fast)
	if c.Verify("a", h2, "s3cret") {
		t.Error("old secret accepted after the stored hash changed")
	}
	if !c.Verify("a", h2, "new") {
		t.Error("new secret refused")
	}
	c.Verify("b", h, "s3cret")
	c.Verify("c", h, "s3cret")
	if c.Len() > 2 {
		t.Errorf("Len = %d; want at most 2", c.Len())
	}
	c.Forget("c")
	if c.Verify("x", "", "") {
		t.Error("empty hash accepted")
	}
}

func TestCacheConcurrent(t *testing.T) {
	h, _ := HashWith("s", fast)
	c := NewCache(8)
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			want := i%2 == 0
			s := "s"
			if !want {
				s = "t"
			}
			if got := c.Verify("id", h, s); got != want {
				t.Errorf("Verify(%q) = %v; want %v", s, got, want)
			}
		}(i)
	}
	wg.Wait()
}

// A burst of concurrent verifications of one uncached secret runs the KDF
// once; a wrong secret is checked by itself and never cached.
func TestCacheSharesKDF(t *testing.T) {
	h, _ := HashWith("s", fast)
	var calls atomic.Int32
	release := make(chan struct{})
	verifyFn = func(ctx context.Context, key string, bounded bool, hash, s string) (bool, error) {
		calls.Add(1)
		<-release
		return verifyIn(ctx, key, bounded, hash, s)
	}
	defer func() { verifyFn = verifyIn }()
	c := NewCache(8)
	var wg sync.WaitGroup
	results := make(chan bool, 21)
	for range 20 {
		wg.Go(func() { results <- c.Verify("id", h, "s") })
	}
	wg.Go(func() { results <- c.Verify("id", h, "wrong") })
	for calls.Load() < 2 { // the right secret's flight and the wrong one's
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	close(results)
	var ok, bad int
	for r := range results {
		if r {
			ok++
		} else {
			bad++
		}
	}
	if ok != 20 || bad != 1 {
		t.Errorf("%d accepted, %d refused; want 20 and 1", ok, bad)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the KDF ran %d times; want 2 (one per distinct secret)", n)
	}
	if !c.Verify("id", h, "s") || calls.Load() != 2 {
		t.Error("the verified secret was not cached")
	}
	if c.Verify("id", h, "wrong") || calls.Load() != 3 {
		t.Error("a wrong secret was answered without the KDF")
	}
}

func BenchmarkSecretVerify(b *testing.B) {
	h, err := Hash("bench-secret") // the production parameters
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		c := NewCache(0)
		c.Verify("id", h, "bench-secret")
		b.ReportAllocs()
		for b.Loop() {
			if !c.Verify("id", h, "bench-secret") {
				b.Fatal("refused")
			}
		}
	})
	b.Run("uncached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !Verify(h, "bench-secret") {
				b.Fatal("refused")
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	h, _ := HashWith("seed", fast)
	f.Add(h, "seed")
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", "x")
	f.Add("$2a$04$abcdefghijklmnopqrstuv", "x")
	f.Fuzz(func(t *testing.T, hash, s string) {
		Verify(hash, s) // must not panic or hang
	})
}

// Wait waits for a verification in progress of the same secret, and only
// of the same secret; afterwards Known gives its outcome.
func TestCacheWait(t *testing.T) {
	h, _ := HashWith("s", fast)
	started, release := make(chan struct{}, 2), make(chan struct{})
	verifyFn = func(ctx context.Context, key string, bounded bool, hash, s string) (bool, error) {
		started <- struct{}{}
		<-release
		return verifyIn(ctx, key, bounded, hash, s)
	}
	defer func() { verifyFn = verifyIn }()
	c := NewCache(8)
	if c.Wait("id", h, "s") {
		t.Fatal("Wait reported a verification before any ran")
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.Verify("id", h, "s") })
	wg.Go(func() { c.Verify("id", h, "wrong") })
	<-started
	<-started
	if c.Wait("id", h, "other") || c.Wait("other-id", h, "s") || c.Wait("id", "", "s") {
		t.Error("Wait reported a verification of another secret, holder or hash")
	}
	waited := make(chan bool, 2)
	go func() { waited <- c.Wait("id", h, "s") }()
	go func() { waited <- c.Wait("id", h, "wrong") }()
	select {
	case <-waited:
		t.Fatal("Wait returned while the verification ran")
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	if !<-waited || !<-waited {
		t.Error("Wait did not report the verifications in progress")
	}
	wg.Wait()
	if !c.Known("id", h, "s") || c.Known("id", h, "wrong") {
		t.Error("after Wait, Known does not give the outcomes")
	}
}

// A stored bcrypt hash is run only when it is well formed and its cost at
// most maxBcryptCost: x/crypto/bcrypt runs costs up to 31 (a day of CPU
// for one check) and reads a malformed cost from any two characters, so
// one such hash would hold a KDF slot for hours at every sign-in of its
// user, and every other check would wait (found by FuzzVerify).
func TestBcryptCostBounded(t *testing.T) {
	ok, err := bcrypt.GenerateFromPassword([]byte("pw"), 12)
	if err != nil {
		t.Fatal(err)
	}
	if !Verify(string(ok), "pw") || Verify(string(ok), "other") {
		t.Error("a cost-12 bcrypt hash does not verify as it should")
	}
	salted := string(ok)[7:]
	for _, h := range []string{
		"$2a$17$" + salted, "$2b$31$" + salted, "$2y$99$" + salted, // too costly
		"$2a$03$" + salted, // under bcrypt's minimum
		"$2a$2700000000000000000000000 00000000000000000000000000000", // FuzzVerify's
		"$2a$12$" + salted[:52],       // short
		"$2a$12$" + salted[:52] + "!", // not bcrypt's base64
		"$2a$1x$" + salted,
	} {
		// Refused without running bcrypt: with it, the costly ones
		// would not return before the test's timeout.
		if Verify(h, "pw") {
			t.Errorf("Verify(%q) matched", h)
		}
	}
}
