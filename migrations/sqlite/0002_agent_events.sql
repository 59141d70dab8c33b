-- Agent events: startup, shutdown, missed detailed logs (see the PostgreSQL
-- migration of the same number). Times are unix microseconds.
CREATE TABLE agent_events (
    event_id         BLOB    PRIMARY KEY,
    employee_id      INTEGER NOT NULL REFERENCES employees (id),
    device_id        INTEGER NOT NULL REFERENCES devices (id),
    username         TEXT    NOT NULL,
    hostname         TEXT    NOT NULL,
    kind             TEXT    NOT NULL,
    event            TEXT    NOT NULL,
    occurred_at      INTEGER NOT NULL,
    utc_offset_secs  INTEGER NOT NULL,
    received_at      INTEGER NOT NULL
);
CREATE INDEX agent_events_by_employee ON agent_events (employee_id, occurred_at DESC, event_id DESC);
CREATE INDEX agent_events_by_time ON agent_events (occurred_at);
