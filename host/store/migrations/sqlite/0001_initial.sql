-- passerelle schema v1 (SQLite). Timestamps are RFC 3339 text; *_ms columns hold the
-- same instant as Unix milliseconds for range queries. Keep in step with postgres/.
CREATE TABLE practices (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    timezone    TEXT NOT NULL DEFAULT 'Europe/Paris',
    created_at  TEXT NOT NULL
);

CREATE TABLE accounts (
    id           TEXT PRIMARY KEY,
    practice_id  TEXT NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
    connector    TEXT NOT NULL,
    label        TEXT,
    settings     TEXT NOT NULL DEFAULT '{}',
    created_at   TEXT NOT NULL
);
CREATE INDEX accounts_practice ON accounts(practice_id);

-- Secret values live apart from settings; only the runner reads them.
CREATE TABLE account_secrets (
    account_id  TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (account_id, name)
);

CREATE TABLE connector_versions (
    name          TEXT NOT NULL,
    version       TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    path          TEXT NOT NULL,
    manifest      TEXT NOT NULL,
    installed_at  TEXT NOT NULL,
    active        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (name, version)
);

CREATE TABLE runs (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    practice_id             TEXT NOT NULL,
    account_id              TEXT NOT NULL,
    connector               TEXT NOT NULL,
    connector_version       TEXT NOT NULL,
    connector_sha256        TEXT NOT NULL,
    trigger                 TEXT NOT NULL,
    mode                    TEXT NOT NULL,
    status                  TEXT NOT NULL,
    started_at              TEXT NOT NULL,
    finished_at             TEXT,
    duration_ms             INTEGER,
    appointments_added      INTEGER NOT NULL DEFAULT 0,
    appointments_changed    INTEGER NOT NULL DEFAULT 0,
    appointments_deleted    INTEGER NOT NULL DEFAULT 0,
    appointments_tombstoned INTEGER NOT NULL DEFAULT 0,
    slots_written           INTEGER NOT NULL DEFAULT 0,
    slots_removed           INTEGER NOT NULL DEFAULT 0,
    http_requests           INTEGER NOT NULL DEFAULT 0,
    bytes_received          INTEGER NOT NULL DEFAULT 0,
    checkpoints             INTEGER NOT NULL DEFAULT 0,
    error_kind              TEXT,
    error_detail            TEXT,
    cursor_before           TEXT,
    cursor_after            TEXT,
    message                 TEXT
);
CREATE INDEX runs_account ON runs(account_id, id);
CREATE INDEX runs_practice ON runs(practice_id, id);

CREATE TABLE sync_state (
    account_id   TEXT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    cursor       TEXT CHECK (length(cursor) <= 4096),
    last_run_id  INTEGER,
    updated_at   TEXT NOT NULL
);

CREATE TABLE appointments (
    connector           TEXT NOT NULL,
    account_id          TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    external_id         TEXT NOT NULL,
    practice_id         TEXT NOT NULL,
    starts_at           TEXT NOT NULL,
    starts_at_ms        INTEGER NOT NULL,
    ends_at             TEXT,
    status              TEXT NOT NULL,
    practitioner        TEXT,
    visit_motive        TEXT,
    patient_external_id TEXT,
    patient_first_name  TEXT,
    patient_last_name   TEXT,
    patient_birth_date  TEXT,
    patient_phone       TEXT,
    patient_email       TEXT,
    platform_updated_at TEXT,
    content_hash        TEXT NOT NULL,
    first_seen_run      INTEGER NOT NULL,
    last_seen_run       INTEGER NOT NULL,
    deleted_at          TEXT,
    deleted_reason      TEXT,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (connector, account_id, external_id)
);
CREATE INDEX appointments_window ON appointments(account_id, starts_at_ms);

CREATE TABLE slots (
    connector      TEXT NOT NULL,
    account_id     TEXT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    external_id    TEXT NOT NULL,
    practice_id    TEXT NOT NULL,
    starts_at      TEXT NOT NULL,
    starts_at_ms   INTEGER NOT NULL,
    ends_at        TEXT,
    practitioner   TEXT,
    visit_motive   TEXT,
    place          TEXT,
    last_seen_run  INTEGER NOT NULL,
    updated_at     TEXT NOT NULL,
    PRIMARY KEY (connector, account_id, external_id)
);
CREATE INDEX slots_window ON slots(account_id, starts_at_ms);
