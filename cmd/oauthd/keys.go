package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
)

func cmdKeys(ctx context.Context, args []string, e *env) error {
	if ok, err := groupHelp(args, e, "keys", []string{"list", "rotate"}, "usage: oauthd keys list|rotate\nRun 'oauthd keys SUBCOMMAND --help' for its flags.\n"); !ok {
		return err
	}
	switch args[0] {
	case "list", "ls":
		return keysList(ctx, args[1:], e)
	case "rotate":
		return keysRotate(ctx, args[1:], e)
	}
	return unknownSubcommand(e, "keys", args[0], []string{"list", "rotate"})
}

// keyEncryptionKey reads OAUTHD_KEY_ENCRYPTION_KEY: 32 bytes in base64
// (standard or URL alphabet, padded or not). It is never a flag, so it
// does not show in the process list.
func keyEncryptionKey(e *env) ([]byte, error) {
	k, err := app.ParseKeyEncryptionKey(e.getenv("OAUTHD_KEY_ENCRYPTION_KEY"))
	if err != nil {
		return nil, fmt.Errorf("OAUTHD_KEY_ENCRYPTION_KEY %w", err)
	}
	return k, nil
}

// keyFlags adds --key-rotation-period; keyConfig then builds the key
// settings from it, the environment and the configuration file.
func keyFlags(fs *flag.FlagSet, e *env) *string {
	return fs.String("key-rotation-period", envOr(e, "OAUTHD_KEY_ROTATION_PERIOD", "720h"),
		"how long each ID token signing key signs before the next one takes over, e.g. 720h (env OAUTHD_KEY_ROTATION_PERIOD)")
}

// keyConfig builds the key settings as serve would: the configuration
// file's (key.*, lifetimes.id_token_ttl), then their environment variables
// (OAUTHD_LIFETIMES_ID_TOKEN_TTL, OAUTHD_KEY_ROTATION_PERIOD,
// OAUTHD_KEY_ENCRYPTION_KEY), then --key-rotation-period. The ID token
// lifetime sets how long a new key stays published after it retires.
func keyConfig(e *env, fs *flag.FlagSet, period string, file *fileConfig, cfg *oauthd.Config) error {
	if file != nil && file.err != nil {
		return file.err
	}
	fromFile := file != nil && file.cfg != nil
	c := app.Default()
	if fromFile {
		c = *file.cfg
	}
	if err := c.ApplyEnv(e.getenv, "lifetimes.id_token_ttl"); err != nil {
		return err
	}
	*cfg = c.Provider
	if !fromFile {
		// Only what the file would have set is taken from the defaults.
		*cfg = oauthd.Config{IDTokenTTL: c.Provider.IDTokenTTL}
	}
	flagSet := false
	fs.Visit(func(f *flag.Flag) { flagSet = flagSet || f.Name == "key-rotation-period" })
	if !fromFile || flagSet || e.getenv("OAUTHD_KEY_ROTATION_PERIOD") != "" {
		d, err := time.ParseDuration(period)
		if err != nil || d < time.Hour {
			// Named as it was given: the flag, else the variable that
			// is the flag's default.
			from := "--key-rotation-period"
			if !flagSet {
				from = "OAUTHD_KEY_ROTATION_PERIOD"
			}
			return fmt.Errorf("%s %q: use a duration of at least 1h, e.g. 720h", from, period)
		}
		cfg.KeyRotationPeriod = d
	}
	k, err := keyEncryptionKey(e)
	if err != nil {
		return err
	}
	if k != nil {
		cfg.KeyEncryptionKey = k
	}
	return nil
}

func openKeys(ctx context.Context, args []string, e *env, name string, extra func(*flag.FlagSet)) (*oauthd.KeyManager, func(), error) {
	fs := newFlagSet(name, e)
	db, file := configFlags(fs, e)
	period := keyFlags(fs, e)
	if extra != nil {
		extra(fs)
	}
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return nil, nil, err
	}
	if fs.Lookup("alg") != nil {
		// Checked before the database is opened: a wrong --alg must not
		// leave a new database, with its first keys, behind.
		for _, a := range strings.Fields(fs.Lookup("alg").Value.String()) {
			if !slices.Contains(oauthd.SigningAlgorithms(), a) {
				return nil, nil, fmt.Errorf("signing algorithm %q is not supported: use RS256, ES256 or EdDSA", a)
			}
		}
	}
	var cfg oauthd.Config
	if err := keyConfig(e, fs, *period, file, &cfg); err != nil {
		return nil, nil, err
	}
	// The key manager stores the first keys when it finds none: keys list
	// on a new database starts it, as serve would.
	s, err := createDB(ctx, *db, e)
	if err != nil {
		return nil, nil, err
	}
	km, err := oauthd.NewKeyManager(cfg, s)
	if err != nil {
		s.Close()
		return nil, nil, err
	}
	return km, func() { s.Close() }, nil
}

