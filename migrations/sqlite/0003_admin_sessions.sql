-- Dashboard sign-in sessions (see the PostgreSQL migration of the same
-- number). Times are unix microseconds.
CREATE TABLE admin_sessions (
    session_hash    BLOB    PRIMARY KEY,
    admin_token_id  INTEGER NOT NULL REFERENCES admin_tokens (id) ON DELETE CASCADE,
    csrf_token      TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
