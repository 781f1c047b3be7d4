-- API keys of the app owner's backend for the /v1 management API: `tfw_<key_id>_<secret>`. Only the
-- SHA-256 of the secret is kept; the key is shown once, when it is created.
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY NOT NULL,
    key_id       TEXT NOT NULL UNIQUE,          -- the public part, in the key and in logs
    name         TEXT NOT NULL,
    scope        TEXT NOT NULL CHECK (scope IN ('read', 'write')),
    secret_hash  TEXT NOT NULL,                 -- SHA-256 of the secret, hex
    created_at   TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,                     -- to the minute
    revoked_at   TIMESTAMP
);
