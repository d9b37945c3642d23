-- The initial schema.
--
-- Times are timestamptz kept to the millisecond; NULL is the zero time
-- (never expires, not used, not rotated). Scopes are space-separated text.
-- Keys are text (random IDs and SHA-256 hashes) compared byte by byte
-- (COLLATE "C"). There are no sequences, triggers or stored functions, so
-- that the schema also suits distributed SQL that speaks the PostgreSQL
-- protocol. Every table that expires has an index on expires_at, which
-- DeleteExpired walks in bounded batches.

CREATE TABLE clients (
	id         text COLLATE "C" PRIMARY KEY,
	data       jsonb NOT NULL, -- oauthd.Client as JSON
	created_at timestamptz
);

CREATE TABLE users (
	id         text COLLATE "C" PRIMARY KEY,
	username   text COLLATE "C" NOT NULL UNIQUE,
	data       jsonb NOT NULL, -- oauthd.User as JSON
	created_at timestamptz,
	updated_at timestamptz
);

CREATE TABLE auth_requests (
	id         text COLLATE "C" PRIMARY KEY,
	data       jsonb NOT NULL, -- oauthd.AuthRequest as JSON
	expires_at timestamptz
);
CREATE INDEX auth_requests_expires_at ON auth_requests (expires_at);

CREATE TABLE auth_codes (
	hash                  text COLLATE "C" PRIMARY KEY,
	grant_id              text NOT NULL,
	client_id             text NOT NULL,
	subject               text NOT NULL,
	redirect_uri          text NOT NULL,
	scopes                text NOT NULL,
	code_challenge        text NOT NULL,
	code_challenge_method text NOT NULL,
	nonce                 text NOT NULL,
	claims                text NOT NULL,
	auth_time             timestamptz,
	issued_at             timestamptz,
	expires_at            timestamptz,
	used_at               timestamptz -- set once, by ConsumeAuthCode
);
CREATE INDEX auth_codes_expires_at ON auth_codes (expires_at);

CREATE TABLE tokens (
	hash       text COLLATE "C" PRIMARY KEY,
	kind       text NOT NULL CHECK (kind IN ('access_token', 'refresh_token')),
	grant_id   text COLLATE "C" NOT NULL,
	client_id  text COLLATE "C" NOT NULL,
	subject    text COLLATE "C" NOT NULL,
	scopes     text NOT NULL,
	claims     text NOT NULL,
	auth_time  timestamptz,
	issued_at  timestamptz,
	expires_at timestamptz,
	rotated_at timestamptz, -- set once, by RotateRefreshToken
	successor  bytea        -- sealed successor tokens of a rotated refresh token
);
CREATE INDEX tokens_grant_id ON tokens (grant_id);
CREATE INDEX tokens_subject_client_id ON tokens (subject, client_id);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

-- A revoked grant: its tokens are removed, and until expires_at (NULL: for
-- good) tokens created for it are not stored and not found.
CREATE TABLE grant_revocations (
	grant_id   text COLLATE "C" PRIMARY KEY,
	expires_at timestamptz
);
CREATE INDEX grant_revocations_expires_at ON grant_revocations (expires_at);

CREATE TABLE sessions (
	hash       text COLLATE "C" PRIMARY KEY,
	user_id    text COLLATE "C" NOT NULL,
	auth_time  timestamptz,
	expires_at timestamptz
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE consents (
	user_id    text COLLATE "C" NOT NULL,
	client_id  text COLLATE "C" NOT NULL,
	scopes     text NOT NULL,
	created_at timestamptz,
	updated_at timestamptz,
	PRIMARY KEY (user_id, client_id)
);

CREATE TABLE signing_keys (
	id         text COLLATE "C" PRIMARY KEY,
	alg        text NOT NULL,
	private    bytea, -- JWK JSON, possibly encrypted at rest
	not_before timestamptz,
	retire_at  timestamptz,
	expires_at timestamptz,
	created_at timestamptz
);
CREATE INDEX signing_keys_not_before ON signing_keys (not_before);
CREATE INDEX signing_keys_expires_at ON signing_keys (expires_at);
