package oauthd

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unsafe"
)

// TokenResponse is the token endpoint's success body (RFC 6749 §5.1).
// RefreshTokenExpiresIn is the lifetime of the refresh token in seconds.
type TokenResponse struct {
	AccessToken           string `json:"access_token"`
	TokenType             string `json:"token_type"`
	ExpiresIn             int64  `json:"expires_in"`
	RefreshToken          string `json:"refresh_token,omitempty"`
	RefreshTokenExpiresIn int64  `json:"refresh_token_expires_in,omitempty"`
	Scope                 string `json:"scope,omitempty"`
	IDToken               string `json:"id_token,omitempty"`
}

// handleToken is the token endpoint (RFC 6749 §3.2).
func (p *Provider) handleToken(w http.ResponseWriter, r *http.Request) {
	ps, e := parseForm(w, r, p.cfg.MaxBodyBytes)
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	client, e := p.authenticateClient(r, ps)
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	if err := client.issuable(); err != nil {
		// Before a code or refresh token is used up (see Client.Validate).
		p.writeJSONError(w, r, p.invalidRegistration(r, client, ErrorUnauthorizedClient, err))
		return
	}
	grant, e := ps.get("grant_type")
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	var resp *TokenResponse
	switch grant {
	case "":
		e = errorf(ErrorInvalidRequest, "grant_type is required")
	case GrantAuthorizationCode:
		resp, e = p.codeGrant(r, client, ps)
	case GrantRefreshToken:
		resp, e = p.refreshGrant(r, client, ps)
	case GrantClientCredentials:
		resp, e = p.clientCredentialsGrant(r, client, ps)
	case GrantPassword:
		if !p.cfg.EnablePasswordGrant {
			e = errorf(ErrorUnsupportedGrantType, "the password grant is disabled on this server")
		} else {
			resp, e = p.passwordGrant(r, client, ps)
		}
	default:
		e = errorf(ErrorUnsupportedGrantType, "grant_type%s is not supported", quoted(grant))
	}
	if e != nil {
		p.writeJSONError(w, r, e)
		return
	}
	p.tokenIssued(grant)
	writeJSONBody(w, http.StatusOK, resp.appendJSON)
}

// lifetimes are the client's token lifetimes, defaulting to the server's.
func (p *Provider) lifetimes(c *Client) (access, refresh time.Duration) {
	access, refresh = p.cfg.AccessTokenTTL, p.cfg.RefreshTokenTTL
	if c.AccessTokenTTL > 0 {
		access = c.AccessTokenTTL
	}
	if c.RefreshTokenTTL > 0 {
		refresh = c.RefreshTokenTTL
	}
	return access, refresh
}

// newTokens makes an access token, and a refresh token when refresh is
// true, for one grant; it returns the response and the records to store.
// The response and the bytes of its tokens are one allocation, the records
// and the slice of them another: a store keeping a record keeps no token
// with it.
func (p *Provider) newTokens(c *Client, grantID, subject string, scopes []string, authTime time.Time, refresh bool) (*TokenResponse, []*Token) {
	m := p.mintTokens(c, refresh)
	resp, toks := m.fill(grantID, subject, scopes, authTime)
	return resp, m.dropDeadRefresh(resp, toks)
}

// mintedTokens are the credentials of a token response, made before the
// grant they are for is known: fill completes the response and the
// records. Minting is the costly part (the randomness, the SHA-256 of each
// token); fill only assigns, so that a code redemption can mint before the
// store's write and fill inside it (see codeRedemption).
type mintedTokens struct {
	out                   *issuedTokens
	toks                  []*Token
	accessHash            string
	refreshHash           string // "" without a refresh token
	clientID              string
	now                   time.Time
	accessTTL, refreshTTL time.Duration
	// maxLifetime is Config.RefreshTokenMaxLifetime; public is whether
	// the client is public (its refreshes do not extend the grant).
	maxLifetime time.Duration
	public      bool
	// refreshToken is the minted refresh token ("" for none), which fill
	// puts back in the response each time (dropDeadRefresh may take it
	// out).
	refreshToken string
}

// mintTokens makes an access token, and a refresh token when refresh is
// true, for client c.
func (p *Provider) mintTokens(c *Client, refresh bool) mintedTokens {
	m := mintedTokens{out: new(issuedTokens), clientID: c.ID, now: p.now(), maxLifetime: p.cfg.RefreshTokenMaxLifetime, public: c.Public}
	m.accessTTL, m.refreshTTL = p.lifetimes(c)
	m.out.resp = TokenResponse{AccessToken: m.out.access.make(), TokenType: "Bearer", ExpiresIn: int64(m.accessTTL / time.Second)}
	m.accessHash = HashToken(m.out.resp.AccessToken)
	if refresh {
		recs := new(struct {
			ptrs [2]*Token
			toks [2]Token
		})
		recs.ptrs = [2]*Token{&recs.toks[0], &recs.toks[1]}
		m.toks = recs.ptrs[:]
		m.out.resp.RefreshToken, m.out.resp.RefreshTokenExpiresIn = m.out.refresh.make(), int64(m.refreshTTL/time.Second)
		m.refreshToken = m.out.resp.RefreshToken
		m.refreshHash = HashToken(m.out.resp.RefreshToken)
	} else {
		recs := new(struct {
			ptrs [1]*Token
			tok  Token
		})
		recs.ptrs[0] = &recs.tok
		m.toks = recs.ptrs[:]
	}
	return m
}

