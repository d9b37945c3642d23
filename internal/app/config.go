package app

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/oauthd/oauthd/pgstore"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/ui"
)

// The configuration of the binary is read, lowest precedence first, from
// the defaults, a YAML file (--config, or OAUTHD_CONFIG), environment
// variables and flags. Every setting has one key in the file, such as
// lifetimes.access_token_ttl; its environment variable is OAUTHD_ and the
// key in capitals with dots as underscores
// (OAUTHD_LIFETIMES_ACCESS_TOKEN_TTL), and its flag is the key with dots
// and underscores as dashes (--lifetimes-access-token-ttl). Durations are
// Go durations ("90s", "15m", "720h"); lists are YAML sequences, or
// comma-separated in the environment and flags.

// setting is one configuration key and where it lives in Config.
type setting struct {
	key  string // the dotted YAML path
	help string
	// kind is what the value is, for help texts: string, duration, bool,
	// int, list or map. A map is set in the file only.
	kind string
	// set parses a value from the environment or a flag into c.
	set func(c *Config, s string) error
	// setNode sets the value from the YAML file.
	setNode func(c *Config, n *yaml.Node) error
	// get is the value to print: a string, bool, int, []string or
	// map[string]string.
	get func(c *Config) any
	// mask hides the secret parts of a value in config print.
	mask func(string) string
	// noFlag keeps a secret off the command line (and the process list).
	noFlag bool
	// flagAliases and envAliases are shorter names for the same setting
	// (--theme-dir for --ui-theme-dir); an alias variable is read before
	// the key's own, so the key's own wins when both are set.
	flagAliases, envAliases []string
}

// alias gives a setting a shorter flag name and, unless env is empty, a
// shorter environment variable.
func alias(s setting, flag, env string) setting {
	s.flagAliases = append(s.flagAliases, flag)
	if env != "" {
		s.envAliases = append(s.envAliases, env)
	}
	return s
}

// EnvName is the setting's environment variable.
func (s *setting) EnvName() string {
	if s.kind == "map" {
		return ""
	}
	return "OAUTHD_" + strings.ToUpper(strings.ReplaceAll(s.key, ".", "_"))
}

// FlagName is the setting's flag, without dashes.
func (s *setting) FlagName() string {
	if s.kind == "map" || s.noFlag {
		return ""
	}
	return strings.NewReplacer(".", "-", "_", "-").Replace(s.key)
}

func scalar(n *yaml.Node) (string, error) {
	if n.Kind != yaml.ScalarNode {
		return "", errors.New("want a single value, not a list or a map")
	}
	if n.Tag == "!!null" {
		return "", nil
	}
	return n.Value, nil
}

func fromScalar(set func(c *Config, s string) error) func(c *Config, n *yaml.Node) error {
	return func(c *Config, n *yaml.Node) error {
		s, err := scalar(n)
		if err != nil {
			return err
		}
		return set(c, s)
	}
}

func strSetting(key, help string, f func(*Config) *string) setting {
	set := func(c *Config, s string) error { *f(c) = s; return nil }
	return setting{key: key, help: help, kind: "string", set: set, setNode: fromScalar(set), get: func(c *Config) any { return *f(c) }}
}

func durSetting(key, help string, f func(*Config) *time.Duration) setting {
	set := func(c *Config, s string) error {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration such as 90s, 15m or 24h", s)
		}
		*f(c) = d
		return nil
	}
	return setting{key: key, help: help, kind: "duration", set: set, setNode: fromScalar(set), get: func(c *Config) any { return formatDuration(*f(c)) }}
}

func boolSetting(key, help string, f func(*Config) *bool) setting {
	set := func(c *Config, s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*f(c) = b
		return nil
	}
	return setting{key: key, help: help, kind: "bool", set: set, setNode: fromScalar(set), get: func(c *Config) any { return *f(c) }}
}

func intSetting(key, help string, f func(*Config) *int) setting {
	set := func(c *Config, s string) error {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		*f(c) = n
		return nil
	}
	return setting{key: key, help: help, kind: "int", set: set, setNode: fromScalar(set), get: func(c *Config) any { return *f(c) }}
}

// listSetting is a list of strings: a YAML sequence in the file,
// comma-separated in the environment and flags.
func listSetting(key, help string, set func(c *Config, items []string) error, get func(c *Config) []string) setting {
	return setting{key: key, help: help, kind: "list",
		set: func(c *Config, s string) error {
			var items []string
			for _, it := range strings.Split(s, ",") {
				if it = strings.TrimSpace(it); it != "" {
					items = append(items, it)
				}
			}
			return set(c, items)
		},
		setNode: func(c *Config, n *yaml.Node) error {
			if n.Tag == "!!null" {
				return set(c, nil)
			}
			if n.Kind != yaml.SequenceNode {
				return errors.New("want a list")
			}
			var items []string
			for _, it := range n.Content {
				s, err := scalar(it)
				if err != nil {
					return err
				}
				items = append(items, s)
			}
			return set(c, items)
		},
		get: func(c *Config) any { return get(c) }}
}

