package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/oauthd/oauthd"
)

// write runs fn as one write of the writer's next transaction; see
// writer.do.
func (s *Store) write(ctx context.Context, fn func(*stmts, *txn) error) error {
	st, err := s.ready(ctx)
	if err != nil {
		return err
	}
	return unavailable(s.w.do(ctx, func(x *txn) error { return fn(st, x) }))
}

// writeClaim is write for a write that starts with the single-use
// credential c names (see claim).
func (s *Store) writeClaim(ctx context.Context, c claim, fn func(*stmts, *txn) error) error {
	st, err := s.ready(ctx)
	if err != nil {
		return err
	}
	c.st = st
	return unavailable(s.w.doClaim(ctx, func(x *txn) error { return fn(st, x) }, &c))
}

// Client returns the client with the ID, or ErrNotFound.
func (s *Store) Client(ctx context.Context, id string) (*oauthd.Client, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	var data []byte
	if err := st.client.QueryRowContext(lookup, id).Scan(&data); err != nil {
		return nil, lookupErr(err, fmt.Sprintf("client %q", id))
	}
	return decodeClient(data)
}

func decodeClient(data []byte) (*oauthd.Client, error) {
	c := new(oauthd.Client)
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("sqlitestore: decode client: %w", err)
	}
	return c, nil
}

// CreateClient stores a new client, or returns ErrAlreadyExists.
func (s *Store) CreateClient(ctx context.Context, c *oauthd.Client) error {
	data, err := marshal(c)
	if err != nil {
		return fmt.Errorf("sqlitestore: encode client %q: %w", c.ID, err)
	}
	createdAt := unixMS(c.CreatedAt)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createClient, c.ID, string(data), createdAt)
		if err != nil {
			return fmt.Errorf("sqlitestore: create client %q: %w", c.ID, err)
		}
		return inserted(res, fmt.Sprintf("client %q", c.ID))
	})
}

// UpdateClient replaces a client, or returns ErrNotFound.
func (s *Store) UpdateClient(ctx context.Context, c *oauthd.Client) error {
	data, err := marshal(c)
	if err != nil {
		return fmt.Errorf("sqlitestore: encode client %q: %w", c.ID, err)
	}
	createdAt := unixMS(c.CreatedAt)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.updateClient, string(data), createdAt, c.ID)
		if err != nil {
			return fmt.Errorf("sqlitestore: update client %q: %w", c.ID, err)
		}
		return affected(res, fmt.Sprintf("update client %q", c.ID))
	})
}

// DeleteClient removes a client, or returns ErrNotFound.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteClient, id)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete client %q: %w", id, err)
		}
		return affected(res, fmt.Sprintf("delete client %q", id))
	})
}

// Clients lists every client ordered by ID.
func (s *Store) Clients(ctx context.Context) ([]*oauthd.Client, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	return list(ctx, st.clients, "clients", func(sc scanner) (*oauthd.Client, error) {
		var data []byte
		if err := sc.Scan(&data); err != nil {
			return nil, err
		}
		return decodeClient(data)
	})
}

// list runs the query st and scans every row with scan.
func list[T any](ctx context.Context, st *sql.Stmt, what string, scan func(scanner) (*T, error), args ...any) ([]*T, error) {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list %s: %w", what, err)
	}
	defer rows.Close()
	var out []*T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlitestore: list %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: list %s: %w", what, err)
	}
	return out, nil
}

// User returns the user with the ID, or ErrNotFound.
func (s *Store) User(ctx context.Context, id string) (*oauthd.User, error) {
	if _, err := s.ready(ctx); err != nil {
		return nil, err
	}
	if u, ok := s.cache.user(id); ok {
		return u, nil
	}
	gen := s.cache.generation()
	u, err := s.userBy(ctx, func(st *stmts) *sql.Stmt { return st.user }, id, fmt.Sprintf("user %q", id))
	if err != nil {
		return nil, err
	}
	s.cache.putUser(gen, u)
	return u, nil
}

// UserByUsername returns the user with the username, or ErrNotFound.
func (s *Store) UserByUsername(ctx context.Context, username string) (*oauthd.User, error) {
	return s.userBy(ctx, func(st *stmts) *sql.Stmt { return st.userByUsername }, username, "user by username") // not the name: people type passwords there, and errors are logged
}

func (s *Store) userBy(ctx context.Context, query func(*stmts) *sql.Stmt, key, what string) (*oauthd.User, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	var data []byte
	if err := query(st).QueryRowContext(lookup, key).Scan(&data); err != nil {
		return nil, lookupErr(err, what)
	}
	return decodeUser(data)
}

func decodeUser(data []byte) (*oauthd.User, error) {
	u := new(oauthd.User)
	if err := json.Unmarshal(data, u); err != nil {
		return nil, fmt.Errorf("sqlitestore: decode user: %w", err)
	}
	return u, nil
}