// fill sets the response's scope and the records of the minted tokens for
// one grant, and returns them. Every field it sets is set on each call.
func (m *mintedTokens) fill(grantID, subject string, scopes []string, authTime time.Time) (*TokenResponse, []*Token) {
	resp := &m.out.resp
	resp.Scope = JoinScope(scopes)
	*m.toks[0] = Token{Hash: m.accessHash, Kind: AccessToken, GrantID: grantID, ClientID: m.clientID, Subject: subject,
		Scopes: scopes, AuthTime: authTime, IssuedAt: m.now, ExpiresAt: m.now.Add(m.accessTTL)}
	if m.refreshHash != "" {
		resp.RefreshToken = m.refreshToken
		*m.toks[1] = Token{Hash: m.refreshHash, Kind: RefreshToken, GrantID: grantID, ClientID: m.clientID, Subject: subject,
			Scopes: scopes, AuthTime: authTime, IssuedAt: m.now, ExpiresAt: m.now.Add(m.refreshTTL)}
		m.limitRefresh(time.Time{}, authTime)
	}
	return resp, m.toks
}

// dropDeadRefresh takes the refresh token out of a new grant's response
// and records when the grant is already past RefreshTokenMaxLifetime (the
// person signed in longer ago than that): a token that is dead on arrival
// is not handed out.
func (m *mintedTokens) dropDeadRefresh(resp *TokenResponse, toks []*Token) []*Token {
	if m.refreshHash == "" || len(toks) < 2 || toks[1].ExpiresAt.After(m.now) {
		return toks
	}
	resp.RefreshToken, resp.RefreshTokenExpiresIn = "", 0
	return toks[:1]
}

// limitRefresh ends the minted refresh token no later than prev (the
// expiry of the token it succeeds, for a public client; zero for none) and
// than the grant's maximum lifetime from authTime, and sets the response's
// refresh_token_expires_in to match.
func (m *mintedTokens) limitRefresh(prev, authTime time.Time) {
	t := m.toks[1]
	if m.public && !prev.IsZero() && prev.Before(t.ExpiresAt) {
		t.ExpiresAt = prev
	}
	if m.maxLifetime > 0 && !authTime.IsZero() {
		if end := authTime.Add(m.maxLifetime); end.Before(t.ExpiresAt) {
			t.ExpiresAt = end
		}
	}
	// Rounded up: a token with less than a second left says 1, not
	// nothing (the field is left out at 0).
	m.out.resp.RefreshTokenExpiresIn = max(int64((t.ExpiresAt.Sub(m.now)+time.Second-1)/time.Second), 0)
}

// issuedTokens is a token response with the bytes of its access and
// refresh tokens: the tokens are strings over access and refresh, which
// are written once, before the strings are made, and never changed.
type issuedTokens struct {
	resp            TokenResponse
	access, refresh credential
}

// make writes a new credential into b and returns it as a string sharing
// b's memory.
func (b *credential) make() string {
	putCredential(b)
	return unsafe.String(&b[0], len(b))
}

// revocationHorizon is how long a grant revocation must be remembered: past
// the longest lifetime any token of the grant may still be issued with.
func (p *Provider) revocationHorizon(c *Client) time.Time {
	a, r := p.lifetimes(c)
	return p.now().Add(max(a, r) + p.cfg.CodeTTL)
}

