package oauthd

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// idTokenInput is what an ID token is made of.
type idTokenInput struct {
	client   *Client
	user     *User
	authTime time.Time
	nonce    string
	// accessToken and code, when set, give at_hash and c_hash (OIDC Core
	// §3.1.3.6, §3.3.2.11).
	accessToken, code string
	// scopes are the granted scopes; their claims go in the ID token only
	// when scopeClaims is set (response_type=id_token, OIDC Core §5.4, or
	// a client with ClaimsInIDToken at the token endpoint).
	scopes      []string
	scopeClaims bool
	// claims is the (filtered) claims request parameter.
	claims string
}

// idTokenAlg is the algorithm the client's ID tokens are signed with.
func idTokenAlg(c *Client) (string, error) {
	switch c.IDTokenSignedResponseAlg {
	case "":
		return AlgRS256, nil
	case AlgRS256, AlgES256, AlgEdDSA:
		return c.IDTokenSignedResponseAlg, nil
	}
	return "", fmt.Errorf("oauthd: client %s has id_token_signed_response_alg %q, which is not supported", c.ID, c.IDTokenSignedResponseAlg)
}

// ValidateIDTokenAlg checks a client's id_token_signed_response_alg: empty
// (RS256), RS256, ES256 or EdDSA. "none" is never accepted.
func ValidateIDTokenAlg(alg string) error {
	_, err := idTokenAlg(&Client{IDTokenSignedResponseAlg: alg})
	return err
}

// idToken issues a signed ID token (OIDC Core §2, §3.1.3.6): iss, sub, aud,
// exp, iat, auth_time, nonce when the request had one, amr, at_hash and
// c_hash when an access token or code travels with it, and the claims the
// scopes or the claims request parameter ask for.
func (p *Provider) idToken(ctx context.Context, in *idTokenInput) (string, error) {
	alg, err := idTokenAlg(in.client)
	if err != nil {
		return "", err
	}
	if err := p.checkSubject(ctx, in.user.ID); err != nil {
		return "", err
	}
	key, err := p.keys.signingKey(ctx, alg)
	if err != nil {
		return "", err
	}
	now := p.now()
	claims := map[string]any{}
	var names []string
	if in.scopeClaims {
		names = claimsForScopes(in.scopes)
	}
	if cr := claimsRequest(in.claims); cr != nil {
		names = append(names, requestedClaims(cr.IDToken)...)
	}
	for k, v := range userClaims(in.user, names) {
		claims[k] = v
	}
	claims["iss"] = p.cfg.Issuer
	claims["sub"] = in.user.ID
	claims["aud"] = in.client.ID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(p.cfg.IDTokenTTL).Unix()
	if !in.authTime.IsZero() {
		claims["auth_time"] = in.authTime.Unix()
		if p.cfg.LoginURL == "" {
			// Every login of the built-in page is with a password (RFC
			// 8176 §2); how an embedding program's login went, oauthd
			// does not know.
			claims["amr"] = []string{"pwd"}
		}
	}
	if in.nonce != "" {
		claims["nonce"] = in.nonce
	}
	if in.accessToken != "" {
		claims["at_hash"] = halfHash(alg, in.accessToken)
	}
	if in.code != "" {
		claims["c_hash"] = halfHash(alg, in.code)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oauthd: encoding ID token claims: %w", err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(alg), Key: &key.jwk},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("oauthd: ID token signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oauthd: signing an ID token: %w", err)
	}
	return jws.CompactSerialize()
}

// checkSubject refuses to issue an ID token whose sub equals a client_id,
// so a token about a user can never be mistaken for one about a client.
func (p *Provider) checkSubject(ctx context.Context, sub string) error {
	if sub == "" {
		return errors.New("oauthd: ID token without a subject")
	}
	_, err := p.store.Client(ctx, sub)
	if err == nil {
		return fmt.Errorf("oauthd: the user ID %q is also a client_id; refusing to issue an ID token with it as sub", sub)
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	return nil
}

// halfHash is the base64url encoding of the left-most half of the hash of
// the ASCII octets of v, with the hash of the JWS algorithm (OIDC Core
// §3.1.3.6 at_hash, §3.3.2.11 c_hash): SHA-256 for RS256 and ES256,
// SHA-512 for EdDSA with Ed25519.
func halfHash(alg, v string) string {
	var h hash.Hash
	if alg == AlgEdDSA {
		h = sha512.New()
	} else {
		h = sha256.New()
	}
	h.Write([]byte(v))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}

// IDTokenHint is what the Provider learns from an id_token_hint: an ID
// token it issued earlier, possibly expired (OIDC Core §3.1.2.1,
// OpenID Connect RP-Initiated Logout §2).
type IDTokenHint struct {
	Subject   string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// maxIDTokenHint bounds the size of an id_token_hint.
const maxIDTokenHint = 16 << 10

var errBadHint = errors.New("oauthd: id_token_hint is not an ID token issued by this server")

// ParseIDTokenHint verifies an ID token this server issued: its signature
// against the published keys (RS256, ES256 or EdDSA, never none), its iss
// and its sub. An expired token is accepted, as a hint identifies a person
// and grants nothing. The caller checks the audience.
func (p *Provider) ParseIDTokenHint(ctx context.Context, hint string) (*IDTokenHint, error) {
	if hint == "" || len(hint) > maxIDTokenHint {
		return nil, errBadHint
	}
	algs := []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}
	jws, err := jose.ParseSignedCompact(hint, algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errBadHint
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); h.KeyID == "" || typ == deviceTokenType {
		// A device cookie (device.go) is signed with the same keys; it has
		// no aud either, but is refused by its type first.
		return nil, errBadHint
	}
	key, err := p.keys.verificationKey(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	if key == nil || key.Algorithm != h.Algorithm {
		return nil, errBadHint
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return nil, errBadHint
	}
	var c struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Iat int64           `json:"iat"`
		Exp int64           `json:"exp"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss != p.cfg.Issuer || c.Sub == "" {
		return nil, errBadHint
	}
	var aud []string
	var one string
	if json.Unmarshal(c.Aud, &one) == nil && one != "" {
		aud = []string{one}
	} else if json.Unmarshal(c.Aud, &aud) != nil || len(aud) == 0 || slices.Contains(aud, "") {
		return nil, errBadHint
	}
	return &IDTokenHint{Subject: c.Sub, Audience: aud, IssuedAt: time.Unix(c.Iat, 0), ExpiresAt: time.Unix(c.Exp, 0)}, nil
}
