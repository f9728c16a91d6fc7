-- Several daemons on one database. The run queue lives here, not in a process:
-- a daemon claims a queued run (status `running`, `owner` = its id) with a lease it
-- renews; a run whose lease expired is interrupted and queued again by a live daemon.
-- A retry waits for `not_before`. One queued run per account (requests coalesce in the
-- database), one claim of a practice's scheduled slot across all daemons, and the live
-- daemons with their heartbeats.
ALTER TABLE runs ADD COLUMN lease_until TEXT;
ALTER TABLE runs ADD COLUMN not_before TEXT;

-- Earlier versions could leave several queued rows of an account: keep the newest.
UPDATE runs SET status = 'cancelled', error_kind = 'interrupted',
    error_detail = 'interrupted: closed when one queued run per account became a rule'
WHERE status = 'queued'
  AND id NOT IN (SELECT MAX(id) FROM runs WHERE status = 'queued' GROUP BY account_id);

CREATE UNIQUE INDEX runs_one_queued_per_account ON runs (account_id) WHERE status = 'queued';
CREATE INDEX runs_lease ON runs (lease_until) WHERE status = 'running';

-- A practice's scheduled slot, taken by the daemon that queued its runs: the primary
-- key makes the slot run once, whichever daemons see it come.
CREATE TABLE scheduled_slots (
    practice_id TEXT NOT NULL,
    slot        TEXT NOT NULL,
    daemon      TEXT NOT NULL,
    taken_at    TEXT NOT NULL,
    PRIMARY KEY (practice_id, slot)
);

CREATE TABLE daemons (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           BIGINT NOT NULL,
    version       TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL,
    lease_until   TEXT NOT NULL
);
