-- Why an account is paused: `drift` (its connector no longer reads the platform) or
-- `security` (a platform's answer carried a secret back to the connector).
ALTER TABLE account_pauses ADD COLUMN reason TEXT NOT NULL DEFAULT 'drift';
