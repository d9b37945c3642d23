package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/pgstore"
	"github.com/oauthd/oauthd/sqlitestore"
)

var knownGrants = []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials, oauthd.GrantPassword, oauthd.GrantImplicit}

func cmdClient(ctx context.Context, args []string, e *env) error {
	if ok, err := groupHelp(args, e, "client", clientSubcommands, "usage: oauthd client create|update|list|show|delete\nRun 'oauthd client SUBCOMMAND --help' for its flags.\n"); !ok {
		return err
	}
	switch args[0] {
	case "create", "add":
		return clientCreate(ctx, args[1:], e)
	case "list", "ls":
		return clientList(ctx, args[1:], e)
	case "update", "set":
		return clientUpdate(ctx, args[1:], e)
	case "show", "get":
		return clientShow(ctx, args[1:], e)
	case "delete", "rm":
		return clientDelete(ctx, args[1:], e)
	}
	return unknownSubcommand(e, "client", args[0], clientSubcommands)
}

var clientSubcommands = []string{"create", "update", "list", "show", "delete"}

// openDB opens the database of a command that reads or changes what is
// there: a SQLite file that does not exist is an error, not a new empty
// database (a command run in the wrong directory would otherwise leave
// one there and answer as if the server had no such client or user).
func openDB(ctx context.Context, db string) (oauthd.Storage, error) {
	if err := existingDB(db); err != nil {
		return nil, err
	}
	if _, ok := sqlitePath(db); !ok {
		// A PostgreSQL database without oauthd's tables is not given them
		// by a command that reads or changes records, as a SQLite file is
		// not created: a mistyped database or search_path would get a
		// schema it was not meant to have. One that is behind is migrated.
		s, err := app.OpenStore(ctx, db, false)
		if err == nil || !errors.Is(err, pgstore.ErrSchemaVersion) {
			return s, err
		}
		if v, verr := app.SchemaVersion(ctx, db); verr == nil && v == 0 {
			return nil, fmt.Errorf("no oauthd tables in the database %s: give the server's with --db, OAUTHD_DB or --config (oauthd serve, oauthd migrate, client create, user add and keys create them)", app.MaskDSN(db))
		}
		return app.OpenStore(ctx, db, true)
	}
	if _, ok := sqlitePath(db); ok {
		// A SQLite database already at this program's schema is opened
		// without the migration, which takes the write lock: a command
		// that only reads (client list, keys list...) does not wait for
		// another process's write. One that is behind is migrated.
		s, err := app.OpenStore(ctx, db, false)
		if !errors.Is(err, sqlitestore.ErrSchemaVersion) {
			return s, err
		}
	}
	return app.OpenStore(ctx, db, true)
}

// existingDB fails for a database name that came from a configuration
// file that could not be read, and for a SQLite file that is not there.
func existingDB(db string) error {
	if err := configuredDB(db); err != nil {
		return err
	}
	if path, ok := sqlitePath(db); ok {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no database at %s: give the server's with --db, OAUTHD_DB or --config (oauthd serve, oauthd migrate, client create, user add and keys create one)", path)
		}
	}
	return nil
}

// configuredDB fails for a database name that came from a configuration
// file that could not be read (see badConfig).
func configuredDB(db string) error {
	if msg, ok := strings.CutPrefix(db, badConfig); ok {
		return errors.New(msg)
	}
	return nil
}

// createDB opens the database of a command that may start one (migrate,
// client create, user add, keys), and says so on standard error when it
// creates a SQLite file.
func createDB(ctx context.Context, db string, e *env) (oauthd.Storage, error) {
	if err := configuredDB(db); err != nil {
		return nil, err
	}
	path, isFile := sqlitePath(db)
	if isFile {
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			isFile = false
		}
	}
	s, err := app.OpenStore(ctx, db, true)
	if err == nil && isFile {
		fmt.Fprintf(e.stderr, "oauthd: created a new database at %s\n", path)
	}
	return s, err
}

// sqlitePath returns the file of a SQLite database name (not a
// PostgreSQL URL, nor an in-memory database).
func sqlitePath(db string) (string, bool) {
	if pgstore.IsDSN(db) {
		return "", false
	}
	path := strings.TrimPrefix(strings.TrimPrefix(db, "sqlite:"), "file:")
	path, _, _ = strings.Cut(path, "?")
	if path == "" || path == ":memory:" {
		return "", false
	}
	return path, true
}