// mapSetting is a map of strings, set in the file only.
func mapSetting(key, help string, f func(*Config) *map[string]string) setting {
	return setting{key: key, help: help, kind: "map",
		// A flag alias adds one name=text pair per use; the file's map
		// and the earlier pairs stay.
		set: func(c *Config, s string) error {
			name, text, ok := strings.Cut(s, "=")
			name, text = strings.TrimSpace(name), strings.TrimSpace(text)
			if !ok || name == "" || text == "" {
				return fmt.Errorf("%q is not name=text", s)
			}
			m := make(map[string]string, len(*f(c))+1)
			for k, v := range *f(c) {
				m[k] = v
			}
			m[name] = text
			*f(c) = m
			return nil
		},
		setNode: func(c *Config, n *yaml.Node) error {
			if n.Tag == "!!null" {
				*f(c) = nil
				return nil
			}
			if n.Kind != yaml.MappingNode {
				return errors.New("want a map of names to texts")
			}
			m := map[string]string{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				v, err := scalar(n.Content[i+1])
				if err != nil {
					return fmt.Errorf("%s: %w", n.Content[i].Value, err)
				}
				m[n.Content[i].Value] = v
			}
			*f(c) = m
			return nil
		},
		get: func(c *Config) any {
			if *f(c) == nil {
				return map[string]string{}
			}
			return *f(c)
		}}
}

// limitSettings are the four settings of a rate limit. A max_failures of
// 0 turns the limit off (the library's negative MaxFailures).
func limitSettings(key, what string, f func(*Config) *oauthd.RateLimit) []setting {
	max := intSetting(key+".max_failures", "failures allowed within the window before "+what+" is locked out; 0 turns the limit off",
		func(c *Config) *int { return &f(c).MaxFailures })
	set := max.set
	max.set = func(c *Config, s string) error {
		if err := set(c, s); err != nil {
			return err
		}
		// The value as given, for Validate: a negative one is refused,
		// not taken for 0 (off).
		if c.maxFailures == nil {
			c.maxFailures = map[string]int{}
		}
		c.maxFailures[key+".max_failures"] = f(c).MaxFailures
		if f(c).MaxFailures <= 0 {
			f(c).MaxFailures = -1
		}
		return nil
	}
	max.setNode = fromScalar(max.set)
	max.get = func(c *Config) any { return max0(f(c).MaxFailures) }
	return []setting{max,
		durSetting(key+".window", "how long failures are counted from the first one", func(c *Config) *time.Duration { return &f(c).Window }),
		durSetting(key+".lockout", "the first lockout; each further one doubles", func(c *Config) *time.Duration { return &f(c).Lockout }),
		durSetting(key+".max_lockout", "the longest lockout", func(c *Config) *time.Duration { return &f(c).MaxLockout }),
	}
}

func max0(n int) int { return max(n, 0) }

// keySetting is the key encryption key: base64 in the file and the
// environment, never a flag, masked by config print.
func keySetting(key, help string) setting {
	set := func(c *Config, s string) error {
		k, err := ParseKeyEncryptionKey(s)
		if err != nil {
			return err
		}
		c.Provider.KeyEncryptionKey = k
		return nil
	}
	return setting{key: key, help: help, kind: "string", set: set, setNode: fromScalar(set), noFlag: true,
		get: func(c *Config) any {
			if len(c.Provider.KeyEncryptionKey) == 0 {
				return ""
			}
			return base64.StdEncoding.EncodeToString(c.Provider.KeyEncryptionKey)
		},
		mask: func(s string) string {
			if s == "" {
				return ""
			}
			return "***"
		}}
}

// ParseKeyEncryptionKey decodes a key encryption key: 32 bytes in base64,
// standard or URL alphabet, padded or not; "" is no key.
func ParseKeyEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			if len(b) != 32 {
				return nil, fmt.Errorf("is %d bytes; want 32 (generate one with: openssl rand -base64 32)", len(b))
			}
			return b, nil
		}
	}
	return nil, errors.New("is not base64 (generate one with: openssl rand -base64 32)")
}

// enabledSetting is a bool setting "enabled" of a field "disabled".
func enabledSetting(key, help string, f func(*Config) *bool) setting {
	set := func(c *Config, s string) error {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		*f(c) = !b
		return nil
	}
	return setting{key: key, help: help, kind: "bool", set: set, setNode: fromScalar(set), get: func(c *Config) any { return !*f(c) }}
}

