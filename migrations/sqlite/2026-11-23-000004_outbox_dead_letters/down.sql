-- Back to two states: a dead entry is pending again, a skipped one counts as delivered.
CREATE TABLE treefort_outbox_old (
    id              INTEGER PRIMARY KEY NOT NULL,
    subscription_id BIGINT NOT NULL REFERENCES subscriptions (id),
    operation       TEXT NOT NULL CHECK (operation IN ('create', 'update')),
    body            TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    locked_by       TEXT,
    locked_until    TIMESTAMP,
    last_error      TEXT,
    created_at      TIMESTAMP NOT NULL,
    delivered_at    TIMESTAMP
);
INSERT INTO treefort_outbox_old (id, subscription_id, operation, body, status, attempts, next_attempt_at,
                                 locked_by, locked_until, last_error, created_at, delivered_at)
SELECT id, subscription_id, operation, body,
       CASE status WHEN 'dead' THEN 'pending' WHEN 'skipped' THEN 'delivered' ELSE status END,
       attempts, next_attempt_at, locked_by, locked_until, last_error, created_at,
       CASE status WHEN 'skipped' THEN skipped_at ELSE delivered_at END
FROM treefort_outbox;
DROP TABLE treefort_outbox;
ALTER TABLE treefort_outbox_old RENAME TO treefort_outbox;
CREATE INDEX treefort_outbox_due ON treefort_outbox (status, next_attempt_at);
CREATE INDEX treefort_outbox_subscription ON treefort_outbox (subscription_id, id);
