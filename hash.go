package oauthd

import "github.com/oauthd/oauthd/internal/secret"

// HashSecret returns the hash to store as a Client's SecretHash or a
// User's PasswordHash for the plain secret or password: argon2id in the
// PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), with a
// new random salt each call. The Provider verifies these (and bcrypt
// hashes, $2a$/$2b$/$2y$, for users moved from elsewhere) and never needs
// the plain value again.
func HashSecret(plain string) (string, error) { return secret.Hash(plain) }
