-- A new notification kind: prescription.created, to the patient's account. SQLite cannot
-- change a CHECK in place: the table is rebuilt (nothing references it) with the same columns
-- and rows.
CREATE TABLE notifications_new (
    recipient_id BLOB    NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    id           INTEGER NOT NULL CHECK (id > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('referral.received', 'referral.accepted',
        'referral.declined', 'referral.completed', 'referral.cancelled', 'care_team.added',
        'emergency_access.used', 'appointment.booked', 'appointment.cancelled',
        'appointment.rescheduled', 'appointment.reminder', 'referral.escalated',
        'lab.resulted', 'lab.critical', 'lab.critical_escalated', 'lab.released',
        'lab.ecg_alert', 'prescription.created')),
    created_at   INTEGER NOT NULL,
    read_at      INTEGER,
    -- JSON: {title, referral_id?, patient_id?, actor_id?, emergency_access_id?,
    -- appointment_id?, lab_order_id?, prescription_id?, urgent?}; ids and a title only, never
    -- clinical text.
    data         TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (recipient_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO notifications_new (recipient_id, id, kind, created_at, read_at, data)
    SELECT recipient_id, id, kind, created_at, read_at, data FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;

CREATE INDEX notifications_unread_idx ON notifications (recipient_id, id) WHERE read_at IS NULL;
