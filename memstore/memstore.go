// Package memstore is an in-memory oauthd.Storage for tests and examples.
//
// A Store keeps everything in maps behind one mutex and hands out deep
// copies, so callers can neither see nor cause changes behind the store's
// back. It keeps times to the millisecond and user claims as JSON, like the
// SQL stores, so that code tested against it behaves the same on them.
// Everything is lost when the process exits.
//
// A Store has the optional oauthd.CodeRedeemer, oauthd.RefreshRotator and
// oauthd.SigningKeyBootstrapper methods, and the Provider uses them in
// place of ConsumeAuthCode and CreateTokens, Token and RotateRefreshToken,
// and CreateSigningKey. So a type that embeds *Store and overrides one of
// those (to count, audit or check what is stored) is bypassed in silence:
// the promoted RedeemAuthCode, RotateRefreshTokenFunc and
// CreateSigningKeyIfNoneActive write inside the Store. Embed the
// interface instead, struct{ oauthd.Storage } holding a *Store, which
// promotes only Storage's methods, or override the optional methods too
// (see oauthd.Storage).
package memstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/oauthd/oauthd"
)

// errClosed is the error of every call after Close: ErrUnavailable, as
// sqlitestore's and pgstore's, so the Provider answers 503 with
// Retry-After (a server shutting down) rather than 500.
var errClosed = fmt.Errorf("memstore: store is closed: %w", oauthd.ErrUnavailable)

// Store is an in-memory oauthd.Storage. It is safe for concurrent use. The
// zero value is not usable; call New.
type Store struct {
	mu           sync.Mutex
	closed       bool
	clients      map[string]*oauthd.Client
	users        map[string]*user  // by ID
	usernames    map[string]string // username to ID
	authRequests map[string]*oauthd.AuthRequest
	codes        map[string]*oauthd.AuthCode
	tokens       map[string]*oauthd.Token
	revoked      map[string]time.Time // grant ID to until
	sessions     map[string]*oauthd.Session
	consents     map[consentKey]*oauthd.Consent
	keys         map[string]*oauthd.SigningKey
}

// user is a stored user: the claims are kept as JSON, as a SQL store keeps
// them, which also makes every read a deep copy.
type user struct {
	u      oauthd.User // Claims is nil
	claims []byte
}

type consentKey struct{ userID, clientID string }

var (
	_ oauthd.Storage                = (*Store)(nil)
	_ oauthd.CodeRedeemer           = (*Store)(nil)
	_ oauthd.RefreshRotator         = (*Store)(nil)
	_ oauthd.SigningKeyBootstrapper = (*Store)(nil)
)

// New returns an empty store.
func New() *Store {
	return &Store{
		clients:      make(map[string]*oauthd.Client),
		users:        make(map[string]*user),
		usernames:    make(map[string]string),
		authRequests: make(map[string]*oauthd.AuthRequest),
		codes:        make(map[string]*oauthd.AuthCode),
		tokens:       make(map[string]*oauthd.Token),
		revoked:      make(map[string]time.Time),
		sessions:     make(map[string]*oauthd.Session),
		consents:     make(map[consentKey]*oauthd.Consent),
		keys:         make(map[string]*oauthd.SigningKey),
	}
}

// lock locks the store for one call, after checking that the call's context
// is live and the store open. The caller unlocks s.mu when err is nil.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memstore: %w", err)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	return nil
}

func notFound(what, key string) error {
	return fmt.Errorf("memstore: %s %q: %w", what, key, oauthd.ErrNotFound)
}

func exists(what, key string) error {
	return fmt.Errorf("memstore: %s %q: %w", what, key, oauthd.ErrAlreadyExists)
}

// secretErr is the error about a record keyed by a secret's hash, which
// errors do not show.
func secretErr(what string, err error) error {
	return fmt.Errorf("memstore: %s: %w", what, err)
}

// Client returns the client with the ID, or ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return nil, notFound("client", id)
	}
	return cloneClient(c), nil
}

