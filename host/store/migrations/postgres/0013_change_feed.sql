-- The change feed: every appointment and slot change, numbered in commit order. The
-- sequence is taken from `feed_state.head` at the end of the checkpoint's transaction
-- (its row lock orders concurrent commits), so a reader that has seen N never later
-- meets a change numbered N or below. `pruned_through`: the highest number retention
-- has removed (a reader behind it is told so).
CREATE TABLE changes (
    seq           BIGINT PRIMARY KEY,
    practice_id   TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    connector     TEXT NOT NULL,
    kind          TEXT NOT NULL,
    op            TEXT NOT NULL,
    external_id   TEXT NOT NULL,
    record        TEXT,
    run_id        BIGINT NOT NULL,
    created_at    TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL
);
CREATE INDEX changes_practice ON changes(practice_id, seq);
CREATE INDEX changes_created ON changes(created_at_ms);

CREATE TABLE feed_state (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    head           BIGINT NOT NULL,
    pruned_through BIGINT NOT NULL
);
INSERT INTO feed_state (id, head, pruned_through) VALUES (1, 0, 0);

-- A slot's version: 1 when added, raised by each change (tells added from changed).
ALTER TABLE slots ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
