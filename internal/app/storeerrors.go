package app

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oauthd/oauthd"
)

// countingStore counts the failures of a store's calls in
// oauthd_store_errors_total{op}. The answers the protocol expects (not
// found, already exists, already used) and calls whose request went away
// are not failures. Methods the Storage interface gains later pass through
// the embedded store uncounted.
//
// Its write methods also tell writes, which /readyz reads, whether the
// database refused them or took them.
type countingStore struct {
	oauthd.Storage
	errs   *prometheus.CounterVec
	writes *writeHealth
}

// countingRedeemer is a countingStore of a store that is an
// oauthd.CodeRedeemer, and is one too: the Provider uses RedeemAuthCode
// only when the Storage it is given has it.
type countingRedeemer struct {
	*countingStore
	r oauthd.CodeRedeemer
}

// countingRotator is a countingStore of a store that is an
// oauthd.RefreshRotator (and not a CodeRedeemer), and is one too.
type countingRotator struct {
	*countingStore
	rr oauthd.RefreshRotator
}

// countingRedeemerRotator is a countingStore of a store that is both an
// oauthd.CodeRedeemer and an oauthd.RefreshRotator, and is both too.
type countingRedeemerRotator struct {
	*countingRedeemer
	rr oauthd.RefreshRotator
}

// instrument wraps a store so its failures are counted. The wrapper is an
// oauthd.CodeRedeemer when s is, and an oauthd.RefreshRotator when s is.
func (m *Metrics) instrument(s oauthd.Storage) oauthd.Storage {
	c := &countingStore{Storage: s, errs: m.storeErrors, writes: m.storeWrites}
	r, redeems := s.(oauthd.CodeRedeemer)
	rr, rotates := s.(oauthd.RefreshRotator)
	switch {
	case redeems && rotates:
		return &countingRedeemerRotator{countingRedeemer: &countingRedeemer{countingStore: c, r: r}, rr: rr}
	case redeems:
		return &countingRedeemer{countingStore: c, r: r}
	case rotates:
		return &countingRotator{countingStore: c, rr: rr}
	}
	return c
}

func (s *countingRotator) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	return s.countingStore.rotateWith(ctx, s.rr, hash, now, rotate)
}

func (s *countingRedeemerRotator) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	return s.countingStore.rotateWith(ctx, s.rr, hash, now, rotate)
}

// rotateWith calls rr's RotateRefreshTokenFunc and counts the store's
// failures; an error of rotate (the request was refused) is not one.
func (s *countingStore) rotateWith(ctx context.Context, rr oauthd.RefreshRotator, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	var rotateErr error
	t, err := rr.RotateRefreshTokenFunc(ctx, hash, now, func(t *oauthd.Token) ([]byte, []*oauthd.Token, error) {
		successor, next, err := rotate(t)
		rotateErr = err
		return successor, next, err
	})
	if rotateErr != nil && errors.Is(err, rotateErr) {
		return t, err
	}
	return t, s.countWrite("RotateRefreshToken", err)
}

// RedeemAuthCode counts the store's failures; an error of issue (the
// request was refused) is not one.
func (s *countingRedeemer) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	var issueErr error
	c, err := s.r.RedeemAuthCode(ctx, hash, now, func(c *oauthd.AuthCode) ([]*oauthd.Token, error) {
		toks, err := issue(c)
		issueErr = err
		return toks, err
	})
	if issueErr != nil && errors.Is(err, issueErr) {
		return c, err
	}
	return c, s.countWrite("RedeemAuthCode", err)
}

func (s *countingStore) count(op string, err error) error {
	if err != nil && !errors.Is(err, oauthd.ErrNotFound) && !errors.Is(err, oauthd.ErrAlreadyExists) &&
		!errors.Is(err, oauthd.ErrAlreadyUsed) && !errors.Is(err, context.Canceled) {
		s.errs.WithLabelValues(op).Inc()
	}
	return err
}