// CreateClient stores a new client, or returns ErrAlreadyExists.
func (s *Store) CreateClient(ctx context.Context, c *oauthd.Client) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return exists("client", c.ID)
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// UpdateClient replaces a client, or returns ErrNotFound.
func (s *Store) UpdateClient(ctx context.Context, c *oauthd.Client) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; !ok {
		return notFound("client", c.ID)
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// DeleteClient removes a client, or returns ErrNotFound.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return notFound("client", id)
	}
	delete(s.clients, id)
	return nil
}

// Clients lists every client ordered by ID.
func (s *Store) Clients(ctx context.Context) ([]*oauthd.Client, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	list := make([]*oauthd.Client, 0, len(s.clients))
	for _, id := range slices.Sorted(maps.Keys(s.clients)) {
		list = append(list, cloneClient(s.clients[id]))
	}
	return list, nil
}

// User returns the user with the ID, or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*oauthd.User, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return nil, notFound("user", id)
	}
	return u.user()
}

// UserByUsername returns the user with the username, or ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (*oauthd.User, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	id, ok := s.usernames[username]
	if !ok {
		return nil, notFound("username", username)
	}
	return s.users[id].user()
}

// CreateUser stores a new user; ErrAlreadyExists if the ID or the username
// is taken.
func (s *Store) CreateUser(ctx context.Context, u *oauthd.User) error {
	rec, err := newUser(u)
	if err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.users[u.ID]; ok {
		return exists("user", u.ID)
	}
	if _, ok := s.usernames[u.Username]; ok {
		return exists("username", u.Username)
	}
	s.users[u.ID] = rec
	s.usernames[u.Username] = u.ID
	return nil
}

// UpdateUser replaces a user, or returns ErrNotFound. It returns
// ErrAlreadyExists if another user has the new username.
func (s *Store) UpdateUser(ctx context.Context, u *oauthd.User) error {
	rec, err := newUser(u)
	if err != nil {
		return err
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	old, ok := s.users[u.ID]
	if !ok {
		return notFound("user", u.ID)
	}
	if id, ok := s.usernames[u.Username]; ok && id != u.ID {
		return exists("username", u.Username)
	}
	delete(s.usernames, old.u.Username)
	s.users[u.ID] = rec
	s.usernames[u.Username] = u.ID
	return nil
}

// DeleteUser removes a user, or returns ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return notFound("user", id)
	}
	delete(s.usernames, u.u.Username)
	delete(s.users, id)
	return nil
}

// Users lists every user ordered by username.
func (s *Store) Users(ctx context.Context) ([]*oauthd.User, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	list := make([]*oauthd.User, 0, len(s.users))
	for _, name := range slices.Sorted(maps.Keys(s.usernames)) {
		u, err := s.users[s.usernames[name]].user()
		if err != nil {
			return nil, err
		}
		list = append(list, u)
	}
	return list, nil
}

// CreateAuthRequest stores an authorization request; ErrAlreadyExists if
// the ID is taken.
func (s *Store) CreateAuthRequest(ctx context.Context, r *oauthd.AuthRequest) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.authRequests[r.ID]; ok {
		return exists("auth request", r.ID)
	}
	s.authRequests[r.ID] = cloneAuthRequest(r)
	return nil
}

// AuthRequest returns the request, or ErrNotFound.
func (s *Store) AuthRequest(ctx context.Context, id string) (*oauthd.AuthRequest, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	r, ok := s.authRequests[id]
	if !ok {
		return nil, notFound("auth request", id)
	}
	return cloneAuthRequest(r), nil
}

// DeleteAuthRequest removes the request; ErrNotFound if it was gone.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.authRequests[id]; !ok {
		return notFound("auth request", id)
	}
	delete(s.authRequests, id)
	return nil
}

// CreateAuthCode stores an authorization code; ErrAlreadyExists if the hash
// is taken.
func (s *Store) CreateAuthCode(ctx context.Context, c *oauthd.AuthCode) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.codes[c.Hash]; ok {
		return secretErr("auth code", oauthd.ErrAlreadyExists)
	}
	s.codes[c.Hash] = cloneCode(c)
	return nil
}