// settings lists every configuration key, in the order config print shows
// them.
var settings = func() []setting {
	s := []setting{
		strSetting("issuer", "public issuer URL; default http(s)://<addr>; required when addr listens on every interface", func(c *Config) *string { return &c.Issuer }),
		strSetting("addr", "listen address", func(c *Config) *string { return &c.Addr }),
		strSetting("db", "SQLite file path or postgres:// DSN", func(c *Config) *string { return &c.DB }),
		boolSetting("demo", "seed the walkthrough's demo client and user (not for production)", func(c *Config) *bool { return &c.Demo }),
		boolSetting("no_migrate", "do not migrate the database schema at start-up; fail unless it is current", func(c *Config) *bool { return &c.NoMigrate }),
		strSetting("log.format", "log format: text or json", func(c *Config) *string { return &c.LogFormat }),
		strSetting("log.level", "log level: debug, info, warn or error", func(c *Config) *string { return &c.LogLevel }),
		strSetting("tls.cert_file", "PEM certificate chain: serve HTTPS directly (with tls.key_file)", func(c *Config) *string { return &c.TLSCertFile }),
		strSetting("tls.key_file", "PEM private key of tls.cert_file", func(c *Config) *string { return &c.TLSKeyFile }),
		listSetting("trusted_proxies", "reverse proxies (CIDRs or addresses) whose X-Forwarded-For gives the client IP (for the log and the per-IP rate limits)",
			func(c *Config, items []string) error {
				ps, err := ParsePrefixes(items)
				c.Provider.TrustedProxies = ps
				return err
			},
			func(c *Config) []string {
				out := []string{}
				for _, p := range c.Provider.TrustedProxies {
					out = append(out, p.String())
				}
				return out
			}),
		durSetting("shutdown_timeout", "how long SIGTERM waits for in-flight requests", func(c *Config) *time.Duration { return &c.ShutdownTimeout }),

		durSetting("lifetimes.access_token_ttl", "lifetime of access tokens", func(c *Config) *time.Duration { return &c.Provider.AccessTokenTTL }),
		durSetting("lifetimes.refresh_token_ttl", "lifetime of refresh tokens", func(c *Config) *time.Duration { return &c.Provider.RefreshTokenTTL }),
		durSetting("lifetimes.refresh_token_max_lifetime", "ends every grant this long after the person signed in, however often it is refreshed; 0s: no limit",
			func(c *Config) *time.Duration { return &c.Provider.RefreshTokenMaxLifetime }),
		durSetting("lifetimes.code_ttl", "lifetime of authorization codes (at most 10m)", func(c *Config) *time.Duration { return &c.Provider.CodeTTL }),
		durSetting("lifetimes.auth_request_ttl", "how long a person has to sign in and decide", func(c *Config) *time.Duration { return &c.Provider.AuthRequestTTL }),
		durSetting("lifetimes.session_ttl", "how long a login lasts", func(c *Config) *time.Duration { return &c.Provider.SessionTTL }),
		durSetting("lifetimes.id_token_ttl", "lifetime of OpenID Connect ID tokens", func(c *Config) *time.Duration { return &c.Provider.IDTokenTTL }),
		durSetting("lifetimes.refresh_grace_period", "a refresh retried within this time gets the same tokens instead of revoking the grant; 0s: never",
			func(c *Config) *time.Duration { return &c.Provider.RefreshGracePeriod }),

		boolSetting("grants.enable_password_grant", "enable the resource owner password credentials grant for clients that list it",
			func(c *Config) *bool { return &c.Provider.EnablePasswordGrant }),
		boolSetting("grants.enable_implicit_grant", "enable the implicit grant and the OpenID Connect implicit and hybrid flows (response types token, id_token, code id_token...) for clients that list them",
			func(c *Config) *bool { return &c.Provider.EnableImplicitGrant }),
		boolSetting("grants.allow_plain_pkce", "accept code_challenge_method=plain", func(c *Config) *bool { return &c.Provider.AllowPlainPKCE }),

		alias(strSetting("ui.theme_dir", "directory whose templates/ and static/ replace the embedded pages' files", func(c *Config) *string { return &c.UI.ThemeDir }),
			"theme-dir", "OAUTHD_THEME_DIR"),
		alias(strSetting("ui.product_name", "name shown on every page", func(c *Config) *string { return &c.UI.ProductName }),
			"product-name", "OAUTHD_PRODUCT_NAME"),
		alias(strSetting("ui.primary_color", "colour of the main buttons (#rgb, #rrggbb or a CSS name)", func(c *Config) *string { return &c.UI.PrimaryColor }),
			"primary-color", "OAUTHD_PRIMARY_COLOR"),
		alias(strSetting("ui.accent_color", "colour of links and the focus outline", func(c *Config) *string { return &c.UI.AccentColor }),
			"accent-color", "OAUTHD_ACCENT_COLOR"),
		alias(strSetting("ui.default_locale", "language when the browser asks for none that is supported", func(c *Config) *string { return &c.UI.DefaultLocale }),
			"default-locale", "OAUTHD_DEFAULT_LOCALE"),
		alias(mapSetting("ui.scope_descriptions", "descriptions of scopes on the consent page, by scope name", func(c *Config) *map[string]string { return &c.UI.ScopeDescriptions }),
			"scope-description", ""),

		durSetting("key.rotation_period", "how long each ID token signing key signs before the next takes over (at least 1h)",
			func(c *Config) *time.Duration { return &c.Provider.KeyRotationPeriod }),
		durSetting("key.refresh_interval", "how often a node re-reads the signing keys, to see a rotation made by another",
			func(c *Config) *time.Duration { return &c.Provider.KeyRefreshInterval }),
		keySetting("key.encryption_key", "32 bytes in base64 (openssl rand -base64 32) encrypting the private signing keys in the database; environment or file only"),

		durSetting("gc.interval", "how often expired codes, tokens, sessions and requests are deleted", func(c *Config) *time.Duration { return &c.GCInterval }),
		intSetting("gc.batch_size", "records of each kind deleted per batch", func(c *Config) *int { return &c.GCBatchSize }),
	}
	s = append(s, limitSettings("rate_limit.login_account", "an account", func(c *Config) *oauthd.RateLimit { return &c.Provider.LoginLimit })...)
	s = append(s, limitSettings("rate_limit.login_ip", "a client IP", func(c *Config) *oauthd.RateLimit { return &c.Provider.LoginIPLimit })...)
	s = append(s, limitSettings("rate_limit.client", "a client_id from one client IP", func(c *Config) *oauthd.RateLimit { return &c.Provider.ClientLimit })...)
	s = append(s,
		enabledSetting("metrics.enabled", "serve Prometheus metrics at /metrics", func(c *Config) *bool { return &c.MetricsDisabled }),
		strSetting("metrics.addr", "serve /metrics, /healthz and /readyz on this address instead of the main one", func(c *Config) *string { return &c.MetricsAddr }),
	)
	for i := range s {
		if s[i].key == "db" {
			s[i].mask = MaskDSN
		}
	}
	return s
}()

