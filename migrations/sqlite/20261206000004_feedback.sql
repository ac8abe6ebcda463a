-- Feedback: one rating (1 to 5) per completed appointment, by its patient, with an optional
-- comment an administrator may hide (with a reason).
CREATE TABLE appointment_feedback (
    appointment_id BLOB    NOT NULL PRIMARY KEY REFERENCES appointments (id),
    doctor_id      BLOB    NOT NULL REFERENCES users (id),
    patient_id     BLOB    NOT NULL REFERENCES patients (id),
    rating         INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment        TEXT,
    created_at     INTEGER NOT NULL,
    hidden_reason  TEXT,
    hidden_by      BLOB    REFERENCES users (id),
    hidden_at      INTEGER,
    CHECK ((hidden_reason IS NULL) = (hidden_at IS NULL))
) STRICT;

CREATE INDEX appointment_feedback_doctor_idx ON appointment_feedback (doctor_id, created_at);
