-- Restores: each is a one-off job of kind 'restore' (no schedule, params = the
-- request) whose runs the scheduler executes like any other, so progress, events,
-- cancel, leases and takeover are the scheduler's. This table holds what the API
-- shows of a restore beyond its run: who asked, the request as resolved (the
-- selection pinned to an instant), and where the walk stands; restore_items one
-- row per item handled, so a resumed or retried run skips what is done and an
-- operator can page through every outcome.
CREATE TABLE restores (
    id            uuid PRIMARY KEY,
    job_id        uuid NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    request       jsonb NOT NULL,              -- as resolved: tenant id, selection.at an instant
    requested_by  text,                        -- the API token's name, or 'cli'
    created_at    timestamptz NOT NULL DEFAULT now(),
    target_root   text,                        -- the 'Restored <timestamp>' folder name, fixed at creation
    position      jsonb                        -- the selection walk's checkpoint (a scope's start)
);
CREATE INDEX restores_list ON restores (created_at DESC, id DESC);
CREATE INDEX restores_tenant ON restores (tenant_id, created_at DESC);

CREATE TABLE restore_items (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    restore_id     uuid NOT NULL REFERENCES restores (id) ON DELETE CASCADE,
    version_id     bigint NOT NULL,           -- the item version restored (no reference: prune may not remove it, and history stays readable)
    item_id        bigint NOT NULL,
    category       text NOT NULL,
    kind           text NOT NULL,
    name           text NOT NULL,
    path           text,                      -- the container path at the instant
    outcome        text NOT NULL CHECK (outcome IN ('restored', 'replaced', 'copied', 'skipped', 'failed',
                                              'would_restore', 'would_replace', 'would_copy')),  -- would_*: dry runs
    detail         text,                      -- why skipped, what failed ("exists unchanged", "429 ...")
    code           text,                      -- Graph's error code of a failure
    target_id      text,                      -- the Graph id written
    at             timestamptz NOT NULL DEFAULT now(),
    UNIQUE (restore_id, version_id)
);
