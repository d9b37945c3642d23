package main

import (
	"context"
	"testing"
)

// config check and serve refuse a negative rate limit (which used to turn
// the limit off, with config check saying valid), naming the flag.
func TestConfigCheckRefusesNegativeRateLimit(t *testing.T) {
	for _, cmd := range [][]string{{"config", "check"}, {"serve"}} {
		args := append(cmd, "--addr", "127.0.0.1:0", "--db", t.TempDir()+"/o.db", "--rate-limit-login-account-max-failures=-1")
		r := runCmd(context.Background(), nil, nil, args...)
		want := "oauthd: config: rate_limit.login_account.max_failures: must be between 0 (the limit off) and 1000000, not -1 (set by --rate-limit-login-account-max-failures)\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", cmd, r.code, r.stderr, want)
		}
	}
}
