package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

func Example() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	err := store.CreateClient(ctx, &oauthd.Client{
		ID:           "test_client",
		RedirectURIs: []string{"https://www.example.com/redirect"},
		GrantTypes:   []string{oauthd.GrantAuthorizationCode},
		Scopes:       []string{"email"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := store.Client(ctx, "test_client")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.ID, c.RedirectURIs, c.Scopes)
	// Output: test_client [https://www.example.com/redirect] [email]
}

// An authorization code can be redeemed once; a replay gets the code back
// with ErrAlreadyUsed, so the engine can revoke what the first redemption
// issued.
func ExampleStore_ConsumeAuthCode() {
	ctx := context.Background()
	store := memstore.New()
	defer store.Close()

	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	err := store.CreateAuthCode(ctx, &oauthd.AuthCode{
		Hash:      "hash-of-the-code",
		GrantID:   "grant-1",
		ClientID:  "test_client",
		IssuedAt:  now,
		ExpiresAt: now.Add(time.Minute),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = store.ConsumeAuthCode(ctx, "hash-of-the-code", now.Add(time.Second))
	fmt.Println("first:", err)
	code, err := store.ConsumeAuthCode(ctx, "hash-of-the-code", now.Add(2*time.Second))
	fmt.Println("replay:", errors.Is(err, oauthd.ErrAlreadyUsed), code.GrantID)
	// Output:
	// first: <nil>
	// replay: true grant-1
}
