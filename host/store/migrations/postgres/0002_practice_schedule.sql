-- A practice's own sync schedule: a five-field cron expression read in the practice's
-- time zone. NULL: the default (daily 03:00, spread over the window by practice).
ALTER TABLE practices ADD COLUMN schedule TEXT;
