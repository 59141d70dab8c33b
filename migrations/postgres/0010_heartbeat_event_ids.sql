-- One heartbeat per event id, whatever its timestamp. The heartbeats are
-- partitioned by day and a unique key on a partitioned table must contain the
-- partition key, so (occurred_at, event_id) alone lets one id be stored once
-- per timestamp. This table holds each id once; a heartbeat is stored only
-- when its id is new here, in the same statement. It keeps no personal data,
-- and retention deletes its rows with the heartbeats'. A BRIN index suffices
-- for that: rows arrive in about time order.
CREATE TABLE heartbeat_event_ids (
    event_id     UUID        PRIMARY KEY,
    occurred_at  TIMESTAMPTZ NOT NULL
);

-- The first delivery of each id is the one kept.
INSERT INTO heartbeat_event_ids (event_id, occurred_at)
SELECT DISTINCT ON (event_id) event_id, occurred_at
FROM employee_heartbeats ORDER BY event_id, received_at, occurred_at;

DELETE FROM employee_heartbeats h
WHERE NOT EXISTS (
    SELECT 1 FROM heartbeat_event_ids i
    WHERE i.event_id = h.event_id AND i.occurred_at = h.occurred_at
);

CREATE INDEX heartbeat_event_ids_by_time ON heartbeat_event_ids USING brin (occurred_at);