// codeGrant redeems an authorization code (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (p *Provider) codeGrant(r *http.Request, c *Client, ps params) (*TokenResponse, *Error) {
	code, e := ps.get("code")
	if e != nil {
		return nil, e
	}
	redirectURI, e := ps.get("redirect_uri")
	if e != nil {
		return nil, e
	}
	verifier, e := ps.get("code_verifier")
	if e != nil {
		return nil, e
	}
	if !c.AllowsGrant(GrantAuthorizationCode) {
		return nil, errorf(ErrorUnauthorizedClient, "this client may not use the authorization_code grant")
	}
	if code == "" {
		return nil, errorf(ErrorInvalidRequest, "code is required")
	}
	ctx := r.Context()
	keyErr := p.idTokenKeyError(ctx, c)
	var (
		ac     *AuthCode
		resp   *TokenResponse
		stored []*Token // what RedeemAuthCode stored
		err    error
	)
	if p.redeemer != nil {
		// One write: the store consumes the code, calls issue, and
		// stores the tokens in the same transaction. issue runs inside
		// the store's write (on sqlitestore, on its one writer
		// goroutine), so it only compares and assigns: the tokens are
		// minted and the verifier hashed before the call, and the ID
		// token is signed after it.
		x := &codeRedemption{p: p, c: c, redirectURI: redirectURI, proof: newPKCEProof(verifier),
			minted: p.mintTokens(c, c.AllowsGrant(GrantRefreshToken)), keyErr: keyErr}
		ac, err = found(p.redeemer.RedeemAuthCode(ctx, HashToken(code), p.now(), x.issue))
		if x.rejected != nil {
			return nil, x.rejected
		}
		resp, stored = x.resp, x.stored
	} else {
		if keyErr != nil {
			// The code's scope is known only once it is consumed, which
			// cannot be undone here: refused before.
			return nil, serverError(keyErr)
		}
		ac, err = found(p.store.ConsumeAuthCode(ctx, HashToken(code), p.now()))
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errorf(ErrorInvalidGrant, "the authorization code is invalid or expired")
	case errors.Is(err, ErrAlreadyUsed):
		if ac == nil || !ownsCode(c, ac) {
			// Another client's code (RFC 6749 §4.1.3): refused as an
			// unknown one. Only a replay by the client the code was
			// issued to revokes its grant, or any client that got hold of
			// a used code could revoke another client's tokens.
			p.log.Info("authorization code of another client presented", "request_id", RequestID(ctx), "client_id", c.ID)
			return nil, errorf(ErrorInvalidGrant, "the authorization code is invalid or expired")
		}
		// RFC 6749 §4.1.2: revoke what the first redemption issued.
		p.log.Warn("authorization code replayed; revoking its grant", "request_id", RequestID(ctx), "client_id", c.ID)
		// Also when the client has gone: a store drops the write of a
		// caller that went away before it committed.
		if err := p.store.RevokeGrant(context.WithoutCancel(ctx), ac.GrantID, p.revocationHorizon(c)); err != nil {
			return nil, serverError(err)
		}
		return nil, errorf(ErrorInvalidGrant, "the authorization code was already used")
	case err != nil:
		return nil, serverError(err)
	}
	if p.redeemer != nil {
		if resp == nil {
			return nil, serverError(errors.New("oauthd: RedeemAuthCode succeeded without calling issue"))
		}
		if e := p.addIDToken(r, c, resp, ac.Subject, ac.Scopes, ac.AuthTime, ac.Nonce, registeredClaims(ac.Claims, c)); e != nil {
			p.dropTokens(ctx, stored)
			return nil, e
		}
		return resp, nil
	}
	proof := newPKCEProof(verifier)
	if e := p.checkCode(c, ac, redirectURI, &proof); e != nil {
		return nil, e
	}
	minted := p.mintTokens(c, c.AllowsGrant(GrantRefreshToken))
	resp, toks := codeTokens(&minted, ac, registeredClaims(ac.Claims, c))
	if e := p.addIDToken(r, c, resp, ac.Subject, ac.Scopes, ac.AuthTime, ac.Nonce, registeredClaims(ac.Claims, c)); e != nil {
		return nil, e
	}
	if err := p.store.CreateTokens(ctx, toks...); err != nil {
		return nil, serverError(err)
	}
	return resp, nil
}

// codeRedemption is the issue callback a CodeRedeemer calls with the
// consumed code, and what it decided: one allocation for the callback's
// inputs and results (a closure would allocate each result apart).
type codeRedemption struct {
	p           *Provider
	c           *Client
	redirectURI string
	proof       pkceProof
	minted      mintedTokens
	keyErr      error // from idTokenKeyError

	resp     *TokenResponse
	stored   []*Token // what RedeemAuthCode stored
	rejected *Error
}

// issue checks the code and makes its tokens; it runs inside the store's
// write (see CodeRedeemer), and may run more than once.
func (x *codeRedemption) issue(ac *AuthCode) ([]*Token, error) {
	x.resp, x.stored, x.rejected = nil, nil, nil
	if e := x.p.checkCode(x.c, ac, x.redirectURI, &x.proof); e != nil {
		x.rejected = e
		return nil, e
	}
	if e := needsKey(x.keyErr, ac.Scopes); e != nil {
		x.rejected = e
		return nil, e
	}
	x.resp, x.stored = codeTokens(&x.minted, ac, registeredClaims(ac.Claims, x.c))
	return x.stored, nil
}

// ownsCode reports whether the code was issued to the client c (and not
// to an earlier client registered under the same client_id).
func ownsCode(c *Client, ac *AuthCode) bool {
	return ac.ClientID == c.ID && !c.Predates(ac.IssuedAt)
}