func findSetting(key string) *setting {
	for i := range settings {
		if settings[i].key == key {
			return &settings[i]
		}
	}
	return nil
}

// isGroup reports whether key is a group of settings, like "lifetimes".
func isGroup(key string) bool {
	for _, s := range settings {
		if strings.HasPrefix(s.key, key+".") {
			return true
		}
	}
	return false
}

// Keys lists every configuration key.
func Keys() []string {
	var ks []string
	for _, s := range settings {
		ks = append(ks, s.key)
	}
	return ks
}

// EnvNames lists every environment variable that sets a key, and
// OAUTHD_CONFIG.
func EnvNames() []string {
	ns := []string{"OAUTHD_CONFIG"}
	for _, s := range settings {
		if n := s.EnvName(); n != "" {
			ns = append(ns, n)
		}
		ns = append(ns, s.envAliases...)
	}
	return ns
}

// Default returns the configuration before any file, variable or flag:
// every field at its default.
func Default() Config {
	var c Config
	c.Defaults()
	return c
}

// Flags registers a flag for every setting on fs (and --config) and
// returns what the command line set, to pass to Load after fs.Parse.
func Flags(fs *flag.FlagSet) *FlagValues {
	fv := &FlagValues{}
	fs.Func("config", "YAML configuration `file` (env OAUTHD_CONFIG)", func(s string) error { fv.file = s; return nil })
	def := Default()
	for i := range settings {
		s := &settings[i]
		name := s.FlagName()
		for _, a := range s.flagAliases {
			help := "same as --" + name + " (`" + s.kind + "`)"
			if name == "" { // a map: the file sets it whole, the flag one pair
				help = s.help + " (`name=text`, repeatable; key " + s.key + ")"
			}
			fs.Var(&flagValue{s: s, fv: fv, name: a}, a, help)
		}
		if name == "" {
			continue
		}
		help := s.help + " ("
		switch s.kind {
		case "bool":
		case "list":
			help += "comma-separated `list`; "
		default:
			help += "`" + s.kind + "`; "
		}
		help += "env " + strings.Join(append([]string{s.EnvName()}, s.envAliases...), " or ")
		if v := s.get(&def); v != "" && v != false && fmt.Sprint(v) != "[]" {
			help += fmt.Sprintf("; default %v", v)
		}
		help += ")"
		fs.Var(&flagValue{s: s, fv: fv, name: name}, name, help)
	}
	return fv
}

// FlagValues are the settings given on a command line, in order.
type FlagValues struct {
	file string
	set  []flagSet
}

type flagSet struct {
	s    *setting
	name string // the flag used, for errors
	v    string
}

type flagValue struct {
	s    *setting
	fv   *FlagValues
	name string
}

func (f *flagValue) String() string { return "" }
func (f *flagValue) Set(v string) error {
	var scratch Config
	if err := f.s.set(&scratch, v); err != nil {
		return err
	}
	f.fv.set = append(f.fv.set, flagSet{f.s, f.name, v})
	return nil
}
func (f *flagValue) IsBoolFlag() bool { return f.s.kind == "bool" }

