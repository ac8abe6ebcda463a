-- Video calls: the joins and leaves of each video appointment's call are recorded; the call's
-- duration is read from them.

CREATE TABLE appointment_call_events (
    -- The order events were recorded in.
    id             BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appointment_id UUID        NOT NULL REFERENCES appointments (id),
    user_id        UUID        NOT NULL REFERENCES users (id),
    kind           TEXT        NOT NULL CHECK (kind IN ('join', 'leave')),
    at             TIMESTAMPTZ NOT NULL
);

CREATE INDEX appointment_call_events_appointment_idx ON appointment_call_events (appointment_id, id);

-- What is relayed between users (a call's signalling, "typing" in a conversation) on its way
-- from one instance to another. A NOTIFY payload is limited to 8000 bytes and an SDP offer of
-- audio and video comes near it, so the relay stores each signal here and notifies its id; the
-- instance holding the recipient's socket reads it. Signals are worthless after a few seconds: the table is not
-- logged, and rows older than a minute are deleted as new ones come.
CREATE UNLOGGED TABLE relayed_signals (
    id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    recipient  UUID        NOT NULL,
    payload    TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX relayed_signals_created_idx ON relayed_signals (created_at);
