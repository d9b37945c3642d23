package app

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadWith runs Load with an environment and command-line flags.
func loadWith(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fv := Flags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("flags %v: %v", args, err)
	}
	return Load(func(k string) string { return env[k] }, fv)
}

// A negative max_failures is refused, from the file, the environment or a
// flag, naming the key, where it was set and the allowed range: it used to
// be taken for 0, which turns the limit off.
func TestNegativeMaxFailuresRefused(t *testing.T) {
	for _, key := range []string{"rate_limit.login_account", "rate_limit.login_ip", "rate_limit.client"} {
		s := findSetting(key + ".max_failures")
		file := filepath.Join(t.TempDir(), "oauthd.yaml")
		group := strings.TrimPrefix(key, "rate_limit.")
		if err := os.WriteFile(file, []byte("rate_limit:\n  "+group+":\n    max_failures: -1\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		want := "config: " + key + ".max_failures: must be between 0 (the limit off) and 1000000, not -1 (set by "
		for _, tt := range []struct {
			name  string
			env   map[string]string
			args  []string
			where string
		}{
			{"flag", nil, []string{"--" + s.FlagName(), "-1"}, "--" + s.FlagName() + ")"},
			{"environment", map[string]string{s.EnvName(): "-5"}, nil, s.EnvName() + ")"},
			{"file", map[string]string{"OAUTHD_CONFIG": file}, nil, file + ":3)"},
		} {
			_, err := loadWith(t, tt.env, tt.args...)
			w := want + tt.where
			if tt.name == "environment" {
				w = strings.Replace(w, "not -1", "not -5", 1)
			}
			if err == nil || err.Error() != w {
				t.Errorf("%s %s: error %v; want %q", key, tt.name, err, w)
			}
		}
		// 0 still turns the limit off.
		c, err := loadWith(t, nil, "--"+s.FlagName(), "0")
		if err != nil {
			t.Fatalf("%s 0: %v", key, err)
		}
		if findLimit(&c, key).Enabled() {
			t.Errorf("%s: 0 did not turn the limit off", key)
		}
	}
	if _, err := loadWith(t, nil, "--rate-limit-client-max-failures", "1000001"); err == nil ||
		!strings.Contains(err.Error(), "rate_limit.client.max_failures: must be between 0 (the limit off) and 1000000") {
		t.Errorf("a huge max_failures: %v", err)
	}
}

func findLimit(c *Config, key string) interface{ Enabled() bool } {
	switch key {
	case "rate_limit.login_account":
		return c.Provider.LoginLimit
	case "rate_limit.login_ip":
		return c.Provider.LoginIPLimit
	}
	return c.Provider.ClientLimit
}

// Every duration and number of the configuration refuses a negative value,
// naming the key and the variable that set it; also the durations of a
// rate limit that is off.
func TestNegativeValuesRefused(t *testing.T) {
	n := 0
	for _, s := range settings {
		var v string
		switch s.kind {
		case "duration":
			v = "-1s"
		case "int":
			v = "-1"
		default:
			continue
		}
		n++
		_, err := loadWith(t, map[string]string{s.EnvName(): v})
		if err == nil || !strings.HasPrefix(err.Error(), "config: "+s.key+": must ") || !strings.HasSuffix(err.Error(), "(set by "+s.EnvName()+")") {
			t.Errorf("%s=%s: error %v; want one naming %s and %s", s.EnvName(), v, err, s.key, s.EnvName())
		}
	}
	if n < 20 {
		t.Errorf("only %d numeric settings", n)
	}
	for _, key := range []string{"rate_limit.client.window", "rate_limit.client.lockout", "rate_limit.login_ip.max_lockout"} {
		s := findSetting(key)
		group := strings.Split(key, ".")[1]
		_, err := loadWith(t, nil, "--rate-limit-"+strings.ReplaceAll(group, "_", "-")+"-max-failures", "0", "--"+s.FlagName(), "-1m")
		if err == nil || !strings.Contains(err.Error(), "config: "+key+": must ") {
			t.Errorf("%s -1m with the limit off: %v", key, err)
		}
	}
}