// countWrite is count for a write, which it also reports to s.writes. A
// write that succeeded has as good as always changed the database, so
// the database takes writes (one that finds nothing to change answers
// not found or already exists); DeleteExpired is the exception.
func (s *countingStore) countWrite(op string, err error) error {
	if s.writes != nil {
		if err == nil {
			s.writes.succeeded()
		} else {
			s.writes.refused(err)
		}
	}
	return s.count(op, err)
}

func (s *countingStore) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	v, err := s.Storage.Client(ctx, id)
	return v, s.count("Client", err)
}
func (s *countingStore) CreateClient(ctx context.Context, c *oauthd.Client) error {
	return s.countWrite("CreateClient", s.Storage.CreateClient(ctx, c))
}
func (s *countingStore) UpdateClient(ctx context.Context, c *oauthd.Client) error {
	return s.countWrite("UpdateClient", s.Storage.UpdateClient(ctx, c))
}
func (s *countingStore) DeleteClient(ctx context.Context, id string) error {
	return s.countWrite("DeleteClient", s.Storage.DeleteClient(ctx, id))
}
func (s *countingStore) Clients(ctx context.Context) ([]*oauthd.Client, error) {
	v, err := s.Storage.Clients(ctx)
	return v, s.count("Clients", err)
}
func (s *countingStore) User(ctx context.Context, id string) (*oauthd.User, error) {
	v, err := s.Storage.User(ctx, id)
	return v, s.count("User", err)
}
func (s *countingStore) UserByUsername(ctx context.Context, username string) (*oauthd.User, error) {
	v, err := s.Storage.UserByUsername(ctx, username)
	return v, s.count("UserByUsername", err)
}
func (s *countingStore) CreateUser(ctx context.Context, u *oauthd.User) error {
	return s.countWrite("CreateUser", s.Storage.CreateUser(ctx, u))
}
func (s *countingStore) UpdateUser(ctx context.Context, u *oauthd.User) error {
	return s.countWrite("UpdateUser", s.Storage.UpdateUser(ctx, u))
}
func (s *countingStore) DeleteUser(ctx context.Context, id string) error {
	return s.countWrite("DeleteUser", s.Storage.DeleteUser(ctx, id))
}
func (s *countingStore) Users(ctx context.Context) ([]*oauthd.User, error) {
	v, err := s.Storage.Users(ctx)
	return v, s.count("Users", err)
}
func (s *countingStore) CreateAuthRequest(ctx context.Context, r *oauthd.AuthRequest) error {
	return s.countWrite("CreateAuthRequest", s.Storage.CreateAuthRequest(ctx, r))
}
func (s *countingStore) AuthRequest(ctx context.Context, id string) (*oauthd.AuthRequest, error) {
	v, err := s.Storage.AuthRequest(ctx, id)
	return v, s.count("AuthRequest", err)
}
func (s *countingStore) DeleteAuthRequest(ctx context.Context, id string) error {
	return s.countWrite("DeleteAuthRequest", s.Storage.DeleteAuthRequest(ctx, id))
}
func (s *countingStore) CreateAuthCode(ctx context.Context, c *oauthd.AuthCode) error {
	return s.countWrite("CreateAuthCode", s.Storage.CreateAuthCode(ctx, c))
}
func (s *countingStore) ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*oauthd.AuthCode, error) {
	c, err := s.Storage.ConsumeAuthCode(ctx, hash, now)
	return c, s.countWrite("ConsumeAuthCode", err)
}
func (s *countingStore) CreateTokens(ctx context.Context, tokens ...*oauthd.Token) error {
	return s.countWrite("CreateTokens", s.Storage.CreateTokens(ctx, tokens...))
}
func (s *countingStore) Token(ctx context.Context, hash string) (*oauthd.Token, error) {
	v, err := s.Storage.Token(ctx, hash)
	return v, s.count("Token", err)
}
func (s *countingStore) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, successor []byte, next ...*oauthd.Token) (*oauthd.Token, error) {
	t, err := s.Storage.RotateRefreshToken(ctx, oldHash, now, successor, next...)
	return t, s.countWrite("RotateRefreshToken", err)
}
func (s *countingStore) RevokeToken(ctx context.Context, hash string) error {
	return s.countWrite("RevokeToken", s.Storage.RevokeToken(ctx, hash))
}
func (s *countingStore) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	return s.countWrite("RevokeGrant", s.Storage.RevokeGrant(ctx, grantID, until))
}
func (s *countingStore) RevokeTokensOf(ctx context.Context, userID, clientID string) error {
	return s.countWrite("RevokeTokensOf", s.Storage.RevokeTokensOf(ctx, userID, clientID))
}
func (s *countingStore) CreateSession(ctx context.Context, se *oauthd.Session) error {
	return s.countWrite("CreateSession", s.Storage.CreateSession(ctx, se))
}
func (s *countingStore) Session(ctx context.Context, hash string) (*oauthd.Session, error) {
	v, err := s.Storage.Session(ctx, hash)
	return v, s.count("Session", err)
}
func (s *countingStore) DeleteSession(ctx context.Context, hash string) error {
	return s.countWrite("DeleteSession", s.Storage.DeleteSession(ctx, hash))
}
func (s *countingStore) SaveConsent(ctx context.Context, c *oauthd.Consent) error {
	return s.countWrite("SaveConsent", s.Storage.SaveConsent(ctx, c))
}
func (s *countingStore) Consent(ctx context.Context, userID, clientID string) (*oauthd.Consent, error) {
	c, err := s.Storage.Consent(ctx, userID, clientID)
	return c, s.count("Consent", err)
}
func (s *countingStore) Consents(ctx context.Context, userID string) ([]*oauthd.Consent, error) {
	v, err := s.Storage.Consents(ctx, userID)
	return v, s.count("Consents", err)
}
func (s *countingStore) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.countWrite("DeleteConsent", s.Storage.DeleteConsent(ctx, userID, clientID))
}

