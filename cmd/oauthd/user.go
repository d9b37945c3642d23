package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"
	"golang.org/x/text/unicode/norm"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/secret"
)

func cmdUser(ctx context.Context, args []string, e *env) error {
	if ok, err := groupHelp(args, e, "user", userSubcommands, "usage: oauthd user add|list|delete|passwd|claims\nRun 'oauthd user SUBCOMMAND --help' for its flags.\n"); !ok {
		return err
	}
	switch args[0] {
	case "add", "create":
		return userAdd(ctx, args[1:], e)
	case "list", "ls":
		return userList(ctx, args[1:], e)
	case "delete", "rm":
		return userDelete(ctx, args[1:], e)
	case "passwd", "password":
		return userPasswd(ctx, args[1:], e)
	case "claims":
		return userClaims(ctx, args[1:], e)
	}
	return unknownSubcommand(e, "user", args[0], userSubcommands)
}

var userSubcommands = []string{"add", "list", "delete", "passwd", "claims"}

// readPassword asks for a password on the terminal (twice, without echo),
// or reads one line from standard input when it is not a terminal or
// --password-stdin is given.
func readPassword(ctx context.Context, e *env, fromStdin bool) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		fd := int(f.Fd())
		fmt.Fprint(e.stderr, "Password: ")
		p1, err := readTerminalPassword(ctx, fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(e.stderr, "Repeat password: ")
		p2, err := readTerminalPassword(ctx, fd)
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(e.stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password on standard input")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// readTerminalPassword reads a password from the terminal fd without
// echo, until ctx ends: Ctrl-C, which the command's signal handler turns
// into ctx's end, stops the prompt at once, with the terminal's echo
// restored (term.ReadPassword, blocked in its read, would neither see
// the signal nor restore the terminal if a second Ctrl-C then killed the
// process).
func readTerminalPassword(ctx context.Context, fd int) ([]byte, error) {
	state, err := term.GetState(fd)
	if err != nil {
		return nil, err
	}
	type result struct {
		pw  []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		pw, err := term.ReadPassword(fd)
		done <- result{pw, err}
	}()
	select {
	case r := <-done:
		return r.pw, r.err
	case <-ctx.Done():
		term.Restore(fd, state)
		return nil, errInterrupted
	}
}

// checkPassword refuses an empty password and one longer than 1024
// bytes, and warns on standard error about one shorter than
// minPasswordLen characters or the same as the username (in any case),
// the first guesses of anyone trying accounts (a warning, not a
// refusal).
func checkPassword(e *env, username, pw string) error {
	if len(pw) < 1 {
		return errors.New("the password is empty")
	}
	if len(pw) > 1024 {
		return errors.New("the password is longer than 1024 bytes")
	}
	if !utf8.ValidString(pw) {
		// The login form sends UTF-8: such a password could never be typed.
		return errors.New("the password is not valid UTF-8 text")
	}
	if n := utf8.RuneCountInString(pw); n < minPasswordLen {
		chars := "characters"
		if n == 1 {
			chars = "character"
		}
		fmt.Fprintf(e.stderr, "oauthd: warning: the password has %d %s; at least %d are recommended (a passphrase of several words is best)\n", n, chars, minPasswordLen)
	}
	if strings.EqualFold(strings.TrimSpace(pw), username) {
		fmt.Fprintln(e.stderr, "oauthd: warning: the password is the username; it is among the first guesses of anyone trying accounts")
	}
	return nil
}

// maxUsernameLen is the longest username user add takes, in bytes.
const maxUsernameLen = 256

// checkUsername refuses a username that could not be typed in the login
// form, or that would look like another one: sign-in compares usernames
// exactly, byte for byte, so a name written with invisible or look-alike
// characters would be an account of its own that people take for another.
func checkUsername(name string) error {
	switch {
	case name == "":
		return errors.New("the username is empty")
	case len(name) > maxUsernameLen:
		return fmt.Errorf("the username is %d bytes long; at most %d are allowed", len(name), maxUsernameLen)
	case !utf8.ValidString(name):
		return errors.New("the username is not valid UTF-8 text")
	}
	for _, r := range name {
		if r == ' ' || !unicode.IsPrint(r) {
			// Spaces, control characters, and the invisible format
			// characters (zero-width spaces, bidirectional overrides).
			return fmt.Errorf("the username %q has a space, a control character or an invisible character (%U)", name, r)
		}
	}
	if nf := norm.NFKC.String(name); nf != name {
		// Full-width letters, ligatures, decomposed accents: the same
		// name to the eye as nf, but other bytes.
		return fmt.Errorf("the username %q is written with compatibility or decomposed characters: write it %q", name, nf)
	}
	return nil
}

// foldUsername is the form in which two usernames that differ only in case
// are equal.
func foldUsername(name string) string { return strings.ToLower(norm.NFKC.String(name)) }

// checkLookalike refuses name when another user's name differs from it only
// in case (Admin beside admin): sign-in tells them apart, people do not.
func checkLookalike(ctx context.Context, s oauthd.Storage, name string) error {
	users, err := s.Users(ctx)
	if err != nil {
		return err
	}
	f := foldUsername(name)
	for _, u := range users {
		if u.Username != name && foldUsername(u.Username) == f {
			return fmt.Errorf("a user named %q already exists, which differs from %q only in case; choose another username", u.Username, name)
		}
	}
	return nil
}

// keepFirstLookalike runs checkLookalike's check again once u is stored:
// two user add commands racing with names that differ only in case (on
// PostgreSQL, where nothing serializes them) both passed it before either
// stored its user. Of the users then stored under one folded name, the
// first created (then the lowest ID) stays, and every other command
// removes its own user and fails, so one of them is kept whatever the
// order.
func keepFirstLookalike(ctx context.Context, s oauthd.Storage, u *oauthd.User) error {
	users, err := s.Users(ctx)
	if err != nil {
		return err
	}
	f := foldUsername(u.Username)
	var mine *oauthd.User
	for _, o := range users {
		if o.ID == u.ID {
			mine = o
		}
	}
	if mine == nil {
		return nil
	}
	for _, o := range users {
		if o.ID == u.ID || foldUsername(o.Username) != f {
			continue
		}
		if o.CreatedAt.Before(mine.CreatedAt) || (o.CreatedAt.Equal(mine.CreatedAt) && o.ID < mine.ID) {
			if err := s.DeleteUser(ctx, u.ID); err != nil && !errors.Is(err, oauthd.ErrNotFound) {
				return err
			}
			return fmt.Errorf("a user named %q was added meanwhile, which differs from %q only in case; choose another username", o.Username, u.Username)
		}
	}
	return nil
}

// minPasswordLen is the length under which a password gets a warning.
const minPasswordLen = 8

func userAdd(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("user add", e)
	db := dbFlag(fs, e)
	stdin := fs.Bool("password-stdin", false, "read the password as one line from standard input, even a terminal (no prompt); without it, a terminal is prompted twice and other input read as one line")
	var claims valuesFlag
	fs.Var(&claims, "claim", `an OpenID Connect claim as name=value, e.g. "name=Alice Liddell" (repeatable)`)
	pos, err := parse(fs, args, 1, "one username")
	if err != nil {
		return err
	}
	name := pos[0]
	if err := checkUsername(name); err != nil {
		return err
	}
	cl, err := parseClaims(claims)
	if err != nil {
		return usageError(fs, "%s", err)
	}
	warnUnreleased(e, cl)
	pw, err := readPassword(ctx, e, *stdin)
	if err != nil {
		return err
	}
	if err := checkPassword(e, name, pw); err != nil {
		return err
	}
	h, err := secret.Hash(pw)
	if err != nil {
		return err
	}
	s, err := createDB(ctx, *db, e)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := checkLookalike(ctx, s, name); err != nil {
		return err
	}
	now := time.Now()
	u := &oauthd.User{ID: app.NewUserID(), Username: name, PasswordHash: h, Claims: cl, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateUser(ctx, u); errors.Is(err, oauthd.ErrAlreadyExists) {
		return fmt.Errorf("a user named %q already exists", name)
	} else if err != nil {
		return err
	}
	if err := keepFirstLookalike(ctx, s, u); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "added user %s (sub %s)\n", name, u.ID)
	return nil
}

// parseClaims turns name=value pairs into claims. A standard claim of
// OIDC Core §5.1 gets the type defined there: email_verified and
// phone_number_verified are booleans (true or false), address a JSON
// object, updated_at a number (seconds since 1970), every other one a
// string, even "true" or "123". Another claim is a boolean for true and
// false, an object for a value starting with {, an array for one starting
// with [, else a string. A name may
// carry a language tag (name#fr, §5.2); the claim before it gives the
// type.
func parseClaims(kvs []string) (map[string]any, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if len(k) > maxClaimName {
			return nil, fmt.Errorf("--claim: a claim name of %d bytes; at most %d are allowed", len(k), maxClaimName)
		}
		base, tag, tagged := strings.Cut(k, "#")
		switch _, reserved := reservedClaims[base]; {
		case !ok:
			return nil, fmt.Errorf("--claim %q: use name=value", kv)
		case base == "":
			return nil, fmt.Errorf("--claim %q: the claim name is empty; use name=value", kv)
		case strings.ContainsAny(k, " \t\r\n"):
			return nil, fmt.Errorf("--claim %q: a claim name has no spaces; use name=value", kv)
		case tagged && tag == "":
			return nil, fmt.Errorf("--claim %q: a language tag follows the # (name#fr=...)", kv)
		case reserved:
			return nil, fmt.Errorf("--claim %q: %s is set by the server, not stored with the user", kv, base)
		}
		var err error
		if m[k], err = claimValue(base, v); err != nil {
			return nil, fmt.Errorf("--claim %q: %w", kv, err)
		}
	}
	return m, nil
}

// warnUnreleased warns on standard error of claims oauthd keeps with a
// user but releases nowhere: those that are not standard claims of OIDC
// Core §5.1 (groups, roles...), which neither a scope nor the claims
// request parameter asks for.
func warnUnreleased(e *env, claims map[string]any) {
	var names []string
	for k := range claims {
		base, _, _ := strings.Cut(k, "#")
		if !slices.Contains(oauthd.StandardClaims(), base) {
			names = append(names, k)
		}
	}
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	fmt.Fprintf(e.stderr, "oauthd: warning: %s: not a standard OpenID Connect claim (OIDC Core §5.1); oauthd keeps it with the user but releases it nowhere: not in ID tokens, at userinfo or through the claims parameter\n", strings.Join(names, ", "))
}

// maxClaimName bounds the length of a claim's name (language tag
// included) in bytes.
const maxClaimName = 256

// claimTypes are the standard claims of OIDC Core §5.1 that are not
// strings, with their JSON type.
var claimTypes = map[string]string{"email_verified": "boolean", "phone_number_verified": "boolean", "address": "object", "updated_at": "number"}

// claimValue is the value of the claim name (without its language tag)
// given as v on the command line.
func claimValue(name, v string) (any, error) {
	typ, std := claimTypes[name]
	if !std && slices.Contains(oauthd.StandardClaims(), name) {
		typ = "string"
	}
	isObject := func() (map[string]any, bool) {
		var obj map[string]any
		return obj, strings.HasPrefix(strings.TrimSpace(v), "{") && json.Unmarshal([]byte(v), &obj) == nil
	}
	switch {
	case typ == "boolean":
		if v != "true" && v != "false" {
			return nil, fmt.Errorf("%s is a boolean: use true or false", name)
		}
		return v == "true", nil
	case typ == "" && (v == "true" || v == "false"):
		return v == "true", nil
	case typ == "object":
		obj, ok := isObject()
		if !ok {
			return nil, fmt.Errorf(`%s is a JSON object, e.g. %s={"locality":"London","country":"UK"}`, name, name)
		}
		return obj, nil
	case typ == "" && strings.HasPrefix(strings.TrimSpace(v), "{"):
		obj, ok := isObject()
		if !ok {
			return nil, errors.New("the value starts with { but is not a JSON object")
		}
		return obj, nil
	case typ == "" && strings.HasPrefix(strings.TrimSpace(v), "["):
		var arr []any
		if json.Unmarshal([]byte(v), &arr) != nil {
			return nil, errors.New("the value starts with [ but is not a JSON array")
		}
		return arr, nil
	case typ == "number":
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%s is a number: the seconds since 1970-01-01 UTC, e.g. %s=1767225600", name, name)
		}
		return n, nil
	}
	return v, nil
}

