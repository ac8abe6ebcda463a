-- The job queue: work that happens later, stored as rows so that a job is written in the same
-- transaction as the change that causes it. Workers on any number of instances claim due jobs
-- with FOR UPDATE SKIP LOCKED, each for a lease. See crates/domain/src/jobs.

CREATE TABLE jobs (
    id           UUID        NOT NULL PRIMARY KEY,
    kind         TEXT        NOT NULL,
    -- The task's arguments: ids and figures, never a patient's name or clinical text.
    args         JSONB       NOT NULL,
    state        TEXT        NOT NULL CHECK (state IN ('scheduled', 'running', 'succeeded', 'failed', 'dead')),
    run_at       TIMESTAMPTZ NOT NULL,
    attempts     INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts INTEGER     NOT NULL CHECK (max_attempts >= 1),
    unique_key   TEXT,
    last_error   TEXT,
    -- Set while running: the claim's lease, until when it holds, and who holds it.
    lease_id     UUID,
    locked_until TIMESTAMPTZ,
    worker       TEXT,
    created_at   TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    CONSTRAINT jobs_running_has_lease
        CHECK ((state = 'running') = (lease_id IS NOT NULL AND locked_until IS NOT NULL))
);

-- A unique key holds only while its job is pending: once it succeeded or died, the same work
-- may be asked for again.
CREATE UNIQUE INDEX jobs_unique_pending_idx ON jobs (unique_key)
    WHERE state IN ('scheduled', 'running', 'failed');
-- What a claim scans: due jobs by run_at, and running jobs by lease expiry.
CREATE INDEX jobs_due_idx ON jobs (run_at) WHERE state IN ('scheduled', 'failed');
CREATE INDEX jobs_leases_idx ON jobs (locked_until) WHERE state = 'running';
-- The administrators' listing, newest first, by state and kind.
CREATE INDEX jobs_state_kind_idx ON jobs (state, kind, id);
CREATE INDEX jobs_kind_idx ON jobs (kind, id);

-- Each occurrence of a recurring schedule that was turned into a job, by whichever instance
-- came first: the primary key makes every other instance's attempt a no-op, whatever became of
-- the job. Purged with finished jobs.
CREATE TABLE recurring_occurrences (
    schedule   TEXT        NOT NULL,
    occurrence TIMESTAMPTZ NOT NULL,
    job_id     UUID        NOT NULL,
    PRIMARY KEY (schedule, occurrence)
);
