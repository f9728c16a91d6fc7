-- Hot swap and the drift loop: a connector version can wait for the operator's approval
-- (it asks for more than the active one); activations are dated so rollback knows the
-- previous one; candidates that were refused are kept with their reason; a run that
-- drifted keeps its structured report; an account that drifted is paused until a run of
-- it succeeds (a new version re-drives it) or the operator resumes it.
ALTER TABLE connector_versions ADD COLUMN pending_approval TEXT;
ALTER TABLE connector_versions ADD COLUMN activated_at TEXT;
ALTER TABLE runs ADD COLUMN drift TEXT;

CREATE TABLE connector_rejections (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    at           TEXT NOT NULL,
    source       TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    name         TEXT,
    version      TEXT,
    kind         TEXT NOT NULL,
    reason       TEXT NOT NULL
);

CREATE TABLE account_pauses (
    account_id   TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    connector    TEXT NOT NULL,
    run_id       BIGINT NOT NULL,
    version      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    drift        TEXT NOT NULL,
    paused_at    TEXT NOT NULL
);
CREATE INDEX account_pauses_connector ON account_pauses(connector);

-- The drift policy `quarantine`: items a connector could not read, set aside for review
-- (the item as received: it may hold patient data, so it lives here and nowhere else).
-- One row per account and item content; a later run that sees it again updates it.
CREATE TABLE quarantined_items (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    connector       TEXT NOT NULL,
    practice_id     TEXT NOT NULL,
    account_id      TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    endpoint        TEXT NOT NULL,
    path            TEXT NOT NULL,
    expected        TEXT NOT NULL,
    found           TEXT NOT NULL,
    item            TEXT NOT NULL,
    item_sha256     TEXT NOT NULL,
    version_sha256  TEXT NOT NULL,
    first_run_id    BIGINT NOT NULL,
    last_run_id     BIGINT NOT NULL,
    first_seen      TEXT NOT NULL,
    last_seen       TEXT NOT NULL,
    times_seen      BIGINT NOT NULL DEFAULT 1,
    UNIQUE (account_id, item_sha256)
);
CREATE INDEX quarantined_items_connector ON quarantined_items(connector);
ALTER TABLE runs ADD COLUMN quarantined BIGINT NOT NULL DEFAULT 0;

-- Canary: one kept version of a connector runs for a chosen set of practices before it
-- is promoted (made active for all) or stopped.
CREATE TABLE connector_canaries (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    practices   TEXT NOT NULL,
    started_at  TEXT NOT NULL
);
