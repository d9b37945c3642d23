package oauthd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Device cookies keep the per-account login limit from locking a person
// out of their own account (OWASP, "Slow Down Online Guessing Attacks with
// Device Cookies"). Anyone who knows a username can make its account's
// failures reach the limit; a browser that signed in to the account
// before holds a device cookie for it, and its attempts at that account
// are counted on their own key, apart from the account's: the account's
// lockout does not refuse them, and their failures do not count against
// the account. Guesses from browsers without one stay under the account's
// limit, and a stolen device cookie gives its thief the limit's few
// guesses, once per window, and only for that account.
//
// The cookie is a JWS signed with the Provider's EdDSA key (every node
// verifies it, nothing is stored), of type deviceTokenType so that it is
// never taken for an ID token (it has no aud either), naming the issuer,
// the account's subject and when it expires. It is sent to the login path
// only. A device cookie whose key is no longer published, expired, or for
// another account counts for nothing: the attempt is counted against the
// account as any other.

const (
	deviceCookieName = "oauthd_device"
	// deviceTTL is how long a device cookie lasts, from the last sign-in
	// on the browser (its key's retirement may end it sooner).
	deviceTTL = 90 * 24 * time.Hour
	// deviceTokenType is the device cookie's JWS "typ".
	deviceTokenType = "oauthd-device+jwt"
	// maxDeviceCookie bounds the cookie's size before it is parsed.
	maxDeviceCookie = 2048
)

type deviceClaims struct {
	Iss string `json:"iss"`
	Sub string `json:"sub"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// setDeviceCookie gives the browser a device cookie for the account it
// signed in to. Without a signing key (a store that failed to load it)
// the sign-in goes on without one: the cookie is a convenience.
func (p *Provider) setDeviceCookie(w http.ResponseWriter, r *http.Request, u *User) {
	v, err := p.deviceToken(r.Context(), u.ID)
	if err != nil {
		p.log.Warn("device cookie not set", "request_id", RequestID(r.Context()), "error", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.deviceCookie, Value: v, Path: LoginPath, HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(deviceTTL / time.Second)})
}

// deviceToken signs a device token for the subject.
func (p *Provider) deviceToken(ctx context.Context, sub string) (string, error) {
	key, err := p.keys.signingKey(ctx, AlgEdDSA)
	if err != nil {
		return "", err
	}
	now := p.now()
	payload, err := json.Marshal(deviceClaims{Iss: p.cfg.Issuer, Sub: sub, Iat: now.Unix(), Exp: now.Add(deviceTTL).Unix()})
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: &key.jwk},
		(&jose.SignerOptions{}).WithType(deviceTokenType))
	if err != nil {
		return "", fmt.Errorf("oauthd: device token signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oauthd: signing a device token: %w", err)
	}
	return jws.CompactSerialize()
}

// deviceSubject returns the subject of the request's device cookie, or ""
// when it has none that this server signed and that is still valid.
func (p *Provider) deviceSubject(r *http.Request) string {
	c, err := r.Cookie(p.deviceCookie)
	if err != nil || c.Value == "" || len(c.Value) > maxDeviceCookie {
		return ""
	}
	jws, err := jose.ParseSignedCompact(c.Value, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return ""
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != deviceTokenType || h.KeyID == "" {
		return ""
	}
	key, err := p.keys.verificationKey(r.Context(), h.KeyID)
	if err != nil || key == nil || key.Algorithm != h.Algorithm {
		return ""
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return ""
	}
	var dc deviceClaims
	if json.Unmarshal(payload, &dc) != nil || dc.Iss != p.cfg.Issuer || dc.Sub == "" || !p.now().Before(time.Unix(dc.Exp, 0)) {
		return ""
	}
	return dc.Sub
}

// deviceKey is the login limit's key for attempts at an account from a
// browser holding a valid device cookie for it: one count per cookie.
func (p *Provider) deviceKey(r *http.Request) limitedKey {
	c, _ := r.Cookie(p.deviceCookie)
	return limitedKey{LimitLoginAccount, limitKey("device", HashToken(c.Value)), p.cfg.LoginLimit, Succeeded}
}
