-- Job runs: each scheduled tick is claimed once, whatever number of daemons or cron entries
-- fire it (UNIQUE (job, scheduled_at)); runs of one job never overlap (one `running` row per
-- job). Manual runs have no scheduled tick (NULL) and only take the overlap guard.
CREATE TABLE job_runs (
    id           BIGSERIAL PRIMARY KEY,
    job          TEXT NOT NULL,
    scheduled_at TIMESTAMPTZ,
    trigger      TEXT NOT NULL CHECK (trigger IN ('schedule', 'catch_up', 'cron', 'manual')),
    clock        TIMESTAMPTZ NOT NULL,
    owner        TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    started_at   TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    counts       TEXT NOT NULL DEFAULT '{}',
    failures     INTEGER NOT NULL DEFAULT 0,
    summary      TEXT,
    error        TEXT,
    UNIQUE (job, scheduled_at)
);
CREATE UNIQUE INDEX job_runs_one_running ON job_runs (job) WHERE status = 'running';
CREATE INDEX job_runs_job ON job_runs (job, id);

-- Scale-out (PostgreSQL): a run's accounts in ranges that any process joining the run takes
-- with FOR UPDATE SKIP LOCKED.
CREATE TABLE job_run_batches (
    run_id        BIGINT NOT NULL REFERENCES job_runs (id),
    first_account TEXT NOT NULL,
    last_account  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'done')),
    worker        TEXT,
    claimed_at    TIMESTAMPTZ,
    counts        TEXT,
    PRIMARY KEY (run_id, first_account)
);
