-- Delta cursors of a whole tenant (the users and groups deltas of discovery),
-- beside the per-owner cursors of delta_cursors.
CREATE TABLE tenant_cursors (
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    scope       text NOT NULL CHECK (scope IN ('users', 'groups')),
    cursor      text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, scope)
);
