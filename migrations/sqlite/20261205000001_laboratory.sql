-- The laboratory: the test catalogue, orders with their results, files' descriptions (their
-- bytes are in the file store, under keys made of ids), and ECG analyses.

-- analytes: a JSON array of {code, name, unit, range: {low, high, critical_low,
-- critical_high}}, in infra's own shape (see infra/src/lab).
CREATE TABLE lab_tests (
    code       TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('panel', 'ecg', 'imaging', 'other')),
    analytes   TEXT    NOT NULL CHECK (json_valid(analytes)),
    created_at INTEGER NOT NULL
) STRICT;

-- A fresh install's catalogue; administrators add to it. Ranges are adult ones, in SI units
-- where the clinic uses them.
INSERT INTO lab_tests (code, name, kind, analytes, created_at) VALUES
    ('ecg', 'Electrocardiogram', 'ecg', '[]', 0),
    ('cbc', 'Complete blood count', 'panel', '[{"code":"hemoglobin","name":"Haemoglobin","unit":"g/dL","range":{"low":12.0,"high":17.5,"critical_low":7.0,"critical_high":20.0}},{"code":"wbc","name":"White blood cells","unit":"10^9/L","range":{"low":4.0,"high":11.0,"critical_low":2.0,"critical_high":30.0}},{"code":"platelets","name":"Platelets","unit":"10^9/L","range":{"low":150.0,"high":400.0,"critical_low":50.0,"critical_high":1000.0}}]', 0),
    ('lipid_panel', 'Lipid panel', 'panel', '[{"code":"total_cholesterol","name":"Total cholesterol","unit":"mmol/L","range":{"low":null,"high":5.2,"critical_low":null,"critical_high":null}},{"code":"ldl","name":"LDL cholesterol","unit":"mmol/L","range":{"low":null,"high":3.0,"critical_low":null,"critical_high":null}},{"code":"hdl","name":"HDL cholesterol","unit":"mmol/L","range":{"low":1.0,"high":null,"critical_low":null,"critical_high":null}},{"code":"triglycerides","name":"Triglycerides","unit":"mmol/L","range":{"low":null,"high":1.7,"critical_low":null,"critical_high":11.3}}]', 0),
    ('hba1c', 'Glycated haemoglobin (HbA1c)', 'panel', '[{"code":"hba1c","name":"HbA1c","unit":"%","range":{"low":4.0,"high":5.6,"critical_low":null,"critical_high":null}}]', 0),
    ('potassium', 'Potassium', 'panel', '[{"code":"potassium","name":"Potassium","unit":"mmol/L","range":{"low":3.5,"high":5.1,"critical_low":2.5,"critical_high":6.5}}]', 0),
    ('troponin', 'High-sensitivity troponin T', 'panel', '[{"code":"troponin_t","name":"Troponin T","unit":"ng/L","range":{"low":null,"high":14.0,"critical_low":null,"critical_high":52.0}}]', 0),
    ('chest_xray', 'Chest X-ray', 'imaging', '[]', 0);

CREATE TABLE lab_orders (
    id                BLOB    NOT NULL PRIMARY KEY,
    patient_id        BLOB    NOT NULL REFERENCES patients (id),
    ordered_by        BLOB    NOT NULL REFERENCES users (id),
    -- A JSON array of test codes.
    tests             TEXT    NOT NULL CHECK (json_valid(tests)),
    priority          TEXT    NOT NULL CHECK (priority IN ('routine', 'urgent')),
    clinical_question TEXT    NOT NULL,
    status            TEXT    NOT NULL CHECK (status IN ('ordered', 'scheduled', 'collected',
        'resulted', 'released', 'cancelled')),
    scheduled_for     INTEGER,
    collected_at      INTEGER,
    -- A JSON array of results, in infra's own shape.
    results           TEXT    NOT NULL CHECK (json_valid(results)),
    findings          TEXT,
    resulted_by       BLOB    REFERENCES users (id),
    resulted_at       INTEGER,
    released_by       BLOB    REFERENCES users (id),
    released_at       INTEGER,
    cancelled_at      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    CHECK ((status IN ('resulted', 'released')) = (resulted_at IS NOT NULL)),
    CHECK ((status = 'released') = (released_at IS NOT NULL)),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
) STRICT;

