-- The catalog: what was backed up, from whom, and how it looked at any instant.
--
-- Validity is a half-open interval of backup time [from_at, to_at): a version is
-- visible at T when from_at <= T AND (to_at IS NULL OR to_at > T). Both ends are
-- the commit transaction's now(), so a page's changes appear at one instant and
-- a snapshot's view is "everything valid at its completed_at". Two columns with
-- btree indexes rather than a tstzrange with GiST: the reads that matter (a
-- folder page at now, an item's history) are keyset scans that need btree order,
-- and the common "now" case is a partial index on to_at IS NULL.

CREATE TABLE tenants (
    id               uuid PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
    directory_id     text NOT NULL,              -- the Entra (Azure AD) tenant id or domain
    client_id        text NOT NULL,
    auth_kind        text NOT NULL CHECK (auth_kind IN ('secret', 'certificate')),
    -- The client secret (auth_kind secret) or the certificate's private key PEM
    -- (certificate), sealed with the repository key; never stored in clear.
    sealed_secret    bytea NOT NULL,
    seal_context     text NOT NULL,              -- the context it was sealed under
    certificate_pem  text,                       -- public: the X.509 certificate
    graph_url        text,                       -- NULL: the public cloud
    login_url        text,
    ca_file          text,
    disabled         boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (auth_kind = 'secret' OR certificate_pem IS NOT NULL)
);

CREATE TABLE owners (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('user', 'group', 'site', 'team', 'drive')),
    graph_id      text NOT NULL,
    display_name  text,
    upn           text,
    mail          text,
    state         text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'skipped', 'deleted')),
    skip_reason   text,
    discovered_at timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, kind, graph_id)         -- a team and its group share a graph id
);
CREATE INDEX owners_list ON owners (tenant_id, display_name, id);

-- A container's identity; its name and place in the tree are versioned below.
CREATE TABLE containers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    uuid NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    category    text NOT NULL CHECK (category IN ('mail', 'contacts', 'calendar', 'onedrive', 'sharepoint', 'teams')),
    graph_id    text NOT NULL,
    seen_round  bigint,                        -- the last resync round that reported it
    UNIQUE (owner_id, category, graph_id)
);

CREATE TABLE container_versions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    container_id  bigint NOT NULL REFERENCES containers (id) ON DELETE CASCADE,
    parent_id     bigint REFERENCES containers (id) ON DELETE CASCADE,  -- NULL: a root
    display_name  text NOT NULL,
    well_known    text,                        -- inbox, sentitems, root...
    path          text NOT NULL,               -- cache: names from the root, '/'-separated
    from_at       timestamptz NOT NULL,
    to_at         timestamptz,
    CHECK (to_at IS NULL OR to_at >= from_at)
);
CREATE UNIQUE INDEX container_versions_open ON container_versions (container_id) WHERE to_at IS NULL;
CREATE INDEX container_versions_history ON container_versions (container_id, from_at);
CREATE INDEX container_versions_children ON container_versions (parent_id, display_name, container_id);

-- One row per source item identity (Graph immutable id): a move keeps it.
CREATE TABLE items (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id       uuid NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    category       text NOT NULL CHECK (category IN ('mail', 'contacts', 'calendar', 'onedrive', 'sharepoint', 'teams')),
    graph_id       text NOT NULL,
    kind           text NOT NULL,              -- message, contact, event, file, ...
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    seen_round     bigint,                     -- the last resync round that reported it
    UNIQUE (owner_id, category, graph_id)
);

