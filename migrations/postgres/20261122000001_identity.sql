-- Identity: users, sign-in sessions, refresh tokens, denied access tokens, failed sign-ins.

CREATE TABLE users (
    id            UUID        NOT NULL PRIMARY KEY,
    -- Lowercased by the domain, so a plain UNIQUE makes usernames unique regardless of case.
    username      TEXT        NOT NULL CHECK (username = lower(username) AND length(username) BETWEEN 3 AND 32),
    password_hash TEXT        NOT NULL,
    full_name     TEXT        NOT NULL,
    email         TEXT,
    role          TEXT        NOT NULL CHECK (role IN ('admin', 'secretary', 'doctor', 'laboratory', 'patient')),
    status        TEXT        NOT NULL CHECK (status IN ('pending', 'active', 'suspended')),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE INDEX users_role_status_idx ON users (role, status, id);

-- One row per login; every refresh token descended from it belongs to it (its "family").
CREATE TABLE auth_sessions (
    id         UUID        NOT NULL PRIMARY KEY,
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);

CREATE INDEX auth_sessions_user_idx ON auth_sessions (user_id);

-- Refresh tokens are stored only as SHA-256 hashes.
CREATE TABLE refresh_tokens (
    token_hash TEXT        NOT NULL PRIMARY KEY,
    session_id UUID        NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
    issued_at  TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ
);

CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Access tokens denied before their expiry (logout). Rows are purged once the token expires.
CREATE TABLE revoked_access_tokens (
    jti        UUID        NOT NULL PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX revoked_access_tokens_expires_idx ON revoked_access_tokens (expires_at);

-- Failed sign-ins per lowercased submitted username, known or not.
CREATE TABLE login_failures (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    throttle_key TEXT        NOT NULL,
    attempted_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX login_failures_key_idx ON login_failures (throttle_key, attempted_at);
