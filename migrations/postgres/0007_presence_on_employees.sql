-- "Last seen" for every employee without a join: the newest heartbeat's
-- device, status, host and times move onto the employee's own row, so the
-- list of 10,000 employees with their presence is one sequential scan
-- (a hash join of two tables before; see docs/benchmarks.md). No index
-- covers these columns, so the update each ingest batch makes stays HOT,
-- and half-empty pages leave it room.
ALTER TABLE employees
    ADD COLUMN seen_device_id   BIGINT,
    ADD COLUMN seen_status      TEXT,
    ADD COLUMN seen_hostname    TEXT,
    ADD COLUMN seen_at          TIMESTAMPTZ,
    ADD COLUMN seen_received_at TIMESTAMPTZ;
ALTER TABLE employees SET (fillfactor = 50);

UPDATE employees e
SET seen_device_id = p.device_id, seen_status = p.status, seen_hostname = p.hostname,
    seen_at = p.occurred_at, seen_received_at = p.received_at
FROM employee_presence p
WHERE p.employee_id = e.id;

DROP TABLE employee_presence;
