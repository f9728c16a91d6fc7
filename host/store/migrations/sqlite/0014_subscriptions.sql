-- Webhook subscriptions: the change feed POSTed to a URL, in order, at least once,
-- signed (Standard Webhooks) with the subscription's secret (sealed like account
-- secrets). `delivered_through`: every matching change up to it was acknowledged.
-- `batch_from`..`batch_through`: the batch being delivered (retried as the same
-- message, same `webhook-id`). A subscription `dead` (attempts exhausted) waits for
-- `subscriptions replay`.
CREATE TABLE subscriptions (
    id                TEXT PRIMARY KEY,
    url               TEXT NOT NULL,
    practices         TEXT NOT NULL,
    kinds             TEXT NOT NULL,
    patients          BIGINT NOT NULL DEFAULT 0,
    allow_private     BIGINT NOT NULL DEFAULT 0,
    secret            TEXT NOT NULL,
    state             TEXT NOT NULL,
    delivered_through BIGINT NOT NULL,
    batch_from        BIGINT,
    batch_through     BIGINT,
    attempts          BIGINT NOT NULL DEFAULT 0,
    next_attempt_ms   BIGINT NOT NULL DEFAULT 0,
    claimed_by        TEXT,
    claimed_until_ms  BIGINT,
    last_error        TEXT,
    delivered_changes BIGINT NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);
