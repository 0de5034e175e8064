-- The scheduler: jobs (what to run and when), runs (the queue and its history,
-- claimed by workers under a lease), and each run's bounded event log.
CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    kind            text NOT NULL,
    tenant_id       uuid,
    params          jsonb NOT NULL DEFAULT '{}',
    schedule        text,                      -- 5-field cron; NULL: manual only
    timezone        text NOT NULL DEFAULT 'UTC',
    enabled         boolean NOT NULL DEFAULT true,
    max_attempts    integer NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    last_fired_for  timestamptz,               -- the latest schedule slot turned into a run
    next_fire_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_next_fire ON jobs (next_fire_at) WHERE enabled AND schedule IS NOT NULL;

CREATE TABLE runs (
    id                uuid PRIMARY KEY,
    job_id            uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    kind              text NOT NULL,
    trigger           text NOT NULL CHECK (trigger IN ('schedule', 'manual', 'retry')),
    scheduled_for     timestamptz,             -- the slot, for scheduled runs
    state             text NOT NULL DEFAULT 'queued'
                      CHECK (state IN ('queued', 'running', 'succeeded', 'partial', 'failed', 'cancelled')),
    attempt           integer NOT NULL DEFAULT 1,
    not_before        timestamptz NOT NULL DEFAULT now(),
    worker_id         uuid,
    lease_expires_at  timestamptz,
    takeovers         integer NOT NULL DEFAULT 0,
    cancel_requested  boolean NOT NULL DEFAULT false,
    queued_at         timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    progress          jsonb NOT NULL DEFAULT '{}',
    error             text,
    UNIQUE (job_id, scheduled_for)             -- one run per schedule slot, whatever the number of daemons
);
CREATE INDEX runs_queue ON runs (not_before, queued_at) WHERE state = 'queued';
CREATE INDEX runs_leases ON runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX runs_job ON runs (job_id, queued_at DESC);
-- Never two runs of one job at once.
CREATE UNIQUE INDEX runs_one_running_per_job ON runs (job_id) WHERE state = 'running';

CREATE TABLE run_events (
    id       bigserial PRIMARY KEY,
    run_id   uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    at       timestamptz NOT NULL DEFAULT now(),
    level    text NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message  text NOT NULL
);
CREATE INDEX run_events_run ON run_events (run_id, id);
