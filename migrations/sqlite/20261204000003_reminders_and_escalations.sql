-- Reminders and escalations.
--
-- Notifications a job stores once, however often it runs (a reminder, an escalation): the
-- key is written in the notifications' own transaction, and a second run finds it and stores
-- nothing.

CREATE TABLE notification_once (
    key        TEXT        NOT NULL PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT;

-- New notification kinds: appointment reminders and referral escalations. SQLite cannot change
-- a CHECK in place: the table is rebuilt (nothing references it) with the same columns and
-- rows.
CREATE TABLE notifications_new (
    recipient_id BLOB    NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    id           INTEGER NOT NULL CHECK (id > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('referral.received', 'referral.accepted',
        'referral.declined', 'referral.completed', 'referral.cancelled', 'care_team.added',
        'emergency_access.used', 'appointment.booked', 'appointment.cancelled',
        'appointment.rescheduled', 'appointment.reminder', 'referral.escalated')),
    created_at   INTEGER NOT NULL,
    read_at      INTEGER,
    -- JSON: {title, referral_id?, patient_id?, actor_id?, emergency_access_id?,
    -- appointment_id?}; ids and a title only, never clinical text.
    data         TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (recipient_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO notifications_new (recipient_id, id, kind, created_at, read_at, data)
    SELECT recipient_id, id, kind, created_at, read_at, data FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;

-- Unread counting and "mark all read" touch only the unread.
CREATE INDEX notifications_unread_idx ON notifications (recipient_id, id) WHERE read_at IS NULL;
