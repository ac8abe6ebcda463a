-- Single-use tickets that open a WebSocket in place of an access token (a browser cannot set an
-- Authorization header on the upgrade request). Stored only as SHA-256 hashes, like refresh
-- tokens, so that any server instance can redeem a ticket another issued. Each row carries the
-- claims of the access token it stands for; redeeming deletes it, and expired rows are purged.

CREATE TABLE socket_tickets (
    hash             TEXT        NOT NULL PRIMARY KEY,
    user_id          UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No foreign key: a ticket outlives neither its 30 seconds nor the checks made when it is
    -- redeemed, which refuse a session that was revoked or purged meanwhile.
    session_id       UUID        NOT NULL,
    token_id         UUID        NOT NULL,
    role             TEXT        NOT NULL CHECK (role IN ('admin', 'secretary', 'doctor', 'laboratory', 'patient')),
    -- When the access token was issued and expires: the claims are handed back whole.
    issued_at        TIMESTAMPTZ NOT NULL,
    token_expires_at TIMESTAMPTZ NOT NULL,
    expires_at       TIMESTAMPTZ NOT NULL,
    CHECK (expires_at <= token_expires_at)
);

CREATE INDEX socket_tickets_expires_idx ON socket_tickets (expires_at);
CREATE INDEX socket_tickets_user_idx ON socket_tickets (user_id);