// ConsumeAuthCode marks the code used at now and returns it. A code used
// before is returned with ErrAlreadyUsed; an unknown one is ErrNotFound.
// now must not be the zero time, which would leave the code unused.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*oauthd.AuthCode, error) {
	if now.IsZero() {
		return nil, errors.New("memstore: consume auth code: zero time")
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.unusedCode(hash)
	if err != nil {
		return c, err
	}
	c.UsedAt = ms(now)
	return cloneCode(c), nil
}

// unusedCode returns the stored code with the hash if it is unused; a used
// code comes back as a copy with ErrAlreadyUsed, an unknown one is
// ErrNotFound. The caller holds s.mu.
func (s *Store) unusedCode(hash string) (*oauthd.AuthCode, error) {
	c, ok := s.codes[hash]
	if !ok {
		return nil, secretErr("auth code", oauthd.ErrNotFound)
	}
	if !c.UsedAt.IsZero() {
		return cloneCode(c), fmt.Errorf("memstore: auth code: %w", oauthd.ErrAlreadyUsed)
	}
	return c, nil
}

// RedeemAuthCode consumes the code and stores the tokens issue makes for
// it, under one hold of the store's lock (see oauthd.CodeRedeemer): issue
// runs with the lock held and must not call the store. If issue fails (the
// request was refused), the tokens cannot be stored, or issue panics,
// nothing changes: the code stays unused.
func (s *Store) RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*oauthd.AuthCode) ([]*oauthd.Token, error)) (*oauthd.AuthCode, error) {
	if now.IsZero() {
		return nil, errors.New("memstore: redeem auth code: zero time")
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.unusedCode(hash)
	if err != nil {
		return c, err
	}
	used := cloneCode(c)
	used.UsedAt = ms(now)
	toks, err := issue(cloneCode(used))
	if err != nil {
		return cloneCode(c), err // refused: the code stays unused
	}
	if err := s.createTokens(toks); err != nil {
		return nil, err
	}
	c.UsedAt = used.UsedAt
	return used, nil
}

// CreateTokens stores the tokens, all or none. Tokens of a revoked grant
// are dropped: the grant stays revoked for them.
func (s *Store) CreateTokens(ctx context.Context, tokens ...*oauthd.Token) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	return s.createTokens(tokens)
}

func (s *Store) createTokens(tokens []*oauthd.Token) error {
	seen := make(map[string]bool, len(tokens))
	for _, t := range tokens {
		if _, ok := s.tokens[t.Hash]; ok || seen[t.Hash] {
			return secretErr("token", oauthd.ErrAlreadyExists)
		}
		seen[t.Hash] = true
	}
	for _, t := range tokens {
		if _, ok := s.revoked[t.GrantID]; !ok {
			s.tokens[t.Hash] = cloneToken(t)
		}
	}
	return nil
}

// Token returns the token with the hash, or ErrNotFound.
func (s *Store) Token(ctx context.Context, hash string) (*oauthd.Token, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	t, ok := s.tokens[hash]
	if !ok {
		return nil, secretErr("token", oauthd.ErrNotFound)
	}
	return cloneToken(t), nil
}

// RotateRefreshToken marks the refresh token oldHash rotated at now, records
// successor and stores next, all or nothing. A token rotated before is
// returned with ErrAlreadyUsed; an unknown hash, or one of an access token,
// is ErrNotFound. now must not be the zero time, which would leave the token
// unrotated.
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, successor []byte, next ...*oauthd.Token) (*oauthd.Token, error) {
	return s.RotateRefreshTokenFunc(ctx, oldHash, now, func(*oauthd.Token) ([]byte, []*oauthd.Token, error) {
		return successor, next, nil
	})
}