// checkCode checks a consumed code against the token request: the client
// it was issued to, its expiry, the redirect_uri and the PKCE verifier
// (RFC 6749 §4.1.3, RFC 7636 §4.6). It may run inside the store's write
// (see CodeRedeemer): no I/O.
func (p *Provider) checkCode(c *Client, ac *AuthCode, redirectURI string, proof *pkceProof) *Error {
	if !ownsCode(c, ac) {
		// The same answer as for an unknown code: the client learns
		// nothing of another client's codes.
		return errorf(ErrorInvalidGrant, "the authorization code is invalid or expired")
	}
	if !p.now().Before(ac.ExpiresAt) {
		return errorf(ErrorInvalidGrant, "the authorization code is invalid or expired")
	}
	// The code's redirect_uri is "" when the authorization request left it
	// out (the client's one registered URI was used): the token request
	// may then leave it out too, or send that URI.
	if redirectURI != ac.RedirectURI && !(ac.RedirectURI == "" && len(c.RedirectURIs) == 1 && redirectURI == c.RedirectURIs[0]) {
		return errorf(ErrorInvalidGrant, "redirect_uri does not match the authorization request")
	}
	// The client's registration may have changed since the code was
	// issued (as Approve checks it before issuing one): a code sent to a
	// redirect URI removed since, or for a scope the client may no longer
	// ask for, is not redeemed.
	if ac.RedirectURI != "" && !redirectAllowed(c, ac.RedirectURI) {
		return errorf(ErrorInvalidGrant, "the code's redirect_uri is no longer registered for this client")
	}
	if ac.RedirectURI == "" && len(c.RedirectURIs) != 1 {
		// The request left redirect_uri out, so the code went to the
		// client's one registered URI; the client now has none or several,
		// and which one that was is not recorded.
		return errorf(ErrorInvalidGrant, "the client's redirect URIs changed since the code was issued")
	}
	if !subset(ac.Scopes, c.Scopes) {
		return errorf(ErrorInvalidGrant, "the client may no longer ask for the code's scope")
	}
	if ac.CodeChallenge == "" {
		if proof.verifier != "" {
			// RFC 9700 §2.1.1: a verifier without a challenge is a downgrade.
			return errorf(ErrorInvalidRequest, "code_verifier sent but the authorization request had no code_challenge")
		}
	} else if proof.verifier == "" {
		return errorf(ErrorInvalidGrant, "code_verifier is required")
	} else if !proof.matches(ac.CodeChallengeMethod, ac.CodeChallenge) {
		return errorf(ErrorInvalidGrant, "code_verifier does not match the code_challenge")
	}
	return nil
}

// codeTokens fills the minted tokens for a checked code, without the ID
// token. It may run inside the store's write (see CodeRedeemer): no I/O,
// only assignments.
func codeTokens(m *mintedTokens, ac *AuthCode, claims string) (*TokenResponse, []*Token) {
	resp, toks := m.fill(ac.GrantID, ac.Subject, ac.Scopes, ac.AuthTime)
	for _, t := range toks {
		t.Claims = claims
	}
	return resp, m.dropDeadRefresh(resp, toks)
}

// dropTokens removes tokens that were stored but will not be sent, because
// the response failed after the store call: nobody holds them, and they
// should not wait for their expiry in the store. It is best effort; a
// failure is logged.
func (p *Provider) dropTokens(ctx context.Context, toks []*Token) {
	ctx = context.WithoutCancel(ctx) // also when the client has gone
	for _, t := range toks {
		if err := p.store.RevokeToken(ctx, t.Hash); err != nil && !errors.Is(err, ErrNotFound) {
			p.log.Warn("removing undelivered tokens", "request_id", RequestID(ctx), "error", err.Error())
			return
		}
	}
}

// refreshGrant exchanges a refresh token for new tokens, rotating it
// (RFC 6749 §6, RFC 9700 §4.14.2). A refresh token used after rotation
// revokes its whole grant, unless the retry comes within the grace period.
func (p *Provider) refreshGrant(r *http.Request, c *Client, ps params) (*TokenResponse, *Error) {
	presented, e := ps.get("refresh_token")
	if e != nil {
		return nil, e
	}
	scope, e := ps.get("scope")
	if e != nil {
		return nil, e
	}
	if !c.AllowsGrant(GrantRefreshToken) {
		return nil, errorf(ErrorUnauthorizedClient, "this client may not use the refresh_token grant")
	}
	if presented == "" {
		return nil, errorf(ErrorInvalidRequest, "refresh_token is required")
	}
	ctx := r.Context()
	keyErr := p.idTokenKeyError(ctx, c)
	hash := HashToken(presented)
	if p.rotator != nil {
		return p.rotateRefresh(r, c, presented, hash, scope, keyErr)
	}
	old, err := found(p.store.Token(ctx, hash))
	if errors.Is(err, ErrNotFound) {
		return nil, errorf(ErrorInvalidGrant, "the refresh token is invalid, expired or revoked")
	} else if err != nil {
		return nil, serverError(err)
	}
	if e := p.checkRefreshToken(c, old); e != nil {
		return nil, e
	}
	if !old.RotatedAt.IsZero() {
		return p.refreshReuse(r, c, old, presented)
	}
	granted, scopes, e := refreshScopes(c, old, scope)
	if e != nil {
		return nil, e
	}
	if e := needsKey(keyErr, scopes); e != nil {
		return nil, e
	}
	m := p.mintTokens(c, true)
	claims := registeredClaims(old.Claims, c)
	resp, toks := refreshTokens(&m, old, claims, granted, scopes)
	// OIDC Core §12.2: a new ID token with the original auth_time and no
	// nonce.
	if e := p.addIDToken(r, c, resp, old.Subject, scopes, old.AuthTime, "", withholdClaims(claims, old.Scopes, scopes)); e != nil {
		return nil, e
	}
	var sealed []byte
	if p.cfg.RefreshGracePeriod > 0 {
		sealed = newSuccessorSealer(presented).seal(resp)
	}
	old2, err := found(p.store.RotateRefreshToken(ctx, hash, p.now(), sealed, toks...))
	switch {
	case errors.Is(err, ErrAlreadyUsed):
		return p.refreshReuse(r, c, old2, presented)
	case errors.Is(err, ErrNotFound):
		return nil, errorf(ErrorInvalidGrant, "the refresh token is invalid, expired or revoked")
	case err != nil:
		return nil, serverError(err)
	}
	return resp, nil
}

