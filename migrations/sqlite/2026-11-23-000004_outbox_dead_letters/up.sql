-- Dead letters in the Treefort outbox: an update Treefort rejected for good (a 4xx, or a create
-- answered without an id) is `dead`, kept with its error, and still holds back the later updates
-- of its subscription (they must not overtake it) until an operator retries it or `skipped` it on
-- purpose (who and why are recorded). Keep in step with migrations/postgres and schema.rs.
-- SQLite cannot change a CHECK constraint: the table is rebuilt (nothing references it).
CREATE TABLE treefort_outbox_new (
    id              INTEGER PRIMARY KEY NOT NULL,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    operation       TEXT NOT NULL CHECK (operation IN ('create', 'update')),
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'dead', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_by       TEXT,
    locked_until    TIMESTAMP,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP,
    dead_at         TIMESTAMP,                      -- when Treefort rejected it for good
    skipped_at      TIMESTAMP,
    skipped_by      TEXT,                           -- who skipped it (outbox skip --by)
    skip_reason     TEXT
);
INSERT INTO treefort_outbox_new (id, subscription_id, operation, body, status, attempts, next_attempt_at,
                                 locked_by, locked_until, last_error, created_at, delivered_at)
SELECT id, subscription_id, operation, body, status, attempts, next_attempt_at,
       locked_by, locked_until, last_error, created_at, delivered_at
FROM treefort_outbox;
DROP TABLE treefort_outbox;
ALTER TABLE treefort_outbox_new RENAME TO treefort_outbox;
CREATE INDEX treefort_outbox_due ON treefort_outbox (status, next_attempt_at);
CREATE INDEX treefort_outbox_subscription ON treefort_outbox (subscription_id, id);
