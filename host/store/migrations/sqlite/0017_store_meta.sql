-- Facts about the database itself. `secrets_sealed`: when its secrets were first
-- sealed; from then on a plain-text secret was not written by passerelle and is refused.
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
