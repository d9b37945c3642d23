package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/internal/secret"
)

// The client and user Seed creates.
const (
	ClientID    = "bench_client"
	RedirectURI = "https://client.example/callback"
	Username    = "bench_user"
	Scope       = "read write"
)

// SeedOptions say what Seed makes.
type SeedOptions struct {
	// Codes is the number of authorization codes to pre-mint.
	Codes int
	// RefreshTokens and AccessTokens are the numbers of refresh and
	// access tokens to pre-mint.
	RefreshTokens, AccessTokens int
	// Users is the number of users the pre-minted codes and tokens
	// belong to, in turn; default 1. A server's tokens belong to many
	// users: with one, a store's index of tokens by user gets every new
	// entry on the same page, and hides what such an index costs.
	Users int
	// TTL is the lifetime of what is pre-minted; default 15 minutes.
	TTL time.Duration
	// Params hash the client secret and the password; default
	// secret.DefaultParams, the ones `oauthd client create` uses.
	Params *secret.Params
	// Progress, when set, is told how the seeding goes ("52000/120000
	// codes") twice a second.
	Progress func(string)
}

// Summary says what o makes, e.g. "1000 users, 60001 codes".
func (o SeedOptions) Summary() string {
	parts := []string{fmt.Sprintf("%d users", max(o.Users, 1))}
	for _, x := range []struct {
		n    int
		what string
	}{{o.Codes, "codes"}, {o.RefreshTokens, "refresh tokens"}, {o.AccessTokens, "access tokens"}} {
		if x.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", x.n, x.what))
		}
	}
	return strings.Join(parts, ", ")
}