// clientFlags are the registration fields settable from the CLI.
type clientFlags struct {
	name, authMethod, logoURI, clientURI, idTokenAlg *string
	redirects, postLogout                            []string
	grants, scopes                                   listFlag
	responseTypes                                    commaListFlag
	public, requirePKCE, skipConsent, resourceServer *bool
	claimsInIDToken                                  *bool
	accessTTL, refreshTTL                            *time.Duration
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	f := &clientFlags{}
	f.name = fs.String("name", "", "name shown on the consent page")
	fs.Var(&uriFlag{"redirect-uri", &f.redirects}, "redirect-uri", "allowed redirect URI (one per flag: repeat it for several)")
	fs.Var(&uriFlag{"post-logout-redirect-uri", &f.postLogout}, "post-logout-redirect-uri", "allowed post-logout redirect URI for RP-initiated logout (one per flag: repeat it for several)")
	fs.Var(&f.grants, "grant", "grant type: authorization_code, refresh_token, client_credentials, password, implicit (repeatable; default authorization_code,refresh_token)")
	fs.Var(&f.scopes, "scope", `allowed scopes, e.g. "openid email" (repeatable)`)
	fs.Var(&f.responseTypes, "response-type", `allowed response types, e.g. "code" or "code id_token" (repeatable or comma-separated; default: code); code needs --grant authorization_code, the others --grant implicit (and the server's grants.enable_implicit_grant), the hybrid ones both`)
	f.public = fs.Bool("public", false, "a public client (no secret; PKCE required), e.g. a single-page or native app")
	f.authMethod = fs.String("auth-method", "", "token_endpoint_auth_method: client_secret_basic (default), client_secret_post or none (public)")
	f.requirePKCE = fs.Bool("require-pkce", false, "require PKCE for this confidential client too")
	f.skipConsent = fs.Bool("skip-consent", false, "first-party client: do not ask the user for consent")
	f.resourceServer = fs.Bool("resource-server", false, "may introspect tokens issued to any client (an API)")
	f.claimsInIDToken = fs.Bool("claims-in-id-token", false, "put the claims of the granted scopes (profile, email...) in the token endpoint's ID tokens as well as at userinfo, for relying parties that read the profile from the ID token alone")
	f.accessTTL = durationFlag(fs, "access-token-ttl", 0, "access token lifetime for this client, a `duration` such as 5m (default: the server's)")
	f.refreshTTL = durationFlag(fs, "refresh-token-ttl", 0, "refresh token lifetime for this client, a `duration` such as 720h (default: the server's)")
	f.logoURI = fs.String("logo-uri", "", "https URL of a logo shown on the consent page")
	f.clientURI = fs.String("client-uri", "", "http(s) URL of the application's home page, linked on the consent page and the sign-out page's \"Stay signed in\"")
	f.idTokenAlg = fs.String("id-token-alg", "", "id_token_signed_response_alg: RS256 (default: every relying party verifies it), ES256 or EdDSA (some relying parties cannot verify EdDSA)")
	return f
}

