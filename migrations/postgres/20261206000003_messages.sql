-- The stream's message events (message.received, message.read), born read, and the
-- notification of an unread message (message.unread).
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'referral.received', 'referral.accepted', 'referral.declined', 'referral.completed',
    'referral.cancelled', 'care_team.added', 'emergency_access.used', 'appointment.booked',
    'appointment.cancelled', 'appointment.rescheduled', 'appointment.reminder',
    'referral.escalated', 'lab.resulted', 'lab.critical', 'lab.critical_escalated',
    'lab.released', 'lab.ecg_alert', 'prescription.created', 'message.unread',
    'message.received', 'message.read'));

-- Conversations: about a patient (with their account and care-team doctors), or about a
-- referral (its two doctors; one conversation per referral).
CREATE TABLE conversations (
    id              UUID        NOT NULL PRIMARY KEY,
    patient_id      UUID        NOT NULL REFERENCES patients (id),
    referral_id     UUID        UNIQUE REFERENCES referrals (id),
    created_by      UUID        NOT NULL REFERENCES users (id),
    created_at      TIMESTAMPTZ NOT NULL,
    last_message_at TIMESTAMPTZ
);

-- Who takes part, in the order they were named, and the last message each marked read.
CREATE TABLE conversation_participants (
    conversation_id UUID   NOT NULL REFERENCES conversations (id),
    user_id         UUID   NOT NULL REFERENCES users (id),
    position        BIGINT NOT NULL,
    last_read       UUID,
    PRIMARY KEY (conversation_id, user_id)
);

CREATE INDEX conversation_participants_user_idx
    ON conversation_participants (user_id, conversation_id);

CREATE TABLE messages (
    id              UUID        NOT NULL PRIMARY KEY,
    conversation_id UUID        NOT NULL REFERENCES conversations (id),
    sender_id       UUID        NOT NULL REFERENCES users (id),
    body            TEXT        NOT NULL,
    sent_at         TIMESTAMPTZ NOT NULL
);

CREATE INDEX messages_conversation_idx ON messages (conversation_id, id);
