-- A run's duration counted in the overview's rollup by the database itself as the run
-- ends: the end writes the duration's bucket into the run's row, and this trigger counts
-- it in its platform's UTC day (one statement less per run than counting it apart).
ALTER TABLE runs ADD COLUMN duration_bucket BIGINT;
CREATE FUNCTION runs_count_duration() RETURNS trigger AS $$
BEGIN
    INSERT INTO run_durations (connector, day, bucket, runs)
        VALUES (NEW.connector, substr(NEW.started_at, 1, 10), NEW.duration_bucket, 1)
        ON CONFLICT (connector, day, bucket) DO UPDATE SET runs = run_durations.runs + 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER runs_count_duration AFTER UPDATE OF duration_bucket ON runs
    FOR EACH ROW WHEN (NEW.duration_bucket IS NOT NULL AND OLD.duration_bucket IS NULL)
    EXECUTE FUNCTION runs_count_duration();
