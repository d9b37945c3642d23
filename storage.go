package oauthd

import (
	"context"
	"errors"
	"time"
)

// ClientStore keeps registered clients.
type ClientStore interface {
	// Client returns the client with the ID, or ErrNotFound.
	Client(ctx context.Context, id string) (*Client, error)
	// CreateClient stores a new client, or returns ErrAlreadyExists.
	CreateClient(ctx context.Context, c *Client) error
	// UpdateClient replaces a client, or returns ErrNotFound.
	UpdateClient(ctx context.Context, c *Client) error
	// DeleteClient removes a client, or returns ErrNotFound.
	DeleteClient(ctx context.Context, id string) error
	// Clients lists every client ordered by ID.
	Clients(ctx context.Context) ([]*Client, error)
}

// UserStore keeps resource owners.
type UserStore interface {
	// User returns the user with the ID, or ErrNotFound.
	User(ctx context.Context, id string) (*User, error)
	// UserByUsername returns the user with the username, or ErrNotFound.
	UserByUsername(ctx context.Context, username string) (*User, error)
	// CreateUser stores a new user; ErrAlreadyExists if the ID or the
	// username is taken.
	CreateUser(ctx context.Context, u *User) error
	// UpdateUser replaces a user, or returns ErrNotFound.
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes a user, or returns ErrNotFound.
	DeleteUser(ctx context.Context, id string) error
	// Users lists every user ordered by username.
	Users(ctx context.Context) ([]*User, error)
}

// AuthRequestStore keeps authorization requests while the person logs in
// and decides.
type AuthRequestStore interface {
	// CreateAuthRequest stores a new request, or returns ErrAlreadyExists
	// if its ID is taken.
	CreateAuthRequest(ctx context.Context, r *AuthRequest) error
	// AuthRequest returns the request, or ErrNotFound.
	AuthRequest(ctx context.Context, id string) (*AuthRequest, error)
	// DeleteAuthRequest removes the request; ErrNotFound if it was gone.
	// Exactly one of several concurrent calls succeeds.
	DeleteAuthRequest(ctx context.Context, id string) error
}

// AuthCodeStore keeps authorization codes. TokenStore.RevokeTokensOf
// removes codes too: a store implements both on the same records.
type AuthCodeStore interface {
	// CreateAuthCode stores a new code, or returns ErrAlreadyExists if its
	// hash is taken.
	CreateAuthCode(ctx context.Context, c *AuthCode) error
	// ConsumeAuthCode marks the code used and returns it, atomically: of
	// many concurrent calls exactly one gets a nil error. Later calls get
	// the code together with ErrAlreadyUsed; an unknown hash is ErrNotFound.
	// Expiry is the caller's check.
	ConsumeAuthCode(ctx context.Context, hash string, now time.Time) (*AuthCode, error)
}