// Load reads the configuration: the defaults, then the YAML file (flag
// --config, else OAUTHD_CONFIG; none if both are empty), then the OAUTHD_
// environment variables, then the flags; and validates it. Errors name the
// key, and the file line or variable that set it.
func Load(getenv func(string) string, flags *FlagValues) (Config, error) {
	c := Default()
	// src is where each key was last set, for the errors of Validate.
	src := map[string]string{}
	file, from := getenv("OAUTHD_CONFIG"), "OAUTHD_CONFIG"
	if flags != nil && flags.file != "" {
		file, from = flags.file, "--config"
	}
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("config: %s: %w", from, err)
		}
		if err := c.applyYAML(file, b, src); err != nil {
			return c, err
		}
	}
	if err := c.applyEnv(getenv, src, nil); err != nil {
		return c, err
	}
	if flags != nil {
		for _, f := range flags.set {
			if err := f.s.set(&c, f.v); err != nil {
				return c, fmt.Errorf("config: %s (--%s): %w", f.s.key, f.name, err)
			}
			src[f.s.key] = "--" + f.name
		}
	}
	c.src = src
	return c, c.withSource(c.Validate())
}

// withSource adds to an error of Validate or CheckDeployment where its
// key was set, if Load knows: "(set by OAUTHD_GC_BATCH_SIZE)".
func (c *Config) withSource(err error) error {
	var ke *keyError
	if errors.As(err, &ke) && c.src[ke.key] != "" {
		return fmt.Errorf("%w (set by %s)", err, c.src[ke.key])
	}
	return err
}

// applyEnv sets the keys (every key when keys is nil) whose OAUTHD_
// environment variables are set, recording them in src.
func (c *Config) applyEnv(getenv func(string) string, src map[string]string, keys []string) error {
	for i := range settings {
		s := &settings[i]
		if keys != nil && !slices.Contains(keys, s.key) {
			continue
		}
		names := s.envAliases
		if n := s.EnvName(); n != "" {
			names = append(slices.Clone(names), n) // the key's own last: it wins
		}
		for _, name := range names {
			if v := getenv(name); v != "" {
				if err := s.set(c, v); err != nil {
					return fmt.Errorf("config: %s (%s): %w", s.key, name, err)
				}
				src[s.key] = name
			}
		}
	}
	return nil
}

// ApplyEnv sets the named keys whose OAUTHD_ environment variables are set,
// as Load does after the file: for CLI commands that take a few settings
// of the server's configuration.
func (c *Config) ApplyEnv(getenv func(string) string, keys ...string) error {
	return c.applyEnv(getenv, map[string]string{}, keys)
}

// testKnobs are the environment variables the project's tests and CI
// read (besides OAUTHD_TEST_...), which reach the servers they start.
var testKnobs = []string{"OAUTHD_REQUIRE_POSTGRES", "OAUTHD_REQUIRE_BROWSER", "OAUTHD_FUZZTIME", "OAUTHD_TRIALS",
	"OAUTHD_SCREENSHOTS", "OAUTHD_CRASH_ROUNDS", "OAUTHD_CHROMIUM", "OAUTHD_SQLITESTORE_CRASH_WRITER"}

// A keyError is Validate's error about one key.
type keyError struct{ key, msg string }

func (e *keyError) Error() string { return "config: " + e.key + ": " + e.msg }

// UnknownEnv returns the names among environ's (NAME=value entries) that
// start with OAUTHD_ but name no setting: misspelt, they would otherwise
// be ignored without a word. OAUTHD_KEY_ENCRYPTION_KEY and the variables
// of the project's tests and CI (OAUTHD_TEST_... and testKnobs) are known.
func UnknownEnv(environ []string) []string {
	known := map[string]bool{"OAUTHD_KEY_ENCRYPTION_KEY": true}
	for _, n := range testKnobs {
		known[n] = true
	}
	for _, n := range EnvNames() {
		known[n] = true
	}
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "OAUTHD_") && !strings.HasPrefix(name, "OAUTHD_TEST_") && !known[name] {
			unknown = append(unknown, name)
		}
	}
	slices.Sort(unknown)
	return unknown
}

// ReadFile applies a YAML configuration file to the defaults without
// validating the values: for commands that need only some keys, such as
// db.
func ReadFile(path string) (Config, error) { return ReadFileFrom(path, "") }

// ReadFileFrom is ReadFile of the file named by from ("--config" or
// "OAUTHD_CONFIG"), which an error reading it names.
func ReadFileFrom(path, from string) (Config, error) {
	c := Default()
	b, err := os.ReadFile(path)
	if err != nil {
		if from != "" {
			return c, fmt.Errorf("config: %s: %w", from, err)
		}
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.applyYAML(path, b, nil)
}

// ParseYAML applies a YAML configuration file's content to the defaults
// and validates the result; name is the file name for errors.
func ParseYAML(name string, b []byte) (Config, error) {
	c := Default()
	if err := c.applyYAML(name, b, nil); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// applyYAML sets the keys of a YAML document. An unknown key, a key given
// twice and a value of the wrong type are errors naming the key and line.
// src, when not nil, records the file and line that set each key. A file
// of several documents (separated by ---) is refused, naming the line of
// the second, unless the documents after the first are empty (a trailing
// ---): they would otherwise be ignored, unknown keys and all.
func (c *Config) applyYAML(name string, b []byte, src map[string]string) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil // an empty file
	} else if err != nil {
		return fmt.Errorf("config: %s: %w", name, err)
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("config: %s: %w", name, err)
		}
		if !emptyDocument(&next) {
			return fmt.Errorf("config: %s:%d: a second YAML document (after ---): the file must be one document; put every key in the first", name, next.Line)
		}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	return c.applyMapping(name, "", doc.Content[0], src)
}

