-- Activity insight: one row per bucket of time an agent reports (seconds per
-- application and website, active and idle seconds, a key-press count), each
-- kind only where the monitoring policy switches it on. Deleted by the same
-- retention as heartbeats, by time, in batches.
CREATE TABLE employee_activity (
    event_id         UUID        PRIMARY KEY,
    employee_id      BIGINT      NOT NULL REFERENCES employees (id),
    device_id        BIGINT      NOT NULL REFERENCES devices (id),
    username         TEXT        NOT NULL,
    hostname         TEXT        NOT NULL,
    -- Start of the bucket (device time, kept in UTC with the device's offset).
    occurred_at      TIMESTAMPTZ NOT NULL,
    utc_offset_secs  INTEGER     NOT NULL,
    duration_secs    INTEGER     NOT NULL,
    observed_secs    INTEGER     NOT NULL,
    active_secs      INTEGER,
    idle_secs        INTEGER,
    key_presses      INTEGER,
    -- [{app, title?, secs}] and [{domain, url?, secs}] (wfh_protocol::AppTime, SiteTime).
    apps             JSONB       NOT NULL,
    sites            JSONB       NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX employee_activity_by_employee ON employee_activity (employee_id, occurred_at DESC, event_id DESC);
CREATE INDEX employee_activity_by_time ON employee_activity (occurred_at);

-- Teams, for the team summaries: a free-form name per employee.
ALTER TABLE employees ADD COLUMN team TEXT;
CREATE INDEX employees_by_team ON employees (team) WHERE team IS NOT NULL;
