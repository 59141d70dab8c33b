-- WFH Monitor schema, SQLite (the zero-setup embedded default).
-- Same tables as migrations/postgres; timestamps are INTEGER microseconds since
-- the Unix epoch (UTC) so that they sort and compare exactly.
-- Append-only: change the schema with a new numbered file.

CREATE TABLE employees (
    id            INTEGER PRIMARY KEY,
    username      TEXT    NOT NULL UNIQUE,
    display_name  TEXT,
    active        INTEGER NOT NULL DEFAULT 1,
    created_at    INTEGER NOT NULL
);

CREATE TABLE devices (
    id           INTEGER PRIMARY KEY,
    employee_id  INTEGER NOT NULL REFERENCES employees (id),
    token_hash   BLOB    NOT NULL UNIQUE,
    username     TEXT    NOT NULL,
    hostname     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER
);
CREATE INDEX devices_by_employee ON devices (employee_id);

CREATE TABLE enrollment_codes (
    code_hash    BLOB PRIMARY KEY,
    employee_id  INTEGER NOT NULL REFERENCES employees (id),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    used_at      INTEGER,
    device_id    INTEGER REFERENCES devices (id)
);
CREATE INDEX enrollment_codes_by_employee ON enrollment_codes (employee_id);

CREATE TABLE admin_tokens (
    id          INTEGER PRIMARY KEY,
    token_hash  BLOB    NOT NULL UNIQUE,
    label       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

CREATE TABLE employee_heartbeats (
    event_id         TEXT    NOT NULL,
    employee_id      INTEGER NOT NULL,
    device_id        INTEGER NOT NULL,
    username         TEXT    NOT NULL,
    hostname         TEXT    NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('online', 'idle', 'paused')),
    occurred_at      INTEGER NOT NULL,
    utc_offset_secs  INTEGER NOT NULL,
    received_at      INTEGER NOT NULL,
    PRIMARY KEY (event_id, occurred_at)
) WITHOUT ROWID;
CREATE INDEX employee_heartbeats_by_employee_time ON employee_heartbeats (employee_id, occurred_at);
CREATE INDEX employee_heartbeats_by_time ON employee_heartbeats (occurred_at);

CREATE TABLE device_presence (
    device_id    INTEGER PRIMARY KEY REFERENCES devices (id),
    employee_id  INTEGER NOT NULL,
    status       TEXT    NOT NULL,
    hostname     TEXT    NOT NULL,
    occurred_at  INTEGER NOT NULL,
    received_at  INTEGER NOT NULL
);
CREATE INDEX device_presence_by_employee ON device_presence (employee_id, occurred_at DESC);

CREATE TABLE employee_logs (
    id                  TEXT PRIMARY KEY,
    event_id            TEXT    NOT NULL UNIQUE,
    employee_id         INTEGER NOT NULL REFERENCES employees (id),
    device_id           INTEGER NOT NULL REFERENCES devices (id),
    username            TEXT    NOT NULL,
    hostname            TEXT    NOT NULL,
    -- JSON array of strings.
    local_ips           TEXT    NOT NULL,
    reported_public_ip  TEXT,
    observed_ip         TEXT    NOT NULL,
    city                TEXT,
    region              TEXT,
    country             TEXT,
    country_code        TEXT,
    latitude            REAL,
    longitude           REAL,
    accuracy_radius_km  INTEGER,
    screenshot_path     TEXT    NOT NULL UNIQUE,
    image_format        TEXT    NOT NULL CHECK (image_format IN ('png', 'jpeg', 'webp')),
    image_bytes         INTEGER NOT NULL,
    image_width         INTEGER NOT NULL,
    image_height        INTEGER NOT NULL,
    image_sha256        TEXT    NOT NULL,
    occurred_at         INTEGER NOT NULL,
    utc_offset_secs     INTEGER NOT NULL,
    received_at         INTEGER NOT NULL
);
CREATE INDEX employee_logs_by_employee_time ON employee_logs (employee_id, occurred_at);
CREATE INDEX employee_logs_by_time ON employee_logs (occurred_at);