CREATE INDEX lab_orders_patient_idx ON lab_orders (patient_id, id);
CREATE INDEX lab_orders_orderer_idx ON lab_orders (ordered_by, id);
CREATE INDEX lab_orders_status_idx ON lab_orders (status, id);

CREATE TABLE lab_files (
    id               BLOB    NOT NULL PRIMARY KEY,
    order_id         BLOB    NOT NULL REFERENCES lab_orders (id),
    -- The name the uploader gave: a label, never a path.
    name             TEXT    NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('pdf', 'image', 'ecg_header',
        'ecg_signal', 'ecg_csv')),
    content_type     TEXT    NOT NULL,
    size             INTEGER NOT NULL CHECK (size >= 0),
    sha256           TEXT    NOT NULL CHECK (length(sha256) = 64),
    sampling_rate_hz REAL,
    -- The other file of a WFDB pair (header and signal).
    pair_id          BLOB,
    uploaded_by      BLOB    NOT NULL REFERENCES users (id),
    uploaded_at      INTEGER NOT NULL
) STRICT;

CREATE INDEX lab_files_order_idx ON lab_files (order_id, id);

-- The analysis of an order's latest recording: the analysis and a trace excerpt as JSON, or
-- why it failed.
CREATE TABLE ecg_analyses (
    order_id    BLOB    NOT NULL PRIMARY KEY REFERENCES lab_orders (id),
    file_id     BLOB    NOT NULL REFERENCES lab_files (id),
    analyzed_at INTEGER NOT NULL,
    analysis    TEXT    CHECK (analysis IS NULL OR json_valid(analysis)),
    trace       TEXT    CHECK (trace IS NULL OR json_valid(trace)),
    failure     TEXT,
    CHECK ((analysis IS NULL) = (failure IS NOT NULL)),
    CHECK ((analysis IS NULL) = (trace IS NULL))
) STRICT;

-- New notification kinds: the laboratory's. SQLite cannot change a CHECK in place: the table
-- is rebuilt (nothing references it) with the same columns and rows.
CREATE TABLE notifications_new (
    recipient_id BLOB    NOT NULL REFERENCES users (id),
    -- 1, 2, 3, ... per recipient, without gaps.
    id           INTEGER NOT NULL CHECK (id > 0),
    kind         TEXT    NOT NULL CHECK (kind IN ('referral.received', 'referral.accepted',
        'referral.declined', 'referral.completed', 'referral.cancelled', 'care_team.added',
        'emergency_access.used', 'appointment.booked', 'appointment.cancelled',
        'appointment.rescheduled', 'appointment.reminder', 'referral.escalated',
        'lab.resulted', 'lab.critical', 'lab.critical_escalated', 'lab.released',
        'lab.ecg_alert')),
    created_at   INTEGER NOT NULL,
    read_at      INTEGER,
    -- JSON: {title, referral_id?, patient_id?, actor_id?, emergency_access_id?,
    -- appointment_id?, lab_order_id?, urgent?}; ids and a title only, never clinical text.
    data         TEXT    NOT NULL CHECK (json_valid(data)),
    PRIMARY KEY (recipient_id, id)
) STRICT, WITHOUT ROWID;

INSERT INTO notifications_new (recipient_id, id, kind, created_at, read_at, data)
    SELECT recipient_id, id, kind, created_at, read_at, data FROM notifications;
DROP TABLE notifications;
ALTER TABLE notifications_new RENAME TO notifications;

CREATE INDEX notifications_unread_idx ON notifications (recipient_id, id) WHERE read_at IS NULL;
