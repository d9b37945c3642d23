package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
)

// The demo data of the walkthrough oauthd started from (the aioauth
// examples README). Not for production: the secrets are public.
const (
	DemoClientID     = "test_client"
	DemoClientSecret = "password"
	DemoRedirectURI  = "https://www.example.com/redirect"
	DemoUsername     = "admin"
	DemoPassword     = "admin"

	// The OpenID Connect demo client of the README's "OpenID Connect in
	// 5 minutes".
	DemoOIDCClientID     = "oidc_client"
	DemoOIDCClientSecret = "oidc_secret"
	DemoOIDCRedirectURI  = "http://localhost:9000/callback"
)

// DemoClaims are the demo user's OpenID Connect claims.
func DemoClaims() map[string]any {
	return map[string]any{"name": "Admin User", "email": "admin@example.com", "email_verified": true}
}

// DemoAuthorizeURL is the walkthrough's authorization URL on an issuer.
func DemoAuthorizeURL(issuer string) string {
	return issuer + oauthd.AuthorizePath + "?client_id=test_client&redirect_uri=https%3A%2F%2Fwww.example.com%2Fredirect&response_type=code&state=somestate&scope=email"
}

// SeedDemo creates the demo clients (the walkthrough's test_client and the
// OpenID Connect oidc_client) and the demo user with its claims, if they
// are absent. Existing records are left as they are, except that a demo
// user without claims gets the demo claims.
func SeedDemo(ctx context.Context, s oauthd.Storage) error {
	now := time.Now()
	if _, err := s.Client(ctx, DemoClientID); errors.Is(err, oauthd.ErrNotFound) {
		h, err := secret.Hash(DemoClientSecret)
		if err != nil {
			return err
		}
		c := &oauthd.Client{
			ID: DemoClientID, SecretHash: h, Name: DemoClientID,
			RedirectURIs:            []string{DemoRedirectURI},
			GrantTypes:              []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken},
			Scopes:                  []string{"email"},
			TokenEndpointAuthMethod: oauthd.AuthMethodBasic,
			AccessTokenTTL:          300 * time.Second,
			RefreshTokenTTL:         900 * time.Second,
			CreatedAt:               now,
		}
		if err := s.CreateClient(ctx, c); err != nil && !errors.Is(err, oauthd.ErrAlreadyExists) {
			return err
		}
	} else if err != nil {
		return err
	}
	if _, err := s.Client(ctx, DemoOIDCClientID); errors.Is(err, oauthd.ErrNotFound) {
		h, err := secret.Hash(DemoOIDCClientSecret)
		if err != nil {
			return err
		}
		c := &oauthd.Client{
			ID: DemoOIDCClientID, SecretHash: h, Name: DemoOIDCClientID,
			RedirectURIs:            []string{DemoOIDCRedirectURI},
			GrantTypes:              []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken},
			Scopes:                  []string{"openid", "profile", "email", "offline_access"},
			TokenEndpointAuthMethod: oauthd.AuthMethodBasic,
			RequirePKCE:             true,
			CreatedAt:               now,
		}
		if err := s.CreateClient(ctx, c); err != nil && !errors.Is(err, oauthd.ErrAlreadyExists) {
			return err
		}
	} else if err != nil {
		return err
	}
	u, err := s.UserByUsername(ctx, DemoUsername)
	if errors.Is(err, oauthd.ErrNotFound) {
		h, err := secret.Hash(DemoPassword)
		if err != nil {
			return err
		}
		u := &oauthd.User{ID: NewUserID(), Username: DemoUsername, PasswordHash: h, Claims: DemoClaims(), CreatedAt: now, UpdatedAt: now}
		if err := s.CreateUser(ctx, u); err != nil && !errors.Is(err, oauthd.ErrAlreadyExists) {
			return err
		}
	} else if err != nil {
		return err
	} else if len(u.Claims) == 0 {
		// A demo user made before the OpenID Connect demo gets its claims;
		// claims someone set are left alone.
		u.Claims, u.UpdatedAt = DemoClaims(), now
		if err := s.UpdateUser(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// NewUserID returns a new random subject identifier (a UUID v4 string):
// stable, never reassigned, and unlike any client_id oauthd generates.
func NewUserID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// DemoImpostors returns the records of the demo's names (its clients and
// user) that hold other credentials than the walkthrough's: made before,
// by someone else, and left alone by SeedDemo. The walkthrough's secrets
// and password fail for them. Each check runs the KDF once.
func DemoImpostors(ctx context.Context, s oauthd.Storage) []string {
	var out []string
	for _, c := range []struct{ id, secret string }{{DemoClientID, DemoClientSecret}, {DemoOIDCClientID, DemoOIDCClientSecret}} {
		cl, err := s.Client(ctx, c.id)
		if err != nil {
			continue
		}
		if cl.Public || !secret.Verify(cl.SecretHash, c.secret) {
			out = append(out, "client "+c.id)
		}
	}
	if u, err := s.UserByUsername(ctx, DemoUsername); err == nil && !secret.Verify(u.PasswordHash, DemoPassword) {
		out = append(out, "user "+DemoUsername)
	}
	return out
}