// checkRefreshToken checks that old is a refresh token of client c that
// has not expired. It may run inside the store's write (see
// RefreshRotator): no I/O.
func (p *Provider) checkRefreshToken(c *Client, old *Token) *Error {
	now := p.now()
	if old.Kind != RefreshToken || old.ClientID != c.ID || c.Predates(old.IssuedAt) || !now.Before(old.ExpiresAt) {
		return errorf(ErrorInvalidGrant, "the refresh token is invalid, expired or revoked")
	}
	if max := p.cfg.RefreshTokenMaxLifetime; max > 0 && !old.AuthTime.IsZero() && !now.Before(old.AuthTime.Add(max)) {
		// Made before the limit was lowered: the grant is over all the same.
		return errorf(ErrorInvalidGrant, "the grant has reached its maximum lifetime; sign in again")
	}
	return nil
}

// refreshScopes is the scope of a refresh's access token: the grant's, or
// the narrower scope the request asks for (RFC 6749 §6).
//
// A scope of spaces only names no scope: it is taken as absent, as an
// empty one is (and as the authorization and client_credentials requests
// take it), never as a request for an access token without scope.
//
// The grant's scope is what remains of it in the client's current
// registration: a scope removed from the client since the grant is not
// issued again (its refresh token leaves it out from then on), and a
// request that names it is invalid_scope.
func refreshScopes(c *Client, old *Token, scope string) (granted, scopes []string, e *Error) {
	granted = registeredScopes(c, old.Scopes)
	if len(granted) == 0 && len(old.Scopes) > 0 {
		// Every scope of the grant was removed from the client: nothing
		// is left to issue (an access token without scope would read as
		// the grant's, RFC 6749 §5.1).
		return nil, nil, errorf(ErrorInvalidGrant, "the application may no longer ask for any scope of this grant")
	}
	if scope == "" {
		return granted, granted, nil
	}
	asked, ok := ParseScope(scope)
	switch {
	case !ok:
		return nil, nil, errorf(ErrorInvalidScope, "scope has characters outside the allowed set")
	case len(asked) == 0:
		return granted, granted, nil
	case !subset(asked, old.Scopes):
		return nil, nil, errorf(ErrorInvalidScope, "the requested scope exceeds the scope originally granted")
	case !subset(asked, granted):
		return nil, nil, errorf(ErrorInvalidScope, "the application may no longer ask for this scope")
	}
	return granted, asked, nil
}

// registeredScopes is scopes without those the client's registration no
// longer lists: scopes itself when it lists them all.
func registeredScopes(c *Client, scopes []string) []string {
	if subset(scopes, c.Scopes) {
		return scopes
	}
	out := make([]string, 0, len(scopes))
	for _, s := range scopes {
		if slices.Contains(c.Scopes, s) {
			out = append(out, s)
		}
	}
	return out
}

// refreshTokens fills the minted tokens of a refresh of old, without the
// ID token. It may run inside the store's write: only assignments.
//
// claims is the grant's claims request as the client's registration still
// allows it (registeredClaims).
func refreshTokens(m *mintedTokens, old *Token, claims string, granted, scopes []string) (*TokenResponse, []*Token) {
	resp, toks := m.fill(old.GrantID, old.Subject, scopes, old.AuthTime)
	// A public client's successor expires when its predecessor would have.
	m.limitRefresh(old.ExpiresAt, old.AuthTime)
	// The refresh token keeps the grant's full scope so a narrower access
	// token does not narrow later refreshes (RFC 6749 §6), less what the
	// client's registration no longer allows (see refreshScopes).
	toks[1].Scopes = granted
	// So does its claims request; the new access token's leaves out the
	// claims of the scopes it leaves out.
	toks[0].Claims = withholdClaims(claims, old.Scopes, scopes)
	toks[1].Claims = withholdClaims(claims, old.Scopes, granted)
	return resp, toks
}

