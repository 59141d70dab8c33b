-- The server keeps every employee with its presence in memory and brings
-- that copy up to date by reading only the rows written since its last
-- read (server/src/db/roster.rs): reading all 10,000 rows each time the
-- admin list is asked for cost 10-20 ms on a slow machine, most of it in
-- producing and decoding rows that had not changed.
--
-- Each row records the transaction that last wrote it. A reader notes the
-- oldest transaction still running when it read (its snapshot's xmin) and
-- next asks for the rows written by that transaction or any later one, so
-- no write is missed whatever order transactions commit in, and whichever
-- process made it (another server, the CLI, a person in psql).
--
-- Rows that existed before this migration were last written by no
-- transaction a reader needs again: 0. The index makes the usual read (a
-- few rows) an index scan; presence updates stop being HOT for it, which
-- costs little at one update per employee a second at most.
ALTER TABLE employees ADD COLUMN written_by xid8 NOT NULL DEFAULT '0';

CREATE FUNCTION employees_note_writer() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.written_by := pg_current_xact_id();
    RETURN NEW;
END
$$;

CREATE TRIGGER employees_note_writer BEFORE INSERT OR UPDATE ON employees
    FOR EACH ROW EXECUTE FUNCTION employees_note_writer();

CREATE INDEX employees_written_by ON employees (written_by);
