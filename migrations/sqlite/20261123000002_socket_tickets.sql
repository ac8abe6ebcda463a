-- Single-use tickets that open a WebSocket in place of an access token (a browser cannot set an
-- Authorization header on the upgrade request). Stored only as SHA-256 hashes, like refresh
-- tokens, so that any server instance can redeem a ticket another issued. Each row carries the
-- claims of the access token it stands for; redeeming deletes it, and expired rows are purged.
-- Times are INTEGER microseconds since the Unix epoch, UUIDs 16-byte BLOBs.

CREATE TABLE socket_tickets (
    hash             TEXT    NOT NULL PRIMARY KEY,
    user_id          BLOB    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No foreign key: a ticket outlives neither its 30 seconds nor the checks made when it is
    -- redeemed, which refuse a session that was revoked or purged meanwhile.
    session_id       BLOB    NOT NULL CHECK (length(session_id) = 16),
    token_id         BLOB    NOT NULL CHECK (length(token_id) = 16),
    role             TEXT    NOT NULL CHECK (role IN ('admin', 'secretary', 'doctor', 'laboratory', 'patient')),
    -- When the access token was issued and expires: the claims are handed back whole.
    issued_at        INTEGER NOT NULL,
    token_expires_at INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    CHECK (expires_at <= token_expires_at)
) STRICT;

CREATE INDEX socket_tickets_expires_idx ON socket_tickets (expires_at);
CREATE INDEX socket_tickets_user_idx ON socket_tickets (user_id);
