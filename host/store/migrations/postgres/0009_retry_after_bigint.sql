-- A connector's Retry-After is a u32 (up to 136 years): recorded as asked, it needs more
-- than a 32-bit signed column (the retry itself waits at most retry.max_delay_secs).
ALTER TABLE runs ALTER COLUMN retry_after_secs TYPE BIGINT;
