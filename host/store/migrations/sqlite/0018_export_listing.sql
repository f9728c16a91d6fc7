-- An account's own listing on its platform (booking URL, type), as JSON, for the
-- open-data export; NULL: its practice's. And the export's figures by day, the series
-- `stats_by_date.json` publishes.
ALTER TABLE accounts ADD COLUMN public_info TEXT;
CREATE TABLE export_stats_by_date (
    day                TEXT PRIMARY KEY,
    centres_available  BIGINT NOT NULL,
    centres            BIGINT NOT NULL,
    appointments       BIGINT NOT NULL
);
