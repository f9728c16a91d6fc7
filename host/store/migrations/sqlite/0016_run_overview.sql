-- The console's overview: the last day's runs by start time, platform and status (read
-- from this index alone), and finished runs' durations per platform and UTC day in
-- buckets growing by 2^(1/4) (about 19 %), counted when each run ends, so fourteen
-- days of percentiles are read from a few thousand rows, not the runs themselves.
CREATE INDEX runs_started ON runs (started_at, connector, status);
CREATE TABLE run_durations (
    connector TEXT NOT NULL,
    day       TEXT NOT NULL,
    bucket    BIGINT NOT NULL,
    runs      BIGINT NOT NULL,
    PRIMARY KEY (connector, day, bucket)
);