// signsUntil is when k stops signing: its scheduled retirement, or earlier
// when a later key of its algorithm takes over first (after a rotation).
func signsUntil(k oauthd.KeyInfo, keys []oauthd.KeyInfo) time.Time {
	until := k.RetireAt
	for _, o := range keys {
		if o.Algorithm == k.Algorithm && o.NotBefore.After(k.NotBefore) && o.NotBefore.Before(until) {
			until = o.NotBefore
		}
	}
	return until
}

func printKeys(e *env, keys []oauthd.KeyInfo, asJSON bool) error {
	if asJSON {
		out := make([]keyJSON, 0, len(keys))
		for _, k := range keys {
			out = append(out, keyJSON{KID: k.ID, Alg: k.Algorithm, State: k.State, SignsFrom: jsonTime(k.NotBefore),
				SignsUntil: jsonTime(signsUntil(k, keys)), PublishedUntil: jsonTime(k.ExpiresAt), Encrypted: k.Encrypted})
		}
		return writeJSON(e, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tSTATE\tSIGNS FROM\tSIGNS UNTIL\tPUBLISHED UNTIL\tENCRYPTED")
	for _, k := range keys {
		enc := "no"
		if k.Encrypted {
			enc = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.State, k.NotBefore.Format(time.RFC3339),
			signsUntil(k, keys).Format(time.RFC3339), k.ExpiresAt.Format(time.RFC3339), enc)
	}
	return tw.Flush()
}

// keysList prints every signing key with its schedule. On a new database
// it first creates the keys, as the server does on its first start.
func keysList(ctx context.Context, args []string, e *env) error {
	var asJSON *bool
	km, done, err := openKeys(ctx, args, e, "keys list", func(fs *flag.FlagSet) { asJSON = jsonFlag(fs) })
	if err != nil {
		return err
	}
	defer done()
	keys, err := km.List(ctx)
	if errors.Is(err, oauthd.ErrNoKeyEncryptionKey) {
		// The records tell the schedule; the private keys are not needed
		// for it. Nothing is created without the encryption key: a key
		// due now would be stored in the clear beside encrypted ones.
		if keys, err = km.Describe(ctx); err != nil {
			return err
		}
		fmt.Fprintln(e.stderr, "oauthd: the keys are encrypted at rest and OAUTHD_KEY_ENCRYPTION_KEY is not set: listed from their records, without checking them or creating the keys that are due (serve does that)")
	}
	if err != nil {
		return withKEKHint(err)
	}
	return printKeys(e, keys, *asJSON)
}

// withKEKHint adds to the error of a key manager that met keys encrypted
// at rest without the key encryption key how to give it.
func withKEKHint(err error) error {
	if errors.Is(err, oauthd.ErrNoKeyEncryptionKey) {
		return fmt.Errorf("%w: set OAUTHD_KEY_ENCRYPTION_KEY (or key.encryption_key in the file of --config) to the servers' key encryption key", err)
	}
	return err
}

// keysRotate creates the next key of each algorithm; it is published at
// once and signs after every node and client cache has seen it.
func keysRotate(ctx context.Context, args []string, e *env) error {
	var algs listFlag
	km, done, err := openKeys(ctx, args, e, "keys rotate", func(fs *flag.FlagSet) {
		fs.Var(&algs, "alg", "rotate only this algorithm: RS256, ES256 or EdDSA (repeatable; default all)")
	})
	if err != nil {
		return err
	}
	defer done()
	keys, err := km.Rotate(ctx, algs...)
	if err != nil {
		return withKEKHint(err)
	}
	if err := printKeys(e, keys, false); err != nil {
		return err
	}
	warnMixedEncryption(ctx, e, km, keys)
	fmt.Fprintln(e.stdout, "The new keys are in the JWKS of every server within its key.refresh_interval (a minute by default) and sign from the time shown; the keys they replace sign until then and stay published until their PUBLISHED UNTIL, after the ID tokens they signed have expired.")
	return nil
}

// warnMixedEncryption warns when the new keys are encrypted at rest and
// keys stored before are not: servers running without the key encryption
// key (which read those) cannot use the new ones, and once one is due to
// sign they cannot sign ID tokens of its algorithm.
func warnMixedEncryption(ctx context.Context, e *env, km *oauthd.KeyManager, created []oauthd.KeyInfo) {
	if len(created) == 0 || !created[0].Encrypted {
		return
	}
	all, err := km.Describe(ctx)
	if err != nil {
		return
	}
	plain := 0
	for _, k := range all {
		if !k.Encrypted && k.State != oauthd.KeyExpired {
			plain++
		}
	}
	if plain == 0 {
		return
	}
	first := created[0].NotBefore
	for _, k := range created {
		if k.NotBefore.Before(first) {
			first = k.NotBefore
		}
	}
	fmt.Fprintf(e.stderr, "oauthd: warning: the new keys are encrypted at rest with this key encryption key and %d key(s) stored before are not: a server running without the same OAUTHD_KEY_ENCRYPTION_KEY cannot use the new keys (it leaves them out of its JWKS, logs an error, makes no new keys of any algorithm, and from when they sign cannot sign ID tokens of their algorithm); set it on every server and restart them before %s\n", plain, first.UTC().Format(time.RFC3339))
}
