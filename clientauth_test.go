package oauthd_test

import (
	"net/http"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
)

// The clients cache (Config.ClientCacheTTL) never makes a new secret fail:
// after a secret changes, the new one works at once, even while the client
// with the old secret is still cached.
func TestClientCacheNewSecret(t *testing.T) {
	e := newEnv(t)
	cc := form("grant_type", "client_credentials")
	if r := e.token(basic("service", "service-secret"), cc); r.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", r.status, r.body)
	}
	c, err := e.store.Client(t.Context(), "service")
	if err != nil {
		t.Fatal(err)
	}
	c.SecretHash = hash(t, "new-secret")
	if err := e.store.UpdateClient(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if r := e.token(basic("service", "new-secret"), cc); r.status != http.StatusOK {
		t.Errorf("the new secret: %d %s; want 200", r.status, r.body)
	}
	if r := e.token(basic("service", "service-secret"), cc); r.status != http.StatusUnauthorized {
		t.Errorf("the old secret once the new one was used: %d %s; want 401", r.status, r.body)
	}
}

// With the cache off, a deleted client fails at once.
func TestClientCacheOffDeletedClient(t *testing.T) {
	e := newEnv(t, func(c *oauthd.Config) { c.ClientCacheTTL = -1 })
	cc := form("grant_type", "client_credentials")
	if r := e.token(basic("service", "service-secret"), cc); r.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", r.status, r.body)
	}
	if err := e.store.DeleteClient(t.Context(), "service"); err != nil {
		t.Fatal(err)
	}
	if r := e.token(basic("service", "service-secret"), cc); r.status != http.StatusUnauthorized {
		t.Errorf("deleted client: %d %s; want 401", r.status, r.body)
	}
}

// A wrong secret for a client in the cache runs the KDF once, as for any
// other client: the client is read again (its secret may have changed),
// but its unchanged hash is not checked twice.
func TestClientCacheWrongSecretOneKDF(t *testing.T) {
	e := newEnv(t)
	cc := form("grant_type", "client_credentials")
	if r := e.token(basic("service", "service-secret"), cc); r.status != http.StatusOK {
		t.Fatalf("client_credentials: %d %s", r.status, r.body)
	}
	before := secret.KDFRuns()
	if r := e.token(basic("service", "wrong"), cc); r.status != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d %s; want 401", r.status, r.body)
	}
	if n := secret.KDFRuns() - before; n != 1 {
		t.Errorf("the KDF ran %d times for a wrong secret; want 1", n)
	}
}