// emptyDocument reports whether a YAML document holds nothing: only
// comments, or a null.
func emptyDocument(doc *yaml.Node) bool {
	for _, n := range doc.Content {
		if n.Kind != yaml.ScalarNode || n.Tag != "!!null" {
			return false
		}
	}
	return true
}

func (c *Config) applyMapping(file, prefix string, n *yaml.Node, src map[string]string) error {
	if n.Kind != yaml.MappingNode {
		what := "the file"
		if prefix != "" {
			what = strings.TrimSuffix(prefix, ".")
		}
		return fmt.Errorf("config: %s:%d: %s: want a map of keys", file, n.Line, what)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			// An alias (*name) as a key is read by YAML as the anchored
			// node's value, not by its name: refused rather than read
			// one way here and another way by YAML's own tools.
			return fmt.Errorf("config: %s:%d: a key must be written out, not an alias or a collection", file, k.Line)
		}
		key := prefix + k.Value
		if seen[key] {
			return fmt.Errorf("config: %s:%d: %s is set twice", file, k.Line, key)
		}
		seen[key] = true
		if s := findSetting(key); s != nil {
			if err := s.setNode(c, v); err != nil {
				return fmt.Errorf("config: %s:%d: %s: %w", file, v.Line, key, err)
			}
			if src != nil {
				src[key] = fmt.Sprintf("%s:%d", file, v.Line)
			}
			continue
		}
		if isGroup(key) {
			if v.Tag == "!!null" {
				continue
			}
			if err := c.applyMapping(file, key+".", v, src); err != nil {
				return err
			}
			continue
		}
		return fmt.Errorf("config: %s:%d: unknown key %q", file, k.Line, key)
	}
	return nil
}

// WriteYAML writes the configuration as YAML in the order of the settings,
// with secrets masked: what `oauthd config print` shows.
func (c *Config) WriteYAML(w io.Writer) error {
	root := &yaml.Node{Kind: yaml.MappingNode}
	for _, s := range settings {
		parent := root
		parts := strings.Split(s.key, ".")
		for _, p := range parts[:len(parts)-1] {
			parent = child(parent, p)
		}
		v := s.get(c)
		if s.mask != nil {
			v = s.mask(v.(string))
		}
		var vn yaml.Node
		if err := vn.Encode(v); err != nil {
			return err
		}
		parent.Content = append(parent.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: parts[len(parts)-1]}, &vn)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return err
	}
	enc.Close()
	_, err := w.Write(buf.Bytes())
	return err
}

// child returns the mapping under key in the mapping n, adding it if absent.
func child(n *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	c := &yaml.Node{Kind: yaml.MappingNode}
	n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, c)
	return c
}

// formatDuration writes a duration the short way: 1h, 15m, 90s, 1h30m.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MaskDSN hides the password of a DSN, for logs, messages and config
// print: in a postgres:// URL's user information or password parameter, or
// in a key=value connection string. A SQLite path is returned as it is.
func MaskDSN(dsn string) string { return pgstore.RedactDSN(dsn) }

// DefaultIssuer is the issuer derived from addr when none is configured:
// http://<addr>, or https://<addr> with TLS (localhost for a wildcard
// host, which serve and CheckDeployment refuse: remote clients cannot use
// it).
func (c *Config) DefaultIssuer() string { return issuerFor(c.Addr, c.TLSCertFile != "") }

