-- Scheduling: doctors' profiles, weekly availability and time off; appointments, which the
-- database itself never lets overlap for one doctor or one patient, and their history; the
-- care-team memberships bookings open and the visit note written for an appointment.
-- Times are INTEGER microseconds since the Unix epoch, UUIDs 16-byte BLOBs.

-- What a doctor shows in the directory. No row: the defaults (no bio, 30-minute appointments).
CREATE TABLE doctor_profiles (
    doctor_id           BLOB    NOT NULL PRIMARY KEY REFERENCES users (id),
    bio                 TEXT,
    appointment_minutes INTEGER NOT NULL CHECK (appointment_minutes BETWEEN 5 AND 480),
    updated_at          INTEGER NOT NULL
) STRICT;

-- A doctor's specializations in the order given; `name_key` is the name lowercased (by the
-- domain, which knows Unicode case), what the directory matches on.
CREATE TABLE doctor_specializations (
    doctor_id BLOB    NOT NULL REFERENCES users (id),
    position  INTEGER NOT NULL CHECK (position >= 0),
    name      TEXT    NOT NULL,
    name_key  TEXT    NOT NULL,
    PRIMARY KEY (doctor_id, position),
    CONSTRAINT doctor_specializations_name_key UNIQUE (doctor_id, name_key)
) STRICT;

CREATE INDEX doctor_specializations_key_idx ON doctor_specializations (name_key, doctor_id);

-- One row per doctor whose schedule (profile, rules, time off) ever changed. Every change bumps
-- `version`, and a booking is stored only if the version it checked availability against is
-- still current; SQLite serialises the two as writers (BEGIN IMMEDIATE). No row: version 0.
CREATE TABLE doctor_schedules (
    doctor_id  BLOB    NOT NULL PRIMARY KEY REFERENCES users (id),
    version    INTEGER NOT NULL CHECK (version >= 0),
    updated_at INTEGER NOT NULL
) STRICT;

-- Weekly working hours in the clinic's time zone: weekday 1 (Monday) to 7 (Sunday), minutes
-- after local midnight. Two rules of one day may touch but not overlap (checked by the domain).
CREATE TABLE availability_rules (
    doctor_id    BLOB    NOT NULL REFERENCES users (id),
    weekday      INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute INTEGER NOT NULL CHECK (start_minute >= 0),
    end_minute   INTEGER NOT NULL CHECK (end_minute <= 1440),
    PRIMARY KEY (doctor_id, weekday, start_minute),
    CHECK (start_minute < end_minute)
) STRICT;

CREATE TABLE time_off (
    id         BLOB    NOT NULL PRIMARY KEY,
    doctor_id  BLOB    NOT NULL REFERENCES users (id),
    start_at   INTEGER NOT NULL,
    end_at     INTEGER NOT NULL,
    reason     TEXT,
    created_by BLOB    NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    CHECK (start_at < end_at)
) STRICT;

CREATE INDEX time_off_doctor_idx ON time_off (doctor_id, end_at);

-- [start_at, end_at) half-open. Only booked, checked_in and in_progress appointments hold their
-- time; the triggers below refuse any write that would make two of those overlap for one
-- doctor or one patient.
CREATE TABLE appointments (
    id            BLOB    NOT NULL PRIMARY KEY,
    doctor_id     BLOB    NOT NULL REFERENCES users (id),
    patient_id    BLOB    NOT NULL REFERENCES patients (id),
    start_at      INTEGER NOT NULL,
    end_at        INTEGER NOT NULL,
    reason        TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('booked', 'checked_in', 'in_progress',
        'completed', 'cancelled', 'no_show')),
    cancel_reason TEXT,
    created_by    BLOB    NOT NULL REFERENCES users (id),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    CONSTRAINT appointments_time_check CHECK (start_at < end_at),
    -- A cancelled appointment has its reason; no other has one.
    CONSTRAINT appointments_cancel_reason_check
        CHECK ((cancel_reason IS NOT NULL) = (status = 'cancelled')),
    CHECK (updated_at >= created_at)
) STRICT;

CREATE INDEX appointments_doctor_idx ON appointments (doctor_id, start_at);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, start_at);
CREATE INDEX appointments_start_idx ON appointments (start_at, id);

