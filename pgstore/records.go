package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/oauthd/oauthd"
)

// The statements of the records an operator manages. Lists are ordered by
// columns of collation "C", so byte by byte, as the other stores order them.
const (
	sqlCreateClient = `INSERT INTO clients (id, data, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`
	sqlUpdateClient = `UPDATE clients SET data = $1, created_at = $2 WHERE id = $3`
	sqlDeleteClient = `DELETE FROM clients WHERE id = $1`
	sqlClient       = `SELECT data FROM clients WHERE id = $1`
	sqlClients      = `SELECT data FROM clients ORDER BY id`

	sqlCreateUser     = `INSERT INTO users (id, username, data, created_at, updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`
	sqlUpdateUser     = `UPDATE users SET username = $1, data = $2, created_at = $3, updated_at = $4 WHERE id = $5`
	sqlDeleteUser     = `DELETE FROM users WHERE id = $1`
	sqlUser           = `SELECT data FROM users WHERE id = $1`
	sqlUserByUsername = `SELECT data FROM users WHERE username = $1`
	sqlUsers          = `SELECT data FROM users ORDER BY username`

	sqlSaveConsent = `INSERT INTO consents (` + consentColumns + `) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id) DO UPDATE SET
			scopes = excluded.scopes, created_at = excluded.created_at, updated_at = excluded.updated_at`
	sqlConsent       = `SELECT ` + consentColumns + ` FROM consents WHERE user_id = $1 AND client_id = $2`
	sqlConsents      = `SELECT ` + consentColumns + ` FROM consents WHERE user_id = $1 ORDER BY client_id`
	sqlDeleteConsent = `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`

	sqlCreateSigningKey = `INSERT INTO signing_keys (` + keyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`
	sqlSigningKeys      = `SELECT ` + keyColumns + ` FROM signing_keys ORDER BY not_before NULLS FIRST, id`
	sqlDeleteSigningKey = `DELETE FROM signing_keys WHERE id = $1`
)

// Client returns the client with the ID, or ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var data []byte
	if err := s.readRow(ctx, func(r pgx.Row) error { return r.Scan(&data) }, sqlClient, id); err != nil {
		return nil, s.lookup(fmt.Sprintf("client %q", id), err)
	}
	return decodeClient(data)
}

func decodeClient(data []byte) (*oauthd.Client, error) {
	c := new(oauthd.Client)
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("pgstore: decode client: %w", err)
	}
	return c, nil
}

// CreateClient stores a new client, or returns ErrAlreadyExists.
func (s *Store) CreateClient(ctx context.Context, c *oauthd.Client) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := marshal(c)
	if err != nil {
		return fmt.Errorf("pgstore: encode client %q: %w", c.ID, err)
	}
	return s.create(ctx, fmt.Sprintf("client %q", c.ID), sqlCreateClient, c.ID, json.RawMessage(data), ts(c.CreatedAt))
}

// UpdateClient replaces a client, or returns ErrNotFound.
func (s *Store) UpdateClient(ctx context.Context, c *oauthd.Client) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := marshal(c)
	if err != nil {
		return fmt.Errorf("pgstore: encode client %q: %w", c.ID, err)
	}
	return s.changeOne(ctx, fmt.Sprintf("update client %q", c.ID), sqlUpdateClient, json.RawMessage(data), ts(c.CreatedAt), c.ID)
}

// DeleteClient removes a client, or returns ErrNotFound.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, fmt.Sprintf("delete client %q", id), sqlDeleteClient, id)
}

// Clients lists every client ordered by ID.
func (s *Store) Clients(ctx context.Context) ([]*oauthd.Client, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return list(ctx, s, "clients", sqlClients, func(row pgx.Row) (*oauthd.Client, error) {
		var data []byte
		if err := row.Scan(&data); err != nil {
			return nil, err
		}
		return decodeClient(data)
	})
}

// list runs a query and scans every row with scan.
func list[T any](ctx context.Context, s *Store, what, sql string, scan func(pgx.Row) (*T, error), args ...any) ([]*T, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, s.fail("list "+what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.fail("list "+what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail("list "+what, err)
	}
	return out, nil
}

// User returns the user with the ID, or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*oauthd.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.userBy(ctx, sqlUser, id, fmt.Sprintf("user %q", id))
}

// UserByUsername returns the user with the username, or ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (*oauthd.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.userBy(ctx, sqlUserByUsername, username, "user by username") // not the name: people type passwords there, and errors are logged
}

func (s *Store) userBy(ctx context.Context, sql, key, what string) (*oauthd.User, error) {
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	var data []byte
	if err := s.readRow(ctx, func(r pgx.Row) error { return r.Scan(&data) }, sql, key); err != nil {
		return nil, s.lookup(what, err)
	}
	return decodeUser(data)
}

func decodeUser(data []byte) (*oauthd.User, error) {
	u := new(oauthd.User)
	if err := json.Unmarshal(data, u); err != nil {
		return nil, fmt.Errorf("pgstore: decode user: %w", err)
	}
	return u, nil
}

// CreateUser stores a new user; ErrAlreadyExists if the ID or the username
// is taken.
func (s *Store) CreateUser(ctx context.Context, u *oauthd.User) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := marshal(u)
	if err != nil {
		return fmt.Errorf("pgstore: encode user %q: %w", u.ID, err)
	}
	return s.create(ctx, fmt.Sprintf("user %q (or username %q)", u.ID, u.Username), sqlCreateUser,
		u.ID, u.Username, json.RawMessage(data), ts(u.CreatedAt), ts(u.UpdatedAt))
}

// UpdateUser replaces a user, or returns ErrNotFound. It returns
// ErrAlreadyExists if another user has the new username.
func (s *Store) UpdateUser(ctx context.Context, u *oauthd.User) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	data, err := marshal(u)
	if err != nil {
		return fmt.Errorf("pgstore: encode user %q: %w", u.ID, err)
	}
	return s.changeOne(ctx, fmt.Sprintf("update user %q (username %q)", u.ID, u.Username), sqlUpdateUser,
		u.Username, json.RawMessage(data), ts(u.CreatedAt), ts(u.UpdatedAt), u.ID)
}

// DeleteUser removes a user, or returns ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, fmt.Sprintf("delete user %q", id), sqlDeleteUser, id)
}

// Users lists every user ordered by username.
func (s *Store) Users(ctx context.Context) ([]*oauthd.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return list(ctx, s, "users", sqlUsers, func(row pgx.Row) (*oauthd.User, error) {
		var data []byte
		if err := row.Scan(&data); err != nil {
			return nil, err
		}
		return decodeUser(data)
	})
}

// SaveConsent creates or replaces the user's consent for the client.
func (s *Store) SaveConsent(ctx context.Context, c *oauthd.Consent) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return err
	}
	_, err := s.exec(ctx, sqlSaveConsent, c.UserID, c.ClientID, joinScopes(c.Scopes), ts(c.CreatedAt), ts(c.UpdatedAt))
	if err != nil {
		return s.fail(fmt.Sprintf("save consent for client %q", c.ClientID), err)
	}
	return nil
}

// Consent returns the user's consent for the client, or ErrNotFound.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (*oauthd.Consent, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		return nil, err
	}
	c, err := scanConsent(s.pool.QueryRow(ctx, sqlConsent, userID, clientID))
	if err != nil {
		return nil, s.lookup(fmt.Sprintf("consent of user %q for client %q", userID, clientID), err)
	}
	return c, nil
}

// Consents lists the user's consents ordered by client ID.
func (s *Store) Consents(ctx context.Context, userID string) ([]*oauthd.Consent, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return list(ctx, s, "consents", sqlConsents, scanConsent, userID)
}

// DeleteConsent removes a consent; ErrNotFound if it was not there.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, fmt.Sprintf("delete consent of user %q for client %q", userID, clientID), sqlDeleteConsent, userID, clientID)
}

// CreateSigningKey stores a new key; ErrAlreadyExists if the ID is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k *oauthd.SigningKey) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.create(ctx, fmt.Sprintf("signing key %q", k.ID), sqlCreateSigningKey,
		k.ID, k.Algorithm, k.Private, ts(k.NotBefore), ts(k.RetireAt), ts(k.ExpiresAt), ts(k.CreatedAt))
}

// SigningKeys lists every key ordered by NotBefore, then ID.
func (s *Store) SigningKeys(ctx context.Context) ([]*oauthd.SigningKey, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return list(ctx, s, "signing keys", sqlSigningKeys, scanKey)
}

// DeleteSigningKey removes a key; ErrNotFound if it was not there.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.changeOne(ctx, fmt.Sprintf("delete signing key %q", id), sqlDeleteSigningKey, id)
}
