-- The audit trail: every admin action and every read of patient data, with who, what
-- and when. Each entry carries the SHA-256 of the one before it and of itself, so an
-- edited or deleted entry breaks the chain (`passerelle audit verify`).
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
