-- The daemon (passerelle serve): runs are recorded from the moment they are queued (so
-- "Sync now" answers with a run id), carry their attempt number and the platform's
-- Retry-After; the scheduler keeps how far it has planned, to find the slots it missed
-- while it was down.
ALTER TABLE runs ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
ALTER TABLE runs ADD COLUMN retry_after_secs INTEGER;
ALTER TABLE runs ADD COLUMN queued_at TEXT;
CREATE INDEX runs_status ON runs(status, id);

CREATE TABLE daemon_state (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
