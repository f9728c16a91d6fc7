-- One running run per account, enforced by the database itself: a second process (a
-- local `passerelle sync`, another daemon) cannot run an account that is running.
-- Each running run names its owner (host/pid), so a run left `running` by a process
-- that is gone can be recognised and closed.
ALTER TABLE runs ADD COLUMN owner TEXT;

-- Older databases may hold several `running` rows of an account (a killed process
-- leaves its row): keep the newest, close the others as interrupted.
UPDATE runs SET status = 'cancelled', error_kind = 'interrupted',
    error_detail = 'interrupted: closed when one running run per account became a rule'
WHERE status = 'running'
  AND id NOT IN (SELECT MAX(id) FROM runs WHERE status = 'running' GROUP BY account_id);

CREATE UNIQUE INDEX runs_one_running_per_account ON runs (account_id) WHERE status = 'running';
