-- Webhook notifications go through an outbox: the event is written in the same
-- transaction as what caused it, and any daemon's notifier delivers it (with
-- retries) by leasing the row, so none is lost when a daemon dies and none is
-- sent by two daemons at once.
CREATE TABLE notifications (
    id               bigserial PRIMARY KEY,
    event            text NOT NULL,
    payload          jsonb NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    gave_up_at       timestamptz,
    last_error       text
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE sent_at IS NULL AND gave_up_at IS NULL;

-- When the "no successful run within the expected interval" notice was last sent.
ALTER TABLE jobs ADD COLUMN overdue_notified_at timestamptz;