// RotateRefreshTokenFunc looks up the refresh token and rotates it with
// what rotate makes for it, under one hold of the store's lock (see
// oauthd.RefreshRotator): rotate runs with the lock held and must not call
// the store. If rotate fails or panics, or the tokens cannot be stored,
// nothing changes.
func (s *Store) RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(*oauthd.Token) ([]byte, []*oauthd.Token, error)) (*oauthd.Token, error) {
	if now.IsZero() {
		return nil, errors.New("memstore: rotate refresh token: zero time")
	}
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	t, ok := s.tokens[hash]
	if !ok || t.Kind != oauthd.RefreshToken {
		return nil, secretErr("refresh token", oauthd.ErrNotFound)
	}
	if !t.RotatedAt.IsZero() {
		return cloneToken(t), fmt.Errorf("memstore: refresh token: %w", oauthd.ErrAlreadyUsed)
	}
	successor, next, err := rotate(cloneToken(t))
	if err != nil {
		return cloneToken(t), err
	}
	if err := s.createTokens(next); err != nil {
		return nil, err
	}
	t.RotatedAt = ms(now)
	t.Successor = slices.Clone(successor)
	return cloneToken(t), nil
}

// RevokeToken removes one token; ErrNotFound if it was not there.
func (s *Store) RevokeToken(ctx context.Context, hash string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.tokens[hash]; !ok {
		return secretErr("token", oauthd.ErrNotFound)
	}
	delete(s.tokens, hash)
	return nil
}

// RevokeGrant removes every token of the grant and keeps it revoked until
// until (or the latest until it was given), so that its later tokens are
// dropped. A zero until revokes the grant for good.
func (s *Store) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	if grantID == "" {
		return errors.New("memstore: revoke grant: empty grant ID")
	}
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for h, t := range s.tokens {
		if t.GrantID == grantID {
			delete(s.tokens, h)
		}
	}
	until = ms(until)
	if old, ok := s.revoked[grantID]; ok && (old.IsZero() || (!until.IsZero() && old.After(until))) {
		until = old
	}
	s.revoked[grantID] = until
	return nil
}

// RevokeTokensOf removes every token the user granted the client, and the
// user's unused codes for the client.
func (s *Store) RevokeTokensOf(ctx context.Context, userID, clientID string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for h, t := range s.tokens {
		if t.Subject == userID && t.ClientID == clientID {
			delete(s.tokens, h)
		}
	}
	for h, c := range s.codes {
		if c.Subject == userID && c.ClientID == clientID && c.UsedAt.IsZero() {
			delete(s.codes, h)
		}
	}
	return nil
}

// CreateSession stores a session; ErrAlreadyExists if the hash is taken.
func (s *Store) CreateSession(ctx context.Context, se *oauthd.Session) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.sessions[se.Hash]; ok {
		return secretErr("session", oauthd.ErrAlreadyExists)
	}
	s.sessions[se.Hash] = cloneSession(se)
	return nil
}

// Session returns the session with the hash, or ErrNotFound.
func (s *Store) Session(ctx context.Context, hash string) (*oauthd.Session, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	se, ok := s.sessions[hash]
	if !ok {
		return nil, secretErr("session", oauthd.ErrNotFound)
	}
	return cloneSession(se), nil
}

// DeleteSession removes the session; ErrNotFound if it was gone.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.sessions[hash]; !ok {
		return secretErr("session", oauthd.ErrNotFound)
	}
	delete(s.sessions, hash)
	return nil
}

// SaveConsent creates or replaces the user's consent for the client.
func (s *Store) SaveConsent(ctx context.Context, c *oauthd.Consent) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	s.consents[consentKey{c.UserID, c.ClientID}] = cloneConsent(c)
	return nil
}

// Consent returns the user's consent for the client, or ErrNotFound.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (*oauthd.Consent, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, ok := s.consents[consentKey{userID, clientID}]
	if !ok {
		return nil, notFound("consent for client", clientID)
	}
	return cloneConsent(c), nil
}

// Consents lists the user's consents ordered by client ID.
func (s *Store) Consents(ctx context.Context, userID string) ([]*oauthd.Consent, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var list []*oauthd.Consent
	for k, c := range s.consents {
		if k.userID == userID {
			list = append(list, cloneConsent(c))
		}
	}
	slices.SortFunc(list, func(a, b *oauthd.Consent) int { return cmp.Compare(a.ClientID, b.ClientID) })
	return list, nil
}

