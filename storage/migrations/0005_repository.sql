-- The repository's blob index: which pack holds each blob, and where. Rows are
-- written only after their pack is durable in the object store, so the index never
-- names a pack the store lacks; the packs' own tables are enough to recreate both
-- tables (m365vaultd repo rebuild-index).
CREATE TABLE repo_packs (
    id          bytea PRIMARY KEY CHECK (length(id) = 32),
    size        bigint NOT NULL CHECK (size >= 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Two-phase prune: a pack none of whose blobs is referenced is marked doomed
    -- (phase 1); a later prune deletes it once the grace period has passed and it
    -- is still unreferenced, or makes it live again when something references it.
    state       text NOT NULL DEFAULT 'live' CHECK (state IN ('live', 'doomed')),
    doomed_at   timestamptz,
    CHECK ((state = 'doomed') = (doomed_at IS NOT NULL))
);
-- Each daemon's blob cache picks up the packs other daemons add by creation time.
CREATE INDEX repo_packs_created ON repo_packs (created_at);

-- One row per blob id: its first durable location (a later copy in another pack is
-- garbage for prune), unless that location is in a doomed pack, which the newer
-- copy replaces.
CREATE TABLE repo_blobs (
    id            bytea PRIMARY KEY CHECK (length(id) = 32),
    pack          bytea NOT NULL REFERENCES repo_packs (id) ON DELETE CASCADE,
    type          smallint NOT NULL CHECK (type IN (0, 1)),
    "offset"      bigint NOT NULL CHECK ("offset" >= 0),
    length        integer NOT NULL CHECK (length > 0),
    plain_length  integer NOT NULL CHECK (plain_length >= 0)
);
CREATE INDEX repo_blobs_pack ON repo_blobs (pack);

-- Every blob id something retained refers to (item versions, snapshot manifests).
-- Prune treats "referenced" as exactly this view. Empty until the catalog's
-- migration replaces it (CREATE OR REPLACE VIEW blob_refs); prune refuses to run
-- while it is empty and the index is not.
CREATE VIEW blob_refs AS SELECT NULL::bytea AS blob_id WHERE false;
