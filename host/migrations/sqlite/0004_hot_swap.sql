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
