-- Exports: each is a one-off job of kind 'export' (no schedule) whose run
-- resolves the selection at its instant and freezes the list of item versions
-- in export_items, so every later download gives exactly that list whatever the
-- backups did since (versions are append-only; only prune removes them).
CREATE TABLE exports (
    id            uuid PRIMARY KEY,
    job_id        uuid NOT NULL UNIQUE REFERENCES jobs (id) ON DELETE CASCADE,
    tenant_id     uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    selection     jsonb NOT NULL,              -- pinned: tenant and owners as ids, `at` an instant
    format        jsonb NOT NULL DEFAULT '{}', -- {"mbox": bool}
    requested_by  text,                        -- the API token's name, or 'cli'
    created_at    timestamptz NOT NULL DEFAULT now(),
    frozen_at     timestamptz,                 -- the list is complete: downloadable
    items         bigint,
    bytes         bigint,                      -- stored content bytes of the listed versions
    downloads     integer NOT NULL DEFAULT 0
);
CREATE INDEX exports_list ON exports (created_at DESC, id DESC);
CREATE INDEX exports_tenant ON exports (tenant_id, created_at DESC);

CREATE TABLE export_items (
    export_id       uuid NOT NULL REFERENCES exports (id) ON DELETE CASCADE,
    folder          text NOT NULL,   -- owner/category/path: downloads walk it in this order so a folder's items come together
    seq             bigint NOT NULL,
    version_id      bigint NOT NULL, -- no reference: history stays readable; prune keeps referenced versions
    owner_label     text NOT NULL,
    container_path  text,
    size            bigint,
    PRIMARY KEY (export_id, folder, seq)
);