// CodeRedeemer is implemented by stores that can redeem an authorization
// code and store the tokens it buys in one write. It is optional: the
// Provider uses it when its Storage has it (it checks once, in New), and
// otherwise calls ConsumeAuthCode and then CreateTokens. A store that wraps
// another should have RedeemAuthCode only when the wrapped store has it.
//
// The Provider then calls neither ConsumeAuthCode nor CreateTokens to
// redeem a code: a type that embeds a store that has RedeemAuthCode
// (*memstore.Store, *sqlitestore.Store, *pgstore.Store) and overrides
// ConsumeAuthCode or CreateTokens (to audit, encrypt, check a tenant) is
// bypassed in silence by the promoted RedeemAuthCode. See Storage on
// wrapping a store.
type CodeRedeemer interface {
	// RedeemAuthCode consumes the code like ConsumeAuthCode, with the same
	// guarantee (of many concurrent calls, exactly one consumes it), and
	// calls issue with the code it consumed. When issue returns tokens and a
	// nil error, the consumed code and the tokens are committed together,
	// as CreateTokens would store the tokens: a taken hash is
	// ErrAlreadyExists, and tokens of a revoked grant are not stored. If
	// they cannot be stored, nothing is: the code stays unused, as
	// RotateRefreshToken leaves its token unrotated.
	//
	// If issue returns an error (the engine refused the request: another
	// client's code, a wrong redirect_uri or PKCE verifier, RFC 6749
	// §4.1.3), nothing is stored and the code stays unused, as
	// RotateRefreshTokenFunc leaves a refused token unrotated: a request
	// that could not have redeemed the code does not take it from the
	// client it was issued to. RedeemAuthCode then returns the code (UsedAt
	// zero) and issue's error as it is (not wrapped). A code used before is
	// returned with ErrAlreadyUsed and an unknown hash is ErrNotFound, as
	// from ConsumeAuthCode; issue is not called then, nor when the call
	// fails before the code is consumed. (Without a CodeRedeemer the
	// Provider consumes the code before it can check the request, so a
	// refused request uses it up.)
	//
	// issue runs inside the store's write: under memstore's lock, on
	// sqlitestore's single writer goroutine (every other write of the
	// process waits for it), inside pgstore's open transaction, which
	// holds the code's row lock. It must be quick, must not block, and must
	// not call the store: check the request against the code and build the
	// tokens, no I/O, no signing. Each call starts over: a store that
	// retries a transaction that failed before it committed (pgstore does
	// on a serialization failure) calls issue again, and only what the last
	// call returned counts.
	RedeemAuthCode(ctx context.Context, hash string, now time.Time, issue func(*AuthCode) ([]*Token, error)) (*AuthCode, error)
}

// RefreshRotator is implemented by stores that can look up a refresh token
// and rotate it in one write. It is optional: the Provider uses it when its
// Storage has it (it checks once, in New), and otherwise reads the token
// with Token and then calls RotateRefreshToken. A store that wraps another
// should have RotateRefreshTokenFunc only when the wrapped store has it.
//
// The Provider then calls neither Token nor RotateRefreshToken (nor
// CreateTokens) to refresh: overrides of those in a type that embeds a
// store with RotateRefreshTokenFunc are bypassed in silence, as with
// CodeRedeemer. See Storage on wrapping a store.
type RefreshRotator interface {
	// RotateRefreshTokenFunc looks up the refresh token with the hash and,
	// if it is unrotated, calls rotate with it. When rotate returns a nil
	// error, the token is marked rotated at now with the successor rotate
	// returned (may be nil), and the tokens it returned are stored, as
	// RotateRefreshToken does, in one transaction: a taken hash is
	// ErrAlreadyExists, and tokens of a revoked grant are not stored. It
	// returns the old token as rotated. If the tokens cannot be stored,
	// nothing is: the token stays unrotated.
	//
	// Of many concurrent calls for one hash, exactly one rotates the token.
	// A token rotated before is returned with ErrAlreadyUsed; an unknown
	// hash, or an access token's, is ErrNotFound. rotate is not called then.
	//
	// If rotate returns an error, nothing is written: the token stays
	// unrotated, and RotateRefreshTokenFunc returns it with rotate's error
	// as it is (not wrapped). now must be after 1970.
	//
	// rotate runs inside the store's write, as CodeRedeemer's issue does,
	// under the same rules: it must be quick, must not block and must not
	// call the store (no I/O, no signing), and a store that runs its
	// transaction again calls it again: only what the last call returned
	// counts.
	RotateRefreshTokenFunc(ctx context.Context, hash string, now time.Time, rotate func(old *Token) (successor []byte, next []*Token, err error)) (*Token, error)
}

