-- The flight recorder: the HTTP exchanges of a run that drifted or failed, redacted and
-- sealed with the secrets keyring (bound to the account and the run), kept for a while
-- so that the connector's author can replay them (`passerelle runs cassette`).
CREATE TABLE run_cassettes (
    run_id BIGINT PRIMARY KEY,
    account_id TEXT NOT NULL,
    practice_id TEXT NOT NULL,
    connector TEXT NOT NULL,
    version TEXT NOT NULL,
    reason TEXT NOT NULL,
    exchanges BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    recorded_at TEXT NOT NULL,
    sealed TEXT NOT NULL
);
CREATE INDEX run_cassettes_account ON run_cassettes (account_id, recorded_at);
CREATE INDEX run_cassettes_recorded ON run_cassettes (recorded_at);
CREATE INDEX run_cassettes_connector ON run_cassettes (connector, recorded_at);
