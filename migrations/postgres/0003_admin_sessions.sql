-- Dashboard sign-in sessions. A session is bound to the admin token that
-- opened it: revoking the token ends its sessions. Only a SHA-256 of the
-- session id (the cookie value) is stored; the CSRF token is sent back in a
-- header on every change and is not a secret on its own.
CREATE TABLE admin_sessions (
    session_hash    BYTEA       PRIMARY KEY,
    admin_token_id  BIGINT      NOT NULL REFERENCES admin_tokens (id) ON DELETE CASCADE,
    csrf_token      TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL
);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);
