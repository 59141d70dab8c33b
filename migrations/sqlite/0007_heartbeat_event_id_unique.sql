-- One heartbeat per event id, whatever its timestamp (the primary key is
-- (event_id, occurred_at)). The first delivery of each id is the one kept.
DELETE FROM employee_heartbeats
WHERE EXISTS (
    SELECT 1 FROM employee_heartbeats f
    WHERE f.event_id = employee_heartbeats.event_id
      AND (f.received_at, f.occurred_at) < (employee_heartbeats.received_at, employee_heartbeats.occurred_at)
);
CREATE UNIQUE INDEX employee_heartbeats_one_per_event ON employee_heartbeats (event_id);
