-- The ring of keys that sign access tokens, shared by every instance so that one rotation
-- reaches all of them. The key with the highest position signs; every other key was superseded
-- when the next one was added, and verifies the tokens it signed until they have expired (the
-- servers work out when from the access token lifetime; nothing here changes at retirement).
--
-- `position` orders the ring whatever the clocks of those who added the keys said. Its
-- uniqueness is what makes concurrent writers safe: a new key takes the highest position plus
-- one, so of two rotations that read the same highest position one inserts nothing and tries
-- again, and of two instances starting an empty ring only one key takes position 1.
--
-- The private keys are kept in clear, as the key file in the data directory was: whoever may
-- read this table may sign tokens.
CREATE TABLE signing_keys (
    kid             TEXT        NOT NULL PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
    position        BIGINT      NOT NULL CONSTRAINT signing_keys_position_key UNIQUE
                                CHECK (position > 0),
    private_key_pem TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL
);