// report calls o.Progress with status() twice a second until the
// returned function is called.
func (o SeedOptions) report(status func() string) (stop func()) {
	if o.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				o.Progress(status())
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// Seed creates, in a store the server is about to serve (or serves), the
// scenarios' client (its secret hashed with argon2id, as `oauthd client
// create` does: the verified-secret cache is what makes it cheap), a user,
// and the codes and tokens asked for, stored as the server stores them:
// hashes only. It returns the scenarios' Params with the plaintexts.
func Seed(ctx context.Context, store oauthd.Storage, o SeedOptions) (*Params, error) {
	if o.TTL <= 0 {
		o.TTL = 15 * time.Minute
	}
	kdf := secret.DefaultParams
	if o.Params != nil {
		kdf = *o.Params
	}
	p := &Params{ClientID: ClientID, ClientSecret: randomHex(16), RedirectURI: RedirectURI, Scope: Scope,
		Username: Username, Password: randomHex(12)}
	p.defaults()
	now := time.Now()
	sh, err := secret.HashWith(p.ClientSecret, kdf)
	if err != nil {
		return nil, err
	}
	c := &oauthd.Client{ID: ClientID, SecretHash: sh, Name: "oauthd bench", RedirectURIs: []string{RedirectURI},
		GrantTypes: []string{oauthd.GrantAuthorizationCode, oauthd.GrantRefreshToken, oauthd.GrantClientCredentials},
		Scopes:     []string{"read", "write"}, TokenEndpointAuthMethod: oauthd.AuthMethodBasic, CreatedAt: now}
	// A database used before (PostgreSQL persists) has them already: the
	// client and user get the new secret and password.
	if err := store.CreateClient(ctx, c); errors.Is(err, oauthd.ErrAlreadyExists) {
		err = store.UpdateClient(ctx, c)
	} else if err != nil {
		return nil, fmt.Errorf("creating the bench client: %w", err)
	}
	ph, err := secret.HashWith(p.Password, kdf)
	if err != nil {
		return nil, err
	}
	u := &oauthd.User{ID: "bench-" + randomHex(8), Username: Username, PasswordHash: ph, CreatedAt: now, UpdatedAt: now}
	if old, err := store.UserByUsername(ctx, Username); err == nil {
		u.ID, u.CreatedAt = old.ID, old.CreatedAt
		if err := store.UpdateUser(ctx, u); err != nil {
			return nil, fmt.Errorf("updating the bench user: %w", err)
		}
	} else if err := store.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("creating the bench user: %w", err)
	}
	subjects := []string{u.ID}
	if o.Users > 1 && o.Codes+o.RefreshTokens+o.AccessTokens > 0 {
		var n atomic.Int64
		stop := o.report(func() string { return fmt.Sprintf("%d/%d users", n.Load(), o.Users) })
		subjects, err = moreUsers(ctx, store, u, o.Users, &n)
		stop()
		if err != nil {
			return nil, err
		}
	}
	var turn atomic.Int64
	subject := func() string { return subjects[int(turn.Add(1)-1)%len(subjects)] }
	scopes := []string{"read", "write"}
	challenge := Challenge(p.Verifier)
	mint := func(what string, n int, create func(plain string) error) (*Pool, error) {
		if n <= 0 {
			return nil, nil
		}
		var made atomic.Int64
		stop := o.report(func() string { return fmt.Sprintf("%d/%d %s", made.Load(), n, what) })
		defer stop()
		// Many writers at once, so that the store's group commit puts
		// many in each transaction. The pool hands the items out in the
		// order they were stored, as a server's clients redeem their
		// codes: each soon after it was issued, so a run's redemptions
		// update rows next to each other at the end of the table, and
		// their tokens' grant IDs (time-ordered) go to the end of the
		// grant index. Handed out in another order (before 2026-11-27:
		// each worker's items in turn, while the workers drifted apart by
		// hundreds of items), the codes of a group commit lay thousands
		// of rows apart and each redemption updated a page of its own:
		// 30,000 redemptions wrote 10 KB each to the WAL and the
		// database file, against 4 KB in the order of issue.
		items := make([]string, 0, n)
		var (
			wg   sync.WaitGroup
			mu   sync.Mutex
			next atomic.Int64
		)
		errs := make(chan error, 1)
		const workers = 64
		for range workers {
			wg.Go(func() {
				for next.Add(1) <= int64(n) {
					item := oauthd.NewCredential()
					if err := create(item); err != nil {
						select {
						case errs <- err:
						default:
						}
						return
					}
					mu.Lock()
					items = append(items, item)
					mu.Unlock()
					made.Add(1)
				}
			})
		}
		wg.Wait()
		select {
		case err := <-errs:
			return nil, err
		default:
		}
		return NewPool(items), nil
	}
	// Grant IDs come from oauthd.NewGrantID, as the server makes them:
	// time-ordered, so that the tokens a redemption or a rotation writes
	// land at the end of the grant index, not at a random page of it.
	if p.Codes, err = mint("codes", o.Codes, func(code string) error {
		return store.CreateAuthCode(ctx, &oauthd.AuthCode{Hash: oauthd.HashToken(code), GrantID: oauthd.NewGrantID(),
			ClientID: ClientID, Subject: subject(), RedirectURI: RedirectURI, Scopes: scopes,
			CodeChallenge: challenge, CodeChallengeMethod: "S256",
			AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(o.TTL)})
	}); err != nil {
		return nil, fmt.Errorf("pre-minting codes: %w", err)
	}
	token := func(kind string) func(string) error {
		return func(t string) error {
			return store.CreateTokens(ctx, &oauthd.Token{Hash: oauthd.HashToken(t), Kind: kind, GrantID: oauthd.NewGrantID(),
				ClientID: ClientID, Subject: subject(), Scopes: scopes, AuthTime: now, IssuedAt: now, ExpiresAt: now.Add(o.TTL)})
		}
	}
	if p.RefreshTokens, err = mint("refresh tokens", o.RefreshTokens, token(oauthd.RefreshToken)); err != nil {
		return nil, fmt.Errorf("pre-minting refresh tokens: %w", err)
	}
	if p.AccessTokens, err = mint("access tokens", o.AccessTokens, token(oauthd.AccessToken)); err != nil {
		return nil, fmt.Errorf("pre-minting access tokens: %w", err)
	}
	return p, nil
}

// moreUsers makes sure the users bench_user_2 ... bench_user_n exist
// (new ones with u's password hash; they never sign in), and returns the
// IDs of u and them; done counts the users made or found. 16 at a time:
// on PostgreSQL each new user is a commit.
func moreUsers(ctx context.Context, store oauthd.Storage, u *oauthd.User, n int, done *atomic.Int64) ([]string, error) {
	ids := make([]string, n)
	ids[0] = u.ID
	done.Add(1)
	var next atomic.Int64
	next.Store(1)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				id, err := benchUser(ctx, store, u, fmt.Sprintf("%s_%d", Username, i+1))
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
				ids[i] = id
				done.Add(1)
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ids, nil
}

// benchUser returns the ID of the user name, created with u's password
// hash if it does not exist.
func benchUser(ctx context.Context, store oauthd.Storage, u *oauthd.User, name string) (string, error) {
	if old, err := store.UserByUsername(ctx, name); err == nil {
		return old.ID, nil
	} else if !errors.Is(err, oauthd.ErrNotFound) {
		return "", fmt.Errorf("looking up bench user %s: %w", name, err)
	}
	o := &oauthd.User{ID: "bench-" + randomHex(8), Username: name, PasswordHash: u.PasswordHash, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
	if err := store.CreateUser(ctx, o); err != nil {
		return "", fmt.Errorf("creating bench user %s: %w", name, err)
	}
	return o.ID, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
