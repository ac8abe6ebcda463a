-- Referrals between doctors, with the snapshot of what the sender shared; the care-team
-- memberships they open; and per-user notifications numbered without gaps.
-- Times are INTEGER microseconds since the Unix epoch, UUIDs 16-byte BLOBs.

CREATE TABLE referrals (
    id             BLOB    NOT NULL PRIMARY KEY,
    patient_id     BLOB    NOT NULL REFERENCES patients (id),
    -- The patient's name when the referral was sent, so that a box lists without the snapshot.
    patient_name   TEXT    NOT NULL,
    from_doctor_id BLOB    NOT NULL REFERENCES users (id),
    to_doctor_id   BLOB    NOT NULL REFERENCES users (id),
    reason         TEXT    NOT NULL,
    urgency        TEXT    NOT NULL CHECK (urgency IN ('routine', 'urgent', 'emergency')),
    status         TEXT    NOT NULL
        CHECK (status IN ('sent', 'accepted', 'declined', 'cancelled', 'completed')),
    decline_reason TEXT,
    outcome        TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    -- JSON: {clinical_summary, patient, medical} as they were when sent (infra's own shape,
    -- see crates/infra/src/referrals.rs); never updated.
    snapshot       TEXT    NOT NULL CHECK (json_valid(snapshot)),
    CONSTRAINT referrals_parties_check CHECK (from_doctor_id <> to_doctor_id),
    -- A declined referral has its reason and a completed one its outcome; no other has either.
    CONSTRAINT referrals_decline_reason_check
        CHECK ((decline_reason IS NOT NULL) = (status = 'declined')),
    CONSTRAINT referrals_outcome_check CHECK ((outcome IS NOT NULL) = (status = 'completed')),
    CHECK (updated_at >= created_at)
) STRICT;

-- Inbox and outbox, newest first (ids are UUIDv7), with and without a status filter.
CREATE INDEX referrals_inbox_idx ON referrals (to_doctor_id, id);
CREATE INDEX referrals_inbox_status_idx ON referrals (to_doctor_id, status, id);
CREATE INDEX referrals_outbox_idx ON referrals (from_doctor_id, id);
CREATE INDEX referrals_outbox_status_idx ON referrals (from_doctor_id, status, id);
CREATE INDEX referrals_patient_idx ON referrals (patient_id);

-- The referral whose acceptance opened a membership; one membership per referral at most.
ALTER TABLE care_team_members ADD COLUMN referral_id BLOB REFERENCES referrals (id);
CREATE UNIQUE INDEX care_team_members_referral_key ON care_team_members (referral_id)
    WHERE referral_id IS NOT NULL;

-- The last notification id given to each user. A change bumps its recipients' counters inside
-- its own transaction (SQLite writers are serialised by BEGIN IMMEDIATE), so ids are given
-- in commit order and a rolled-back change gives its ids back.
CREATE TABLE notification_counters (
    user_id BLOB    NOT NULL PRIMARY KEY REFERENCES users (id),
    last_id INTEGER NOT NULL CHECK (last_id > 0)
) STRICT;

CREATE TABLE notifications (
    recipient_id BLOB    NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    id           INTEGER NOT NULL CHECK (id > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('referral.received', 'referral.accepted',
        'referral.declined', 'referral.completed', 'referral.cancelled', 'care_team.added',
        'emergency_access.used')),
    created_at   INTEGER NOT NULL,
    read_at      INTEGER,
    -- JSON: {title, referral_id?, patient_id?, actor_id?, emergency_access_id?}; ids and a
    -- title only, never clinical text.
    data         TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (recipient_id, id)
) STRICT, WITHOUT ROWID;

-- Unread counting and "mark all read" touch only the unread.
CREATE INDEX notifications_unread_idx ON notifications (recipient_id, id) WHERE read_at IS NULL;