// reservedClaims are the claims the server sets in tokens itself.
var reservedClaims = map[string]struct{}{"sub": {}, "iss": {}, "aud": {}, "exp": {}, "iat": {}, "nbf": {}, "jti": {},
	"auth_time": {}, "nonce": {}, "acr": {}, "amr": {}, "azp": {}, "at_hash": {}, "c_hash": {}, "sid": {}}

// userClaims shows a user's claims, after setting (--claim) and removing
// (--unset) some.
func userClaims(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("user claims", e)
	db := dbFlag(fs, e)
	var set, unset valuesFlag
	fs.Var(&set, "claim", `set a claim as name=value, e.g. "name=Alice Liddell", email_verified=true (repeatable)`)
	fs.Var(&unset, "unset", "remove a claim (repeatable)")
	pos, err := parse(fs, args, 1, "one username")
	if err != nil {
		return err
	}
	add, err := parseClaims(set)
	if err != nil {
		return usageError(fs, "%s", err)
	}
	warnUnreleased(e, add)
	for _, k := range unset {
		if _, ok := add[k]; ok {
			return usageError(fs, "claim %q is both set (--claim) and removed (--unset): give one", k)
		}
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := findUser(ctx, s, pos[0])
	if err != nil {
		return err
	}
	if len(add) > 0 || len(unset) > 0 {
		if u.Claims == nil {
			u.Claims = map[string]any{}
		}
		for _, k := range unset {
			delete(u.Claims, k)
		}
		maps.Copy(u.Claims, add)
		u.UpdatedAt = time.Now()
		if err := s.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	if u.Claims == nil {
		u.Claims = map[string]any{}
	}
	return writeJSON(e, u.Claims) // "<", ">" and "&" as they are, not \u003c...
}

func userList(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("user list", e)
	db := dbFlag(fs, e)
	asJSON := jsonFlag(fs)
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	us, err := s.Users(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]userJSON, 0, len(us))
		for _, u := range us {
			out = append(out, userJSON{Username: u.Username, Sub: u.ID, CreatedAt: jsonTime(u.CreatedAt)})
		}
		return writeJSON(e, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USERNAME\tSUB\tCREATED")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Username, u.ID, u.CreatedAt.Format(time.RFC3339))
	}
	return tw.Flush()
}

func userDelete(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("user delete", e)
	db := dbFlag(fs, e)
	s, pos, err := openArgs(ctx, fs, db, args, 1, "one username")
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := findUser(ctx, s, pos[0])
	if err != nil {
		return err
	}
	if err := s.DeleteUser(ctx, u.ID); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted user %s\n", u.Username)
	return nil
}

func userPasswd(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("user passwd", e)
	db := dbFlag(fs, e)
	stdin := fs.Bool("password-stdin", false, "read the new password as one line from standard input, even a terminal (no prompt); without it, a terminal is prompted twice and other input read as one line")
	s, pos, err := openArgs(ctx, fs, db, args, 1, "one username")
	if err != nil {
		return err
	}
	defer s.Close()
	u, err := findUser(ctx, s, pos[0])
	if err != nil {
		return err
	}
	pw, err := readPassword(ctx, e, *stdin)
	if err != nil {
		return err
	}
	if err := checkPassword(e, u.Username, pw); err != nil {
		return err
	}
	if u.PasswordHash, err = secret.Hash(pw); err != nil {
		return err
	}
	// The browsers signed in with the old password sign in again.
	u.UpdatedAt = time.Now()
	u.PasswordChangedAt = u.UpdatedAt
	if err := s.UpdateUser(ctx, u); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "changed the password of %s (signed out of every browser; tokens already issued stay valid: oauthd grants revoke ends them)\n", u.Username)
	return nil
}