// ParsePrefixes parses CIDR prefixes and bare addresses (a /32 or /128).
func ParsePrefixes(items []string) ([]netip.Prefix, error) {
	var ps []netip.Prefix
	for _, it := range items {
		if p, err := netip.ParsePrefix(it); err == nil {
			ps = append(ps, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(it)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or a CIDR prefix such as 10.0.0.0/8", it)
		}
		a = a.Unmap()
		ps = append(ps, netip.PrefixFrom(a, a.BitLen()))
	}
	return ps, nil
}

// Validate checks the configuration and names the key of the first bad
// value: "config: lifetimes.access_token_ttl: must be at least 1s". It
// also loads the TLS key pair and the UI theme, so that a bad file is
// reported before the server starts.
func (c *Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &keyError{key, fmt.Sprintf(format, args...)}
	}
	if c.Issuer != "" {
		if err := oauthd.ValidateIssuer(c.Issuer); err != nil {
			return bad("issuer", "%s", strings.TrimPrefix(err.Error(), "oauthd: "))
		}
		if strings.HasSuffix(c.Issuer, "/") {
			// Clients compare the issuer byte for byte with discovery's
			// and the tokens' (OIDC Discovery §4.3), which name it
			// without the slash (endpoints are the issuer plus a path).
			return bad("issuer", "%q ends with /: write it without, %q, and configure clients with that", c.Issuer, strings.TrimRight(c.Issuer, "/"))
		}
	}
	if err := checkListenAddr(c.Addr); err != nil {
		return bad("addr", "%q %s (e.g. localhost:8000 or :8000)", c.Addr, err)
	}

	if c.DB == "" {
		return bad("db", "is required")
	}
	if pgstore.IsDSN(c.DB) {
		if err := pgstore.CheckDSN(c.DB); err != nil {
			return bad("db", "%s", strings.TrimPrefix(err.Error(), "pgstore: "))
		}
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		return bad("log.format", "%q: use text or json", c.LogFormat)
	}
	if _, err := NewLogger("text", c.LogLevel, io.Discard); err != nil {
		return bad("log.level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		if c.TLSCertFile == "" {
			return bad("tls.cert_file", "is required with tls.key_file")
		}
		return bad("tls.key_file", "is required with tls.cert_file")
	}
	if c.TLSCertFile != "" {
		if err := checkKeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
			return err
		}
	}
	if c.ShutdownTimeout < time.Second {
		return bad("shutdown_timeout", "must be at least 1s")
	}
	p := &c.Provider
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"lifetimes.access_token_ttl", p.AccessTokenTTL}, {"lifetimes.refresh_token_ttl", p.RefreshTokenTTL},
		{"lifetimes.code_ttl", p.CodeTTL}, {"lifetimes.auth_request_ttl", p.AuthRequestTTL}, {"lifetimes.session_ttl", p.SessionTTL},
	} {
		if d.v < time.Second {
			return bad(d.key, "must be at least 1s")
		}
	}
	if p.IDTokenTTL < time.Second {
		return bad("lifetimes.id_token_ttl", "must be at least 1s")
	}
	if p.KeyRotationPeriod < time.Hour {
		return bad("key.rotation_period", "must be at least 1h")
	}
	if p.KeyRefreshInterval < time.Second || p.KeyRefreshInterval > 5*time.Minute {
		return bad("key.refresh_interval", "must be between 1s and 5m")
	}
	if p.CodeTTL > 10*time.Minute {
		return bad("lifetimes.code_ttl", "must be at most 10m (RFC 6749 §4.1.2)")
	}
	if p.RefreshGracePeriod < 0 {
		return bad("lifetimes.refresh_grace_period", "must not be negative")
	}
	if p.RefreshTokenMaxLifetime < 0 || (p.RefreshTokenMaxLifetime > 0 && p.RefreshTokenMaxLifetime < time.Minute) {
		return bad("lifetimes.refresh_token_max_lifetime", "must be 0s (no limit) or at least 1m")
	}
	if c.GCInterval < time.Second {
		return bad("gc.interval", "must be at least 1s")
	}
	if c.GCBatchSize < 1 || c.GCBatchSize > 100_000 {
		return bad("gc.batch_size", "must be between 1 and 100000")
	}
	for _, l := range []struct {
		key string
		v   oauthd.RateLimit
	}{{"rate_limit.login_account", p.LoginLimit}, {"rate_limit.login_ip", p.LoginIPLimit}, {"rate_limit.client", p.ClientLimit}} {
		// A negative max_failures is refused, not taken for 0 (off): a
		// typo must not turn brute-force protection off. The durations
		// are checked even for a limit that is off.
		n, given := c.maxFailures[l.key+".max_failures"]
		if !given {
			n = max0(l.v.MaxFailures)
		}
		switch {
		case n < 0 || n > maxRateLimitFailures:
			return bad(l.key+".max_failures", "must be between 0 (the limit off) and %d, not %d", maxRateLimitFailures, n)
		case l.v.Window < time.Second:
			return bad(l.key+".window", "must be at least 1s")
		case l.v.Lockout < time.Second:
			return bad(l.key+".lockout", "must be at least 1s")
		case l.v.MaxLockout < l.v.Lockout:
			return bad(l.key+".max_lockout", "must not be shorter than %s.lockout", l.key)
		}
	}
	if c.MetricsAddr != "" {
		if err := checkListenAddr(c.MetricsAddr); err != nil {
			return bad("metrics.addr", "%q %s (e.g. 127.0.0.1:9090 or :9090)", c.MetricsAddr, err)
		}
		if _, port, _ := net.SplitHostPort(c.MetricsAddr); c.MetricsAddr == c.Addr && port != "0" {
			return bad("metrics.addr", "must differ from addr (leave it empty to serve metrics on addr)")
		}
	}
	if _, err := ui.New(c.UI); err != nil {
		return c.uiError(err)
	}
	return nil
}

