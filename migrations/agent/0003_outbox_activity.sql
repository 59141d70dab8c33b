-- Activity buckets go through the outbox too: the kind's CHECK gains
-- 'activity'. SQLite cannot change a CHECK in place, so the table is
-- copied into a new one (rows, sequence numbers and all).
CREATE TABLE outbox_new (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL CHECK (kind IN ('heartbeat', 'log', 'event', 'activity')),
    body            TEXT    NOT NULL,
    image           BLOB,
    image_mime      TEXT,
    bytes           INTEGER NOT NULL,
    created_at      INTEGER NOT NULL, -- unix microseconds
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    state           TEXT    NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'set_aside'))
);
INSERT INTO outbox_new SELECT seq, event_id, kind, body, image, image_mime, bytes, created_at, attempts,
    next_attempt_at, last_error, state FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, seq);
