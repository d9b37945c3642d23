package oauthd

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Response modes (OAuth 2.0 Multiple Response Type Encoding Practices,
// OAuth 2.0 Form Post Response Mode).
const (
	ResponseModeQuery    = "query"
	ResponseModeFragment = "fragment"
	ResponseModeFormPost = "form_post"
)

// fragmentResponseTypes are the response types whose default response mode
// is fragment (OAuth 2.0 Multiple Response Type Encoding Practices §5).
var fragmentResponseTypes = map[string]bool{"token": true, "id_token": true, "id_token token": true,
	"code id_token": true, "code token": true, "code id_token token": true}

// ParseAuthorizeRequest validates an authorization request (RFC 6749
// §4.1.1, §4.2.1, RFC 7636 §4.3, OIDC Core §3.1.2.1) sent by GET (query) or
// POST (form body).
//
// When the client or the redirect URI cannot be trusted (missing, unknown,
// repeated, not registered) it returns a nil request and an *Error whose
// Code is PageUnknownClient, PageInvalidRedirectURI or PageBadRequest: the
// person must be shown an error page, never redirected. For every other
// error it returns the request with ClientID, RedirectURI, State and
// ResponseMode filled, so AuthorizeError can redirect the error to the
// client (RFC 6749 §4.1.2.1).
func (p *Provider) ParseAuthorizeRequest(w http.ResponseWriter, r *http.Request) (*AuthRequest, *Client, error) {
	var ps params
	var perr *Error
	if r.Method == http.MethodPost {
		ps, perr = parseForm(w, r, p.cfg.MaxBodyBytes)
	} else {
		ps, perr = parseQuery(r.URL.RawQuery)
	}
	return p.parseAuthorizeParams(r, ps, perr)
}

// parseAuthorizeParams is ParseAuthorizeRequest with the parameters read.
func (p *Provider) parseAuthorizeParams(r *http.Request, ps params, perr *Error) (*AuthRequest, *Client, error) {
	if perr != nil {
		perr.Code = PageBadRequest
		return nil, nil, perr
	}
	clientID, err := ps.get("client_id")
	if err != nil || clientID == "" {
		d := "the request has no single client_id"
		if err != nil && ps.first("client_id") == "" {
			d = "the request's client_id is not valid text"
		}
		return nil, nil, &Error{Code: PageUnknownClient, Description: d}
	}
	client, gerr := found(p.store.Client(r.Context(), clientID))
	if errors.Is(gerr, ErrNotFound) {
		return nil, nil, &Error{Code: PageUnknownClient, Description: "no application is registered with this client_id"}
	} else if gerr != nil {
		return nil, nil, serverError(gerr)
	}
	redirectURI, err := ps.get("redirect_uri")
	omitted := false
	if err == nil && redirectURI == "" && len(client.RedirectURIs) == 1 && !asksOpenID(ps, client) {
		// RFC 6749 §3.1.2.3: with one URI registered the client may leave
		// redirect_uri out (OpenID Connect requests may not: OIDC Core
		// §3.1.2.1).
		redirectURI, omitted = client.RedirectURIs[0], true
	}
	if err != nil {
		d := "the request has more than one redirect_uri"
		if ps.first("redirect_uri") == "" {
			d = "the request's redirect_uri is not valid text"
		}
		return nil, client, &Error{Code: PageInvalidRedirectURI, Description: d}
	}
	if redirectURI == "" {
		return nil, client, &Error{Code: PageInvalidRedirectURI, Description: "the request has no redirect_uri, which this application must send (it has several registered, or the request is an OpenID Connect request)"}
	}
	if !redirectAllowed(client, redirectURI) {
		return nil, client, &Error{Code: PageInvalidRedirectURI, Description: "redirect_uri is not registered for this application"}
	}
	if e := p.redirectUsable(r, client, redirectURI); e != nil {
		// Registered in the store without Client.Validate.
		return nil, client, e
	}

	now := p.now()
	ar := &AuthRequest{ClientID: client.ID, RedirectURI: redirectURI, RedirectURIOmitted: omitted, CreatedAt: now, ExpiresAt: now.Add(p.cfg.AuthRequestTTL)}
	// state is echoed in every answer, so it is read first.
	state, serr := ps.get("state")
	ar.State = state
	if serr == nil && len(state) > maxStateLen {
		// Not echoed: the error is about it, and an answer must not carry
		// whatever a request sends.
		ar.State = ""
		serr = errorf(ErrorInvalidRequest, "state is longer than %d bytes", maxStateLen)
	}
	rt, rterr := ps.get("response_type")
	ar.ResponseType = normalizeResponseType(rt)
	mode, merr := ps.get("response_mode")
	switch mode {
	case "", ResponseModeQuery, ResponseModeFragment, ResponseModeFormPost:
		ar.ResponseMode = mode
	default:
		merr = errorf(ErrorInvalidRequest, "response_mode%s is not supported; use query, fragment or form_post", quoted(mode))
	}
	if ar.ResponseMode == ResponseModeQuery && fragmentResponseTypes[ar.ResponseType] {
		// Tokens must never travel in a query (OAuth 2.0 Multiple Response
		// Type Encoding Practices §5).
		ar.ResponseMode = ""
		merr = errorf(ErrorInvalidRequest, "response_mode query is not allowed with response_type %s", ar.ResponseType)
	}
	for _, e := range []*Error{serr, merr, rterr} {
		if e != nil {
			return ar, client, e
		}
	}
	if err := client.issuable(); err != nil {
		// Refused now, rather than after the person signed in and the
		// code was used up at the token endpoint.
		return ar, client, p.invalidRegistration(r, client, ErrorUnauthorizedClient, err)
	}
	if ps.sent("request") {
		return ar, client, errorf(ErrorRequestNotSupported, "request objects are not supported")
	}
	if ps.sent("request_uri") {
		return ar, client, errorf(ErrorRequestURINotSupported, "request_uri is not supported")
	}
	if e := p.checkResponseType(client, ar.ResponseType); e != nil {
		return ar, client, e
	}

	scope, e := ps.get("scope")
	if e != nil {
		return ar, client, e
	}
	scopes, ok := ParseScope(scope)
	if !ok {
		return ar, client, errorf(ErrorInvalidScope, "scope has characters outside the allowed set")
	}
	if len(scopes) == 0 {
		scopes = slices.Clone(client.Scopes) // RFC 6749 §3.3: the client's default scope
	}
	if slices.Contains(scopes, ScopeOpenID) && slices.Contains(client.Scopes, ScopeOpenID) {
		// OIDC Core §3.1.2.1: scope values that are not understood SHOULD
		// be ignored. Those that are neither OpenID Connect scopes nor
		// scopes of this client are dropped (the token response names
		// the scope granted); an OpenID Connect scope the client may not
		// ask for is still invalid_scope.
		scopes = slices.DeleteFunc(scopes, func(s string) bool {
			return !slices.Contains(client.Scopes, s) && !slices.Contains(StandardScopes(), s)
		})
	}
	if !subset(scopes, client.Scopes) {
		return ar, client, errorf(ErrorInvalidScope, "the requested scope is not allowed for this application")
	}
	if !strings.Contains(ar.ResponseType, "code") || !client.AllowsGrant(GrantRefreshToken) {
		// OIDC Core §11: offline_access is ignored unless the response
		// type returns a code; no refresh token comes from the front
		// channel, and the scope returned (RFC 6749 §4.2.2, §5.1) and
		// shown on the consent page is what is granted. Nor is a refresh
		// token issued to a client without the refresh_token grant.
		scopes = withoutOfflineAccess(scopes)
	}
	ar.Scopes = scopes

	if e := p.parsePKCE(ps, client, ar); e != nil {
		return ar, client, e
	}
	if e := parseOIDCParams(ps, ar); e != nil {
		return ar, client, e
	}
	var claimedSub string
	if ar.Claims != "" {
		cr, _ := ParseClaimsRequest(ar.Claims)
		if claimedSub, e = claimsRequirements(cr); e != nil {
			return ar, client, e
		}
		// Only standard claims of scopes the client may ask for are kept.
		ar.Claims, _ = filterClaimsRequest(cr, client.Scopes)
	}
	if e := checkOpenID(ar); e != nil {
		return ar, client, e
	}
	hint, e := ps.get("id_token_hint")
	if e != nil {
		return ar, client, e
	}
	if hint != "" {
		h, err := p.ParseIDTokenHint(r.Context(), hint)
		if errors.Is(err, errBadHint) {
			return ar, client, errorf(ErrorInvalidRequest, "id_token_hint is not an ID token issued by this server")
		} else if err != nil {
			return ar, client, serverError(err)
		}
		if !slices.Contains(h.Audience, client.ID) {
			return ar, client, errorf(ErrorInvalidRequest, "id_token_hint was not issued to this application")
		}
		ar.IDTokenHintSubject = h.Subject
	}
	if claimedSub != "" {
		// The sub asked for is the user the login must be for, as
		// id_token_hint's (OIDC Core §3.1.2.2): another user signed in
		// means the login page, or login_required with prompt=none.
		if ar.IDTokenHintSubject != "" && ar.IDTokenHintSubject != claimedSub {
			return ar, client, errorf(ErrorInvalidRequest, "the claims parameter asks for another sub than id_token_hint's")
		}
		ar.IDTokenHintSubject = claimedSub
	}
	return ar, client, nil
}

// normalizeResponseType sorts the space-separated values, so "id_token code"
// and "code id_token" are one response type.
func normalizeResponseType(rt string) string {
	parts := strings.Fields(rt)
	slices.Sort(parts)
	// "code" first, then "id_token", then "token", as the specs spell them.
	order := map[string]int{"code": 0, "id_token": 1, "token": 2}
	slices.SortStableFunc(parts, func(a, b string) int {
		oa, oka := order[a]
		ob, okb := order[b]
		if !oka {
			oa = 3
		}
		if !okb {
			ob = 3
		}
		return oa - ob
	})
	return strings.Join(parts, " ")
}

// checkResponseType decides whether the server and the client allow the
// response type (RFC 6749 §3.1.1, OAuth 2.0 Multiple Response Type
// Encoding Practices §3, OIDC Core §3). Every type but code returns tokens
// from the authorization endpoint and needs Config.EnableImplicitGrant and
// the implicit grant for the client; the OpenID Connect implicit and
// hybrid types must also be listed in the client's ResponseTypes, and the
// types with a code need the authorization_code grant (OpenID Connect
// Dynamic Client Registration §2).
func (p *Provider) checkResponseType(c *Client, rt string) *Error {
	switch rt {
	case "":
		return errorf(ErrorInvalidRequest, "response_type is required")
	case "code":
		if !c.AllowsGrant(GrantAuthorizationCode) || (len(c.ResponseTypes) > 0 && !slices.Contains(c.ResponseTypes, rt)) {
			return errorf(ErrorUnauthorizedClient, "this application may not use response_type code")
		}
		return nil
	case "token":
		if !p.cfg.EnableImplicitGrant {
			return errorf(ErrorUnsupportedResponseType, "the implicit grant is disabled on this server")
		}
		if !c.AllowsGrant(GrantImplicit) || (len(c.ResponseTypes) > 0 && !slices.Contains(c.ResponseTypes, rt)) {
			return errorf(ErrorUnauthorizedClient, "this application may not use response_type token")
		}
		return nil
	case "id_token", "id_token token", "code id_token", "code token", "code id_token token":
		if !p.cfg.EnableImplicitGrant {
			return errorf(ErrorUnsupportedResponseType, "the implicit and hybrid flows are disabled on this server")
		}
		if !c.AllowsGrant(GrantImplicit) || !slices.Contains(c.ResponseTypes, rt) ||
			(strings.HasPrefix(rt, "code ") && !c.AllowsGrant(GrantAuthorizationCode)) {
			return errorf(ErrorUnauthorizedClient, "this application may not use response_type %s", rt)
		}
		return nil
	}
	return errorf(ErrorUnsupportedResponseType, "response_type%s is not supported", quoted(rt))
}

// checkOpenID applies the rules of an OpenID Connect request, one whose
// scope has openid (OIDC Core §3.1.2.1): the implicit and hybrid types are
// OpenID Connect only, and need a nonce (§3.2.2.1, §3.3.2.11).
func checkOpenID(ar *AuthRequest) *Error {
	oidc := slices.Contains(ar.Scopes, ScopeOpenID)
	if ar.ResponseType != "code" && ar.ResponseType != "token" {
		if !oidc {
			return errorf(ErrorInvalidRequest, "response_type %s needs the openid scope", ar.ResponseType)
		}
		if ar.Nonce == "" {
			return errorf(ErrorInvalidRequest, "nonce is required with response_type %s (OIDC Core sections 3.2.2.1 and 3.3.2.11)", ar.ResponseType)
		}
	}
	return nil
}

// authorizationResponse makes the parameters of a successful authorization
// response (RFC 6749 §4.1.2, §4.2.2, OIDC Core §3.2.2.5, §3.3.2.5): state,
// then code, access_token and id_token as the response type asks, then
// scope. Everything issued here belongs to one grant, so a replayed code
// revokes the access token issued alongside it.
func (p *Provider) authorizationResponse(r *http.Request, ar *AuthRequest, c *Client, u *User, s *Session) ([]Param, *Error) {
	ctx := r.Context()
	now := p.now()
	rt := strings.Fields(ar.ResponseType)
	var ps []Param
	if ar.State != "" {
		ps = append(ps, Param{"state", ar.State})
	}
	grantID := NewGrantID()
	var code, accessToken string
	if slices.Contains(rt, "code") {
		code = NewCredential()
		ac := &AuthCode{Hash: HashToken(code), GrantID: grantID, ClientID: c.ID, Subject: u.ID, RedirectURI: codeRedirectURI(ar),
			Scopes: ar.Scopes, CodeChallenge: ar.CodeChallenge, CodeChallengeMethod: ar.CodeChallengeMethod, Nonce: ar.Nonce,
			Claims: ar.Claims, AuthTime: s.AuthTime, IssuedAt: now, ExpiresAt: now.Add(p.cfg.CodeTTL)}
		if err := p.store.CreateAuthCode(ctx, ac); err != nil {
			return nil, serverError(err)
		}
		ps = append(ps, Param{"code", code})
	}
	if slices.Contains(rt, "token") {
		resp, toks := p.newTokens(c, grantID, u.ID, ar.Scopes, s.AuthTime, false)
		for _, t := range toks {
			t.Claims = ar.Claims
		}
		if err := p.store.CreateTokens(ctx, toks...); err != nil {
			return nil, serverError(err)
		}
		accessToken = resp.AccessToken
		ps = append(ps, Param{"access_token", resp.AccessToken}, Param{"token_type", resp.TokenType},
			Param{"expires_in", itoa(resp.ExpiresIn)})
	}
	if slices.Contains(rt, "id_token") {
		idt, err := p.idToken(ctx, &idTokenInput{client: c, user: u, authTime: s.AuthTime, nonce: ar.Nonce,
			accessToken: accessToken, code: code, scopes: ar.Scopes, scopeClaims: ar.ResponseType == "id_token", claims: ar.Claims})
		if err != nil {
			return nil, serverError(err)
		}
		ps = append(ps, Param{"id_token", idt})
	}
	return append(ps, Param{"scope", JoinScope(ar.Scopes)}), nil
}

// parsePKCE reads code_challenge and code_challenge_method (RFC 7636 §4.3).
func (p *Provider) parsePKCE(ps params, c *Client, ar *AuthRequest) *Error {
	challenge, e := ps.get("code_challenge")
	if e != nil {
		return e
	}
	method, e := ps.get("code_challenge_method")
	if e != nil {
		return e
	}
	if !strings.Contains(ar.ResponseType, "code") {
		return nil
	}
	if challenge == "" {
		if method != "" {
			return errorf(ErrorInvalidRequest, "code_challenge_method without code_challenge")
		}
		if c.Public || c.RequirePKCE {
			return errorf(ErrorInvalidRequest, "this application must use PKCE: code_challenge is required (RFC 7636, OAuth 2.1)")
		}
		return nil
	}
	switch method {
	case PKCES256:
	case "", PKCEPlain: // RFC 7636 §4.3: the default method is plain
		if !p.cfg.AllowPlainPKCE {
			return errorf(ErrorInvalidRequest, "code_challenge_method must be S256")
		}
		method = PKCEPlain
	default:
		return errorf(ErrorInvalidRequest, "code_challenge_method%s is not supported; use S256", quoted(method))
	}
	if !ValidPKCEValue(challenge) {
		return errorf(ErrorInvalidRequest, "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 section 4.2)")
	}
	ar.CodeChallenge, ar.CodeChallengeMethod = challenge, method
	return nil
}

// The longest values of the authorization request's free-form parameters.
// A pending request is stored until it is answered or expires, before
// anyone has signed in: without bounds every unauthenticated request could
// store the whole body limit. The bounds are far above what clients send
// (a state or nonce is usually under 100 bytes).
const (
	maxStateLen     = 4096
	maxClaimsLen    = 8192
	maxOIDCParamLen = 1024
)

// maxParamLen is the longest value of an OpenID Connect parameter.
func maxParamLen(name string) int {
	switch name {
	case "nonce":
		return maxStateLen
	case "claims":
		return maxClaimsLen
	}
	return maxOIDCParamLen
}

// parseOIDCParams reads the OpenID Connect authentication request
// parameters (OIDC Core §3.1.2.1).
func parseOIDCParams(ps params, ar *AuthRequest) *Error {
	var err *Error
	get := func(name string) string {
		v, e := ps.get(name)
		if e == nil && len(v) > maxParamLen(name) {
			e = errorf(ErrorInvalidRequest, "%s is longer than %d bytes", name, maxParamLen(name))
		}
		if e != nil && err == nil {
			err = e
		}
		return v
	}
	ar.Nonce = get("nonce")
	ar.LoginHint = get("login_hint")
	ar.Display = get("display")
	ar.UILocales = strings.Fields(get("ui_locales"))
	ar.ACRValues = strings.Fields(get("acr_values"))
	ar.Prompt = strings.Fields(get("prompt"))
	// claims_locales is accepted and read only for repeats: the claims of
	// every language are returned, tagged (OIDC Core §5.2).
	get("claims_locales")
	claims := get("claims")
	maxAge := get("max_age")
	if err != nil {
		return err
	}
	for _, pr := range ar.Prompt {
		switch pr {
		case "none", "login", "consent", "select_account":
		default:
			return errorf(ErrorInvalidRequest, "prompt value%s is not supported; use none, login, consent or select_account", quoted(pr))
		}
	}
	if slices.Contains(ar.Prompt, "none") && len(ar.Prompt) > 1 {
		return errorf(ErrorInvalidRequest, "prompt=none cannot be combined with other values")
	}
	if maxAge != "" {
		n, perr := strconv.ParseInt(maxAge, 10, 64)
		if perr != nil || n < 0 {
			return errorf(ErrorInvalidRequest, "max_age must be a non-negative integer")
		}
		ar.MaxAge = &n
	}
	if claims != "" {
		if _, err := ParseClaimsRequest(claims); err != nil {
			return errorf(ErrorInvalidRequest, "the claims parameter is not a valid claims request (OIDC Core section 5.5)")
		}
		ar.Claims = claims
	}
	return nil
}

// AuthorizeError answers an authorization request that failed. Without a
// request whose redirect URI was validated it shows the error page; else it
// sends the error to the client's redirect URI with state and iss
// (RFC 6749 §4.1.2.1, RFC 9207).
func (p *Provider) AuthorizeError(w http.ResponseWriter, r *http.Request, ar *AuthRequest, err error) {
	e := asError(err)
	if ar == nil || ar.RedirectURI == "" {
		p.errorPage(w, r, e)
		return
	}
	p.logErr(r, e)
	ps := []Param{{"error", e.Code}}
	if e.Description != "" && e.Code != ErrorAccessDenied {
		ps = append(ps, Param{"error_description", wireDescription(e.Description)})
	}
	if ar.State != "" {
		ps = append(ps, Param{"state", ar.State})
	}
	p.send(w, r, ar, ps)
}

// send delivers authorization response parameters to the client in the
// request's response mode, adding iss (RFC 9207). The caller puts state
// where it belongs.
func (p *Provider) send(w http.ResponseWriter, r *http.Request, ar *AuthRequest, ps []Param) {
	ps = append(ps, Param{"iss", p.cfg.Issuer})
	mode := ar.ResponseMode
	if mode == "" {
		mode = ResponseModeQuery
		if fragmentResponseTypes[ar.ResponseType] {
			mode = ResponseModeFragment
		}
	}
	if mode == ResponseModeFormPost {
		p.cfg.Pages.FormPost(w, r, &FormPostPage{Page: p.page(r, http.StatusOK, ar), Action: ar.RedirectURI, Params: ps})
		return
	}
	var enc strings.Builder
	for i, prm := range ps {
		if i > 0 {
			enc.WriteByte('&')
		}
		enc.WriteString(url.QueryEscape(prm.Name))
		enc.WriteByte('=')
		enc.WriteString(url.QueryEscape(prm.Value))
	}
	loc := ar.RedirectURI
	if mode == ResponseModeFragment {
		loc += "#" + enc.String()
	} else if strings.Contains(loc, "?") {
		loc += "&" + enc.String()
	} else {
		loc += "?" + enc.String()
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusSeeOther)
}

// asksOpenID reports whether an authorization request is an OpenID
// Connect request: its scope has openid, or it has no scope and the
// client's default scope (RFC 6749 §3.3), which it then gets, has. A
// repeated scope counts as one that may.
func asksOpenID(ps params, c *Client) bool {
	scope, e := ps.get("scope")
	if e != nil {
		return true
	}
	scopes, _ := ParseScope(scope)
	if len(scopes) == 0 {
		scopes = c.Scopes
	}
	return slices.Contains(scopes, ScopeOpenID)
}

// codeRedirectURI is the redirect_uri the token request must repeat for a
// code of the request (RFC 6749 §4.1.3): none when the request left it out.
func codeRedirectURI(ar *AuthRequest) string {
	if ar.RedirectURIOmitted {
		return ""
	}
	return ar.RedirectURI
}

// withoutOfflineAccess leaves offline_access out of a scope: for grants
// that issue no refresh token, whose granted scope would otherwise claim
// offline access (OIDC Core §11, RFC 6749 §5.1).
func withoutOfflineAccess(scopes []string) []string {
	return slices.DeleteFunc(scopes, func(s string) bool { return s == "offline_access" })
}
