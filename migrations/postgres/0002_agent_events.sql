-- Agent events: startup (with the OS boot time), shutdown, and detailed logs
-- that could not be taken (which slot of which day, and why). Rare (a few
-- per device per day), so one plain table; retention deletes by time.
CREATE TABLE agent_events (
    event_id         UUID        PRIMARY KEY,
    employee_id      BIGINT      NOT NULL REFERENCES employees (id),
    device_id        BIGINT      NOT NULL REFERENCES devices (id),
    username         TEXT        NOT NULL,
    hostname         TEXT        NOT NULL,
    kind             TEXT        NOT NULL,
    -- The whole event as the agent sent it (wfh_protocol::AgentEvent).
    event            JSONB       NOT NULL,
    occurred_at      TIMESTAMPTZ NOT NULL,
    utc_offset_secs  INTEGER     NOT NULL,
    received_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX agent_events_by_employee ON agent_events (employee_id, occurred_at DESC, event_id DESC);
CREATE INDEX agent_events_by_time ON agent_events (occurred_at);