// rotateRefresh is refreshGrant on a RefreshRotator: the token is looked
// up and rotated in one write, and the ID token, if the grant has one, is
// signed after it, outside the write. The sealed successor then holds the
// response without its ID token; refreshReuse signs a new one for a retry.
func (p *Provider) rotateRefresh(r *http.Request, c *Client, presented, hash, scope string, keyErr error) (*TokenResponse, *Error) {
	ctx := r.Context()
	x := &refreshRotation{p: p, c: c, scope: scope, minted: p.mintTokens(c, true), keyErr: keyErr}
	if p.cfg.RefreshGracePeriod > 0 {
		x.sealer = newSuccessorSealer(presented)
	}
	old, err := p.rotator.RotateRefreshTokenFunc(ctx, hash, p.now(), x.rotate)
	if x.rejected != nil && errors.Is(err, x.rejected) {
		return nil, x.rejected
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, errorf(ErrorInvalidGrant, "the refresh token is invalid, expired or revoked")
	case errors.Is(err, ErrAlreadyUsed):
		if old == nil {
			return nil, serverError(errors.New("oauthd: RotateRefreshTokenFunc returned ErrAlreadyUsed without the token"))
		}
		if e := p.checkRefreshToken(c, old); e != nil {
			return nil, e
		}
		return p.refreshReuse(r, c, old, presented)
	case err != nil:
		return nil, serverError(err)
	case x.resp == nil:
		return nil, serverError(errors.New("oauthd: RotateRefreshTokenFunc succeeded without calling rotate"))
	}
	// OIDC Core §12.2: a new ID token with the original auth_time and no
	// nonce.
	if e := p.addIDToken(r, c, x.resp, old.Subject, x.scopes, old.AuthTime, "", withholdClaims(registeredClaims(old.Claims, c), old.Scopes, x.scopes)); e != nil {
		// The refresh token is rotated. Within a grace period a retry
		// gets the sealed successor and another try at the ID token, so
		// its tokens are kept; without one nobody can have them.
		if x.sealer == nil {
			p.dropTokens(ctx, x.stored)
		}
		return nil, e
	}
	return x.resp, nil
}

// refreshRotation is the rotate callback a RefreshRotator calls with the
// refresh token, and what it decided (see codeRedemption).
type refreshRotation struct {
	p      *Provider
	c      *Client
	scope  string // the request's scope parameter
	minted mintedTokens
	sealer *successorSealer // nil without a grace period
	keyErr error            // from idTokenKeyError

	resp     *TokenResponse
	scopes   []string // the access token's
	stored   []*Token // what RotateRefreshTokenFunc stored
	rejected *Error
}

// rotate checks the refresh token against the request and makes its
// successors; it runs inside the store's write (see RefreshRotator), and
// may run more than once.
func (x *refreshRotation) rotate(old *Token) ([]byte, []*Token, error) {
	x.resp, x.scopes, x.stored, x.rejected = nil, nil, nil, nil
	if e := x.p.checkRefreshToken(x.c, old); e != nil {
		x.rejected = e
		return nil, nil, e
	}
	granted, scopes, e := refreshScopes(x.c, old, x.scope)
	if e != nil {
		x.rejected = e
		return nil, nil, e
	}
	if e := needsKey(x.keyErr, scopes); e != nil {
		x.rejected = e
		return nil, nil, e
	}
	resp, toks := refreshTokens(&x.minted, old, registeredClaims(old.Claims, x.c), granted, scopes)
	var sealed []byte
	if x.sealer != nil {
		sealed = x.sealer.seal(resp)
	}
	x.resp, x.scopes, x.stored = resp, scopes, toks
	return sealed, toks, nil
}

// refreshReuse answers a refresh token that was already rotated: the same
// successor within the grace period, else the grant is revoked.
func (p *Provider) refreshReuse(r *http.Request, c *Client, old *Token, presented string) (*TokenResponse, *Error) {
	ctx := r.Context()
	if g := p.cfg.RefreshGracePeriod; g > 0 && old != nil && p.now().Sub(old.RotatedAt) <= g {
		resp := openSuccessor(presented, old.Successor)
		if resp != nil && resp.RefreshToken != "" {
			// A retry gets the successor only while nobody has used
			// it: once it was rotated in turn, its holder had received
			// it, and the old token presented again is a replay (RFC
			// 9700 §4.14.2). Without this check, a stolen token would
			// lead, one grace period after another, to the current one.
			next, err := found(p.store.Token(ctx, HashToken(resp.RefreshToken)))
			switch {
			case err == nil && next.RotatedAt.IsZero():
				resp.RefreshTokenExpiresIn = max(int64((next.ExpiresAt.Sub(p.now())+time.Second-1)/time.Second), 0)
			case err == nil, errors.Is(err, ErrNotFound):
				resp = nil
			default:
				return nil, serverError(err)
			}
		}
		if resp != nil {
			// The answer as things stand now, not as they stood at the
			// first answer (RFC 6749 §5.1): the access token's time left
			// and the scope the client's registration still lists; an
			// access token revoked since (RFC 7009) is not handed out as
			// new.
			at, err := found(p.store.Token(ctx, HashToken(resp.AccessToken)))
			switch {
			case errors.Is(err, ErrNotFound) || (err == nil && !at.Active(p.now())):
				return nil, errorf(ErrorInvalidGrant, "the refresh token was already used, and the access token it gave was revoked or has expired since")
			case err != nil:
				return nil, serverError(err)
			}
			resp.ExpiresIn = max(int64((at.ExpiresAt.Sub(p.now())+time.Second-1)/time.Second), 0)
			if scopes := registeredScopes(c, at.Scopes); len(scopes) < len(at.Scopes) {
				if len(scopes) == 0 {
					return nil, errorf(ErrorInvalidGrant, "the refresh token was already used, and its scopes were removed from the client since")
				}
				resp.Scope = JoinScope(scopes)
			}
			if resp.IDToken == "" {
				// A successor sealed inside a RefreshRotator's write
				// has no ID token (see rotateRefresh): the retry gets
				// one of its own, for the same access token.
				scopes, _ := ParseScope(resp.Scope)
				if e := p.addIDToken(r, c, resp, old.Subject, scopes, old.AuthTime, "", withholdClaims(registeredClaims(old.Claims, c), old.Scopes, scopes)); e != nil {
					return nil, e
				}
			}
			return resp, nil
		}
	}
	p.log.Warn("refresh token reused; revoking its grant", "request_id", RequestID(ctx), "client_id", c.ID)
	if old != nil {
		if err := p.store.RevokeGrant(context.WithoutCancel(ctx), old.GrantID, p.revocationHorizon(c)); err != nil {
			return nil, serverError(err)
		}
	}
	return nil, errorf(ErrorInvalidGrant, "the refresh token was already used")
}