// apply sets the fields whose flags were given (all of them on create).
func (f *clientFlags) apply(c *oauthd.Client, set map[string]bool) error {
	if set["name"] {
		c.Name = *f.name
	}
	if set["redirect-uri"] {
		c.RedirectURIs = f.redirects
	}
	if set["post-logout-redirect-uri"] {
		c.PostLogoutRedirectURIs = f.postLogout
	}
	if set["grant"] {
		c.GrantTypes = f.grants
	}
	if set["scope"] {
		c.Scopes = f.scopes
	}
	if set["response-type"] {
		c.ResponseTypes = f.responseTypes
	}
	if set["public"] {
		c.Public = *f.public
	}
	if set["require-pkce"] {
		c.RequirePKCE = *f.requirePKCE
	}
	if set["skip-consent"] {
		c.SkipConsent = *f.skipConsent
	}
	if set["resource-server"] {
		c.ResourceServer = *f.resourceServer
	}
	if set["claims-in-id-token"] {
		c.ClaimsInIDToken = *f.claimsInIDToken
	}
	if set["access-token-ttl"] {
		c.AccessTokenTTL = *f.accessTTL
	}
	if set["refresh-token-ttl"] {
		c.RefreshTokenTTL = *f.refreshTTL
	}
	if set["logo-uri"] {
		c.LogoURI = *f.logoURI
	}
	if set["client-uri"] {
		c.ClientURI = *f.clientURI
	}
	if set["id-token-alg"] {
		c.IDTokenSignedResponseAlg = *f.idTokenAlg
	}
	switch {
	case set["auth-method"]:
		c.TokenEndpointAuthMethod = *f.authMethod
	case set["public"] && c.Public:
		c.TokenEndpointAuthMethod = oauthd.AuthMethodNone
	case set["public"] && !c.Public && c.TokenEndpointAuthMethod == oauthd.AuthMethodNone:
		c.TokenEndpointAuthMethod = oauthd.AuthMethodBasic
	}
	if c.TokenEndpointAuthMethod == "" {
		c.TokenEndpointAuthMethod = oauthd.AuthMethodBasic
		if c.Public {
			c.TokenEndpointAuthMethod = oauthd.AuthMethodNone
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"access-token-ttl", c.AccessTokenTTL}, {"refresh-token-ttl", c.RefreshTokenTTL}} {
		// Checked when given: a token that lives less than a second is
		// dead on arrival (expires_in counts whole seconds).
		if set[d.flag] && d.v > 0 && d.v < time.Second {
			return fmt.Errorf("--%s %s: use 0 (the server's lifetime) or at least 1s", d.flag, d.v)
		}
	}
	if err := validateClient(c); err != nil {
		return err
	}
	if set["grant"] || set["response-type"] {
		// Checked when either changes (always on create), so that an
		// update of another field does not fail on a client registered
		// before this check.
		return checkResponseTypes(c)
	}
	return nil
}

// responseTypeGrants are the response types the Provider serves and the
// grants a client needs for each, as oauthd.Provider.checkResponseType
// decides: code needs authorization_code; token and the OpenID Connect
// implicit types need implicit; the hybrid types need both. (The server
// also needs grants.enable_implicit_grant for every type but code.)
var responseTypeGrants = map[string][]string{
	"code":                {oauthd.GrantAuthorizationCode},
	"token":               {oauthd.GrantImplicit},
	"id_token":            {oauthd.GrantImplicit},
	"id_token token":      {oauthd.GrantImplicit},
	"code id_token":       {oauthd.GrantAuthorizationCode, oauthd.GrantImplicit},
	"code token":          {oauthd.GrantAuthorizationCode, oauthd.GrantImplicit},
	"code id_token token": {oauthd.GrantAuthorizationCode, oauthd.GrantImplicit},
}

// responseTypeOrder is the order of the values of a response type as the
// specifications spell them, and as the Provider compares them.
var responseTypeOrder = map[string]int{"code": 0, "id_token": 1, "token": 2}

// checkResponseTypes refuses a response type the Provider does not serve,
// or that the client's grants do not allow (the client could use it for
// nothing), naming the grant to add. Each is stored as the Provider
// compares it: "id_token code" as "code id_token"; one listed twice, once.
func checkResponseTypes(c *oauthd.Client) error {
	var out []string
	for _, rt := range c.ResponseTypes {
		parts := strings.Fields(rt)
		slices.SortStableFunc(parts, func(a, b string) int {
			oa, oka := responseTypeOrder[a]
			ob, okb := responseTypeOrder[b]
			if !oka || !okb {
				return strings.Compare(a, b)
			}
			return oa - ob
		})
		norm := strings.Join(parts, " ")
		need, ok := responseTypeGrants[norm]
		if !ok {
			return fmt.Errorf("--response-type %q: use code, token, id_token, \"id_token token\", \"code id_token\", \"code token\" or \"code id_token token\"", rt)
		}
		var missing, flags []string
		for _, g := range need {
			if !c.AllowsGrant(g) {
				missing, flags = append(missing, g), append(flags, "--grant "+g)
			}
		}
		if len(missing) > 0 {
			grants := strings.Join(c.GrantTypes, ",")
			if grants == "" {
				grants = "none"
			}
			return fmt.Errorf("--response-type %q needs %s, but the client's grants are %s, so it could not use it: give --grant with every grant the client uses (e.g. --grant %s), or leave the response type out",
				rt, strings.Join(flags, " and "), grants, strings.Join(append(slices.Clone(c.GrantTypes), missing...), ","))
		}
		if !slices.Contains(out, norm) {
			out = append(out, norm)
		}
	}
	if c.ResponseTypes != nil {
		c.ResponseTypes = out
	}
	return nil
}

