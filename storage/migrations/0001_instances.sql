-- Daemons that share this database. Each daemon registers itself at start-up and
-- refreshes last_seen while it runs; the scheduler's leases name these ids.
CREATE TABLE instances (
    id          uuid PRIMARY KEY,
    hostname    text NOT NULL,
    pid         integer NOT NULL,
    version     text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now(),
    stopped_at  timestamptz
);
CREATE INDEX instances_last_seen ON instances (last_seen);