// DeleteConsent removes a consent; ErrNotFound if it was not there.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	k := consentKey{userID, clientID}
	if _, ok := s.consents[k]; !ok {
		return notFound("consent for client", clientID)
	}
	delete(s.consents, k)
	return nil
}

// CreateSigningKey stores a new key; ErrAlreadyExists if the ID is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k *oauthd.SigningKey) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return exists("signing key", k.ID)
	}
	s.keys[k.ID] = cloneKey(k)
	return nil
}

// CreateSigningKeyIfNoneActive stores k unless a key of its algorithm has
// not retired at now (see oauthd.SigningKeyBootstrapper), under one hold of the
// store's lock; ErrAlreadyExists if one does or the ID is taken.
func (s *Store) CreateSigningKeyIfNoneActive(ctx context.Context, k *oauthd.SigningKey, now time.Time) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	now = ms(now)
	for _, o := range s.keys {
		if o.Algorithm == k.Algorithm && now.Before(o.RetireAt) {
			return fmt.Errorf("memstore: create signing key %q: the %s key %q has not retired at %s: %w",
				k.ID, k.Algorithm, o.ID, now.Format(time.RFC3339Nano), oauthd.ErrAlreadyExists)
		}
	}
	if _, ok := s.keys[k.ID]; ok {
		return exists("signing key", k.ID)
	}
	s.keys[k.ID] = cloneKey(k)
	return nil
}

// SigningKeys lists every key ordered by NotBefore, then ID.
func (s *Store) SigningKeys(ctx context.Context) ([]*oauthd.SigningKey, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	list := make([]*oauthd.SigningKey, 0, len(s.keys))
	for _, k := range s.keys {
		list = append(list, cloneKey(k))
	}
	slices.SortFunc(list, func(a, b *oauthd.SigningKey) int {
		return cmp.Or(a.NotBefore.Compare(b.NotBefore), cmp.Compare(a.ID, b.ID))
	})
	return list, nil
}

// DeleteSigningKey removes a key; ErrNotFound if it was not there.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, ok := s.keys[id]; !ok {
		return notFound("signing key", id)
	}
	delete(s.keys, id)
	return nil
}

// DeleteExpired removes at most limit records of each kind (auth requests,
// codes, tokens, sessions, grant revocations, signing keys) that expired
// before now, and returns how many it removed. Records with a zero expiry
// never expire; a limit below one removes nothing.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if limit < 1 {
		return 0, nil
	}
	now = ms(now)
	n := deleteExpired(s.authRequests, now, limit, func(r *oauthd.AuthRequest) time.Time { return r.ExpiresAt })
	n += deleteExpired(s.codes, now, limit, func(c *oauthd.AuthCode) time.Time { return c.ExpiresAt })
	n += deleteExpired(s.tokens, now, limit, func(t *oauthd.Token) time.Time { return t.ExpiresAt })
	n += deleteExpired(s.sessions, now, limit, func(se *oauthd.Session) time.Time { return se.ExpiresAt })
	n += deleteExpired(s.revoked, now, limit, func(until time.Time) time.Time { return until })
	n += deleteExpired(s.keys, now, limit, func(k *oauthd.SigningKey) time.Time {
		if k.ExpiresAt.IsZero() {
			return k.ExpiresAt
		}
		return k.ExpiresAt.Add(oauthd.SigningKeyRetention)
	})
	return n, nil
}

// deleteExpired removes at most limit entries of m whose non-zero expiry is
// before now, and returns how many it removed.
func deleteExpired[K comparable, V any](m map[K]V, now time.Time, limit int, expiry func(V) time.Time) int {
	n := 0
	for k, v := range m {
		if n == limit {
			break
		}
		if e := ms(expiry(v)); !e.IsZero() && e.Before(now) {
			delete(m, k)
			n++
		}
	}
	return n
}

// Ping reports whether the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	s.mu.Unlock()
	return nil
}