// successorSealer encrypts successor responses with a key derived from the
// presented refresh token, which the store never sees: the stored blob is
// useless without the old token. The key is derived when the sealer is
// made, so that sealing, which may run inside a store's write, only
// encodes and encrypts.
type successorSealer struct{ gcm cipher.AEAD }

func newSuccessorSealer(presented string) *successorSealer {
	key := sha256.Sum256([]byte("oauthd refresh successor\x00" + presented))
	blk, _ := aes.NewCipher(key[:])
	gcm, _ := cipher.NewGCM(blk)
	return &successorSealer{gcm: gcm}
}

// seal returns the nonce and the sealed JSON of resp.
func (s *successorSealer) seal(resp *TokenResponse) []byte {
	n := s.gcm.NonceSize()
	b := resp.appendJSON(make([]byte, n, 512))
	rand.Read(b[:n])
	return s.gcm.Seal(b[:n], b[:n], b[n:], nil)
}

func openSuccessor(presented string, sealed []byte) *TokenResponse {
	key := sha256.Sum256([]byte("oauthd refresh successor\x00" + presented))
	blk, _ := aes.NewCipher(key[:])
	gcm, _ := cipher.NewGCM(blk)
	if len(sealed) < gcm.NonceSize() {
		return nil
	}
	b, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
	if err != nil {
		return nil
	}
	var resp TokenResponse
	if json.Unmarshal(b, &resp) != nil {
		return nil
	}
	return &resp
}

// idTokenKeyError says, before a code is used up or a refresh token
// rotated, why an ID token for the client could not be signed now (the
// key of its algorithm is not usable on this node), or nil. needsKey
// refuses with it, inside the store's write, only the codes and refresh
// tokens whose answer has an ID token: a failure after the write would
// cost the client its grant, as its retry would be a replay. Only the
// keys in memory are consulted when they are fresh; for a client that
// may be granted openid.
func (p *Provider) idTokenKeyError(ctx context.Context, c *Client) error {
	if len(c.Scopes) != 0 && !slices.Contains(c.Scopes, ScopeOpenID) {
		return nil
	}
	alg, err := idTokenAlg(c)
	if err != nil {
		return err
	}
	_, err = p.keys.signingKey(ctx, alg)
	return err
}

// needsKey refuses a grant of scopes with openid when the ID token's key
// is not usable (keyErr from idTokenKeyError). It only compares: it runs
// inside the store's write.
func needsKey(keyErr error, scopes []string) *Error {
	if keyErr != nil && slices.Contains(scopes, ScopeOpenID) {
		return serverError(keyErr)
	}
	return nil
}

// addIDToken checks that the user of a grant still exists, and adds an ID
// token to a token response when openid was granted
// (OIDC Core §3.1.3.3, §12.2), with at_hash for the access token beside it.
func (p *Provider) addIDToken(r *http.Request, c *Client, resp *TokenResponse, subject string, scopes []string, authTime time.Time, nonce, claims string) *Error {
	if subject == "" {
		return nil
	}
	// A grant does not outlive its user: introspection and userinfo
	// answer its tokens as inactive once the user is deleted, and the
	// token endpoint issues none (the callers drop what was stored).
	u, err := p.userAfterWrite(r.Context(), subject)
	if errors.Is(err, ErrNotFound) {
		return errorf(ErrorInvalidGrant, "the user of this grant no longer exists")
	} else if err != nil {
		return serverError(err)
	}
	if !slices.Contains(scopes, ScopeOpenID) {
		return nil
	}
	idt, err := p.idToken(r.Context(), &idTokenInput{client: c, user: u, authTime: authTime, nonce: nonce,
		accessToken: resp.AccessToken, scopes: scopes, scopeClaims: c.ClaimsInIDToken, claims: claims})
	if err != nil {
		return serverError(err)
	}
	resp.IDToken = idt
	return nil
}