// TokenStore keeps access and refresh tokens.
type TokenStore interface {
	// CreateTokens stores the tokens in one transaction: all of them or
	// none. A hash that is taken, by a stored token or twice in tokens,
	// is ErrAlreadyExists, and then none is stored. Tokens of a grant
	// that RevokeGrant revoked are not stored (and not found).
	CreateTokens(ctx context.Context, tokens ...*Token) error
	// Token returns the token with the hash, or ErrNotFound (also when its
	// grant was revoked). Expired and rotated tokens are returned; the
	// caller checks Token.Active.
	Token(ctx context.Context, hash string) (*Token, error)
	// RotateRefreshToken marks the refresh token oldHash rotated at now,
	// records successor (sealed successor tokens, may be nil) and stores
	// next, in one transaction. Exactly one of many concurrent calls for one
	// oldHash succeeds; the others get the old token and ErrAlreadyUsed. An
	// unknown hash is ErrNotFound.
	RotateRefreshToken(ctx context.Context, oldHash string, now time.Time, successor []byte, next ...*Token) (*Token, error)
	// RevokeToken removes one token; ErrNotFound if it was not there.
	RevokeToken(ctx context.Context, hash string) error
	// RevokeGrant revokes the grant (token family) until the time until:
	// it removes every token of the grant and records the revocation, so
	// that Token and RotateRefreshToken treat every token of the grant as
	// not found, including tokens created after the call (a replayed code
	// may be revoked while its first redemption is still issuing tokens).
	// A store may delete the tokens' records later (sqlitestore leaves
	// them to DeleteExpired), as long as none is found from the call on.
	// DeleteExpired forgets the record after until, or later, once the
	// grant's tokens are gone.
	RevokeGrant(ctx context.Context, grantID string, until time.Time) error
	// RevokeTokensOf removes every token a user granted a client, and the
	// authorization codes issued to the client for the user that are not
	// used yet (the codes of AuthCodeStore, though this is TokenStore's): from the call on, Token, RotateRefreshToken and RevokeToken
	// treat the tokens as not found, and ConsumeAuthCode and RedeemAuthCode
	// the codes (RFC 6749 §10.5: a code does not outlive its grant). That
	// holds against calls that run at the same time: a rotation or a
	// redemption that raced the call stores nothing that is found after it
	// (storetest's RevokeTokensOfRacingRotations). Tokens and codes of new
	// grants created after the call are not affected (a store may revoke
	// the pair's grants, as pgstore does: the Provider never reuses a
	// grant ID). A store may delete
	// the tokens' records later (sqlitestore leaves them to DeleteExpired),
	// as long as none is found from the call on.
	RevokeTokensOf(ctx context.Context, userID, clientID string) error
}

// SessionStore keeps signed-in browsers.
type SessionStore interface {
	// CreateSession stores a new session, or returns ErrAlreadyExists if
	// its hash is taken.
	CreateSession(ctx context.Context, s *Session) error
	// Session returns the session with the hash, or ErrNotFound.
	Session(ctx context.Context, hash string) (*Session, error)
	// DeleteSession removes the session; ErrNotFound if it was gone.
	DeleteSession(ctx context.Context, hash string) error
}

// ConsentStore keeps remembered consent decisions.
type ConsentStore interface {
	// SaveConsent creates or replaces the user's consent for the client.
	SaveConsent(ctx context.Context, c *Consent) error
	// Consent returns the user's consent for the client, or ErrNotFound.
	Consent(ctx context.Context, userID, clientID string) (*Consent, error)
	// Consents lists a user's consents ordered by client ID.
	Consents(ctx context.Context, userID string) ([]*Consent, error)
	// DeleteConsent removes a consent; ErrNotFound if it was not there.
	DeleteConsent(ctx context.Context, userID, clientID string) error
}

// KeyStore keeps the signing keys shared by every node.
type KeyStore interface {
	// CreateSigningKey stores a new key; ErrAlreadyExists if the ID is taken.
	CreateSigningKey(ctx context.Context, k *SigningKey) error
	// SigningKeys lists every key ordered by NotBefore.
	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	// DeleteSigningKey removes a key; ErrNotFound if it was not there.
	DeleteSigningKey(ctx context.Context, id string) error
}

