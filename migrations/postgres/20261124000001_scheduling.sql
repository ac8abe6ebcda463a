-- Scheduling: doctors' profiles, weekly availability and time off; appointments, which the
-- database itself never lets overlap for one doctor or one patient, and their history; the
-- care-team memberships bookings open and the visit note written for an appointment.

-- GiST operator classes for plain equality (`doctor_id WITH =`) in the exclusion constraints.
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- What a doctor shows in the directory. No row: the defaults (no bio, 30-minute appointments).
CREATE TABLE doctor_profiles (
    doctor_id           UUID        NOT NULL PRIMARY KEY REFERENCES users (id),
    bio                 TEXT,
    appointment_minutes INTEGER     NOT NULL CHECK (appointment_minutes BETWEEN 5 AND 480),
    updated_at          TIMESTAMPTZ NOT NULL
);

-- A doctor's specializations in the order given; `name_key` is the name lowercased (by the
-- domain), what the directory matches on.
CREATE TABLE doctor_specializations (
    doctor_id UUID    NOT NULL REFERENCES users (id),
    position  INTEGER NOT NULL CHECK (position >= 0),
    name      TEXT    NOT NULL,
    name_key  TEXT    NOT NULL,
    PRIMARY KEY (doctor_id, position),
    CONSTRAINT doctor_specializations_name_key UNIQUE (doctor_id, name_key)
);

CREATE INDEX doctor_specializations_key_idx ON doctor_specializations (name_key, doctor_id);

-- One row per doctor whose schedule (profile, rules, time off) ever changed. Every change bumps
-- `version` holding the row's lock to commit; a booking reads it `FOR SHARE` (bookings do not
-- block each other, a schedule change waits for them and they for it) and is stored only if
-- the version it checked availability against is still current. No row: version 0.
CREATE TABLE doctor_schedules (
    doctor_id  UUID        NOT NULL PRIMARY KEY REFERENCES users (id),
    version    BIGINT      NOT NULL CHECK (version >= 0),
    updated_at TIMESTAMPTZ NOT NULL
);

-- Weekly working hours in the clinic's time zone: weekday 1 (Monday) to 7 (Sunday), minutes
-- after local midnight. Two rules of one day may touch but not overlap (checked by the domain).
CREATE TABLE availability_rules (
    doctor_id    UUID     NOT NULL REFERENCES users (id),
    weekday      SMALLINT NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    start_minute SMALLINT NOT NULL CHECK (start_minute >= 0),
    end_minute   SMALLINT NOT NULL CHECK (end_minute <= 1440),
    PRIMARY KEY (doctor_id, weekday, start_minute),
    CHECK (start_minute < end_minute)
);

CREATE TABLE time_off (
    id         UUID        NOT NULL PRIMARY KEY,
    doctor_id  UUID        NOT NULL REFERENCES users (id),
    start_at   TIMESTAMPTZ NOT NULL,
    end_at     TIMESTAMPTZ NOT NULL,
    reason     TEXT,
    created_by UUID        NOT NULL REFERENCES users (id),
    created_at TIMESTAMPTZ NOT NULL,
    CHECK (start_at < end_at)
);

CREATE INDEX time_off_doctor_idx ON time_off (doctor_id, end_at);

-- [start_at, end_at) half-open. Only booked, checked_in and in_progress appointments hold their
-- time: the exclusion constraints refuse two of those overlapping for one doctor or one
-- patient, whoever writes. Of two concurrent conflicting inserts the second waits for the
-- first to commit, then fails with SQLSTATE 23P01.
CREATE TABLE appointments (
    id            UUID        NOT NULL PRIMARY KEY,
    doctor_id     UUID        NOT NULL REFERENCES users (id),
    patient_id    UUID        NOT NULL REFERENCES patients (id),
    start_at      TIMESTAMPTZ NOT NULL,
    end_at        TIMESTAMPTZ NOT NULL,
    reason        TEXT        NOT NULL,
    status        TEXT        NOT NULL CHECK (status IN ('booked', 'checked_in', 'in_progress',
        'completed', 'cancelled', 'no_show')),
    cancel_reason TEXT,
    created_by    UUID        NOT NULL REFERENCES users (id),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT appointments_time_check CHECK (start_at < end_at),
    -- A cancelled appointment has its reason; no other has one.
    CONSTRAINT appointments_cancel_reason_check
        CHECK ((cancel_reason IS NOT NULL) = (status = 'cancelled')),
    CHECK (updated_at >= created_at),
    CONSTRAINT appointments_doctor_no_overlap EXCLUDE USING gist (
        doctor_id WITH =,
        tstzrange(start_at, end_at, '[)') WITH &&
    ) WHERE (status IN ('booked', 'checked_in', 'in_progress')),
    CONSTRAINT appointments_patient_no_overlap EXCLUDE USING gist (
        patient_id WITH =,
        tstzrange(start_at, end_at, '[)') WITH &&
    ) WHERE (status IN ('booked', 'checked_in', 'in_progress'))
);

CREATE INDEX appointments_doctor_idx ON appointments (doctor_id, start_at);
CREATE INDEX appointments_patient_idx ON appointments (patient_id, start_at);
CREATE INDEX appointments_start_idx ON appointments (start_at, id);

-- Every change of an appointment, oldest first; append-only. `reason` is the cancellation's.
CREATE TABLE appointment_history (
    seq            BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    appointment_id UUID        NOT NULL REFERENCES appointments (id),
    at             TIMESTAMPTZ NOT NULL,
    actor_id       UUID        NOT NULL REFERENCES users (id),
    change         TEXT        NOT NULL CHECK (change IN ('booked', 'status', 'rescheduled')),
    status         TEXT        NOT NULL CHECK (status IN ('booked', 'checked_in', 'in_progress',
        'completed', 'cancelled', 'no_show')),
    start_at       TIMESTAMPTZ NOT NULL,
    end_at         TIMESTAMPTZ NOT NULL,
    reason         TEXT
);

CREATE INDEX appointment_history_appointment_idx ON appointment_history (appointment_id, seq);

CREATE TRIGGER appointment_history_append_only BEFORE UPDATE OR DELETE ON appointment_history
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

-- The appointment whose booking opened a membership (one per appointment). Such memberships
-- end with their appointment (plus 30 days) and stand beside any other membership of the
-- doctor: the "one open membership" rule now covers only those opened by hand or by referral.
ALTER TABLE care_team_members ADD COLUMN appointment_id UUID REFERENCES appointments (id);
CREATE UNIQUE INDEX care_team_members_appointment_key ON care_team_members (appointment_id)
    WHERE appointment_id IS NOT NULL;
DROP INDEX care_team_members_open_key;
CREATE UNIQUE INDEX care_team_members_open_key ON care_team_members (patient_id, doctor_id)
    WHERE ended_at IS NULL AND appointment_id IS NULL;

-- The appointment a visit note was written for: at most one note per appointment.
ALTER TABLE clinical_notes ADD COLUMN appointment_id UUID REFERENCES appointments (id);
CREATE UNIQUE INDEX clinical_notes_appointment_key ON clinical_notes (appointment_id)
    WHERE appointment_id IS NOT NULL;

-- New notification kinds.
ALTER TABLE notifications DROP CONSTRAINT notifications_kind_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_kind_check CHECK (kind IN (
    'referral.received', 'referral.accepted', 'referral.declined', 'referral.completed',
    'referral.cancelled', 'care_team.added', 'emergency_access.used', 'appointment.booked',
    'appointment.cancelled', 'appointment.rescheduled'));