// userAfterWriteFor bounds how long userAfterWrite tries again.
const userAfterWriteFor = 10 * time.Second

// userAfterWrite reads the user of a grant whose code the store has just
// consumed, or whose refresh token it has just rotated: a failure now would
// cost the client its grant, as its retry of the request would be a replay
// (the code already used, the refresh token already rotated; the answer
// invalid_grant, and the grant revoked). So a store that cannot be used
// for now (ErrUnavailable: a locked table, a database restarting) is asked
// again, a little later each time, for up to userAfterWriteFor while the
// client waits.
func (p *Provider) userAfterWrite(ctx context.Context, subject string) (*User, error) {
	deadline := time.Now().Add(userAfterWriteFor)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		// Each read ends by the deadline too: a store's own timeout (15 s
		// on pgstore) would otherwise stretch the wait.
		actx, cancel := context.WithDeadline(ctx, deadline)
		u, err := found(p.store.User(actx, subject))
		expired := actx.Err() != nil // before cancel, which ends actx anyway
		cancel()
		if err != nil && ctx.Err() == nil && expired && !errors.Is(err, ErrUnavailable) {
			// Our deadline, not the store's answer: say so as the store
			// would.
			err = fmt.Errorf("oauthd: read user: %w: %w", ErrUnavailable, err)
		}
		if err == nil || !errors.Is(err, ErrUnavailable) || time.Now().Add(delay).After(deadline) {
			return u, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		}
	}
}

// grantScope decides the scope of a grant without a user consent step: the
// requested scope, which must be allowed for the client, or the client's
// scopes when none is requested (RFC 6749 §3.3).
func grantScope(c *Client, ps params) ([]string, *Error) {
	scope, e := ps.get("scope")
	if e != nil {
		return nil, e
	}
	scopes, ok := ParseScope(scope)
	if !ok {
		return nil, errorf(ErrorInvalidScope, "scope has characters outside the allowed set")
	}
	if len(scopes) == 0 {
		return slices.Clone(c.Scopes), nil
	}
	if !subset(scopes, c.Scopes) {
		return nil, errorf(ErrorInvalidScope, "the requested scope is not allowed for this client")
	}
	return scopes, nil
}

// clientCredentialsGrant issues an access token to a confidential client for
// itself (RFC 6749 §4.4). No refresh token is issued (§4.4.3).
func (p *Provider) clientCredentialsGrant(r *http.Request, c *Client, ps params) (*TokenResponse, *Error) {
	if c.Public || !c.AllowsGrant(GrantClientCredentials) {
		return nil, errorf(ErrorUnauthorizedClient, "this client may not use the client_credentials grant")
	}
	scopes, e := grantScope(c, ps)
	if e != nil {
		return nil, e
	}
	// No refresh token, so no offline access (RFC 6749 §5.1: the scope
	// granted).
	scopes = withoutOfflineAccess(scopes)
	// The token belongs to no grant (an empty GrantID): nothing descends
	// from it, and nothing but its own revocation or expiry ends it. A
	// store need not index it by grant.
	resp, toks := p.newTokens(c, "", "", scopes, time.Time{}, false)
	if err := p.store.CreateTokens(r.Context(), toks...); err != nil {
		return nil, serverError(err)
	}
	return resp, nil
}

// passwordGrant is the resource owner password credentials grant (RFC 6749
// §4.3), only when the server and the client enable it.
func (p *Provider) passwordGrant(r *http.Request, c *Client, ps params) (*TokenResponse, *Error) {
	username, e := ps.get("username")
	if e != nil {
		return nil, e
	}
	password, e := ps.get("password")
	if e != nil {
		return nil, e
	}
	if !c.AllowsGrant(GrantPassword) {
		return nil, errorf(ErrorUnauthorizedClient, "this client may not use the password grant")
	}
	if username == "" || password == "" {
		return nil, errorf(ErrorInvalidRequest, "username and password are required")
	}
	scopes, e := grantScope(c, ps)
	if e != nil {
		return nil, e
	}
	if !c.AllowsGrant(GrantRefreshToken) {
		scopes = withoutOfflineAccess(scopes)
	}
	u, wait, err := p.checkPasswordLimited(r, username, password, false)
	if err != nil {
		return nil, p.kdfError(err)
	}
	if wait > 0 {
		return nil, tooManyAttempts(wait)
	}
	if u == nil {
		return nil, errorf(ErrorInvalidGrant, "the username or password is incorrect")
	}
	now := p.now()
	resp, toks := p.newTokens(c, NewGrantID(), u.ID, scopes, now, c.AllowsGrant(GrantRefreshToken))
	// With openid, an ID token, as the refresh of this grant gives one
	// (OIDC Core §12.2): the person authenticated now, with the password.
	if e := p.addIDToken(r, c, resp, u.ID, scopes, now, "", ""); e != nil {
		return nil, e
	}
	if err := p.store.CreateTokens(r.Context(), toks...); err != nil {
		return nil, serverError(err)
	}
	return resp, nil
}
