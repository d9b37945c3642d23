package oauthd

import "context"

// Hooks for the external tests of KeyManager (keys_bootstrap_test.go).
// They read what the manager has cached, as the ID token and JWKS code
// do, so a test sees the key a node would really sign with and publish.

// SigningKeyIDForTest is the ID of the key that signs alg's ID tokens now:
// the kid an ID token signed now would name.
func (m *KeyManager) SigningKeyIDForTest(ctx context.Context, alg string) (string, error) {
	k, err := m.signingKey(ctx, alg)
	if err != nil {
		return "", err
	}
	return k.meta.ID, nil
}

// PublishedKeyIDsForTest are the IDs of the keys in the JWKS now.
func (m *KeyManager) PublishedKeyIDsForTest(ctx context.Context) ([]string, error) {
	keys, err := m.publicKeys(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.KeyID
	}
	return ids, nil
}
