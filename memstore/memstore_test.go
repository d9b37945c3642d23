package memstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oauthd/oauthd"
	"github.com/oauthd/oauthd/memstore"
	"github.com/oauthd/oauthd/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) oauthd.Storage {
		s := memstore.New()
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestClosed(t *testing.T) {
	s := memstore.New()
	ctx := context.Background()
	if err := s.CreateClient(ctx, &oauthd.Client{ID: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close twice: %v", err)
	}
	_, err := s.Client(ctx, "c")
	if err == nil || errors.Is(err, oauthd.ErrNotFound) || !errors.Is(err, oauthd.ErrUnavailable) {
		t.Errorf("Client after Close: err = %v; want a closed-store error, ErrUnavailable as the other stores'", err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Errorf("Ping after Close = nil; want an error")
	}
}
