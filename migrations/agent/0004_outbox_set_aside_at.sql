-- When the server refused an item for good: the sent log lists refused items
-- beside delivered ones, at this time, with the server's reason.
ALTER TABLE outbox ADD COLUMN set_aside_at INTEGER; -- unix microseconds
UPDATE outbox SET set_aside_at = next_attempt_at WHERE state = 'set_aside';