// SigningKeyBootstrapper is implemented by stores that can store a signing
// key only if no key of its algorithm signs or is due to, in one write, so
// that the nodes of a cluster started together on an empty database agree
// on one first key per algorithm rather than each signing with a key of
// its own that the others do not publish. It is optional: a KeyManager
// uses it when its KeyStore has it, and otherwise stores the first keys
// with CreateSigningKey. A store that wraps another passes it on; where
// the wrapped store lacks it, the wrapper should lack it too, or store
// the key with CreateSigningKey, as a KeyManager would. An override of
// CreateSigningKey in a type that embeds a store with
// CreateSigningKeyIfNoneActive is bypassed for the first keys (see
// Storage on wrapping a store).
type SigningKeyBootstrapper interface {
	// CreateSigningKeyIfNoneActive stores k as CreateSigningKey does,
	// unless the store holds a key with k.Algorithm that has not retired
	// at now (now < RetireAt, compared to the millisecond, a zero RetireAt
	// being past): one that signs, or one due to sign later, such as the
	// first key of a node whose clock runs a little ahead, which a
	// KeyManager signs with when none signs yet. Then it stores nothing
	// and returns ErrAlreadyExists, as it does when k.ID is taken. The
	// check and the insert are one atomic step: of many concurrent calls
	// for one algorithm, from any number of processes sharing the store,
	// when every key of the algorithm has retired (or there is none),
	// exactly one stores its key.
	CreateSigningKeyIfNoneActive(ctx context.Context, k *SigningKey, now time.Time) error
}

// SigningKeyRetention is how long after its ExpiresAt a signing key stays
// in the store (DeleteExpired spares it): a server whose ID tokens now
// live longer than when the key was made still has it to publish until
// they expire (see Config.IDTokenTTL), up to this much longer.
const SigningKeyRetention = 7 * 24 * time.Hour

// Storage is everything the Provider needs from a backend. Every store
// passes the conformance suite in package storetest, which checks these
// rules of every method besides what each one documents:
//
//   - A cancelled context makes every method fail with an error that
//     wraps context.Canceled (errors.Is), and a write refused that way has
//     no effect.
//   - Creating a record whose key is taken is ErrAlreadyExists, for every
//     kind (clients, users, auth requests, codes, tokens, sessions,
//     signing keys); lookups and deletes of a missing record are
//     ErrNotFound. Wrap them (%w) as you like: the Provider uses errors.Is.
//   - Times keep at least millisecond precision; a nil and an empty slice
//     or map are the same; user claims round-trip as JSON (numbers come
//     back as float64). Records are copies: changing one a method
//     returned or took changes nothing in the store.
//   - The single-use steps are each one atomic call: ConsumeAuthCode,
//     RotateRefreshToken, DeleteAuthRequest (and the optional
//     RedeemAuthCode, RotateRefreshTokenFunc, CreateSigningKeyIfNoneActive).
//     Never a read followed by a write: of many concurrent calls, from any
//     number of processes, exactly one succeeds.
//
// Wrapping a store: Go promotes every method of an embedded field, the
// optional ones too. A type that embeds a concrete store
// (struct{ *memstore.Store }) has its RedeemAuthCode,
// RotateRefreshTokenFunc and CreateSigningKeyIfNoneActive, and the
// Provider calls those instead of ConsumeAuthCode and CreateTokens,
// Token and RotateRefreshToken, and CreateSigningKey: an override of
// these in the wrapper is bypassed in silence, and storetest cannot tell.
// Either embed the interface (struct{ oauthd.Storage }, which promotes
// Storage's methods only: the Provider then takes the paths through the
// methods you override), or override the optional methods too.
type Storage interface {
	ClientStore
	UserStore
	AuthRequestStore
	AuthCodeStore
	TokenStore
	SessionStore
	ConsentStore
	KeyStore
	// DeleteExpired removes at most limit records of each kind that expired
	// before now (auth requests, codes, tokens, sessions, grant revocation
	// records; signing keys whose non-zero ExpiresAt is more than
	// SigningKeyRetention before now), and returns how many it removed, all
	// kinds together. A zero ExpiresAt (or revocation until) never
	// expires, and a limit below one removes nothing. As limit holds per
	// kind, a call that returns fewer than limit has removed every expired
	// record of every kind: call it until then.
	DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	// Close releases the store's resources.
	Close() error
}

// found is a store lookup's outcome with a store's broken promise made an
// error: a record, or an error (ErrNotFound when there is none), never
// neither. A custom store that returns neither would otherwise panic the
// request that reads the record, in the caller's own handler for
// PendingRequest, Approve and Deny.
func found[T any](rec *T, err error) (*T, error) {
	if rec == nil && err == nil {
		return nil, errors.New("oauthd: the store returned neither a record nor an error (ErrNotFound when there is none)")
	}
	return rec, err
}
