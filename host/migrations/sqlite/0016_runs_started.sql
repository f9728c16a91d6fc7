-- The console's overview reads the last day's and fortnight's runs by start time.
CREATE INDEX runs_started ON runs (started_at);
