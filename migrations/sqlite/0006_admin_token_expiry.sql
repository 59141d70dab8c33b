-- Admin tokens can expire and are listed with when they were last used (kept
-- to the minute, so a busy dashboard does not write on every request).
ALTER TABLE admin_tokens ADD COLUMN expires_at INTEGER;
ALTER TABLE admin_tokens ADD COLUMN last_used_at INTEGER;
