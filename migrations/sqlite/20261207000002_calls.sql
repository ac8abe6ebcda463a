-- Video calls: the joins and leaves of each video appointment's call are recorded; the call's
-- duration is read from them.
-- The signalling itself is relayed in memory, never stored: SQLite means one instance, which
-- holds every socket.

CREATE TABLE appointment_call_events (
    -- The order events were recorded in.
    id             INTEGER NOT NULL PRIMARY KEY,
    appointment_id BLOB    NOT NULL REFERENCES appointments (id),
    user_id        BLOB    NOT NULL REFERENCES users (id),
    kind           TEXT    NOT NULL CHECK (kind IN ('join', 'leave')),
    at             INTEGER NOT NULL
) STRICT;

CREATE INDEX appointment_call_events_appointment_idx ON appointment_call_events (appointment_id, id);
