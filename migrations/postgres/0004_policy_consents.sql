-- The monitoring policy (one row; absent = the built-in default) and the
-- employees' consents. Consents are a record the company may need to show
-- later: they are not deleted by the 30-day retention, only with the device.
CREATE TABLE monitoring_policy (
    id          SMALLINT    PRIMARY KEY CHECK (id = 1),
    revision    BIGINT      NOT NULL,
    -- wfh_protocol::MonitoringPolicy as JSON.
    policy      JSONB       NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE consents (
    event_id         UUID        PRIMARY KEY,
    employee_id      BIGINT      NOT NULL REFERENCES employees (id),
    device_id        BIGINT      NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    -- wfh_protocol::Consent::version of the text the employee accepted.
    consent_version  TEXT        NOT NULL,
    accepted_at      TIMESTAMPTZ NOT NULL,
    utc_offset_secs  INTEGER     NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX consents_by_employee ON consents (employee_id, accepted_at DESC);
