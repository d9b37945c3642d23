package main

import (
	"context"
	"strings"
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

// config check validates addr and metrics.addr as serve listens on them: a
// port out of range (which serve refused with "invalid port") or missing
// is refused; ":8000" and port 0 are fine.
func TestConfigCheckAddrPort(t *testing.T) {
	ctx := context.Background()
	db := t.TempDir() + "/o.db"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "127.0.0.1:99999"}, `oauthd: config: addr: "127.0.0.1:99999" has no port number from 0 to 65535 (e.g. localhost:8000 or :8000) (set by --addr)` + "\n"},
		{[]string{"--addr", "127.0.0.1:"}, `oauthd: config: addr: "127.0.0.1:" has no port number from 0 to 65535`},
		{[]string{"--addr", "127.0.0.1:http"}, `oauthd: config: addr: "127.0.0.1:http" has no port number`},
		{[]string{"--addr", "127.0.0.1:-1"}, `oauthd: config: addr: "127.0.0.1:-1" has no port number`},
		{[]string{"--addr", "127.0.0.1"}, `oauthd: config: addr: "127.0.0.1" is not host:port`},
		{[]string{"--addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:65536"}, `oauthd: config: metrics.addr: "127.0.0.1:65536" has no port number from 0 to 65535 (e.g. 127.0.0.1:9090 or :9090) (set by --metrics-addr)` + "\n"},
	} {
		for _, cmd := range [][]string{{"config", "check"}, {"serve"}} {
			if cmd[0] == "serve" && strings.HasSuffix(tt.args[1], ":http") {
				continue // serve must not listen on port 80 if it were not refused
			}
			// serve stops at once, should it start.
			cctx, cancel := context.WithCancel(ctx)
			if cmd[0] == "serve" {
				cancel()
			}
			r := runCmd(cctx, nil, nil, append(append(cmd, "--db", db), tt.args...)...)
			cancel()
			if r.code != 1 || !strings.HasPrefix(r.stderr, tt.want) {
				t.Errorf("%v %v: exit %d, stderr %q; want 1 and %q", cmd, tt.args, r.code, r.stderr, tt.want)
			}
		}
	}
	for _, args := range [][]string{{"--addr", ":8000", "--issuer", "https://auth.example.com"}, {"--addr", "127.0.0.1:0", "--metrics-addr", ":9090"}, {"--addr", "[::1]:65535", "--issuer", "http://localhost:8000"}} {
		if r := runCmd(ctx, nil, nil, append([]string{"config", "check", "--db", db}, args...)...); r.code != 0 {
			t.Errorf("config check %v: exit %d %s", args, r.code, r.stderr)
		}
	}
}

// A configuration file that cannot be read is named with the variable
// or flag that named it.
func TestMissingConfigFileNamesItsSource(t *testing.T) {
	ctx := context.Background()
	for _, cmd := range [][]string{{"config", "check"}, {"config", "print"}, {"serve"}} {
		r := runCmd(ctx, map[string]string{"OAUTHD_CONFIG": "/nonexistent.yaml"}, nil, cmd...)
		if want := "oauthd: config: OAUTHD_CONFIG: open /nonexistent.yaml: no such file or directory\n"; r.code != 1 || r.stderr != want {
			t.Errorf("%v: exit %d, stderr %q; want 1 and %q", cmd, r.code, r.stderr, want)
		}
		r = runCmd(ctx, nil, nil, append(cmd, "--config", "/nonexistent.yaml")...)
		if want := "oauthd: config: --config: open /nonexistent.yaml: no such file or directory\n"; r.code != 1 || r.stderr != want {
			t.Errorf("%v --config: exit %d, stderr %q; want 1 and %q", cmd, r.code, r.stderr, want)
		}
	}
}