// validateClient checks a client's registration fields, naming the flag at fault.
func validateClient(c *oauthd.Client) error {
	if c.ID != "" && strings.ContainsFunc(c.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		// RFC 6749 Appendix A.1: a client_id is printable ASCII; spaces
		// and control characters the Provider refuses at every request,
		// and other characters are look-alikes in a log or a page.
		return fmt.Errorf("--id %q: a client_id is printable ASCII without spaces (RFC 6749 Appendix A.1)", c.ID)
	}
	for _, g := range c.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return fmt.Errorf("--grant %q: use one of %s", g, strings.Join(knownGrants, ", "))
		}
	}
	needsRedirect := slices.Contains(c.GrantTypes, oauthd.GrantAuthorizationCode) || slices.Contains(c.GrantTypes, oauthd.GrantImplicit)
	if needsRedirect && len(c.RedirectURIs) == 0 {
		return errors.New("--redirect-uri is required for the authorization_code and implicit grants")
	}
	for _, r := range c.RedirectURIs {
		if err := oauthd.ValidateRedirectURI(r); err != nil {
			return fmt.Errorf("--redirect-uri: %w", err)
		}
	}
	for _, r := range c.PostLogoutRedirectURIs {
		if err := oauthd.ValidateRedirectURI(r); err != nil {
			return fmt.Errorf("--post-logout-redirect-uri: %w", err)
		}
	}
	if _, ok := oauthd.ParseScope(strings.Join(c.Scopes, " ")); !ok {
		return errors.New("--scope: scopes are space-separated tokens of printable ASCII without quotes or backslashes")
	}
	switch c.TokenEndpointAuthMethod {
	case oauthd.AuthMethodBasic, oauthd.AuthMethodPost:
		if c.Public {
			return errors.New("--auth-method: a public client uses none")
		}
	case oauthd.AuthMethodNone:
		c.Public = true
	default:
		return fmt.Errorf("--auth-method %q: use client_secret_basic, client_secret_post or none", c.TokenEndpointAuthMethod)
	}
	if c.Public && slices.Contains(c.GrantTypes, oauthd.GrantClientCredentials) {
		return errors.New("a public client cannot use client_credentials")
	}
	if c.LogoURI != "" && !strings.HasPrefix(c.LogoURI, "https://") {
		// The consent page's Content-Security-Policy loads images over
		// https only.
		return fmt.Errorf("--logo-uri %q: use an https URL", c.LogoURI)
	}
	if c.ClientURI != "" {
		if u, err := url.Parse(c.ClientURI); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("--client-uri %q: use an http or https URL with a host", c.ClientURI)
		}
	}
	switch c.IDTokenSignedResponseAlg {
	case "", "RS256", "ES256", "EdDSA":
	default:
		return fmt.Errorf("--id-token-alg %q: use RS256, ES256 or EdDSA", c.IDTokenSignedResponseAlg)
	}
	if c.AccessTokenTTL < 0 || c.RefreshTokenTTL < 0 {
		return errors.New("--access-token-ttl/--refresh-token-ttl must not be negative")
	}
	return nil
}

// registrable applies the Provider's own check of a registration
// (oauthd.Client.Validate) after the flags' checks, so that the CLI never
// stores a client that every request for it would then be refused for.
func registrable(c *oauthd.Client) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("the server would refuse this registration: %s", strings.TrimPrefix(err.Error(), "oauthd: "))
	}
	return nil
}

func setFlags(fs *flag.FlagSet) map[string]bool {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	return set
}

