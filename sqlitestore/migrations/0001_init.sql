-- The initial schema. Times are unix milliseconds, 0 for the zero time.
-- Scopes are space-separated. Tables keep their rowid so that DeleteExpired
-- can remove bounded batches by rowid.

CREATE TABLE clients (
	id         TEXT PRIMARY KEY,
	data       TEXT NOT NULL, -- oauthd.Client as JSON
	created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	username   TEXT NOT NULL UNIQUE,
	data       TEXT NOT NULL, -- oauthd.User as JSON
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE auth_requests (
	id         TEXT PRIMARY KEY,
	data       TEXT NOT NULL, -- oauthd.AuthRequest as JSON
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE auth_codes (
	hash                  TEXT PRIMARY KEY,
	grant_id              TEXT NOT NULL,
	client_id             TEXT NOT NULL,
	subject               TEXT NOT NULL,
	redirect_uri          TEXT NOT NULL,
	scopes                TEXT NOT NULL,
	code_challenge        TEXT NOT NULL,
	code_challenge_method TEXT NOT NULL,
	nonce                 TEXT NOT NULL,
	claims                TEXT NOT NULL,
	auth_time             INTEGER NOT NULL,
	issued_at             INTEGER NOT NULL,
	expires_at            INTEGER NOT NULL,
	used_at               INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE tokens (
	hash       TEXT PRIMARY KEY,
	kind       TEXT NOT NULL, -- access_token or refresh_token
	grant_id   TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	subject    TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	claims     TEXT NOT NULL,
	auth_time  INTEGER NOT NULL,
	issued_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	rotated_at INTEGER NOT NULL DEFAULT 0,
	successor  BLOB -- sealed successor tokens of a rotated refresh token
) STRICT;
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_subject_client_id ON tokens (subject, client_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- A revoked grant: its tokens are removed, and tokens created for it later
-- are not stored, until expires_at.
CREATE TABLE grant_revocations (
	grant_id   TEXT PRIMARY KEY,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX grant_revocations_expires_at ON grant_revocations (expires_at);

CREATE TABLE sessions (
	hash       TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	auth_time  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
	user_id    TEXT NOT NULL,
	client_id  TEXT NOT NULL,
	scopes     TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE TABLE signing_keys (
	id         TEXT PRIMARY KEY,
	alg        TEXT NOT NULL,
	private    BLOB, -- JWK JSON, possibly encrypted at rest
	not_before INTEGER NOT NULL,
	retire_at  INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX signing_keys_not_before ON signing_keys (not_before);
CREATE INDEX signing_keys_expires_at ON signing_keys (expires_at);