CREATE TABLE item_versions (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    item_id         bigint NOT NULL REFERENCES items (id) ON DELETE CASCADE,
    owner_id        uuid NOT NULL,             -- the item's, repeated for scoped scans
    category        text NOT NULL,
    container_id    bigint REFERENCES containers (id) ON DELETE SET NULL,
    from_at         timestamptz NOT NULL,
    to_at           timestamptz,
    added_in        uuid,                      -- the snapshot that added this version
    closed_in       uuid,                      -- the snapshot that closed it
    name            text NOT NULL DEFAULT '',  -- what browse shows and sorts by
    path            text,
    subject         text,
    sender          text,
    recipients      text[] NOT NULL DEFAULT '{}',
    sent_at         timestamptz,
    received_at     timestamptz,
    modified_at     timestamptz,
    size            bigint,
    change_key      text,                      -- changeKey / eTag / cTag of the source
    flags           text[] NOT NULL DEFAULT '{}',
    body_preview    text,
    meta            jsonb NOT NULL DEFAULT '{}',
    content_type    text,
    content_blobs   bytea[] NOT NULL DEFAULT '{}',  -- ordered blob ids (32 bytes each)
    content_sha256  bytea,
    content_size    bigint,
    search          tsvector NOT NULL,
    CHECK (to_at IS NULL OR to_at >= from_at)
);
-- At most one open version per item: the page commit's idempotence rests on it.
CREATE UNIQUE INDEX item_versions_open ON item_versions (item_id) WHERE to_at IS NULL;
CREATE INDEX item_versions_history ON item_versions (item_id, from_at DESC);
CREATE INDEX item_versions_browse_now ON item_versions (container_id, name, id) WHERE to_at IS NULL;
CREATE INDEX item_versions_browse ON item_versions (container_id, name, id);
CREATE INDEX item_versions_search ON item_versions USING gin (search);
CREATE INDEX item_versions_scope ON item_versions (owner_id, category) WHERE to_at IS NULL;

CREATE TABLE snapshots (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    owner_id       uuid NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    category       text NOT NULL CHECK (category IN ('mail', 'contacts', 'calendar', 'onedrive', 'sharepoint', 'teams')),
    run_id         uuid,                       -- no reference: run history is trimmed separately
    state          text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'complete', 'partial')),
    started_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    items_added    bigint NOT NULL DEFAULT 0,
    items_changed  bigint NOT NULL DEFAULT 0,
    items_deleted  bigint NOT NULL DEFAULT 0,
    items_total    bigint,                     -- open versions when completed
    bytes_added    bigint NOT NULL DEFAULT 0,
    faults         bigint NOT NULL DEFAULT 0,
    UNIQUE (run_id, owner_id, category)        -- a resumed run continues its snapshot
);
CREATE INDEX snapshots_list ON snapshots (tenant_id, started_at DESC, id DESC);
CREATE INDEX snapshots_owner ON snapshots (owner_id, category, started_at DESC);

-- Where each delta stands. A resync round (after an invalid delta token) numbers
-- itself; pages committed while it runs mark what they report as seen, and only
-- completing the round closes what it did not see.
CREATE SEQUENCE delta_rounds;
CREATE TABLE delta_cursors (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id          uuid NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    category          text NOT NULL,
    container_id      bigint REFERENCES containers (id) ON DELETE CASCADE,  -- NULL: the owner-level delta
    cursor            text,                    -- nextLink or deltaLink
    round_id          bigint,                  -- set while a resync round runs
    round_covers      text CHECK (round_covers IN ('items', 'containers', 'both')),
    round_started_at  timestamptz,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (owner_id, category, container_id)
);

CREATE TABLE item_faults (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id         uuid NOT NULL,
    owner_id       uuid NOT NULL REFERENCES owners (id) ON DELETE CASCADE,
    category       text NOT NULL,
    item_graph_id  text NOT NULL,
    reason         text NOT NULL,
    code           text,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    attempts       integer NOT NULL DEFAULT 1,
    resolved_at    timestamptz,
    UNIQUE (run_id, owner_id, category, item_graph_id)
);
CREATE INDEX item_faults_open ON item_faults (owner_id, category, item_graph_id) WHERE resolved_at IS NULL;

-- Every blob id an item version refers to: prune keeps exactly these.
CREATE OR REPLACE VIEW blob_refs AS
    SELECT DISTINCT b AS blob_id FROM item_versions, unnest(content_blobs) AS b;
