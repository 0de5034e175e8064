-- API tokens (only a hash of each is stored) and the audit log, which no API
-- call and no ordinary statement can change: UPDATE, DELETE and TRUNCATE fail.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    name          text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'operator', 'restorer', 'viewer')),
    tenant_id     uuid,                      -- NULL: every tenant
    hash          bytea NOT NULL UNIQUE,     -- SHA-256 of the secret
    prefix        text NOT NULL,             -- first characters, to recognise a token in lists
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    text,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    last_used_at  timestamptz
);

CREATE TABLE audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    uuid,
    actor       text NOT NULL,               -- token name, or 'cli', or 'anonymous'
    role        text,
    remote      text,
    request_id  text,
    action      text NOT NULL,               -- "POST /api/v1/jobs"
    tenant_id   uuid,
    target      text,                        -- the object acted on
    outcome     integer NOT NULL,            -- HTTP status
    detail      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
