-- Prescriptions: written once, never edited; a prescription ends (completed, stopped,
-- replaced, expired) by changing its status, and a replacement points at what it replaces.

CREATE TABLE prescriptions (
    id                  BLOB    NOT NULL PRIMARY KEY,
    patient_id          BLOB    NOT NULL REFERENCES patients (id),
    prescribed_by       BLOB    NOT NULL REFERENCES users (id),
    medication          TEXT    NOT NULL,
    dose                TEXT    NOT NULL,
    route               TEXT    NOT NULL CHECK (route IN ('oral', 'sublingual', 'buccal',
        'intravenous', 'intramuscular', 'subcutaneous', 'topical', 'transdermal', 'inhaled',
        'nasal', 'ophthalmic', 'otic', 'rectal', 'vaginal')),
    frequency           TEXT    NOT NULL,
    duration_days       INTEGER CHECK (duration_days BETWEEN 1 AND 365),
    quantity            INTEGER CHECK (quantity BETWEEN 1 AND 10000),
    refills             INTEGER NOT NULL CHECK (refills BETWEEN 0 AND 12),
    instructions        TEXT    NOT NULL,
    -- Why it was written despite the allergies it matched, and those matches as a JSON array
    -- of {substance, reason, class?}, in infra's own shape.
    override_reason     TEXT,
    override_matches    TEXT    CHECK (json_valid(override_matches)),
    replaces            BLOB    REFERENCES prescriptions (id),
    status              TEXT    NOT NULL CHECK (status IN ('active', 'completed', 'stopped',
        'expired')),
    stop_reason         TEXT,
    replaced_by         BLOB    REFERENCES prescriptions (id),
    ended_by            BLOB    REFERENCES users (id),
    ended_at            INTEGER,
    created_at          INTEGER NOT NULL,
    CHECK ((override_reason IS NULL) = (override_matches IS NULL)),
    CHECK ((status = 'active') = (ended_at IS NULL)),
    CHECK ((status = 'stopped') = (stop_reason IS NOT NULL)),
    CHECK (replaced_by IS NULL OR status = 'stopped')
) STRICT;

CREATE INDEX prescriptions_patient_idx ON prescriptions (patient_id, id);
-- One replacement per prescription.
CREATE UNIQUE INDEX prescriptions_replaces_idx ON prescriptions (replaces)
    WHERE replaces IS NOT NULL;
