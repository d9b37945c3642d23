package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/app"
	"github.com/oauthd/oauthd/internal/secret"
)

var knownGrants = []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials, oauthd.GrantPassword, oauthd.GrantImplicit}

func cmdClient(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, "usage: oauthd client create|list|show|delete\n")
		return errUsage
	}
	switch args[0] {
	case "create", "add":
		return clientCreate(ctx, args[1:], e)
	case "list", "ls":
		return clientList(ctx, args[1:], e)
	case "show", "get":
		return clientShow(ctx, args[1:], e)
	case "delete", "rm":
		return clientDelete(ctx, args[1:], e)
	}
	fmt.Fprintf(e.stderr, "oauthd client: unknown subcommand %q (create, list, show, delete)\n", args[0])
	return errUsage
}

func openDB(ctx context.Context, db string) (oauthd.Storage, error) {
	if msg, ok := strings.CutPrefix(db, badConfig); ok {
		return nil, errors.New(msg)
	}
	return app.OpenStore(ctx, db, true)
}

func clientCreate(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client create", e)
	db := dbFlag(fs, e)
	id := fs.String("id", "", "client_id (default: generated)")
	sec := fs.String("secret", "", "client secret (default: generated; printed once)")
	name := fs.String("name", "", "name shown on the consent page")
	var redirects, grants, scopes listFlag
	fs.Var(&redirects, "redirect-uri", "allowed redirect URI (repeat for several)")
	fs.Var(&grants, "grant", "grant type: authorization_code, refresh_token, client_credentials, password, implicit (repeatable; default authorization_code,refresh_token)")
	fs.Var(&scopes, "scope", `allowed scopes, e.g. "openid email" (repeatable)`)
	public := fs.Bool("public", false, "a public client (no secret; PKCE required), e.g. a single-page or native app")
	authMethod := fs.String("auth-method", "", "token_endpoint_auth_method: client_secret_basic (default), client_secret_post or none (public)")
	requirePKCE := fs.Bool("require-pkce", false, "require PKCE for this confidential client too")
	skipConsent := fs.Bool("skip-consent", false, "first-party client: do not ask the user for consent")
	issuer := fs.String("issuer", envOr(e, "OAUTHD_ISSUER", "http://localhost:8000"), "issuer URL used in the printed example (env OAUTHD_ISSUER)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if len(grants) == 0 {
		grants = listFlag{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken}
	}
	for _, g := range grants {
		if !slices.Contains(knownGrants, g) {
			return fmt.Errorf("--grant %q: use one of %s", g, strings.Join(knownGrants, ", "))
		}
	}
	needsRedirect := slices.Contains(grants, oauthd.GrantAuthorizationCode) || slices.Contains(grants, oauthd.GrantImplicit)
	if needsRedirect && len(redirects) == 0 {
		return errors.New("--redirect-uri is required for the authorization_code and implicit grants")
	}
	for _, r := range redirects {
		if err := oauthd.ValidateRedirectURI(r); err != nil {
			return fmt.Errorf("--redirect-uri: %w", err)
		}
	}
	if _, ok := oauthd.ParseScope(scopes.String()); !ok {
		return errors.New("--scope: scopes are space-separated tokens of printable ASCII without quotes or backslashes")
	}
	c := &oauthd.Client{ID: *id, Name: *name, RedirectURIs: redirects, GrantTypes: grants, Scopes: scopes,
		Public: *public, RequirePKCE: *requirePKCE, SkipConsent: *skipConsent, CreatedAt: time.Now()}
	switch *authMethod {
	case "":
		c.TokenEndpointAuthMethod = oauthd.AuthMethodBasic
		if *public {
			c.TokenEndpointAuthMethod = oauthd.AuthMethodNone
		}
	case oauthd.AuthMethodBasic, oauthd.AuthMethodPost:
		if *public {
			return errors.New("--auth-method: a public client uses none")
		}
		c.TokenEndpointAuthMethod = *authMethod
	case oauthd.AuthMethodNone:
		c.Public, c.TokenEndpointAuthMethod = true, oauthd.AuthMethodNone
	default:
		return fmt.Errorf("--auth-method %q: use client_secret_basic, client_secret_post or none", *authMethod)
	}
	if c.Public && slices.Contains(grants, oauthd.GrantClientCredentials) {
		return errors.New("a public client cannot use client_credentials")
	}
	if c.ID == "" {
		c.ID = oauthd.RandomToken()[:22]
	}
	if c.Public && *sec != "" {
		return errors.New("--secret: a public client has no secret")
	}
	plain := *sec
	if !c.Public {
		if plain == "" {
			plain = oauthd.RandomToken()
		}
		h, err := secret.Hash(plain)
		if err != nil {
			return err
		}
		c.SecretHash = h
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
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
	if needsRedirect {
		q := url.Values{"client_id": {c.ID}, "redirect_uri": {redirects[0]}, "response_type": {"code"}, "state": {"xyz"}}
		if len(scopes) > 0 {
			q.Set("scope", scopes.String())
		}
		extra := ""
		if c.Public || c.RequirePKCE {
			q.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGjSstw-cM")
			q.Set("code_challenge_method", "S256")
			extra = "    -d 'code_verifier=dBjftJeZ4CVP-mJ92K1s6M9Tcl1UxSNyJl04RSWl0nAw' \\\n"
		}
		auth := fmt.Sprintf("-u '%s:%s'", url.QueryEscape(c.ID), url.QueryEscape(plain))
		if c.Public {
			auth = fmt.Sprintf("-d 'client_id=%s'", c.ID)
		}
		fmt.Fprintf(e.stdout, "\nAuthorize in a browser:\n  %s%s?%s\n\nThen exchange the code:\n  curl %s%s \\\n    %s \\\n    -d 'grant_type=authorization_code' \\\n    -d 'code=CODE' \\\n%s    -d 'redirect_uri=%s'\n",
			*issuer, oauthd.AuthorizePath, q.Encode(), *issuer, oauthd.TokenPath, auth, extra, redirects[0])
	}
	if slices.Contains(grants, oauthd.GrantClientCredentials) {
		fmt.Fprintf(e.stdout, "\nGet a token for the client itself:\n  curl %s%s -u '%s:%s' -d 'grant_type=client_credentials'\n",
			*issuer, oauthd.TokenPath, url.QueryEscape(c.ID), url.QueryEscape(plain))
	}
	return nil
}

func clientList(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet("client list", e)
	db := dbFlag(fs, e)
	if _, err := parse(fs, args); err != nil {
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
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one client_id"); err != nil {
		return err
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	c, err := s.Client(ctx, pos[0])
	if errors.Is(err, oauthd.ErrNotFound) {
		return fmt.Errorf("no client %q", pos[0])
	} else if err != nil {
		return err
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
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, "one client_id"); err != nil {
		return err
	}
	s, err := openDB(ctx, *db)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.DeleteClient(ctx, pos[0]); errors.Is(err, oauthd.ErrNotFound) {
		return fmt.Errorf("no client %q", pos[0])
	} else if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "deleted client %s\n", pos[0])
	return nil
}
