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
// the account's subject, a digest of its password hash, the cookie's ID
// and when it expires. It is sent to the login path only. A device cookie
// whose key is no longer published, expired, for another account or from
// before a password change counts for nothing: the attempt is counted
// against the account as any other.

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
	// Jti names the cookie in the login limit's key: not the cookie's
	// bytes, which base64url's spare bits let a holder vary without
	// changing the signature (16 spellings of one Ed25519 signature, each
	// a new count).
	Jti string `json:"jti"`
	// Pwd ties the cookie to the account's password as it was: a password
	// change (one that leaked, say) ends the cookies of every browser that
	// signed in with the old one.
	Pwd string `json:"pwd"`
	Iat int64  `json:"iat"`
	Exp int64  `json:"exp"`
}

// setDeviceCookie gives the browser a device cookie for the account it
// signed in to. Without a signing key (a store that failed to load it)
// the sign-in goes on without one: the cookie is a convenience.
func (p *Provider) setDeviceCookie(w http.ResponseWriter, r *http.Request, u *User) {
	v, err := p.deviceToken(r.Context(), u)
	if err != nil {
		p.log.Warn("device cookie not set", "request_id", RequestID(r.Context()), "error", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: p.deviceCookie, Value: v, Path: LoginPath, HttpOnly: true, Secure: p.secure,
		SameSite: http.SameSiteLaxMode, MaxAge: int(deviceTTL / time.Second)})
}

// deviceToken signs a device token for the user.
func (p *Provider) deviceToken(ctx context.Context, u *User) (string, error) {
	key, err := p.keys.signingKey(ctx, AlgEdDSA)
	if err != nil {
		return "", err
	}
	now := p.now()
	payload, err := json.Marshal(deviceClaims{Iss: p.cfg.Issuer, Sub: u.ID, Jti: RandomToken(), Pwd: passwordTag(u), Iat: now.Unix(), Exp: now.Add(deviceTTL).Unix()})
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

// device returns the limiter key of the request's device cookie when it
// is one this server signed for the user, with the user's password as it
// is now, and still valid.
func (p *Provider) device(r *http.Request, u *User) (limitedKey, bool) {
	c, err := r.Cookie(p.deviceCookie)
	if err != nil || c.Value == "" || len(c.Value) > maxDeviceCookie {
		return limitedKey{}, false
	}
	jws, err := jose.ParseSignedCompact(c.Value, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		return limitedKey{}, false
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != deviceTokenType || h.KeyID == "" {
		return limitedKey{}, false
	}
	key, err := p.keys.verificationKey(r.Context(), h.KeyID)
	if err != nil || key == nil || key.Algorithm != h.Algorithm {
		return limitedKey{}, false
	}
	payload, err := jws.Verify(key)
	if err != nil {
		return limitedKey{}, false
	}
	var dc deviceClaims
	if json.Unmarshal(payload, &dc) != nil || dc.Iss != p.cfg.Issuer || dc.Sub != u.ID || dc.Jti == "" ||
		dc.Pwd != passwordTag(u) || !p.now().Before(time.Unix(dc.Exp, 0)) {
		return limitedKey{}, false
	}
	return p.deviceKey(dc.Jti), true
}

// passwordTag is a short digest of the user's password hash.
func passwordTag(u *User) string {
	return HashToken(u.PasswordHash)[:16]
}

// deviceKey is the login limit's key for attempts at an account from a
// browser holding a valid device cookie for it, of the cookie's ID: one
// count per cookie.
func (p *Provider) deviceKey(id string) limitedKey {
	return limitedKey{LimitLoginAccount, limitKey("device", id), p.cfg.LoginLimit, Succeeded}
}