func clientCreate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client create", e)
	db, file := configFlags(fs, e)
	id := fs.String("id", "", "client_id (default: generated)")
	sec := fs.String("secret", "", "client secret (default: generated; printed once)")
	issuer := fs.String("issuer", e.getenv("OAUTHD_ISSUER"), "the server's issuer URL, for the printed example (env OAUTHD_ISSUER; default: the issuer of --config, else its addr or OAUTHD_ADDR, else http://localhost:8000)")
	cf := addClientFlags(fs)
	if _, err := parse(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	set := setFlags(fs)
	if set["secret"] && *sec == "" {
		return usageError(fs, "--secret is empty: leave it out for a generated secret")
	}
	issuerFrom := "" // where an issuer given explicitly came from
	if *issuer != "" {
		issuerFrom = "OAUTHD_ISSUER"
		if set["issuer"] {
			issuerFrom = "--issuer"
		}
	}
	if *issuer == "" {
		// As serve derives it: the file's issuer, else its addr, with
		// OAUTHD_ADDR over the file's.
		c := app.Default()
		if file.cfg != nil {
			c = *file.cfg
		}
		if err := c.ApplyEnv(e.getenv, "addr"); err == nil {
			*issuer = c.Issuer
			if *issuer != "" {
				issuerFrom = "the issuer of the configuration file"
			}
			if *issuer == "" && (file.cfg != nil || e.getenv("OAUTHD_ADDR") != "") {
				*issuer = c.DefaultIssuer()
			}
		}
	}
	if issuerFrom != "" {
		// An issuer serve refuses would make the printed URLs wrong:
		// refused before anything is created.
		if err := checkIssuer(issuerFrom, *issuer); err != nil {
			return err
		}
	}
	if *issuer == "" {
		*issuer = "http://localhost:8000"
	}
	for _, k := range []string{"name", "redirect-uri", "post-logout-redirect-uri", "scope", "response-type", "public", "require-pkce", "skip-consent",
		"resource-server", "claims-in-id-token", "access-token-ttl", "refresh-token-ttl", "logo-uri", "client-uri", "id-token-alg"} {
		set[k] = true
	}
	if len(cf.grants) == 0 {
		cf.grants = listFlag{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}
	}
	set["grant"] = true
	c := &oauthd.Client{ID: *id, CreatedAt: time.Now()}
	if err := cf.apply(c, set); err != nil {
		return err
	}
	if c.ID == "" {
		c.ID = newClientID()
	}
	if c.Public && *sec != "" {
		return errors.New("--secret: a public client has no secret")
	}
	plain := *sec
	if !c.Public {
		if plain == "" {
			plain = oauthd.RandomToken()
		} else {
			warnShortSecret(e, plain)
			warnBasicEncoding(e, c, "the client secret given with --secret", plain)
		}
		h, err := secret.Hash(plain)
		if err != nil {
			return err
		}
		c.SecretHash = h
	}
	if err := registrable(c); err != nil {
		return err
	}
	if set["id"] {
		warnBasicEncoding(e, c, fmt.Sprintf("the client_id %q", c.ID), c.ID)
	}
	warnUnusedRedirects(e, c)
	s, err := createDB(ctx, *db, e)
	if err != nil {
		return err
	}
	defer s.Close()
	// A client_id never equals a user's subject identifier (sub), so an ID
	// token about a user cannot be mistaken for one about a client.
	if _, err := s.User(ctx, c.ID); err == nil {
		return fmt.Errorf("--id %q is the sub of a user; choose another client_id", c.ID)
	} else if !errors.Is(err, oauthd.ErrNotFound) {
		return err
	}
	if err := s.CreateClient(ctx, c); errors.Is(err, oauthd.ErrAlreadyExists) {
		return fmt.Errorf("a client with id %q already exists", c.ID)
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "client_id:     %s\n", c.ID)
	if !c.Public {
		fmt.Fprintf(e.stdout, "client_secret: %s\n(shown only now: store it safely; oauthd keeps only a hash)\n", plain)
	} else {
		fmt.Fprintf(e.stdout, "public client: no secret; PKCE (S256) is required\n")
	}
	printExample(e, c, plain, *issuer)
	return nil
}

// checkIssuer applies to the issuer v, which came from the flag or
// variable name, the rule serve applies to its issuer (app.Config.Validate:
// an absolute http(s) URL at the root of its host, http on loopback only,
// without a query, a fragment or a trailing slash).
func checkIssuer(name, v string) error {
	c := app.Default()
	c.Issuer = v
	err := c.Validate()
	if err == nil {
		return nil
	}
	// Validate checks the issuer first, and names it; an error about
	// another key is about the defaults, not v.
	if msg, ok := strings.CutPrefix(err.Error(), "config: issuer: "); ok {
		return fmt.Errorf("%s: %s (serve refuses it too)", name, msg)
	}
	return nil
}

// minSecretLen is the length under which a client secret given with
// --secret gets a warning: a generated one (oauthd.RandomToken) has 43
// characters, 256 bits.
const minSecretLen = 16

