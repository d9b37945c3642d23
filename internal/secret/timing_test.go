package secret

import "testing"

// VerifyDummy does the work of one Verify against a hash made with the
// default parameters (the parameters of every hash the CLI stores), so an
// unknown user or client costs one KDF run, like a wrong password.
func TestVerifyDummyRunsTheKDF(t *testing.T) {
	VerifyDummy("warm up") // makes the dummy hash once
	before := KDFRuns()
	VerifyDummy("guess")
	if got := KDFRuns() - before; got != 1 {
		t.Errorf("VerifyDummy ran the KDF %d times; want 1", got)
	}
	p, _, _, err := parseArgon2(dummyHash)
	if err != nil || p != DefaultParams {
		t.Errorf("the dummy hash has parameters %+v (%v); want DefaultParams %+v", p, err, DefaultParams)
	}
	h, _ := HashWith("right", fast)
	before = KDFRuns()
	Verify(h, "wrong")
	if got := KDFRuns() - before; got != 1 {
		t.Errorf("Verify of a wrong secret ran the KDF %d times; want 1", got)
	}
}

// A wrong secret is never cached: every attempt pays the KDF.
func TestCacheWrongSecretRunsTheKDF(t *testing.T) {
	c := NewCache(4)
	h, _ := HashWith("right", fast)
	c.Verify("id", h, "right")
	for range 3 {
		before := KDFRuns()
		if c.Verify("id", h, "wrong") {
			t.Fatal("a wrong secret verified")
		}
		if got := KDFRuns() - before; got != 1 {
			t.Errorf("a wrong secret ran the KDF %d times; want 1", got)
		}
	}
}