-- The database guarantee against double booking, whoever writes: SQLite has no exclusion
-- constraints, so a trigger looks for an active appointment of the same doctor or patient
-- overlapping the new or changed one. Writers are serialised, so no two can pass it at once.
CREATE TRIGGER appointments_no_overlap_insert BEFORE INSERT ON appointments
WHEN NEW.status IN ('booked', 'checked_in', 'in_progress')
BEGIN
    SELECT RAISE(ABORT, 'appointment overlaps')
    WHERE EXISTS (SELECT 1 FROM appointments a
                  WHERE a.doctor_id = NEW.doctor_id
                  AND a.status IN ('booked', 'checked_in', 'in_progress')
                  AND a.start_at < NEW.end_at AND a.end_at > NEW.start_at)
       OR EXISTS (SELECT 1 FROM appointments a
                  WHERE a.patient_id = NEW.patient_id
                  AND a.status IN ('booked', 'checked_in', 'in_progress')
                  AND a.start_at < NEW.end_at AND a.end_at > NEW.start_at);
END;

CREATE TRIGGER appointments_no_overlap_update
BEFORE UPDATE OF doctor_id, patient_id, start_at, end_at, status ON appointments
WHEN NEW.status IN ('booked', 'checked_in', 'in_progress')
BEGIN
    SELECT RAISE(ABORT, 'appointment overlaps')
    WHERE EXISTS (SELECT 1 FROM appointments a
                  WHERE a.doctor_id = NEW.doctor_id AND a.id <> OLD.id
                  AND a.status IN ('booked', 'checked_in', 'in_progress')
                  AND a.start_at < NEW.end_at AND a.end_at > NEW.start_at)
       OR EXISTS (SELECT 1 FROM appointments a
                  WHERE a.patient_id = NEW.patient_id AND a.id <> OLD.id
                  AND a.status IN ('booked', 'checked_in', 'in_progress')
                  AND a.start_at < NEW.end_at AND a.end_at > NEW.start_at);
END;

-- Every change of an appointment, oldest first; append-only. `reason` is the cancellation's.
CREATE TABLE appointment_history (
    seq            INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    appointment_id BLOB    NOT NULL REFERENCES appointments (id),
    at             INTEGER NOT NULL,
    actor_id       BLOB    NOT NULL REFERENCES users (id),
    change         TEXT    NOT NULL CHECK (change IN ('booked', 'status', 'rescheduled')),
    status         TEXT    NOT NULL CHECK (status IN ('booked', 'checked_in', 'in_progress',
        'completed', 'cancelled', 'no_show')),
    start_at       INTEGER NOT NULL,
    end_at         INTEGER NOT NULL,
    reason         TEXT
) STRICT;

CREATE INDEX appointment_history_appointment_idx ON appointment_history (appointment_id, seq);

CREATE TRIGGER appointment_history_no_update BEFORE UPDATE ON appointment_history
BEGIN
    SELECT RAISE(ABORT, 'appointment_history is append-only');
END;
CREATE TRIGGER appointment_history_no_delete BEFORE DELETE ON appointment_history
BEGIN
    SELECT RAISE(ABORT, 'appointment_history is append-only');
END;

-- The appointment whose booking opened a membership (one per appointment). Such memberships
-- end with their appointment (plus 30 days) and stand beside any other membership of the
-- doctor: the "one open membership" rule now covers only those opened by hand or by referral.
ALTER TABLE care_team_members ADD COLUMN appointment_id BLOB REFERENCES appointments (id);
CREATE UNIQUE INDEX care_team_members_appointment_key ON care_team_members (appointment_id)
    WHERE appointment_id IS NOT NULL;
DROP INDEX care_team_members_open_key;
CREATE UNIQUE INDEX care_team_members_open_key ON care_team_members (patient_id, doctor_id)
    WHERE ended_at IS NULL AND appointment_id IS NULL;

-- The appointment a visit note was written for: at most one note per appointment.
ALTER TABLE clinical_notes ADD COLUMN appointment_id BLOB REFERENCES appointments (id);
CREATE UNIQUE INDEX clinical_notes_appointment_key ON clinical_notes (appointment_id)
    WHERE appointment_id IS NOT NULL;

-- New notification kinds. SQLite cannot change a CHECK in place: the table is rebuilt (nothing
-- references it) with the same columns and rows.
CREATE TABLE notifications_new (
    recipient_id BLOB    NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    id           INTEGER NOT NULL CHECK (id > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('referral.received', 'referral.accepted',
        'referral.declined', 'referral.completed', 'referral.cancelled', 'care_team.added',
        'emergency_access.used', 'appointment.booked', 'appointment.cancelled',
        'appointment.rescheduled')),
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
