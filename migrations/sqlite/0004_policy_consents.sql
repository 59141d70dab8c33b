-- The monitoring policy (one row; absent = the built-in default) and the
-- employees' consents. Consents are a record the company may need to show
-- later: they are not deleted by the 30-day retention, only with the device.
CREATE TABLE monitoring_policy (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    revision    INTEGER NOT NULL,
    -- wfh_protocol::MonitoringPolicy as JSON.
    policy      TEXT    NOT NULL,
    updated_at  INTEGER NOT NULL -- unix microseconds
);

CREATE TABLE consents (
    event_id         BLOB    PRIMARY KEY,
    employee_id      INTEGER NOT NULL REFERENCES employees (id),
    device_id        INTEGER NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    consent_version  TEXT    NOT NULL,
    accepted_at      INTEGER NOT NULL, -- unix microseconds
    utc_offset_secs  INTEGER NOT NULL,
    received_at      INTEGER NOT NULL
);
CREATE INDEX consents_by_employee ON consents (employee_id, accepted_at DESC);
