package oauthd_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// Rate limits and trusted proxies: here three wrong client secrets lock
// the client out, and the right secret is then refused with 429 until the
// lockout ends.
func ExampleRateLimit() {
	ctx := context.Background()
	store := memstore.New()
	h, _ := oauthd.HashSecret("s3cret")
	store.CreateClient(ctx, &oauthd.Client{ID: "service", SecretHash: h,
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}})
	p, _ := oauthd.New(oauthd.Config{
		Issuer:         "https://auth.example.com",
		Pages:          fakePages{},
		ClientLimit:    oauthd.RateLimit{MaxFailures: 3, Window: time.Minute, Lockout: 30 * time.Second, MaxLockout: 10 * time.Minute},
		LoginLimit:     oauthd.RateLimit{MaxFailures: -1}, // off
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	}, store)

	token := func(secret string) string {
		req := httptest.NewRequest("POST", oauthd.TokenPath, strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("service", secret)
		w := httptest.NewRecorder()
		p.ServeHTTP(w, req)
		if ra := w.Header().Get("Retry-After"); ra != "" {
			return fmt.Sprintf("%d, retry after %s s", w.Code, ra)
		}
		return fmt.Sprint(w.Code)
	}
	for range 3 {
		fmt.Println(token("guess"))
	}
	fmt.Println(token("s3cret"))
	// Output:
	// 401
	// 401
	// 401
	// 429, retry after 30 s
}

// An Observer counts what only the engine sees; a panic in it is logged and
// does not change the answer.
type tokenCounter struct {
	oauthd.NopObserver
	mu     sync.Mutex
	issued map[string]int
}

func (c *tokenCounter) TokenIssued(grant string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.issued[grant]++
}

func ExampleObserver() {
	ctx := context.Background()
	store := memstore.New()
	h, _ := oauthd.HashSecret("s3cret")
	store.CreateClient(ctx, &oauthd.Client{ID: "service", SecretHash: h,
		GrantTypes: []string{oauthd.GrantClientCredentials}, Scopes: []string{"read"}})
	obs := &tokenCounter{issued: map[string]int{}}
	p, _ := oauthd.New(oauthd.Config{Issuer: "https://auth.example.com", Pages: fakePages{}, Observer: obs}, store)
	for range 2 {
		req := httptest.NewRequest("POST", oauthd.TokenPath, strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("service", "s3cret")
		p.ServeHTTP(httptest.NewRecorder(), req)
	}
	fmt.Println(obs.issued)
	// Output: map[client_credentials:2]
}