// CreateSigningKeyIfNoneActive counts the failures of the wrapped store's
// oauthd.SigningKeyBootstrapper. The wrapper always has the method, so the
// nodes' first keys are agreed on through it: every store the binary
// opens (sqlitestore, pgstore) is a SigningKeyBootstrapper; for one that
// is not, it stores the key with CreateSigningKey, as a KeyManager of
// such a store would.
func (s *countingStore) CreateSigningKeyIfNoneActive(ctx context.Context, k *oauthd.SigningKey, now time.Time) error {
	b, ok := s.Storage.(oauthd.SigningKeyBootstrapper)
	if !ok {
		return s.CreateSigningKey(ctx, k)
	}
	return s.countWrite("CreateSigningKeyIfNoneActive", b.CreateSigningKeyIfNoneActive(ctx, k, now))
}

func (s *countingStore) CreateSigningKey(ctx context.Context, k *oauthd.SigningKey) error {
	return s.countWrite("CreateSigningKey", s.Storage.CreateSigningKey(ctx, k))
}
func (s *countingStore) SigningKeys(ctx context.Context) ([]*oauthd.SigningKey, error) {
	v, err := s.Storage.SigningKeys(ctx)
	return v, s.count("SigningKeys", err)
}
func (s *countingStore) DeleteSigningKey(ctx context.Context, id string) error {
	return s.countWrite("DeleteSigningKey", s.Storage.DeleteSigningKey(ctx, id))
}

// DeleteExpired reports a run that deleted something as a write that
// succeeded; on SQLite, one that deleted nothing commits nothing, and so
// says nothing of whether the database takes writes.
func (s *countingStore) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := s.Storage.DeleteExpired(ctx, now, limit)
	if err == nil && n == 0 {
		return n, s.count("DeleteExpired", err)
	}
	return n, s.countWrite("DeleteExpired", err)
}
func (s *countingStore) Ping(ctx context.Context) error {
	return s.count("Ping", s.Storage.Ping(ctx))
}
