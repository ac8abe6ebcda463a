-- Sessions end: each sign-in session has a fixed end, however often it is refreshed. Sessions
-- started before this migration end 30 days after they began, the new default.
ALTER TABLE auth_sessions ADD COLUMN ends_at TIMESTAMPTZ;
UPDATE auth_sessions SET ends_at = created_at + INTERVAL '30 days';
ALTER TABLE auth_sessions ALTER COLUMN ends_at SET NOT NULL;

-- Devices that signed in to an account before, by the SHA-256 hash of their device token:
-- their failed sign-ins are counted against the device, not the username (OWASP's "device
-- cookies"), so strangers' failures cannot lock the account's owner out.
CREATE TABLE trusted_devices (
    token_hash TEXT        NOT NULL PRIMARY KEY,
    user_id    UUID        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at TIMESTAMPTZ NOT NULL
);

CREATE INDEX trusted_devices_expires_idx ON trusted_devices (expires_at);

-- Throttle keys now name what they count (`user:`, `addr:`, `addr-user:`, `device:`,
-- `register:`); counts under the old bare usernames are simply let go.
DELETE FROM login_failures;