// warnShortSecret warns on standard error, without showing it, about a
// client secret given with --secret that is shorter than minSecretLen.
// It is a warning, not a refusal: scripts that set a known secret
// (tests, a migration from another server) keep working.
func warnShortSecret(e *env, plain string) {
	if n := utf8.RuneCountInString(plain); n < minSecretLen {
		fmt.Fprintf(e.stderr, "oauthd: warning: the client secret given with --secret has %d characters; at least %d are recommended, and a generated secret is best: leave --secret out\n", n, minSecretLen)
	}
}

// warnUnusedRedirects warns when a client has redirect URIs that none of
// its grants uses: only the authorization endpoint (authorization_code,
// implicit) redirects. They are stored all the same (a grant may be added
// later).
func warnUnusedRedirects(e *env, c *oauthd.Client) {
	if len(c.RedirectURIs) == 0 || slices.Contains(c.GrantTypes, oauthd.GrantAuthorizationCode) || slices.Contains(c.GrantTypes, oauthd.GrantImplicit) {
		return
	}
	fmt.Fprintf(e.stderr, "oauthd: warning: --redirect-uri: none of the client's grants (%s) redirects to it; only authorization_code and implicit do (it is kept, for a grant added later)\n", strings.Join(c.GrantTypes, ", "))
}

// warnBasicEncoding warns on standard error, without showing a secret,
// when v, a client_id or secret of a client_secret_basic client, has
// characters that HTTP Basic authentication must form-encode before
// base64 (RFC 6749 §2.3.1: ":" "%" "+", spaces, non-ASCII...). oauthd
// decodes them as the RFC says, but many client libraries send them as
// they are (Python's requests, requests-oauthlib and Authlib among them),
// and are refused with invalid_client.
func warnBasicEncoding(e *env, c *oauthd.Client, what, v string) {
	if c.TokenEndpointAuthMethod != oauthd.AuthMethodBasic || url.QueryEscape(v) == v {
		return
	}
	fmt.Fprintf(e.stderr, "oauthd: warning: %s has characters that HTTP Basic clients must form-encode (RFC 6749 §2.3.1), which many libraries do not: they would be refused with invalid_client. Letters, digits and - . _ ~ work with every client (or use --auth-method client_secret_post)\n", what)
}

// printExample prints a working authorize URL and the curl that follows.
func printExample(e *env, c *oauthd.Client, plain, issuer string) {
	if (c.AllowsGrant(oauthd.GrantAuthorizationCode) || c.AllowsGrant(oauthd.GrantImplicit)) && len(c.RedirectURIs) > 0 {
		// The example asks for a response type the client may use: code
		// unless it is registered with others only (an implicit or
		// hybrid client).
		rt := "code"
		if len(c.ResponseTypes) > 0 && !slices.Contains(c.ResponseTypes, "code") {
			rt = c.ResponseTypes[0]
		} else if len(c.ResponseTypes) == 0 && !c.AllowsGrant(oauthd.GrantAuthorizationCode) {
			rt = "token"
		}
		withCode := slices.Contains(strings.Fields(rt), "code")
		q := url.Values{"client_id": {c.ID}, "redirect_uri": {c.RedirectURIs[0]}, "response_type": {rt}, "state": {"xyz"}}
		if len(c.Scopes) > 0 {
			q.Set("scope", strings.Join(c.Scopes, " "))
		}
		if slices.Contains(strings.Fields(rt), "id_token") {
			// OIDC Core §3.2.2.1: required with an ID token from the
			// authorization endpoint, as is the openid scope.
			q.Set("nonce", oauthd.RandomToken()[:16])
			if !slices.Contains(c.Scopes, oauthd.ScopeOpenID) {
				q.Set("scope", strings.TrimSpace(oauthd.ScopeOpenID+" "+q.Get("scope")))
			}
		}
		extra := ""
		if withCode && (c.Public || c.RequirePKCE) {
			// A verifier of the example's own (RFC 7636 §4.1: 43
			// unreserved characters), and its S256 challenge.
			verifier := oauthd.RandomToken()
			q.Set("code_challenge", oauthd.S256Challenge(verifier))
			q.Set("code_challenge_method", "S256")
			extra = "    -d 'code_verifier=" + verifier + "' \\\n"
		}
		if rt == "code" {
			fmt.Fprintf(e.stdout, "\nAuthorize in a browser:\n  %s%s?%s\n", issuer, oauthd.AuthorizePath, q.Encode())
		} else {
			fmt.Fprintf(e.stdout, "\nAuthorize in a browser (response_type=%s, which needs grants.enable_implicit_grant on the server; the answer comes in the redirect URI's fragment):\n  %s%s?%s\n",
				rt, issuer, oauthd.AuthorizePath, q.Encode())
		}
		if withCode {
			auth := fmt.Sprintf("-u '%s:%s'", url.QueryEscape(c.ID), url.QueryEscape(plain))
			if c.Public {
				auth = fmt.Sprintf("-d 'client_id=%s'", c.ID)
			}
			fmt.Fprintf(e.stdout, "\nThen exchange the code:\n  curl %s%s \\\n    %s \\\n    -d 'grant_type=authorization_code' \\\n    -d 'code=CODE' \\\n%s    -d 'redirect_uri=%s'\n",
				issuer, oauthd.TokenPath, auth, extra, c.RedirectURIs[0])
		}
	}
	if c.AllowsGrant(oauthd.GrantClientCredentials) {
		fmt.Fprintf(e.stdout, "\nGet a token for the client itself:\n  curl %s%s -u '%s:%s' -d 'grant_type=client_credentials'\n",
			issuer, oauthd.TokenPath, url.QueryEscape(c.ID), url.QueryEscape(plain))
	}
}

