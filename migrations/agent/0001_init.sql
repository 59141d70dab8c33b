-- The agent's own state, in one SQLite file in its data directory.
-- Append-only: add a new file for every change.

-- Small facts: installation id, enrolment, pause.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Detailed-log plans, one JSON document per local date (scheduler::DayPlan).
CREATE TABLE plans (
    day  TEXT PRIMARY KEY,
    plan TEXT NOT NULL
);

-- Everything waiting to be delivered, oldest first. A row leaves this table
-- only in the transaction that records it in `sent`, or when it is set aside
-- or dropped by the bounds policy.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT    NOT NULL UNIQUE,
    kind            TEXT    NOT NULL CHECK (kind IN ('heartbeat', 'log', 'event')),
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
CREATE INDEX outbox_due ON outbox (state, next_attempt_at, seq);

-- What was delivered: the employee's transparency log (30 days).
CREATE TABLE sent (
    event_id    TEXT PRIMARY KEY,
    kind        TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    image_bytes INTEGER,
    sent_at     INTEGER NOT NULL, -- unix microseconds
    received_at TEXT
);
CREATE INDEX sent_by_time ON sent (sent_at);
