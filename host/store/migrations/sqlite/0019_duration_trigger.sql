-- A run's duration counted in the overview's rollup by the database itself as the run
-- ends: the end writes the duration's bucket into the run's row, and this trigger counts
-- it in its platform's UTC day (one statement less per run than counting it apart).
ALTER TABLE runs ADD COLUMN duration_bucket BIGINT;
CREATE TRIGGER runs_count_duration AFTER UPDATE OF duration_bucket ON runs
WHEN NEW.duration_bucket IS NOT NULL AND OLD.duration_bucket IS NULL
BEGIN
    INSERT OR IGNORE INTO run_durations (connector, day, bucket, runs)
        VALUES (NEW.connector, substr(NEW.started_at, 1, 10), NEW.duration_bucket, 0);
    UPDATE run_durations SET runs = runs + 1
        WHERE connector = NEW.connector AND day = substr(NEW.started_at, 1, 10)
            AND bucket = NEW.duration_bucket;
END;