// checkKeyPair loads a TLS certificate and key, as serve will; its error
// names the key of the file at fault, and the file.
func checkKeyPair(certFile, keyFile string) error {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return &keyError{"tls.cert_file", err.Error()}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return &keyError{"tls.key_file", err.Error()}
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		msg := err.Error()
		switch {
		case strings.Contains(msg, "does not match"):
			return &keyError{"tls.key_file", fmt.Sprintf("%s: %s (the certificate of tls.cert_file %s)", keyFile, msg, certFile)}
		case strings.Contains(msg, "key input") || strings.Contains(msg, "private key"):
			return &keyError{"tls.key_file", keyFile + ": " + msg}
		}
		return &keyError{"tls.cert_file", certFile + ": " + msg}
	}
	return nil
}

// uiError turns an error of ui.New into a keyError of the ui key it is
// about (the field names of package ui become config keys); a theme
// directory's error names the directory. An error about a template is the
// theme directory's when there is one.
func (c *Config) uiError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "ui: ")
	key := ""
	for _, f := range []struct{ field, key string }{
		{"ThemeDir", "ui.theme_dir"}, {"ProductName", "ui.product_name"}, {"PrimaryColor", "ui.primary_color"},
		{"AccentColor", "ui.accent_color"}, {"DefaultLocale", "ui.default_locale"}, {"ScopeDescriptions", "ui.scope_descriptions"},
	} {
		if rest, ok := strings.CutPrefix(msg, f.field+": "); ok {
			key, msg = f.key, rest
			break
		}
	}
	if key == "" && c.UI.ThemeDir != "" {
		key = "ui.theme_dir"
	}
	msg = uiKeys.Replace(msg)
	if key == "" {
		return fmt.Errorf("config: ui: %s", msg)
	}
	if key == "ui.theme_dir" && !strings.Contains(msg, c.UI.ThemeDir) {
		msg = c.UI.ThemeDir + ": " + msg
	}
	return &keyError{key, msg}
}

// checkListenAddr checks a listen address as net.Listen will take it:
// host:port, the host optional (all interfaces), the port a number from 0
// (any free port) to 65535. A service name such as :http is refused too:
// the default issuer is built from the port.
func checkListenAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("is not host:port")
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("has no port number from 0 to 65535")
	}
	return nil
}

// maxRateLimitFailures bounds a rate limit's max_failures: far above any
// sensible limit, and low enough that the client ceiling (ten times the
// client limit) cannot overflow.
const maxRateLimitFailures = 1_000_000

// uiKeys turns the field names within package ui's errors (the prefix is
// uiError's) into config keys.
var uiKeys = strings.NewReplacer("PrimaryColor/AccentColor", "ui.primary_color/ui.accent_color")

// sqliteFile is the file of a SQLite db setting (not a PostgreSQL DSN, nor
// an in-memory database).
func sqliteFile(db string) (string, bool) {
	path := strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "file:")
	path, _, _ = strings.Cut(path, "?")
	if path == "" || path == ":memory:" {
		return "", false
	}
	return path, true
}

// CheckDeployment checks, beyond Validate, what serve would find wrong on
// this machine before it opens anything: the issuer it would derive from
// addr when none is set (none when addr listens on every interface), a TLS
// certificate that has expired or is not valid yet, and the directory of a
// SQLite database (that it exists and that this user can write to it, and
// to the database file if there is one). oauthd config check runs it;
// serve meets the same conditions when it starts, except the certificate's
// dates, which it logs as a warning (it still serves, and picks up a
// renewed certificate without a restart). DeploymentWarnings lists what is
// not an error.
func (c *Config) CheckDeployment() error { return c.withSource(c.checkDeployment(time.Now())) }

func (c *Config) checkDeployment(now time.Time) error {
	bad := func(key, format string, args ...any) error {
		return &keyError{key, fmt.Sprintf(format, args...)}
	}
	if err := c.checkDefaultIssuer(); err != nil {
		return err
	}
	if leaf := c.certificate(); leaf != nil {
		for _, f := range certFindings(leaf, now, "") {
			if f.unusable {
				return bad("tls.cert_file", "%s: %s", c.TLSCertFile, f.msg)
			}
		}
	}
	if pgstore.IsDSN(c.DB) {
		return nil
	}
	if path, ok := sqliteFile(c.DB); ok {
		dir := filepath.Dir(path)
		if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return bad("db", "the directory of %s: %v; create it, writable by the server's user (under systemd, StateDirectory= creates it at the unit's first start)", path, errors.Unwrap(err))
		} else if err != nil {
			return bad("db", "the directory of %s: %v", path, errors.Unwrap(err))
		} else if !fi.IsDir() {
			return bad("db", "%s is not a directory", dir)
		}
		if err := dirWritable(dir); err != nil {
			return bad("db", "the directory %s is not writable by this user: the database's -wal and -shm files are created beside it, so the directory must be writable by the user the server runs as (%v)", dir, err)
		}
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			return bad("db", "%s is a directory, not a database file: name a file in it, e.g. %s", path, filepath.Join(path, "oauthd.db"))
		} else if err == nil {
			if err := fileWritable(path); err != nil {
				return bad("db", "the database file %s cannot be read and written by this user (%v)", path, err)
			}
		}
	}
	return nil
}