// clientUpdate changes only the fields whose flags are given;
// --rotate-secret generates a new secret (printed once).
func clientUpdate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client update", e)
	db := dbFlag(fs, e)
	rotate := fs.Bool("rotate-secret", false, "generate a new client secret (printed once); servers accept the old one for at most a second more")
	newSecret := fs.String("secret", "", "set this client secret")
	cf := addClientFlags(fs)
	pos, err := parse(fs, args, 1, "one client_id")
	if err != nil {
		return err
	}
	set := setFlags(fs)
	if set["rotate-secret"] && set["secret"] {
		return usageError(fs, "--rotate-secret and --secret conflict: give --rotate-secret for a generated secret, or --secret to set one")
	}
	if set["secret"] && *newSecret == "" {
		return usageError(fs, "--secret is empty: give the new secret, or --rotate-secret for a generated one")
	}
	changes := false
	for name := range set {
		changes = changes || isChangeFlag(name)
	}
	if !changes {
		var names []string
		fs.VisitAll(func(f *flag.Flag) {
			if isChangeFlag(f.Name) {
				names = append(names, "--"+f.Name)
			}
		})
		return usageError(fs, "nothing to change: give one of %s", strings.Join(names, ", "))
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := findClient(ctx, s, pos[0])
	if err != nil {
		return err
	}
	before := *c
	if err := cf.apply(c, set); err != nil {
		return err
	}
	plain := *newSecret
	if *rotate && plain == "" {
		plain = oauthd.RandomToken()
	}
	switch {
	case c.Public:
		if plain != "" {
			return errors.New("a public client has no secret")
		}
		c.SecretHash = ""
	case plain != "":
		if !*rotate {
			warnShortSecret(e, plain)
			warnBasicEncoding(e, c, "the client secret given with --secret", plain)
		}
		if c.SecretHash, err = secret.Hash(plain); err != nil {
			return err
		}
	case c.SecretHash == "":
		return errors.New("a confidential client needs a secret: add --rotate-secret")
	}
	if err := registrable(c); err != nil {
		// A registration made before a check of a newer release fails it
		// unchanged: an update of another field (a secret rotation) is
		// not refused for it, but told.
		if berr := registrable(&before); berr == nil || berr.Error() != err.Error() {
			return err
		}
		fmt.Fprintf(e.stderr, "oauthd: warning: %s (registered so before this check; it still works, and a change of that field must pass it)\n", strings.TrimPrefix(err.Error(), "the server would refuse this registration: "))
	}
	if set["redirect-uri"] || set["grant"] {
		warnUnusedRedirects(e, c)
	}
	if err := s.UpdateClient(ctx, c); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "updated client %s\n", c.ID)
	if plain != "" {
		fmt.Fprintf(e.stdout, "client_secret: %s\n(shown only now: store it safely; oauthd keeps only a hash)\n", plain)
	}
	return nil
}

// isChangeFlag reports whether the flag of client update changes the
// client (not --db, --config).
func isChangeFlag(name string) bool { return name != "db" && name != "config" }

