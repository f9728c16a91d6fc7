-- PostgreSQL widens runs.retry_after_secs to 64 bits here; SQLite's INTEGER already is.
SELECT 1;