// CreateUser stores a new user; ErrAlreadyExists if the ID or the username
// is taken.
func (s *Store) CreateUser(ctx context.Context, u *oauthd.User) error {
	data, err := marshal(u)
	if err != nil {
		return fmt.Errorf("sqlitestore: encode user %q: %w", u.ID, err)
	}
	createdAt, updatedAt := unixMS(u.CreatedAt), unixMS(u.UpdatedAt)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createUser, u.ID, u.Username, string(data), createdAt, updatedAt)
		if err != nil {
			return fmt.Errorf("sqlitestore: create user %q: %w", u.ID, err)
		}
		return inserted(res, fmt.Sprintf("user %q (or username %q)", u.ID, u.Username))
	})
}

// UpdateUser replaces a user, or returns ErrNotFound. It returns
// ErrAlreadyExists if another user has the new username.
func (s *Store) UpdateUser(ctx context.Context, u *oauthd.User) error {
	data, err := marshal(u)
	if err != nil {
		return fmt.Errorf("sqlitestore: encode user %q: %w", u.ID, err)
	}
	createdAt, updatedAt := unixMS(u.CreatedAt), unixMS(u.UpdatedAt)
	defer s.cache.dropUser(u.ID)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.updateUser, u.Username, string(data), createdAt, updatedAt, u.ID)
		if isConstraint(err) {
			return fmt.Errorf("sqlitestore: update user %q: username %q: %w", u.ID, u.Username, oauthd.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: update user %q: %w", u.ID, err)
		}
		return affected(res, fmt.Sprintf("update user %q", u.ID))
	})
}

// DeleteUser removes a user, or returns ErrNotFound.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	defer s.cache.dropUser(id)
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteUser, id)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete user %q: %w", id, err)
		}
		return affected(res, fmt.Sprintf("delete user %q", id))
	})
}

// Users lists every user ordered by username.
func (s *Store) Users(ctx context.Context) ([]*oauthd.User, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	return list(ctx, st.users, "users", func(sc scanner) (*oauthd.User, error) {
		var data []byte
		if err := sc.Scan(&data); err != nil {
			return nil, err
		}
		return decodeUser(data)
	})
}

// SaveConsent creates or replaces the user's consent for the client.
func (s *Store) SaveConsent(ctx context.Context, c *oauthd.Consent) error {
	args := []any{c.UserID, c.ClientID, joinScopes(c.Scopes), unixMS(c.CreatedAt), unixMS(c.UpdatedAt)}
	return s.write(ctx, func(st *stmts, x *txn) error {
		if _, err := x.exec(st.saveConsent, args...); err != nil {
			return fmt.Errorf("sqlitestore: save consent for client %q: %w", c.ClientID, err)
		}
		return nil
	})
}

// Consent returns the user's consent for the client, or ErrNotFound.
func (s *Store) Consent(ctx context.Context, userID, clientID string) (*oauthd.Consent, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanConsent(st.consent.QueryRowContext(lookup, userID, clientID))
	if err != nil {
		return nil, lookupErr(err, fmt.Sprintf("consent of user %q for client %q", userID, clientID))
	}
	return c, nil
}

// Consents lists the user's consents ordered by client ID.
func (s *Store) Consents(ctx context.Context, userID string) ([]*oauthd.Consent, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	return list(ctx, st.consents, "consents", scanConsent, userID)
}

// DeleteConsent removes a consent; ErrNotFound if it was not there.
func (s *Store) DeleteConsent(ctx context.Context, userID, clientID string) error {
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteConsent, userID, clientID)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete consent for client %q: %w", clientID, err)
		}
		return affected(res, fmt.Sprintf("delete consent of user %q for client %q", userID, clientID))
	})
}

// CreateSigningKey stores a new key; ErrAlreadyExists if the ID is taken.
func (s *Store) CreateSigningKey(ctx context.Context, k *oauthd.SigningKey) error {
	args := []any{k.ID, k.Algorithm, k.Private, unixMS(k.NotBefore), unixMS(k.RetireAt), unixMS(k.ExpiresAt), unixMS(k.CreatedAt)}
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.createSigningKey, args...)
		if err != nil {
			return fmt.Errorf("sqlitestore: create signing key %q: %w", k.ID, err)
		}
		return inserted(res, fmt.Sprintf("signing key %q", k.ID))
	})
}

// SigningKeys lists every key ordered by NotBefore, then ID.
func (s *Store) SigningKeys(ctx context.Context) ([]*oauthd.SigningKey, error) {
	st, err := s.ready(ctx)
	if err != nil {
		return nil, err
	}
	return list(ctx, st.signingKeys, "signing keys", scanKey)
}

// DeleteSigningKey removes a key; ErrNotFound if it was not there.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return s.write(ctx, func(st *stmts, x *txn) error {
		res, err := x.exec(st.deleteSigningKey, id)
		if err != nil {
			return fmt.Errorf("sqlitestore: delete signing key %q: %w", id, err)
		}
		return affected(res, fmt.Sprintf("delete signing key %q", id))
	})
}