func clientList(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client list", e)
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
	cs, err := s.Clients(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]clientJSON, 0, len(cs))
		for _, c := range cs {
			out = append(out, clientOut(c))
		}
		return writeJSON(e, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tTYPE\tGRANTS\tSCOPES\tREDIRECT_URIS")
	for _, c := range cs {
		typ := "confidential"
		if c.Public {
			typ = "public"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, typ, strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, " "), strings.Join(c.RedirectURIs, " "))
	}
	return tw.Flush()
}

func clientShow(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client show", e)
	db := dbFlag(fs, e)
	asJSON := jsonFlag(fs)
	s, pos, err := openArgs(ctx, fs, db, args, 1, "one client_id")
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := findClient(ctx, s, pos[0])
	if err != nil {
		return err
	}
	if *asJSON {
		return writeJSON(e, clientOut(c))
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
	row("client_id", c.ID)
	row("name", c.Name)
	row("public", c.Public)
	row("token_endpoint_auth_method", c.TokenEndpointAuthMethod)
	row("redirect_uris", strings.Join(c.RedirectURIs, " "))
	row("grant_types", strings.Join(c.GrantTypes, " "))
	row("scopes", strings.Join(c.Scopes, " "))
	row("require_pkce", c.RequirePKCE || c.Public)
	row("skip_consent", c.SkipConsent)
	row("resource_server", c.ResourceServer)
	if c.ClaimsInIDToken {
		row("claims_in_id_token", true)
	}
	if len(c.ResponseTypes) > 0 {
		row("response_types", strings.Join(c.ResponseTypes, ", "))
	}
	if len(c.PostLogoutRedirectURIs) > 0 {
		row("post_logout_redirect_uris", strings.Join(c.PostLogoutRedirectURIs, " "))
	}
	if c.IDTokenSignedResponseAlg != "" {
		row("id_token_signed_response_alg", c.IDTokenSignedResponseAlg)
	}
	if c.LogoURI != "" {
		row("logo_uri", c.LogoURI)
	}
	if c.ClientURI != "" {
		row("client_uri", c.ClientURI)
	}
	if c.AccessTokenTTL > 0 {
		row("access_token_ttl", c.AccessTokenTTL)
	}
	if c.RefreshTokenTTL > 0 {
		row("refresh_token_ttl", c.RefreshTokenTTL)
	}
	row("created_at", c.CreatedAt.Format(time.RFC3339))
	return tw.Flush()
}

func clientDelete(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client delete", e)
	db := dbFlag(fs, e)
	s, pos, err := openArgs(ctx, fs, db, args, 1, "one client_id")
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.DeleteClient(ctx, pos[0]); errors.Is(err, oauthd.ErrNotFound) {
		return fmt.Errorf("no client %q", pos[0])
	} else if err != nil {
		return err
	}
	// A client registered again under this client_id must get none of
	// this one's tokens, codes and consents: they count for a client only
	// from a little before its registration (oauthd.Client.Predates allows
	// for clocks that differ by 2 s), and servers may issue tokens to this
	// one for up to a second more from their cache of clients. Returning
	// once both have passed makes "delete, then create" safe in a script.
	select {
	case <-time.After(deleteSettle):
	case <-ctx.Done():
		// Deleted all the same: say so, and why the command ended early.
		fmt.Fprintf(e.stdout, "deleted client %s\n", pos[0])
		return fmt.Errorf("interrupted before servers were sure to have dropped client %s from their caches (up to %s): wait that long before registering a client of the same ID", pos[0], deleteSettle)
	}
	fmt.Fprintf(e.stdout, "deleted client %s\n", pos[0])
	return nil
}

// deleteSettle is how long client delete waits before it returns: the
// clock allowance of Client.Predates (2 s), the servers' client cache
// (oauthd.Config.ClientCacheTTL, 1 s, and as much again while a reload is
// slow) and a margin.
const deleteSettle = 4500 * time.Millisecond

// newClientID is a random client_id of 22 base64url characters (132 bits)
// that starts with a letter or digit: one starting with "-" would be taken
// for a flag by the commands that name it (client show, update, delete).
func newClientID() string {
	for {
		id := oauthd.RandomToken()[:22]
		if c := id[0]; c != '-' && c != '_' {
			return id
		}
	}
}
