-- A small JPEG of each screenshot that was sent, for the employee's
-- transparency log (the full screenshot is not kept on the device).
ALTER TABLE sent ADD COLUMN thumbnail BLOB;