// Close empties the store; every later call fails.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	clear(s.clients)
	clear(s.users)
	clear(s.usernames)
	clear(s.authRequests)
	clear(s.codes)
	clear(s.tokens)
	clear(s.revoked)
	clear(s.sessions)
	clear(s.consents)
	clear(s.keys)
	return nil
}

// ms truncates t to the millisecond in UTC, as the SQL stores keep it; the
// zero time stays zero.
func ms(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func newUser(u *oauthd.User) (*user, error) {
	rec := &user{u: *u}
	rec.u.Claims = nil
	rec.u.CreatedAt = ms(u.CreatedAt)
	rec.u.UpdatedAt = ms(u.UpdatedAt)
	if len(u.Claims) > 0 {
		b, err := json.Marshal(u.Claims)
		if err != nil {
			return nil, fmt.Errorf("memstore: user %q claims: %w", u.ID, err)
		}
		rec.claims = b
	}
	return rec, nil
}

func (rec *user) user() (*oauthd.User, error) {
	u := rec.u
	if rec.claims != nil {
		if err := json.Unmarshal(rec.claims, &u.Claims); err != nil {
			return nil, fmt.Errorf("memstore: user %q claims: %w", u.ID, err)
		}
	}
	return &u, nil
}

func cloneClient(c *oauthd.Client) *oauthd.Client {
	n := *c
	n.RedirectURIs = slices.Clone(c.RedirectURIs)
	n.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	n.GrantTypes = slices.Clone(c.GrantTypes)
	n.ResponseTypes = slices.Clone(c.ResponseTypes)
	n.Scopes = slices.Clone(c.Scopes)
	n.CreatedAt = ms(c.CreatedAt)
	return &n
}

func cloneAuthRequest(r *oauthd.AuthRequest) *oauthd.AuthRequest {
	n := *r
	n.Scopes = slices.Clone(r.Scopes)
	n.Prompt = slices.Clone(r.Prompt)
	n.UILocales = slices.Clone(r.UILocales)
	n.ACRValues = slices.Clone(r.ACRValues)
	if r.MaxAge != nil {
		maxAge := *r.MaxAge
		n.MaxAge = &maxAge
	}
	n.CreatedAt = ms(r.CreatedAt)
	n.ExpiresAt = ms(r.ExpiresAt)
	return &n
}

func cloneCode(c *oauthd.AuthCode) *oauthd.AuthCode {
	n := *c
	n.Scopes = slices.Clone(c.Scopes)
	n.AuthTime = ms(c.AuthTime)
	n.IssuedAt = ms(c.IssuedAt)
	n.ExpiresAt = ms(c.ExpiresAt)
	n.UsedAt = ms(c.UsedAt)
	return &n
}

func cloneToken(t *oauthd.Token) *oauthd.Token {
	n := *t
	n.Scopes = slices.Clone(t.Scopes)
	n.Successor = slices.Clone(t.Successor)
	n.AuthTime = ms(t.AuthTime)
	n.IssuedAt = ms(t.IssuedAt)
	n.ExpiresAt = ms(t.ExpiresAt)
	n.RotatedAt = ms(t.RotatedAt)
	return &n
}

func cloneSession(s *oauthd.Session) *oauthd.Session {
	n := *s
	n.AuthTime = ms(s.AuthTime)
	n.ExpiresAt = ms(s.ExpiresAt)
	return &n
}

func cloneConsent(c *oauthd.Consent) *oauthd.Consent {
	n := *c
	n.Scopes = slices.Clone(c.Scopes)
	n.CreatedAt = ms(c.CreatedAt)
	n.UpdatedAt = ms(c.UpdatedAt)
	return &n
}

func cloneKey(k *oauthd.SigningKey) *oauthd.SigningKey {
	n := *k
	n.Private = slices.Clone(k.Private)
	n.NotBefore = ms(k.NotBefore)
	n.RetireAt = ms(k.RetireAt)
	n.ExpiresAt = ms(k.ExpiresAt)
	n.CreatedAt = ms(k.CreatedAt)
	return &n
}
