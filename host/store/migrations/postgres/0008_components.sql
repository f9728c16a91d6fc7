-- Installed components, by content: the bytes a version was installed from, so that a
-- daemon on another machine (another data directory) runs every version without a
-- shared volume. Versions written before this table find their bytes added the first
-- time a daemon links them from its own file.
CREATE TABLE components (
    sha256     TEXT PRIMARY KEY,
    bytes      BYTEA NOT NULL,
    stored_at  TEXT NOT NULL
);
