-- Prescriptions: written once, never edited; a prescription ends (completed, stopped,
-- replaced, expired) by changing its status, and a replacement points at what it replaces.

CREATE TABLE prescriptions (
    id                  UUID        NOT NULL PRIMARY KEY,
    patient_id          UUID        NOT NULL REFERENCES patients (id),
    prescribed_by       UUID        NOT NULL REFERENCES users (id),
    medication          TEXT        NOT NULL,
    dose                TEXT        NOT NULL,
    route               TEXT        NOT NULL CHECK (route IN ('oral', 'sublingual', 'buccal',
        'intravenous', 'intramuscular', 'subcutaneous', 'topical', 'transdermal', 'inhaled',
        'nasal', 'ophthalmic', 'otic', 'rectal', 'vaginal')),
    frequency           TEXT        NOT NULL,
    duration_days       BIGINT      CHECK (duration_days BETWEEN 1 AND 365),
    quantity            BIGINT      CHECK (quantity BETWEEN 1 AND 10000),
    refills             BIGINT      NOT NULL CHECK (refills BETWEEN 0 AND 12),
    instructions        TEXT        NOT NULL,
    -- Why it was written despite the allergies it matched, and those matches as a JSON array
    -- of {substance, reason, class?}, in infra's own shape.
    override_reason     TEXT,
    override_matches    JSONB,
    replaces            UUID        REFERENCES prescriptions (id),
    status              TEXT        NOT NULL CHECK (status IN ('active', 'completed', 'stopped',
        'expired')),
    stop_reason         TEXT,
    replaced_by         UUID        REFERENCES prescriptions (id),
    ended_by            UUID        REFERENCES users (id),
    ended_at            TIMESTAMPTZ,
    created_at          TIMESTAMPTZ NOT NULL,
    CHECK ((override_reason IS NULL) = (override_matches IS NULL)),
    CHECK ((status = 'active') = (ended_at IS NULL)),
    CHECK ((status = 'stopped') = (stop_reason IS NOT NULL)),
    CHECK (replaced_by IS NULL OR status = 'stopped')
);

CREATE INDEX prescriptions_patient_idx ON prescriptions (patient_id, id);
-- One replacement per prescription.
CREATE UNIQUE INDEX prescriptions_replaces_idx ON prescriptions (replaces)
    WHERE replaces IS NOT NULL;
