-- Claiming a run looks for a queued manual run first: an index of those alone, so the
-- look does not read every queued run (a night queues tens of thousands).
CREATE INDEX runs_queued_manual ON runs (id) WHERE status = 'queued' AND trigger = 'manual';
