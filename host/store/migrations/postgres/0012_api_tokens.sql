-- Named admin-API tokens with scopes (`admin`, `read`, `patients:read`), stored as the
-- SHA-256 of the token (shown once, at creation). A revoked token stays listed.
CREATE TABLE api_tokens (
    name TEXT PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
