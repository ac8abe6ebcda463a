-- The stream's message events (message.received, message.read), born read, and the
-- notification of an unread message (message.unread). SQLite cannot change a CHECK in place:
-- the table is rebuilt (nothing references it) with the same columns and rows.
CREATE TABLE notifications_new (
    recipient_id BLOB    NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    id           INTEGER NOT NULL CHECK (id > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('referral.received', 'referral.accepted',
        'referral.declined', 'referral.completed', 'referral.cancelled', 'care_team.added',
        'emergency_access.used', 'appointment.booked', 'appointment.cancelled',
        'appointment.rescheduled', 'appointment.reminder', 'referral.escalated',
        'lab.resulted', 'lab.critical', 'lab.critical_escalated', 'lab.released',
        'lab.ecg_alert', 'prescription.created', 'message.unread', 'message.received',
        'message.read')),
    created_at   INTEGER NOT NULL,
    read_at      INTEGER,
    -- JSON: {title, referral_id?, patient_id?, actor_id?, emergency_access_id?,
    -- appointment_id?, lab_order_id?, prescription_id?, conversation_id?, message_id?,
    -- urgent?}; ids and a title only, never clinical text.
    data         TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (recipient_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO notifications_new (recipient_id, id, kind, created_at, read_at, data)
    SELECT recipient_id, id, kind, created_at, read_at, data FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;

CREATE INDEX notifications_unread_idx ON notifications (recipient_id, id) WHERE read_at IS NULL;

-- Conversations: about a patient (with their account and care-team doctors), or about a
-- referral (its two doctors; one conversation per referral).
CREATE TABLE conversations (
    id              BLOB    NOT NULL PRIMARY KEY,
    patient_id      BLOB    NOT NULL REFERENCES patients (id),
    referral_id     BLOB    UNIQUE REFERENCES referrals (id),
    created_by      BLOB    NOT NULL REFERENCES users (id),
    created_at      INTEGER NOT NULL,
    last_message_at INTEGER
) STRICT;

-- Who takes part, in the order they were named, and the last message each marked read.
CREATE TABLE conversation_participants (
    conversation_id BLOB    NOT NULL REFERENCES conversations (id),
    user_id         BLOB    NOT NULL REFERENCES users (id),
    position        INTEGER NOT NULL,
    last_read       BLOB,
    PRIMARY KEY (conversation_id, user_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX conversation_participants_user_idx
    ON conversation_participants (user_id, conversation_id);

CREATE TABLE messages (
    id              BLOB    NOT NULL PRIMARY KEY,
    conversation_id BLOB    NOT NULL REFERENCES conversations (id),
    sender_id       BLOB    NOT NULL REFERENCES users (id),
    body            TEXT    NOT NULL,
    sent_at         INTEGER NOT NULL
) STRICT;

CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
