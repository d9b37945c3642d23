package oauthd_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
)

// embedsStore wraps a store the way storage.go warns against: it embeds
// the concrete store, whose optional methods come with it.
type embedsStore struct {
	*memstore.Store
	created atomic.Int64
}

func (s *embedsStore) CreateTokens(ctx context.Context, toks ...*oauthd.Token) error {
	s.created.Add(int64(len(toks)))
	return s.Store.CreateTokens(ctx, toks...)
}

// embedsInterface wraps a store the way storage.go advises: it embeds
// oauthd.Storage, which promotes Storage's methods only.
type embedsInterface struct {
	oauthd.Storage
	created atomic.Int64
}

func (s *embedsInterface) CreateTokens(ctx context.Context, toks ...*oauthd.Token) error {
	s.created.Add(int64(len(toks)))
	return s.Storage.CreateTokens(ctx, toks...)
}

// What Storage's doc says of wrapping a store: a type embedding a store
// that has RedeemAuthCode is a CodeRedeemer too, and the Provider redeems
// codes through it, past an override of CreateTokens; embedding the
// interface hides the optional methods, and the override sees every token.
func TestWrappedStoreOverride(t *testing.T) {
	for _, tc := range []struct {
		name        string
		wrap        func(oauthd.Storage) (oauthd.Storage, *atomic.Int64)
		wantCounted bool
	}{
		{"embeds_concrete_store", func(s oauthd.Storage) (oauthd.Storage, *atomic.Int64) {
			w := &embedsStore{Store: s.(*memstore.Store)}
			return w, &w.created
		}, false},
		{"embeds_interface", func(s oauthd.Storage) (oauthd.Storage, *atomic.Int64) {
			w := &embedsInterface{Storage: s}
			return w, &w.created
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var created *atomic.Int64
			var wrapped oauthd.Storage
			e := newEnvWrapped(t, func(s oauthd.Storage) oauthd.Storage {
				wrapped, created = tc.wrap(s)
				return wrapped
			})
			_, isRedeemer := wrapped.(oauthd.CodeRedeemer)
			if isRedeemer == tc.wantCounted {
				t.Errorf("wrapper is a CodeRedeemer: %v; want %v", isRedeemer, !tc.wantCounted)
			}
			r := e.token(basic(clientID, clientSecret), form("grant_type", "authorization_code", "code", e.code(), "redirect_uri", redirectURI))
			if r.status != http.StatusOK {
				t.Fatalf("token: %d %s", r.status, r.body)
			}
			if got := created.Load() > 0; got != tc.wantCounted {
				t.Errorf("the CreateTokens override saw the code's tokens: %v; want %v", got, tc.wantCounted)
			}
		})
	}
}
