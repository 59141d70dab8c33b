-- Activity insight (see the PostgreSQL migration 0006). Times are unix
-- microseconds; apps and sites are JSON text.
CREATE TABLE employee_activity (
    event_id         BLOB    PRIMARY KEY,
    employee_id      INTEGER NOT NULL REFERENCES employees (id),
    device_id        INTEGER NOT NULL REFERENCES devices (id),
    username         TEXT    NOT NULL,
    hostname         TEXT    NOT NULL,
    occurred_at      INTEGER NOT NULL,
    utc_offset_secs  INTEGER NOT NULL,
    duration_secs    INTEGER NOT NULL,
    observed_secs    INTEGER NOT NULL,
    active_secs      INTEGER,
    idle_secs        INTEGER,
    key_presses      INTEGER,
    apps             TEXT    NOT NULL,
    sites            TEXT    NOT NULL,
    received_at      INTEGER NOT NULL
);
CREATE INDEX employee_activity_by_employee ON employee_activity (employee_id, occurred_at DESC, event_id DESC);
CREATE INDEX employee_activity_by_time ON employee_activity (occurred_at);

ALTER TABLE employees ADD COLUMN team TEXT;
CREATE INDEX employees_by_team ON employees (team) WHERE team IS NOT NULL;
